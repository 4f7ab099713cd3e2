"""Drops as aligned text lines, for people.

Columns are as wide as their widest possible value where that is small (PID,
COMM, interface names: the kernel's own limits; REASON: the running kernel's
longest name). Address columns start narrow and widen when an IPv6 endpoint
needs it; the header is printed again then, so every line stays aligned with
the header above it. Numbers and names are never cut.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple, Union

from ..event import Event
from .out import Output
from .sink import EventSink

if TYPE_CHECKING:
    from ..kernel.ringbuf import Batch

COMM_W, IFACE_W, PID_W, NETNS_W = 15, 15, 7, 10  # TASK_COMM_LEN-1, IFNAMSIZ-1, PID_MAX, u32
ADDR_W = 21  # 255.255.255.255:65535; IPv6 endpoints widen it (up to 47)
REASON_W = 22
PROTO_W = 6


def endpoint(addr: Optional[str], port: Optional[int]) -> str:
    if addr is None:
        return "-"
    if ":" in addr:
        return f"[{addr}]:{port}" if port is not None else addr
    return f"{addr}:{port}" if port is not None else addr


def proto(e: Event) -> str:
    """TCP, UDP, ICMPV6, ARP...; numbers and hex ethertypes as they are."""
    name = e.l4 if e.l4 is not None else e.l3
    if name is None:
        return "?"
    return name.upper() if isinstance(name, str) and not name.startswith("0x") else str(name)


def flow_cells(e: Event) -> Tuple[str, str, str, str]:
    """(source, destination, protocol, reason) as shown: the cells that may widen their column."""
    return endpoint(e.saddr, e.sport), endpoint(e.daddr, e.dport), proto(e), \
        e.reason if e.reason is not None else "-"


def details(e: Event) -> str:
    return " ".join(([f"len={e.len}"] if e.len is not None else []) + flow_details(e))


def flow_details(e: Event) -> List[str]:
    """The details after len=: the same for every packet of a flow."""
    parts = []
    if e.tcp_flags is not None:
        parts.append(f"flags={e.tcp_flags or '.'}")
    if e.icmp_type is not None:
        parts.append(f"type={e.icmp_type} code={e.icmp_code}")
    if e.mark:
        parts.append(f"mark=0x{e.mark:x}")
    return parts


def printable(name: str) -> str:
    """name with "?" for each character a terminal would act on rather than show.

    A process names itself (prctl PR_SET_NAME), device names may hold control bytes:
    a newline, tab or escape sequence in them must neither break the line, shift
    the columns, nor reach the terminal. The width stays the same.
    """
    return name if name.isprintable() else "".join(c if c.isprintable() else "?" for c in name)


def clock(ts_ns: int) -> str:
    return clock_second(ts_ns // 1_000_000_000) + f".{(ts_ns // 1_000_000) % 1000:03d}"


def clock_second(secs: int) -> str:
    """HH:MM:SS of a wall-clock second, local time."""
    return time.strftime("%H:%M:%S", time.localtime(secs))


def comm_cell(comm: str) -> str:
    """The COMM cell: printable, padded to the kernel's longest task name."""
    return f"{printable(comm):<{COMM_W}}"


def stack_lines(stack: List[str]) -> List[str]:
    """--stack: one indented line per frame, under the drop's line."""
    return [f"    #{i:<2} {f}" for i, f in enumerate(stack)]


