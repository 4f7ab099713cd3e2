"""How events are written: aligned text lines, or one JSON object per line."""
from __future__ import annotations

import time
from typing import IO, TYPE_CHECKING, Callable, List, Optional

from .event import Event, dumps

if TYPE_CHECKING:
    from .event import Converter

HEADER = (f"{'TIME':<12}  {'PID':<7} {'COMM':<16} {'PROTO':<6} {'REASON':<22} "
          f"{'SADDR:SPORT':<22} {'DADDR:DPORT':<22} {'IFACE':<10} {'NETNS':<10}  LOCATION")


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


def details(e: Event) -> str:
    parts = [f"len={e.len}"] if e.len is not None else []
    if e.tcp_flags is not None:
        parts.append(f"flags={e.tcp_flags or '.'}")
    if e.icmp_type is not None:
        parts.append(f"type={e.icmp_type} code={e.icmp_code}")
    if e.mark:
        parts.append(f"mark=0x{e.mark:x}")
    return " ".join(parts)


def text_line(e: Event) -> str:
    secs = e.ts_ns // 1_000_000_000
    clock = time.strftime("%H:%M:%S", time.localtime(secs)) + f".{(e.ts_ns // 1_000_000) % 1000:03d}"
    reason = e.reason if e.reason is not None else "-"
    return (f"{clock:<12}  {e.pid:<7} {e.comm:<16} {proto(e):<6} {reason:<22} "
            f"{endpoint(e.saddr, e.sport):<22} {endpoint(e.daddr, e.dport):<22} "
            f"{e.ifname or (str(e.ifindex) if e.ifindex else '-'):<10} "
            f"{e.netns or '-':<10}  {e.location}  {details(e)}")


class TextWriter:
    def __init__(self, out: IO[str], stack: bool = False) -> None:
        self.out = out
        self.stack = stack
        self._header = False

    def write(self, events: List[Event]) -> None:
        if not self._header:
            self.out.write(HEADER + "\n")
            self._header = True
        lines = []
        for e in events:
            lines.append(text_line(e))
            if self.stack and e.stack is not None:
                lines.extend(f"    #{i:<2} {f}" for i, f in enumerate(e.stack))
        if lines:
            self.out.write("\n".join(lines) + "\n")
        self.out.flush()


class RawJsonWriter:
    """--json straight from raw records (Converter.json_line): the drop-storm path."""

    def __init__(self, out: IO[bytes], converter: Callable[[], "Converter"]) -> None:
        self.out = out
        self._converter = converter  # known once the tracer has started

    def write_raw(self, records: List[bytes]) -> None:
        if records:
            line = self._converter().json_line
            self.out.write(b"\n".join([line(r) for r in records]) + b"\n")
            self.out.flush()


class JsonWriter:
    """One JSON object per line; nothing else is written to this stream."""

    def __init__(self, out: IO[bytes], stack: bool = False) -> None:
        self.out = out
        self.stack = stack

    def write(self, events: List[Event]) -> None:
        if not events:
            return
        chunks = []
        for e in events:
            chunks.append(dumps(e.to_dict(with_stack=self.stack)))
        self.out.write(b"\n".join(chunks) + b"\n")
        self.out.flush()
