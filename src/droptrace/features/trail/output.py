"""Trails as text blocks or JSON objects, one per packet, made once per shape in a storm."""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ...event import Event, dumps, iso_time
from ...formats.out import Output
from ...kernel.ringbuf import Batch
from .tracer import Hop, TrailTracer, mono_to_wall_ns

HeadersT = Optional[Dict[str, Any]]

RECEIVE = ("netif_receive_skb", "netif_rx", "napi_gro_receive_entry")


def verdict_of(verdict: str, hops: List[Hop]) -> str:
    """dropped, or for a consumed packet what happened last: delivered, transmitted, consumed."""
    if verdict != "consumed":
        return verdict
    if any(h.hook == "skb_copy_datagram_iovec" for h in hops):
        return "delivered"
    before = [h.hook for h in hops if h.hook != "consume_skb"]
    if before and before[-1] in ("net_dev_xmit", "net_dev_start_xmit"):
        return "transmitted"
    # A socket's queue holds the skb without its device (UDP copies a linear skb to the reader
    # without skb_copy_datagram_iovec): freed device-less after a receive step, it was read.
    if hops and not hops[-1].ifname and any(h in RECEIVE for h in before):
        return "delivered"
    return "consumed"


def flow_text(l3: Optional[str], l4: Any, saddr: Optional[str], daddr: Optional[str], sport: Optional[int],
              dport: Optional[int], **_: Any) -> str:
    """`udp 10.0.0.1:5353 -> 10.0.0.2:53`: a packet's headers in one phrase (the trail's first
    line, and where they changed)."""
    if not saddr:
        return f"{l3 or '?'}"
    src = f"{saddr}:{sport}" if sport is not None else str(saddr)
    dst = f"{daddr}:{dport}" if dport is not None else str(daddr)
    return f"{l4 or l3 or '?'} {src} -> {dst}"


SHAPES_MAX = 4096  # output templates kept (a storm has few; a spoofed one is cleared through)
SHAPES_TTL_S = 10.0  # ... and made again this often: they hold namespace names, which can change
_SLOT = "\x00dt-slot-%d\x00"  # where a template's values go (cannot occur in what is shown)


