"""`droptrace diagnose`: real drops in the lab, then the findings it makes on the live lab.

Each test provokes one drop, runs `droptrace diagnose --json -c 1` (it stops once it saw the
drop: no sleeps) and asserts the finding that explains it, with its evidence.
"""
import json
import subprocess
import sys

import pytest

from droptrace.lab import B4, GHOST4, IFNAME, OTHER_MAC, SCENARIOS, SPOOF4

from .conftest import HAS_REASONS, SLOWDOWN, Droptrace

# The checks are chosen by reason; before 5.17 diagnose groups by location (tested apart below).
needs_reasons = pytest.mark.skipif(not HAS_REASONS, reason="this kernel has no drop reasons")


def scenario(name):
    return next(s for s in SCENARIOS if s.name == name)


def diagnose(lab, ns, provoke, reasons, *extra, count=1):
    with Droptrace("diagnose", "--json", "--netns", ns, "--reason", ",".join(reasons), "-c", str(count),
                   "-d", str(int(60 * SLOWDOWN)), *extra, json_events=False) as dt:
        dt.wait_ready()
        provoke()
        assert dt.wait(90) == 0, "".join(dt.stderr)
    report = json.loads("".join(dt.stdout))
    assert report["drops"] >= count and report["groups"], report
    group = report["groups"][0]
    assert group["reason"] in reasons and group["netns"] == lab.inode(ns) and group["summary"]
    return group, dt


def finding(group, check, result=None):
    found = [f for f in group["findings"]
             if f["check"] == check and (result is None or f["result"] == result)]
    assert found, f"no {check} finding ({result}) in {group['findings']}"
    return found[0]["detail"]


@needs_reasons
def test_no_socket_nothing_listens(lab):
    group, _ = diagnose(lab, lab.b, lambda: lab.traffic(lab.a, "udp", B4, "9"), ["NO_SOCKET"])
    assert group["flow"]["dport"] == 9 and group["ifname"] == IFNAME
    assert "nothing listens on port 9/udp" in finding(group, "listeners", "cause")


