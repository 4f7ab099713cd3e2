"""The per-CPU rings read as one (kernel/ringbuf.py), over synthetic rings laid out as the kernel's."""
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from droptrace.kernel.ringbuf import MIN_RING, Rings, online_cpus, per_cpu_bytes

from .test_render import Ring


def rings_of(*rings: Ring) -> Rings:
    r = Rings.__new__(Rings)
    r.rings, r._epoll, r._next, r.wake_bytes = [x.mmap_ring() for x in rings], None, 0, 1 << 16
    return r


def test_each_cpus_records_in_order_and_the_first_ring_in_turn():
    a, b = Ring(), Ring()
    for i in range(5):
        a.push(b"a%d" % i + b"\0" * 6)
        b.push(b"b%d" % i + b"\0" * 6)
    rings = rings_of(a, b)
    first = rings.read(3)
    second = rings.read(3)
    assert [r[:2] for r in first] == [b"a0", b"a1", b"a2"]
    assert [r[:2] for r in second] == [b"b0", b"b1", b"b2"]  # the other ring starts the next batch
    rest = rings.read(100)
    assert [r[:2] for r in rest] == [b"a3", b"a4", b"b3", b"b4"]
    assert not rings.pending() and rings.read(10) == []


@given(st.lists(st.tuples(st.integers(0, 2), st.binary(min_size=1, max_size=40)), max_size=60),
       st.integers(1, 9))
def test_nothing_is_lost_or_reordered_within_a_cpu(pushes, limit):
    rs = [Ring(size=1 << 14) for _ in range(3)]
    for cpu, rec in pushes:
        rs[cpu].push(bytes([cpu]) + rec)
    rings = rings_of(*rs)
    got = []
    while True:
        batch = rings.read(limit)
        assert len(batch) <= limit
        if not batch:
            break
        got += batch
    for cpu in range(3):
        assert [g for g in got if g[0] == cpu] == [bytes([cpu]) + r for c, r in pushes if c == cpu]


def test_render_goes_through_every_ring():
    a, b = Ring(), Ring()
    a.push(b"x" * 8)
    b.push(b"y" * 8)
    b.push(b"z" * 8)

    def render_ring(data, page, mask, cons, limit):  # what the C renderer does, in Python
        out, n = b"", 0
        prod = struct.unpack_from("<Q", data, 0)[0]
        while cons < prod and n < limit:
            off = page + (cons & mask)
            length = struct.unpack_from("<I", data, off)[0]
            out += bytes(data[off + 8:off + 8 + length])
            n += 1
            cons += (length + 8 + 7) & ~7
        return cons, out, n
    out, n = rings_of(a, b).render(render_ring, 10)
    assert (out, n) == (b"x" * 8 + b"y" * 8 + b"z" * 8, 3)
    assert a.consumer == a.prod and b.consumer == b.prod


@pytest.mark.parametrize("text,cpus", [("0-3\n", [0, 1, 2, 3]), ("0,2-3,7", [0, 2, 3, 7]), ("0", [0]),
                                       ("", [0]), ("garbage", [0])])
def test_online_cpus(text, cpus):
    assert online_cpus(text) == cpus


@given(st.integers(1, 1 << 34), st.integers(1, 4096))
def test_a_cpus_share_is_a_power_of_two_of_at_least_the_minimum(total, cpus):
    share = per_cpu_bytes(total, cpus)
    assert share & (share - 1) == 0 and share >= MIN_RING
    assert share <= max(total // cpus, MIN_RING) < 2 * share


def test_the_real_cpus_file_parses():
    assert online_cpus() and all(c >= 0 for c in online_cpus())


def test_the_positions_are_whole_native_words():
    # One aligned 8-byte load or store each: struct.pack_into zeroed the consumer position, then
    # wrote it a byte at a time, and a reservation in that window saw a full ring (lost events).
    ring = Ring()
    ring.push(b"x" * 8)
    m = ring.mmap_ring()
    for view in (m._cons_pos, m._prod_pos):
        assert (view.format, view.itemsize, len(view)) == ("Q", 8, 1)
    m.read(10)
    assert m._cons_pos[0] == struct.unpack_from("=Q", ring.cons, 0)[0] == 16
    m.close()
