"""Enricher against the real kernel: real `ip netns` namespaces, and real processes in real
cgroups named as container runtimes name them (no runtime needed: only the names matter)."""
import os
import secrets
import subprocess
import time
import uuid
from pathlib import Path
from typing import List, Optional

import pytest

from droptrace.enrich import Enricher, NetnsInfo
from droptrace.runtime_names import RuntimeNames

# Namespaces and cgroups as the host lays them out: on the host only.
pytestmark = pytest.mark.host_only


TAG = f"dtenr{os.getpid()}"


def cgroup2_mount() -> Optional[Path]:
    """Where cgroup2 is mounted (/sys/fs/cgroup on unified hosts, .../unified on hybrid ones)."""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(fields[1].replace("\\040", " "))
    return None


def netns_of(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


class Box:
    """What a test makes, all undone by undo(): processes, cgroup dirs, named namespaces."""

    def __init__(self) -> None:
        self.procs: List[subprocess.Popen] = []
        self.cgroups: List[Path] = []  # in creation order: removed in reverse (deepest first)
        self.netns: List[str] = []

    def ns(self, suffix: str) -> int:
        name = f"{TAG}{suffix}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.netns.append(name)
        return os.stat(f"/run/netns/{name}").st_ino

    def cgroup(self, relpath: str) -> Path:
        root = cgroup2_mount()
        if root is None:
            pytest.skip("no cgroup2 mount in /proc/mounts")
        path = root
        for part in relpath.split("/"):
            path = path / part
            if not path.exists():
                try:
                    path.mkdir()
                except OSError as e:
                    pytest.skip(f"cannot make a cgroup under {root}: {e}")
                self.cgroups.append(path)
        return path

    def start(self, *cmd: str, cgroup: Optional[Path] = None, netns_not: Optional[int] = None,
              netns_is: Optional[int] = None) -> subprocess.Popen:
        """Run cmd, move it into cgroup, and wait until it is in its namespace."""
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(proc.pid))
        deadline = time.monotonic() + 5
        while True:
            ino = netns_of(proc.pid)
            if (netns_not is None or ino != netns_not) and (netns_is is None or ino == netns_is):
                return proc
            assert proc.poll() is None and time.monotonic() < deadline, f"{cmd} did not enter its netns"
            time.sleep(0.01)

    def undo(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for path in reversed(self.cgroups):
            for _ in range(100):  # emptied asynchronously after the last task exits
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        for name in self.netns:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def box():
    b = Box()
    try:
        yield b
    finally:
        b.undo()


def test_ip_netns_name(box):
    inode = box.ns("n")
    assert Enricher().lookup(inode) == NetnsInfo(inode, f"{TAG}n", None, None)


def test_namespace_made_after_first_scan_is_found(box):
    e = Enricher()
    e.refresh()
    scanned = time.monotonic()
    inode = box.ns("late")
    first = e.lookup(inode)
    if time.monotonic() - scanned < 0.9:
        assert first.name is None  # rescans are rate-limited to one a second
    deadline = time.monotonic() + 3
    while e.lookup(inode).name is None:
        assert time.monotonic() < deadline, "a new namespace was not found by a rescan"
        time.sleep(0.1)
    assert e.lookup(inode) == NetnsInfo(inode, f"{TAG}late", None, None)


def test_docker_container(box):
    cid = secrets.token_hex(32)
    cg = box.cgroup(f"system.slice/docker-{cid}.scope")
    me = netns_of(os.getpid())
    proc = box.start("unshare", "-n", "sleep", "60", cgroup=cg, netns_not=me)
    inode = netns_of(proc.pid)
    assert Enricher().lookup(inode) == NetnsInfo(inode, None, f"docker:{cid[:12]}", None)


def test_kubernetes_pod(box, tmp_path):
    cid, pod = secrets.token_hex(32), str(uuid.uuid4())
    (tmp_path / "pods" / f"shop_web-0_{pod}").mkdir(parents=True)  # the kubelet's log directory of the pod
    slice_ = f"kubepods-burstable-pod{pod.replace('-', '_')}.slice"
    cg = box.cgroup(f"kubepods.slice/kubepods-burstable.slice/{slice_}/cri-containerd-{cid}.scope")
    inode = box.ns("pod")  # as CNI plugins do: the pod's namespace is also bind-mounted
    # A host process holding the namespace too (lower pid) must not hide the container.
    box.start("ip", "netns", "exec", f"{TAG}pod", "sleep", "60", netns_is=inode)
    box.start("ip", "netns", "exec", f"{TAG}pod", "sleep", "60", cgroup=cg, netns_is=inode)
    names = RuntimeNames(str(tmp_path / "storage"), str(tmp_path / "docker"), str(tmp_path / "pods"))
    assert Enricher(runtime_names=names).lookup(inode) == NetnsInfo(
        inode, f"{TAG}pod", f"containerd:{cid[:12]}", pod, None, "web-0", "shop")


def test_host_namespace_has_no_container(box):
    me = netns_of(os.getpid())
    try:
        if netns_of(1) != me:
            pytest.skip("this test does not run in the host's network namespace")
    except PermissionError:
        pass  # pid 1 hidden from us (as on some sandboxes): Enricher takes ours as the host's
    cg = box.cgroup(f"system.slice/docker-{secrets.token_hex(32)}.scope")
    box.start("sleep", "60", cgroup=cg, netns_is=me)  # a `--network host` container
    assert Enricher().lookup(me) == NetnsInfo(me, None, None, None)
