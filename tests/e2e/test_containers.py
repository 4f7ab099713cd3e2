"""Real containers (Debian's podman, rootful): the exporter names the drops in each by the container's
name (issue 25), and, with DROPTRACE_TEST_IMAGE=1 (`make test-image`), deploy/Containerfile is built and
the exporter run from that image, scraped by Prometheus.

The base image is made from Debian's packages (scripts/make-base-image: debootstrap, podman import), as
no image registry is reachable here. Each container has its own network namespace with only loopback
(--network none): the drops it makes stay inside, and podman changes no firewall or route of the host.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ..unit.tls_files import PASSWORD, USER, make_tls_files
from .conftest import HAS_REASONS, Droptrace
from .test_exporter import free_port, get, prometheus, query, samples, wait_for  # noqa: F401 (fixture)

ROOT_DIR = Path(__file__).resolve().parents[2]
DAEMONSET = ROOT_DIR / "deploy" / "kubernetes" / "daemonset.yaml"

pytestmark = [pytest.mark.host_only, pytest.mark.container,
              pytest.mark.skipif(not HAS_REASONS, reason="the series are by reason")]

BASE_IMAGE = "docker.io/library/debian:bookworm-slim"  # deploy/Containerfile's FROM, as podman resolves it
TAG = f"dt25-{os.getpid()}"
# runc, not crun: crun refuses hosts with hybrid cgroups (v1 controllers and a v2 tree), as some of ours
# are. Limits within the hard ones: without CAP_SYS_RESOURCE podman's defaults (nofile 1048576) fail.
PODMAN_RUN = ["podman", "run", "--runtime", "runc", "--ulimit", "nofile=1024:1024",
              "--ulimit", "nproc=1024:1024"]


@pytest.fixture(scope="module")
def base_image():
    if shutil.which("podman") is None:
        pytest.fail("podman is needed (scripts/install-system-deps installs it)")
    r = subprocess.run([str(ROOT_DIR / "scripts" / "make-base-image"), BASE_IMAGE], capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    return BASE_IMAGE


@pytest.fixture
def containers():
    made = []

    def start(name: str, image: str, *cmd: str, options=()) -> str:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)
        r = subprocess.run([*PODMAN_RUN, "-d", "--name", name, *options, image, *cmd], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        made.append(name)
        return name
    yield start
    for name in made:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)


def podman_exec(name: str, script: str) -> str:
    r = subprocess.run(["podman", "exec", name, "bash", "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def udp_no_ports(name: str) -> int:
    """Udp NoPorts of the container's own network namespace, read inside it."""
    snmp = podman_exec(name, "cat /proc/net/snmp").splitlines()
    lines = [ln.split() for ln in snmp if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("NoPorts")])


def send_to_closed_port(name: str, n: int) -> None:
    """n UDP datagrams to a closed port on the container's loopback: n NO_SOCKET drops in its namespace."""
    podman_exec(name, f"for i in $(seq {n}); do echo x > /dev/udp/127.0.0.1/9; done")


def test_drops_in_named_containers_carry_their_names(base_image, containers):
    names = {f"{TAG}-web": 3, f"{TAG}-db": 5}
    for name in names:
        containers(name, base_image, "sleep", "infinity", options=("--network", "none"))
    port = free_port()
    dt = Droptrace("exporter", "--listen", f"127.0.0.1:{port}", "--reason", "NO_SOCKET",
                   "--labels", "reason,container_name,container", json_events=False)
    try:
        dt.wait_ready()
        url = f"http://127.0.0.1:{port}/metrics"
        for name, n in names.items():
            send_to_closed_port(name, n)
            assert udp_no_ports(name) == n  # what the container's own kernel counters say

        def by_name():
            got = samples(get(url).decode(), "droptrace_drops_total")
            return {dict(k)["container_name"]: (v, dict(k)["container"]) for k, v in got.items()}
        def all_counted():
            g = by_name()
            return g if all(g.get(n, (0,))[0] == c for n, c in names.items()) else None
        got = wait_for(all_counted, 30, f"the drops of {sorted(names)} by name")
        for name in names:
            full = subprocess.run(["podman", "inspect", "--format", "{{.Id}}", name], capture_output=True,
                                  text=True, check=True).stdout.strip()
            assert got[name][1] == f"podman:{full[:12]}"
    finally:
        assert dt.stop() == 0, dt.stderr


# --- the image -----------------------------------------------------------------------------------------

IMAGE = f"localhost/droptrace-exporter:{TAG}"


