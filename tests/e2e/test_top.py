"""`droptrace top`: counts made in the kernel equal the drops provoked."""
import json
import signal
import subprocess
import time

from droptrace.lab import A4, B4, IFNAME, by_name

from .conftest import Droptrace


def snmp(lab, proto: str, field: str) -> int:
    """One of the kernel's own protocol counters in B (/proc/net/snmp, or snmp6)."""
    if proto.endswith("6"):
        out = subprocess.run(["ip", "netns", "exec", lab.b, "cat", "/proc/net/snmp6"],
                             capture_output=True, text=True, check=True).stdout
        return int(dict(ln.split() for ln in out.splitlines() if ln.strip())[proto + field])
    out = subprocess.run(["ip", "netns", "exec", lab.b, "cat", "/proc/net/snmp"],
                         capture_output=True, text=True, check=True).stdout
    rows = [ln.split() for ln in out.splitlines() if ln.startswith(proto + ":")]
    return int(rows[1][rows[0].index(field)])


def udp_no_ports(lab) -> int:
    """The kernel's own count of UDP datagrams to closed ports in B."""
    return snmp(lab, "Udp", "NoPorts")


def wait_until(cond, timeout=20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_top_counts_are_exact(lab):
    n = 3000
    before = udp_no_ports(lab)
    with Droptrace("top", "--json", "--netns", lab.b, "--reason", "NO_SOCKET", "--interval", "0.2",
                   "--group", "flow") as dt:
        dt.wait_ready()
        lab.traffic(lab.a, "udp", B4, "9", "--count", str(n), "--sport", "40123")
        by_name("tcp-closed-port").provoke(lab)
        # readiness from the kernel itself: all n datagrams counted as NoPorts in B
        assert wait_until(lambda: udp_no_ports(lab) - before >= n)
        assert dt.stop(signal.SIGTERM) == 0
    assert dt.stdout, dt.stderr
    out = json.loads("".join(dt.stdout))
    assert out["lost"] == 0 and out["duration"] > 0
    assert out["total"] == n + 1, out
    udp = [r for r in out["rows"] if r["l4"] == "udp"]
    assert len(udp) == 1
    assert (udp[0]["count"], udp[0]["saddr"], udp[0]["sport"], udp[0]["daddr"], udp[0]["dport"]) == (
        n, A4, 40123, B4, 9)
    assert udp[0]["reason"] == "NO_SOCKET" and udp[0]["location"].startswith("__udp4_lib_rcv+0x")
    assert udp[0]["ifname"] == IFNAME and udp[0]["netns"] == lab.inode(lab.b)
    tcp = [r for r in out["rows"] if r["l4"] == "tcp"]
    assert len(tcp) == 1 and tcp[0]["count"] == 1


def test_top_groups_by_reason(lab):
    unknown, short = snmp(lab, "Ip", "InUnknownProtos"), snmp(lab, "Udp", "InErrors")
    with Droptrace("top", "--json", "--netns", lab.b, "--interval", "0.5") as dt:
        dt.wait_ready()
        for name in ("unknown-proto", "udp-short", "udp-short"):
            by_name(name).provoke(lab)
        # readiness from the kernel's own counters, not from time
        assert wait_until(lambda: snmp(lab, "Ip", "InUnknownProtos") > unknown
                          and snmp(lab, "Udp", "InErrors") >= short + 2)
        assert dt.stop() == 0
    out = json.loads("".join(dt.stdout))
    counts = {}
    for r in out["rows"]:
        counts[r["reason"]] = counts.get(r["reason"], 0) + r["count"]
    assert counts == {"IP_NOPROTO": 1, "PKT_TOO_SMALL": 2}
    assert out["total"] == 3


def test_top_duration_ends_it(lab):
    t0 = time.monotonic()
    with Droptrace("top", "--json", "--netns", lab.b, "-d", "1", "--interval", "0.2") as dt:
        dt.wait_ready()
        assert dt.wait(timeout=60) == 0
    out = json.loads("".join(dt.stdout))
    assert out["total"] == 0 and 0.9 < out["duration"] < 30
    assert time.monotonic() - t0 < 60
