"""Network namespaces named the ways users name them: inode, `ip netns` name, pid:N."""
from __future__ import annotations

import os

from ..errors import DroptraceError

NETNS_RUN = "/run/netns"


def inode(spec: str) -> int:
    """The netns inode for an inode number, an `ip netns` name, or pid:N."""
    spec = spec.strip()
    if spec.isdigit():
        return int(spec)
    if spec.startswith("pid:"):
        pid = spec[4:]
        if not pid.isdigit():
            raise DroptraceError(f"bad --netns {spec!r}: expected pid:N")
        path = f"/proc/{pid}/ns/net"
    else:
        path = os.path.join(NETNS_RUN, spec)
    try:
        return os.stat(path).st_ino
    except OSError as e:
        raise DroptraceError(f"--netns {spec!r}: {path}: {e.strerror} "
                             "(give an inode, an `ip netns` name or pid:N)") from None


def current() -> int:
    return os.stat("/proc/self/ns/net").st_ino
