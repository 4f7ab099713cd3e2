"""What to trace: built and validated in one place, for the CLI and the Python API.

Every value a user gives (a flag's text, or an API argument) goes through one
of the parsers below, which check its range and form where it is parsed and
raise UsageError with one line. argparse calls the same parsers (see
commands/common.py), so `droptrace --pid -1` and `droptrace.trace(pid=-1)`
give the same answer. Checks that need the host (does that namespace exist?)
raise DroptraceError (exit 1); malformed values are UsageError (exit 2).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from .errors import DroptraceError, UsageError

HOOKS = ("tp_btf", "raw_tp", "tracepoint")
# In all; each CPU an even share (kernel/ringbuf.per_cpu_bytes). 32 MiB a CPU holds ~190 ms of a
# 1M drops/s flood of small packets (176-byte records: drops.bpf.c trims each to its packet).
DEFAULT_RING_MB = 64
# `record` writes every drop to a file (~400 MB/s in such a flood): new pages of a file (this VM:
# memory the host took back, 2-4x the cost), or a disk's writeback throttling, hold its reader
# longer than a stream's; one round in five of the bench lost 0.1% at 64 (BENCHMARKS.md).
DEFAULT_RECORD_RING_MB = 128
DEFAULT_SNAPLEN = 128  # bytes of each packet a recording keeps by default: its headers
MAX_RING_MB = 1024
MAX_SECONDS = 366 * 86400  # a year: anything longer is a typo, and time arithmetic stays finite
PID_MAX = 1 << 22  # PID_MAX_LIMIT on 64-bit kernels
U32_MAX = (1 << 32) - 1
COUNT_MAX = (1 << 63) - 1
IFNAMSIZ = 16
NETNS_RUN = "/run/netns"
_NETNS_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")


@dataclass
class Options:
    """What to trace. Filters are applied in the kernel; build it with make()."""

    hook: Optional[str] = None
    stack: bool = False
    snaplen: Optional[int] = None  # bytes kept per packet in a recording; None: headers
    payload: bool = False  # record: keep whole frames (up to the object's big snap)
    reasons: List[str] = field(default_factory=list)
    exclude_reasons: List[str] = field(default_factory=list)
    netns: List[int] = field(default_factory=list)  # inodes; empty: any
    interfaces: List[bytes] = field(default_factory=list)  # device names; empty: any
    pid: int = 0
    mark: Optional[Tuple[int, int]] = None  # (value, mask)
    ringbuf_mb: int = DEFAULT_RING_MB
    rate_limit: int = 0  # events per second at most (the rest counted as suppressed)
    filter: Optional[str] = None  # a tcpdump expression, run in the kernel
    verbose: bool = False
    agg_flows: bool = True  # counts (top, exporter): also key the counts by flow (addresses, ports)

    @property
    def ringbuf_bytes(self) -> int:
        return self.ringbuf_mb << 20


# -- value parsers: text (from the command line) or Python values (from the API) ----------
Number = Union[int, float, str]


def _shown(value: object) -> str:
    """repr() for a message; Python refuses to print an int of more than 4300 digits."""
    try:
        return repr(value)
    except ValueError:
        return f"an integer of {value.bit_length()} bits" if isinstance(value, int) else "(too large)"


def _int(value: Number, what: str) -> int:
    if isinstance(value, bool):
        raise UsageError(f"{what}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip(), 0)
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not an integer") from None


def int_in(value: Number, what: str, low: int, high: int) -> int:
    n = _int(value, what)
    if not low <= n <= high:
        if n < low and low == 1:
            raise UsageError(f"{what}: {_shown(value)} must be greater than zero")
        raise UsageError(f"{what}: {_shown(value)} is out of range ({low}..{high})")
    return n


def count(value: Number, what: str = "count") -> int:
    return int_in(value, what, 1, COUNT_MAX)


def seconds(value: Number, what: str = "duration") -> float:
    try:
        n = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise UsageError(f"{what}: {value!r} is not a number of seconds") from None
    except OverflowError:  # an int too large for a float
        n = math.inf if value > 0 else -math.inf
    if not n > 0 or math.isnan(n):
        raise UsageError(f"{what}: {_shown(value)} must be greater than zero")
    if not n <= MAX_SECONDS:
        raise UsageError(f"{what}: {_shown(value)} is too long (at most {MAX_SECONDS} s, a year)")
    return n


def pid(value: Number) -> int:
    return int_in(value, "pid", 1, PID_MAX)


def rate_limit(value: Number) -> int:
    return int_in(value, "rate limit", 1, U32_MAX)


def ring_mb(value: Number) -> int:
    n = int_in(value, "ring buffer MB", 1, MAX_RING_MB)
    if n & (n - 1):
        raise UsageError(f"ring buffer MB: {value!r} is not a power of two up to {MAX_RING_MB}")
    return n


def mark(value: Union[str, int, Tuple[int, int]]) -> Tuple[int, int]:
    """VALUE[/MASK] as text, an int, or a (value, mask) pair."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise UsageError(f"mark: {value!r} is not (value, mask)")
        v, m = (_int(x, "mark") for x in value)
    elif isinstance(value, int) and not isinstance(value, bool):
        v, m = value, U32_MAX
    else:
        text = str(value)
        head, _, tail = text.partition("/")
        try:
            v = int(head.strip(), 0)
            m = int(tail.strip(), 0) if tail else U32_MAX
        except ValueError:
            raise UsageError(f"mark: {text!r} is not VALUE or VALUE/MASK") from None
    if not (0 <= v <= U32_MAX and 0 <= m <= U32_MAX):
        raise UsageError(f"mark: {_shown(value)} does not fit in 32 bits")
    return v & m, m