class TrailWriter:
    """Records -> one block of text, or one JSON object, per packet.

    In a storm most trails are one flow taking one path: the output is made once per such shape
    (the record minus its times and the packet's length) as a template, and each trail only
    fills in its times (and length).
    """

    def __init__(self, out: Output, tracer: TrailTracer, as_json: bool, names: Any) -> None:
        self.out, self.tracer, self.as_json, self.names = out, tracer, as_json, names
        self.offset = mono_to_wall_ns()
        self._places: Dict[Tuple[str, int], str] = {}  # "device@namespace", for one batch
        self._shapes: Dict[tuple, Callable[[bytes], Any]] = {}
        self._shapes_since = time.monotonic()

    def write_batch(self, batch: Batch) -> int:
        raw = batch.records()
        self.write_raw(raw)
        return len(raw)

    def write_raw(self, raw: List[bytes]) -> None:
        if not raw:
            return
        self._places = {}
        if time.monotonic() - self._shapes_since > SHAPES_TTL_S:
            self._shapes.clear()
            self._shapes_since = time.monotonic()
        records, shapes = self.tracer.records, self._shapes
        parts = []
        for r in raw:
            key = records.shape(r)
            fill = shapes.get(key)
            if fill is None:
                if len(shapes) >= SHAPES_MAX:
                    shapes.clear()
                fill = shapes[key] = self._template(r)
            parts.append(fill(r))
        if self.as_json:
            self.out.write(b"".join(p + b"\n" for p in parts))
        else:
            self.out.write_text("".join(parts))

    def _template(self, r: bytes) -> Callable[[bytes], Any]:
        """The output of trails shaped like r, as a function of such a record."""
        records = self.tracer.records
        e, verdict, hops, lost, first = records.trail(r)
        if not hops:  # not written by the kernel; shown whole if it ever is
            return lambda rec: (self.json if self.as_json else self.text)(*records.trail(rec))
        times, iso = records.times(r), self.tracer.converter.time_iso
        if self.as_json:
            parts = self._json_parts(e, verdict, hops, lost, first)
            length = records.packet_len if e.len is not None else None
            return lambda rec: self._fill_json(parts, times(rec), length(rec) if length else None, iso)
        fmt = self._text_format(e, verdict, hops, lost, first)
        return lambda rec: self._fill_text(fmt, times(rec), iso)

    def _fill_text(self, fmt: str, times: Sequence[int], iso: Callable[[int], str]) -> str:
        """A trail's block from its format: the first hop's wall time, then each hop's µs after it."""
        first = times[0]
        return fmt % (iso(first + self.offset), *[(t - first) / 1000 for t in times])

    def _fill_json(self, parts: List[bytes], times: Sequence[int], length: Optional[int],
                   iso: Callable[[int], str]) -> bytes:
        """A trail's object from its parts (_json_parts): its time, its length, each hop's time."""
        at = [iso(t + self.offset).encode() for t in times]
        return _interleave(parts, at[:1] + ([str(length).encode()] if length is not None else []) + at)

    def _where(self, ifname: str, netns: int) -> str:
        place = self._places.get((ifname, netns))
        if place is None:
            info = self.names.lookup(netns) if self.names is not None and netns else None
            ns = (info.name if info is not None and info.name else None) or (str(netns) if netns else "?")
            place = self._places[(ifname, netns)] = f"{ifname or '-'}@{ns}"
        return place

    def _text_format(self, e: Event, verdict: str, hops: List[Hop], lost: int, first: HeadersT = None) -> str:
        """The block for a trail, as a %-format of the first hop's time and each hop's +µs. Where
        the packet's headers changed on the way, the headers it was first seen with, then each
        change under its hop."""
        def lit(text: str) -> str:
            return text.replace("%", "%%")
        flow = flow_text(e.l3, e.l4, e.saddr, e.daddr, e.sport, e.dport)
        end = verdict_of(verdict, hops)
        why = f" {e.reason}" if end == "dropped" and e.reason else ""
        at = f" at {e.location}" if end == "dropped" else ""
        lines = ["%s" + lit(f"  {flow}  {end}{why}{at}")]
        if first is not None and any(h.headers for h in hops):
            lines.append(lit(f"  first seen as {flow_text(**first)}"))
        if lost:
            lines.append(f"  ({lost} earlier hops not kept)")
        for h in hops:
            step = (f"clone by {h.function}()" if h.hook == "clone" else f"{h.function}()") if h.function \
                else h.hook
            called = (f"  = {h.returned}" if h.returned is not None else "") + \
                (f"  from {h.caller}" if h.caller else "")
            lines.append("  +%10.1fµs  " + lit(f"{step:<24} {self._where(h.ifname, h.netns)}  len {h.len}"
                                                f"  cpu {h.cpu}{called}"))
            if h.headers:
                lines.append(lit(f"{'':17}headers now {flow_text(**h.headers)}"))
        return "\n".join(lines) + "\n\n"

    def text(self, e: Event, verdict: str, hops: List[Hop], lost: int, first: HeadersT = None) -> str:
        fmt = self._text_format(e, verdict, hops, lost, first)
        if not hops:
            return fmt % e.time
        return self._fill_text(fmt, [h.time_ns for h in hops], iso_time)

    def _json_parts(self, e: Event, verdict: str, hops: List[Hop], lost: int,
                    first: HeadersT = None) -> List[bytes]:
        """The object for a trail, cut where its values go, in order: the trail's time (its first
        hop's), the packet's length (if it has one), each hop's time."""
        end = verdict_of(verdict, hops)
        when, length = _SLOT % 0, _SLOT % 1
        at = [_SLOT % (2 + i) for i in range(len(hops))]
        obj = dumps({
            "time": when if hops else e.time,
            "verdict": end, "reason": e.reason if end == "dropped" else None,
            "location": e.location if end == "dropped" else None,
            "l3": e.l3, "l4": e.l4, "saddr": e.saddr, "daddr": e.daddr, "sport": e.sport, "dport": e.dport,
            "tcp_flags": e.tcp_flags, "len": length if e.len is not None else None,
            "hops": [{"time": t, "hook": h.hook, "ifname": h.ifname or None, "ifindex": h.ifindex or None,
                      "netns": h.netns or None, "len": h.len, "cpu": h.cpu, "function": h.function,
                      "caller": h.caller, "returned": h.returned, "headers": h.headers}
                     for t, h in zip(at, hops)],
            "hops_lost": lost, "first_headers": first})
        cuts = ([dumps(when)[1:-1]] if hops else []) + ([dumps(length)] if e.len is not None else []) + \
            [dumps(t)[1:-1] for t in at]
        parts = [obj]
        for cut in cuts:
            head, found, rest = parts[-1].partition(cut)
            if not found:
                raise AssertionError(f"trail JSON template: {cut!r} not in {obj!r:.200}")
            parts[-1:] = [head, rest]
        return parts

    def json(self, e: Event, verdict: str, hops: List[Hop], lost: int, first: HeadersT = None) -> bytes:
        return self._fill_json(self._json_parts(e, verdict, hops, lost, first), [h.time_ns for h in hops],
                               e.len, iso_time)


def _interleave(parts: List[bytes], values: List[bytes]) -> bytes:
    out = [parts[0]]
    for v, part in zip(values, parts[1:]):
        out += [v, part]
    return b"".join(out)
