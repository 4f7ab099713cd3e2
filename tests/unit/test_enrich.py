"""container_of on real-world cgroup paths, and Enricher on a fake /proc (no root needed).

In the fake /proc, /proc/PID/ns/net is a plain file and its inode stands for the namespace's:
processes sharing a namespace are hard links to one file, as /run/netns bind mounts are.
"""
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from droptrace import enrich
from droptrace.enrich import Enricher, NetnsInfo, container_of
from droptrace.runtime_names import RuntimeNames

D = "3f2a9c1b7e4d" + "a1" * 26  # a 64-hex container id
POD = "1d3c5e7f-0a2b-4c6d-8e9f-0123456789ab"
POD_ = POD.replace("-", "_")
STATIC_POD = "6d8b2fd1e2dd1f7e5e6d5a2b5c5f0e8a"  # static (mirror) pods: a 32-hex config hash

CASES = [
    # docker, cgroupfs driver (v1 and v2), systemd driver
    (f"/docker/{D}", "docker:3f2a9c1b7e4d", None),
    (f"/system.slice/docker-{D}.scope", "docker:3f2a9c1b7e4d", None),
    # containerd + k8s, cgroupfs driver: besteffort / burstable / guaranteed (no QoS level)
    (f"/kubepods/besteffort/pod{POD}/{D}", "containerd:3f2a9c1b7e4d", POD),
    (f"/kubepods/burstable/pod{POD}/{D}", "containerd:3f2a9c1b7e4d", POD),
    (f"/kubepods/pod{POD}/{D}", "containerd:3f2a9c1b7e4d", POD),
    (f"/kubepods/burstable/pod{STATIC_POD}/{D}", "containerd:3f2a9c1b7e4d", STATIC_POD),
    # containerd + k8s, systemd driver
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/cri-containerd-{D}.scope",
     "containerd:3f2a9c1b7e4d", POD),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_}.slice/cri-containerd-{D}.scope",
     "containerd:3f2a9c1b7e4d", POD),
    (f"/kubepods.slice/kubepods-pod{POD_}.slice/cri-containerd-{D}.scope", "containerd:3f2a9c1b7e4d", POD),
    # the pod's cgroup itself (a process in no container of it)
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice", None, POD),
    # CRI-O: systemd and cgroupfs drivers; conmon is the monitor, not the container
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_}.slice/crio-{D}.scope",
     "crio:3f2a9c1b7e4d", POD),
    (f"/kubepods/besteffort/pod{POD}/crio-{D}", "crio:3f2a9c1b7e4d", POD),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_}.slice/crio-conmon-{D}.scope",
     None, POD),
    # docker as the k8s runtime (dockershim / cri-dockerd), systemd driver
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/docker-{D}.scope",
     "docker:3f2a9c1b7e4d", POD),
    # podman rootful: systemd driver (plain, and with the payload in a `container` child), cgroupfs
    (f"/machine.slice/libpod-{D}.scope", "podman:3f2a9c1b7e4d", None),
    (f"/machine.slice/libpod-{D}.scope/container", "podman:3f2a9c1b7e4d", None),
    (f"/libpod_parent/libpod-{D}", "podman:3f2a9c1b7e4d", None),
    (f"/machine.slice/libpod-conmon-{D}.scope", None, None),
    # containerd alone (nerdctl)
    (f"/system.slice/nerdctl-{D}.scope", "containerd:3f2a9c1b7e4d", None),
    (f"/default/{D}", "containerd:3f2a9c1b7e4d", None),
    # kind / docker-in-docker: the innermost container wins
    (f"/docker/{'b' * 64}/kubepods/besteffort/pod{POD}/{D}", "containerd:3f2a9c1b7e4d", POD),
    (f"/docker/{D}/init.scope", "docker:3f2a9c1b7e4d", None),
    # the host
    ("/user.slice/user-0.slice/session-1.scope", None, None),
    ("/system.slice/sshd.service", None, None),
    ("/system.slice/docker.service", None, None),
    ("/system.slice/containerd.service", None, None),
    ("/init.scope", None, None),
    ("/kubepods.slice", None, None),
    ("/process_api/dc5720633cfe973fdbbd60a3aa7db48f", None, None),  # this test machine's own
    ("/", None, None),
    ("", None, None),
    # near misses: short or upper-case ids, a pod outside kubepods, a malformed UID
    (f"/docker/{D[:63]}", None, None),
    (f"/docker/{D.upper()}", None, None),
    (f"/system.slice/docker-{D}.service", None, None),
    (f"/machine.slice/pod{POD}", None, None),
    (f"/kubepods/besteffort/pod{POD_[:13]}{POD[13:]}/{D}", "containerd:3f2a9c1b7e4d", None),
]


