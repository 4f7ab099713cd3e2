"""`droptrace top`: a live view of drops counted in the kernel.

The BPF program adds each drop to a hash map keyed by reason, location,
namespace, interface and (when a view may need it) flow, folding flows into a
flow-less key if the map fills, so counts stay exact; user space only reads
the map once per refresh and groups it by what the view shows. No per-drop
event crosses to user space.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import time
from collections import deque
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

from ..convert import describe_aggregate
from ..event import dumps
from ..features.counts.tracer import CountTracer
from ..formats.out import Output
from ..formats.text import endpoint
from .common import Parser, add_trace_options, announce, eprint, options, seconds, stop_requested

GROUPS = {"reason": ("REASON",), "location": ("LOCATION",), "iface": ("IFACE", "NETNS"),
          "flow": ("PROTO", "SOURCE", "DESTINATION")}
# The --json row fields of each grouping.
GROUP_FIELDS = {"reason": ("reason",), "location": ("location",), "iface": ("ifname", "netns"),
                "flow": ("reason", "location", "netns", "ifname", "l3", "l4", "saddr", "sport", "daddr",
                         "dport")}
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

    def __init__(self, reason_name, symbolize, flow_bits: Dict[str, int]) -> None:
        self.reason_name = reason_name
        self.symbolize = symbolize
        self.addrs_bit, self.ports_bit = flow_bits["DT_FLOW_ADDRS"], flow_bits["DT_FLOW_PORTS"]
        self.rows: Dict[str, Dict[tuple, Row]] = {g: {} for g in GROUPS}
        self.described: List[Tuple[Dict[str, object], int, int]] = []  # the last read, per kernel key
        self.total = 0

    def describe(self, key: Dict[str, Any], ifname: str) -> Dict[str, object]:
        return describe_aggregate(key, ifname, self.reason_name, self.symbolize, self.addrs_bit,
                                  self.ports_bit)

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

    @staticmethod
    def json_key(group: str, d: Dict[str, object]) -> tuple:
        return tuple(d[f] for f in GROUP_FIELDS[group])

    def update(self, entries: List[Tuple[Dict[str, Any], int, int, str]], dt: float) -> None:
        fresh: Dict[str, Dict[tuple, List[Any]]] = {g: {} for g in GROUPS}
        total = 0
        self.described = []
        for key, count, nbytes, ifname in entries:
            d = self.describe(key, ifname)
            self.described.append((d, count, nbytes))
            total += count
            for g in GROUPS:
                acc = fresh[g].setdefault(self.group_key(g, d), [0, 0, d])
                acc[0] += count
                acc[1] += nbytes
        self.total = total
        for g, groups in fresh.items():
            rows = self.rows[g]
            for gk, (count, nbytes, d) in groups.items():
                row = rows.get(gk) or rows.setdefault(gk, Row(d))
                row.rates.append(max(0, count - row.count) / dt if dt > 0 else 0.0)
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


def render(agg: Aggregator, group: str, lost: int, elapsed: float, interactive: bool, width: int,
           height: Optional[int] = None, explain: bool = False):
    """The view for a terminal `width` wide: columns are dropped (trend, then share, then rate),
    and names shortened, before any number would be cut."""
    from rich.cells import cell_len
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = f"droptrace top: {agg.total:,} drops, {lost:,} lost, {int(elapsed)} s, grouped by {group}"
    rows = agg.sorted_rows(group)
    limit = max(1, (height - 6)) if height else 40
    cells = []
    for gk, row in rows[:limit]:
        rate = row.rates[-1] if row.rates else 0.0
        share = row.count / agg.total * 100 if agg.total else 0.0
        cells.append({"RATE/s": f"{rate:,.1f}", "COUNT": f"{row.count:,}", "SHARE": f"{share:.1f}%",
                      "TREND": trend(row.rates), "labels": [str(x) for x in gk]})
    numbers = ["COUNT", "RATE/s", "SHARE", "TREND"]  # in the order they are kept
    labels = GROUPS[group]
    # Every column takes its content plus a space either side (padding (0, 1), no box). Rich,
    # given more than fits, narrows every column alike, digits included: so the widths are
    # chosen here to fit, numbers whole, and only names are shortened (NETNS is a number).
    num_w = {c: max([cell_len(c)] + [cell_len(r[c]) for r in cells]) for c in numbers}
    want = [max([cell_len(col)] + [cell_len(r["labels"][i]) for r in cells]) for i, col in enumerate(labels)]
    least = [w if col == "NETNS" else min(w, 8) for col, w in zip(labels, want)]  # names: down to 8

    def need(cols: List[str]) -> int:
        return sum(num_w[c] + 2 for c in cols) + sum(w + 2 for w in least)

    shown = list(numbers)
    while len(shown) > 1 and need(shown) > width:
        shown.pop()
    # The label columns share what is left: NETNS first, then the narrowest first, so what a
    # short name does not use goes to the longer ones.
    left = width - sum(num_w[c] + 2 for c in shown) - 2 * len(labels)
    label_w = list(want)
    order = sorted(range(len(labels)), key=lambda i: (labels[i] != "NETNS", want[i]))
    for n, i in enumerate(order):
        rest = len(order) - n  # columns still to place, this one included: each gets 1 at least
        label_w[i] = max(1, min(want[i], left - (rest - 1) if labels[i] == "NETNS" else left // rest))
        left -= label_w[i]
    t = Table(box=None, padding=(0, 1), show_edge=False)
    for col in [c for c in ("RATE/s", "COUNT", "SHARE", "TREND") if c in shown]:
        t.add_column(col, justify="left" if col == "TREND" else "right", no_wrap=True, width=num_w[col])
    for col, w in zip(labels, label_w):
        t.add_column(col, no_wrap=True, overflow="ellipsis", width=w)
    for r in cells:
        t.add_row(*[r[c] for c in ("RATE/s", "COUNT", "SHARE", "TREND") if c in shown], *r["labels"])
    parts: List[Any] = [Text(title, no_wrap=True, overflow="ellipsis"), t]
    if explain:
        parts.append(Text("\n".join(legend(agg, group, rows[:limit])), overflow="ellipsis", no_wrap=True))
    if interactive:
        parts.append(Text("[r]eason  [l]ocation  [i]face+netns  [f]low  [e]xplain  [q]uit", no_wrap=True,
                          overflow="ellipsis"))
    return Group(*parts)


def legend(agg: Aggregator, group: str, rows: List[Tuple[tuple, "Row"]]) -> List[str]:
    """The one-line summary of each reason behind the rows shown, once each."""
    from ..explain import summary

    shown = {gk for gk, _ in rows}
    reasons: List[str] = []
    for d, _, _ in agg.described:  # the kernel's keys: a row may gather several reasons
        r = d.get("reason")
        if isinstance(r, str) and r not in reasons and agg.group_key(group, d) in shown:
            reasons.append(r)
    return [f"{r}: {summary(r) or '(no explanation written yet)'}" for r in reasons]


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


def summary(agg: Aggregator, tracer: CountTracer, group: str, duration: float) -> Dict[str, object]:
    """The --json object: one row per group, as --group asked."""
    merged: Dict[tuple, List[Any]] = {}
    for fields, count, nbytes in agg.described:  # from the kernel's keys: every field exact
        acc = merged.setdefault(agg.json_key(group, fields), [0, 0, fields])
        acc[0] += count
        acc[1] += nbytes
    rows = []
    for count, nbytes, fields in sorted(merged.values(), key=lambda r: r[0], reverse=True):
        d = {k: fields.get(k) for k in GROUP_FIELDS[group]}
        d.update(count=count, bytes=nbytes, share=round(count / agg.total, 4) if agg.total else 0.0,
                 rate=round(count / duration, 2) if duration > 0 else 0.0)
        rows.append(d)
    return {"total": agg.total, "lost": tracer.counters()[1] + tracer.stat("DT_STAT_AGG_LOST"),
            "folded": tracer.stat("DT_STAT_AGG_FOLDED"), "duration": round(duration, 3),
            "group": group, "rows": rows}


def run(args: argparse.Namespace, tracer: CountTracer) -> int:
    from rich.console import Console
    from rich.live import Live

    group = args.group
    explain = args.explain
    interactive = sys.stdout.isatty() and sys.stdin.isatty() and not args.json
    started = time.monotonic()
    agg: Optional[Aggregator] = None
    with stop_requested() as stop:
        try:
            tracer.start()
            # Everything the final summary needs exists before we say we are tracing.
            agg = Aggregator(tracer.reason_name, tracer.symbolize, tracer.contract.const)
            started = last = time.monotonic()
            announce(tracer, "counting in the kernel", "q or Ctrl-C" if interactive else "Ctrl-C")
            deadline = started + args.duration if args.duration else None
            console = Console()
            live = Live(console=console, auto_refresh=False) if interactive else contextlib.nullcontext()
            with live, keys(interactive) as fd:
                while not stop:
                    now = time.monotonic()
                    wait = args.interval if deadline is None else max(0.0, min(args.interval, deadline - now))
                    if fd is not None:
                        try:
                            ready, _, _ = select.select([fd], [], [], wait)
                        except InterruptedError:
                            ready = []
                        if ready:
                            ch = os.read(fd, 1).decode(errors="ignore").lower()
                            if ch == "q":
                                break
                            if ch == "e":
                                explain = not explain
                            group = KEYS.get(ch, group)
                    else:
                        _sleep(wait, stop)
                    now = time.monotonic()
                    agg.update(tracer.aggregates(), now - last)
                    last = now
                    if interactive:
                        size = console.size
                        live.update(render(agg, group, tracer.stat("DT_STAT_AGG_LOST"), now - started,
                                           True, size.width, size.height, explain), refresh=True)
                    if deadline is not None and now >= deadline:
                        break
        finally:
            if agg is not None and tracer.hook:
                agg.update(tracer.aggregates(), max(time.monotonic() - last, 1e-6))
                out = summary(agg, tracer, args.group, time.monotonic() - started)
                if args.json:
                    Output.stdout().write(dumps(out) + b"\n")
                elif not interactive:
                    console = Console(width=200, file=sys.stdout)
                    with console.capture() as cap:
                        console.print(render(agg, group, out["lost"], time.monotonic() - started, False,
                                             200, explain=args.explain))
                    Output.stdout().write_text(cap.get())
            tracer.close()
    return 0


def _sleep(seconds_: float, stop) -> None:
    """Sleep, waking early when a stop is requested (signals interrupt the wait)."""
    end = time.monotonic() + seconds_
    while not stop:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def main(argv: Sequence[str]) -> int:
    p = Parser(prog="droptrace top", description=(
        "A live view of packet drops counted in the kernel (exact at any drop rate): count, "
        "rate, share and trend per reason, location, interface+namespace or flow, sorted by "
        "rate. Keys: r l i f to regroup, e to explain the reasons, q to quit. With --json, one JSON "
        "object when it ends, with a row per group of --group."))
    p.add_argument("--group", choices=list(GROUPS), default="reason", help="grouping (the initial "
                   "one in the live view; the rows of --json)")
    p.add_argument("-d", "--duration", type=seconds, metavar="SECONDS", help="stop after SECONDS")
    p.add_argument("--interval", type=seconds, default=1.0, metavar="SECONDS",
                   help="refresh interval (default 1)")
    p.add_argument("--json", action="store_true",
                   help='print {"total", "lost", "folded", "duration", "group", "rows": [...]} when it ends')
    p.add_argument("--explain", action="store_true",
                   help="under the table, what each reason shown means (key e in the live view)")
    add_trace_options(p)
    args = p.parse_args(list(argv))
    opts = options(args)
    # Flows cost a header parse per drop: count them only when a view can show them.
    interactive = sys.stdout.isatty() and sys.stdin.isatty() and not args.json
    opts.agg_flows = interactive or args.group == "flow"
    return run(args, CountTracer(opts))


__all__ = ["main", "render", "summary", "Aggregator", "eprint"]
