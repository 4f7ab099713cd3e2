"""The lab's plumbing: two network namespaces, A and B, joined by a veth pair.

Used by `droptrace lab` and by the end-to-end tests. Namespaces are named
dtlab<tag>a/b (the tag is the owning pid by default), so namespaces left by a
killed lab can be recognised and removed by the next one.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import List, Optional

from ..errors import DroptraceError

A4, B4, SPOOF4, GHOST4 = "198.18.0.1", "198.18.0.2", "203.0.113.7", "198.18.0.99"
A6, B6 = "2001:db8:d7::1", "2001:db8:d7::2"
A_MAC, B_MAC, OTHER_MAC = "02:d7:00:00:00:01", "02:d7:00:00:00:02", "02:d7:00:00:00:99"
IFNAME = "eth0"


class Lab:
    """Two network namespaces, A and B, joined by veth (eth0 in each)."""

    PREFIX = "dtlab"

    def __init__(self, tag: Optional[str] = None) -> None:
        tag = tag or f"{os.getpid()}"
        self.a, self.b = f"{self.PREFIX}{tag}a", f"{self.PREFIX}{tag}b"
        self._created: List[str] = []

    @classmethod
    def owner_of(cls, netns_name: str) -> Optional[int]:
        """The pid that a lab namespace's name says made it (dtlab<pid>a, or dtlabt<pid>a for the
        tests' lab), else None."""
        m = re.fullmatch(rf"{cls.PREFIX}t?(\d+)[a-z]", netns_name)
        return int(m.group(1)) if m else None

    @classmethod
    def remove_stale(cls) -> List[str]:
        """Remove the namespaces of labs whose process is gone (a SIGKILLed lab cannot clean up)."""
        removed = []
        try:
            names = os.listdir("/run/netns")
        except OSError:
            return removed
        for name in sorted(names):
            owner = cls.owner_of(name)
            if owner is not None and not os.path.exists(f"/proc/{owner}"):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
                removed.append(name)
        return removed

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
        """Send lab traffic from inside namespace ns (see lab/traffic.py)."""
        self.run(sys.executable, "-m", "droptrace.lab.traffic", *args, ns=ns)

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
