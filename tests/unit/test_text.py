"""The text format: every line's columns start where the most recent header's titles start.

Events are built directly and written through a real Output on a temporary file,
then each line is checked cell by cell against the header printed above it:
each value starts exactly under its column title, in full (numbers and names are
never cut), and ends before the next column starts.
"""
import ipaddress
import os
import tempfile
from typing import List, Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droptrace.event import Event
from droptrace.formats.out import Output
from droptrace.formats.text import TextWriter, clock, endpoint, printable, proto

TITLES = ("TIME", "PID", "COMM", "PROTO", "REASON", "SADDR:SPORT", "DADDR:DPORT", "IFACE", "NETNS",
          "LOCATION")
V6_MAX = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"


def ev(**kw) -> Event:
    base = dict(time="2024-01-01T00:00:00.000000Z", reason="NO_SOCKET", reason_code=3,
                location="tcp_v4_rcv+0x1a2", l3="ipv4", l4="tcp", saddr="10.0.0.1", daddr="10.0.0.2",
                sport=1234, dport=80, tcp_flags="S", icmp_type=None, icmp_code=None, len=60, mark=None,
                ifindex=2, ifname="eth0", netns=4026531840, cpu=0, pid=42, tid=42, comm="curl",
                ts_ns=1_700_000_000_123_456_789)
    base.update(kw)
    return Event(**base)


def cells(e: Event) -> List[str]:
    """What each column of the line shows for e, in TITLES order."""
    iface = printable(e.ifname) if e.ifname else (str(e.ifindex) if e.ifindex else "-")
    missing = "-"  # another tool's capture: no task, reason or location
    return [clock(e.ts_ns), missing if e.pid is None else str(e.pid),
            printable(missing if e.comm is None else e.comm), proto(e),
            e.reason if e.reason is not None else missing, endpoint(e.saddr, e.sport),
            endpoint(e.daddr, e.dport), iface, str(e.netns or missing),
            missing if e.location is None else e.location]


def written(batches: Sequence[Sequence[Event]], **kw) -> str:
    with tempfile.TemporaryFile() as f:
        writer = TextWriter(Output(f.fileno(), "test"), **kw)
        for batch in batches:
            writer.write(list(batch))
        f.seek(0)
        return f.read().decode("utf-8")


def check_aligned(text: str, events: Sequence[Event]) -> List[str]:
    """Asserts every event's line aligns with the header above it; returns the headers seen."""
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    headers, header, data = [], None, iter(events)
    for line in lines:
        if line.startswith("TIME"):
            header = line
            headers.append(line)
            continue
        assert header is not None, f"a line before any header: {line!r}"
        e = next(data)
        starts = [header.index(t) for t in TITLES]
        assert starts == sorted(starts), header
        want = cells(e)
        for i, (title, start, value) in enumerate(zip(TITLES, starts, want)):
            assert line[start:start + len(value)] == value, (
                f"{title} {value!r} is not at column {start}, under its title:\n{header}\n{line}")
            if start:
                assert line[start - 1] == " ", f"{title} is not separated:\n{header}\n{line}"
            if i + 1 < len(starts):
                assert start + len(value) < starts[i + 1], (
                    f"{title} {value!r} runs into {TITLES[i + 1]}:\n{header}\n{line}")
    assert next(data, None) is None, "fewer lines than events"
    return headers


# -- examples ----------------------------------------------------------------------------
WIDE = [
    ev(),
    ev(comm="x" * 15, pid=4194304, tid=4194304, ifname="y" * 15, netns=4294967295,
       reason="BRIDGE_INGRESS_STP_STATE", location="br_handle_frame_finish+0x2f0"),
    ev(l3="ipv6", l4="udp", saddr=V6_MAX, daddr=V6_MAX, sport=65535, dport=65535, comm="Isolated Web Co"),
    ev(l3="ipv4", l4="icmp", saddr="255.255.255.255", daddr="255.255.255.255", sport=None, dport=None,
       icmp_type=3, icmp_code=1, tcp_flags=None, ifname=None, ifindex=4294967295, netns=None),
    ev(l3="arp", l4=None, saddr=None, daddr=None, sport=None, dport=None, tcp_flags=None, ifname=None,
       ifindex=None, reason=None, pid=0, comm="swapper/0", len=None),
    ev(l3="0x88b5", l4=None, saddr=None, daddr=None, sport=None, dport=None, reason="UNKNOWN_4242"),
    ev(l3="ipv6", l4=132, saddr="::1", daddr="fe80::1", sport=1, dport=2, mark=0xFFFFFFFF),
    # a packet of another tool's capture: no task, reason, location, interface or namespace
    ev(reason=None, reason_code=None, location=None, pid=None, tid=None, comm=None, cpu=None,
       ifindex=None, ifname=None, netns=None, l4="udp", tcp_flags=None, sport=1234, dport=7003),
]


def test_wide_values_align_in_one_batch():
    text = written([WIDE])
    headers = check_aligned(text, WIDE)
    assert len(headers) == 1  # the first header is sized for the whole first batch


def test_wide_values_align_one_event_at_a_time():
    text = written([[e] for e in WIDE])
    headers = check_aligned(text, WIDE)
    assert 1 < len(headers) <= len(WIDE)  # widened for the long reason, then for IPv6 endpoints


def test_header_repeats_only_when_a_column_grows():
    events = [ev()] * 5 + [ev(saddr=V6_MAX, l3="ipv6", sport=65535)] + [ev()] * 5
    text = written([[e] for e in events])
    headers = check_aligned(text, events)
    assert len(headers) == 2
    lines = text.splitlines()
    assert lines[0] == headers[0] and lines[6] == headers[1]


