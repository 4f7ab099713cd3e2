"""Nothing lost on the way out, nothing destroyed on a bad start (issue 8), against the real kernel."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import droptrace
from droptrace.lab import B4, IFNAME, by_name

from .conftest import DROPTRACE, UNPRIVILEGED, Droptrace, run
from .test_cli import TRACEBACK, no_ports, wait_no_ports


def wait_for(cond, timeout=30.0, what="condition"):
    """Poll a condition the kernel or /proc reports (a readiness check, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def blocked_writing(pid: int) -> bool:
    """True while the process sleeps in a write to a full pipe."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "pipe_write" in f.read()  # pipe_write, or anon_pipe_write on 6.18
    except OSError:
        return False


def env_with(unbuffered: bool) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


HOST = pytest.mark.host_only  # the output path does not depend on the kernel: one case in the VMs
CASES = [("--json", True, signal.SIGINT), pytest.param("--json", True, signal.SIGTERM, marks=HOST),
         pytest.param("--json", False, signal.SIGINT, marks=HOST),
         pytest.param("--json", False, signal.SIGTERM, marks=HOST),
         pytest.param("text", True, signal.SIGINT, marks=HOST),
         pytest.param("text", False, signal.SIGTERM, marks=HOST)]


def _case_id(m, u, s):
    return f"{m}-{'unbuffered' if u else 'buffered'}-{s.name}"


@pytest.mark.parametrize("mode,unbuffered,sig", CASES,
                         ids=[_case_id(*(c.values if hasattr(c, "values") else c)) for c in CASES])
def test_a_reader_that_pauses_loses_nothing_silently(lab, mode, unbuffered, sig):
    """Thousands of drops while nobody reads stdout (far more than a pipe holds), then a
    signal while droptrace is blocked writing: every line arrives whole, the lines are
    exactly the drops it says it showed, and shown + lost is the kernel's own count."""
    n = 6000
    before = no_ports(lab)
    args = [DROPTRACE, "--netns", lab.b, "--reason", "NO_SOCKET"] + (["--json"] if mode == "--json" else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_with(unbuffered))
    err = []
    ready = threading.Event()

    def read_err():
        for line in proc.stderr:
            err.append(line.decode())
            if b"Tracing" in line:
                ready.set()
        ready.set()
    t = threading.Thread(target=read_err, daemon=True)
    t.start()
    try:
        assert ready.wait(30) and proc.poll() is None, err
        lab.traffic(lab.a, "udp", B4, "9", "--count", str(n))
        wait_no_ports(lab, before + n)  # every datagram was dropped (the kernel's count)
        wait_for(lambda: blocked_writing(proc.pid), what="droptrace blocked on a full pipe")
        proc.send_signal(sig)
        out = proc.stdout.read()  # only now does anybody read
        assert proc.wait(60) == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    t.join(10)
    lines = out.decode().splitlines()
    m = re.match(r"droptrace: (\d+) drops shown, (\d+) lost", err[-1])
    assert m, err
    shown, lost = int(m.group(1)), int(m.group(2))
    if mode == "--json":
        events = [json.loads(ln) for ln in lines]  # every line whole: each parses
    else:
        assert lines[0].startswith("TIME")
        events = lines[1:]
        assert all(re.match(r"^\d\d:\d\d:\d\d\.\d{3}\s+\d+\s.*NO_SOCKET\s.*len=\d+$", ln) for ln in events)
    assert len(events) == shown
    assert shown + lost == n, (shown, lost)
    assert shown > 0


@pytest.mark.host_only
def test_a_full_disk_on_stdout_is_one_line(lab):
    with open("/dev/full", "wb") as full:
        proc = subprocess.Popen([DROPTRACE, "--json", "--netns", lab.b], stdout=full,
                                stderr=subprocess.PIPE, text=True)
        for line in proc.stderr:  # readiness
            if "Tracing" in line:
                break
        by_name("udp4-closed-port").provoke(lab)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.strip() == "droptrace: error: writing stdout: No space left on device"


@pytest.mark.host_only
def test_a_reader_that_goes_away_ends_it_quietly(lab):
    """droptrace --json | head -1"""
    proc = subprocess.Popen([DROPTRACE, "--json", "--netns", lab.b], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        for line in proc.stderr:  # readiness
            if b"Tracing" in line:
                break
        by_name("udp4-closed-port").provoke(lab)
        assert json.loads(proc.stdout.readline())["dport"] == 9
        proc.stdout.close()
        for _ in range(3):
            by_name("udp4-closed-port").provoke(lab)
        assert proc.wait(30) == 0
        assert TRACEBACK.encode() not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


# -- recording ------------------------------------------------------------
@pytest.mark.host_only
def test_a_failed_start_leaves_an_existing_recording_alone(tmp_path):
    keep = tmp_path / "keep.pcapng"
    keep.write_bytes(b"precious" * 1000)
    for args in (["--reason", "NOPE"], ["udp port"], ["-i", "x" * 20], ["--netns", "12345"]):
        r = run("record", "-w", str(keep), *args)
        assert r.returncode != 0 and TRACEBACK not in r.stderr, r.stderr
        assert keep.read_bytes() == b"precious" * 1000, args
    r = subprocess.run([*UNPRIVILEGED, DROPTRACE, "record", "-w", str(keep)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "needs root" in r.stderr
    assert keep.read_bytes() == b"precious" * 1000


def test_snaplen_trims_what_is_stored_not_what_is_filtered(lab, tmp_path):
    path = tmp_path / "short.jsonl"
    pcap = tmp_path / "short.pcapng"
    with Droptrace("record", "-w", str(pcap), "--snaplen", "20", "--netns", lab.b, "-c", "1",
                   "udp port 39999") as rec, \
         Droptrace("record", "-w", str(path), "--snaplen", "20", "--netns", lab.b, "-c", "1",
                   "--reason", "NO_SOCKET") as rec2:
        rec.wait_ready()
        rec2.wait_ready()
        lab.traffic(lab.a, "udp", B4, "39999")
        assert rec.wait() == 0 and rec2.wait() == 0
    events = list(droptrace.read(str(pcap)))
    assert len(events) == 1 and len(events[0].packet) == 20  # stored: 20 bytes
    assert (events[0].saddr, events[0].dport) == (lab_a4(), 39999)  # decoded: from the full headers
    e = json.loads(path.read_text().splitlines()[0])
    assert (e["daddr"], e["dport"]) == (B4, 39999)


def lab_a4():
    from droptrace.lab import A4

    return A4


def test_a_recording_says_what_it_lost(lab, tmp_path):
    """Under a flood into a small ring buffer the file itself records the loss, and
    report shows it."""
    n = 20000
    for fmt in ("pcapng", "jsonl"):
        path = tmp_path / f"flood.{fmt}"
        before = no_ports(lab)
        with Droptrace("record", "-w", str(path), "--ring-buffer", "1", "--netns", lab.b,
                       "--reason", "NO_SOCKET") as dt:
            dt.wait_ready()
            lab.traffic(lab.a, "udp", B4, "9", "--count", str(n))
            wait_no_ports(lab, before + n)
            assert dt.stop() == 0
        m = re.search(r"(\d+) drops written to .*, (\d+) lost", dt.stderr[-1])
        written, lost = int(m.group(1)), int(m.group(2))
        assert written + lost == n
        rec = droptrace.read(str(path))
        assert sum(1 for _ in rec) == written
        assert rec.summary == {"written": written, "lost": lost}
        s = json.loads(run("report", str(path), "--json").stdout)
        assert (s["total"], s["lost"]) == (written, lost)
        if lost:
            assert f"{lost} more drops lost" in run("report", str(path)).stdout
        if fmt == "pcapng":  # tshark reads the statistics block too
            r = subprocess.run(["tshark", "-r", str(path), "-c", "1"], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr


def test_record_to_stdout(lab, tmp_path):
    for fmt, check in (("pcapng", lambda b: b[:4] == b"\x0a\x0d\x0d\x0a"),
                       ("jsonl", lambda b: json.loads(b.splitlines()[0])["dport"] == 9)):
        proc = subprocess.Popen([DROPTRACE, "record", "-w", "-", "--format", fmt, "--netns", lab.b,
                                 "-c", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for line in proc.stderr:
            if b"Tracing" in line:
                break
        by_name("udp4-closed-port").provoke(lab)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert check(out), out[:100]
        assert b"written to stdout" in err
        if fmt == "pcapng":
            r = subprocess.run(["tshark", "-r", "-", "-T", "fields", "-e", "udp.dstport"], input=out,
                               capture_output=True)
            assert r.stdout.split() == [b"9"], r.stderr


# -- filters given twice mean either -------------------------------------
@pytest.mark.parametrize("idle", [0, 3], ids=["in-place", "map"])
def test_repeated_netns_and_interface_filters_are_a_union(lab, idle):
    """Up to DT_NETNS_FEW namespaces are compared in the configuration, more through a map: with
    three idle namespaces listed as well, the five take the map's path."""
    names = [f"dtidle{os.getpid()}x{i}" for i in range(idle)]
    for n in names:
        subprocess.run(["ip", "netns", "add", n], check=True)
    extra = [a for n in names for a in ("--netns", n)]
    try:
        with Droptrace("--json", "--netns", lab.a, "--netns", lab.b, *extra, "-i", IFNAME, "-i", "lo") as dt:
            _expect_both_namespaces(lab, dt)
    finally:
        for n in names:
            subprocess.run(["ip", "netns", "del", n], check=False)


def _expect_both_namespaces(lab, dt) -> None:
    dt.wait_ready()
    by_name("udp4-closed-port").provoke(lab)  # dropped in B
    by_name("neigh-failed").provoke(lab)  # dropped in A
    seen = set()
    for _ in range(2):
        e = dt.find(lambda e: e["netns"] not in seen and e["reason"] in ("NO_SOCKET", "NEIGH_FAILED"))
        assert e is not None, (seen, dt.stderr)
        seen.add(e["netns"])
    assert seen == {lab.inode(lab.a), lab.inode(lab.b)}


# -- top --------------------------------------------------------------------
@pytest.mark.parametrize("group,fields", [("reason", ["reason"]), ("location", ["location"]),
                                          ("iface", ["ifname", "netns"])])
def test_top_json_groups_as_asked(lab, group, fields):
    before = no_ports(lab)
    with Droptrace("top", "--json", "--group", group, "--netns", lab.b, "--interval", "0.2") as dt:
        dt.wait_ready()
        for port in ("9", "10", "11"):
            lab.traffic(lab.a, "udp", B4, port)
        by_name("tcp-closed-port").provoke(lab)
        wait_no_ports(lab, before + 3)
        assert dt.stop() == 0
    out = json.loads("".join(dt.stdout))
    assert out["group"] == group
    keys = [tuple(r[f] for f in fields) for r in out["rows"]]
    assert len(keys) == len(set(keys))  # one row per group
    assert all(set(r) == set(fields) | {"count", "bytes", "share", "rate"} for r in out["rows"])
    assert sum(r["count"] for r in out["rows"]) == out["total"] == 4


def test_top_in_the_background_of_a_script_stops_on_sigint(lab):
    """A non-interactive shell starts background jobs with SIGINT ignored."""
    script = '"$@" & echo $! ; wait'
    proc = subprocess.Popen(["sh", "-c", script, "sh", DROPTRACE, "top", "--json", "--netns", lab.b],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    for line in proc.stderr:
        if "Tracing" in line:
            break
    os.kill(pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert json.loads(out)["total"] == 0


@pytest.mark.host_only
def test_json_where_it_was_ignored():
    r = run("--list-reasons", "--json")
    assert r.returncode == 0
    names = {x["name"] for x in json.loads(r.stdout)["reasons"]}
    assert "NO_SOCKET" in names and "CONSUMED" not in names
    r = run("doctor", "--json")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["hook"] == "tp_btf" and any(c["name"] == "hook raw_tp" and c["ok"] for c in d["checks"])


# -- the lab and the kernel after a SIGKILL -----------------------------------
def test_the_lab_removes_namespaces_left_by_a_killed_lab():
    dead = 4194304 + 7  # above PID_MAX_LIMIT: no process can have it
    stale = [f"dtlab{dead}a", f"dtlab{dead}b"]
    for ns in stale:
        subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        r = subprocess.run([DROPTRACE, "lab", "udp4-closed-port"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Removed namespaces left by killed labs" in r.stdout
        assert not any(os.path.exists(f"/run/netns/{ns}") for ns in stale)
    finally:
        for ns in stale:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def ours(kind: str) -> set:
    """droptrace's BPF programs (or links) loaded in the kernel now, by id."""
    r = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True, check=True)
    items = json.loads(r.stdout or "[]")
    if kind == "prog":
        return {p["id"] for p in items if str(p.get("name", "")).startswith("dt_")}
    progs = ours("prog")
    return {link["id"] for link in items if link.get("prog_id") in progs}


@pytest.mark.parametrize("mode", [["--json"], ["top", "--json"], ["record", "-w", "{tmp}/k.pcapng"],
                                  ["lab", "all"]], ids=["stream", "top", "record", "lab"])
def test_sigkill_leaves_no_bpf_program_or_link(lab, tmp_path, mode):
    before_progs, before_links = ours("prog"), ours("link")
    args = [a.replace("{tmp}", str(tmp_path)) for a in mode]
    proc = subprocess.Popen([DROPTRACE, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # readiness: attached
        if "Tracing" in line:
            break
    assert ours("prog") - before_progs, "droptrace's program should be loaded while it runs"
    proc.kill()
    proc.wait(30)
    # the kernel frees programs once their last reference (our fds) is gone
    wait_for(lambda: ours("prog") <= before_progs and ours("link") <= before_links, 30,
             "droptrace's BPF programs to be released")
    if mode[0] == "lab":
        subprocess.run([DROPTRACE, "lab", "--list"], capture_output=True)
        leftover = [ns for ns in os.listdir("/run/netns") if ns.startswith(f"dtlab{proc.pid}")]
        assert leftover, "a SIGKILLed lab cannot clean up; the next lab does (test above)"
        for ns in leftover:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


API_CODE = """
import gc, json, subprocess, sys, time
import droptrace

def ours():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout
    return {p["id"] for p in json.loads(out) if str(p.get("name", "")).startswith("dt_")}

before = ours()
t = droptrace.trace(count=1)
assert ours() - before, "attached"
del t
gc.collect()
deadline = time.monotonic() + 30
while ours() - before and time.monotonic() < deadline:  # freed asynchronously by the kernel
    time.sleep(0.05)
print("released" if not ours() - before else "still attached")
"""


def test_python_api_closes_a_trace_nobody_closed():
    r = subprocess.run([sys.executable, "-c", API_CODE], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "released"
