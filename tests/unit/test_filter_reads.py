"""The verdict cache's proof (packet/filter_reads.py), checked against libpcap's own interpreter:
two packets of a class that agree in every byte the analysis says the filter reads must get the
same verdict, whatever their other bytes."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droptrace.packet.filter import compile_filters
from droptrace.packet.filter_reads import CLASSES, reads
from droptrace.packet.libpcap import OfflineProgram

FIXED, AFTER = 80, 48  # the kernel's windows (DT_FC_FIXED, DT_FC_AFTER)

EXPRESSIONS = [
    "port 1", "tcp port 80", "udp and dst port 53", "host 10.0.0.1", "net 10.0.0.0/8", "icmp",
    "tcp[tcpflags] & tcp-syn != 0", "ip6 and tcp port 22", "src host 10.0.0.1 and not port 22",
    "greater 100", "ip[8] < 5", "icmp6", "portrange 1000-2000", "tcp[20:4] = 0", "vlan", "arp",
    "ip proto 47", "udp[8:2] = 0x1234", "ip[2:2] - ((ip[0]&0xf)<<2) > 40",
]


def prog_and_class(expr: str, c: int):
    eth, raw = compile_filters(expr, 256)
    cls = CLASSES[c]
    return (eth if cls[0] == "eth" else raw), cls


def with_class(pkt: bytearray, cls) -> bytearray:
    _prog, off, mask, value = cls
    while len(pkt) < off + 2:
        pkt.append(0)
    cur = int.from_bytes(pkt[off:off + 2], "big")
    pkt[off:off + 2] = ((cur & ~mask) | value).to_bytes(2, "big")
    return pkt


# bytes a filter is likely to test, so that the packets take the interesting paths
LIKELY = st.sampled_from([0, 1, 6, 17, 58, 132, 0x45, 0x46, 0x40, 0x50, 0x60, 10, 22, 53, 80, 0x12, 0x34,
                          0xFF])


@st.composite
def packets(draw, cls):
    n = draw(st.integers(0, 130))
    pkt = bytearray(draw(st.lists(st.one_of(LIKELY, st.integers(0, 255)), min_size=n, max_size=n)))
    return bytes(with_class(pkt, cls))


def agree_outside(pkt: bytes, r, other: bytes) -> bytes:
    """`other`, of pkt's length, with pkt's bytes wherever the filter may read."""
    out = bytearray(other[:len(pkt)].ljust(len(pkt), b"\0"))
    keep = set(r.fixed)
    if r.msh is not None and r.msh < len(pkt):
        x = 4 * (pkt[r.msh] & 0xF)
        keep |= {x + i for i in r.after_msh}
    for i in keep:
        if i < len(pkt):
            out[i] = pkt[i]
    return bytes(out)


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("c", range(len(CLASSES)))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_equal_read_bytes_mean_equal_verdicts(expr, c, data):
    prog, cls = prog_and_class(expr, c)
    r = reads(prog, cls, FIXED, AFTER)
    if r is None:
        return
    pkt = data.draw(packets(cls))
    noise = data.draw(st.binary(min_size=len(pkt), max_size=len(pkt)))
    twin = bytes(with_class(bytearray(agree_outside(pkt, r, noise)), cls))  # the class is in the key too
    vm = OfflineProgram(prog)
    assert vm.matches(pkt, len(pkt)) == vm.matches(twin, len(twin)), (expr, cls, r, pkt.hex(), twin.hex())


@pytest.mark.parametrize("expr,c,fixed,after", [
    # EtherType, IPv4 header length, fragment field, protocol; the ports after the IPv4 header
    ("port 1", 0, {12, 13, 14, 20, 21, 23}, {14, 15, 16, 17}),
    # IPv6: the next header and the ports at fixed offsets
    ("port 1", 1, {12, 13, 20, 54, 55, 56, 57}, set()),
    ("host 10.0.0.1", 0, {12, 13, 26, 27, 28, 29, 30, 31, 32, 33}, set()),
])
def test_reads_of_common_expressions(expr, c, fixed, after):
    prog, cls = prog_and_class(expr, c)
    r = reads(prog, cls, FIXED, AFTER)
    assert r is not None and set(r.fixed) == fixed and set(r.after_msh) == after and not r.uses_len


@pytest.mark.parametrize("expr,c", [
    ("tcp[40:4] = 0", 0),   # past the window after the IPv4 header
    ("ip6[70] = 1", 1),     # past the fixed window
])
def test_reads_past_the_windows_are_not_cached(expr, c):
    prog, cls = prog_and_class(expr, c)
    assert reads(prog, cls, FIXED, AFTER) is None


def test_length_is_a_read():
    prog, cls = prog_and_class("greater 100", 0)
    r = reads(prog, cls, FIXED, AFTER)
    assert r is not None and r.uses_len
