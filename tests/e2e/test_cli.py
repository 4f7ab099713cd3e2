"""The command line as a user meets it: output forms, stopping, filters, errors, the lab."""
import os
import re
import signal
import subprocess
import time

import pytest

from droptrace.lab import A4, B4, GHOST4, IFNAME, Lab, by_name

from .conftest import DROPTRACE, UNPRIVILEGED, Droptrace, run

TRACEBACK = "Traceback"


def udp_closed(lab: Lab, port: str = "9") -> None:
    lab.traffic(lab.a, "udp", B4, port)


def test_text_output_and_count_stop(lab):
    with Droptrace("--netns", lab.b, "--reason", "NO_SOCKET", "-c", "1", json_events=False) as dt:
        dt.wait_ready()
        udp_closed(lab, "4242")
        assert dt.wait() == 0  # -c 1 ends it by itself
    header, line = dt.stdout[0], dt.stdout[1]
    assert header.split()[:5] == ["TIME", "PID", "COMM", "PROTO", "REASON"]
    assert re.search(rf"UDP\s+NO_SOCKET\s+{A4}:\d+\s+{B4}:4242\s+{IFNAME}\s+{lab.inode(lab.b)}\s+"
                     r"__udp4_lib_rcv\+0x[0-9a-f]+", line), line
    assert len(dt.stdout) == 2
    assert "1 drops shown, 0 lost" in dt.stderr[-1]


def test_duration_stops_by_itself(lab):
    t0 = time.monotonic()
    with Droptrace("--netns", lab.b, "-d", "1") as dt:
        dt.wait_ready()
        assert dt.wait() == 0
    assert time.monotonic() - t0 < 15
    assert "drops shown" in dt.stderr[-1]


def test_sigterm_and_sigint_detach_and_summarise(lab):
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Droptrace("--json", "--netns", lab.b) as dt:
            dt.wait_ready()
            udp_closed(lab)
            assert dt.find(lambda e: e["reason"] == "NO_SOCKET")
            assert dt.stop(sig) == 0
        assert TRACEBACK not in "".join(dt.stderr)
        assert re.match(r"droptrace: \d+ drops shown, 0 lost", dt.stderr[-1])


def test_json_with_stack(lab):
    with Droptrace("--json", "--stack", "--netns", lab.b) as dt:
        dt.wait_ready()
        udp_closed(lab)
        e = dt.find(lambda e: e["reason"] == "NO_SOCKET")
        assert e is not None
    assert e["stack"][0].startswith(("sk_skb_reason_drop", "kfree_skb"))
    assert any(f.startswith("__udp4_lib_rcv+0x") for f in e["stack"])
    assert not any(f.startswith("bpf_prog_") for f in e["stack"])


def test_reason_filters(lab):
    proto = by_name("unknown-proto")
    with Droptrace("--json", "--netns", lab.b, "--exclude-reason", "no_socket") as dt:
        dt.wait_ready()
        udp_closed(lab)
        proto.provoke(lab)
        assert dt.find(lambda e: e["reason"] == "IP_NOPROTO")
    assert not [e for e in dt.seen if e["reason"] == "NO_SOCKET"]
    with Droptrace("--json", "--netns", lab.b, "--reason", "IP_NOPROTO,PKT_TOO_SMALL") as dt:
        dt.wait_ready()
        udp_closed(lab)
        by_name("udp-short").provoke(lab)
        assert dt.find(lambda e: e["reason"] == "PKT_TOO_SMALL")
    assert {e["reason"] for e in dt.seen} == {"PKT_TOO_SMALL"}


def test_interface_filter(lab):
    with Droptrace("--json", "--netns", lab.b, "-i", "lo") as dt:
        dt.wait_ready()
        udp_closed(lab)                              # dropped on eth0: filtered out
        lab.traffic(lab.b, "udp", "127.0.0.1", "9")  # dropped on lo
        assert dt.find(lambda e: e["ifname"] == "lo" and e["reason"] == "NO_SOCKET")
    assert {e["ifname"] for e in dt.seen} == {"lo"}


def test_mark_filter(lab):
    with Droptrace("--json", "--netns", str(lab.inode(lab.a)), "--mark", "0x42") as dt:
        dt.wait_ready()
        lab.traffic(lab.a, "udp", GHOST4, "9")
        lab.traffic(lab.a, "udp", GHOST4, "9", "--mark", "0x42")
        e = dt.find(lambda e: e["reason"] == "NEIGH_FAILED")
        assert e is not None and e["mark"] == 0x42
    assert {e["mark"] for e in dt.seen} == {0x42}


def test_netns_by_pid(lab):
    sink = subprocess.Popen(["ip", "netns", "exec", lab.b, "sleep", "60"])
    try:
        with Droptrace("--json", "--netns", f"pid:{sink.pid}") as dt:
            dt.wait_ready()
            udp_closed(lab)
            e = dt.find(lambda e: e["reason"] == "NO_SOCKET")
    finally:
        sink.kill()
    # `ip netns exec` execs sleep in the namespace: same pid
    assert e is not None and e["netns"] == lab.inode(lab.b)


