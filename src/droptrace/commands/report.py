"""`droptrace report FILE`: a recording summarised by reason, location, flow,
namespace/interface and over time, as text or JSON."""
from __future__ import annotations

import argparse
from collections import Counter
from typing import Any, Callable, Dict, Iterable, Iterator, List, Sequence, Tuple

import orjson

from ..errors import DroptraceError, UsageError
from ..event import Event, iso_time
from ..formats.out import Output
from ..formats.text import endpoint, proto
from ..replay import replay
from .common import Parser, add_filter_options, eprint, offline_filter, open_recording, positive


def flow(e: Event) -> str:
    return f"{proto(e)} {endpoint(e.saddr, e.sport)} > {endpoint(e.daddr, e.dport)}"


def where(e: Event) -> str:
    return f"{e.ifname or e.ifindex or '-'} (netns {e.netns or '-'})"


GROUPS: Tuple[Tuple[str, str, Callable[[Event], str]], ...] = (
    ("by_reason", "reason", lambda e: e.reason or "-"),
    ("by_location", "location", lambda e: e.location or "-"),
    ("by_flow", "flow", flow),
    ("by_interface", "interface", where),
)


def _bucket_seconds(span: float) -> int:
    for b in (1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400):
        if span / b <= 30:
            return b
    return 86400


