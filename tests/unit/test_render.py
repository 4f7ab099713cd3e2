"""The compiled renderer (droptrace._render via droptrace/formats/compiled.py) against the Python paths.

Records are laid out by the BPF object's own BTF, pushed into a synthetic ring
buffer (anonymous memory laid out like the kernel's mappings: consumer page;
producer page, then the data area twice), and read both ways: MmapRing.read and the Python writers, and
the compiled renderer straight from the ring. Every format must come out byte
for byte the same, and the ring must be left at the same consumer position.
"""
import importlib
import mmap
import os
import random
import struct
import sys
import time
import traceback
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droptrace.convert import Converter
from droptrace.errors import DroptraceError
from droptrace.formats import compiled as render
from droptrace.formats.jsonl import RawJsonWriter
from droptrace.formats.out import Output
from droptrace.formats.recording import Recorder
from droptrace.formats.text import TextWriter
from droptrace.kernel.contract import contract
from droptrace.kernel.ringbuf import BUSY, DISCARD, Batch, MmapRing

from .test_decode import eth, ipv4, ipv6, tcp, udp

C = contract()
EVENT = C.struct("dt_event")
PAGE = 4096
SNAP_BIG = C.const["DT_SNAP_BIG"]
NAMES = {2: "NO_SOCKET", 3: "SOCKET_RCVBUFF", 5: "NETFILTER_DROP",
         77: "A_REASON_NAME_LONGER_THAN_THE_REASON_COLUMN_IS"}
SYMBOLS = {0xFFFFFFFF81000100: "tcp_v4_rcv+0x0", 1: "bpf_prog_x+0x1 [bpf]", 2: "bpf_trace_run4+0xfc",
           3: "tcp_v4_rcv+0x1a4", 4: "ip_rcv_finish_core+0x25b", 5: "ünïcode_fn+0x1"}
FORMATS = ("json", "text", "pcapng", "jsonl")
V6_LONG = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"  # wider than the address column starts

pytestmark = pytest.mark.skipif(render.compiled() is None, reason="droptrace._render is not built")


def converter(stack: bool = False, big: bool = False, offset_ns: int = 1_700_000_000 * 10**9) -> Converter:
    return Converter(lambda v: NAMES.get(v, f"UNKNOWN_{v}"), lambda a: SYMBOLS.get(a, f"0x{a:x}"), offset_ns,
                     stack, big=big)


def sizes(big: bool) -> Tuple[int, int]:
    """(plain record, record with the stack) of this variant, from the object's BTF."""
    plain, stacked = ("dt_event_big", "dt_event_big_stack") if big else ("dt_event", "dt_event_stack")
    s = C.struct(stacked)
    return C.struct(plain).size, s.offset("stack") + s.field("stack").size


def stack_at(big: bool) -> int:
    return C.struct("dt_event_big_stack" if big else "dt_event_stack").offset("stack")


def put(raw: bytearray, name: str, value: int) -> None:
    f = EVENT.field(name)
    raw[f.offset:f.end] = (value % (1 << 8 * f.size)).to_bytes(f.size, "little")


# -- a synthetic ring buffer -------------------------------------------------------------
class Ring:
    """The kernel's ring-buffer mappings in anonymous memory; push() commits a record as the kernel does."""

    def __init__(self, size: int = 1 << 17, start: int = 0) -> None:
        self.size, self.prod = size, start
        self.cons = mmap.mmap(-1, PAGE)  # anonymous: sliced, it gives bytes, as the ring's mappings do
        self.data = mmap.mmap(-1, PAGE + 2 * size)
        struct.pack_into("<Q", self.cons, 0, start)
        struct.pack_into("<Q", self.data, 0, start)

    def _write(self, pos: int, b: bytes) -> None:
        off = pos & (self.size - 1)
        first = min(len(b), self.size - off)
        for base in (PAGE, PAGE + self.size):  # the data area is mapped twice
            self.data[base + off:base + off + first] = b[:first]
            self.data[base:base + len(b) - first] = b[first:]

    def push(self, record: bytes, flags: int = 0) -> None:
        consumed = struct.unpack_from("<Q", self.cons, 0)[0]
        step = (len(record) + 8 + 7) & ~7
        assert self.prod + step - consumed <= self.size, "the synthetic ring is full"
        self._write(self.prod, struct.pack("<II", len(record) | flags, 0) + record)
        self.prod += step
        struct.pack_into("<Q", self.data, 0, self.prod)

    def mmap_ring(self) -> MmapRing:
        return MmapRing.over(self.cons, self.data, self.size, PAGE)

    @property
    def consumer(self) -> int:
        return struct.unpack_from("<Q", self.cons, 0)[0]


