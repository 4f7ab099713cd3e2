"""`droptrace top`: a live view of drops counted in the kernel.

The BPF program adds each drop to a hash map keyed by reason, location,
namespace, interface and flow (folding flows into a flow-less key if the map
fills, so counts stay exact); user space only reads the map once per refresh
and groups it by what the view shows. No per-drop event crosses to user space.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import sys
import time
from collections import defaultdict, deque
from typing import Deque, Dict, Iterator, List, Optional, Sequence, Tuple

import orjson

from .decode import ETHERTYPES, IPPROTOS
from .output import endpoint
from .tracer import STAT_AGG_LOST, Tracer

GROUPS = {"reason": ("REASON",), "location": ("LOCATION",), "iface": ("IFACE", "NETNS"),
          "flow": ("PROTO", "SOURCE", "DESTINATION")}
KEYS = {"r": "reason", "l": "location", "i": "iface", "f": "flow"}
SPARK = "▁▂▃▄▅▆▇█"


class Row:
    __slots__ = ("count", "nbytes", "rates", "fields")

    def __init__(self, fields: Dict[str, object]) -> None:
        self.count = 0
        self.nbytes = 0
        self.rates: Deque[float] = deque(maxlen=12)
        self.fields = fields


class Aggregator:
    """Turns the kernel's per-key counts into grouped rows with rates and trends."""

    def __init__(self, reason_name, symbolize) -> None:
        self.reason_name = reason_name
        self.symbolize = symbolize
        self.rows: Dict[str, Dict[tuple, Row]] = {g: {} for g in GROUPS}
        self.detail: Dict[tuple, Row] = {}
        self.total = 0

    def describe(self, key: tuple, ifname: str) -> Dict[str, object]:
        (location, reason, netns, ifindex, l3proto, l4proto, has_flow, saddr, daddr, sport, dport,
         _pad) = key
        d: Dict[str, object] = {"reason": self.reason_name(reason), "location": self.symbolize(location),
                                "netns": netns or None, "ifname": ifname or None,
                                "ifindex": ifindex or None}
        l3 = ETHERTYPES.get(l3proto, f"0x{l3proto:04x}") if l3proto else None
        d.update(l3=l3, l4=None, saddr=None, daddr=None, sport=None, dport=None)
        if has_flow and l3 in ("ipv4", "ipv6"):
            fam, n = (socket.AF_INET, 4) if l3 == "ipv4" else (socket.AF_INET6, 16)
            d.update(l4=IPPROTOS.get(l4proto, l4proto), saddr=socket.inet_ntop(fam, saddr[:n]),
                     daddr=socket.inet_ntop(fam, daddr[:n]))
            if l4proto in (6, 17, 132, 136):
                d.update(sport=sport, dport=dport)
        return d

    @staticmethod
    def group_key(group: str, d: Dict[str, object]) -> tuple:
        if group == "reason":
            return (d["reason"],)
        if group == "location":
            return (d["location"],)
        if group == "iface":
            return (d["ifname"] or d["ifindex"] or "-", d["netns"] or "-")
        if d["l4"] is None:
            return (str(d["l3"] or "?").upper(), "(no flow)", "")
        return (str(d["l4"]).upper(), endpoint(d["saddr"], d["sport"]), endpoint(d["daddr"], d["dport"]))

    def update(self, entries: List[Tuple[tuple, int, int, str]], dt: float) -> None:
        fresh: Dict[str, Dict[tuple, List[int]]] = {g: defaultdict(lambda: [0, 0]) for g in GROUPS}
        detail: Dict[tuple, List] = {}
        total = 0
        for key, count, nbytes, ifname in entries:
            d = self.describe(key, ifname)
            total += count
            dk = (d["reason"], d["location"], d["netns"], d["ifname"])
            cur = detail.setdefault(dk, [0, 0, d])
            cur[0] += count
            cur[1] += nbytes
            for g in GROUPS:
                acc = fresh[g][self.group_key(g, d)]
                acc[0] += count
                acc[1] += nbytes
        self.total = total
        for g, groups in fresh.items():
            rows = self.rows[g]
            for gk, (count, nbytes) in groups.items():
                row = rows.get(gk) or rows.setdefault(gk, Row({}))
                row.rates.append(max(0, count - row.count) / dt if dt > 0 else 0.0)
                row.count, row.nbytes = count, nbytes
        for dk, (count, nbytes, d) in detail.items():
            row = self.detail.get(dk) or self.detail.setdefault(dk, Row(d))
            row.count, row.nbytes = count, nbytes

    def sorted_rows(self, group: str) -> List[Tuple[tuple, Row]]:
        return sorted(self.rows[group].items(),
                      key=lambda kv: ((kv[1].rates[-1] if kv[1].rates else 0), kv[1].count),
                      reverse=True)


def trend(rates: Sequence[float]) -> str:
    if not rates:
        return ""
    peak = max(rates) or 1.0
    return "".join(SPARK[min(7, int(r / peak * 7.999))] for r in rates)


