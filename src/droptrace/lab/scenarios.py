"""The lab's scenarios: each provokes one well-known drop and says what droptrace
must report for it. One list, shared by `droptrace lab` and the end-to-end tests."""
from __future__ import annotations

import contextlib
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from ..errors import DroptraceError
from .netlab import A4, A6, A_MAC, B4, B6, B_MAC, GHOST4, IFNAME, OTHER_MAC, SPOOF4, Lab


@dataclass
class Scenario:
    """A drop the lab can provoke, and what droptrace must report for it."""

    name: str
    title: str
    reasons: Tuple[str, ...]            # acceptable reason names
    side: str                           # "a" or "b": the namespace where it is dropped
    expect: Dict[str, object]           # JSON fields the event must have
    provoke: Callable[[Lab], None]
    setup: Optional[Callable[[Lab], Callable[[], None]]] = None
    demo: bool = False                  # part of the short `droptrace lab` tour
    tags: Tuple[str, ...] = field(default_factory=tuple)

    def netns(self, lab: Lab) -> str:
        return lab.a if self.side == "a" else lab.b

    def matches(self, event: Dict[str, object]) -> bool:
        return event.get("reason") in self.reasons and all(
            event.get(k) == v for k, v in self.expect.items())

    @contextlib.contextmanager
    def prepared(self, lab: Lab) -> Iterator[None]:
        undo = self.setup(lab) if self.setup else None
        try:
            yield
        finally:
            if undo:
                undo()


def _nft_drop(lab: Lab) -> Callable[[], None]:
    lab.run("nft", "add table inet droptrace_lab", ns=lab.b)
    lab.run("nft", "add chain inet droptrace_lab input { type filter hook input priority 0 ; }",
            ns=lab.b)
    lab.run("nft", "add rule inet droptrace_lab input udp dport 7777 drop", ns=lab.b)
    return lambda: lab.run("nft", "delete table inet droptrace_lab", ns=lab.b, check=False)


