"""--nft-trace: let nftables say which rule dropped a packet, for the duration of the watch.

In each namespace watched, a table of our own marks every packet for tracing (`meta nftrace
set 1` in chains hooked before anything else, on prerouting and output) and `nft monitor
trace` reports each marked packet's way through the rules; the rule whose verdict is drop
(or reject) is the answer. The table is named after our pid and deleted when the watch ends,
however it ends (tables left by a killed run are deleted at the next start).
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import DroptraceError
from .host import Netns, find, named
from .nft import uncounted

TABLE_PREFIX = "droptrace_trace_"
_LINE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (.*)$")
_FIELD = re.compile(r"\b(ip6?) (saddr|daddr) (\S+)|\b(tcp|udp|sctp|dccp|th) (sport|dport) (\d+)")
_VERDICT = re.compile(r"^(?:rule (.*) \(verdict (drop|reject)\)|policy (drop))\s*$")

RULESET = """table inet {table} {{
  chain pre {{
    type filter hook prerouting priority -400; policy accept;
    meta nftrace set 1
  }}
  chain out {{
    type filter hook output priority -400; policy accept;
    meta nftrace set 1
  }}
}}
"""

NETLINK_NETFILTER = 12
TRACE_GROUP_BIT = 1 << (9 - 1)  # NFNLGRP_NFTRACE is group 9
FlowKey = Tuple[Optional[str], Optional[str], Optional[int], Optional[int]]


class NftTrace:
    """Tracing tables and their monitors, one of each per namespace traced.

    With --netns, the namespaces named are traced from the start. Without it, droptrace's own
    namespace is, and each namespace where a watched drop happens is added at its first drop
    (follow): the drops after it there are traced. Each addition first removes tables that a
    killed earlier run left in that namespace."""

    def __init__(self, spaces: Sequence[Netns], follow: bool = False) -> None:
        self.initial = list(spaces)
        self.following = follow
        self.table = f"{TABLE_PREFIX}{os.getpid()}"
        self.traced: Dict[Optional[int], Netns] = {}  # by inode: a table and a monitor there
        self.since: Dict[Optional[int], float] = {}  # when tracing began there (monotonic)
        self.failed: Dict[Optional[int], str] = {}  # namespaces that could not be traced, and why
        self._monitors: List[Tuple[subprocess.Popen, threading.Thread]] = []
        self.lines: Dict[Optional[int], List[str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_options(cls, netns_inodes: Sequence[int]) -> "NftTrace":
        spaces = []
        for inode in netns_inodes or [None]:
            ns = find(inode)
            if ns is None:
                raise DroptraceError(f"--nft-trace: network namespace {inode} not found")
            spaces.append(ns)
        return cls(spaces, follow=not netns_inodes)

    def start(self) -> None:
        if self.following:  # the namespaces it may follow into: the named ones, cleared of stale tables
            for ns in named():
                self._remove_stale(ns)
        for ns in self.initial:
            try:
                self.add(ns)
            except DroptraceError:
                self.stop()
                raise

    def follow(self, inode: Optional[int]) -> None:
        """A watched drop happened in this namespace: trace there too, if not yet (never raises:
        a namespace that cannot be traced is remembered with the reason)."""
        if not self.following or inode in self.traced or inode in self.failed:
            return
        ns = find(inode)
        if ns is None:
            self.failed[inode] = "the namespace was gone before tracing could start there"
            return
        try:
            self.add(ns)
        except DroptraceError as e:
            self.failed[inode] = str(e)

    def add(self, ns: Netns) -> None:
        """Trace in ns: the monitor first, subscribed, then the table, so that once the table
        is there (`nft list tables` shows it) no traced packet is missed."""
        if ns.inode in self.traced:
            return
        self._remove_stale(ns)
        # stdbuf: nft writes to a pipe in blocks, and a terminated nft never flushes them
        proc = subprocess.Popen(ns.command(["stdbuf", "-oL", "nft", "monitor", "trace"]),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        thread = threading.Thread(target=self._read, args=(proc, ns.inode), daemon=True)
        thread.start()
        self._monitors.append((proc, thread))
        self._wait_subscribed(proc, ns)
        r = subprocess.run(ns.command(["nft", "-f", "-"]), input=RULESET.format(table=self.table),
                           capture_output=True, text=True, timeout=30)
        if r.returncode:
            raise DroptraceError(f"--nft-trace: adding table inet {self.table} in {ns.label}: "
                                 f"{r.stderr.strip() or 'nft failed'}")
        self.traced[ns.inode] = ns
        self.since[ns.inode] = time.monotonic()

    @staticmethod
    def _wait_subscribed(proc: subprocess.Popen, ns: Netns, timeout: float = 30.0) -> None:
        """Readiness: the monitor's netlink socket has joined the trace group, so nothing traced
        from now on is missed (it prints nothing until a packet is traced)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if _subscribed(proc.pid):
                return
            time.sleep(0.02)
        raise DroptraceError(f"--nft-trace: `nft monitor trace` did not start in {ns.label}")

    def _read(self, proc: subprocess.Popen, inode: Optional[int]) -> None:
        for line in proc.stdout or ():
            with self._lock:
                self.lines.setdefault(inode, []).append(line.rstrip("\n"))

    def stop(self) -> Dict[Optional[int], Dict[FlowKey, str]]:
        """Remove what start() and follow() added; the verdicts seen, by namespace and by
        (saddr, daddr, sport, dport)."""
        self._settle()
        for proc, thread in self._monitors:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            thread.join(5)
        self._monitors = []
        for ns in self.traced.values():
            subprocess.run(ns.command(["nft", "delete", "table", "inet", self.table]),
                           capture_output=True, timeout=30)
        with self._lock:
            return {inode: verdicts(lines) for inode, lines in self.lines.items()}

    def _settle(self, quiet: float = 0.3, most: float = 3.0) -> None:
        """Let the monitors print what the kernel already sent: until no line came for `quiet` s."""
        if not self._monitors:
            return
        deadline, seen = time.monotonic() + most, -1
        while time.monotonic() < deadline:
            with self._lock:
                n = sum(len(x) for x in self.lines.values())
            if n == seen:
                return
            seen = n
            time.sleep(quiet)

    def _remove_stale(self, ns: Netns) -> None:
        r = subprocess.run(ns.command(["nft", "list", "tables"]), capture_output=True, text=True, timeout=30)
        for name in re.findall(rf"^table inet ({TABLE_PREFIX}(\d+))$", r.stdout, re.M):
            if not os.path.exists(f"/proc/{name[1]}"):
                subprocess.run(ns.command(["nft", "delete", "table", "inet", name[0]]), capture_output=True,
                               timeout=30)

    def untraced(self, inode: Optional[int], first_drop: float) -> Optional[str]:
        """Why drops in this namespace may have no traced verdict (None: traced from before it)."""
        if inode in self.failed:
            return f"could not trace there: {self.failed[inode]}"
        if inode not in self.traced:
            return "not traced there (--netns names the namespaces traced)"
        if self.since[inode] > first_drop:
            return ("tracing there began at this group's first drop (it happened in a namespace not traced "
                    "yet); only later drops of it could be traced")
        return None