def batch_of(ring: "Ring | MmapRing", conv: Optional[Converter] = None, limit: int = 100) -> Batch:
    """What Tracer.batch() hands a sink, over a synthetic ring."""
    conv = conv or converter()
    mm = ring if isinstance(ring, MmapRing) else ring.mmap_ring()
    return Batch(mm, limit, conv.convert, conv.check, None, conv)


# -- records -----------------------------------------------------------------------------
u16 = st.one_of(st.sampled_from([0, 14, 0xFFFF]), st.integers(0, 0xFFFF))
u32 = st.one_of(st.sampled_from([0, 1, 0xFFFFFFFF]), st.integers(0, 2**32 - 1))
names16 = st.one_of(st.sampled_from([b"swapper/0", b"a\nb\tc\x1b[2Jd\x7f", b"\xff\xfe\x80abc", b"x" * 16,
                                     b"ksoftirqd/1", b"", b"Isolated Web Co", b"caf\xc3\xa9 \xe2\x80\xa8"]),
                    st.binary(max_size=16), st.text(max_size=8).map(lambda s: s.encode()[:16]))
ports = st.integers(0, 65535)
v4 = st.sampled_from(["10.0.0.1", "255.255.255.255", "192.0.2.7"])
v6 = st.sampled_from(["2001:db8::1", "::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1"])


@st.composite
def l3(draw) -> Tuple[int, bytes]:
    """(ethertype, network-layer bytes)."""
    kind = draw(st.sampled_from(["udp4", "tcp4", "icmp4", "udp6", "tcp6", "arp", "other", "junk4"]))
    if kind.endswith("4") and kind != "junk4":
        proto, l4 = {"udp4": (17, udp(draw(ports), draw(ports))),
                     "tcp4": (6, tcp(draw(ports), draw(ports), draw(st.integers(0, 255)))),
                     "icmp4": (1, bytes([3, 1, 0, 0]))}[kind]
        return 0x0800, ipv4(proto, l4, src=draw(v4), dst=draw(v4))
    if kind.endswith("6"):
        l4 = udp(draw(ports), draw(ports)) if kind == "udp6" else tcp(draw(ports), draw(ports), 0x12)
        return 0x86DD, ipv6(17 if kind == "udp6" else 6, l4, src=draw(v6), dst=draw(v6))
    if kind == "arp":
        return 0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, b"\1" * 6, b"\x0a\0\0\1", b"\0" * 6,
                                   b"\x0a\0\0\2")
    if kind == "junk4":
        return 0x0800, bytes([0x45]) + draw(st.binary(min_size=11, max_size=60))
    return draw(st.sampled_from([0x88B5, 0x88CC, 0x9000])), draw(st.binary(max_size=40))


