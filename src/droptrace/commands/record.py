"""`droptrace record -w FILE`: drops to pcapng or JSON lines, with what was lost."""
from __future__ import annotations

import argparse
from typing import Sequence

from ..formats.recording import FORMATS, Recorder, format_for
from ..kernel.tracer import Tracer
from ..options import DEFAULT_SNAPLEN, snap_length
from .common import (
    Parser,
    add_run_options,
    add_stream_options,
    add_trace_options,
    arg,
    eprint,
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
    p.add_argument("--format", choices=FORMATS, help="file format (default: from the extension; "
                   "pcapng for stdout)")
    p.add_argument("--snaplen", type=arg(snap_length), metavar="BYTES",
                   help=f"bytes of each packet to keep, from its first header (default "
                   f"{DEFAULT_SNAPLEN}: headers). Filters and decoding always see the headers")
    p.add_argument("--payload", action="store_true",
                   help="keep the payload too, up to a full Ethernet frame, from the skb's linear data")
    p.add_argument("--stack", action="store_true", help="add the kernel stack to each drop")
    add_run_options(p)
    add_stream_options(p)
    add_trace_options(p)
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    opts = options(args)
    fmt = format_for(args.write, args.format)
    snaplen = opts.snaplen if opts.snaplen is not None else (None if opts.payload else DEFAULT_SNAPLEN)
    tracer = Tracer(opts)
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
    eprint(f"droptrace: {shown} drops written to {rec.name} ({fmt}), {lost} lost (ring buffer full){held}")
    return 0
