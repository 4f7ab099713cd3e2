"""The flow's conntrack entry, as `conntrack -L` (conntrack-tools) lists it: its state, status,
mark and zone, or that it has none.

A rule on `ct state` or `ct mark` decides by this entry, and a dropped first packet never gets
one (an entry is confirmed only when the packet leaves the hook chain alive), so either answer
explains something. Listing is a netlink dump in the drop's namespace: it changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from .host import Netns

_PROTOS = ("tcp", "udp", "sctp", "dccp", "udplite")


@dataclass(frozen=True)
class Entry:
    proto: str
    state: Optional[str]  # TCP/SCTP/DCCP: ESTABLISHED, SYN_SENT, ...; None for the others
    timeout: Optional[int]  # seconds left
    original: Tuple[str, ...]  # src=... dst=... sport=... dport=... of the original direction
    reply: Tuple[str, ...]
    status: Tuple[str, ...]  # UNREPLIED, ASSURED, OFFLOAD...
    mark: Optional[int]
    zone: int

    def text(self) -> str:
        parts = [self.proto] + ([self.state] if self.state else []) + list(self.original)
        parts += [f"[{s}]" for s in self.status] + [f"mark={self.mark}", f"zone={self.zone}"]
        return " ".join(parts) + (f", {self.timeout} s left" if self.timeout is not None else "")


def parse(text: str) -> List[Entry]:
    """`conntrack -L` lines (plain or -o extended); lines it cannot read are skipped."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] and words[0] in ("ipv4", "ipv6"):
            words = words[2:]  # -o extended: "ipv4 2 tcp 6 ..."
        if len(words) < 4 or not words[1].isdigit():
            continue
        proto, rest = words[0], words[2:]
        timeout = int(rest[0]) if rest and rest[0].isdigit() else None
        rest = rest[1:] if timeout is not None else rest
        state = rest[0] if rest and "=" not in rest[0] and not rest[0].startswith("[") else None
        rest = rest[1:] if state else rest
        tuples: List[List[str]] = [[]]
        status, mark, zone = [], None, 0
        for w in rest:
            if w.startswith("[") and w.endswith("]"):
                status.append(w[1:-1])
                continue
            key, _, value = w.partition("=")
            if key == "mark":
                mark = int(value) if value.isdigit() else None
            elif key == "zone":
                zone = int(value) if value.isdigit() else 0
            elif key in ("src", "dst", "sport", "dport", "type", "code", "id"):
                if key == "src" and tuples[-1]:
                    tuples.append([])
                tuples[-1].append(w)
        out.append(Entry(proto, state, timeout, tuple(tuples[0]), tuple(tuples[1]) if len(tuples) > 1 else (),
                         tuple(status), mark, zone))
    return out


def lookup(ns: Netns, l3: Optional[str], l4: Optional[str], saddr: Optional[str], daddr: Optional[str],
           sport: Optional[int], dport: Optional[int]) -> Tuple[Optional[List[Entry]], str]:
    """The entries of a flow in ns, the packet seen as the original direction or as the reply
    (None if they could not be listed), and the command that listed them (or why not)."""
    base = ["conntrack", "-L", "-f", "ipv6" if l3 == "ipv6" else "ipv4"]
    ports = l4 in _PROTOS
    base += ["-p", str(l4)] if ports else []
    ways = [(["-s", saddr] if saddr else []) + (["-d", daddr] if daddr else [])
            + (["--sport", str(sport)] if ports and sport is not None else [])
            + (["--dport", str(dport)] if ports and dport is not None else []),
            (["--reply-src", saddr] if saddr else []) + (["--reply-dst", daddr] if daddr else [])
            + (["--reply-port-src", str(sport)] if ports and sport is not None else [])
            + (["--reply-port-dst", str(dport)] if ports and dport is not None else [])]
    found: List[Entry] = []
    for filters in ways:
        r = ns.run(base + filters)
        if not r.ok:
            return None, r.err or "conntrack failed"
        found += parse(r.out)
    return list(dict.fromkeys(found)), " ".join(base + ways[0])  # an entry both ways is one entry


__all__ = ["Entry", "parse", "lookup"]