@st.composite
def records(draw, big: bool = False) -> bytes:
    """One record of either size: mostly plausible packets, sometimes any bytes."""
    plain, stacked = sizes(big)
    snap = plain - EVENT.offset("data")
    ethertype, net = draw(l3())
    how = draw(st.sampled_from(["eth", "raw", "random"]))
    if how == "eth":
        data, mac, noff, dev, proto = eth(ethertype, net), 0, 14, draw(st.sampled_from([1, 772])), ethertype
    elif how == "raw":
        data, mac, noff, dev, proto = net, 0xFFFF, 0, draw(st.sampled_from([0xFFFF, 1, 65534])), ethertype
    else:
        data = draw(st.binary(max_size=snap))
        mac, noff, dev, proto = draw(u16), draw(u16), draw(u16), draw(u16)
    data = data[:snap]
    cap = draw(st.one_of(st.just(len(data)), u16))
    raw = bytearray(EVENT.pack(dict(
        ts_ns=draw(st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 10**15))),
        location=draw(st.one_of(st.sampled_from(sorted(SYMBOLS)), st.integers(0, 2**64 - 1))),
        reason=draw(st.one_of(st.sampled_from(sorted(NAMES)), u32)), pid=draw(u32), tid=draw(u32),
        cpu=draw(u32), len=draw(u32), mark=draw(u32), ifindex=draw(u32), netns=draw(u32), protocol=proto,
        mac_off=mac, net_off=noff, cap_len=cap, dev_type=dev, stack_len=0, data_off=draw(u16),
        flags=draw(st.integers(0, 3)), comm=draw(names16), ifname=draw(names16), data=data[:EVENT.field(
            "data").size]), complete=False))
    raw = raw.ljust(plain, b"\0")
    raw[EVENT.offset("data"):EVENT.offset("data") + len(data)] = data
    if draw(st.booleans()):  # with the stack
        frames = draw(st.lists(st.one_of(st.sampled_from(sorted(SYMBOLS)), st.integers(0, 2**64 - 1)),
                               max_size=6))
        at = stack_at(big)
        stack = b"".join(a.to_bytes(8, "little") for a in frames)
        raw = raw.ljust(stacked, b"\0")
        raw[at:at + len(stack)] = stack[:stacked - at]
        put(raw, "stack_len", draw(st.one_of(st.just(len(stack)), u16)))
    elif not big and draw(st.booleans()):  # trimmed by BPF to its packet, or anywhere after the header
        at = EVENT.offset("data")
        trim = at + ((min(cap, snap) + 7) & ~7)
        raw = raw[:draw(st.one_of(st.just(trim), st.integers(at, plain - 1)))]
    return bytes(raw)


@st.composite
def storms(draw, big: bool = False) -> List[bytes]:
    """A few flows, repeated with what changes per packet (time, task, CPU, length, IPv4 ID and
    checksum, stack): most records then hit a template."""
    bases = draw(st.lists(records(big), min_size=1, max_size=4))
    out = []
    for _ in range(draw(st.integers(1, 24))):
        raw = bytearray(draw(st.sampled_from(bases)))
        for name in draw(st.lists(st.sampled_from(["ts_ns", "pid", "tid", "cpu", "len", "data_off"]))):
            put(raw, name, draw(st.integers(0, 2**64 - 1)))
        if draw(st.booleans()):
            f = EVENT.field("comm")
            raw[f.offset:f.end] = draw(names16).ljust(f.size, b"\0")
        at = EVENT.offset("data") + int.from_bytes(raw[EVENT.field("net_off").offset:][:2], "little")
        if at + 12 < len(raw) and draw(st.booleans()):  # IPv4 ID and checksum (a no-op elsewhere)
            raw[at + 4:at + 6] = draw(st.binary(min_size=2, max_size=2))
            raw[at + 10:at + 12] = draw(st.binary(min_size=2, max_size=2))
        if len(raw) > sizes(big)[0] and draw(st.booleans()):
            put(raw, "stack_len", draw(st.integers(0, 64)))
        out.append(bytes(raw))
    return out


# -- the two paths -------------------------------------------------------------------------
class Sink:
    """One output in a temporary file: its Python way (events or raw records) and its compiled one."""

    def __init__(self, fmt: str, conv: Converter, path: str, stack: bool, snaplen: Optional[int],
                 explain: bool, reason_width: int) -> None:
        self.path, self.out, self.rec = path, None, None
        if fmt in ("json", "text"):
            self.out = Output.open(path)
            w = RawJsonWriter(self.out) if fmt == "json" else TextWriter(self.out, stack, reason_width,
                                                                           explain=explain)
        else:
            w = self.rec = Recorder(path, fmt, stack, snaplen)
            self.rec.open()
        self.python = w.write_batch
        self.fast = render.for_sink(w, conv)

    def bytes(self) -> bytes:
        (self.rec or self.out).close()
        with open(self.path, "rb") as f:
            return f.read()