def render(agg: Aggregator, group: str, lost: int, elapsed: float, interactive: bool):
    from rich.table import Table

    title = (f"droptrace top: {agg.total:,} drops, {lost:,} lost, {int(elapsed)} s, grouped by {group}")
    caption = (r"\[r]eason  \[l]ocation  \[i]face+netns  \[f]low  \[q]uit") if interactive else None
    t = Table(title=title, caption=caption, expand=False, title_justify="left")
    for col in ("RATE/s", "COUNT", "SHARE"):
        t.add_column(col, justify="right")
    t.add_column("TREND")
    for col in GROUPS[group]:
        t.add_column(col)
    for gk, row in agg.sorted_rows(group)[:40]:
        rate = row.rates[-1] if row.rates else 0.0
        share = row.count / agg.total * 100 if agg.total else 0.0
        t.add_row(f"{rate:,.1f}", f"{row.count:,}", f"{share:.1f}%", trend(row.rates),
                  *[str(x) for x in gk])
    return t


@contextlib.contextmanager
def keys(enabled: bool) -> Iterator[Optional[int]]:
    """stdin in cbreak mode (single key presses) while the view runs, if it is a terminal."""
    if not enabled:
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def summary(agg: Aggregator, tracer: Tracer, duration: float,
            flows: Optional[List[Row]] = None) -> Dict[str, object]:
    """The --json object: rows per reason, location, netns and interface (and flow)."""
    rows = []
    source = flows if flows is not None else [row for row in agg.detail.values()]
    for row in sorted(source, key=lambda r: r.count, reverse=True):
        d = {k: row.fields.get(k) for k in ("reason", "location", "netns", "ifname")}
        if flows:
            d.update({k: row.fields.get(k) for k in ("l3", "l4", "saddr", "sport", "daddr", "dport")})
        d.update(count=row.count, bytes=row.nbytes,
                 share=round(row.count / agg.total, 4) if agg.total else 0.0,
                 rate=round(row.count / duration, 2) if duration > 0 else 0.0)
        rows.append(d)
    return {"total": agg.total, "lost": tracer.counters()[1] + tracer.stat(STAT_AGG_LOST),
            "duration": round(duration, 3), "rows": rows}


def run(args: argparse.Namespace, tracer: Tracer) -> int:
    from rich.console import Console
    from rich.live import Live

    from .cli import eprint, stop_on_sigterm

    group = args.group
    interactive = sys.stdout.isatty() and sys.stdin.isatty() and not args.json
    started = time.monotonic()
    agg: Optional[Aggregator] = None
    with stop_on_sigterm():
        try:
            tracer.start()
            # Everything the final summary needs exists before we say we are tracing.
            agg = Aggregator(tracer.reason_name, tracer.symbolize)
            started = last = time.monotonic()
            eprint(f"Tracing packet drops via {tracer.hook}, counting in the kernel. "
                   f"{'q' if interactive else 'Ctrl-C'} to end.")
            deadline = started + args.duration if args.duration else None
            console = Console()
            live = Live(console=console, auto_refresh=False) if interactive else contextlib.nullcontext()
            with live, keys(interactive) as fd:
                while True:
                    now = time.monotonic()
                    wait = args.interval if deadline is None else max(0.0, min(args.interval, deadline - now))
                    if fd is not None:
                        ready, _, _ = select.select([fd], [], [], wait)
                        if ready:
                            ch = os.read(fd, 1).decode(errors="ignore").lower()
                            if ch == "q":
                                break
                            group = KEYS.get(ch, group)
                    else:
                        time.sleep(wait)
                    now = time.monotonic()
                    agg.update(tracer.aggregates(), now - last)
                    last = now
                    if interactive:
                        live.update(render(agg, group, tracer.stat(STAT_AGG_LOST), now - started,
                                           True), refresh=True)
                    if deadline is not None and now >= deadline:
                        break
        except KeyboardInterrupt:
            pass
        finally:
            if agg is not None and tracer.hook:
                with contextlib.suppress(KeyboardInterrupt):
                    agg.update(tracer.aggregates(), max(time.monotonic() - last, 1e-6))
                    flows = _flows(agg, tracer) if args.group == "flow" else None
                    out = summary(agg, tracer, time.monotonic() - started, flows)
                    if args.json:
                        sys.stdout.write(orjson.dumps(out).decode() + "\n")
                    elif not interactive:
                        Console(width=200).print(render(agg, group, out["lost"],
                                                        time.monotonic() - started, False))
            tracer.close()
    return 0


def _flows(agg: Aggregator, tracer: Tracer) -> List[Row]:
    rows: Dict[tuple, Row] = {}
    for key, count, nbytes, ifname in tracer.aggregates():
        d = agg.describe(key, ifname)
        k = (d["reason"], d["location"], d["netns"], d["ifname"], d["l4"], d["saddr"], d["sport"],
             d["daddr"], d["dport"])
        row = rows.get(k) or rows.setdefault(k, Row(d))
        row.count += count
        row.nbytes += nbytes
    return list(rows.values())


def main(argv: Sequence[str]) -> int:
    from .cli import _Parser, add_trace_options, options, seconds

    p = _Parser(prog="droptrace top", description=(
        "A live view of packet drops counted in the kernel (exact at any drop rate): count, "
        "rate, share and trend per reason, location, interface+namespace or flow, sorted by "
        "rate. Keys: r l i f to regroup, q to quit. With --json, one JSON object when it ends."))
    p.add_argument("--group", choices=list(GROUPS), default="reason", help="initial grouping")
    p.add_argument("-d", "--duration", type=seconds, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--interval", type=seconds, default=1.0, metavar="SECONDS",
                   help="refresh interval (default 1)")
    p.add_argument("--json", action="store_true",
                   help='print {"total", "lost", "duration", "rows": [...]} when it ends')
    add_trace_options(p)
    args = p.parse_args(list(argv))
    opts = options(args)
    opts.aggregate = True
    return run(args, Tracer(opts))