@pytest.mark.parametrize("path, container, pod", CASES)
def test_container_of(path, container, pod):
    assert container_of(path) == (container, pod)


SHAPE_CONTAINER = re.compile(r"(docker|containerd|crio|podman):[0-9a-f]{12}")
SHAPE_POD = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
pieces = st.sampled_from(["/", "docker", "docker-", ".scope", ".slice", "kubepods", "kubepods-burstable-",
                          "pod", "cri-containerd-", "crio-", "libpod-", "_", "-", D, D[:32], POD, POD_])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.lists(st.one_of(pieces, st.text(max_size=3))).map("".join)))
@example(f"/kubepods/pod{POD}/docker/{D}")
@example("\udcff/\x00:" + D)
def test_container_of_any_text(path):
    container, pod = container_of(path)
    assert container is None or SHAPE_CONTAINER.fullmatch(container)
    assert pod is None or SHAPE_POD.fullmatch(pod)


# -- Enricher on a fake /proc --------------------------------------------------------
class FakeHost:
    def __init__(self, root: Path) -> None:
        self.proc, self.run_netns = root / "proc", root / "run" / "netns"
        self.proc.mkdir()
        self.run_netns.mkdir(parents=True)
        self.spare = root / "spare"
        self.spare.mkdir()
        self.made = 0

    def netns(self, name=None) -> Path:
        """A new namespace: a file whose inode is its inode (named if name)."""
        self.made += 1
        path = self.spare / f"ns{self.made}"
        path.touch()
        if name:
            os.link(path, self.run_netns / name)
        return path

    def process(self, pid: int, netns: Path, cgroup: str) -> None:
        (self.proc / str(pid) / "ns").mkdir(parents=True)
        os.link(netns, self.proc / str(pid) / "ns" / "net")
        (self.proc / str(pid) / "cgroup").write_text(cgroup)


def v1v2(path: str) -> str:
    """A hybrid host's /proc/PID/cgroup: v1 controllers elsewhere, the v2 line at path."""
    return f"4:memory:/process_api/ab12\n1:cpu:/\n0::{path}\n"


@pytest.fixture
def host(tmp_path):
    return FakeHost(tmp_path)


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(enrich, "monotonic", lambda: now[0])
    return now


def ino(path: Path) -> int:
    return path.stat().st_ino


def test_enricher_names_containers_pods(host):
    root = host.netns()
    host.process(1, root, v1v2("/"))
    host.process(5, root, v1v2(f"/system.slice/docker-{D}.scope"))  # --network host: not the host's name
    dock = host.netns()
    host.process(40, dock, v1v2("/system.slice/some-daemon.service"))  # a host daemon holding it too
    host.process(41, dock, f"9:name=systemd:/docker/{D}\n0::/\n")  # v1 line names it
    pod = host.netns("cni-1234")
    host.process(60, pod, v1v2(f"/kubepods/besteffort/pod{POD}/{'c' * 64}"))  # the sandbox
    host.process(61, pod, v1v2(f"/kubepods/besteffort/pod{POD}/{'d' * 64}"))
    plain = host.netns("blue")
    host.process(70, plain, v1v2("/user.slice/user-0.slice/session-1.scope"))
    (host.proc / "71").mkdir()  # exited while we scanned: no ns/net
    empty = host.netns("red")  # `ip netns add red`: no process at all
    host.netns()  # unnamed, no process: unknown

    e = Enricher(proc=str(host.proc), run_netns=str(host.run_netns),
                 runtime_names=RuntimeNames(*[str(host.spare)] * 3))  # no runtime state: no names
    assert e.lookup(ino(root)) == NetnsInfo(ino(root), None, None, None)
    assert e.lookup(ino(dock)) == NetnsInfo(ino(dock), None, "docker:3f2a9c1b7e4d", None)
    assert e.lookup(ino(pod)) == NetnsInfo(ino(pod), "cni-1234", "containerd:cccccccccccc", POD)
    assert e.lookup(ino(plain)) == NetnsInfo(ino(plain), "blue", None, None)
    assert e.lookup(ino(empty)) == NetnsInfo(ino(empty), "red", None, None)
    assert e.lookup(12345678) == NetnsInfo(12345678, None, None, None)


