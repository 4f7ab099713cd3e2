"""Recordings read back like `tcpdump -r` (issue 13): the same filters and outputs, offline."""
import json
import os
import subprocess

import pytest

import droptrace
from droptrace.lab import A4, B4, IFNAME, by_name

from .conftest import Droptrace, run

# Reading a recording back does not depend on the kernel: these run on the host only.
pytestmark = pytest.mark.host_only


MIX = ("udp4-closed-port", "udp6-closed-port", "tcp-closed-port", "unknown-proto", "udp-short")


@pytest.fixture(scope="module")
def recorded(lab, tmp_path_factory):
    """The same drops seen three ways at once: the live --json stream, a pcapng and a JSON lines
    recording."""
    d = tmp_path_factory.mktemp("replay")
    pcap, jsonl = d / "mix.pcapng", d / "mix.jsonl"
    n = len(MIX)
    with Droptrace("--json", "--netns", lab.b, "-c", str(n)) as live, \
         Droptrace("record", "-w", str(pcap), "--netns", lab.b, "-c", str(n)) as rp, \
         Droptrace("record", "-w", str(jsonl), "--netns", lab.b, "-c", str(n)) as rj:
        for dt in (live, rp, rj):
            dt.wait_ready()
        for name in MIX:
            by_name(name).provoke(lab)
        assert live.wait() == 0 and rp.wait() == 0 and rj.wait() == 0
    events = [json.loads(line) for line in live.stdout]
    assert len(events) == n
    return events, pcap, jsonl


def timeless(events):
    """Events seen by different droptrace processes, whose wall clocks (each process maps the
    kernel's monotonic time to wall time at its start) differ by microseconds."""
    return [{k: v for k, v in e.items() if k != "time"} for e in events]


def replayed(*args):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.parametrize("fmt", ["pcapng", "jsonl"])
def test_read_back_is_what_the_live_stream_showed(recorded, fmt):
    live, pcap, jsonl = recorded
    got = replayed("-r", str(pcap if fmt == "pcapng" else jsonl), "--json")
    assert timeless(got) == timeless(live)
    if fmt == "jsonl":  # and exactly what the recording holds, time included
        assert got == [json.loads(x) for x in jsonl.read_text().splitlines()[:-1]]
    else:
        assert got == replayed("-r", str(pcap), "--json", "-c", str(len(live)))


@pytest.mark.parametrize("args,keep", [
    (["--reason", "NO_SOCKET"], lambda e: e["reason"] == "NO_SOCKET"),
    (["--exclude-reason", "no_socket"], lambda e: e["reason"] != "NO_SOCKET"),
    (["-i", IFNAME], lambda e: e["ifname"] == IFNAME),
    (["-i", "nosuchif"], lambda e: False),
    (["-c", "2"], None),
])
def test_offline_filters_match_what_they_match_live(lab, recorded, args, keep):
    live, pcap, jsonl = recorded
    want = live[:2] if keep is None else [e for e in live if keep(e)]
    for path in (pcap, jsonl):
        assert timeless(replayed("-r", str(path), "--json", *args)) == timeless(want), path


def test_namespace_by_inode_or_name(lab, recorded):
    live, pcap, _ = recorded
    assert timeless(replayed("-r", str(pcap), "--json", "--netns", lab.b)) == timeless(live)
    assert timeless(replayed("-r", str(pcap), "--json", "--netns", str(lab.inode(lab.b)))) == timeless(live)
    assert replayed("-r", str(pcap), "--json", "--netns", str(lab.inode(lab.a))) == []


@pytest.mark.parametrize("expr,keep", [
    ("tcp", lambda e: e["l4"] == "tcp"),
    ("ip6 and udp", lambda e: e["l3"] == "ipv6" and e["l4"] == "udp"),
    (f"src host {A4} and not udp", lambda e: e["saddr"] == A4 and e["l4"] != "udp"),
    ("ip proto 253", lambda e: e["l4"] == 253),
])
def test_the_tcpdump_expression_runs_on_the_stored_bytes(recorded, expr, keep):
    live, pcap, jsonl = recorded
    want = [e for e in live if keep(e)]
    assert want, "the mix has such drops"
    assert timeless(replayed("-r", str(pcap), "--json", expr)) == timeless(want)
    # JSON lines keep no bytes: the same answer from the headers their fields describe
    assert timeless(replayed("-r", str(jsonl), "--json", expr)) == timeless(want)
    # what a line does not keep (the TTL or hop limit): refused, never guessed
    r = run("-r", str(jsonl), f"({expr}) and (ip[8] > 1 or ip6[7] > 1)")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stdout == "", r.stderr
    assert "TTL" in r.stderr or "hop limit" in r.stderr


def test_text_output_is_the_live_text(recorded):
    live, pcap, _ = recorded
    r = run("-r", str(pcap))
    lines = r.stdout.splitlines()
    assert lines[0].startswith("TIME") and len(lines) == len(live) + 1
    assert "NO_SOCKET" in lines[1] and f"{B4}:9" in lines[1]


def test_record_converts_both_ways_keeping_every_field(recorded, tmp_path):
    live, pcap, jsonl = recorded
    out_jsonl, out_pcap = tmp_path / "c.jsonl", tmp_path / "c.pcapng"
    assert run("record", "-r", str(pcap), "-w", str(out_jsonl)).returncode == 0
    assert replayed("-r", str(out_jsonl), "--json") == replayed("-r", str(pcap), "--json")  # exact
    assert run("record", "-r", str(jsonl), "-w", str(out_pcap), "--reason", "NO_SOCKET").returncode == 0
    assert replayed("-r", str(out_pcap), "--json") == replayed("-r", str(jsonl), "--json", "--reason",
                                                               "NO_SOCKET")
    r = run("record", "-r", str(pcap), "-w", str(pcap))
    assert r.returncode == 2 and "same file" in r.stderr


