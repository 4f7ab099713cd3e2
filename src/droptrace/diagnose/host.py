"""Looking at the host from inside the network namespace where a drop happened.

Sockets, routes, sysctls, nft rules and qdiscs are per namespace, so each check runs its
commands there: `nsenter --net=FILE` with a file that names the namespace (an `ip netns`
bind mount, or /proc/PID/ns/net of a process living in it). Only the network namespace is
entered, so the pids that `ss -p` prints are the host's. Everything here only reads.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

TIMEOUT = 10.0  # seconds for one command: a slow host must not hang the report
NETNS_RUN = "/run/netns"


@dataclass(frozen=True)
class Result:
    ok: bool
    out: str
    err: str  # why it failed: the command's stderr, or that it is missing


class Netns:
    """A network namespace to run commands in (None path: the one droptrace runs in)."""

    def __init__(self, inode: Optional[int], path: Optional[str], label: str) -> None:
        self.inode = inode
        self.path = path
        self.label = label  # how to name it to a person: `ip netns` name, pid:N or inode
        self._cache: Dict[tuple, Result] = {}

    def run(self, argv: Sequence[str], timeout: float = TIMEOUT) -> Result:
        """Run one command in this namespace; cached, as several groups ask the same thing."""
        key = tuple(argv)
        if key in self._cache:
            return self._cache[key]
        if shutil.which(argv[0]) is None:
            r = Result(False, "", f"{argv[0]} is not installed")
        else:
            full = self.command(argv)
            try:
                p = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                                   stdin=subprocess.DEVNULL)
                r = Result(p.returncode == 0, p.stdout, p.stderr.strip())
            except subprocess.TimeoutExpired:
                r = Result(False, "", f"{argv[0]} did not answer within {timeout:g} s")
            except OSError as e:
                r = Result(False, "", f"{argv[0]}: {e.strerror}")
        self._cache[key] = r
        return r

    def command(self, argv: Sequence[str]) -> List[str]:
        """argv as run inside this namespace."""
        return list(argv) if self.path is None else ["nsenter", f"--net={self.path}", "--", *argv]

    def read(self, path: str) -> Optional[str]:
        """A /proc/sys or /proc/net file as this namespace sees it."""
        if self.path is None:
            try:
                with open(path) as f:
                    return f.read()
            except OSError:
                return None
        r = self.run(["cat", path])
        return r.out if r.ok else None

    def sysctl(self, name: str) -> Optional[str]:
        """net.ipv4.conf.all.rp_filter -> "1" (None if this namespace has no such setting)."""
        text = self.read("/proc/sys/" + name.replace(".", "/"))
        return None if text is None else " ".join(text.split())

    def setting(self, name: str) -> str:
        """`name=value` as a person reads it: host-wide settings (udp_mem, tcp_mem...) are not
        visible inside a namespace, so they are read in droptrace's own and said to be."""
        value = self.sysctl(name)
        if value is not None:
            return f"{name}={value}"
        if self.path is not None:
            value = Netns(None, None, "").sysctl(name)
            if value is not None:
                return f"{name}={value} (host-wide)"
        return f"{name}: not on this kernel"


def find(inode: Optional[int]) -> Optional[Netns]:
    """The namespace with this inode, if anything still names it (None: it is gone)."""
    own = os.stat("/proc/self/ns/net").st_ino
    if inode is None or inode == own:
        return Netns(own, None, f"{own} (droptrace's own)")
    for ns in named():
        if ns.inode == inode:
            return ns
    for pid in _pids():
        path = f"/proc/{pid}/ns/net"
        try:
            if os.stat(path).st_ino == inode:
                return Netns(inode, path, f"pid:{pid}")
        except OSError:
            continue
    return None


def named() -> List[Netns]:
    """The namespaces `ip netns` names (bind mounts in /run/netns)."""
    try:
        names = sorted(os.listdir(NETNS_RUN))
    except OSError:
        return []
    out = []
    for name in names:
        path = os.path.join(NETNS_RUN, name)
        try:
            out.append(Netns(os.stat(path).st_ino, path, name))
        except OSError:
            continue
    return out


def _pids() -> List[int]:
    try:
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        return []


def comm(pid: int) -> Optional[str]:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


__all__ = ["Netns", "Result", "find", "named", "comm"]
