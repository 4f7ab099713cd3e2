"""Names for a network namespace: its `ip netns` name, its container, its Kubernetes pod.

Drops carry the inode of their network namespace, the kernel's identity for it, but operators
label what they run: `ip netns` names, containers, pods. This module maps one to the others
from what the kernel already exposes, without asking any container runtime:

- /run/netns/NAME: bind mounts made by `ip netns add` (and by CNI plugins); the inode of
  the mount is the namespace's.
- /proc/PID/ns/net: the namespace each process is in; /proc/PID/cgroup: the cgroup it is
  in, which every runtime names after the container id (see container_of).

The host's own namespace (that of pid 1) never gets a container, even when a
`--network host` container or a pod with hostNetwork runs in it: many share it.
Container and pod names come from the runtimes' state on disk (runtime_names.py).
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from time import monotonic
from typing import Dict, List, Optional, Tuple

from .runtime_names import RuntimeNames

RESCAN_INTERVAL = 1.0  # seconds: at most one rescan per second for inodes not seen yet

_ID = r"[0-9a-f]{64}"
# One cgroup path component that names a container, as runtimes spell it:
#   docker-ID.scope (docker, systemd driver), cri-containerd-ID.scope, crio-ID.scope,
#   libpod-ID.scope (podman), nerdctl-ID.scope, and bare ID (docker's /docker/ID and
#   containerd's cgroupfs driver, e.g. /kubepods/besteffort/podUID/ID).
# Not crio-conmon-ID / libpod-conmon-ID: those hold the runtime's monitor, not the container.
_CONTAINER = re.compile(rf"(?:(docker|cri-containerd|crio|libpod|nerdctl)-)?({_ID})(?:\.scope)?")
_RUNTIME = {"docker": "docker", "cri-containerd": "containerd", "crio": "crio", "libpod": "podman",
            "nerdctl": "containerd"}
# kubelet's pod cgroup: podUID (cgroupfs driver) or kubepods[-QOS]-podUID.slice (systemd
# driver, with the UID's dashes turned into underscores). Static pods have a 32-hex UID.
_UUID = r"[0-9a-f]{8}([-_])[0-9a-f]{4}\2[0-9a-f]{4}\2[0-9a-f]{4}\2[0-9a-f]{12}"
_POD = re.compile(rf"(?:kubepods-(?:[a-z]+-)?)?pod({_UUID}|[0-9a-f]{{32}})(?:\.slice)?")


@dataclass(frozen=True)
class NetnsInfo:
    """What a network namespace is called: every field but inode may be unknown (None)."""

    inode: int
    name: Optional[str]  # `ip netns` name: a bind mount in /run/netns with this inode
    container: Optional[str]  # "runtime:12-hex short id", e.g. "docker:3f2a9c1b7e4d"
    pod_uid: Optional[str]  # Kubernetes pod UID, with dashes
    container_name: Optional[str] = None  # its name in Podman or Docker
    pod: Optional[str] = None  # the pod's name, and its Kubernetes namespace
    pod_namespace: Optional[str] = None


def container_of(cgroup_path: str) -> Tuple[Optional[str], Optional[str]]:
    """(container, pod_uid) that a cgroup path names, each None if it names none.

    container is "docker:", "containerd:", "crio:" or "podman:" and the 12-hex short id of
    the deepest component naming a container (so for docker-in-docker or kind, the
    innermost one); pod_uid is the UID of a `pod<uid>` component under kubepods.
    """
    found, pod = _ids_of(cgroup_path)
    return (f"{found[0]}:{found[1][:12]}" if found else None), pod


def _ids_of(cgroup_path: str) -> Tuple[Optional[Tuple[str, str]], Optional[str]]:
    """((runtime, full container id) or None, pod_uid or None): container_of's, ids in full."""
    parts = [p for p in cgroup_path.split("/") if p]
    container = pod = None
    for i in range(len(parts) - 1, -1, -1):
        m = _CONTAINER.fullmatch(parts[i])
        if m:
            runtime = _RUNTIME.get(m.group(1) or "")
            if runtime is None:  # a bare id: /docker/ID is docker's; elsewhere containerd's
                runtime = "docker" if i > 0 and parts[i - 1] == "docker" else "containerd"
            container = (runtime, m.group(2))
            break
    for i, part in enumerate(parts):
        m = _POD.fullmatch(part)
        if m and any(p.startswith("kubepods") for p in parts[:i + 1]):
            pod = m.group(1).replace("_", "-")
            break
    return container, pod