def _sink(lab: Lab) -> Callable[[], None]:
    proc = subprocess.Popen(["ip", "netns", "exec", lab.b, sys.executable, "-m",
                             "droptrace.lab.traffic", "sink", B4, "8888"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":  # readiness, not a sleep
        proc.kill()
        raise DroptraceError("lab: the receive-buffer sink did not start")

    def stop() -> None:
        proc.stdin.close()
        proc.wait(timeout=10)
    return stop


def _tbf(lab: Lab) -> Callable[[], None]:
    lab.run("tc", "qdisc", "add", "dev", IFNAME, "root", "tbf", "rate", "8kbit", "burst", "1600",
            "limit", "1600", ns=lab.a)
    return lambda: lab.run("tc", "qdisc", "del", "dev", IFNAME, "root", ns=lab.a, check=False)


def _udp4(port: int, **kw: object) -> Dict[str, object]:
    return dict(l3="ipv4", l4="udp", saddr=A4, daddr=B4, dport=port, ifname=IFNAME, **kw)


SCENARIOS: List[Scenario] = [
    Scenario("udp4-closed-port", f"UDP to {B4}:9, where nothing listens", ("NO_SOCKET",), "b",
             _udp4(9), lambda lab: lab.traffic(lab.a, "udp", B4, "9"), demo=True),
    Scenario("udp6-closed-port", f"UDP to [{B6}]:9, where nothing listens", ("NO_SOCKET",), "b",
             dict(l3="ipv6", l4="udp", saddr=A6, daddr=B6, dport=9, ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "udp", B6, "9"), demo=True),
    Scenario("tcp-closed-port", f"TCP SYN to {B4}:9, where nothing listens", ("NO_SOCKET",), "b",
             dict(l3="ipv4", l4="tcp", saddr=A4, daddr=B4, dport=9, tcp_flags="S", ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "tcp", B4, "9"), demo=True),
    Scenario("nft-drop", "UDP to port 7777, dropped by an nftables rule in B", ("NETFILTER_DROP",),
             "b", _udp4(7777), lambda lab: lab.traffic(lab.a, "udp", B4, "7777"),
             setup=_nft_drop, demo=True),
    Scenario("rcvbuf-full", "a burst of UDP into a socket with a tiny buffer that never reads",
             ("SOCKET_RCVBUFF",), "b", _udp4(8888),
             lambda lab: lab.traffic(lab.a, "udp", B4, "8888", "--count", "200", "--size", "1000"),
             setup=_sink, demo=True),
    Scenario("unknown-proto", "an IPv4 packet of protocol 253, which nothing handles",
             ("IP_NOPROTO",), "b", dict(l3="ipv4", l4=253, saddr=A4, daddr=B4, ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "raw", "proto", A4, B4, "--proto", "253"), demo=True),
    Scenario("udp-bad-checksum", "a UDP datagram with a wrong checksum", ("UDP_CSUM",), "b",
             _udp4(9), lambda lab: lab.traffic(lab.a, "raw", "udp-badcsum", A4, B4)),
    Scenario("tcp-bad-checksum", "a TCP SYN with a wrong checksum", ("TCP_CSUM",), "b",
             dict(l3="ipv4", l4="tcp", saddr=A4, daddr=B4, dport=9, tcp_flags="S", ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "raw", "tcp-badcsum", A4, B4)),
    Scenario("icmp-bad-checksum", "an ICMP echo request with a wrong checksum", ("ICMP_CSUM",), "b",
             dict(l3="ipv4", l4="icmp", saddr=A4, daddr=B4, icmp_type=8, icmp_code=0, ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "raw", "icmp-badcsum", A4, B4)),
    Scenario("udp-short", "a UDP header claiming more bytes than the packet has",
             ("PKT_TOO_SMALL",), "b", _udp4(9),
             lambda lab: lab.traffic(lab.a, "raw", "udp-short", A4, B4)),
    Scenario("wrong-mac", "an IPv4 frame addressed to another host's MAC", ("OTHERHOST",), "b",
             _udp4(9), lambda lab: lab.traffic(lab.a, "frame", "udp", IFNAME, A_MAC, OTHER_MAC,
                                               "--src", A4, "--dst", B4), demo=True),
    Scenario("ip-bad-checksum", "an IPv4 header with a wrong checksum", ("IP_CSUM",), "b",
             _udp4(9), lambda lab: lab.traffic(lab.a, "frame", "ip-badcsum", IFNAME, A_MAC, B_MAC,
                                               "--src", A4, "--dst", B4)),
    Scenario("unknown-ethertype", "an Ethernet frame of ethertype 0x88b5, which nothing handles",
             ("UNHANDLED_PROTO",), "b", dict(l3="0x88b5", l4=None, ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "frame", "ethertype", IFNAME, A_MAC, B_MAC)),
    Scenario("rp-filter", f"UDP from {SPOOF4}, which B has no route back to (rp_filter=1)",
             ("IP_RPFILTER",), "b",
             dict(l3="ipv4", l4="udp", saddr=SPOOF4, daddr=B4, dport=9, ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "udp", B4, "9", "--src", SPOOF4), demo=True),
    Scenario("neigh-failed", f"UDP to {GHOST4}, a neighbour that never answers ARP",
             ("NEIGH_FAILED",), "a",
             dict(l3="ipv4", l4="udp", saddr=A4, daddr=GHOST4, dport=9, ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "udp", GHOST4, "9")),
    Scenario("qdisc-full", "a burst through a tiny tbf qdisc on A's eth0",
             ("QDISC_DROP", "QDISC_OVERLIMIT"), "a",
             dict(l3="ipv4", l4="udp", saddr=A4, daddr=B4, dport=9, ifname=IFNAME),
             lambda lab: lab.traffic(lab.a, "udp", B4, "9", "--count", "50", "--size", "1000"),
             setup=_tbf),
]


def by_name(name: str) -> Scenario:
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise DroptraceError(f"no lab scenario {name!r}; scenarios: {', '.join(s.name for s in SCENARIOS)}")
