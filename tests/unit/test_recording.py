"""Reading recordings: any bytes give events or one clear error; streams, classic pcap, torn ends."""
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droptrace.errors import DroptraceError
from droptrace.event import iso_time
from droptrace.formats import pcapng
from droptrace.formats.out import Output
from droptrace.formats.recording import Recording
from droptrace.packet.synth import headers

from .test_decode import eth, ipv4, udp
from .test_synth import ev
from .test_synth import events as field_events

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


# -- what a pcapng block's `droptrace:` comment leaves to the block ---------------------------------
@st.composite
def recorded_events(draw):
    """Events as a recording holds them: the packet's fields from its bytes (raw IP or in a
    frame), sometimes cut short by --snaplen after decoding, or fields that are not the bytes'."""
    e = draw(field_events())
    packet = headers(e)
    ethernet = draw(st.booleans())
    if ethernet:
        packet = b"\x02" * 6 + b"\x04" * 6 + (b"\x08\x00" if e.l3 == "ipv4" else b"\x86\xdd") + packet
    cut = draw(st.sampled_from([None, None, 14, 20, 30, 41]))
    if cut is not None:
        packet = packet[:cut]  # the fields stay as decoded before the cut
    if draw(st.booleans()):
        e.sport = 7 if e.sport != 7 else 8  # a field the bytes do not say
    e.ifname = draw(st.sampled_from([None, "eth0", "veth-a b"]))
    e.ifindex = draw(st.sampled_from([None, 3]))
    # The human comment's fields, as the kernel gives them and as other files may hold them.
    e.reason = draw(st.sampled_from([None, "NO_SOCKET", "drop", "two words"]))
    e.location = draw(st.sampled_from([None, "udp_rcv+0x1", "?", "a b"]))
    e.netns = draw(st.sampled_from([None, 0, 4026531840, "4026531840"]))
    e.cpu, e.pid, e.tid = (draw(st.sampled_from([None, 0, 1, 2**32 - 1])) for _ in range(3))
    e.comm = draw(st.one_of(st.sampled_from([None, "", "nc", "x (task on CPU 1)", "a\n  #0 f+0x1",
                                             "b; pid 3 comm y", "-", "ümlaut"]), st.text(max_size=16)))
    e.stack = draw(st.sampled_from([None, [], ["f+0x1", "g+0x2 [mod]"], ["x (task on CPU 2)"]]))
    e.packet, e.link_ethernet, e.wire_len = packet, ethernet, 60
    e.ts_ns = draw(st.sampled_from([1_765_000_000_000_001_000, 1_765_000_000_000_001_999]))
    # the EPB's time, or one it does not say (another recording's)
    e.time = draw(st.sampled_from([iso_time(e.ts_ns // 1000 * 1000), "2026-12-06T10:00:00.000001+00:00"]))
    return e


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(recorded_events(), min_size=1, max_size=4))
def test_pcapng_gives_back_every_field_it_leaves_to_the_block(tmp_path, evs):
    path = tmp_path / "r.pcapng"
    with Output.open(str(path)) as out:
        pcapng.Writer(out).write(evs)
    got, _ = read_all(path)
    want = [e.to_dict() for e in evs]
    for e, d in zip(evs, want):
        if e.ifname is None:  # no name: the IDB's is made up, and the comment says null
            assert d["ifname"] is None
    assert [g.to_dict() for g in got] == want
    assert [g.packet for g in got] == [pcapng.stored(e) for e in evs]


def test_the_machine_comment_leaves_out_what_the_bytes_say():
    e = ev(l3="ipv4", l4="udp", saddr="10.0.0.1", daddr="10.0.0.2", sport=5, dport=6)
    e.packet, e.ifname = headers(e), "eth0"
    d = pcapng.machine_dict(e)
    assert not {"l3", "l4", "saddr", "daddr", "sport", "dport", "ifname"} & set(d)
    e.dport = 9  # not what the bytes say: kept
    assert pcapng.machine_dict(e)["dport"] == 9


def test_the_machine_comment_leaves_out_what_the_human_comment_and_timestamp_say():
    e = ev(l3="ipv4", l4="udp", saddr="10.0.0.1", daddr="10.0.0.2", sport=5, dport=6)
    e.packet, e.ifname, e.reason, e.location, e.netns = headers(e), "eth0", "NO_SOCKET", "udp_rcv+0x1", 7
    e.pid, e.tid, e.cpu, e.comm, e.ts_ns = 42, 43, 1, "x (task on CPU 9)", 1_765_000_000_000_001_000
    e.time = iso_time(e.ts_ns)
    assert set(pcapng.machine_dict(e)) == {"reason_code", "len", "mark", "ifindex", "tid"} & set(e.to_dict())
    assert pcapng.human_fields(pcapng.human_comment(e), None)["comm"] == "x (task on CPU 9)"
    e.location = "a b"  # a location the comment cannot give back whole: kept
    assert pcapng.machine_dict(e)["location"] == "a b"


HUMANISH = r"\S+ at \S+; netns \S+; ifname \S+; pid \d+ comm .* \(task on CPU \d+\)"


@given(st.one_of(st.text(), st.from_regex(HUMANISH, fullmatch=True)),
       st.one_of(st.none(), st.lists(st.text(max_size=8), max_size=3)))
def test_any_human_comment_gives_fields_or_none(text, stack):
    """Another tool's, or an edited, comment: what it says, or nothing; never an exception."""
    got = pcapng.human_fields(text + pcapng.human_stack(stack or []), stack)
    assert got == {} or set(got) == {"reason", "location", "netns", "pid", "comm", "cpu"}
