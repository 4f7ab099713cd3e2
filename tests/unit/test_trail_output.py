"""trail's output in a storm: each trail's text or JSON comes from a template made once per shape
(the record minus its times and length). It must be, byte for byte, what the trail alone gives:
synthetic records from the object's own layouts, many sharing a shape, some not."""
from __future__ import annotations

import json
from typing import List

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droptrace.convert import Converter
from droptrace.features.trail.output import TrailWriter
from droptrace.features.trail.tracer import TrailRecords, TrailTracer, hooks
from droptrace.kernel.contract import contract

BPF = contract(TrailTracer.OBJECTS[0])
C = BPF.const
TE, EV, TR, HOP, HDR = (BPF.struct(n) for n in ("dt_trail_event", "dt_event", "dt_trail", "dt_hop",
                                                  "dt_headers"))

HEADERS = [  # Ethernet frames: UDP, TCP (SYN), ICMP echo over IPv4; UDP over IPv6
    bytes.fromhex("0242ac1100020242ac11000308004500057800004000401100000a0000010a000002c35114510564"
                  "0000"),
    bytes.fromhex("0242ac1100020242ac1100030800450000340000400040060000c0a80001c0a80002d43100500000"
                  "000100000000a002faf000000000"),
    bytes.fromhex("0242ac1100020242ac110003080045000054000040004001000008080808c0a800010800f7ff0000"
                  "0000"),
    bytes.fromhex("0242ac1100020242ac11000386dd6000000000141140fd000000000000000000000000000001fd00"
                  "0000000000000000000000000002303900350014ffff"),
]


class FakeTracer:
    def __init__(self) -> None:
        self.converter = Converter(lambda v: f"REASON_{v}", lambda a: f"func+0x{a:x}",
                                   1_700_000_000 * 10**9, layouts=BPF)
        self.records = TrailRecords(BPF, hooks(C), self.converter, lambda a: f"fn{a % 5}+0x{a:x}",
                                    {"fn0": "void", "fn1": "pointer"})


class Sink:
    def __init__(self) -> None:
        self.chunks: List[bytes] = []

    def write(self, b: bytes) -> None:
        self.chunks.append(bytes(b))

    def write_text(self, s: str) -> None:
        self.chunks.append(s.encode())


# the packet's headers as the kernel read them (struct dt_headers), any bytes: where they changed
headers = st.builds(lambda l3, l4, bits, a, b, sp, dp: HDR.pack(
    {"l3proto": l3, "l4proto": l4, "has_flow": bits, "saddr": a, "daddr": b, "sport": sp, "dport": dp},
    complete=False), st.sampled_from([0x800, 0x86DD, 0x806, 0]), st.integers(0, 255), st.integers(0, 255),
    st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16), st.integers(0, 65535),
    st.integers(0, 65535))
hop_static = st.tuples(st.integers(0, C["DT_HOOK_NUM"] - 1) |  # a tracepoint, a function (--functions),
                       st.sampled_from([C["DT_FN_HOOK"], C["DT_FN_RETURNED"], C["DT_FN_CLONE"],
                                        C["DT_HOP_HEADERS"]]),  # or a headers change
                       st.sampled_from([b"veth0", b"eth%d", b"br-lan", b""]),
                       st.sampled_from([0, 4026531840, 4026532999]), st.sampled_from([60, 1428, 65535]),
                       st.integers(0, 3), st.integers(0, 2**64 - 1), st.sampled_from([0, 0xffffffff81000123]),
                       st.sampled_from([0, -1, -18, 1, 2**40]), headers)


@st.composite
def shapes(draw):
    n = draw(st.integers(1, 2 * C["DT_TRAIL_HOPS"] + 3))
    return dict(header=draw(st.sampled_from(HEADERS)), n=n,
                hops=[draw(hop_static) for _ in range(min(n, C["DT_TRAIL_HOPS"]))],
                verdict=draw(st.sampled_from([C["DT_VERDICT_DROPPED"], C["DT_VERDICT_CONSUMED"]])),
                reason=draw(st.integers(0, 5)), location=draw(st.integers(1, 2**40)),
                first=draw(headers))


