"""The hook ladder and host support, on whatever kernel runs the suite.

The suite runs on the host kernel and, via scripts/test-other-kernel, on a
second kernel booted under qemu; these tests hold on both.
"""
import os
import re

import pytest

from droptrace.lab import B4, by_name

from ..unit import saved_reasons
from .conftest import HAS_BPF_LOOP, HAS_REASONS, SLOWDOWN, Droptrace, run

pytestmark = pytest.mark.matrix


def test_doctor_reports_every_hook():
    r = run("doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    for hook in ("tp_btf", "raw_tp", "tracepoint"):
        assert re.search(rf"hook {hook}\s+ok\s+loads and attaches", r.stdout), r.stdout
    if HAS_REASONS:
        assert re.search(r"drop reasons\s+ok\s+named from btf", r.stdout)
        assert "droptrace will use the tp_btf hook: drop reasons," in r.stdout
    else:
        assert "no enum skb_drop_reason: kernel < 5.17, locations only" in r.stdout
        assert "droptrace will use the tp_btf hook: locations only (no drop reasons)" in r.stdout
    where = "evaluated in the kernel (bpf_loop)" if HAS_BPF_LOOP else "evaluated in user space"
    assert re.search(rf"filter expressions\s+ok\s+{re.escape(where)}", r.stdout), r.stdout
    # A reason of this kernel without an entry is a line here, not a failure; each one it names
    # is in none of the saved lists (those are complete: tests/unit/test_explain.py).
    line = re.search(r"explanations\s+ok\s+(.*)", r.stdout)
    assert line, r.stdout
    if HAS_REASONS:
        m = re.fullmatch(r"an entry for each of this kernel's \d+ reasons|\d+ of \d+ reasons have an "
                         r"entry; newer than the catalogue: ([A-Z0-9_:, ]+) \(explain shows .*\)", line[1])
        assert m, line[1]
        saved = {n for v in saved_reasons.format_versions()
                 for n in saved_reasons.from_format(v).names.values()}
        assert not set((m[1] or "").split(", ")) - {""} & saved, line[1]
    assert run("--check").stdout == r.stdout


def test_filter_expression_on_this_kernel(lab):
    """In the kernel with bpf_loop (5.17+), in user space before: the same drops either way."""
    with Droptrace("--json", "--netns", lab.b, "-d", str(int(60 * SLOWDOWN)), "udp dst port 10") as dt:
        dt.wait_ready()
        lab.traffic(lab.a, "udp", B4, "9")
        lab.traffic(lab.a, "udp", B4, "10")
        e = dt.find(lambda e: e["dport"] == 10)
        assert dt.stop() == 0
    assert e is not None and not [x for x in dt.seen if x["dport"] != 10], dt.seen
    assert any("runs in user space" in ln for ln in dt.stderr) != HAS_BPF_LOOP, dt.stderr
    r = run("top", "-d", "1", "udp")
    if HAS_BPF_LOOP:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 1 and "no bpf_loop" in r.stderr and "Traceback" not in r.stderr


def test_probing_picks_the_first_rung(lab):
    with Droptrace("--json", "--netns", lab.b, "-d", "30") as dt:
        dt.wait_ready()
        assert dt.stop() == 0
    assert any("via tp_btf" in ln for ln in dt.stderr), dt.stderr


@pytest.mark.skipif(not HAS_REASONS, reason="the tracepoint of this kernel has no reason field")
def test_without_btf_reason_and_location_still_reported(lab):
    """A kernel without BTF: the classic tracepoint at the format file's offsets."""
    env = dict(os.environ, DROPTRACE_KERNEL_BTF="/nonexistent/vmlinux")
    scenario = by_name("unknown-proto")
    with Droptrace("--json", "--reason", "IP_NOPROTO", "-d", "60", env=env) as dt:
        dt.wait_ready()
        scenario.provoke(lab)
        e = dt.find(lambda e: e["reason"] == "IP_NOPROTO")
        assert dt.stop() == 0
    assert e is not None, dt.stderr
    assert e["location"].startswith("ip_local_deliver_finish+0x") or "+0x" in e["location"]
    assert e["l3"] == "ipv4" and e["saddr"] is None and e["netns"] is None and e["len"] is None
    assert any("via tracepoint" in ln for ln in dt.stderr)
    assert any("no kernel BTF" in ln for ln in dt.stderr)
    r = run("--netns", lab.b, env=env)
    assert r.returncode == 1 and "needs kernel BTF" in r.stderr


def test_kernel_without_drop_reasons_shows_locations(lab, tmp_path):
    """Kernels < 5.17 have no enum skb_drop_reason: the hooks must not read a reason
    argument, and events carry the location and the packet with a null reason. The
    running kernel is made to look like one by a BTF file without that enum."""
    from tests.unit.btfgen import BTFBuilder

    b = BTFBuilder()
    b.int("int", 4)
    old_btf = tmp_path / "vmlinux"
    old_btf.write_bytes(b.bytes())
    env = dict(os.environ, DROPTRACE_KERNEL_BTF=str(old_btf))
    for hook in ("tp_btf", "raw_tp"):
        with Droptrace("--json", "--hook", hook, "--netns", lab.b, "-d", "60", env=env) as dt:
            dt.wait_ready()
            by_name("tcp-closed-port").provoke(lab)
            e = dt.find(lambda e: e["l4"] == "tcp" and e["dport"] == 9)
            assert dt.stop() == 0
        assert e is not None, dt.stderr
        assert e["reason"] is None and e["reason_code"] is None
        assert e["location"].startswith("tcp_v4_rcv+0x") and e["tcp_flags"] == "S"
        assert any("locations only" in ln for ln in dt.stderr)
    r = run("--reason", "NO_SOCKET", env=env)
    assert r.returncode == 1 and "no drop reasons" in r.stderr


@pytest.mark.skipif(not HAS_REASONS, reason="this kernel has no drop reasons")
def test_reason_names_from_btf_agree_with_the_tracepoint():
    """On each kernel of the matrix: the names droptrace reads from BTF are the tracepoint's own
    (its print fmt), value by value, and every one has an explanation."""
    from pathlib import Path

    from droptrace.explain import explain
    from droptrace.kernel import btf, reasons, tracefs

    r = reasons.from_btf(btf.read("/sys/kernel/btf/vmlinux"))
    fmt = tracefs.parse_format(Path(tracefs.require(), tracefs.EVENT).read_text())
    t = reasons.from_print_fmt(fmt.print_fmt)
    assert t.names and {v: r.name(v) for v in t.names} == t.names
    # every one explains, with an entry or (newer than the catalogue) with what its name says
    for v, n in r.all_names().items():
        e = explain(n, r.all_names())
        assert e.value == v and e.summary, n