def both(fmt: str, conv: Converter, pushes: List[Tuple[bytes, int]], limits: List[int], tmp: str,
         start: int = 0, stack: bool = False, snaplen: Optional[int] = None, explain: bool = False,
         reason_width: int = 9) -> Tuple[bytes, bytes]:
    """The bytes of the Python path and of the compiled one, over equal rings read in equal batches."""
    rings = [Ring(start=start), Ring(start=start)]
    for ring in rings:
        for rec, flags in pushes:
            ring.push(rec, flags)
    py = Sink(fmt, conv, os.path.join(tmp, f"py.{fmt}"), stack, snaplen, explain, reason_width)
    fast = Sink(fmt, conv, os.path.join(tmp, f"c.{fmt}"), stack, snaplen, explain, reason_width)
    assert fast.fast is not None
    mp, mc = rings[0].mmap_ring(), rings[1].mmap_ring()
    for limit in limits + [len(pushes) + 1]:
        try:
            got = py.python(batch_of(mp, conv, limit))
            failed, why = None, ""
        except Exception as e:  # e.g. struct.error: a wall clock before 1970 in pcapng
            failed, why = type(e), traceback.format_exc()
        try:
            n = fast.fast.write_batch(batch_of(mc, conv, limit))
        except Exception as e:
            assert type(e) is failed, f"only the compiled path raised {e!r}"
            break
        assert failed is None, f"only the Python path raised {why}"
        assert n == got
        assert rings[0].consumer == rings[1].consumer
    return py.bytes(), fast.bytes()


def check(fmt: str, conv: Converter, recs: List[bytes], flags: List[int], limits: List[int],
          start: int, **kw) -> None:
    import tempfile

    busy = [i for i, f in enumerate(flags) if f & BUSY]
    if busy:  # a record being written ends what can be read: nothing after it is committed yet
        recs, flags = recs[:busy[0] + 1], flags[:busy[0] + 1]
    with tempfile.TemporaryDirectory() as tmp:
        a, b = both(fmt, conv, list(zip(recs, flags)), limits, tmp, start=start, **kw)
    assert a == b


