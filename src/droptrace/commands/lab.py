"""`droptrace lab`: a guided tour of real drops in a private lab of namespaces.

The lab (lab/netlab.py) and its scenarios (lab/scenarios.py) are shared with
the end-to-end tests; this module only runs them and shows what droptrace
reports, with the same Tracer and text format as the live stream.
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, List, Sequence, Tuple

from ..errors import UsageError
from ..features.drops.tracer import DropTracer
from ..formats.out import Output
from ..formats.text import TextWriter
from ..lab import SCENARIOS, Lab, Scenario
from ..options import HOOKS, Options
from .common import Parser, eprint, interrupt_on_signals


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="droptrace lab", description=(
        "Build a private lab (two network namespaces joined by veth), provoke well-known "
        "packet drops, trace them and show what droptrace reports. The lab is removed "
        "afterwards, also on Ctrl-C or error."))
    p.add_argument("scenario", nargs="*", help="scenarios to run (default: the short tour; "
                   "'all' for every one)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--stack", action="store_true", help="show the kernel stack of each drop")
    p.add_argument("--hook", choices=HOOKS, help="force a hook instead of probing")
    return p


def _chosen(names: List[str]) -> List[Scenario]:
    if names == ["all"]:
        return SCENARIOS
    if not names:
        return [s for s in SCENARIOS if s.demo]
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"no lab scenario {unknown[0]!r}; scenarios: {', '.join(known)}")
    return [known[n] for n in names]


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    out = Output.stdout()
    if args.list:
        out.write_text("".join(f"{s.name:<20} {'/'.join(s.reasons):<28} {s.title}"
                               f"{'  (tour)' if s.demo else ''}\n" for s in SCENARIOS))
        return 0
    chosen = _chosen(args.scenario)
    tracer = DropTracer(Options(hook=args.hook, stack=args.stack))
    writer = TextWriter(out, stack=args.stack, reason_width=lambda: tracer.reason_width)
    missed = []
    stale = Lab.remove_stale()
    if stale:
        _say(out, f"Removed namespaces left by killed labs: {', '.join(stale)}")
    _say(out, "Building the lab: namespaces A (client) and B (server), joined by veth eth0 <-> eth0 ...")
    with interrupt_on_signals(), Lab() as lab:
        ours = {lab.inode(lab.a): "A", lab.inode(lab.b): "B"}
        tracer.start()
        try:
            _say(out, f"Tracing via {tracer.hook}; netns A={lab.inode(lab.a)} B={lab.inode(lab.b)}\n")
            for s in chosen:
                _say(out, f"== {s.name}: {s.title}\n   expect {' or '.join(s.reasons)} in "
                      f"{ours[lab.inode(s.netns(lab))]}")
                got = _provoke_and_collect(tracer, lab, s, set(ours))
                hits = [e for e in got if s.matches(e.to_dict())]
                writer.write(hits[:3])
                if len(hits) > 3:
                    _say(out, f"   ... and {len(hits) - 3} more drops like these")
                _print_others(out, [e for e in got if not s.matches(e.to_dict())])
                if hits:
                    _say(out, f"   -> reported as {hits[0].reason} at {hits[0].location}\n")
                else:
                    missed.append(s.name)
                    _say(out, "   -> NOT seen as expected\n")
        finally:
            tracer.close()
    _say(out, f"Lab removed. {len(chosen) - len(missed)}/{len(chosen)} scenarios reported as expected.")
    if missed:
        eprint(f"Not as expected: {', '.join(missed)}")
        return 1
    return 0


def _print_others(out: Output, events: list) -> None:
    """Other drops seen meanwhile (IPv6 multicast reports, ...), one line per kind."""
    kinds: Dict[Tuple[str, str, str], int] = {}
    for e in events:
        key = (e.reason or "-", str(e.l4 or e.l3), e.location)
        kinds[key] = kinds.get(key, 0) + 1
    for (reason, proto, location), n in kinds.items():
        _say(out, f"   (meanwhile, elsewhere in the lab: {n} x {reason} {proto} at {location})")


def _provoke_and_collect(tracer, lab: Lab, s: Scenario, netns: set, timeout: float = 3.0) -> list:
    events: list = []
    with s.prepared(lab):
        tracer.drain()
        s.provoke(lab)
        deadline = time.monotonic() + timeout
        settle = None
        while time.monotonic() < (settle or deadline):
            new = [e for e in tracer.poll(50) if e.netns in netns]
            events.extend(new)
            if settle is None and any(s.matches(e.to_dict()) for e in new):
                settle = time.monotonic() + 0.2  # gather the rest of a burst
    return events



def _say(out: Output, *parts: object) -> None:
    """print(), through the one output path."""
    out.write_text(" ".join(str(p) for p in parts) + "\n")
