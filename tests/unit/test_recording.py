"""Reading recordings: any bytes give events or one clear error; streams, classic pcap, torn ends."""
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droptrace.errors import DroptraceError
from droptrace.formats import pcapng
from droptrace.formats.recording import Recording

from .test_decode import eth, ipv4, udp

PCAPNG_HEAD = pcapng.section_header("test")
PCAP_HEAD = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def read_all(path):
    rec = Recording(str(path))
    return list(rec), rec


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=600),
                 st.binary(max_size=400).map(lambda b: PCAPNG_HEAD + b),
                 st.binary(max_size=400).map(lambda b: b"{" + b),
                 st.binary(max_size=400).map(lambda b: PCAP_HEAD + b)))
def test_any_bytes_give_events_or_one_clear_error(tmp_path, data):
    path = tmp_path / "any.bin"
    path.write_bytes(data)
    try:
        read_all(path)
    except DroptraceError as e:
        assert "\n" not in str(e)


def test_a_classic_pcap_is_read_as_packets(tmp_path):
    frame = eth(0x0800, ipv4(17, udp(1234, 53)))
    header = PCAP_HEAD
    record = struct.pack("<IIII", 1_700_000_000, 250_000, len(frame), len(frame)) + frame
    path = tmp_path / "plain.pcap"
    path.write_bytes(header + record + record[:10])  # and a torn last record
    events, rec = read_all(path)
    assert [(e.l4, e.dport, e.reason) for e in events] == [("udp", 53, None)]
    assert events[0].ts_ns == 1_700_000_000_250_000_000
    assert any("not written by droptrace" in w for w in rec.warnings)
    assert any("ends inside a block" in w for w in rec.warnings)


def test_a_stream_is_read_in_one_pass(tmp_path):
    import os

    r, w = os.pipe()
    os.write(w, b'{"time":"2026-11-25T10:32:47.173830+00:00","reason":"NO_SOCKET","location":"x"}\n')
    os.close(w)
    events, _ = read_all(f"/proc/self/fd/{r}")
    os.close(r)
    assert [e.reason for e in events] == ["NO_SOCKET"]
    assert events[0].ts_ns == 1795602767_173830_000  # exact: no float rounding


def test_jsonl_bad_and_torn_lines(tmp_path):
    good = b'{"time":"2026-11-25T10:32:47.173830+00:00","reason":"A"}\n'
    path = tmp_path / "r.jsonl"
    summary = b'{"droptrace_summary":{"written":2,"lost":1}}\n'
    path.write_bytes(good + b"nope\n" + good + summary + b'{"time":')
    events, rec = read_all(path)
    assert [e.reason for e in events] == ["A", "A"]
    assert rec.summary == {"written": 2, "lost": 1}
    assert rec.warnings == [f"{path}: line 2: invalid JSON, skipped",
                            f"{path}: line 5 is cut short (a killed run or a full disk?); read up to the "
                            "last whole line"]


def test_classic_pcap_is_written_cooked_and_read_back(tmp_path):
    """-w x.pcap: one link type (Linux cooked v2) for frames and bare IP packets alike; what a
    reader gets back is the packets, their interface index and exact times; tshark reads it."""
    import shutil
    import subprocess

    from droptrace.event import Event
    from droptrace.formats import pcap
    from droptrace.formats.out import Output
    from droptrace.formats.recording import format_for

    from .test_decode import ipv6

    def ev(packet, ethernet, ts, **kw):
        base = dict(time="x", reason="NO_SOCKET", reason_code=3, location="udp_rcv+0x1", l3=None, l4=None,
                    saddr=None, daddr=None, sport=None, dport=None, tcp_flags=None, icmp_type=None,
                    icmp_code=None, len=len(packet), mark=None, ifindex=7, ifname="eth0", netns=1, cpu=0,
                    pid=1, tid=1, comm="x", ts_ns=ts)
        base.update(kw)
        e = Event(**base)
        e.packet, e.link_ethernet, e.wire_len = packet, ethernet, len(packet)
        return e

    frame = eth(0x0800, ipv4(17, udp(1234, 53)))
    bare = ipv6(17, udp(5353, 7003))
    events = [ev(frame, True, 1_700_000_000_123_456_789), ev(bare, False, 1_700_000_001_000_000_001),
              ev(b"", False, 1_700_000_002_000_000_000, l3="arp")]
    path = tmp_path / "out.pcap"
    assert format_for(str(path), None) == "pcap"
    assert format_for(str(tmp_path / "x.pcapng"), None) == "pcapng"
    with Output.open(str(path)) as out:
        w = pcap.Writer(out)
        w.write(events)
    assert w.skipped == 1
    back, _ = read_all(path)
    assert [(e.l3, e.l4, e.dport, e.ifindex, e.ts_ns) for e in back] == [
        ("ipv4", "udp", 53, 7, 1_700_000_000_123_456_789),
        ("ipv6", "udp", 7003, 7, 1_700_000_001_000_000_001)]
    assert back[0].packet == frame[14:] and back[1].packet == bare
    if shutil.which("tshark"):
        fields = ["-T", "fields", "-e", "udp.dstport", "-e", "sll.ifindex"]
        r = subprocess.run(["tshark", "-r", str(path), *fields], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.split() == ["53", "7", "7003", "7"], r.stdout + r.stderr