def test_report_takes_the_filters(recorded):
    _, pcap, _ = recorded
    s = json.loads(run("report", str(pcap), "--json", "--reason", "NO_SOCKET").stdout)
    assert s["total"] == 3 and [r["reason"] for r in s["by_reason"]] == ["NO_SOCKET"]
    s = json.loads(run("report", str(pcap), "--json", "tcp").stdout)
    assert s["total"] == 1


def test_report_times_are_the_events_own(recorded):
    live, pcap, jsonl = recorded
    for path in (pcap, jsonl):
        own = replayed("-r", str(path), "--json")  # the times this recording holds
        s = json.loads(run("report", str(path), "--json").stdout)
        assert s["first"] == min(e["time"] for e in own)  # exact, with its UTC offset
        assert s["last"] == max(e["time"] for e in own)
    empty = json.loads(run("report", str(pcap), "--json", "--reason", "OTHERHOST").stdout)
    assert empty["total"] == 0 and "bucket_seconds" in empty and empty["first"] is None


def test_streams_are_read(recorded):
    live, pcap, jsonl = recorded
    for path in (pcap, jsonl):
        r = subprocess.run(f"cat {path} | {droptrace_bin()} report -", shell=True, capture_output=True,
                           text=True)
        assert r.returncode == 0 and f": {len(live)} drops" in r.stdout, r.stderr
        r = subprocess.run(["bash", "-c", f"{droptrace_bin()} -r <(cat {path}) --json"], capture_output=True,
                           text=True)
        assert r.returncode == 0 and len(r.stdout.splitlines()) == len(live), r.stderr


def droptrace_bin():
    from .conftest import DROPTRACE

    return DROPTRACE


def test_a_recording_cut_short_reads_up_to_its_last_whole_drop(recorded, tmp_path):
    live, pcap, jsonl = recorded
    for path in (pcap, jsonl):
        data = path.read_bytes()
        cut = tmp_path / f"cut{path.suffix}"
        cut.write_bytes(data[: len(data) // 2])
        r = run("-r", str(cut), "--json")
        assert r.returncode == 0, r.stderr
        got = [json.loads(line) for line in r.stdout.splitlines()]
        assert 0 < len(got) < len(live) and got == replayed("-r", str(path), "--json")[: len(got)]
        warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
        assert len(warnings) == 1 and ("cut short" in warnings[0] or "ends inside a block" in warnings[0])
    tiny = tmp_path / "tiny.pcapng"
    tiny.write_bytes(pcap.read_bytes()[:100])
    r = run("report", str(tiny))
    assert r.returncode == 0 and "ends inside a block" in r.stderr


def test_a_jsonl_file_with_a_bad_line_is_read_around_it(recorded, tmp_path):
    live, _, jsonl = recorded
    lines = jsonl.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:2] + ["{not json"] + lines[2:]) + "\n")
    r = run("-r", str(bad), "--json")
    assert r.returncode == 0
    assert [json.loads(x) for x in r.stdout.splitlines()] == replayed("-r", str(jsonl), "--json")
    assert "line 3: invalid JSON, skipped" in r.stderr


def test_another_tools_capture_is_read_as_packets(recorded, tmp_path):
    """A pcap written by another tool (here editcap, from Wireshark) has no droptrace metadata."""
    live, pcap, _ = recorded
    classic = tmp_path / "plain.pcap"
    subprocess.run(["editcap", "-F", "pcap", str(pcap), str(classic)], check=True, capture_output=True)
    r = run("-r", str(classic), "--json")
    assert r.returncode == 0, r.stderr
    got = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(e["saddr"], e["daddr"], e["dport"]) for e in got] == [
        (e["saddr"], e["daddr"], e["dport"]) for e in live]
    assert all(e["reason"] is None and e["location"] is None for e in got)
    assert r.stderr.count("not written by droptrace") == 1
    s = run("report", str(classic))
    assert s.returncode == 0 and f"{len(live)} drops" in s.stdout
    ng = tmp_path / "plain.pcapng"  # Wireshark's own pcapng, made from the comment-less pcap
    subprocess.run(["editcap", "-F", "pcapng", str(classic), str(ng)], check=True, capture_output=True)
    r = run("-r", str(ng), "--json")
    assert r.returncode == 0, r.stderr
    assert [(e["dport"], e["reason"]) for e in map(json.loads, r.stdout.splitlines())] == [
        (e["dport"], None) for e in live]
    assert r.stderr.count("not written by droptrace") == 1


@pytest.mark.parametrize("content", [os.urandom(4096), b"hello\nworld\n", b"\x00" * 64])
def test_a_file_that_is_no_recording_is_one_line(tmp_path, content):
    path = tmp_path / "junk.bin"
    path.write_bytes(content)
    for args in (["-r", str(path)], ["report", str(path)], ["record", "-r", str(path), "-w",
                                                              str(tmp_path / "o.pcapng")]):
        r = run(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_python_read_takes_the_filters(recorded):
    live, pcap, jsonl = recorded
    got = [e.to_dict() for e in droptrace.read(str(pcap), "tcp")]
    assert timeless(got) == timeless([e for e in live if e["l4"] == "tcp"])
    got = droptrace.read(str(jsonl), reasons="NO_SOCKET", count=2)
    want = [e for e in live if e["reason"] == "NO_SOCKET"][:2]
    assert timeless([e.to_dict() for e in got]) == timeless(want)
    rec = droptrace.read(str(pcap))
    assert sum(1 for _ in rec) == len(live) and rec.summary == {"written": len(live), "lost": 0}
