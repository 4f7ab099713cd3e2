"""`droptrace explain [REASON]`: what a drop reason means, its usual causes, and what to check.

Needs no privileges: the names and numbers come from the kernel's BTF, readable by anyone.
"""
from __future__ import annotations

import argparse
import textwrap
from typing import List, Sequence

from ..event import dumps
from ..explain import Explanation, explain, kernel_names, listing, subsystems
from ..formats.out import Output
from .common import Parser

WIDTH = 100


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="droptrace explain", description=(
        "Explain a drop reason: what it means, where in the stack it happens, common causes, the "
        "kernel counters that move with it and what to check. Without REASON, list every reason of "
        "the running kernel with its one-line summary."))
    p.add_argument("reason", nargs="?", metavar="REASON",
                   help="a reason name in any case, with or without SKB_DROP_REASON_, SUBSYS:NAME, "
                   "or this kernel's number")
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    return p


def render(e: Explanation) -> str:
    """The text of one explanation, for a terminal."""
    def wrap(text: str, first: str = "  ", rest: str = "  ") -> List[str]:
        return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest) or [first]

    where = f"value {e.value} on this kernel" if e.in_kernel else (
        "a subsystem's reason: named from its module's BTF while the module is loaded" if ":" in e.reason
        or e.reason in subsystems() else "not a reason of this kernel")
    since = f"; since Linux {e.since}" if e.since else ""
    lines = [f"{e.reason}: {e.summary}", f"  ({where}{since})", ""]
    lines += wrap(e.details)
    if e.causes:
        lines += ["", "Common causes:"]
        for c in e.causes:
            lines += wrap(c, "  - ", "    ")
    if e.counters:
        lines += ["", "Kernel counters that move with it:",
                  f"  {', '.join(e.counters)}   (nstat -az {' '.join(e.counters)})"]
    if e.checks:
        lines += ["", "What to check:"]
        for what, command in e.checks:
            lines += [f"  - {what}:", f"      {command}"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    names = kernel_names()
    out = Output.stdout()
    if args.reason is None:
        entries = listing(names)
        if args.json:
            out.write(dumps([{"reason": e.reason, "value": e.value, "summary": e.summary}
                             for e in entries]) + b"\n")
            return 0
        width = max(len(e.reason) for e in entries)
        head = "" if names else ("this kernel has no drop reasons (before 5.17); droptrace shows the "
                                 "location instead. The reasons of newer kernels:\n")
        out.write_text(head + "".join(f"{e.reason:<{width}}  {e.summary}\n" for e in entries))
        return 0
    e = explain(args.reason, names)
    out.write(dumps(e.to_dict()) + b"\n") if args.json else out.write_text(render(e))
    return 0


__all__ = ["main", "render"]