settings.register_profile("render", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ring_flags = st.lists(st.sampled_from([0, 0, 0, 0, DISCARD, BUSY]), min_size=24, max_size=24)
limits = st.lists(st.integers(1, 12), max_size=4)
starts = st.one_of(st.just(0), st.integers(0, 2**20).map(lambda n: n * 8),
                   st.integers(1, 600).map(lambda n: (1 << 17) - 8 * n))  # records wrap the ring's end


@pytest.mark.parametrize("fmt", FORMATS)
@settings(settings.get_profile("render"))
@given(recs=storms(), flags=ring_flags, limits=limits, start=starts, stack=st.booleans(),
       offset=st.sampled_from([0, 1_700_000_000 * 10**9, -10**12]), explain=st.booleans())
def test_storms_render_the_same(fmt, recs, flags, limits, start, stack, offset, explain):
    conv = converter(stack, offset_ns=offset)
    check(fmt, conv, recs, flags, limits, start, stack=stack, explain=explain and fmt == "text")


@pytest.mark.parametrize("fmt", FORMATS)
@settings(settings.get_profile("render"))
@given(recs=st.lists(records(), min_size=1, max_size=12), limits=limits, stack=st.booleans())
def test_any_records_render_the_same(fmt, recs, limits, stack):
    check(fmt, converter(stack), recs, [0] * len(recs), limits, 0, stack=stack)


@pytest.mark.parametrize("fmt", ["pcapng", "jsonl"])
@settings(settings.get_profile("render"))
@given(recs=storms(big=True), snaplen=st.one_of(st.none(), st.integers(1, SNAP_BIG + 10)),
       stack=st.booleans())
def test_recordings_with_payload_and_snaplen_render_the_same(fmt, recs, snaplen, stack):
    check(fmt, converter(stack, big=True), recs, [0] * len(recs), [], 0, stack=stack, snaplen=snaplen)


@given(recs=st.lists(records(), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_key_is_the_converters(recs):
    """C keys a record exactly as Converter._key does, so a template stands for what Python caches."""
    conv = converter()
    fast = render.json_stream(conv, lambda b: None)
    i = conv.idx
    for raw in recs:
        h = conv.header.unpack_from(raw)
        padded = raw.ljust(conv.record_size, b"\0")  # a trimmed record, as the converter reads it
        assert fast.c.key(raw) == conv._key(padded, h[i["net_off"]], h[i["cap_len"]])


# -- examples ------------------------------------------------------------------------------
def flow(sport: int = 1000, v6: bool = False, reason: int = 2, pid: int = 42, comm: bytes = b"curl",
         ts: int = 10**9, stack: Tuple[int, ...] = (), ipid: int = 1) -> bytes:
    net = ipv6(17, udp(sport, 9), src=V6_LONG) if v6 else ipv4(17, udp(sport, 9))
    if not v6:
        net = net[:4] + ipid.to_bytes(2, "big") + net[6:]
    data = eth(0x86DD if v6 else 0x0800, net)
    plain, stacked = sizes(False)
    raw = EVENT.pack(dict(ts_ns=ts, location=0xFFFFFFFF81000100, reason=reason, pid=pid, tid=pid, cpu=1,
                          len=60, mark=7, ifindex=2, netns=4026531840, protocol=0x0800, mac_off=0, net_off=14,
                          cap_len=len(data), dev_type=1, stack_len=8 * len(stack), data_off=14, flags=1,
                          comm=comm, ifname=b"eth0", data=data))
    if stack:
        at = stack_at(False)
        frames = b"".join(a.to_bytes(8, "little") for a in stack)
        raw = raw.ljust(at, b"\0") + frames.ljust(stacked - at, b"\0")
    return raw


STORM = [flow(1000 + i % 3, ts=10**9 + i * 7_000_123, pid=40 + i % 2, ipid=i) for i in range(40)]
MIXED = STORM[:5] + [flow(53, v6=True), flow(2, reason=77)] + STORM[5:9] + [flow(3, reason=5)] + STORM[9:]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("stack", [False, True])
def test_widening_columns_and_explain_and_stacks(fmt, stack, tmp_path):
    """A wider IPv6 endpoint and a longer reason mid-stream print the header again (text), the
    first drop of each reason gets its --explain line, and every format stays the same."""
    recs = [flow(1 + i % 4, v6=i == 17, reason=77 if i == 29 else 2, ts=10**9 + i * 3_000_000_001, ipid=i,
                 stack=(1, 2, 3, i % 2 + 4) if stack else ()) for i in range(40)]
    py, fast = both(fmt, converter(stack), [(r, 0) for r in recs], [1, 3, 5, 1, 2], str(tmp_path),
                    stack=stack, explain=fmt == "text")
    assert py == fast
    if fmt == "text":
        text = fast.decode()
        assert text.count("TIME ") == 3 and "    ^ NO_SOCKET:" in text
        assert ("    #0  tcp_v4_rcv+0x1a4" in text) == stack


def test_templates_are_used_and_the_ring_released(tmp_path):
    conv = converter()
    ring = Ring()
    for r in STORM:
        ring.push(r)
    out: List[bytes] = []
    fast = render.json_stream(conv, out.append)
    assert fast.write_batch(batch_of(ring)) == len(STORM)
    assert len(fast.templates) == 3  # three flows
    assert ring.consumer == ring.prod
    assert b"".join(out) == b"\n".join(conv.json_lines(STORM)) + b"\n"


def test_time_zones_with_half_hours(monkeypatch, tmp_path):
    """The per-second prefix and the UTC offset come from Python (iso_parts, clock_second)."""
    monkeypatch.setenv("TZ", "America/St_Johns")
    time.tzset()
    try:
        for fmt in FORMATS:
            py, fast = both(fmt, converter(), [(r, 0) for r in STORM], [7], str(tmp_path))
            assert py == fast
        assert b"-03:30" in py or b"-02:30" in py
    finally:
        monkeypatch.undo()
        time.tzset()


def test_discard_and_busy_records(tmp_path):
    ring = Ring(start=(1 << 17) - 800)  # the third record wraps the end of the ring
    for i, flags in enumerate([0, DISCARD, 0, DISCARD, 0, BUSY, 0]):
        ring.push(STORM[i], flags)
    out: List[bytes] = []
    fast = render.json_stream(converter(), out.append)
    assert fast.write_batch(batch_of(ring)) == 3
    assert b"".join(out) == b"\n".join(converter().json_lines([STORM[0], STORM[2], STORM[4]])) + b"\n"
    busy_at = ring.consumer
    assert fast.write_batch(batch_of(ring)) == 0 and ring.consumer == busy_at  # stops at BUSY


def test_a_record_of_another_size_is_refused(tmp_path):
    """What Converter.check says of a stale install, for every record (Python checks each batch's first)."""
    ring = Ring()
    ring.push(STORM[0])
    ring.push(STORM[1] + bytes(8))  # a trimmed record is any size from the packet's start to the whole
    fast = render.json_stream(converter(), lambda b: None)
    with pytest.raises(DroptraceError, match="reinstall droptrace"):
        fast.write_batch(batch_of(ring))
    assert ring.consumer == 0  # the batch stays in the ring


def test_an_error_in_python_leaves_the_batch_in_the_ring():
    conv = converter()
    ring = Ring()
    for r in STORM[:3]:
        ring.push(r)
    fast = render.json_stream(conv, lambda b: None)

    def boom(raw, key):
        raise RuntimeError("boom")
    fast.c = render.compiled().Renderer(**{**_kwargs(fast), "miss": boom})
    with pytest.raises(RuntimeError, match="boom"):
        fast.write_batch(batch_of(ring))
    assert ring.consumer == 0


def _kwargs(fast: render.FastRenderer) -> Dict:
    conv = fast.conv
    ev = conv.event

    def field(n):
        return ev.field(n).offset, ev.field(n).size
    return dict(sizes=fast.sizes, data_at=conv.data_at, snap_area=conv.snap_area, ts=field("ts_ns"),
                len=field("len"), data_off=field("data_off"), cap_len=field("cap_len"),
                net_off=field("net_off"), stack_len=field("stack_len"), comm=field("comm"),
                stack=(conv.stack_at, conv.stack_bytes), keyed=tuple(conv.keyed), offset_ns=0, templates={},
                miss=lambda r, k: b"", iso=None, clock=None, comm_cbs=(), stack_cbs=())


OP = render.compiled()


@pytest.mark.parametrize("items,why", [
    ([(99,)], "unknown op"), ([(OP.OP_OPT_END,)], "without its begin"),
    ([(OP.OP_BLOCK_BEGIN, 6)], "not closed"), ([(OP.OP_UINT, 10**6, 4)], "bad field"),
    ([(OP.OP_COMM, 0)], "no such comm slot"), ([(OP.OP_ISO,)], "no iso"),
    ([(OP.OP_DATA, 10**6)], "bad data length"), (["text"], "bytes or"),
] if OP else [])
def test_templates_are_checked_against_the_layout(items, why):
    r = OP.Renderer(**_kwargs(render.json_stream(converter(), lambda b: None)))
    with pytest.raises((ValueError, TypeError), match=why):
        r.template(items)


def test_what_c_cannot_write_is_handed_back_to_python():
    """An option over 65535 bytes (struct.pack("<H") refuses it in Python): C rolls the record back
    and asks Python for it, without a key (nothing is cached)."""
    asked: List[Optional[bytes]] = []
    kw = _kwargs(render.json_stream(converter(), lambda b: None))
    kw["miss"] = lambda raw, key: asked.append(key) or b"<python>"
    r = OP.Renderer(**kw)
    huge = r.template([b"A", (OP.OP_OPT_BEGIN, 1), b"x" * 70000, (OP.OP_OPT_END,), b"B"])
    fits = r.template([b"A", (OP.OP_OPT_BEGIN, 1), b"xyz", (OP.OP_OPT_END,), b"B"])
    kw["templates"][r.key(STORM[0])] = huge
    kw["templates"][r.key(STORM[1])] = fits
    ring = Ring()
    ring.push(STORM[0])
    ring.push(STORM[1])
    out, n = ring.mmap_ring().render(r.render_ring, 10)
    assert (out, n) == (b"<python>" + b"A\x01\x00\x03\x00xyz\x00B", 2)
    assert asked == [None]


def test_layout_outside_the_record_is_refused():
    kw = _kwargs(render.json_stream(converter(), lambda b: None))
    with pytest.raises(ValueError, match="outside the record"):
        render.compiled().Renderer(**{**kw, "ts": (kw["sizes"][0], 8)})


def test_status_says_how_output_is_rendered(monkeypatch):
    assert render.status().startswith("compiled")
    monkeypatch.setenv(render.PURE_ENV, "1")
    assert render.compiled() is None and "switched off" in render.status()
    assert render.json_stream(converter(), lambda b: None) is None


# -- the whole loop, with and without the extension ------------------------------------------
class SyntheticTracer:
    """What trace_loop uses of a Tracer, over a synthetic ring: no BPF is loaded."""

    def __init__(self, conv: Converter, ring: Ring) -> None:
        from droptrace.options import Options

        self.opts, self.hook, self.fallbacks, self.limits, self.has_reason = Options(), None, [], [], True
        self.converter, self._ring, self._rb = conv, ring, None

    def start(self) -> None:
        self.hook, self._rb = "synthetic", self._ring.mmap_ring()

    def batch(self, timeout_ms: int = 0, limit: int = 4096) -> Batch:
        return batch_of(self._rb, self.converter, limit)

    def detach(self) -> None:
        pass

    def counters(self) -> Tuple[int, int]:
        return 0, 0

    def close(self) -> None:
        pass


def run_loop(fmt: str, stack: bool, tmp: str, count: Optional[int], name: str) -> Tuple[bytes, bool]:
    """(what trace_loop wrote, whether the compiled path was taken)."""
    from droptrace.commands.common import trace_loop

    conv = converter(stack)
    ring = Ring(size=1 << 20)
    rng = random.Random(7)
    for i in range(600):
        ring.push(STORM[i % len(STORM)] if rng.random() < 0.9 else MIXED[rng.randrange(len(MIXED))])
    tracer = SyntheticTracer(conv, ring)
    path = os.path.join(tmp, name)
    taken = []
    make = render.for_sink
    render.for_sink = lambda sink, c: taken.append(make(sink, c)) or taken[-1]  # type: ignore[assignment]
    try:
        if fmt in ("json", "text"):
            out = Output.open(path)
            sink = RawJsonWriter(out) if fmt == "json" else TextWriter(out, stack, 9)
            trace_loop(tracer, sink, count, None if count else 0.2)
            out.close()
        else:
            rec = Recorder(path, fmt, stack, None)
            shown, _ = trace_loop(tracer, rec, count, None if count else 0.2, on_attached=rec.open)
            assert shown == (count or 600)
            rec.close()
    finally:
        render.for_sink = make  # type: ignore[assignment]
    with open(path, "rb") as f:
        return f.read(), bool(taken and taken[0] is not None)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("count", [None, 417])
def test_trace_loop_writes_the_same_without_the_extension(fmt, count, tmp_path, monkeypatch):
    """The pure-Python fallback (the extension's import fails) writes what the compiled path writes."""
    fast, used = run_loop(fmt, True, str(tmp_path), count, "fast")
    assert used
    import droptrace

    monkeypatch.setitem(sys.modules, "droptrace._render", None)  # as if it had never been built
    monkeypatch.delattr(droptrace, "_render")
    try:
        importlib.reload(render)
        assert render.compiled() is None and "not built" in render.status()
        pure, used = run_loop(fmt, True, str(tmp_path), count, "pure")
        assert not used
    finally:
        monkeypatch.undo()
        importlib.reload(render)
    assert pure == fast and len(pure) > 0