def names(value: Union[str, Iterable[str]], what: str = "reason") -> List[str]:
    """A comma list (or a list of them) of names; an empty one is an error, not 'no filter'."""
    try:
        items = [value] if isinstance(value, str) else list(value)
    except TypeError:
        raise UsageError(f"{what}: {_shown(value)} is not a name or a list of names") from None
    out: List[str] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"{what}: {_shown(item)} is not a name")
        out.extend(p.strip() for p in item.split(",") if p.strip())
    if not out:
        raise UsageError(f"{what}: no name given")
    return out


def interface(value: Union[str, bytes]) -> bytes:
    """A device name as the kernel stores it (bytes: names need not be UTF-8)."""
    if not isinstance(value, (str, bytes)):
        raise UsageError(f"interface: {_shown(value)} is not a device name")
    try:
        raw = value if isinstance(value, bytes) else os.fsencode(value)
    except UnicodeEncodeError:  # a lone surrogate that os.fsdecode cannot have made
        raise UsageError(f"interface name {value!r} is not a valid device name") from None
    shown = os.fsdecode(raw)
    if not raw:
        raise UsageError("interface: empty name")
    if len(raw) >= IFNAMSIZ:
        raise UsageError(f"interface name {shown!r} is longer than {IFNAMSIZ - 1} characters")
    if raw in (b".", b"..") or any(c in raw for c in b"/: \t\n\r\0\x0b\x0c"):
        raise UsageError(f"interface name {shown!r} is not a valid device name")
    return raw


def netns(spec: Union[str, int], must_exist: bool = True) -> int:
    """The inode of a network namespace given as an inode, an `ip netns` name, or pid:N. Offline
    (must_exist=False) an inode is taken as it is: the namespace of a recording may be gone."""
    if isinstance(spec, int) and not isinstance(spec, bool) and not 1 <= spec <= U32_MAX:
        raise UsageError(f"netns: {_shown(spec)} is not a namespace inode (1..{U32_MAX})")
    text = str(spec).strip()
    if not text:
        raise UsageError("netns: empty namespace")
    if text.isascii() and text.isdigit():  # not "²" nor "٣", which isdigit() also accepts
        digits = text.lstrip("0") or "0"
        ino = int(digits) if len(digits) <= 10 else U32_MAX + 1  # int() refuses > 4300 digits
        if not 1 <= ino <= U32_MAX:
            raise UsageError(f"netns: {text!r} is not a namespace inode (1..{U32_MAX})")
        if must_exist and ino not in known_namespaces():
            raise DroptraceError(f"netns {ino}: no network namespace with this inode (none of "
                                 f"{NETNS_RUN}/* or /proc/*/ns/net)")
        return ino
    if text.startswith("pid:"):
        n = pid(text[4:])
        path = f"/proc/{n}/ns/net"
    else:
        if not _NETNS_NAME.match(text):
            raise UsageError(f"netns: {text!r} is not an inode, an `ip netns` name or pid:N")
        path = os.path.join(NETNS_RUN, text)
    try:
        st = os.stat(path)
    except OSError as e:
        raise DroptraceError(f"--netns {text!r}: {path}: {e.strerror} "
                             "(give an inode, an `ip netns` name or pid:N)") from None
    if st.st_dev != _nsfs_dev():
        raise DroptraceError(f"--netns {text!r}: {path} is not a network namespace")
    return st.st_ino


