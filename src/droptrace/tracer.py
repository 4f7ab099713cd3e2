"""Load, attach and read droptrace's BPF program.

The hook ladder is tp_btf -> raw_tp -> classic tracepoint on skb:kfree_skb:
each rung is tried by loading and attaching it (the kernel is the only
reliable judge of what it accepts); the first that works is used and the
reasons the others failed are kept for `--verbose` and the doctor.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import List, Optional, Tuple

from . import btf as btfmod
from . import libbpf, reasons, tracefs
from .errors import DroptraceError
from .event import AGG_KEY, AGG_VAL, CONFIG, INSN, SNAP_BIG, SNAP_MAX, STACK, Converter, Event
from .kallsyms import Kallsyms
from .ringbuf import MmapRing

HOOKS = ("tp_btf", "raw_tp", "tracepoint")
PROGRAMS = {"tp_btf": "dt_tp_btf", "raw_tp": "dt_raw_tp", "tracepoint": "dt_tracepoint"}
# DROPTRACE_KERNEL_BTF points elsewhere (tests use it to act as a kernel without BTF).
BTF_PATH = os.environ.get("DROPTRACE_KERNEL_BTF", "/sys/kernel/btf/vmlinux")
OBJECT, OBJECT_NOBTF = "droptrace.bpf.o", "droptrace_nobtf.bpf.o"
NOBTF_LIMITS = ("no kernel BTF: the packet itself (addresses, ports, length, mark), its interface "
                "and namespace cannot be read; showing reason, location, protocol and task")
REASONS_ALL, REASONS_ONLY, REASONS_EXCEPT = 0, 1, 2
STAT_EMITTED, STAT_LOST, STAT_AGG_FOLDED, STAT_AGG_LOST, STAT_SUPPRESSED = 0, 1, 2, 3, 4
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


@dataclass
class Options:
    """What to trace. Filters are applied in the kernel."""

    hook: Optional[str] = None
    stack: bool = False
    snaplen: int = SNAP_MAX
    reasons: List[str] = field(default_factory=list)
    exclude_reasons: List[str] = field(default_factory=list)
    netns: int = 0
    interface: Optional[str] = None
    pid: int = 0
    mark: Optional[Tuple[int, int]] = None  # (value, mask)
    ringbuf_bytes: int = 8 << 20
    verbose: bool = False
    aggregate: bool = False  # top: count in the kernel instead of streaming events
    filter: Optional[str] = None  # a tcpdump expression, run in the kernel
    rate_limit: int = 0  # events per second at most (the rest counted as suppressed)


def object_path(name: str = OBJECT) -> str:
    path = resources.files("droptrace") / "bpf" / name
    if not path.is_file():
        raise DroptraceError(f"BPF object {path} is missing: this droptrace was installed without "
                             "its compiled BPF program; reinstall it with clang present")
    return str(path)


def check_privileges() -> None:
    """Fail early, with the fix, when the caller cannot load BPF tracing programs."""
    try:
        with open("/proc/self/status") as f:
            caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        caps = ~0 if os.geteuid() == 0 else 0
    if caps & (1 << CAP_SYS_ADMIN) or (caps & (1 << CAP_BPF) and caps & (1 << CAP_PERFMON)):
        return
    raise DroptraceError("droptrace needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: "
                         "run it with sudo")


class Tracer:
    """One tracing session: start(), then poll() for events, then close()."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.hook: Optional[str] = None
        self.fallbacks: List[Tuple[str, str]] = []  # (hook, why it was not used)
        self.reasons: Optional[reasons.Reasons] = None
        self.has_reason = False
        self.btf = os.path.exists(BTF_PATH)
        self.limits: List[str] = []  # what this host cannot show, said once at start
        self._obj: Optional[libbpf.Object] = None
        self._link: Optional[libbpf.Link] = None
        self._rb: Optional[MmapRing] = None
        self._pending: List[bytes] = []
        self._listed: List[int] = []
        self._filter: Optional[Tuple[list, list]] = None  # (ethernet, raw IP) programs
        self._kallsyms: Optional[Kallsyms] = None
        self._converter: Optional[Converter] = None
        self._stats_map: Optional[libbpf.Map] = None
        self.attach_seconds = 0.0
        self.suppressed = 0  # --rate-limit: events held back, read by detach()

    # -- setup ---------------------------------------------------------
    def start(self) -> None:
        t0 = time.monotonic()
        check_privileges()
        if self.opts.hook and self.opts.hook not in HOOKS:
            raise DroptraceError(f"unknown hook {self.opts.hook!r}; choose one of {', '.join(HOOKS)}")
        if self.opts.filter:
            self._filter = compile_filters(self.opts.filter)
            if not self.btf:
                raise DroptraceError(f"filter expressions need kernel BTF ({BTF_PATH} is missing)")
        if self.opts.aggregate and not self.btf:
            raise DroptraceError(f"top needs kernel BTF ({BTF_PATH} is missing)")
        if self.btf:
            kbtf = btfmod.read(BTF_PATH, enums=reasons.core_enums)
            self.has_reason = "skb_drop_reason" in kbtf.enums
            if self.has_reason:
                self.reasons = reasons.from_btf(kbtf)
            path = object_path()
        else:
            o = self.opts
            needs = [flag for flag, on in (("--netns", o.netns), ("--interface", o.interface),
                                           ("--mark", o.mark)) if on]
            if needs:
                verb = "needs" if len(needs) == 1 else "need"
                raise DroptraceError(f"{', '.join(needs)} {verb} kernel BTF, which this kernel lacks "
                                     f"({BTF_PATH}); filter by --reason or --pid instead")
            if self.opts.hook not in (None, "tracepoint"):
                raise DroptraceError(f"--hook {self.opts.hook} needs kernel BTF ({BTF_PATH} is "
                                     "missing); only the classic tracepoint works without it")
            self.opts.hook = "tracepoint"
            self.limits.append(NOBTF_LIMITS)
            path = object_path(OBJECT_NOBTF)
        libbpf.lib()
        ladder = [self.opts.hook] if self.opts.hook else list(HOOKS)
        for hook in ladder:
            try:
                self._try_hook(path, hook)
                self.hook = hook
                break
            except libbpf.BpfError as e:
                self._teardown()
                self.fallbacks.append((hook, _why(e)))
            except BaseException:
                self._teardown()
                raise
        if self.hook is None:
            tried = "; ".join(f"{h}: {w}" for h, w in self.fallbacks)
            raise DroptraceError(f"could not attach to skb:kfree_skb ({tried})")
        self._kallsyms = Kallsyms.load()
        self._converter = Converter(self.reason_name, self._kallsyms.symbolize,
                                    time.time_ns() - time.monotonic_ns(), self.opts.stack,
                                    SNAP_BIG if self.opts.snaplen > SNAP_MAX else SNAP_MAX)
        if not self.opts.aggregate:
            self._rb = MmapRing(self._obj.map("events").fd, self.opts.ringbuf_bytes)
        self.attach_seconds = time.monotonic() - t0

    def _config(self, hook: str) -> bytes:
        o = self.opts
        skip = [0xFFFFFFFF, 0xFFFFFFFF]
        mode, listed = REASONS_ALL, []
        off_skb = off_loc = off_reason = size_reason = off_proto = 0
        has_reason = self.has_reason
        if hook == "tracepoint":
            fmt = tracefs.kfree_skb_format()
            f = fmt.fields
            if "skbaddr" not in f or "location" not in f:
                raise DroptraceError("the kfree_skb format file lacks skbaddr/location")
            off_skb, off_loc = f["skbaddr"].offset, f["location"].offset
            off_proto = f["protocol"].offset if "protocol" in f else 0
            has_reason = "reason" in f
            if has_reason:
                off_reason, size_reason = f["reason"].offset, f["reason"].size
                if self.reasons is None:
                    self.reasons = reasons.from_print_fmt(fmt.print_fmt)
            self.has_reason = has_reason
        if has_reason and self.reasons is not None:
            for i, v in enumerate(self.reasons.not_drops[:2]):
                skip[i] = v
            if o.reasons:
                mode, listed = REASONS_ONLY, [self.reasons.value(n) for n in o.reasons]
            elif o.exclude_reasons:
                mode, listed = REASONS_EXCEPT, [self.reasons.value(n) for n in o.exclude_reasons]
        elif o.reasons or o.exclude_reasons:
            raise DroptraceError("this kernel reports no drop reasons; --reason/--exclude-reason "
                                 "cannot be used")
        self._listed = listed
        mark_on, mark, mask = (1, o.mark[0], o.mark[1]) if o.mark else (0, 0, 0)
        ifname = (o.interface or "").encode()
        if len(ifname) > 15:
            raise DroptraceError(f"interface name {o.interface!r} is longer than 15 characters")
        return CONFIG.pack(int(has_reason), int(o.stack), max(0, min(o.snaplen, SNAP_BIG)),
                           skip[0], skip[1], mode, o.netns, 0, o.pid, mark_on, mark & mask, mask,
                           off_skb, off_loc, off_reason, size_reason, int(bool(ifname)), ifname,
                           off_proto, int(o.aggregate), int(o.aggregate), int(bool(self._filter)),
                           len(self._filter[0]) if self._filter else 0,
                           len(self._filter[1]) if self._filter else 0, o.rate_limit)

    def _try_hook(self, path: str, hook: str) -> None:
        if hook == "tracepoint":
            tracefs.require()
        config = self._config(hook)
        obj = self._obj = libbpf.Object(path)
        if self.btf:
            for h, prog in PROGRAMS.items():
                obj.program(prog).set_autoload(h == hook)
        rodata = next((m for m in obj.maps() if m.name.endswith(".rodata")), None)
        if rodata is None:
            raise DroptraceError("BPF object has no .rodata map")
        rodata.set_initial_value(config.ljust(rodata.value_size, b"\0"))
        # top never reads the ring buffer: keep it at its smallest
        obj.map("events").set_max_entries(4096 if self.opts.aggregate else self.opts.ringbuf_bytes)
        obj.load()
        self._stats_map = obj.map("stats")
        rf = obj.map("reason_filter")
        for value in self._listed:
            rf.update(value.to_bytes(4, "little"), b"\1")
        if self._filter:
            fi = obj.map("filter_insns")
            for base, prog in zip((0, FILTER_MAX), self._filter):
                for i, insn in enumerate(prog):
                    fi.update((base + i).to_bytes(4, "little"), INSN.pack(*insn))
        self._link = obj.program(PROGRAMS[hook]).attach()

    # -- running -------------------------------------------------------
    def symbolize(self, addr: int) -> str:
        return self._kallsyms.symbolize(addr) if self._kallsyms else f"0x{addr:x}"

    def reason_name(self, value: int) -> str:
        return self.reasons.name(value) if self.reasons else str(value)

    def poll(self, timeout_ms: int = 100) -> List[Event]:
        """Wait up to timeout_ms for events; return those that arrived, decoded."""
        convert = self._converter.convert
        return [convert(r) for r in self.poll_raw(timeout_ms)]

    def poll_raw(self, timeout_ms: int = 100) -> List[bytes]:
        """Like poll(), but the raw records (for converter.json_line, the storm path)."""
        self._pending.extend(self._rb.poll(timeout_ms))
        return self.drain_raw()

    def drain(self) -> List[Event]:
        convert = self._converter.convert
        return [convert(r) for r in self.drain_raw()]

    def drain_raw(self) -> List[bytes]:
        if not self._pending:
            return []
        raw, self._pending = self._pending, []
        size = self._converter.record_size
        if len(raw[0]) not in (size, size + STACK.size):
            raise DroptraceError(f"event of {len(raw[0])} bytes from BPF, expected {size}: the "
                                 "BPF object and this droptrace disagree; reinstall droptrace")
        return raw

    @property
    def converter(self) -> Converter:
        return self._converter

    def counters(self) -> Tuple[int, int]:
        """(emitted, lost) summed over CPUs, as counted in the kernel."""
        return self.stat(STAT_EMITTED), self.stat(STAT_LOST)

    def stat(self, slot: int) -> int:
        """One per-CPU counter of the stats map, summed over CPUs."""
        if self._stats_map is None:
            return 0
        ncpu = libbpf.num_possible_cpus()
        raw = self._stats_map.lookup(slot.to_bytes(4, "little"), 8 * ncpu) or b""
        return sum(int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8))

    def aggregates(self) -> List[Tuple[tuple, int, int, str]]:
        """top: (key fields, count, bytes, ifname) for every key counted in the kernel."""
        if self._obj is None:
            return []
        out = []
        for k, v in self._obj.map("agg").items(AGG_KEY.size, AGG_VAL.size):
            count, nbytes, ifname = AGG_VAL.unpack(v)
            out.append((AGG_KEY.unpack(k), count, nbytes,
                        ifname.split(b"\0", 1)[0].decode(errors="replace")))
        return out

    # -- teardown ------------------------------------------------------
    def _teardown(self) -> None:
        if self._rb is not None:
            self._rb.close()
            self._rb = None
        if self._link is not None:
            self._link.destroy()
            self._link = None
        if self._obj is not None:
            self._obj.close()
            self._obj = None
        self._stats_map = None

    def detach(self) -> None:
        """Stop new events; events already in the ring buffer can still be drained."""
        if self._link is not None:
            self._link.destroy()
            self._link = None
            self.suppressed = self.stat(STAT_SUPPRESSED)  # final once nothing runs
        if self._rb is not None:
            while self._rb.pending() and len(self._pending) < (1 << 20):
                self._pending.extend(self._rb.read())

    def close(self) -> None:
        self._teardown()

    def __enter__(self) -> "Tracer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


FILTER_MAX = 256
_REJECT_ALL = [(0x06, 0, 0, 0)]  # BPF_RET|BPF_K 0


def compile_filters(expr: str) -> Tuple[list, list]:
    """The expression for Ethernet captures and for captures starting at the IP header.

    An expression that only makes sense with a link layer ("ether host ...",
    "arp") matches nothing where there is none, as in tcpdump on a raw-IP link.
    """
    from .libpcap import DLT_EN10MB, DLT_RAW, compile_filter

    eth = compile_filter(expr, DLT_EN10MB)
    try:
        raw = compile_filter(expr, DLT_RAW)
    except DroptraceError:
        raw = _REJECT_ALL
    return eth, raw


def _why(e: Exception) -> str:
    log = getattr(e, "log", "")
    last = [ln.strip() for ln in log.splitlines() if ln.strip()]
    detail = f" [{last[-1]}]" if last else ""
    return f"{e}{detail}"


