"""`droptrace trail`: the path each dropped packet took through the kernel, from tracepoints.

By default only packets that end dropped are shown (the kernel discards the others' trails);
with --all, every tracked packet's trail when it ends: dropped, delivered to a socket,
transmitted, or consumed.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from ...commands.common import Parser, add_run_options, add_trace_options, eprint, options, trace_loop
from ...errors import UsageError
from ...formats.out import Output
from ...kernel.skb_functions import parse_globs
from .functions import METHODS
from .output import TrailWriter
from .tracer import TrailTracer


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="droptrace trail", description=(
        "Show the path each dropped packet took before it was dropped: the tracepoints it passed "
        "(receive, transmit, qdisc, socket...), with the device and namespace of each hop. From "
        "tracepoints, so it works where kprobes are unavailable; with --functions, kernel functions "
        "too. --netns and -i select the packets that pass through "
        "that namespace or device at any hop (one hop in both, given both), --reason those that end "
        "dropped with that reason; a selected packet's trail is shown whole, from where droptrace first "
        "saw it. The expression and --mark match the packet as first seen (received, queued to a "
        "device, or dropped): under NAT, with the addresses it had there. Where NAT or a tunnel "
        "changes a followed packet's headers (addresses, protocol, ports; after encapsulation the "
        "outer ones), the hop where they changed shows the new ones ('headers now ...') and the "
        "trail the ones it was first seen with ('first seen as ...'; in --json each hop's "
        "`headers` and the trail's `first_headers`)."))
    p.add_argument("--all", action="store_true",
                   help="every tracked packet's trail when it ends (dropped, delivered, transmitted, "
                   "consumed)")
    p.add_argument("--json", action="store_true", help="one JSON object per packet")
    p.add_argument("--functions", nargs="?", const="", action="append", metavar="GLOB,...",
                   help="also a hop per call of each kernel function that takes the skb (found in the "
                   "kernel's BTF), with the caller where known: kprobe-multi, else fentry, else one kprobe "
                   "each; narrow with globs, e.g. --functions='ip_*,nf_*' (with '=', or before the "
                   "expression). Clones and copies of a followed skb (skb_clone, skb_copy, pskb_copy, GSO "
                   "segments) are followed too, their trail going on from the original's (by kprobe-multi or "
                   "kprobes). Where no function hook works, one line says so and trail exits 1")
    p.add_argument("--function-hook", choices=METHODS,
                   help="with --functions: this method only, instead of the first that works")
    p.add_argument("--returns", action="store_true",
                   help="with --functions: each function's return value in its hop, a negative errno "
                   "by name (-EPERM), so a packet that vanished shows the function that said no "
                   "(kretprobes: kprobe-multi or one each)")
    add_run_options(p, "packets")
    add_trace_options(p, hook=False, pid=False)
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    globs = None if args.functions is None else parse_globs(args.functions)
    if args.function_hook and globs is None:
        raise UsageError("--function-hook chooses how --functions hooks them: give --functions too")
    tracer = TrailTracer(options(args), every=args.all, functions=globs, returns=args.returns,
                         function_hook=args.function_hook)
    names = None
    try:
        from ...enrich import Enricher

        names = Enricher()
    except OSError:
        pass
    sink = TrailWriter(Output.stdout(), tracer, args.json, names)
    shown, lost = trace_loop(tracer, sink, args.count, args.duration)
    if tracer.hook:
        eprint(f"droptrace trail: {shown} packets shown, {lost} lost (ring buffer full)")
    return 0


__all__ = ["main", "build_parser"]
