"""`droptrace exporter` against a real Prometheus server and the real kernel (issue 10)."""
import base64
import json
import re
import shutil
import socket
import ssl
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from droptrace.lab import B4, IFNAME

from ..unit.tls_files import PASSWORD, USER, make_tls_files
from .conftest import HAS_REASONS, Droptrace, run
from .test_cli import no_ports, wait_no_ports

# The series are by reason: kernels before 5.17 have none (the exporter's labels read "").
pytestmark = pytest.mark.skipif(not HAS_REASONS, reason="this kernel has no drop reasons")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def wait_for(cond, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def samples(page: str, name: str):
    """{frozenset(labels): value} of one metric on a /metrics page."""
    out = {}
    for m in re.finditer(rf"^{name}\{{(.*?)\}} (\S+)$", page, re.M):
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out[labels] = float(m.group(2))
    return out


@pytest.fixture
def exporter(lab):
    started = []

    def start(*args):
        port = free_port()
        dt = Droptrace("exporter", "--listen", f"127.0.0.1:{port}", "--netns", lab.b, *args,
                       json_events=False)
        dt.wait_ready()
        started.append(dt)
        scheme = "https" if "--web.config.file" in args else "http"
        return dt, f"{scheme}://127.0.0.1:{port}"
    yield start
    for dt in started:
        if dt.proc.poll() is None:
            assert dt.stop() == 0, dt.stderr


def promtool_check(page: bytes) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian's prometheus package) is needed"
    r = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pages_and_self_metrics(exporter):
    _, url = exporter()
    page = get(url + "/metrics")
    promtool_check(page)
    text = page.decode()
    assert re.search(r'^droptrace_info\{hook="tp_btf",kernel="[^"]+",version="[^"]+"\} 1\.0$', text, re.M)
    for name in ("droptrace_uncounted_drops_total", "droptrace_folded_series_total",
                 "droptrace_scrape_duration_seconds", "process_resident_memory_bytes"):
        assert re.search(rf"^{name} ", text, re.M), name
    assert get(url + "/healthz") == b"ok\n"
    assert b'href="/metrics"' in get(url + "/")


@pytest.fixture
def prometheus(tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "prometheus (Debian's package) is needed"
    procs = []

    def start(target: str, job: str = ""):
        """job: more settings of the scrape job, as YAML lines indented by four."""
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
                       f"  - job_name: droptrace\n{job}    static_configs:\n      - targets: ['{target}']\n")
        proc = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        api = f"http://127.0.0.1:{port}"

        def ready():
            try:
                return get(api + "/-/ready", 2).startswith(b"Prometheus Server is Ready")
            except OSError:
                return False
        wait_for(ready, 60, "prometheus to be ready")
        return api
    yield start
    for p in procs:
        p.terminate()
        p.wait(30)


def query(api: str, promql: str):
    data = json.loads(get(api + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
    assert data["status"] == "success", data
    return data["data"]["result"]


@pytest.mark.matrix
def test_prometheus_sees_exactly_the_drops_provoked(lab, exporter, prometheus):
    dt, url = exporter()
    api = prometheus(url.replace("http://", ""))
    # readiness: the target is up and has been scraped at least once
    wait_for(lambda: query(api, 'up{job="droptrace"} == 1'), 60, "the exporter to be scraped")
    sel = f'droptrace_drops_total{{reason="NO_SOCKET",netns="{lab.inode(lab.b)}",ifname="{IFNAME}"}}'

    def current():
        r = query(api, sel)
        return float(r[0]["value"][1]) if r else 0.0
    before = current()
    n = 7
    base = no_ports(lab)
    lab.traffic(lab.a, "udp", B4, "9", "--count", str(n))
    wait_no_ports(lab, base + n)
    assert wait_for(lambda: current() - before == n or None, 30, f"{sel} to grow by {n}")
    page = get(url + "/metrics").decode()
    got = samples(page, "droptrace_drops_total")
    key = frozenset({("reason", "NO_SOCKET"), ("netns", str(lab.inode(lab.b))), ("ifname", IFNAME)})
    assert got[key] - before == n


def test_prometheus_scrapes_over_tls_with_basic_auth(lab, exporter, prometheus, tmp_path):
    """--web.config.file: a real Prometheus scrapes over TLS with basic auth and sees the drops; a request
    without credentials, or with a wrong password, is a 401; /healthz answers probes without."""
    tls = make_tls_files(tmp_path / "tls")
    dt, url = exporter("--web.config.file", str(tls.config), "--reason", "NO_SOCKET")
    assert url.startswith("https://")
    (tmp_path / "password").write_text(PASSWORD)
    api = prometheus(url.replace("https://", ""), "    scheme: https\n    basic_auth:\n"
                     f"      username: {USER}\n      password_file: {tmp_path / 'password'}\n"
                     f"    tls_config:\n      ca_file: {tls.ca}\n")
    wait_for(lambda: query(api, 'up{job="droptrace"} == 1'), 60, "the exporter to be scraped over TLS")
    sel = f'droptrace_drops_total{{reason="NO_SOCKET",netns="{lab.inode(lab.b)}",ifname="{IFNAME}"}}'
    n, base = 5, no_ports(lab)
    lab.traffic(lab.a, "udp", B4, "9", "--count", str(n))
    wait_no_ports(lab, base + n)
    wait_for(lambda: [r for r in query(api, sel) if float(r["value"][1]) == n], 30, f"{sel} to be {n}")
    ctx = ssl.create_default_context(cafile=str(tls.ca))
    for headers in ({}, basic_auth(USER, "not the password")):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers=headers), context=ctx)
        assert e.value.code == 401
    ok = urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers=basic_auth(USER, PASSWORD)),
                                context=ctx).read().decode()
    assert samples(ok, "droptrace_drops_total")[frozenset({("reason", "NO_SOCKET"),
                                                           ("netns", str(lab.inode(lab.b))),
                                                           ("ifname", IFNAME)})] == n
    assert urllib.request.urlopen(url + "/healthz", context=ctx).read() == b"ok\n"