def daemonset_container() -> tuple:
    """(argv, capabilities, host paths mounted read-only, where the web config goes) of the DaemonSet's
    exporter container: the image is run as the DaemonSet runs it."""
    ds = next(d for d in yaml.safe_load_all(DAEMONSET.read_text()) if d and d["kind"] == "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    paths, web = [], None
    for m in c["volumeMounts"]:
        assert m["readOnly"] is True
        if "hostPath" in volumes[m["name"]]:
            paths.append(volumes[m["name"]]["hostPath"]["path"])
        else:
            web = m["mountPath"]
    return c["command"] + c["args"], c["securityContext"]["capabilities"]["add"], paths, web


def build_options(tmp_path: Path) -> list:
    """podman build's options here. --no-cache: podman 4.3 (buildah 1.28) does not find a cached stage's
    files for `RUN --mount=type=bind,from=build` (a fresh build does); --layers=false leaves no image of
    the build stage behind. Docker format: HEALTHCHECK kept.
    The host's network, so no bridge or firewall rule is made. Where pip is told to trust a CA of the
    host's (a proxy that signs PyPI's certificate, as on our machines), RUN steps see it too, through
    volumes that are not part of the image."""
    options = ["--no-cache", "--layers=false", "--format", "docker", "--runtime", "runc", "--network", "host"]
    ca = os.environ.get("PIP_CERT")
    if ca and Path(ca).is_file():
        conf = tmp_path / "pip.conf"
        conf.write_text("[global]\ncert = /build-ca.crt\n")
        options += ["-v", f"{ca}:/build-ca.crt:ro", "-v", f"{conf}:/etc/pip.conf:ro"]
    return options


@pytest.mark.skipif(os.environ.get("DROPTRACE_TEST_IMAGE") != "1",
                    reason="builds the image (a 300 MB download): make test-image, or DROPTRACE_TEST_IMAGE=1")
def test_the_image_runs_the_exporter(base_image, containers, lab, prometheus, tmp_path):  # noqa: F811
    """deploy/Containerfile built with podman; the exporter run from it with the DaemonSet's command line,
    capabilities (all others dropped), read-only mounts and a read-only root; a real Prometheus scrapes it
    over TLS with basic auth and sees exactly the drops the lab makes. Unlike the DaemonSet, it shares the
    host's network namespace (listening on 127.0.0.1 only): a namespace of its own would need podman's
    bridge and firewall rules on this shared machine."""
    from droptrace.lab import B4, IFNAME

    from .test_cli import no_ports, wait_no_ports

    build = subprocess.run(["podman", "build", *build_options(tmp_path), "-f", "deploy/Containerfile", "-t",
                            IMAGE, "."], cwd=ROOT_DIR, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        argv, caps, paths, web = daemonset_container()
        port = free_port()
        argv[argv.index("--listen") + 1] = f"127.0.0.1:{port}"
        tls = make_tls_files(tmp_path / "web")
        options = ["--network", "host", "--pid", "host", "--cap-drop", "ALL", "--read-only",
                   "--entrypoint", argv[0], "-v", f"{tls.config.parent}:{web}:ro"]
        for cap in caps:
            options += ["--cap-add", cap]
        for path in paths:
            if Path(path).exists():
                options += ["-v", f"{path}:{path}:ro"]
        name = containers(f"{TAG}-exporter", IMAGE, *argv[1:], "--netns", lab.b, options=options)

        def logs() -> str:
            return subprocess.run(["podman", "logs", name], capture_output=True, text=True).stderr
        wait_for(lambda: "Tracing" in logs(), 120, "the exporter in the image to attach")
        (tmp_path / "password").write_text(PASSWORD)
        api = prometheus(f"127.0.0.1:{port}", "    scheme: https\n    basic_auth:\n"
                         f"      username: {USER}\n      password_file: {tmp_path / 'password'}\n"
                         f"    tls_config:\n      ca_file: {tls.ca}\n")
        wait_for(lambda: query(api, 'up{job="droptrace"} == 1'), 60, "the image's exporter to be scraped")
        sel = f'droptrace_drops_total{{reason="NO_SOCKET",netns="{lab.inode(lab.b)}",ifname="{IFNAME}"}}'

        def current():
            r = query(api, sel)
            return float(r[0]["value"][1]) if r else 0.0
        before, n, base = current(), 9, no_ports(lab)
        lab.traffic(lab.a, "udp", B4, "9", "--count", str(n))
        wait_no_ports(lab, base + n)
        wait_for(lambda: current() - before == n or None, 30, f"{sel} to grow by {n}")
        assert "Traceback" not in logs()
    finally:
        subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True)
