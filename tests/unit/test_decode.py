"""The packet decoder on hand-built packets, and on anything at all (hypothesis)."""
import ipaddress
import socket
import struct

from hypothesis import given
from hypothesis import strategies as st

from droptrace.packet.decode import UNSET, Packet, decode, tcp_flags

MAC_A, MAC_B = bytes.fromhex("02d700000001"), bytes.fromhex("02d700000002")


def eth(ethertype: int, payload: bytes, vlans=()) -> bytes:
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    return MAC_B + MAC_A + tags + struct.pack("!H", ethertype) + payload


def ipv4(proto: int, payload: bytes, src="10.0.0.1", dst="10.0.0.2", options=b"", frag=0) -> bytes:
    ihl = 5 + len(options) // 4
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload), 1, frag,
                       64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + options + payload


def ipv6(nxt: int, payload: bytes, src="2001:db8::1", dst="2001:db8::2") -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nxt, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def tcp(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 1024, 0, 0)


def udp(sport: int, dport: int, payload=b"x") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def test_ethernet_ipv4_tcp_syn():
    frame = eth(0x0800, ipv4(6, tcp(51234, 8080, 0x02)))
    p = decode(frame, mac_off=0, net_off=14, protocol=0x0800)
    assert p == Packet("ipv4", "tcp", "10.0.0.1", "10.0.0.2", 51234, 8080, "S", None, None)


def test_tcp_flag_letters():
    assert tcp_flags(0x12) == "SA"
    assert tcp_flags(0x04) == "R"
    assert tcp_flags(0x11) == "FA"
    assert tcp_flags(0x18) == "PA"
    assert tcp_flags(0) == ""


def test_ipv4_options_are_skipped():
    pkt = ipv4(17, udp(53, 4000), options=b"\x01\x01\x01\x00")
    p = decode(eth(0x0800, pkt), mac_off=0, net_off=UNSET, protocol=0x0800)
    assert (p.l4, p.sport, p.dport) == ("udp", 53, 4000)


def test_ipv4_later_fragment_has_no_ports():
    p = decode(eth(0x0800, ipv4(17, udp(1, 2), frag=0x0010)), 0, 14, 0x0800)
    assert p.l4 == "udp" and p.sport is None and p.dport is None


def test_vlan_and_qinq_are_walked_when_the_network_offset_is_unset():
    for vlans in ([(0x8100, 7)], [(0x88A8, 100), (0x8100, 7)]):
        frame = eth(0x0800, ipv4(17, udp(1000, 2000)), vlans=vlans)
        p = decode(frame, mac_off=0, net_off=UNSET, protocol=0x8100)
        assert (p.l3, p.saddr, p.sport, p.dport) == ("ipv4", "10.0.0.1", 1000, 2000)


def test_ipv6_extension_headers_are_skipped():
    udp_part = udp(5353, 9)
    dstopts = struct.pack("!BB6x", 17, 0)            # next: UDP, 8 bytes
    hbh = struct.pack("!BB6x", 60, 0)                # next: destination options
    p = decode(eth(0x86DD, ipv6(0, hbh + dstopts + udp_part)), 0, 14, 0x86DD)
    assert (p.l3, p.l4, p.saddr, p.daddr, p.sport, p.dport) == (
        "ipv6", "udp", "2001:db8::1", "2001:db8::2", 5353, 9)


def test_ipv6_non_first_fragment_has_no_ports():
    frag = struct.pack("!BBHI", 17, 0, 0x0008 << 3, 1)
    p = decode(eth(0x86DD, ipv6(44, frag + udp(1, 2))), 0, 14, 0x86DD)
    assert p.l4 == "udp" and p.dport is None


def test_icmp_and_icmpv6_type_and_code():
    p = decode(eth(0x0800, ipv4(1, bytes([3, 3, 0, 0]))), 0, 14, 0x0800)
    assert (p.l4, p.icmp_type, p.icmp_code) == ("icmp", 3, 3)
    p = decode(eth(0x86DD, ipv6(58, bytes([135, 0, 0, 0]))), 0, 14, 0x86DD)
    assert (p.l4, p.icmp_type, p.icmp_code) == ("icmpv6", 135, 0)