def test_list_reasons_comes_from_the_kernel():
    r = run("--list-reasons")
    assert r.returncode == 0
    assert re.search(r"^\s+\d+\s+NO_SOCKET$", r.stdout, re.M)
    assert "CONSUMED" not in r.stdout and "NOT_DROPPED_YET" not in r.stdout


def test_bad_input_is_one_clear_line():
    cases = [
        (["--bogus"], 2, "unrecognized arguments"),
        (["-c", "0"], 2, "greater than zero"),
        (["-d", "soon"], 2, "not a number"),
        (["--hook", "kprobe"], 2, "invalid choice"),
        (["--mark", "0x1/zz"], 2, "VALUE/MASK"),
        # usage errors are exit 2 (issue 8: these were 1)
        (["--reason", "NO_SOKET"], 2, "did you mean NO_SOCKET"),
        (["--reason", "NO_SOCKET", "--exclude-reason", "NOT_SPECIFIED"], 2, "cannot be combined"),
        (["--netns", "no-such-namespace"], 1, "/run/netns/no-such-namespace"),
        (["-i", "a-very-long-interface-name"], 2, "longer than 15"),
        (["lab", "no-such-scenario"], 2, "no lab scenario"),
    ]
    for args, rc, text in cases:
        assert_one_clear_line(args, rc, text)


def assert_one_clear_line(args, rc, text):
    r = run(*args)
    assert r.returncode == rc, (args, r.stderr)
    assert text in r.stderr, (args, r.stderr)
    assert TRACEBACK not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stdout == ""


BAD_INPUT = [
    (["-d", "inf"], 2, "too long"),
    (["-d", "1e308"], 2, "too long"),
    (["-d", "nan"], 2, "greater than zero"),
    (["-c", "1" * 20], 2, "out of range"),
    (["--pid", "1" * 20], 2, "out of range"),
    (["--pid", "-1"], 2, "greater than zero"),
    (["--rate-limit", "1" * 20], 2, "out of range"),
    (["--netns", "1" * 20], 2, "not a namespace inode"),
    (["--netns", ""], 2, "empty namespace"),
    (["--netns", "0"], 2, "not a namespace inode"),
    (["--netns", "../../etc/passwd"], 2, "not an inode, an `ip netns` name or pid:N"),
    (["--netns", "12345"], 1, "no network namespace with this inode"),
    (["--netns", "pid:99999999"], 2, "out of range"),
    (["--reason", ""], 2, "no name given"),
    (["--reason", ","], 2, "no name given"),
    (["-i", ""], 2, "empty name"),
    (["-i", "a/b"], 2, "not a valid device name"),
    (["--mark", "-1"], 2, "does not fit in 32 bits"),
    (["--ring-buffer", "3"], 2, "power of two"),
    (["udp port \udcff"], 2, "invalid filter expression"),
    (["inbound"], 2, "capture direction"),
    (["outbound", "and", "udp"], 2, "capture direction"),
    (["record", "-w", "/tmp/never-written.pcapng", "--snaplen", "99999"], 2, "captures 1 to"),
    (["record", "-w", "/tmp/never-written.pcapng", "--snaplen", "64", "--payload"], 2,
     "cannot be combined"),
    (["lab", "--hook", "bogus"], 2, "invalid choice"),
    (["top", "--interval", "inf"], 2, "too long"),
    (["report"], 2, "required"),
]


@pytest.mark.host_only
@pytest.mark.parametrize("args,rc,text", BAD_INPUT, ids=[" ".join(a)[:40] for a, _, _ in BAD_INPUT])
def test_every_bad_input_is_one_line_and_the_right_exit(args, rc, text):
    assert_one_clear_line(args, rc, text)


@pytest.mark.host_only
def test_help_of_every_subcommand_is_usage_and_exit_0():
    for sub in (["doctor"], ["top"], ["record"], ["report"], ["lab"], []):
        r = run(*sub, "--help")
        assert r.returncode == 0, (sub, r.stderr)
        assert r.stdout.startswith("usage: droptrace"), (sub, r.stdout[:80])


@pytest.mark.host_only
def test_the_api_gets_the_same_answers():
    import droptrace

    for kw, text in [(dict(pid=-1), "greater than zero"), (dict(mark=-1), "does not fit"),
                     (dict(reasons="NO_SOCKET", exclude_reasons="NOT_SPECIFIED"), "cannot be combined"),
                     (dict(netns=""), "empty namespace"), (dict(count=0), "greater than zero"),
                     (dict(duration=float("inf")), "too long"), (dict(reasons="NO_SOKET"), "did you mean")]:
        with pytest.raises(droptrace.UsageError, match=text):
            droptrace.trace(**kw)
    with pytest.raises(droptrace.DroptraceError, match="cannot read"):
        droptrace.read("/nonexistent/recording.pcapng")  # at the call, not at iteration


