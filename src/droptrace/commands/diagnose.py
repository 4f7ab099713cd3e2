"""`droptrace diagnose`: watch drops, group them, then look at the live host where each group
happened (its namespace) and report what explains it, with the evidence.

Watching is the stream (one event per drop, with a stack sample); the checks run once the
watch ends, so they cost nothing during a drop storm. Nothing on the host is changed, except
with --nft-trace, which adds an nft tracing table for the watch and removes it on every exit.
"""
from __future__ import annotations

import argparse
import textwrap
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..event import Event, dumps
from ..explain import summary
from ..features.drops.tracer import DropTracer
from ..formats.out import Output
from ..formats.sink import EventSink
from .common import Parser, add_trace_options, arg, eprint, options, positive, trace_loop

DEFAULT_SECONDS = 10.0
MAX_GROUPS_KEPT = 10000  # distinct groups remembered while watching; more are counted apart
MARKS = {"cause": "!!", "ok": "ok", "info": "--", "unknown": "??"}


class Grouper(EventSink):
    """The stream's sink: drops grouped by reason, location, namespace, interface and flow."""

    def __init__(self, on_netns: Optional[Callable[[Optional[int]], None]] = None) -> None:
        from ..diagnose.checks import Group

        self._group = Group
        self._on_netns = on_netns  # called once for each namespace where a drop is seen
        self._spaces: set = set()
        self.groups: Dict[Tuple, Any] = {}
        self.total = 0
        self.ungrouped = 0  # past MAX_GROUPS_KEPT

    def write(self, events: List[Event]) -> None:
        for e in events:
            self.total += 1
            key = (e.reason, e.location, e.netns, e.ifname, e.l3, e.l4, e.saddr, e.daddr, e.dport)
            g = self.groups.get(key)
            if g is None:
                if len(self.groups) >= MAX_GROUPS_KEPT:
                    self.ungrouped += 1
                    continue
                g = self.groups[key] = self._group(e.reason, e.location, e.netns, e.ifname, e,
                                                   first_seen=time.monotonic())
            if self._on_netns is not None and e.netns not in self._spaces:
                self._spaces.add(e.netns)
                self._on_netns(e.netns)
            g.count += 1
            if len(g.sports) < 64:
                g.sports[e.sport] = g.sports.get(e.sport, 0) + 1


def inspect(groups: List[Any], tracing: Any = None,
            nft_verdicts: Optional[Dict[Optional[int], Dict[Tuple, str]]] = None) -> List[Dict[str, Any]]:
    """The findings of each group, in the order given (most drops first); with --nft-trace,
    what the trace said of each group's flow in its namespace, or why it could not say."""
    from ..diagnose import host
    from ..diagnose.checks import Finding, checks_for, generic

    out = []
    spaces: Dict[Optional[int], Any] = {}
    for g in groups:
        if g.netns not in spaces:
            spaces[g.netns] = host.find(g.netns)
        ns = spaces[g.netns]
        if ns is None:
            findings = [Finding("namespace", "unknown", f"network namespace {g.netns} is gone (no process "
                                "and no `ip netns` name holds it now): nothing left to inspect")]
        else:
            check = checks_for(g.reason)
            try:
                findings = check(g, ns)
            except (OSError, ValueError) as e:  # a host oddity must not cost the whole report
                findings = [Finding(check.__name__, "unknown", f"the check failed: {e}")]
            if check is generic:
                elsewhere: Dict[str, int] = {}
                for x in groups:
                    if x.reason == g.reason and x.location != g.location:
                        elsewhere[x.location] = elsewhere.get(x.location, 0) + x.count
                if elsewhere:
                    where = ", ".join(f"{loc} ({n})" for loc, n in
                                      sorted(elsewhere.items(), key=lambda x: -x[1])[:3])
                    findings.insert(1, Finding("other locations", "info", f"same reason also at {where}"))
        if tracing is not None:
            verdict = _traced_verdict((nft_verdicts or {}).get(g.netns, {}), g.sample)
            if verdict:
                findings.insert(0, Finding("nft trace", "cause", verdict))
            elif g.reason == "NETFILTER_DROP":
                why = tracing.untraced(g.netns, g.first_seen) or (
                    "traced there, but `nft monitor trace` gave no drop verdict for this flow: not an "
                    "nftables rule (iptables-legacy?), or dropped at a hook before the tracing chains "
                    "(priority -400, prerouting and output)")
                findings.insert(0, Finding("nft trace", "unknown", why))
        out.append({"reason": g.reason, "location": g.location, "netns": g.netns,
                    "netns_name": None if ns is None or ns.path is None else ns.label,
                    "ifname": g.ifname, "count": g.count, "flow": g.flow(),
                    "summary": summary(g.reason) if g.reason else
                    "this kernel gives no drop reason (before 5.17): see the location and stack",
                    "findings": [f.to_dict() for f in findings]})
    return out


