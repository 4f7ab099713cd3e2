"""`droptrace diagnose`: real drops in the lab, then the findings it makes on the live lab.

Each test provokes one drop, runs `droptrace diagnose --json -c 1` (it stops once it saw the
drop: no sleeps) and asserts the finding that explains it, with its evidence.
"""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from droptrace.lab import B4, B6, GHOST4, IFNAME, OTHER_MAC, SCENARIOS, SPOOF4

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
    assert "`udp dport 7777 drop` drops this packet" in detail


@needs_reasons
def test_nft_trace_pinpoints_the_rule_and_cleans_up(lab):
    sc = scenario("nft-drop")
    with sc.prepared(lab):
        group, dt = diagnose(lab, lab.b, lambda: sc.provoke(lab), ["NETFILTER_DROP"], "--nft-trace")
    detail = finding(group, "nft trace", "cause")
    assert "table inet droptrace_lab, chain input: rule `udp dport 7777 drop` gave verdict drop" in detail
    assert "droptrace_trace" not in lab.run("nft", "list", "tables", ns=lab.b).stdout


@needs_reasons
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_nft_trace_is_removed_on_sigterm_and_ctrl_c(lab, sig):
    # a table left by a killed run (its pid is gone) is removed at the next start
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"droptrace_trace_{dead.pid}"
    lab.run("nft", "add", "table", "inet", stale, ns=lab.b)
    with Droptrace("diagnose", "--netns", lab.b, "--nft-trace", "-d", "600", json_events=False) as dt:
        dt.wait_ready()
        tables = lab.run("nft", "list", "tables", ns=lab.b).stdout
        assert f"droptrace_trace_{dt.proc.pid}" in tables and stale not in tables
        assert dt.stop(sig) == 0, "".join(dt.stderr)
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
    settings = finding(group, "sysctls")
    assert "net.core.rmem_max=" in settings and "None" not in settings
    assert "net.ipv4.udp_mem=" in settings and "(host-wide)" in settings  # not visible inside B
    fix = finding(group, "what would change it")
    assert "SO_RCVBUF" in fix and "sysctl -w net.core.rmem_max=" in fix


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
    assert "[1] NO_SOCKET x1" in text and f"-> {B4}:9" in text and f"on {IFNAME} in netns {lab.b}" in text
    assert "!! listeners: nothing listens on port 9/udp" in text


@needs_reasons
def test_text_report_ipv6(lab):
    with Droptrace("diagnose", "--netns", lab.b, "--reason", "NO_SOCKET", "-c", "1", "-d",
                   str(int(60 * SLOWDOWN)), "udp and ip6", json_events=False) as dt:
        dt.wait_ready()
        lab.traffic(lab.a, "udp", B6, "9")
        assert dt.wait(90) == 0
    text = "".join(dt.stdout)
    assert f"-> [{B6}]:9  on {IFNAME}" in text and "None" not in text, text


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


# --- the issue-24 labs: rules the packet never reaches, v6-only listeners, tracing elsewhere,
# and diagnose's own probes

HOOKS_NFT = Path(__file__).resolve().parent.parent / "data" / "nft" / "hooks.nft"


@pytest.fixture
def hooks_ruleset(lab):
    """B with tests/data/nft/hooks.nft: tables at priorities 10, 20 and 30 on input (the
    saved JSON the unit tests read was dumped from this very file)."""
    lab.run("nft", "-f", str(HOOKS_NFT), ns=lab.b)
    yield
    lab.run("nft", "flush", "ruleset", ns=lab.b, check=False)


def causes(group, check="nftables"):
    return [f["detail"] for f in group["findings"] if f["check"] == check and f["result"] == "cause"]


@needs_reasons
def test_nft_only_the_rule_the_packet_reaches_is_the_cause(lab, hooks_ruleset):
    # 7005: table a (priority 10) drops it with its vmap; table b's 7000-7200 rule is never reached
    group, _ = diagnose(lab, lab.b, lambda: lab.traffic(lab.a, "udp", B4, "7005"), ["NETFILTER_DROP"])
    (cause,) = causes(group)
    assert cause.startswith("table inet a, chain in, handle 3: "
                            "`udp dport vmap { 7005 : drop, 7010 : accept }` drops this packet")
    assert not any("table inet b" in f["detail"] for f in group["findings"] if f["check"] == "nftables")
    assert "hook input" in finding(group, "nftables", "info")


@needs_reasons
def test_nft_policy_drop_after_a_negated_accept(lab, hooks_ruleset):
    group, _ = diagnose(lab, lab.b, lambda: lab.traffic(lab.a, "udp", B4, "7400"), ["NETFILTER_DROP"])
    assert causes(group) == ["table ip c, chain in: `policy drop` drops this packet: the first rule on its "
                             "way that does"]
    # a dropped first packet is never confirmed: no conntrack entry, said so
    assert "no conntrack entry for this flow" in finding(group, "conntrack", "info")


@needs_reasons
def test_nft_undecidable_rule_before_the_drop_is_named(lab, hooks_ruleset):
    group, _ = diagnose(lab, lab.b, lambda: lab.traffic(lab.a, "udp", B4, "7100"), ["NETFILTER_DROP"])
    (cause,) = causes(group)
    assert cause.startswith("table inet a, chain in, handle 5: `udp dport 7100 drop`")
    notes = [f["detail"] for f in group["findings"] if f["check"] == "nftables" and f["result"] == "info"]
    assert any(n.startswith("may decide first: table inet a, chain in, handle 4: "
                            "`ct state established,related accept`") for n in notes), notes


