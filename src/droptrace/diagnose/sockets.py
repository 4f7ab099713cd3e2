"""Sockets as `ss` lists them: who is bound where, and how full their receive queues are.

`ss` (iproute2) is the tool operators already trust for this; reading its output keeps us
to what every host has, where the sock_diag netlink protocol would be a second copy of it.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

_USER = re.compile(r'\("([^"]*)",pid=(\d+),fd=\d+\)')
_SKMEM = re.compile(r"skmem:\(([^)]*)\)")


@dataclass(frozen=True)
class Socket:
    proto: str  # "udp" | "tcp"
    state: str  # UNCONN, ESTAB, LISTEN, ...
    addr: str  # as bound: "127.0.0.1", "::", "*" (any address of either family)
    port: int
    device: Optional[str]  # bound to a device (SO_BINDTODEVICE): 10.0.0.2%eth0
    recv_q: int
    users: Tuple[Tuple[str, int], ...]  # (comm, pid)
    rcvbuf: Optional[int] = None  # skmem rb: the receive buffer's size
    queued: Optional[int] = None  # skmem r: bytes in the receive queue
    drops: Optional[int] = None  # skmem d: packets dropped on this socket

    def endpoint(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        dev = f"%{self.device}" if self.device else ""
        return f"{host}{dev}:{self.port}/{self.proto}"

    def owner(self) -> str:
        if not self.users:
            return "owner unknown"
        return ", ".join(f"pid {pid} ({name})" for name, pid in self.users)

    def accepts(self, daddr: Optional[str]) -> bool:
        """Would a packet to daddr reach this socket, by address (ports are compared apart)?"""
        if self.addr == "*" or daddr is None:
            return True
        try:
            want, have = ipaddress.ip_address(daddr), ipaddress.ip_address(self.addr)
        except ValueError:
            return False
        if have.is_unspecified:
            return have.version == want.version
        return have == want


def parse(text: str, proto: str) -> List[Socket]:
    """`ss -H -n -p [-m]` output for one protocol; lines it cannot read are skipped."""
    out: List[Socket] = []
    lines: List[str] = []
    for raw in text.splitlines():
        if raw[:1].isspace() and lines:  # -m puts skmem on a continuation line
            lines[-1] += " " + raw.strip()
        elif raw.strip():
            lines.append(raw.strip())
    for line in lines:
        parts = line.split()
        if len(parts) < 5 or not parts[1].isdigit():
            continue
        local = _endpoint(parts[3])
        if local is None:
            continue
        addr, device, port = local
        skmem = _skmem(line)
        out.append(Socket(proto, parts[0], addr, port, device, int(parts[1]),
                          tuple((n, int(p)) for n, p in _USER.findall(line)),
                          rcvbuf=skmem.get("rb"), queued=skmem.get("r"), drops=skmem.get("d")))
    return out


def _endpoint(text: str) -> Optional[Tuple[str, Optional[str], int]]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    if host.startswith("[") and "]" in host:
        host = host[1:host.index("]")] + host[host.index("]") + 1:]
    host, _, device = host.partition("%")
    return host or "*", device or None, int(port)


def _skmem(line: str) -> dict:
    m = _SKMEM.search(line)
    out = {}
    for item in (m.group(1).split(",") if m else []):
        k = item.rstrip("0123456789")
        if item[len(k):].isdigit():
            out[k] = int(item[len(k):])
    return out


__all__ = ["Socket", "parse"]