def test_sctp_ports_and_unknown_protocol_number():
    p = decode(eth(0x0800, ipv4(132, struct.pack("!HHI", 7, 9, 0))), 0, 14, 0x0800)
    assert (p.l4, p.sport, p.dport) == ("sctp", 7, 9)
    p = decode(eth(0x0800, ipv4(253, b"abc")), 0, 14, 0x0800)
    assert p.l4 == 253 and p.sport is None


def test_arp_sender_and_target():
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, socket.inet_aton("10.0.0.1"),
                      b"\0" * 6, socket.inet_aton("10.0.0.9"))
    p = decode(eth(0x0806, arp), 0, 14, 0x0806)
    assert (p.l3, p.saddr, p.daddr, p.l4) == ("arp", "10.0.0.1", "10.0.0.9", None)


def test_unknown_ethertype_is_named_by_number():
    p = decode(eth(0x88B5, b"payload"), 0, 14, 0x88B5)
    assert p.l3 == "0x88b5" and p.l4 is None


def test_raw_ip_without_mac_header():
    p = decode(ipv4(17, udp(1, 2)), mac_off=UNSET, net_off=0, protocol=0x0800, dev_type=0xFFFF)
    assert (p.l3, p.sport, p.dport) == ("ipv4", 1, 2)
    # no offsets at all, no protocol: the version nibble decides
    p = decode(ipv6(17, udp(3, 4)), mac_off=UNSET, net_off=UNSET, protocol=0)
    assert (p.l3, p.sport, p.dport) == ("ipv6", 3, 4)


def test_truncated_headers_give_fewer_fields():
    full = eth(0x0800, ipv4(6, tcp(1, 2, 2)))
    assert decode(full[:24], 0, 14, 0x0800) == Packet(l3="ipv4")
    p = decode(full[:36], 0, 14, 0x0800)  # IP header, no TCP
    assert p.saddr == "10.0.0.1" and p.sport is None
    assert decode(b"", 0, 14, 0x0800).saddr is None


@given(st.binary(max_size=300), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
       st.integers(0, 0xFFFF), st.sampled_from([1, 772, 0xFFFF, 65534]))
def test_decode_never_raises(data, mac_off, net_off, protocol, dev_type):
    p = decode(data, mac_off, net_off, protocol, dev_type)
    assert isinstance(p, Packet)


@given(st.ip_addresses(v=4), st.ip_addresses(v=4), st.integers(0, 65535), st.integers(0, 65535),
       st.integers(0, 255), st.booleans())
def test_ipv4_round_trip(src, dst, sport, dport, flags, is_tcp):
    l4 = tcp(sport, dport, flags) if is_tcp else udp(sport, dport)
    p = decode(eth(0x0800, ipv4(6 if is_tcp else 17, l4, str(src), str(dst))), 0, 14, 0x0800)
    assert (p.saddr, p.daddr, p.sport, p.dport) == (str(src), str(dst), sport, dport)
    assert p.tcp_flags == (tcp_flags(flags) if is_tcp else None)


@given(st.ip_addresses(v=6), st.ip_addresses(v=6), st.integers(0, 65535), st.integers(0, 65535))
def test_ipv6_round_trip(src, dst, sport, dport):
    p = decode(eth(0x86DD, ipv6(17, udp(sport, dport), str(src), str(dst))), 0, 14, 0x86DD)
    # inet_ntop spells v4-mapped addresses its own (valid) way: compare as addresses
    assert (ipaddress.ip_address(p.saddr), ipaddress.ip_address(p.daddr)) == (src, dst)
    assert (p.sport, p.dport) == (sport, dport)


def test_ipv6_past_many_extension_headers():
    """The kernel walks up to 12 extension headers (any number before 2026): ports are decoded
    behind as many as the capture holds, and where the bytes end the line shows that header."""
    for n in (1, 8, 9, 12, 20):
        chain = b"".join(struct.pack("!BB6x", 60 if i < n - 1 else 17, 0) for i in range(n))
        p = decode(eth(0x86DD, ipv6(60, chain + udp(5353, 7003))), 0, 14, 0x86DD)
        assert (p.l4, p.sport, p.dport) == ("udp", 5353, 7003), n
    cut = eth(0x86DD, ipv6(60, b"".join(struct.pack("!BB6x", 60, 0) for _ in range(40))))[:14 + 40 + 200]
    assert decode(cut, 0, 14, 0x86DD).l4 == 60 and decode(cut, 0, 14, 0x86DD).dport is None