def _from_cgroup_file(text: str) -> Tuple[Optional[Tuple[str, str]], Optional[str]]:
    """((runtime, container id), pod_uid) from /proc/PID/cgroup: v1 lines `N:controllers:/path`,
    the v2 line `0::/path`; hybrid hosts have both, and only some may name the container."""
    pod = None
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3:
            container, line_pod = _ids_of(fields[2])
            if container:
                return container, line_pod
            pod = pod or line_pod
    return None, pod


class Enricher:
    """netns inode -> NetnsInfo, cached from one scan of /run/netns and /proc.

    A known inode is answered from the cache; the cache is rebuilt after `ttl` seconds,
    and on the lookup of an unknown inode (a namespace made since the last scan), but then
    at most once per second: a namespace no scan can name (held only by an open file or a
    bind mount elsewhere) must not turn a stream of drops into a stream of /proc walks.
    """

    def __init__(self, proc: str = "/proc", run_netns: str = "/run/netns", ttl: float = 30.0,
                 runtime_names: Optional[RuntimeNames] = None) -> None:
        self.proc, self.run_netns, self.ttl = proc, run_netns, ttl
        self.runtime_names = runtime_names if runtime_names is not None else RuntimeNames()
        self._known: Dict[int, NetnsInfo] = {}
        self._scanned: Optional[float] = None  # monotonic() at the end of the last scan
        self._lock = threading.Lock()

    def lookup(self, inode: int) -> NetnsInfo:
        with self._lock:
            age = None if self._scanned is None else monotonic() - self._scanned
            if age is None or age >= self.ttl or (inode not in self._known and age >= RESCAN_INTERVAL):
                self._rescan()
            return self._known.get(inode) or NetnsInfo(inode, None, None, None)

    def refresh(self) -> None:
        with self._lock:
            self._rescan()

    # -- scanning ----------------------------------------------------------
    def _rescan(self) -> None:
        names, members, host = self._names(), self._members(), self._host_inode()
        self.runtime_names.reload()
        known = {}
        for inode in names.keys() | members.keys():
            found, pod = (None, None) if inode == host else self._container(members.get(inode, []))
            container = container_name = None
            if found:
                container = f"{found[0]}:{found[1][:12]}"
                container_name = self.runtime_names.container_name(found[1])
            namespace, pod_name = self.runtime_names.pod(pod) if pod else (None, None)
            known[inode] = NetnsInfo(inode, names.get(inode), container, pod, container_name, pod_name,
                                     namespace)
        self._known, self._scanned = known, monotonic()

    def _names(self) -> Dict[int, str]:
        names: Dict[int, str] = {}
        try:
            entries = sorted(os.listdir(self.run_netns))
        except OSError:
            return names
        for name in entries:
            try:
                names.setdefault(os.stat(os.path.join(self.run_netns, name)).st_ino, name)
            except OSError:  # deleted meanwhile
                pass
        return names

    def _members(self) -> Dict[int, List[int]]:
        """netns inode -> the pids in it, lowest first."""
        members: Dict[int, List[int]] = {}
        try:
            pids = sorted(int(n) for n in os.listdir(self.proc) if n.isascii() and n.isdigit())
        except OSError:
            return members
        for pid in pids:
            try:
                inode = os.stat(f"{self.proc}/{pid}/ns/net").st_ino
            except OSError:  # exited, or not ours to look at
                continue
            members.setdefault(inode, []).append(pid)
        return members

    def _host_inode(self) -> Optional[int]:
        # pid 1's namespace is the host's. Where pid 1 is hidden from us (even root can be
        # denied /proc/1/ns), our own namespace stands in: a tracer runs in the host's.
        for who in ("1", "self"):
            try:
                return os.stat(f"{self.proc}/{who}/ns/net").st_ino
            except OSError:
                pass
        return None

    def _container(self, pids: List[int]) -> Tuple[Optional[Tuple[str, str]], Optional[str]]:
        """The container of the first process that is in one: not a host daemon that
        holds the namespace too. With several (a pod's containers share its sandbox's
        namespace), the lowest pid, usually the sandbox (pause) that made it."""
        pod = None
        for pid in pids:
            try:
                with open(f"{self.proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
                    container, line_pod = _from_cgroup_file(f.read())
            except OSError:
                continue
            if container:
                return container, line_pod
            pod = pod or line_pod
        return None, pod
