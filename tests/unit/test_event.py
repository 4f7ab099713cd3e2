"""Raw ring-buffer records to events, and the formats users read."""
import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from droptrace.convert import Converter
from droptrace.formats.jsonl import JsonWriter
from droptrace.formats.out import Output
from droptrace.formats.text import TextWriter, endpoint
from droptrace.kernel.contract import contract

from .test_decode import eth, ipv4, tcp

SCHEMA = ["time", "reason", "reason_code", "location", "l3", "l4", "saddr", "daddr", "sport", "dport",
          "tcp_flags", "icmp_type", "icmp_code", "len", "mark", "ifindex", "ifname", "netns", "cpu",
          "pid", "tid", "comm"]


EVENT = contract().struct("dt_event")
STACK_BYTES = contract().struct("dt_event_stack").field("stack").size
RECORD_SIZE = EVENT.size


def record(data: bytes, reason=3, flags=1, stack=()) -> bytes:
    """A ring-buffer record laid out by the BPF object's own BTF, fields by name."""
    raw = EVENT.pack(dict(ts_ns=10**9, location=0xFFFFFFFF81000100, reason=reason, pid=42, tid=43, cpu=1,
                          len=60, mark=7, ifindex=2, netns=4026531840, protocol=0x0800, mac_off=0,
                          net_off=14, cap_len=len(data), dev_type=1, stack_len=8 * len(stack),
                          data_off=14, flags=flags, comm=b"curl", ifname=b"eth0", data=data))
    if stack:
        raw += b"".join(a.to_bytes(8, "little") for a in stack).ljust(STACK_BYTES, b"\0")
    return raw


def converter(with_stack=False) -> Converter:
    names = {3: "NO_SOCKET"}
    return Converter(lambda v: names.get(v, f"UNKNOWN_{v}"),
                     lambda a: {0xFFFFFFFF81000100: "tcp_v4_rcv+0x0", 1: "bpf_prog_x+0x1 [bpf]",
                                2: "bpf_trace_run4+0xfc", 3: "tcp_v4_rcv+0x1a4"}.get(a, hex(a)),
                     0, with_stack)


def test_record_becomes_event_with_schema_keys():
    e = converter().convert(record(eth(0x0800, ipv4(6, tcp(51234, 8080, 2)))))
    d = e.to_dict()
    assert list(d) == SCHEMA
    assert (d["reason"], d["reason_code"], d["location"]) == ("NO_SOCKET", 3, "tcp_v4_rcv+0x0")
    assert (d["saddr"], d["sport"], d["daddr"], d["dport"], d["tcp_flags"]) == (
        "10.0.0.1", 51234, "10.0.0.2", 8080, "S")
    assert (d["pid"], d["tid"], d["comm"], d["ifname"], d["ifindex"], d["netns"], d["mark"]) == (
        42, 43, "curl", "eth0", 2, 4026531840, 7)
    assert d["time"].startswith("1970-01-01T") or d["time"].startswith("1969-12-31T")


def test_no_reason_on_old_kernels_is_null():
    d = converter().convert(record(b"", flags=0)).to_dict()
    assert d["reason"] is None and d["reason_code"] is None


def test_stack_is_symbolized_and_trimmed_of_tracing_frames():
    e = converter(with_stack=True).convert(record(b"", stack=[1, 2, 3]))
    assert e.stack == ["tcp_v4_rcv+0x1a4"]
    assert e.to_dict(with_stack=True)["stack"] == ["tcp_v4_rcv+0x1a4"]


def test_json_writer_writes_one_object_per_line(tmp_path):
    e = converter().convert(record(eth(0x0800, ipv4(6, tcp(1, 2, 0x14)))))
    path = tmp_path / "out.jsonl"
    with open(path, "wb") as f:
        JsonWriter(Output(f)).write([e, e])
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["tcp_flags"] == "RA"


def test_text_line_shows_the_columns(capfd):
    e = converter().convert(record(eth(0x0800, ipv4(6, tcp(51234, 8080, 2)))))
    TextWriter(Output.stdout()).write([e])
    out = capfd.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["TIME", "PID", "COMM", "PROTO", "REASON"]
    assert "10.0.0.1:51234" in out[1] and "NO_SOCKET" in out[1] and "flags=S" in out[1]


@pytest.mark.parametrize("addr,port,text", [("10.0.0.1", 80, "10.0.0.1:80"), ("::1", 53, "[::1]:53"),
                                            ("::1", None, "::1"), (None, None, "-")])
def test_endpoint(addr, port, text):
    assert endpoint(addr, port) == text


@given(st.binary(min_size=RECORD_SIZE, max_size=RECORD_SIZE + STACK_BYTES + 8))
def test_any_record_converts(raw):
    e = converter(with_stack=True).convert(raw)
    d = e.to_dict(with_stack=True)
    json.dumps(d)
    assert list(d) == SCHEMA + ["stack"]


@given(st.binary(min_size=RECORD_SIZE, max_size=RECORD_SIZE + STACK_BYTES + 8), st.booleans())
def test_fast_json_path_equals_the_event_path(raw, with_stack):
    c = converter(with_stack)
    assert c.json_line(raw) == orjson.dumps(c.convert(raw).to_dict(with_stack=with_stack))


def test_storm_cache_keeps_per_packet_differences():
    c = converter()
    a = record(eth(0x0800, ipv4(6, tcp(1000, 80, 2))))
    b = record(eth(0x0800, ipv4(6, tcp(1001, 80, 2))))
    assert [c.convert(r).sport for r in (a, b, a)] == [1000, 1001, 1000]