def _subscribed(pid: int) -> bool:
    """Has a NETLINK_NETFILTER socket of this process joined NFNLGRP_NFTRACE (/proc/PID/net/netlink)?"""
    try:
        mine = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        with open(f"/proc/{pid}/net/netlink") as f:
            rows = [line.split() for line in f.read().splitlines()[1:]]
    except OSError:
        return False
    return any(len(r) >= 10 and r[1] == str(NETLINK_NETFILTER) and int(r[3], 16) & TRACE_GROUP_BIT
               and f"socket:[{r[9]}]" in mine for r in rows)


def verdicts(lines: Sequence[str]) -> Dict[FlowKey, str]:
    """`nft monitor trace` lines -> for each traced packet dropped by a rule, which one."""
    flows: Dict[str, FlowKey] = {}
    out: Dict[FlowKey, str] = {}
    for line in lines:
        m = _LINE.match(line.strip())
        if not m:
            continue
        tid, family, table, chain, rest = m.groups()
        if rest.startswith("packet: "):
            f: Dict[str, str] = {}
            for x in _FIELD.finditer(rest):
                if x.group(1):
                    f.setdefault(x.group(2), x.group(3))
                else:
                    f.setdefault(x.group(5), x.group(6))
            flows[tid] = (f.get("saddr"), f.get("daddr"), _int(f.get("sport")), _int(f.get("dport")))
            continue
        v = _VERDICT.match(rest)
        if v and tid in flows:
            rule = v.group(1)
            what = f"rule `{uncounted(rule)}`" if rule else "the chain's policy"
            out[flows[tid]] = (f"table {family} {table}, chain {chain}: {what} gave verdict "
                               f"{v.group(2) or v.group(3)}")
    return out


def _int(text: Optional[str]) -> Optional[int]:
    return int(text) if text and text.isdigit() else None


__all__ = ["NftTrace", "verdicts"]