class Columns:
    """The widths of the text columns; widen() says whether a line needed more room."""

    def __init__(self, reason_width: int = REASON_W) -> None:
        self.w: Dict[str, int] = {"reason": max(REASON_W, reason_width), "src": ADDR_W, "dst": ADDR_W,
                                  "proto": PROTO_W}

    def widen(self, **values: str) -> bool:
        grew = False
        for k, v in values.items():
            if len(v) > self.w[k]:
                self.w[k] = len(v)
                grew = True
        return grew

    def header(self) -> str:
        w = self.w
        return (f"{'TIME':<12}  {'PID':<{PID_W}} {'COMM':<{COMM_W}} {'PROTO':<{w['proto']}} "
                f"{'REASON':<{w['reason']}} {'SADDR:SPORT':<{w['src']}} {'DADDR:DPORT':<{w['dst']}} "
                f"{'IFACE':<{IFACE_W}} {'NETNS':<{NETNS_W}}  LOCATION")

    def line(self, e: Event, src: str, dst: str, kind: str, reason: str) -> str:
        pid = "-" if e.pid is None else e.pid  # another tool's capture knows no task
        return (f"{clock(e.ts_ns):<12}  {pid:<{PID_W}} {comm_cell('-' if e.comm is None else e.comm)} "
                f"{self.middle(e, src, dst, kind, reason)}{details(e)}")

    def middle(self, e: Event, src: str, dst: str, kind: str, reason: str) -> str:
        """The cells from PROTO to LOCATION, and the gap before the details: the same for every
        packet of a flow (formats/compiled.py caches it)."""
        w = self.w
        iface = printable(e.ifname) if e.ifname else (str(e.ifindex) if e.ifindex else "-")
        where = "-" if e.location is None else e.location  # another tool's capture has none
        return (f"{kind:<{w['proto']}} {reason:<{w['reason']}} {src:<{w['src']}} {dst:<{w['dst']}} "
                f"{iface:<{IFACE_W}} {e.netns or '-':<{NETNS_W}}  {where}  ")


def text_line(e: Event, columns: Optional[Columns] = None) -> str:
    cols = columns or Columns()
    src, dst, kind, reason = flow_cells(e)
    cols.widen(src=src, dst=dst, proto=kind, reason=reason)
    return cols.line(e, src, dst, kind, reason)


def explain_line(reason: str) -> str:
    """--explain: the reason's one-line summary, indented under the first drop that has it."""
    from ..explain import summary

    text = summary(reason)
    return f"    ^ {reason}: {text or '(no explanation written yet)'}"


FIRST_BATCH = 64  # drops the first header is sized by (a wider one later prints it again)


class TextWriter(EventSink):
    """Aligned lines (and stacks with --stack), written whole through one Output."""

    def __init__(self, out: Output, stack: bool = False,
                 reason_width: Union[int, Callable[[], int]] = REASON_W, explain: bool = False) -> None:
        self.out = out
        self.stack = stack
        self.explained: Optional[set] = set() if explain else None  # reasons already explained
        self._reason_width = reason_width  # a callable when known only once tracing started
        self.columns = Columns()
        self._header = False

    def write_batch(self, batch: "Batch") -> int:
        if not self._header:
            # The first batch sizes the header, and is rendered in Python whichever way the rest
            # is: a small one, so that a storm's first 4,096 drops do not wait for Python (some
            # 45 ms, which filled the rings in floods).
            batch.limit = min(batch.limit, FIRST_BATCH)
        return super().write_batch(batch)

    @property
    def header_written(self) -> bool:
        """Once it is, lines no longer depend on the rest of their batch (compiled.py may take over)."""
        return self._header

    def write(self, events: List[Event]) -> None:
        text = self.render(events)
        if text:
            self.out.write_text(text)

    def render(self, events: List[Event]) -> str:
        """The text of these events (with the header lines they need), as write() writes it."""
        lines = []
        cells = [(e, *flow_cells(e)) for e in events]
        if not self._header:  # the first header already fits the first batch
            rw = self._reason_width
            self.columns.widen(reason="-" * (rw() if callable(rw) else rw))
            for _e, src, dst, kind, reason in cells:
                self.columns.widen(src=src, dst=dst, proto=kind, reason=reason)
            lines.append(self.columns.header())
            self._header = True
        for e, src, dst, kind, reason in cells:
            if self.columns.widen(src=src, dst=dst, proto=kind, reason=reason):
                lines.append(self.columns.header())
            lines.append(self.columns.line(e, src, dst, kind, reason))
            if self.explained is not None and e.reason is not None and e.reason not in self.explained:
                self.explained.add(e.reason)
                lines.append(explain_line(e.reason))
            if self.stack and e.stack is not None:
                lines.extend(stack_lines(e.stack))
        return "\n".join(lines) + "\n" if lines else ""