def basic_auth(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_clients_that_vanish_are_no_traceback(exporter):
    """Clients that reset the connection before their answer, or send half a request and wait: the
    exporter keeps answering, and says so in one short line at most, never a traceback."""
    dt, url = exporter()
    port = int(url.rsplit(":", 1)[1])
    held = []
    for _ in range(200):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        held.append(c)
    for _ in range(5):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    assert b"droptrace_info{" in get(url + "/metrics")  # answered while those wait
    assert get(url + "/healthz") == b"ok\n"
    for c in held:
        c.close()
    assert dt.stop() == 0
    err = "".join(dt.stderr)
    assert "Traceback" not in err, err
    usual = ("Tracing", "droptrace: note:", "droptrace exporter: stopped")
    said = [ln for ln in dt.stderr if not ln.startswith(usual)]
    assert len(said) <= 1 and all("went away" in ln for ln in said), err


def test_series_are_capped_and_sums_stay_exact(lab, exporter):
    """Distinct ports past --max-series fold into `other`; the folded series count in the cap (two slots
    kept: NO_SOCKET's `other`, and one for a reason not listed); sum by reason is still exact."""
    dt, url = exporter("--labels", "reason,netns,dport", "--max-series", "50", "--reason", "NO_SOCKET")
    ordinary = 50 - 2
    get(url + "/metrics")  # a first read: the map is empty, nothing assigned yet
    base = no_ports(lab)
    ports = 200
    lab.traffic(lab.a, "udp", B4, "20000", "--ports", str(ports))
    wait_no_ports(lab, base + ports)
    page = get(url + "/metrics")
    promtool_check(page)
    got = samples(page.decode(), "droptrace_drops_total")
    assert len(got) == ordinary + 1, len(got)  # and one `other` for the reason
    other = frozenset({("reason", "NO_SOCKET"), ("netns", "other"), ("dport", "other")})
    assert got[other] == ports - ordinary
    assert all(v == 1 for k, v in got.items() if k != other)
    assert sum(got.values()) == ports  # sum by (reason) is exact
    folded = float(re.search(r"^droptrace_folded_series_total (\S+)$", page.decode(), re.M).group(1))
    assert folded == ports - ordinary


def test_max_series_that_leaves_no_room_is_one_line(lab):
    r = run("exporter", "--listen", "127.0.0.1:0", "--labels", "reason,dport", "--max-series", "3",
            "--reason", "NO_SOCKET,NO_SOCKET,TCP_CSUM")
    assert r.returncode == 2 and "--max-series 3 leaves no room: 3 label sets" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_idle_kernel_keys_are_forgotten_and_counters_keep_growing(lab, exporter):
    """--forget-after deletes idle keys from the kernel map; the series keeps its count, and drops
    after that add to it (a new kernel key, the same label set)."""
    dt, url = exporter("--labels", "reason,dport", "--forget-after", "1", "--reason", "NO_SOCKET")
    key = frozenset({("reason", "NO_SOCKET"), ("dport", "9")})

    def scrape():
        page = get(url + "/metrics").decode()
        forgotten = float(re.search(r"^droptrace_forgotten_keys_total (\S+)$", page, re.M).group(1))
        return samples(page, "droptrace_drops_total").get(key, 0.0), forgotten

    total = 0
    for n in (3, 4):
        base = no_ports(lab)
        lab.traffic(lab.a, "udp", B4, "9", "--count", str(n))
        wait_no_ports(lab, base + n)
        total += n
        count, forgotten_before = scrape()
        assert count == total
        # idle for a second: a later read deletes the key from the map, and the count stays
        deadline = time.monotonic() + 30
        while (now := scrape())[1] <= forgotten_before:
            assert time.monotonic() < deadline, "the idle key was never forgotten"
            time.sleep(0.2)
        assert now[0] == total


def test_ephemeral_ports_are_one_label(lab, exporter):
    dt, url = exporter("--labels", "reason,dport")
    base = no_ports(lab)
    for port in ("40000", "50000", "9"):
        lab.traffic(lab.a, "udp", B4, port)
    wait_no_ports(lab, base + 3)
    got = samples(get(url + "/metrics").decode(), "droptrace_drops_total")
    assert got[frozenset({("reason", "NO_SOCKET"), ("dport", "ephemeral")})] == 2
    assert got[frozenset({("reason", "NO_SOCKET"), ("dport", "9")})] == 1


@pytest.mark.host_only
@pytest.mark.parametrize("args,text", [(["--listen", "nowhere"], "expected ADDR:PORT"),
                                       (["--listen", "example.com:80"], "not an IP address"),
                                       (["--labels", "reason,colour"], "unknown label 'colour'"),
                                       (["--max-series", "0"], "greater than zero"),
                                       (["--ephemeral-from", "70000"], "'70000' is not a port"),
                                       (["--web.config.file", "/nonexistent.yml"], "No such file")])
def test_bad_exporter_arguments(args, text):
    r = run("exporter", *args)
    assert r.returncode == 2 and text in r.stderr and "Traceback" not in r.stderr
