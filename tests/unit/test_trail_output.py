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
TE, EV, TR, HOP = (BPF.struct(n) for n in ("dt_trail_event", "dt_event", "dt_trail", "dt_hop"))

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


hop_static = st.tuples(st.integers(0, C["DT_HOOK_NUM"] - 1) |  # a tracepoint, or a function (--functions)
                       st.sampled_from([C["DT_FN_HOOK"], C["DT_FN_RETURNED"], C["DT_FN_CLONE"]]),
                       st.sampled_from([b"veth0", b"eth%d", b"br-lan", b""]),
                       st.sampled_from([0, 4026531840, 4026532999]), st.sampled_from([60, 1428, 65535]),
                       st.integers(0, 3), st.integers(0, 2**64 - 1), st.sampled_from([0, 0xffffffff81000123]),
                       st.sampled_from([0, -1, -18, 1, 2**40]))


@st.composite
def shapes(draw):
    n = draw(st.integers(1, 2 * C["DT_TRAIL_HOPS"] + 3))
    return dict(header=draw(st.sampled_from(HEADERS)), n=n,
                hops=[draw(hop_static) for _ in range(min(n, C["DT_TRAIL_HOPS"]))],
                verdict=draw(st.sampled_from([C["DT_VERDICT_DROPPED"], C["DT_VERDICT_CONSUMED"]])),
                reason=draw(st.integers(0, 5)), location=draw(st.integers(1, 2**40)))


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
        hook, ifname, netns, hlen, cpu, func, caller, ret = shape["hops"][i % keep]
        at = (i % keep) * HOP.size
        hops[at:at + HOP.size] = HOP.pack({"ts_ns": t, "hook": hook, "ifindex": 3, "ifname": ifname,
                                           "netns": netns, "len": hlen, "cpu": cpu, "func": func,
                                           "caller": caller, "ret": ret}, complete=False)
    trail = bytearray(TR.pack({"last_ns": t, "nhops": n}, complete=False))
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