def record(shape: dict, t0: int, gaps: List[int], length: int) -> bytes:
    keep = C["DT_TRAIL_HOPS"]
    ev = EV.pack({"ts_ns": t0 + sum(gaps), "location": shape["location"], "reason": shape["reason"],
                  "len": length, "ifindex": 2, "netns": 4026531840, "protocol": 0x800,
                  "cap_len": len(shape["header"]),
                  "mac_off": 0, "net_off": 14, "data_off": 14, "ifname": b"veth0", "data": shape["header"],
                  "flags": C["DT_F_HAS_REASON"], "dev_type": 1}, complete=False)
    hops = bytearray(keep * HOP.size)
    n, t = shape["n"], t0
    for i in range(max(0, n - keep), n):
        t += gaps[i % len(gaps)]
        hook, ifname, netns, hlen, cpu, func, caller, ret, hdr = shape["hops"][i % keep]
        at = (i % keep) * HOP.size
        fields = {"ts_ns": t, "hook": hook, "len": hlen, "cpu": cpu}
        fields.update({"headers": hdr} if hook == C["DT_HOP_HEADERS"] else
                      {"ifindex": 3, "ifname": ifname, "netns": netns, "func": func, "caller": caller,
                       "ret": ret})
        hops[at:at + HOP.size] = HOP.pack(fields, complete=False)
    trail = bytearray(TR.pack({"last_ns": t, "nhops": n, "first": shape["first"]}, complete=False))
    trail[TR.offset("hops"):TR.offset("hops") + len(hops)] = hops
    rec = bytearray(TE.size)
    rec[TE.offset("ev"):TE.offset("ev") + EV.size] = ev
    rec[TE.offset("trail"):TE.offset("trail") + TR.size] = trail
    rec[TE.offset("verdict"):TE.offset("verdict") + 4] = shape["verdict"].to_bytes(4, "little")
    return bytes(rec)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(shapes(), min_size=1, max_size=3),
       trails=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**62),
                                 st.lists(st.integers(0, 10**9), min_size=1, max_size=4),
                                 st.integers(0, 70000)),
                       min_size=1, max_size=12),
       as_json=st.booleans())
def test_templates_give_what_each_trail_alone_gives(kinds, trails, as_json):
    tracer = FakeTracer()
    raws = [record(kinds[k % len(kinds)], t0, gaps, length) for k, t0, gaps, length in trails]
    sink = Sink()
    writer = TrailWriter(sink, tracer, as_json, None)  # type: ignore[arg-type]
    writer.write_raw(raws)
    writer.write_raw(raws[::-1])  # templates made by the first batch, filled by the second
    alone = [writer.json(*t) + b"\n" if as_json else writer.text(*t).encode()
             for t in map(tracer.records.trail, raws + raws[::-1])]
    assert b"".join(sink.chunks) == b"".join(alone)
    if as_json:
        for line in b"".join(alone).splitlines():
            obj = json.loads(line)
            assert obj["time"] == obj["hops"][0]["time"] and len(obj["hops"]) <= C["DT_TRAIL_HOPS"]


