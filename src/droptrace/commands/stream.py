"""`droptrace` itself: the live stream of drops, as text lines or JSON lines."""
from __future__ import annotations

import argparse
from typing import Sequence

from .. import __version__
from ..features.drops.tracer import DropTracer
from ..formats.jsonl import RawJsonWriter
from ..formats.out import Output
from ..formats.text import TextWriter
from .common import (
    LIVE_OR_READ,
    Parser,
    add_run_options,
    add_stream_options,
    add_trace_options,
    eprint,
    offline_filter,
    open_recording,
    options,
    trace_loop,
)

DESCRIPTION = """\
Show every packet the kernel drops, with the kernel's own reason, where it
was dropped, and the packet decoded from its headers.

PID and COMM are the task that was on the CPU at drop time. Receive-path
drops usually run in softirq context, so that task is often a bystander
(swapper, ksoftirqd, or whichever process the interrupt landed on) rather
than the packet's owner.

Subcommands:
  droptrace lab      build a private lab of namespaces, provoke well-known
                     drops and show how droptrace reports them
  droptrace doctor   what this host supports, and which hook and features
                     droptrace will use (also: droptrace --check)
  droptrace top      a live view of drops counted in the kernel
  droptrace record   record drops to pcapng or JSON lines (-w FILE)
  droptrace report   summarise a recording
  droptrace -r FILE  read a recording back, through the same filters
  droptrace exporter drop counters for Prometheus (/metrics)
  droptrace explain  what a drop reason means and what to check
  droptrace diagnose watch drops, then inspect the host where they happen
  droptrace trail    the path each dropped packet took before it was dropped
"""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="droptrace", description=DESCRIPTION,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"droptrace {__version__}")
    p.add_argument("--json", action="store_true", help="one JSON object per drop on stdout")
    p.add_argument("--stack", action="store_true", help="add the kernel stack of each drop")
    add_run_options(p)
    add_stream_options(p)
    p.add_argument("--explain", action="store_true",
                   help="text: under the first drop of each reason, one indented line saying what it means")
    p.add_argument("--list-reasons", action="store_true",
                   help="list the running kernel's drop reasons and exit (with --json: as JSON)")
    p.add_argument("-r", "--read", metavar="FILE",
                   help="read a recording (pcapng or JSON lines; - for stdin) instead of tracing, and "
                   "show it as the live stream would, through the same filters")
    p.add_argument("--check", action="store_true",
                   help="same as `droptrace doctor`: what this host supports, then exit")
    add_trace_options(p, LIVE_OR_READ)
    return p


def list_reasons(as_json: bool) -> int:
    import os

    from ..event import dumps
    from ..kernel import reasons

    r = reasons.load()
    out = Output.stdout()
    names = sorted(r.all_names().items())
    if as_json:
        out.write(dumps({"kernel": os.uname().release, "source": r.source,
                         "reasons": [{"value": v, "name": n} for v, n in names]}) + b"\n")
        return 0
    lines = [f"# drop reasons of this kernel ({os.uname().release}), read from {r.source}"]
    lines += [f"{value:>10}  {name}" for value, name in names]
    out.write_text("\n".join(lines) + "\n")
    return 0


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if args.check:
        from . import doctor

        return doctor.main(["--json"] if args.json else [])
    if args.list_reasons:
        return list_reasons(args.json)
    if args.explain and args.json:
        from ..errors import UsageError

        raise UsageError("--explain is for the text output; with --json, `droptrace explain --json REASON`")
    if args.read:
        return replay(args)
    tracer = DropTracer(options(args))
    out = Output.stdout()
    if args.json:
        sink = RawJsonWriter(out)
    else:
        sink = TextWriter(out, args.stack, lambda: tracer.reason_width, explain=args.explain)
    shown, lost = trace_loop(tracer, sink, args.count, args.duration)
    if tracer.hook:
        held = f", {tracer.suppressed} suppressed by --rate-limit" if args.rate_limit else ""
        eprint(f"droptrace: {shown} drops shown, {lost} lost (ring buffer full){held}")
    return 0


def replay(args: argparse.Namespace) -> int:
    """`droptrace -r FILE`: a recording through the live filters and outputs, like `tcpdump -r`."""
    from ..errors import UsageError
    from ..formats.jsonl import JsonWriter
    from ..replay import replay as kept

    live_only = [flag for flag, given in (("--hook", args.hook), ("--rate-limit", args.rate_limit),
                                          ("-d", args.duration)) if given]
    if live_only:
        raise UsageError(f"{', '.join(live_only)} cannot be used with -r (they apply to live tracing)")
    keep = offline_filter(args)
    rec = open_recording("/dev/stdin" if args.read == "-" else args.read, keep)
    out = Output.stdout()
    writer = JsonWriter(out, args.stack) if args.json else TextWriter(out, args.stack, explain=args.explain)
    batch = []
    for e in kept(rec, keep, args.count):
        batch.append(e)
        if len(batch) >= 1024:
            writer.write(batch)
            batch = []
    writer.write(batch)
    return 0