def test_enricher_missing_dirs(tmp_path):
    e = Enricher(proc=str(tmp_path / "noproc"), run_netns=str(tmp_path / "nonetns"))
    assert e.lookup(7) == NetnsInfo(7, None, None, None)


def test_enricher_rescans_unknown_at_most_once_a_second(host, clock):
    e = Enricher(proc=str(host.proc), run_netns=str(host.run_netns), ttl=30)
    e.lookup(1)  # the first scan
    late = host.netns("late")
    clock[0] += 0.5
    assert e.lookup(ino(late)).name is None  # rate-limited
    clock[0] += 0.5
    assert e.lookup(ino(late)).name == "late"  # a second on: rescanned


def test_enricher_known_inodes_refresh_after_ttl(host, clock):
    ns = host.netns("n")
    host.process(10, ns, v1v2("/user.slice"))
    e = Enricher(proc=str(host.proc), run_netns=str(host.run_netns), ttl=30)
    assert e.lookup(ino(ns)).container is None
    (host.proc / "10" / "cgroup").write_text(v1v2(f"/system.slice/docker-{D}.scope"))
    clock[0] += 29
    assert e.lookup(ino(ns)).container is None  # known: cached
    clock[0] += 1
    assert e.lookup(ino(ns)).container == "docker:3f2a9c1b7e4d"  # ttl passed
    (host.proc / "10" / "cgroup").write_text(v1v2("/"))
    e.refresh()
    assert e.lookup(ino(ns)).container is None


# --- names from the runtimes' state (runtime_names.py) ------------------------------------------------

P = "9c" * 32  # a Podman container's id


def runtime_state(root: Path) -> RuntimeNames:
    """Podman's containers/storage, Docker's container configs and the kubelet's pod log directories,
    laid out as the runtimes write them, under root."""
    storage = root / "storage" / "overlay-containers"
    storage.mkdir(parents=True)
    (storage / "containers.json").write_text(json.dumps([
        {"id": P, "names": ["web-1"], "image": "i", "layer": "l"},
        {"id": "ab" * 32, "names": [], "image": "i"}]))
    (root / "docker" / D).mkdir(parents=True)
    (root / "docker" / D / "config.v2.json").write_text(json.dumps({"ID": D, "Name": "/db"}))
    for pod_dir in (f"shop_cart-7d9f_{POD}", "not-a-pod-dir", "a_b"):
        (root / "pods" / pod_dir).mkdir(parents=True)
    return RuntimeNames(str(root / "storage"), str(root / "docker"), str(root / "pods"))


def test_runtime_names(tmp_path):
    names = runtime_state(tmp_path)
    names.reload()
    assert names.container_name(P) == "web-1"
    assert names.container_name(D) == "db"
    assert names.container_name("ab" * 32) is None
    assert names.container_name("../../etc") is None
    assert names.pod(POD) == ("shop", "cart-7d9f")
    assert names.pod("nope") == (None, None)


def test_runtime_names_absent_or_broken_state(tmp_path):
    (tmp_path / "storage" / "vfs-containers").mkdir(parents=True)
    (tmp_path / "storage" / "vfs-containers" / "containers.json").write_text("[{not json")
    names = RuntimeNames(str(tmp_path / "storage"), str(tmp_path / "none"), str(tmp_path / "none"))
    names.reload()
    assert names.container_name(P) is None and names.pod(POD) == (None, None)


def test_enricher_names_containers_and_pods_by_name(host, tmp_path):
    podman = host.netns("netns-1")
    host.process(30, podman, v1v2(f"/machine.slice/libpod-{P}.scope/container"))
    dock = host.netns()
    host.process(41, dock, v1v2(f"/system.slice/docker-{D}.scope"))
    pod = host.netns()
    host.process(60, pod, v1v2(f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
                               f"{POD.replace('-', '_')}.slice/cri-containerd-{'c' * 64}.scope"))
    e = Enricher(proc=str(host.proc), run_netns=str(host.run_netns), runtime_names=runtime_state(tmp_path))
    assert e.lookup(ino(podman)) == NetnsInfo(ino(podman), "netns-1", f"podman:{P[:12]}", None, "web-1")
    assert e.lookup(ino(dock)).container_name == "db"
    got = e.lookup(ino(pod))
    assert (got.pod_uid, got.pod_namespace, got.pod, got.container_name) == (POD, "shop", "cart-7d9f", None)