def test_where_the_headers_changed():
    """A DNAT on the way: the text says what the packet was first seen as, and the new headers under
    the hop where they changed; the JSON has them at that hop and the first ones in first_headers."""
    def hdr(daddr: bytes, dport: int) -> bytes:
        return HDR.pack({"l3proto": 0x800, "l4proto": 17, "has_flow": C["DT_FLOW_ADDRS"] | C["DT_FLOW_PORTS"],
                         "saddr": bytes([10, 0, 0, 1]), "daddr": daddr, "sport": 50001, "dport": dport},
                        complete=False)
    queue, receive, free = C["DT_HOOK_NET_DEV_QUEUE"], C["DT_HOOK_NETIF_RECEIVE_SKB"], C["DT_HOOK_KFREE_SKB"]
    steps = [(queue, b"c0", 1, 60, 0, 0, 0, 0, b""), (receive, b"r0", 2, 60, 0, 0, 0, 0, b""),
             (queue, b"r1", 2, 60, 0, 0, 0, 0, b""),
             (C["DT_HOP_HEADERS"], b"", 0, 60, 0, 0, 0, 0, hdr(bytes([10, 0, 0, 2]), 53)),
             (free, b"s0", 3, 60, 0, 0, 0, 0, b"")]
    shape = dict(header=HEADERS[0], n=len(steps), hops=steps, verdict=C["DT_VERDICT_DROPPED"], reason=3,
                 location=5, first=hdr(bytes([10, 0, 0, 9]), 80))
    raw = record(shape, 10**12, [1000], 44)
    tracer = FakeTracer()
    t = tracer.records.trail(raw)
    assert [h.hook for h in t.hops] == ["net_dev_queue", "netif_receive_skb", "net_dev_queue", "kfree_skb"]
    assert t.hops[2].headers == {"l3": "ipv4", "l4": "udp", "saddr": "10.0.0.1", "daddr": "10.0.0.2",
                                 "sport": 50001, "dport": 53}
    assert t.first == dict(t.hops[2].headers, daddr="10.0.0.9", dport=80)
    assert [h.headers for h in t.hops if h is not t.hops[2]] == [None] * 3
    writer = TrailWriter(Sink(), tracer, False, None)  # type: ignore[arg-type]
    lines = writer.text(*t).splitlines()
    assert lines[1] == "  first seen as udp 10.0.0.1:50001 -> 10.0.0.9:80"
    assert "net_dev_queue            r1@2" in lines[4]
    assert lines[5] == " " * 17 + "headers now udp 10.0.0.1:50001 -> 10.0.0.2:53"
    obj = json.loads(writer.json(*t))
    assert obj["first_headers"]["dport"] == 80 and obj["hops"][2]["headers"]["dport"] == 53
    assert [h["headers"] for h in obj["hops"]].count(None) == 3


def test_no_first_seen_line_where_the_headers_never_changed():
    queue, free = C["DT_HOOK_NET_DEV_QUEUE"], C["DT_HOOK_KFREE_SKB"]
    steps = [(queue, b"a", 1, 60, 0, 0, 0, 0, b""), (free, b"b", 1, 60, 0, 0, 0, 0, b"")]
    shape = dict(header=HEADERS[0], n=2, hops=steps,
                 verdict=C["DT_VERDICT_DROPPED"], reason=3, location=5,
                 first=HDR.pack({"l3proto": 0x800, "has_flow": C["DT_FLOW_ADDRS"]}, complete=False))
    tracer = FakeTracer()
    t = tracer.records.trail(record(shape, 10**12, [1000], 44))
    assert t.first == {"l3": "ipv4", "l4": 0, "saddr": "0.0.0.0", "daddr": "0.0.0.0", "sport": None,
                       "dport": None}
    text = TrailWriter(Sink(), tracer, False, None).text(*t)  # type: ignore[arg-type]
    assert "first seen" not in text and "headers now" not in text


@given(raw=st.binary(min_size=HDR.size, max_size=HDR.size))
def test_any_headers_bytes_decode_to_a_flow_or_nothing(raw):
    """Whatever the kernel left in a headers hop, decoding gives the event's six keys or None."""
    d = FakeTracer().records._headers(raw)
    assert d is None or set(d) == {"l3", "l4", "saddr", "daddr", "sport", "dport"}
    if d is not None and d["sport"] is not None:
        assert d["saddr"] is not None and 0 <= d["sport"] < 65536
