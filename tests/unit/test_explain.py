"""`droptrace explain`: every reason of 6.18 and 6.1 has an entry, names resolve as users type them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from droptrace.explain import UnknownReason, catalogue, explain, listing, summary
from droptrace.kernel import reasons, tracefs

DATA = Path(__file__).resolve().parent.parent / "data"
VMLINUX = "/sys/kernel/btf/vmlinux"


def names_of(version: str):
    fmt = tracefs.parse_format((DATA / f"kfree_skb-{version}.format").read_text())
    return reasons.from_print_fmt(fmt.print_fmt).all_names()


@pytest.mark.parametrize("version", ["6.1", "6.12", "6.18"])
def test_every_reason_of_the_kernel_has_an_entry(version):
    missing = [n for n in names_of(version).values() if n not in catalogue()]
    assert not missing, f"no entry written for {missing}"


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")
def test_every_reason_of_the_running_kernel_has_an_entry():
    names = reasons.load(VMLINUX).names
    missing = [n for v, n in names.items() if n not in catalogue() and n not in ("NOT_DROPPED_YET",
                                                                                  "CONSUMED")]
    assert not missing, f"no entry written for {missing}"


def test_entries_are_complete():
    for name, e in catalogue().items():
        assert e["summary"] and len(e["summary"]) <= 110 and "\n" not in e["summary"], name
        assert e["details"] and e["causes"] and e["checks"], name
        for what, command in e["checks"]:
            assert what and command, name
        assert all(c and c[0].isupper() for c in e["counters"]), name


@pytest.mark.parametrize("text", ["NO_SOCKET", "no_socket", "SKB_DROP_REASON_NO_SOCKET", " No_Socket ", "3"])
def test_names_as_users_type_them(text):
    e = explain(text, names_of("6.18"))
    assert e.reason == "NO_SOCKET" and e.value == 3 and e.in_kernel
    assert "UdpNoPorts" in e.counters


def test_numbers_are_the_running_kernels():
    assert explain("2", names_of("6.1")).reason == "NO_SOCKET"
    assert explain("2", names_of("6.18")).reason == "NOT_SPECIFIED"


def test_unknown_names_fail_with_a_hint():
    with pytest.raises(UnknownReason, match="did you mean NO_SOCKET"):
        explain("NO_SOCKETS", names_of("6.18"))
    with pytest.raises(UnknownReason):
        explain("99999", names_of("6.18"))


def test_a_reason_of_another_kernel_is_explained_and_said_so():
    e = explain("DUALPI2_STEP_DROP", names_of("6.1"))
    assert not e.in_kernel and e.value is None and e.summary


def test_a_newer_kernels_reason_is_not_invented():
    e = explain("BRAND_NEW", {2: "NOT_SPECIFIED", 99: "BRAND_NEW"})
    assert e.in_kernel and e.value == 99 and "no entry written" in e.summary


def test_subsystem_reasons():
    e = explain("OPENVSWITCH:OVS_DROP_LAST_ACTION", {2 << 16 | 1: "OPENVSWITCH:OVS_DROP_LAST_ACTION"})
    assert e.reason == "OPENVSWITCH:OVS_DROP_LAST_ACTION" and e.value == (2 << 16 | 1)
    assert summary("OPENVSWITCH:OVS_DROP_LAST_ACTION")


def test_listing_without_drop_reasons_is_the_catalogue():
    assert len(listing(None)) == len(catalogue())
    assert [e.reason for e in listing(names_of("6.1"))][:2] == ["NOT_SPECIFIED", "NO_SOCKET"]


@given(st.text(max_size=40))
def test_any_text_explains_or_fails_cleanly(text):
    try:
        e = explain(text, names_of("6.18"))
    except UnknownReason as err:
        assert "\n" not in str(err)
    else:
        assert e.summary


def droptrace(*args):
    return subprocess.run([sys.executable, "-m", "droptrace", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.host_only
def test_cli_explain_json_and_errors():
    r = droptrace("explain", "--json", "ip_rpfilter")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["reason"] == "IP_RPFILTER" and {"summary", "details", "causes", "checks", "counters"} <= set(d)
    r = droptrace("explain", "NOT_A_REASON")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = droptrace("explain")
    assert r.returncode == 0 and "NO_SOCKET" in r.stdout and len(r.stdout.splitlines()) > 60
    r = droptrace("explain", "NO_SOCKET")
    assert "What to check:" in r.stdout and "Common causes:" in r.stdout