def _nsfs_dev() -> int:
    return os.stat("/proc/self/ns/net").st_dev


def known_namespaces() -> set:
    """Inodes of the network namespaces that processes or `ip netns` names hold."""
    found = set()
    for d, sub in ((NETNS_RUN, ""), ("/proc", "ns/net")):
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        for name in entries:
            if sub and not name.isdigit():
                continue
            try:
                found.add(os.stat(os.path.join(d, name, sub) if sub else os.path.join(d, name)).st_ino)
            except OSError:
                continue
    return found


def hook(value: Optional[str]) -> Optional[str]:
    if value is not None and value not in HOOKS:
        raise UsageError(f"unknown hook {_shown(value)}; choose one of {', '.join(HOOKS)}")
    return value


def expression(value: Union[str, bytes, Sequence[str], None]) -> Optional[str]:
    """A tcpdump expression (words are joined as tcpdump joins them); None when empty."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    try:
        text = value if isinstance(value, str) else " ".join(value)
    except TypeError:  # not text, nor a sequence of words
        raise UsageError(f"filter: {_shown(value)} is not a tcpdump expression") from None
    return text.strip() or None


# -- building Options ----------------------------------------------------
def make(*, hook_name: Optional[str] = None, stack: bool = False,
         reasons: Union[str, Iterable[str], None] = None,
         exclude_reasons: Union[str, Iterable[str], None] = None,
         netns_specs: Union[str, int, Iterable[Union[str, int]], None] = None,
         interfaces: Union[str, bytes, Iterable[Union[str, bytes]], None] = None,
         pid_value: Union[Number, None] = None, mark_value: Union[str, int, Tuple[int, int], None] = None,
         filter_expr: Union[str, bytes, Sequence[str], None] = None, ring_buffer_mb: Number = DEFAULT_RING_MB,
         rate: Union[Number, None] = None, snaplen: Union[Number, None] = None, payload: bool = False,
         verbose: bool = False, live: bool = True) -> Options:
    """Options from user values, each parsed and checked; the rules between them too. Offline
    (live=False, a recording read back) a namespace inode need not exist any more, and the
    kernel's list sizes do not apply."""
    if reasons and exclude_reasons:
        raise UsageError("--reason and --exclude-reason cannot be combined")
    opts = Options(hook=hook(hook_name), stack=bool(stack), verbose=bool(verbose), payload=bool(payload))
    if reasons is not None:
        opts.reasons = names(reasons)
    if exclude_reasons is not None:
        opts.exclude_reasons = names(exclude_reasons)
    if netns_specs is not None:
        specs = _values(netns_specs, (str, int), "netns")
        if not specs:
            raise UsageError("netns: no namespace given")
        opts.netns = sorted({netns(s, must_exist=live) for s in specs})
    if interfaces is not None:
        ifs = _values(interfaces, (str, bytes), "interface")
        if not ifs:
            raise UsageError("interface: no name given")
        opts.interfaces = sorted({interface(i) for i in ifs})
    if pid_value is not None:
        opts.pid = pid(pid_value)
    if mark_value is not None:
        opts.mark = mark(mark_value)
    opts.filter = expression(filter_expr)
    opts.ringbuf_mb = ring_mb(ring_buffer_mb)
    if rate is not None:
        opts.rate_limit = rate_limit(rate)
    if snaplen is not None:
        if payload:
            raise UsageError("--snaplen and --payload cannot be combined")
        opts.snaplen = snap_length(snaplen)
    for name, limit in (("--netns", len(opts.netns)), ("--interface", len(opts.interfaces))):
        if live and limit > _list_max():
            raise UsageError(f"{name}: at most {_list_max()} values")
    return opts


def _values(value: object, one: tuple, what: str) -> list:
    """[value] if it is one value, else the values it holds."""
    if isinstance(value, one):
        return [value]
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        raise UsageError(f"{what}: {_shown(value)} is not a value or a list of values") from None


def snap_length(value: Number) -> int:
    from .kernel.contract import limits

    big = limits()["DT_SNAP_BIG"]
    n = _int(value, "snaplen")
    if not 1 <= n <= big:
        raise UsageError(f"--snaplen {value}: droptrace captures 1 to {big} bytes of each packet")
    return n


def _list_max() -> int:
    from .kernel.contract import limits

    return limits()["DT_LIST_MAX"]
