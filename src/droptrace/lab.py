"""`droptrace lab`: a private lab of two namespaces where well-known drops happen.

Namespace A (the client) and B (the server) are joined by a veth pair. Each
scenario makes the kernel drop a packet for a known reason; the lab traces
them with the same Tracer the stream uses and shows what was reported. The
lab is removed at the end, also on Ctrl-C or error. The end-to-end tests
build the same lab and run the droptrace CLI against these scenarios.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .errors import DroptraceError

A4, B4, SPOOF4, GHOST4 = "198.18.0.1", "198.18.0.2", "203.0.113.7", "198.18.0.99"
A6, B6 = "2001:db8:d7::1", "2001:db8:d7::2"
A_MAC, B_MAC, OTHER_MAC = "02:d7:00:00:00:01", "02:d7:00:00:00:02", "02:d7:00:00:00:99"
IFNAME = "eth0"


class Lab:
    """Two network namespaces, A and B, joined by veth (eth0 in each)."""

    def __init__(self, tag: Optional[str] = None) -> None:
        tag = tag or f"{os.getpid()}"
        self.a, self.b = f"dtlab{tag}a", f"dtlab{tag}b"
        self._created: List[str] = []

    # -- plumbing ------------------------------------------------------
    def run(self, *cmd: str, ns: Optional[str] = None, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess:
        full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
        try:
            proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise DroptraceError(f"{full[0]} not found: the lab needs iproute2 "
                                 "(apt-get install iproute2)") from None
        if check and proc.returncode != 0:
            raise DroptraceError(f"lab command failed: {' '.join(full)}: "
                                 f"{(proc.stderr or proc.stdout).strip()}")
        return proc

    def traffic(self, ns: str, *args: str) -> None:
        """Send lab traffic from inside namespace ns (see labtraffic.py)."""
        self.run(sys.executable, "-m", "droptrace.labtraffic", *args, ns=ns)

    def inode(self, ns: str) -> int:
        return os.stat(f"/run/netns/{ns}").st_ino

    def up(self) -> "Lab":
        try:
            for ns in (self.a, self.b):
                self.run("ip", "netns", "add", ns)
                self._created.append(ns)
            va, vb = f"{self.a}x"[-15:], f"{self.b}x"[-15:]
            self.run("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
            self.run("ip", "link", "set", va, "netns", self.a)
            self.run("ip", "link", "set", vb, "netns", self.b)
            for ns, veth, mac, addr4, addr6, peer4, peer6, peer_mac in (
                    (self.a, va, A_MAC, A4, A6, B4, B6, B_MAC),
                    (self.b, vb, B_MAC, B4, B6, A4, A6, A_MAC)):
                self.run("ip", "link", "set", veth, "name", IFNAME, ns=ns)
                self.run("ip", "link", "set", IFNAME, "address", mac, ns=ns)
                # No router solicitations or DAD: a quiet lab, no stray drops.
                # Unsolicited MLD reports, which the peer drops as NOT_SPECIFIED, all go
                # out at once when the link comes up, so they are over before any scenario.
                conf = f"net.ipv6.conf.{IFNAME}"
                self.run("sysctl", "-qw", f"{conf}.accept_ra=0", f"{conf}.accept_dad=0",
                         f"{conf}.dad_transmits=0", f"{conf}.router_solicitations=0",
                         f"{conf}.mldv1_unsolicited_report_interval=1",
                         f"{conf}.mldv2_unsolicited_report_interval=1", ns=ns)
                self.run("ip", "link", "set", "lo", "up", ns=ns)
                self.run("ip", "link", "set", IFNAME, "up", ns=ns)
                self.run("ip", "addr", "add", f"{addr4}/24", "dev", IFNAME, ns=ns)
                self.run("ip", "-6", "addr", "add", f"{addr6}/64", "dev", IFNAME, "nodad", ns=ns)
                for peer in (peer4, peer6):
                    self.run("ip", "neigh", "replace", peer, "lladdr", peer_mac, "dev", IFNAME,
                             "nud", "permanent", ns=ns)
            # A also owns an address B has no route back to (for rp_filter), and
            # gives up on unanswered neighbours after one quick probe.
            self.run("ip", "addr", "add", f"{SPOOF4}/32", "dev", IFNAME, ns=self.a)
            self.run("sysctl", "-qw", f"net.ipv4.neigh.{IFNAME}.mcast_solicit=1",
                     f"net.ipv4.neigh.{IFNAME}.ucast_solicit=0",
                     f"net.ipv4.neigh.{IFNAME}.app_solicit=0",
                     f"net.ipv4.neigh.{IFNAME}.retrans_time_ms=50", ns=self.a)
            self.run("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1",
                     f"net.ipv4.conf.{IFNAME}.rp_filter=1", ns=self.b)
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        for ns in reversed(self._created):
            self.run("ip", "netns", "del", ns, check=False)
        self._created.clear()

    def __enter__(self) -> "Lab":
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


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
                             "droptrace.labtraffic", "sink", B4, "8888"],
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


# -- the demo ---------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from .cli import _Parser

    p = _Parser(prog="droptrace lab", description=(
        "Build a private lab (two network namespaces joined by veth), provoke well-known "
        "packet drops, trace them and show what droptrace reports. The lab is removed "
        "afterwards, also on Ctrl-C or error."))
    p.add_argument("scenario", nargs="*", help="scenarios to run (default: the short tour; "
                   "'all' for every one)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--stack", action="store_true", help="show the kernel stack of each drop")
    p.add_argument("--hook", help="force a hook (tp_btf, raw_tp, tracepoint)")
    return p


def main(argv: Sequence[str]) -> int:
    from .cli import stop_on_sigterm
    from .output import TextWriter
    from .tracer import Options, Tracer

    args = _parser().parse_args(list(argv))
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:<20} {'/'.join(s.reasons):<28} {s.title}{'  (tour)' if s.demo else ''}")
        return 0
    if args.scenario == ["all"]:
        chosen = SCENARIOS
    elif args.scenario:
        chosen = [by_name(n) for n in args.scenario]
    else:
        chosen = [s for s in SCENARIOS if s.demo]
    tracer = Tracer(Options(hook=args.hook, stack=args.stack))
    writer = TextWriter(sys.stdout, stack=args.stack)
    missed = []
    print("Building the lab: namespaces A (client) and B (server), joined by veth eth0 <-> eth0 ...",
          flush=True)
    with stop_on_sigterm(), Lab() as lab:
        ours = {lab.inode(lab.a): "A", lab.inode(lab.b): "B"}
        tracer.start()
        try:
            print(f"Tracing via {tracer.hook}; netns A={lab.inode(lab.a)} B={lab.inode(lab.b)}\n",
                  flush=True)
            for s in chosen:
                print(f"== {s.name}: {s.title}\n   expect {' or '.join(s.reasons)} in "
                      f"{ours[lab.inode(s.netns(lab))]}", flush=True)
                got = _provoke_and_collect(tracer, lab, s, set(ours))
                hits = [e for e in got if s.matches(e.to_dict())]
                writer.write(hits[:3])
                if len(hits) > 3:
                    print(f"   ... and {len(hits) - 3} more drops like these")
                _print_others([e for e in got if not s.matches(e.to_dict())])
                if hits:
                    print(f"   -> reported as {hits[0].reason} at {hits[0].location}\n", flush=True)
                else:
                    missed.append(s.name)
                    print("   -> NOT seen as expected\n", flush=True)
        finally:
            tracer.close()
    print(f"Lab removed. {len(chosen) - len(missed)}/{len(chosen)} scenarios reported as expected.")
    if missed:
        print(f"Not as expected: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def _print_others(events: list) -> None:
    """Other drops seen meanwhile (IPv6 multicast reports, ...), one line per kind."""
    kinds: Dict[Tuple[str, str, str], int] = {}
    for e in events:
        key = (e.reason or "-", str(e.l4 or e.l3), e.location)
        kinds[key] = kinds.get(key, 0) + 1
    for (reason, proto, location), n in kinds.items():
        print(f"   (meanwhile, elsewhere in the lab: {n} x {reason} {proto} at {location})")


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