def test_an_interface_name_that_is_not_utf8_is_taken_as_bytes():
    r = run("-i", "\udcff", "-d", "0.2")
    assert r.returncode == 0, r.stderr
    assert TRACEBACK not in r.stderr and "Tracing" in r.stderr


def test_not_root_is_a_clear_error():
    r = subprocess.run([*UNPRIVILEGED, DROPTRACE, "-c", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "needs root" in r.stderr and TRACEBACK not in r.stderr


def test_lab_runs_and_cleans_up():
    r = subprocess.run([DROPTRACE, "lab", "udp4-closed-port", "nft-drop"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2/2 scenarios reported as expected" in r.stdout
    assert "-> reported as NETFILTER_DROP at nft_do_chain+0x" in r.stdout
    assert "dtlab" not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                         text=True).stdout.replace(f"dtlabt{os.getpid()}", "")


def test_lab_is_removed_on_interrupt():
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen([DROPTRACE, "lab", "all"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:  # readiness: the lab is up and traced
            if line.startswith("Tracing via"):
                break
        assert os.path.exists(f"/run/netns/dtlab{proc.pid}a")
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert not os.path.exists(f"/run/netns/dtlab{proc.pid}a")
        assert not os.path.exists(f"/run/netns/dtlab{proc.pid}b")


def no_ports(lab) -> int:
    out = subprocess.run(["ip", "netns", "exec", lab.b, "cat", "/proc/net/snmp"],
                         capture_output=True, text=True, check=True).stdout
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("Udp:")]
    return int(rows[1][rows[0].index("NoPorts")])


def wait_no_ports(lab, target: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while no_ports(lab) < target and time.monotonic() < deadline:
        time.sleep(0.02)
    assert no_ports(lab) >= target


def test_flood_accounting_is_exact(lab):
    """Under a flood into a small ring buffer, shown + lost == provoked, to the event."""
    n = 20000
    before = no_ports(lab)
    with Droptrace("--json", "--netns", lab.b, "--reason", "NO_SOCKET", "--ring-buffer", "1") as dt:
        dt.wait_ready()
        lab.traffic(lab.a, "udp", B4, "9", "--count", str(n))
        wait_no_ports(lab, before + n)  # the kernel's own count: every datagram was dropped
        assert dt.stop() == 0
    m = re.match(r"droptrace: (\d+) drops shown, (\d+) lost", dt.stderr[-1])
    shown, lost = int(m.group(1)), int(m.group(2))
    assert shown == len(dt.stdout)
    assert shown + lost == n, (shown, lost)


def test_rate_limit_counts_what_it_holds_back(lab):
    n = 3000
    before = no_ports(lab)
    with Droptrace("--json", "--netns", lab.b, "--reason", "NO_SOCKET", "--rate-limit", "50") as dt:
        dt.wait_ready()
        t0 = time.monotonic()
        lab.traffic(lab.a, "udp", B4, "9", "--count", str(n))
        wait_no_ports(lab, before + n)
        elapsed = time.monotonic() - t0
        assert dt.stop() == 0
    m = re.match(r"droptrace: (\d+) drops shown, (\d+) lost \(ring buffer full\), (\d+) suppressed",
                 dt.stderr[-1])
    shown, lost, held = (int(g) for g in m.groups())
    assert shown + lost + held == n
    assert shown <= 50 * (int(elapsed) + 2) and held > 0


SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in sys.stdin:
    s.sendto(b"pid", (sys.argv[1], int(line)))
    print("sent", flush=True)
"""


def test_pid_filter(lab):
    """--pid keeps drops that happen while that process is on the CPU (here, the
    softirq that runs on the sender's own sendto over veth)."""
    import sys

    proc = subprocess.Popen(["ip", "netns", "exec", lab.a, sys.executable, "-c", SENDER, B4],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    e = None
    try:
        with Droptrace("--json", "--netns", lab.b, "--pid", str(proc.pid)) as dt:
            dt.wait_ready()
            lab.traffic(lab.a, "udp", B4, "5001")  # another process: filtered out
            # The softirq usually runs on the sender's syscall; if the kernel deferred it to
            # ksoftirqd, that drop is (rightly) filtered out too, so try a few times.
            for attempt in range(5):
                proc.stdin.write(f"{5002 + attempt}\n")
                proc.stdin.flush()
                assert proc.stdout.readline().strip() == "sent"
                e = dt.find(lambda e: e["dport"] >= 5002, timeout=3)
                if e is not None:
                    break
    finally:
        proc.stdin.close()
        proc.wait(10)
    assert e is not None and e["pid"] == proc.pid and e["comm"].startswith("python")
    assert {x["pid"] for x in dt.seen} == {proc.pid}
