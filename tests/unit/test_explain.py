"""`droptrace explain`: every reason of every saved kernel list has an entry, a reason no list has
still explains, names resolve as users type them."""
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from droptrace.explain import UnknownReason, catalogue, explain, listing, summary, unwritten, words_of

from . import saved_reasons
from .saved_reasons import btf_blob, saved_enums


def names_of(version: str):
    return saved_reasons.from_format(version).all_names()


@pytest.mark.parametrize("version", saved_reasons.format_versions())
def test_every_reason_of_a_saved_format_has_an_entry(version):
    assert not unwritten(names_of(version)), f"no entry written for {unwritten(names_of(version))}"


@pytest.mark.parametrize("version", saved_reasons.btf_versions())
def test_every_reason_of_a_saved_btf_list_has_an_entry(version):
    names = saved_reasons.from_btf(version).all_names()
    assert len(names) > 100 and not unwritten(names), f"no entry written for {unwritten(names)}"


@pytest.mark.parametrize("version", saved_reasons.btf_versions())
def test_saved_btf_and_format_of_a_kernel_agree(version):
    """The same kernel's two lists name every value alike (what test_kernels checks live)."""
    assert saved_reasons.from_btf(version).all_names() == names_of(version)


def test_the_saved_lists_cover_the_kernels_the_catalogue_was_written_for():
    assert {"6.1", "6.12", "6.18", "6.18.44"} <= set(saved_reasons.format_versions())
    assert "IPV6_TOO_MANY_EXTHDRS" in names_of("6.18.44").values()
    assert "IPV6_TOO_MANY_EXTHDRS" not in names_of("6.18").values()


def newer_kernel():
    """6.18.44's BTF enums with two members no saved list has, numbered in declaration order as the
    kernel numbers them: one in the IPv6 group, one at the end."""
    enums = saved_enums("6.18.44")
    core = enums["skb_drop_reason"]
    order = [m for m in core if m not in ("SKB_DROP_REASON_MAX", "SKB_DROP_REASON_SUBSYS_MASK")]
    order.insert(order.index("SKB_DROP_REASON_IPV6_TOO_MANY_EXTHDRS") + 1, "SKB_DROP_REASON_IPV6_EXTHDR_CSUM")
    order += ["SKB_DROP_REASON_WIDGET_OVERFLOW", "SKB_DROP_REASON_MAX"]
    enums["skb_drop_reason"] = {**{m: i for i, m in enumerate(order)},
                                "SKB_DROP_REASON_SUBSYS_MASK": core["SKB_DROP_REASON_SUBSYS_MASK"]}
    return enums


def test_a_kernel_with_unknown_reasons_is_named_not_failed():
    from droptrace.kernel import btf, reasons

    names = reasons.from_btf(btf.parse(btf_blob(newer_kernel()))).all_names()
    assert unwritten(names) == ["IPV6_EXTHDR_CSUM", "WIDGET_OVERFLOW"]
    e = explain("ipv6_exthdr_csum", names)
    assert e.in_kernel and names[e.value] == "IPV6_EXTHDR_CSUM" and "no entry written" in e.summary
    assert "IPv6 extension header checksum" in e.details and "IPv6 (net/ipv6)" in e.details
    assert "IPV6_TOO_MANY_EXTHDRS" in e.details  # its neighbour in the kernel's list
    assert any("--reason IPV6_EXTHDR_CSUM --stack" in c for _, c in e.checks)
    w = explain("WIDGET_OVERFLOW", names)
    assert "widget overflow" in w.details and "raised by" not in w.details
    assert [x.reason for x in listing(names)][-1] == "WIDGET_OVERFLOW"


@pytest.mark.parametrize("name,words", [("NO_SOCKET", "no socket"), ("TCP_CSUM", "TCP checksum"),
                                        ("SKB_RX_HEADROOM", "skb receive headroom"),
                                        ("OPENVSWITCH:OVS_DROP_LAST_ACTION",
                                         "openvswitch ovs drop last action")])
def test_words_of_a_name(name, words):
    assert words_of(name) == words


@pytest.mark.host_only
def test_cli_on_a_kernel_with_reasons_no_saved_list_has(tmp_path):
    """`droptrace explain` as a user runs it, on a kernel (its BTF) newer than the catalogue."""
    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_bytes(btf_blob(newer_kernel()))
    env = dict(os.environ, DROPTRACE_KERNEL_BTF=str(vmlinux))
    r = subprocess.run([sys.executable, "-m", "droptrace", "explain", "WIDGET_OVERFLOW"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("WIDGET_OVERFLOW: ") and "no entry written" in r.stdout
    assert "droptrace --reason WIDGET_OVERFLOW --stack" in r.stdout
    r = subprocess.run([sys.executable, "-m", "droptrace", "explain"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "IPV6_EXTHDR_CSUM" in r.stdout and "NO_SOCKET" in r.stdout


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


def test_a_subsystem_reason_whose_module_is_not_loaded():
    names = names_of("6.18.44")  # the saved lists hold no module's reasons
    e = explain("OPENVSWITCH:OVS_DROP_LAST_ACTION", names)
    assert e.reason == "OPENVSWITCH:OVS_DROP_LAST_ACTION" and not e.in_kernel and "Open vSwitch" in e.summary
    assert explain("SKB_DROP_REASON_SUBSYS_OPENVSWITCH", names).reason == "OPENVSWITCH"
    assert explain("openvswitch:", names).reason == "OPENVSWITCH"


def test_a_number_too_long_for_int_is_no_reason():
    with pytest.raises(UnknownReason, match=r"no drop reason 1{20}\.\.\. on this kernel"):
        explain("1" * 4301, names_of("6.18.44"))