@pytest.mark.matrix
@needs_reasons
def test_no_socket_names_the_socket_bound_elsewhere(lab):
    sink = subprocess.Popen(["ip", "netns", "exec", lab.b, sys.executable, "-m", "droptrace.lab.traffic",
                             "sink", "127.0.0.1", "9999"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert sink.stdout.readline().strip() == "ready"
        group, _ = diagnose(lab, lab.b, lambda: lab.traffic(lab.a, "udp", B4, "9999"), ["NO_SOCKET"])
    finally:
        sink.stdin.close()
        sink.wait(10)
    detail = finding(group, "listeners", "cause")
    assert f"nothing listens on {B4}:9999/udp" in detail
    assert "127.0.0.1:9999/udp" in detail and f"pid {sink.pid} (python" in detail


@pytest.mark.matrix
@needs_reasons
def test_netfilter_drop_names_the_rule(lab):
    sc = scenario("nft-drop")
    with sc.prepared(lab):
        group, _ = diagnose(lab, lab.b, lambda: sc.provoke(lab), ["NETFILTER_DROP"])
    detail = finding(group, "nftables", "cause")
    assert "table inet droptrace_lab, chain input, handle" in detail
    assert "`udp dport 7777 drop` matches" in detail


@needs_reasons
def test_nft_trace_pinpoints_the_rule_and_cleans_up(lab):
    sc = scenario("nft-drop")
    with sc.prepared(lab):
        group, dt = diagnose(lab, lab.b, lambda: sc.provoke(lab), ["NETFILTER_DROP"], "--nft-trace")
    detail = finding(group, "nft trace", "cause")
    assert "table inet droptrace_lab, chain input: rule `udp dport 7777 drop` gave verdict drop" in detail
    assert "droptrace_trace" not in lab.run("nft", "list", "tables", ns=lab.b).stdout


@needs_reasons
def test_nft_trace_is_removed_on_sigterm(lab):
    with Droptrace("diagnose", "--netns", lab.b, "--nft-trace", "-d", "600", json_events=False) as dt:
        dt.wait_ready()
        assert "droptrace_trace" in lab.run("nft", "list", "tables", ns=lab.b).stdout
        assert dt.stop() == 0, "".join(dt.stderr)
    assert "droptrace_trace" not in lab.run("nft", "list", "tables", ns=lab.b).stdout


@needs_reasons
def test_rp_filter_shows_the_setting_and_the_route_back(lab):
    sc = scenario("rp-filter")
    group, _ = diagnose(lab, lab.b, lambda: sc.provoke(lab), ["IP_RPFILTER"])
    assert "in effect 1 (strict" in finding(group, "rp_filter")
    assert SPOOF4 in finding(group, "route back", "cause")
    assert f"ip route add {SPOOF4}/32 dev {IFNAME}" in finding(group, "what would change it")


@needs_reasons
def test_receive_buffer_names_the_socket_and_its_owner(lab):
    sc = scenario("rcvbuf-full")
    with sc.prepared(lab):
        group, _ = diagnose(lab, lab.b, lambda: sc.provoke(lab), ["SOCKET_RCVBUFF"])
    detail = finding(group, "socket", "cause")
    assert f"{B4}:8888/udp, pid " in detail and "receive buffer" in detail and "drops counted" in detail
    assert "net.core.rmem_max=" in finding(group, "sysctls")


@needs_reasons
def test_failed_neighbour(lab):
    sc = scenario("neigh-failed")
    group, _ = diagnose(lab, lab.a, lambda: sc.provoke(lab), list(sc.reasons))
    detail = finding(group, "neighbour", "cause")
    assert GHOST4 in detail and ("FAILED" in detail or "INCOMPLETE" in detail)


@needs_reasons
def test_full_qdisc(lab):
    sc = scenario("qdisc-full")
    with sc.prepared(lab):
        group, _ = diagnose(lab, lab.a, lambda: sc.provoke(lab), list(sc.reasons))
    detail = finding(group, "qdisc", "cause")
    assert "qdisc tbf" in detail and "dropped" in detail


@needs_reasons
def test_otherhost_compares_the_macs(lab):
    sc = scenario("wrong-mac")
    group, _ = diagnose(lab, lab.b, lambda: sc.provoke(lab), ["OTHERHOST"])
    detail = finding(group, "MAC", "cause")
    assert f"addressed to {OTHER_MAC}" in detail and "not promiscuous" in detail


@needs_reasons
def test_bad_checksum_shows_offloads(lab):
    sc = scenario("udp-bad-checksum")
    group, _ = diagnose(lab, lab.b, lambda: sc.provoke(lab), ["UDP_CSUM"])
    assert "rx-checksumming" in finding(group, "offload", "info")


@needs_reasons
def test_anything_else_gets_the_location_and_a_stack(lab):
    sc = scenario("unknown-proto")
    group, _ = diagnose(lab, lab.b, lambda: sc.provoke(lab), ["IP_NOPROTO"])
    assert finding(group, "location").startswith("dropped at ")
    assert "+0x" in finding(group, "stack")


@needs_reasons
def test_text_report(lab):
    with Droptrace("diagnose", "--netns", lab.b, "--reason", "NO_SOCKET", "-c", "1", "-d",
                   str(int(60 * SLOWDOWN)), json_events=False) as dt:
        dt.wait_ready()
        lab.traffic(lab.a, "udp", B4, "9")
        assert dt.wait(90) == 0
    text = "".join(dt.stdout)
    assert "[1] NO_SOCKET x1" in text and f"-> {B4}:9" in text
    assert "!! listeners: nothing listens on port 9/udp" in text


@pytest.mark.host_only
def test_bad_arguments():
    from .conftest import run

    r = run("diagnose", "-d", "soon")
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.matrix
@pytest.mark.skipif(HAS_REASONS, reason="for kernels without drop reasons")
def test_without_drop_reasons_groups_by_location(lab):
    with Droptrace("diagnose", "--json", "--netns", lab.b, "-c", "1", "-d", str(int(60 * SLOWDOWN)),
                   "udp dst port 9", json_events=False) as dt:
        dt.wait_ready()
        lab.traffic(lab.a, "udp", B4, "9")
        assert dt.wait(90) == 0, "".join(dt.stderr)
    group = json.loads("".join(dt.stdout))["groups"][0]
    assert group["reason"] is None and "no drop reason" in group["summary"]
    assert group["flow"]["dport"] == 9 and finding(group, "location").startswith("dropped at ")
