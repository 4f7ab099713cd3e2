"""Recordings: pcapng read back by tshark's own dissectors and by droptrace report,
JSON lines, interrupted and killed runs, a full disk, and the Python API."""
import json
import os
import signal
import subprocess
import time

import pytest

import droptrace
from droptrace.lab import A4, B4, IFNAME, by_name

from .conftest import DROPTRACE, Droptrace, run

PROVOKED = ["udp4-closed-port", "udp6-closed-port", "tcp-closed-port", "unknown-proto", "udp-short"]
REASONS = "NO_SOCKET,IP_NOPROTO,PKT_TOO_SMALL"


def tshark(path, *fields):
    args = ["tshark", "-r", str(path)]
    if fields:
        args += ["-T", "fields"] + [x for f in fields for x in ("-e", f)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return r


def wait_for_events(path, n, timeout=20.0):
    """Readiness by content: until the recording holds n drops (bounded)."""
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got = sum(1 for _ in droptrace.read(str(path)))
        if got >= n:
            return got
        time.sleep(0.05)
    return got


@pytest.fixture
def recording(lab, tmp_path):
    path = tmp_path / "drops.pcapng"
    with Droptrace("record", "-w", str(path), "--netns", lab.b, "--reason", REASONS,
                   "-c", str(len(PROVOKED)), "--stack") as dt:
        dt.wait_ready()
        for name in PROVOKED:
            by_name(name).provoke(lab)
        assert dt.wait() == 0, dt.stderr
    assert f"{len(PROVOKED)} drops written to {path} (pcapng), 0 lost" in dt.stderr[-1]
    return path


def test_pcapng_is_read_by_tshark(lab, recording):
    r = tshark(recording, "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "udp.dstport", "tcp.dstport",
               "tcp.flags.syn", "frame.comment")
    assert r.returncode == 0, r.stderr
    rows = r.stdout.strip().splitlines()
    assert len(rows) == len(PROVOKED)
    text = r.stdout
    assert text.count("NO_SOCKET at ") == 3 and "IP_NOPROTO at " in text and "PKT_TOO_SMALL at " in text
    assert f"netns {lab.inode(lab.b)}; ifname {IFNAME}" in text
    assert "2001:db8:d7::1" in text and A4 in text and B4 in text
    assert "__udp4_lib_rcv+0x" in text  # the stack, in the comment
    link = tshark(recording, "frame.interface_name", "frame.encap_type").stdout.splitlines()
    assert {row.split("\t")[0] for row in link} == {IFNAME}
    assert {row.split("\t")[1] for row in link} == {"1"}  # Ethernet: the MAC header was captured


def test_report_matches_what_was_provoked(lab, recording):
    r = run("report", str(recording), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["total"] == len(PROVOKED)
    by_reason = {row["reason"]: row["count"] for row in s["by_reason"]}
    assert by_reason == {"NO_SOCKET": 3, "IP_NOPROTO": 1, "PKT_TOO_SMALL": 1}
    assert s["by_interface"] == [{"interface": f"{IFNAME} (netns {lab.inode(lab.b)})", "count": 5,
                                  "share": 1.0}]
    assert any(row["flow"].startswith(f"TCP {A4}:") and row["flow"].endswith(f"> {B4}:9")
               for row in s["by_flow"])
    assert sum(b["count"] for b in s["over_time"]) == len(PROVOKED)
    text = run("report", str(recording)).stdout
    assert "by reason:" in text and "NO_SOCKET" in text and "over time" in text


def test_python_api_reads_a_recording(recording):
    events = list(droptrace.read(str(recording)))
    assert [e.reason for e in events].count("NO_SOCKET") == 3
    tcp = next(e for e in events if e.l4 == "tcp")
    assert (tcp.saddr, tcp.daddr, tcp.dport, tcp.tcp_flags) == (A4, B4, 9, "S")
    assert tcp.stack and any(f.startswith("tcp_v4_rcv+0x") for f in tcp.stack)


def test_jsonl_recording(lab, tmp_path):
    path = tmp_path / "drops.jsonl"
    with Droptrace("record", "-w", str(path), "--netns", lab.b, "--reason", "NO_SOCKET",
                   "-c", "2") as dt:
        dt.wait_ready()
        by_name("udp4-closed-port").provoke(lab)
        by_name("udp6-closed-port").provoke(lab)
        assert dt.wait() == 0
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[-1]["droptrace_summary"] == {"written": 2, "lost": 0}  # the closing summary
    lines = lines[:-1]
    assert [x["l3"] for x in lines] == ["ipv4", "ipv6"]
    assert all(x["reason"] == "NO_SOCKET" and x["netns"] == lab.inode(lab.b) for x in lines)
    s = json.loads(run("report", str(path), "--json").stdout)
    assert s["total"] == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_recording_is_readable(lab, tmp_path, sig):
    path = tmp_path / "drops.pcapng"
    with Droptrace("record", "-w", str(path), "--netns", lab.b, "--reason", "NO_SOCKET") as dt:
        dt.wait_ready()
        for port in ("9", "10", "11"):
            lab.traffic(lab.a, "udp", B4, port)
        assert wait_for_events(path, 3) == 3  # flushed as it goes, before any signal
        dt.proc.send_signal(sig)
        dt.wait()
    r = tshark(path, "udp.dstport")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["9", "10", "11"]
    assert [e.dport for e in droptrace.read(str(path))] == [9, 10, 11]


def test_full_disk_is_a_clear_error(lab, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], check=True)
    try:
        path = mnt / "drops.pcapng"
        with Droptrace("record", "-w", str(path), "--netns", lab.b, "--payload") as dt:
            dt.wait_ready()
            lab.traffic(lab.a, "udp", B4, "9", "--count", "200", "--size", "1000")
            rc = dt.wait()
        err = "".join(dt.stderr)
        assert rc == 1, err
        assert "No space left on device" in err and "Traceback" not in err
        assert len(list(droptrace.read(str(path)))) >= 1  # complete up to the last whole drop
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("extra", [[], ["--stack"]], ids=["payload", "payload+stack"])
def test_payload_is_recorded_whole_only_when_asked(lab, tmp_path, extra):
    full, heads = tmp_path / "full.pcapng", tmp_path / "heads.pcapng"
    for path, args in ((full, ["--payload", *extra]), (heads, extra)):
        with Droptrace("record", "-w", str(path), "--netns", lab.b, "--reason", "NO_SOCKET",
                       "-c", "1", *args) as dt:
            dt.wait_ready()
            lab.traffic(lab.a, "udp", B4, "9", "--size", "1200")
            assert dt.wait() == 0, dt.stderr
    r = tshark(full, "frame.len", "frame.cap_len", "udp.length", "data.len")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1242", "1242", "1208", "1200"]  # the whole frame
    r = tshark(heads, "frame.len", "frame.cap_len")
    assert r.stdout.split() == ["1242", "128"]  # headers only, by default
    if extra:
        e = next(droptrace.read(str(full)))
        assert any(f.startswith("__udp4_lib_rcv+0x") for f in e.stack)


def test_unwritable_path_and_bad_arguments(tmp_path):
    r = run("record", "-w", "/nonexistent-dir/drops.pcapng")
    assert r.returncode == 1 and "cannot write /nonexistent-dir/drops.pcapng" in r.stderr
    r = run("record", "-w", str(tmp_path / "x.txt"))
    assert r.returncode == 1 and "format" in r.stderr
    r = run("record", "-w", str(tmp_path / "x.pcapng"), "--snaplen", "9000")
    assert r.returncode == 2 and "1 to 1536" in r.stderr  # a usage error (issue 8)
    r = run("record")
    assert r.returncode == 2 and "-w" in r.stderr
    r = run("report", str(tmp_path / "missing.pcapng"))
    assert r.returncode == 1 and "cannot read" in r.stderr
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\nworld\n")
    r = run("report", str(junk))
    assert r.returncode == 1 and "not a droptrace recording" in r.stderr
    for r in (run("report", str(junk)), run("record", "-w", "/nonexistent-dir/x.pcapng")):
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_python_api_traces_live(lab):
    with droptrace.trace(netns=lab.b, reasons=["NO_SOCKET"]) as drops:
        assert drops.hook == "tp_btf"
        by_name("tcp-closed-port").provoke(lab)
        event = next(iter(drops))
        assert drops.lost() == 0
    assert isinstance(event, droptrace.Event)
    assert (event.reason, event.l4, event.daddr, event.dport, event.tcp_flags) == (
        "NO_SOCKET", "tcp", B4, 9, "S")
    assert event.netns == lab.inode(lab.b)


def test_readme_api_example_runs(tmp_path, recording):
    """The README's Python example, as written, against a real recording."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    code = readme.split("<!-- api-example -->")[1].split("```python")[1].split("```")[0]
    code = code.replace("drops.pcapng", str(recording))
    r = subprocess.run([os.path.join(os.path.dirname(DROPTRACE), "python"), "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "NO_SOCKET" in r.stdout