def summarise(events: Iterable[Event], top: int = 10, recording: Any = None) -> Dict[str, Any]:
    """Counts by reason, location, flow and interface, and over time; with the recording's own
    summary (drops lost in the kernel while recording) when it has one. Times are the events'
    own, to the microsecond, with their UTC offset."""
    counters = {key: Counter() for key, _, _ in GROUPS}
    stamps: List[Tuple[int, str]] = []  # (time, reason)
    total = 0
    for e in events:
        total += 1
        for key, _, fn in GROUPS:
            counters[key][fn(e)] += 1
        if e.ts_ns:
            stamps.append((e.ts_ns, e.reason or "-"))
    out: Dict[str, Any] = {"total": total}
    for key, label, _ in GROUPS:
        out[key] = [{label: k, "count": n, "share": round(n / total, 4)}
                    for k, n in counters[key].most_common(top)]
    first = min(t for t, _ in stamps) if stamps else None
    last = max(t for t, _ in stamps) if stamps else None
    out["first"] = iso_time(first) if first is not None else None
    out["last"] = iso_time(last) if last is not None else None
    stats = getattr(recording, "summary", None)
    out["lost"] = stats.get("lost") if stats else None
    out["suppressed"] = stats.get("suppressed") if stats else None
    out["bucket_seconds"] = None
    out["over_time"] = []
    if first is not None:
        size = _bucket_seconds((last - first) / 1e9)
        step = size * 1_000_000_000
        start = first - first % step  # buckets on whole multiples of their size: labels say what they hold
        buckets: Dict[int, Counter] = {}
        for t, reason in stamps:
            buckets.setdefault((t - start) // step, Counter())[reason] += 1
        out["bucket_seconds"] = size
        out["over_time"] = [{"start": iso_time(start + i * step), "count": sum(buckets.get(i, {}).values()),
                             "by_reason": dict(buckets.get(i, Counter()).most_common())}
                            for i in range((last - start) // step + 1)]
    return out


def stack_path(e: Event) -> Tuple[str, ...]:
    """A drop's stack outermost frame first, with its reason as the leaf (empty: no stack)."""
    if not e.stack:
        return ()
    return (*reversed(e.stack), f"[{e.reason or 'no reason'}]")


def counting_stacks(events: Iterable[Event], stacks: Counter) -> Iterator[Event]:
    """events, unchanged, counting each one's stack_path() into stacks on the way."""
    for e in events:
        path = stack_path(e)
        stacks[path] += 1
        yield e


def folded(events: Iterable[Event]) -> Tuple[List[str], int]:
    """Folded stacks for flamegraph.pl, speedscope or inferno: `frame;frame;... count`, the
    outermost frame first and the drop reason as the leaf, most frequent first; and how many
    events had no stack. Frames are `func+0xoff` as recorded: one line per call site."""
    stacks: Counter = Counter()
    for _ in counting_stacks(events, stacks):
        pass
    missing = stacks.pop((), 0)
    lines = {";".join(f.replace(";", ":").replace(" ", "_") for f in path): n for path, n in stacks.items()}
    return [f"{k} {n}" for k, n in sorted(lines.items(), key=lambda kv: (-kv[1], kv[0]))], missing


def text(summary: Dict[str, Any], path: str) -> str:
    lines = [f"{path}: {summary['total']} drops"
             + (f", {summary['first']} .. {summary['last']}" if summary["first"] else "")]
    if summary.get("lost"):
        lines.append(f"  and {summary['lost']} more drops lost while recording (ring buffer full): "
                     "counts below are of what was recorded")
    if summary.get("suppressed"):
        lines.append(f"  and {summary['suppressed']} held back by --rate-limit")
    for key, label, _ in GROUPS:
        rows = summary[key]
        if not rows:
            continue
        lines.append(f"\nby {label}:")
        for r in rows:
            lines.append(f"  {r['count']:>8}  {r['share'] * 100:5.1f}%  {r[label]}")
    if summary["over_time"]:
        lines.append(f"\nover time ({summary['bucket_seconds']} s buckets):")
        peak = max(b["count"] for b in summary["over_time"]) or 1
        for b in summary["over_time"]:
            bar = "#" * max(1 if b["count"] else 0, round(40 * b["count"] / peak))
            lines.append(f"  {b['start'][11:19]}  {b['count']:>8}  {bar}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    p = Parser(prog="droptrace report", description="Summarise a droptrace recording "
               "(pcapng written by droptrace, or JSON lines) by reason, location, flow, "
               "namespace/interface and over time, after the same filters as the live stream.")
    p.add_argument("file", help="the recording (- for stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument("--top", type=positive("--top"), default=10, help="rows per table (default 10)")
    p.add_argument("--html", metavar="OUT.html",
                   help="also write the report as one self-contained page: drops over time by reason, "
                   "the tables with each reason's explanation, and the drop stacks of a --stack "
                   "recording as a flame graph (needs plotly)")
    p.add_argument("--folded", action="store_true",
                   help="instead: the drops' kernel stacks folded, one `frame;frame;... count` line per "
                   "stack with the reason as its leaf, for flamegraph.pl, speedscope or inferno (record "
                   "with --stack)")
    add_filter_options(p, "to the recording")
    args: argparse.Namespace = p.parse_intermixed_args(list(argv))  # FILE, flags, then EXPRESSION
    if args.folded and (args.json or args.html):
        raise UsageError("--folded is a report of its own: not with --json or --html")
    if args.html:
        import os

        from ..formats import html

        if args.file != "-" and os.path.exists(args.html) and os.path.exists(args.file) \
                and os.path.samefile(args.html, args.file):
            raise UsageError(f"--html and the recording are the same file ({args.file}): write to "
                             "another one")
        html.require()  # before reading the whole recording
    keep = offline_filter(args)
    rec = open_recording("/dev/stdin" if args.file == "-" else args.file, keep)
    out = Output.stdout()
    if args.folded:
        lines, missing = folded(replay(rec, keep))
        if not lines and missing:
            raise DroptraceError(f"{args.file}: its {missing} drops have no stacks: record with --stack")
        if missing:
            eprint(f"droptrace: {missing} drops without a stack left out")
        out.write_text("".join(f"{ln}\n" for ln in lines))
        return 0
    stacks: Counter = Counter()
    summary = summarise(counting_stacks(replay(rec, keep), stacks), args.top, rec)
    if args.html:
        stacks.pop((), None)
        with Output.open(args.html) as f:
            f.write_text(html.page(summary, dict(stacks), args.file))
        eprint(f"droptrace: report written to {args.html}")
    if args.json:
        out.write(orjson.dumps(summary) + b"\n")
    else:
        out.write_text(text(summary, args.file) + "\n")
    return 0