def _traced_verdict(verdicts: Dict[Tuple, str], e: Event) -> Optional[str]:
    """The traced verdict of this drop's flow: the same source port first, else any other
    drop of the group (groups ignore the source port; a traced later drop has its own)."""
    exact = verdicts.get((e.saddr, e.daddr, e.sport, e.dport))
    if exact:
        return exact
    return next((v for (s, d, _, p), v in verdicts.items() if (s, d, p) == (e.saddr, e.daddr, e.dport)), None)


def render(report: Dict[str, Any]) -> str:
    lines = [f"droptrace diagnose: {report['drops']} drops in {report['duration']:.1f} s, "
             f"{len(report['groups'])} groups shown of {report['group_count']}"
             + (f", {report['lost']} lost" if report["lost"] else "")]
    if not report["groups"]:
        lines.append("no drops matched while watching: nothing to diagnose")
    for i, g in enumerate(report["groups"], 1):
        f = g["flow"]
        src, dst = _endpoint(f["saddr"], f.get("sport")), _endpoint(f["daddr"], f.get("dport"))
        flow = f"{f['l4'] or f['l3'] or '?'} {src} -> {dst}" if f.get("saddr") else f"{f['l3'] or '?'}"
        ns = g["netns_name"] or g["netns"]
        where = (f"  on {g['ifname']}" if g["ifname"] else "") + (f" in netns {ns}" if ns is not None else "")
        lines += ["", f"[{i}] {g['reason'] or '(no reason)'} x{g['count']}  {flow}{where}",
                  f"    at {g['location']}"]
        lines += textwrap.wrap(g["summary"] or "", 100, initial_indent="    ", subsequent_indent="    ")
        for x in g["findings"]:
            lines += textwrap.wrap(f"{x['check']}: {x['detail']}", 100,
                                   initial_indent=f"  {MARKS.get(x['result'], '--')} ",
                                   subsequent_indent="       ")
    return "\n".join(lines) + "\n"


def _endpoint(addr: Optional[str], port: Optional[int]) -> str:
    """10.0.0.1:53, [2001:db8::1]:53, or the address alone without a port."""
    if port is None:
        return str(addr)
    return f"[{addr}]:{port}" if addr and ":" in addr else f"{addr}:{port}"


def build_parser() -> argparse.ArgumentParser:
    from ..options import seconds

    p = Parser(prog="droptrace diagnose", description=(
        "Watch drops (default 10 s, or until Ctrl-C), group them by reason, location, namespace and "
        "flow, then inspect the live host inside each drop's namespace: who listens on the port, which "
        "nft rule drops, rp_filter and the route back, the socket's buffer, the neighbour, the qdisc... "
        "Read-only unless --nft-trace."))
    p.add_argument("-d", "--duration", type=arg(seconds), default=DEFAULT_SECONDS, metavar="SECONDS",
                   help=f"how long to watch (default {DEFAULT_SECONDS:g}; Ctrl-C ends it sooner)")
    p.add_argument("-c", "--count", type=positive("-c"), metavar="N",
                   help="stop watching after N drops")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the text report")
    p.add_argument("--max-groups", type=positive("--max-groups"), default=10,
                   metavar="N", help="inspect the N largest groups (default 10)")
    p.add_argument("--nft-trace", action="store_true",
                   help="pinpoint the nft rule with nft tracing: adds a table in each namespace named by "
                   "--netns, or without it in droptrace's own and in each one where a watched drop happens "
                   "(from that drop on), for the watch; removed on exit, Ctrl-C or SIGTERM")
    add_trace_options(p)
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    opts = options(args)
    opts.stack = True  # a stack sample for the groups no check explains
    tracer = DropTracer(opts)
    started = time.monotonic()
    tracing = None
    if args.nft_trace:
        from ..diagnose.nfttrace import NftTrace

        tracing = NftTrace.for_options(sorted(opts.netns))
    sink = Grouper(tracing.follow if tracing is not None and tracing.following else None)
    try:
        if tracing is not None:
            tracing.start()
        _, lost = trace_loop(tracer, sink, args.count, args.duration)
    finally:
        verdicts = tracing.stop() if tracing is not None else None
    if tracer.hook is None:
        return 1
    duration = time.monotonic() - started
    ranked = sorted(sink.groups.values(), key=lambda g: g.count, reverse=True)
    shown = ranked[:args.max_groups]
    if ranked:
        eprint(f"droptrace diagnose: {sink.total} drops in {len(ranked)} groups; inspecting "
               f"{len(shown)}...")
    report = {"duration": round(duration, 3), "drops": sink.total, "lost": lost,
              "group_count": len(ranked) + (1 if sink.ungrouped else 0),
              "groups": inspect(shown, tracing, verdicts)}
    out = Output.stdout()
    out.write(dumps(report) + b"\n") if args.json else out.write_text(render(report))
    return 0


__all__ = ["main", "Grouper", "inspect", "render"]
