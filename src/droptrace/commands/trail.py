"""`droptrace trail`: the path each dropped packet took through the kernel, from tracepoints.

By default only packets that end dropped are shown (the kernel discards the others' trails);
with --all, every tracked packet's trail when it ends: dropped, delivered to a socket,
transmitted, or consumed.
"""
from __future__ import annotations

import argparse
from typing import Any, List, Sequence

from ..event import Event, dumps, iso_time
from ..formats.out import Output
from ..kernel.trail import Hop, TrailTracer, mono_to_wall_ns
from .common import Parser, add_run_options, add_trace_options, eprint, options, trace_loop

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


class TrailWriter:
    """Records -> one block of text, or one JSON object, per packet."""

    def __init__(self, out: Output, tracer: TrailTracer, as_json: bool, names: Any) -> None:
        self.out, self.tracer, self.as_json, self.names = out, tracer, as_json, names
        self.offset = mono_to_wall_ns()

    def write_raw(self, raw: List[bytes]) -> None:
        if not raw:
            return
        parts = [self.json(*t) if self.as_json else self.text(*t) for t in self.tracer.trails(raw)]
        if self.as_json:
            self.out.write(b"".join(p + b"\n" for p in parts))  # type: ignore[operator]
        else:
            self.out.write_text("".join(parts))  # type: ignore[arg-type]

    def _where(self, ifname: str, netns: int) -> str:
        info = self.names.lookup(netns) if self.names is not None and netns else None
        ns = (info.name if info is not None and info.name else None) or (str(netns) if netns else "?")
        return f"{ifname or '-'}@{ns}"

    def text(self, e: Event, verdict: str, hops: List[Hop], lost: int) -> str:
        src = f"{e.saddr}:{e.sport}" if e.sport is not None else str(e.saddr)
        dst = f"{e.daddr}:{e.dport}" if e.dport is not None else str(e.daddr)
        flow = f"{e.l4 or e.l3 or '?'} {src} -> {dst}" if e.saddr else f"{e.l3 or '?'}"
        end = verdict_of(verdict, hops)
        why = f" {e.reason}" if end == "dropped" and e.reason else ""
        at = f" at {e.location}" if end == "dropped" else ""
        lines = [f"{iso_time(hops[0].time_ns + self.offset) if hops else e.time}  {flow}  {end}{why}{at}"]
        if lost:
            lines.append(f"  ({lost} earlier hops not kept)")
        first = hops[0].time_ns if hops else 0
        for h in hops:
            delta = (h.time_ns - first) / 1000
            lines.append(f"  +{delta:>10.1f}µs  {h.hook:<24} {self._where(h.ifname, h.netns)}  len {h.len}"
                         f"  cpu {h.cpu}")
        return "\n".join(lines) + "\n\n"

    def json(self, e: Event, verdict: str, hops: List[Hop], lost: int) -> bytes:
        end = verdict_of(verdict, hops)
        return dumps({
            "time": iso_time(hops[0].time_ns + self.offset) if hops else e.time,
            "verdict": end, "reason": e.reason if end == "dropped" else None,
            "location": e.location if end == "dropped" else None,
            "l3": e.l3, "l4": e.l4, "saddr": e.saddr, "daddr": e.daddr, "sport": e.sport, "dport": e.dport,
            "tcp_flags": e.tcp_flags, "len": e.len,
            "hops": [{"time": iso_time(h.time_ns + self.offset), "hook": h.hook, "ifname": h.ifname or None,
                      "ifindex": h.ifindex or None, "netns": h.netns or None, "len": h.len, "cpu": h.cpu}
                     for h in hops],
            "hops_lost": lost})


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="droptrace trail", description=(
        "Show the path each dropped packet took before it was dropped: the tracepoints it passed "
        "(receive, transmit, qdisc, socket...), with the device and namespace of each hop. Tracepoints "
        "only: works where kprobes are unavailable. The filters run once, where a packet is first seen."))
    p.add_argument("--all", action="store_true",
                   help="every tracked packet's trail when it ends (dropped, delivered, transmitted, "
                   "consumed)")
    p.add_argument("--json", action="store_true", help="one JSON object per packet")
    add_run_options(p, "packets")
    add_trace_options(p)
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if args.hook:
        from ..errors import UsageError

        raise UsageError("--hook: trail always uses raw tracepoints (one per networking step)")
    tracer = TrailTracer(options(args), every=args.all)
    names = None
    try:
        from ..enrich import Enricher

        names = Enricher()
    except OSError:
        pass
    sink = TrailWriter(Output.stdout(), tracer, args.json, names)
    shown, lost = trace_loop(tracer, sink, args.count, args.duration)
    if tracer.hook:
        eprint(f"droptrace trail: {shown} packets shown, {lost} lost (ring buffer full)")
    return 0


__all__ = ["main", "TrailWriter", "verdict_of"]
