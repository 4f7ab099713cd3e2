"""Headers rebuilt from a JSON line's fields: decoding them gives back exactly those fields."""
from hypothesis import given
from hypothesis import strategies as st

from droptrace.event import Event
from droptrace.packet.decode import UNSET, decode
from droptrace.packet.synth import headers

FIELDS = ("l3", "l4", "saddr", "daddr", "sport", "dport", "tcp_flags", "icmp_type", "icmp_code")


def ev(**kw) -> Event:
    base = dict(time="x", reason="NO_SOCKET", reason_code=3, location="x", l3=None, l4=None, saddr=None,
                daddr=None, sport=None, dport=None, tcp_flags=None, icmp_type=None, icmp_code=None, len=60,
                mark=None, ifindex=None, ifname=None, netns=None, cpu=None, pid=None, tid=None, comm=None)
    base.update(kw)
    return Event(**base)


def fields_of(packet: bytes) -> dict:
    p = decode(packet, UNSET, 0, 0, 0xFFFF)
    return {k: getattr(p, k) for k in FIELDS}


v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(str)
port = st.integers(0, 65535)
flags = st.sets(st.sampled_from("FSRPAUEC")).map(lambda s: "".join(c for c in "FSRPAUEC" if c in s))


@st.composite
def events(draw):
    l3 = draw(st.sampled_from(["ipv4", "ipv6"]))
    addr = v4 if l3 == "ipv4" else v6
    l4 = draw(st.sampled_from(["tcp", "udp", "icmp" if l3 == "ipv4" else "icmpv6", "gre", 200]))
    kw = dict(l3=l3, l4=l4, saddr=draw(addr), daddr=draw(addr))
    if l4 in ("tcp", "udp"):
        kw.update(sport=draw(port), dport=draw(port))
        if l4 == "tcp":
            kw["tcp_flags"] = draw(flags)
    elif l4 in ("icmp", "icmpv6"):
        kw.update(icmp_type=draw(st.integers(0, 255)), icmp_code=draw(st.integers(0, 255)))
    return ev(**kw)


@given(events())
def test_decoding_rebuilt_headers_gives_the_fields_back(e):
    assert fields_of(headers(e)) == {k: getattr(e, k) for k in FIELDS}


def test_what_a_line_lacks_is_left_out():
    # ports unknown (a later fragment): the IP header alone, no invented ports
    got = fields_of(headers(ev(l3="ipv4", l4="udp", saddr="10.0.0.1", daddr="10.0.0.2")))
    assert got["l4"] == "udp" and got["sport"] is None and got["dport"] is None
    # TCP flags unknown: no TCP header either
    tcp = ev(l3="ipv6", l4="tcp", saddr="::1", daddr="::2", sport=1, dport=2)
    assert fields_of(headers(tcp))["dport"] is None
    for kw in (dict(l3="arp"), dict(l3="ipv4", l4="udp"),
               dict(l3="ipv4", l4="udp", saddr="::1", daddr="1.2.3.4"),
               dict(l3="ipv4", l4=None, saddr="1.1.1.1", daddr="2.2.2.2")):
        assert headers(ev(**kw)) == b"", kw


def test_ipv4_and_icmp_checksums_are_right():
    from droptrace.packet.synth import _checksum

    pkt = headers(ev(l3="ipv4", l4="icmp", saddr="10.0.0.1", daddr="10.0.0.2", icmp_type=3, icmp_code=3))
    assert _checksum(pkt[:20]) == 0 and _checksum(pkt[20:]) == 0