def test_reason_width_from_kernel():
    """A reason column as wide as the kernel's longest name: no new header for long names."""
    events = [ev(), ev(reason="BRIDGE_INGRESS_STP_STATE")]
    text = written([[e] for e in events], reason_width=lambda: len("BRIDGE_INGRESS_STP_STATE"))
    assert len(check_aligned(text, events)) == 1


def test_numbers_and_names_whole():
    e = WIDE[1]
    line = written([[e]]).splitlines()[1]
    for value in ("x" * 15, "4194304", "y" * 15, "4294967295", "BRIDGE_INGRESS_STP_STATE",
                  "br_handle_frame_finish+0x2f0"):
        assert value in line.split()


def test_ipv6_endpoints_whole():
    e = WIDE[2]
    line = written([[e]]).splitlines()[1]
    assert f"[{V6_MAX}]:65535" in line.split()


def test_stack_lines():
    e = ev(stack=["kfree_skb_reason+0x0", "tcp_v4_rcv+0x1a2"])
    lines = written([[e, ev()]], stack=True).splitlines()
    assert lines[2:4] == ["    #0  kfree_skb_reason+0x0", "    #1  tcp_v4_rcv+0x1a2"]
    check_aligned("\n".join(lines[:2] + lines[4:]) + "\n", [e, ev()])


def test_control_characters_in_names_stay_on_their_line():
    """comm is whatever a process set (prctl PR_SET_NAME): a newline, tab or escape in it must not
    break the line, shift the columns or reach the terminal."""
    events = [ev(comm="a\nb\tc\x1b[2Jd\x7f\x9b"), ev(ifname="e\x1b]0;x\x07"), ev()]
    text = written([events])
    lines = text.splitlines()
    assert len(lines) == 1 + len(events)
    assert not any(c in text for c in "\t\x1b\x07\x7f\x9b")
    header = lines[0]
    start = header.index("COMM")
    assert lines[1][start:start + 15] == "a?b?c?[2Jd??".ljust(15)
    check_aligned(text.replace("a?b?c?[2Jd??", "x" * 12).replace("e?]0;x?", "y" * 7),
                  [ev(comm="x" * 12), ev(ifname="y" * 7), ev()])


# -- property ----------------------------------------------------------------------------
def kernel_name(max_bytes: int, forbidden: str = ""):
    """Names of at most max_bytes UTF-8 bytes (comm: 15, device names: 15): mostly printable,
    sometimes with control characters (shown as "?")."""
    printable_chars = st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters=forbidden)
    control = st.characters(categories=["Cc", "Cf", "Zl", "Zp"], exclude_characters=forbidden + "\0")
    chars = st.one_of(printable_chars, printable_chars, printable_chars, control)
    return st.text(chars, min_size=1, max_size=max_bytes).map(lambda s: fit(s, max_bytes))


def fit(name: str, max_bytes: int) -> str:
    """name cut (at a character) to what the kernel's buffer holds."""
    while len(name.encode()) > max_bytes:
        name = name[:-1]
    return name


ipv4 = st.integers(0, 2 ** 32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6 = st.one_of(st.integers(0, 2 ** 128 - 1), st.sampled_from([0, 1, 2 ** 128 - 1])).map(
    lambda n: str(ipaddress.IPv6Address(n)))
ports = st.one_of(st.none(), st.integers(0, 65535))
reasons = st.one_of(st.none(), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=40))
symbols = st.builds("{}+0x{:x}".format, st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1,
                                                  max_size=40), st.integers(0, 0xFFFF))


@st.composite
def events(draw):
    v6 = draw(st.booleans())
    has_addr = draw(st.booleans())
    addr = ipv6 if v6 else ipv4
    ifname = draw(st.one_of(st.none(), kernel_name(15, "/: \t\n\v\f\r\u00a0")))
    return ev(l3="ipv6" if v6 else "ipv4",
              l4=draw(st.sampled_from(["tcp", "udp", "icmp", "icmpv6", 132, None])),
              saddr=draw(addr) if has_addr else None, daddr=draw(addr) if has_addr else None,
              sport=draw(ports), dport=draw(ports), reason=draw(reasons),
              location=draw(symbols),
              comm=draw(kernel_name(15)), pid=draw(st.integers(0, 4194304)),
              ifname=ifname, ifindex=draw(st.integers(0, 2 ** 31 - 1)),
              netns=draw(st.one_of(st.none(), st.integers(1, 2 ** 32 - 1))),
              len=draw(st.one_of(st.none(), st.integers(0, 65535))),
              mark=draw(st.one_of(st.none(), st.integers(0, 2 ** 32 - 1))),
              ts_ns=draw(st.integers(0, 2 ** 63 - 1)))


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(events(), min_size=0, max_size=4), min_size=1, max_size=4),
       st.one_of(st.none(), st.integers(0, 40)))
def test_every_line_aligns_with_its_header(batches, reason_width):
    kw = {} if reason_width is None else {"reason_width": (lambda: reason_width)}
    text = written(batches, **kw)
    check_aligned(text, [e for b in batches for e in b])  # an empty first batch: the header alone


def test_output_through_a_pipe():
    """The same bytes through a pipe (what `droptrace | less` reads)."""
    r, w = os.pipe()
    try:
        TextWriter(Output(w, "pipe")).write(WIDE[:3])
        os.close(w)
        w = -1
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    check_aligned(data.decode(), WIDE[:3])
