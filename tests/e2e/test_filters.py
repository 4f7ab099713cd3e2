"""tcpdump filter expressions, evaluated in the kernel: matching drops are
reported, the others never reach user space. v4 and v6, and/or/not,
host/net/port/proto, all on real drops in the lab."""
import pytest

from droptrace.lab import A4, A6, B4, B6, SPOOF4

from .conftest import Droptrace, run

SENTINEL_PORT = "4444"

# name -> (how to provoke it in the lab, what droptrace reports for it)
DROPS = {
    "u4": (("udp", B4, "9"), ("ipv4", "udp", A4, 9)),
    "u6": (("udp", B6, "9"), ("ipv6", "udp", A6, 9)),
    "t4": (("tcp", B4, "9"), ("ipv4", "tcp", A4, 9)),
    "u4p": (("udp", B4, "7777"), ("ipv4", "udp", A4, 7777)),
    "p253": (("raw", "proto", A4, B4, "--proto", "253"), ("ipv4", 253, A4, None)),
    "spoof": (("udp", B4, "9", "--src", SPOOF4), ("ipv4", "udp", SPOOF4, 9)),
}

CASES = [
    ("udp", {"u4", "u6", "u4p", "spoof"}),
    ("udp and port 9", {"u4", "u6", "spoof"}),
    ("ip6", {"u6"}),
    ("tcp or ip proto 253", {"t4", "p253"}),
    ("not udp", {"t4", "p253"}),
    ("host 203.0.113.7", {"spoof"}),
    ("net 198.18.0.0/24 and udp and not port 9", {"u4p"}),
    ("dst port 7777 or (tcp[tcpflags] & tcp-syn != 0)", {"u4p", "t4"}),
    (f"ip6 host {A6} and udp", {"u6"}),
    ("ether src 02:d7:00:00:00:01 and tcp", {"t4"}),
]


@pytest.mark.parametrize("expr,expected", CASES, ids=[c[0] for c in CASES])
def test_filter_expression(lab, expr, expected):
    # The sentinel matches through the added branch only: once it is seen,
    # every drop provoked before it has been judged by the filter.
    with Droptrace("--json", "--netns", lab.b, f"({expr}) or udp dst port {SENTINEL_PORT}") as dt:
        dt.wait_ready()
        for args, _ in DROPS.values():
            lab.traffic(lab.a, *args)
        lab.traffic(lab.a, "udp", B4, SENTINEL_PORT)
        assert dt.find(lambda e: e["dport"] == int(SENTINEL_PORT)), dt.stderr
    seen = {(e["l3"], e["l4"], e["saddr"], e["dport"]) for e in dt.seen
            if e["dport"] != int(SENTINEL_PORT)}
    assert seen == {DROPS[name][1] for name in expected}


def test_filter_applies_to_top_and_record(lab, tmp_path):
    import json

    from .test_top import snmp, wait_until

    before = snmp(lab, "Ip", "InUnknownProtos")
    with Droptrace("top", "--json", "--netns", lab.b, "ip6 and udp") as dt:
        dt.wait_ready()
        for args, _ in DROPS.values():
            lab.traffic(lab.a, *args)
        # the last drop provoked (p253 comes after u6) is counted by the kernel: all were
        assert wait_until(lambda: snmp(lab, "Ip", "InUnknownProtos") > before)
        assert dt.stop() == 0
    out = json.loads("".join(dt.stdout))
    assert out["total"] == 1 and out["rows"][0]["reason"] == "NO_SOCKET"
    path = tmp_path / "f.jsonl"
    with Droptrace("record", "-w", str(path), "-c", "1", "--netns", lab.b, "tcp") as dt:
        dt.wait_ready()
        for args, _ in DROPS.values():
            lab.traffic(lab.a, *args)
        assert dt.wait() == 0
    event, summary = (json.loads(x) for x in path.read_text().splitlines())
    assert event["l4"] == "tcp" and summary["droptrace_summary"]["written"] == 1


def test_invalid_expression_exits_2():
    for expr in (["tcp", "port"], ["host", "300.1.1.1"], ["frobnicate"]):
        r = run(*expr)
        assert r.returncode == 2, r.stderr
        assert "invalid filter expression" in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_cached_verdicts_tell_flows_apart(lab):
    """The kernel caches an expression's verdicts by the bytes it can read (packet/filter_reads.py):
    flows that differ only in their port must still be told apart, after an IPv4 header (whose
    length the key follows) and an IPv6 one, however many packets of their neighbours came first."""
    with Droptrace("--json", "--netns", lab.b, f"udp dst port 7002 or udp dst port {SENTINEL_PORT}") as dt:
        dt.wait_ready()
        for dst in (B4, B6):
            lab.traffic(lab.a, "udp", dst, "7000", "--ports", "4", "--count", "3")  # 7000..7003, 3 each
        lab.traffic(lab.a, "udp", B4, SENTINEL_PORT)
        assert dt.find(lambda e: e["dport"] == int(SENTINEL_PORT)), dt.stderr
    seen = sorted((e["l3"], e["dport"]) for e in dt.seen if e["dport"] != int(SENTINEL_PORT))
    assert seen == [("ipv4", 7002)] * 3 + [("ipv6", 7002)] * 3