V6ONLY_LISTENER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::", 2323)); s.listen()
print("ready", flush=True)
sys.stdin.read()
"""


@needs_reasons
def test_no_socket_v6only_listener(lab):
    listener = subprocess.Popen(["ip", "netns", "exec", lab.b, sys.executable, "-c", V6ONLY_LISTENER],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "ready"
        group, _ = diagnose(lab, lab.b, lambda: lab.traffic(lab.a, "tcp", B4, "2323"), ["NO_SOCKET"])
    finally:
        listener.stdin.close()
        listener.wait(10)
    detail = finding(group, "listeners", "cause")
    assert "[::]:2323/tcp" in detail and "IPV6_V6ONLY" in detail and f"pid {listener.pid}" in detail
    assert "or to the wildcard" not in detail  # not "bind to the wildcard": it is one
    fix = finding(group, "what would change it")
    assert "IPV6_V6ONLY, 0" in fix and "net.ipv6.bindv6only=" in fix


@needs_reasons
def test_nft_trace_without_netns_removes_stale_tables_of_named_namespaces(lab):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"droptrace_trace_{dead.pid}"
    lab.run("nft", "add", "table", "inet", stale, ns=lab.b)
    with Droptrace("diagnose", "--nft-trace", "-d", "600", "udp dst port 1", json_events=False) as dt:
        dt.wait_ready()  # the sweep is done before tracing starts
        assert stale not in lab.run("nft", "list", "tables", ns=lab.b).stdout
        assert dt.stop() == 0, "".join(dt.stderr)


@needs_reasons
def test_nft_trace_follows_the_drop_into_its_namespace(lab):
    # no --netns: tracing starts in droptrace's own namespace, then in B at B's first drop
    sc = scenario("nft-drop")
    with sc.prepared(lab):
        with Droptrace("diagnose", "--json", "--nft-trace", "--reason", "NETFILTER_DROP", "-c", "2", "-d",
                       str(int(60 * SLOWDOWN)), "udp dst port 7777", json_events=False) as dt:
            dt.wait_ready()
            sc.provoke(lab)
            # readiness: the table appears in B once its monitor listens (no sleep)
            deadline = time.monotonic() + 30 * SLOWDOWN
            while "droptrace_trace" not in lab.run("nft", "list", "tables", ns=lab.b).stdout:
                assert time.monotonic() < deadline and dt.proc.poll() is None, "".join(dt.stderr)
                time.sleep(0.05)
            sc.provoke(lab)
            assert dt.wait(90) == 0, "".join(dt.stderr)
        assert "droptrace_trace" not in lab.run("nft", "list", "tables", ns=lab.b).stdout  # removed
    group = json.loads("".join(dt.stdout))["groups"][0]
    assert group["netns"] == lab.inode(lab.b) and group["count"] == 2
    assert causes(group, "nft trace") == [
        "table inet droptrace_lab, chain input: rule `udp dport 7777 drop` gave verdict drop"]


@needs_reasons
def test_diagnose_probes_cause_no_drops(lab):
    # rp_filter's check looked up the route back with `ip route get`, which the kernel answers by
    # freeing a packet (NOT_SPECIFIED at inet_rtm_getroute) when there is no route: a droptrace
    # beside diagnose, in the namespace diagnose inspects, must see none of diagnose's own (here
    # with the checks of three reasons: routes, nft and conntrack, sockets)
    rp, nft_drop = scenario("rp-filter"), scenario("nft-drop")

    def provoke():
        rp.provoke(lab)
        nft_drop.provoke(lab)
        lab.traffic(lab.a, "udp", B4, "9")

    with nft_drop.prepared(lab), Droptrace("--json", "--netns", lab.b) as beside:
        beside.wait_ready()
        group, _ = diagnose(lab, lab.b, provoke, ["IP_RPFILTER", "NETFILTER_DROP", "NO_SOCKET"], count=3)
        # a marker drop after diagnose ended: everything before it has been read once it is seen
        lab.traffic(lab.a, "udp", B4, "19")
        assert beside.find(lambda e: e["reason"] == "NO_SOCKET" and e["dport"] == 19) is not None
    assert {e["reason"] for e in beside.seen} >= {"IP_RPFILTER", "NETFILTER_DROP", "NO_SOCKET"}
    probes = [e for e in beside.seen if e["location"].startswith("inet_rtm_getroute")
              or e["comm"] in ("ip", "ss", "nft", "nsenter", "tc", "ethtool", "cat", "conntrack")]
    assert probes == []


@needs_reasons
def test_legacy_iptables_rule_reached(lab):
    # the legacy backend's rules are not in `nft list ruleset`: read from iptables-legacy-save
    lab.run("iptables-legacy", "-A", "INPUT", "-p", "udp", "--dport", "7000:7999", "-j", "ACCEPT", ns=lab.b)
    lab.run("iptables-legacy", "-I", "INPUT", "-p", "udp", "--dport", "7900", "-j", "DROP", ns=lab.b)
    try:
        group, _ = diagnose(lab, lab.b, lambda: lab.traffic(lab.a, "udp", B4, "7900"), ["NETFILTER_DROP"])
    finally:
        lab.run("iptables-legacy", "-F", "INPUT", ns=lab.b, check=False)
    assert causes(group) == ["iptables-legacy -t filter, chain INPUT, rule 1: `-A INPUT -p udp -m udp "
                             "--dport 7900 -j DROP` drops this packet: the first rule on its way that does"]
