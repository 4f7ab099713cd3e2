"""Reason names from BTF (real and synthetic) and from saved tracepoint formats."""
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from droptrace.errors import DroptraceError
from droptrace.kernel import btf, reasons, tracefs

from .btfgen import BTFBuilder

DATA = Path(__file__).resolve().parent.parent / "data"
VMLINUX = "/sys/kernel/btf/vmlinux"

CORE = {"SKB_NOT_DROPPED_YET": 0, "SKB_CONSUMED": 1, "SKB_DROP_REASON_NOT_SPECIFIED": 2,
        "SKB_DROP_REASON_NO_SOCKET": 3, "SKB_DROP_REASON_NETFILTER_DROP": 4,
        "SKB_DROP_REASON_MAX": 5, "SKB_DROP_REASON_SUBSYS_MASK": 0xFFFF0000}
SUBSYS = {"SKB_DROP_REASON_SUBSYS_CORE": 0, "SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE": 1,
          "SKB_DROP_REASON_SUBSYS_OPENVSWITCH": 2, "SKB_DROP_REASON_SUBSYS_NUM": 3}


def synthetic_vmlinux() -> bytes:
    b = BTFBuilder()
    b.int("int", 4)
    b.enum("skb_drop_reason", CORE)
    b.enum("skb_drop_reason_subsys", SUBSYS)
    b.struct("sk_buff", 232, [("len", 1, 0)])
    return b.bytes()


def test_synthetic_btf_parses():
    data = btf.parse(synthetic_vmlinux())
    assert data.enum("skb_drop_reason")["SKB_DROP_REASON_NO_SOCKET"] == 3
    assert data.find("sk_buff", btf.KIND_STRUCT).size == 232


def test_reasons_from_btf_strip_prefix_and_mark_non_drops():
    r = reasons.from_btf(btf.parse(synthetic_vmlinux()))
    assert r.name(3) == "NO_SOCKET"
    assert r.value("no_socket") == 3
    assert r.value("SKB_DROP_REASON_NETFILTER_DROP") == 4
    assert sorted(r.not_drops) == [0, 1]
    assert "CONSUMED" not in r.all_names().values()
    assert "MAX" not in r.all_names().values()
    assert r.name(77) == "UNKNOWN_77"


def test_unknown_reason_name_suggests_close_matches():
    r = reasons.from_btf(btf.parse(synthetic_vmlinux()))
    with pytest.raises(DroptraceError, match="did you mean NO_SOCKET"):
        r.value("NO_SOKET")


def test_subsystem_reasons_come_from_module_btf(tmp_path):
    base_blob = synthetic_vmlinux()
    (tmp_path / "vmlinux").write_bytes(base_blob)
    base = btf.parse(base_blob)
    mod = BTFBuilder(base_str_len=int.from_bytes(base_blob[20:24], "little"))  # the header's str_len
    mod.enum("ovs_drop_reason", {"OVS_DROP_LAST_ACTION": (2 << 16) | 1,
                                 "OVS_DROP_ACTION_ERROR": (2 << 16) | 2})
    mod.enum64("mac80211_drop_reason", {"RX_DROP_U_MIC_FAIL": (1 << 16) | 1})
    (tmp_path / "openvswitch").write_bytes(mod.bytes())
    r = reasons.from_btf(base)
    r.btf_dir = str(tmp_path)
    assert r.name((2 << 16) | 1) == "OPENVSWITCH:OVS_DROP_LAST_ACTION"
    assert r.name((2 << 16) | 2) == "OPENVSWITCH:OVS_DROP_ACTION_ERROR"
    assert r.name((1 << 16) | 1) == "MAC80211_UNUSABLE:RX_DROP_U_MIC_FAIL"
    assert r.name((2 << 16) | 9) == "OPENVSWITCH:9"
    assert r.value("openvswitch:ovs_drop_last_action") == (2 << 16) | 1


def test_print_fmt_of_6_18():
    fmt = tracefs.parse_format((DATA / "kfree_skb-6.18.format").read_text())
    assert fmt.fields["skbaddr"].offset == 8
    assert fmt.fields["location"].offset == 16
    assert fmt.fields["reason"].offset == 36 and fmt.fields["reason"].size == 4
    r = reasons.from_print_fmt(fmt.print_fmt)
    assert r.value("NO_SOCKET") == 3 and r.name(2) == "NOT_SPECIFIED"
    assert r.name(12) == "NETFILTER_DROP"


def test_kernel_without_reasons_5_15():
    fmt = tracefs.parse_format((DATA / "kfree_skb-5.15.format").read_text())
    assert "reason" not in fmt.fields and fmt.fields["protocol"].offset == 24
    with pytest.raises(DroptraceError, match="no drop reasons"):
        reasons.from_print_fmt(fmt.print_fmt)


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")
def test_running_kernel_btf_agrees_with_its_tracepoint_format():
    r = reasons.from_btf(btf.read(VMLINUX))
    try:
        text = Path(tracefs.require(), tracefs.EVENT).read_text()
    except (DroptraceError, OSError):
        pytest.skip("tracefs unavailable")
    t = reasons.from_print_fmt(tracefs.parse_format(text).print_fmt)
    assert "NO_SOCKET" in r.all_names().values()
    for value, name in t.names.items():
        assert r.name(value) == name


@given(st.binary(max_size=400))
def test_btf_parse_rejects_garbage_cleanly(data):
    try:
        btf.parse(data)
    except btf.BTFError:
        pass


@given(st.binary(max_size=200))
def test_btf_parse_survives_corrupted_type_sections(noise):
    blob = bytearray(synthetic_vmlinux())
    blob[24:24 + len(noise)] = noise[: max(0, len(blob) - 24)]
    try:
        btf.parse(bytes(blob))
    except btf.BTFError:
        pass


@given(st.text(max_size=300))
def test_format_parsers_never_raise_unexpectedly(text):
    fmt = tracefs.parse_format(text)
    try:
        reasons.from_print_fmt(fmt.print_fmt + text)
    except DroptraceError:
        pass


def test_print_fmt_of_6_1_numbers_differ_names_agree():
    fmt = tracefs.parse_format((DATA / "kfree_skb-6.1.format").read_text())
    assert "rx_sk" not in fmt.fields
    assert fmt.fields["reason"].offset == 28 and fmt.fields["protocol"].offset == 24
    r = reasons.from_print_fmt(fmt.print_fmt)
    assert r.value("NO_SOCKET") == 2 and r.name(7) == "NETFILTER_DROP"
    assert 0 in r.not_drops  # 6.1 does not print NOT_DROPPED_YET; it is 0 everywhere
    new = reasons.from_print_fmt(tracefs.parse_format(
        (DATA / "kfree_skb-6.18.format").read_text()).print_fmt)
    assert new.value("NO_SOCKET") == 3


def test_print_fmt_of_6_12_names_are_a_subset_of_6_18():
    """Debian's 6.12 LTS (saved from the VM of the kernel matrix): its names, by name, all exist
    on 6.18, at values that may differ."""
    old = reasons.from_print_fmt(tracefs.parse_format((DATA / "kfree_skb-6.12.format").read_text()).print_fmt)
    new = reasons.from_print_fmt(tracefs.parse_format((DATA / "kfree_skb-6.18.format").read_text()).print_fmt)
    assert old.value("NO_SOCKET") == 3 and "NO_SOCKET" in old.all_names().values()
    assert set(old.all_names().values()) <= set(new.all_names().values())
