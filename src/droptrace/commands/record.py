"""`droptrace record -w FILE`: drops to pcapng or JSON lines, with what was lost."""
from __future__ import annotations

import argparse
from typing import Iterator, Sequence

from ..event import Event
from ..features.drops.tracer import DropTracer
from ..formats.recording import FORMATS, Recorder, format_for
from ..options import DEFAULT_RECORD_RING_MB, DEFAULT_SNAPLEN, snap_length
from .common import (
    LIVE_OR_READ,
    Parser,
    add_run_options,
    add_stream_options,
    add_trace_options,
    arg,
    eprint,
    offline_filter,
    open_recording,
    options,
    trace_loop,
)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="droptrace record", description=(
        "Record dropped packets to a file: pcapng (Wireshark, tshark) with the reason, location, "
        "namespace, interface and task of each drop in packet comments, or JSON lines (the "
        "--json objects). The file is opened only once tracing is attached (a failed start leaves "
        "an existing file alone), written in whole blocks, and ends with a summary of what was "
        "written and lost; a killed run leaves it readable up to the last whole drop."))
    p.add_argument("-w", "--write", required=True, metavar="FILE",
                   help="the recording (.pcapng or .jsonl); - for stdout")
    p.add_argument("-r", "--read", metavar="IN",
                   help="instead of tracing, filter and convert a recording (pcapng or JSON lines) "
                   "into FILE, keeping every field it has")
    p.add_argument("--format", choices=FORMATS, help="file format (default: from the extension; "
                   "pcapng for stdout)")
    p.add_argument("--snaplen", type=arg(snap_length), metavar="BYTES",
                   help=f"bytes of each packet to keep, from its first header (default "
                   f"{DEFAULT_SNAPLEN}: headers). Filters and decoding always see the headers")
    p.add_argument("--payload", action="store_true",
                   help="keep the payload too, up to a full Ethernet frame, from the skb's linear data")
    p.add_argument("--stack", action="store_true", help="add the kernel stack to each drop")
    add_run_options(p)
    add_stream_options(p, DEFAULT_RECORD_RING_MB)
    add_trace_options(p, LIVE_OR_READ)
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if args.read:
        return rewrite(args)
    opts = options(args)
    fmt = format_for(args.write, args.format)
    snaplen = opts.snaplen if opts.snaplen is not None else (None if opts.payload else DEFAULT_SNAPLEN)
    tracer = DropTracer(opts)
    rec = Recorder(args.write, fmt, args.stack, snaplen)
    try:
        shown, lost = trace_loop(tracer, rec, args.count, args.duration, on_attached=rec.open)
        summary = {"written": shown, "lost": lost}
        if args.rate_limit:
            summary["suppressed"] = tracer.suppressed
        rec.finish(summary)
    finally:
        rec.close()
    held = f", {tracer.suppressed} suppressed by --rate-limit" if args.rate_limit else ""
    eprint(f"droptrace: {shown - rec.skipped} drops written to {rec.name} ({fmt}), {lost} lost (ring "
           f"buffer full){held}")
    _say_what_the_format_lost(rec)
    return 0


def _say_what_the_format_lost(rec: Recorder) -> None:
    if rec.lost_in_format:
        eprint(f"droptrace: note: {rec.lost_in_format}")


def with_rebuilt_headers(events: Iterator[Event]) -> Iterator[Event]:
    """JSON lines' events with the IP packets their fields describe (packet/synth.py)."""
    from ..packet.synth import headers

    for e in events:
        if not e.packet:
            e.packet, e.link_ethernet = headers(e), False
        yield e


def rewrite(args: argparse.Namespace) -> int:
    """`record -r IN -w OUT`: a recording through the filters, into either format."""
    import os

    from ..errors import UsageError
    from ..replay import replay

    live_only = [flag for flag, given in (("--hook", args.hook), ("--rate-limit", args.rate_limit),
                                          ("-d", args.duration), ("--payload", args.payload),
                                          ("--stack", args.stack)) if given]
    if live_only:
        raise UsageError(f"{', '.join(live_only)} cannot be used with -r (they apply to live tracing)")
    if args.write != "-" and os.path.exists(args.write) and os.path.exists(args.read) \
            and os.path.samefile(args.write, args.read):
        raise UsageError(f"-r and -w name the same file ({args.write}): write to another one")
    keep = offline_filter(args)
    rec = open_recording(args.read, keep)
    fmt = format_for(args.write, args.format)
    out = Recorder(args.write, fmt, None, args.snaplen)
    events = replay(rec, keep, args.count)
    if rec.format == "jsonl" and fmt != "jsonl":
        eprint(f"droptrace: note: {args.read} keeps no packet bytes: the packets written are rebuilt from "
               "each drop's fields (addresses, protocol, ports, TCP flags, ICMP type); TTL, IDs, sequence "
               "numbers and payload are zero")
        events = with_rebuilt_headers(events)
    n = 0
    try:
        out.open()
        batch = []
        for e in events:
            batch.append(e)
            if len(batch) >= 1024:
                out.write(batch)
                n += len(batch)
                batch = []
        out.write(batch)
        n += len(batch)
        summary = dict(rec.summary or {})
        summary["written"] = n
        out.finish(summary)
    finally:
        out.close()
    eprint(f"droptrace: {n - out.skipped} drops written to {out.name} ({fmt}) from {args.read}")
    _say_what_the_format_lost(out)
    return 0
