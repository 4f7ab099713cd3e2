"""`droptrace trail`: where NAT or a tunnel changes a followed packet's headers (the skb stays, its
headers change), the hop shows the new ones, and the trail the ones it was first seen with."""
import os
import subprocess
import sys

import pytest

from .conftest import HAS_REASONS, SLOWDOWN, Droptrace
from .test_trail import chain, hops, inode, namespaces, sh, trail  # noqa: F401  (chain: the fixture)

pytestmark = pytest.mark.skipif(not HAS_REASONS, reason="trail is for kernels with drop reasons (5.17+)")

CLIENT, ROUTER_IN, SERVER = "10.77.1.2", "10.77.1.1", "10.77.2.2"  # the chain fixture's addresses


def send(ns, dst, port, sport=0):
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "droptrace.lab.traffic", "udp", dst,
                    str(port), "--sport", str(sport)], check=True)


def changed(t):
    """(index, hop) of each hop where the headers changed."""
    return [(i, h) for i, h in enumerate(t["hops"]) if h["headers"]]


def test_dnat_in_the_router_shows_the_rewritten_headers_where_they_changed(chain):  # noqa: F811
    """The client sends UDP to the router's port 8080; the router's prerouting DNAT sends it on to
    the server's port 9, where nothing listens: the trail was first seen with the original
    headers, shows the rewritten ones at the router's first hop after the rewrite, and ends
    dropped in the server with them."""
    c, r, s = chain
    sh("nft", "add table ip dtnat", ns=r)
    sh("nft", "add chain ip dtnat pre { type nat hook prerouting priority -100 ; }", ns=r)
    sh("nft", f"add rule ip dtnat pre udp dport 8080 dnat to {SERVER}:9", ns=r)
    t = trail([c, r, s], lambda: send(c, ROUTER_IN, 8080, 40123), "udp dst port 8080")
    original = {"l3": "ipv4", "l4": "udp", "saddr": CLIENT, "daddr": ROUTER_IN, "sport": 40123, "dport": 8080}
    rewritten = dict(original, daddr=SERVER, dport=9)
    assert t["reason"] == "NO_SOCKET" and (t["daddr"], t["dport"]) == (SERVER, 9)  # the end
    assert t["first_headers"] == original
    at = changed(t)
    assert len(at) == 1, hops(t)
    i, h = at[0]
    assert h["headers"] == rewritten
    into_router = hops(t).index(("netif_receive_skb", "dtr0", inode(r)))
    assert into_router < i and h["netns"] == inode(r), hops(t)  # in the router, after it came in
    assert all(x["netns"] == inode(c) or x["netns"] == inode(r) for x in t["hops"][:i])


@pytest.fixture
def vxlan():
    """Namespaces a and b joined by a veth pair (10.80.0.0/24, the underlay), and a VXLAN tunnel
    between them over it (10.81.0.0/24)."""
    tag = f"dtvx{os.getpid()}"
    a, b = f"{tag}a", f"{tag}b"
    with namespaces(a, b):
        sh("ip", "link", "add", "dtvxa", "type", "veth", "peer", "name", "dtvxb")
        for ns, dev, me, peer, inner in ((a, "dtvxa", "10.80.0.1", "10.80.0.2", "10.81.0.1"),
                                         (b, "dtvxb", "10.80.0.2", "10.80.0.1", "10.81.0.2")):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "addr", "add", f"{me}/24", "dev", dev, ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
            sh("ip", "link", "add", "vx0", "type", "vxlan", "id", "42", "local", me, "remote", peer,
               "dstport", "4789", "dev", dev, ns=ns)
            sh("ip", "addr", "add", f"{inner}/24", "dev", "vx0", ns=ns)
            sh("ip", "link", "set", "vx0", "up", ns=ns)
        yield a, b


def test_vxlan_shows_the_outer_headers_appear_and_go(vxlan):
    """UDP from a to b's closed port 9 through the VXLAN tunnel: first seen on the tunnel device
    with its own headers, then the outer headers (UDP to 4789 between the underlay addresses) where
    the tunnel put them in front, then its own again where b's tunnel took them off, dropped there."""
    a, b = vxlan
    t = trail([a, b], lambda: send(a, "10.81.0.2", 9, 40124), "udp dst port 9")
    inner = {"l3": "ipv4", "l4": "udp", "saddr": "10.81.0.1", "daddr": "10.81.0.2", "sport": 40124,
             "dport": 9}
    assert t["reason"] == "NO_SOCKET" and t["first_headers"] == inner
    at = changed(t)
    assert len(at) == 2, hops(t)
    (i, outer), (j, back) = at
    o = outer["headers"]
    assert (o["l4"], o["saddr"], o["daddr"], o["dport"]) == ("udp", "10.80.0.1", "10.80.0.2", 4789), o
    assert (outer["ifname"], outer["netns"]) == ("dtvxa", inode(a))  # on the underlay, in a
    assert back["headers"] == inner and back["netns"] == inode(b) and i < j
    assert t["hops"][0]["ifname"] == "vx0" and t["hops"][-1]["hook"] == "kfree_skb"


def test_text_shows_the_first_headers_and_each_change_under_its_hop(vxlan):
    a, b = vxlan
    with Droptrace("trail", "-c", "1", "-d", str(int(60 * SLOWDOWN)), "--netns", a, "udp dst port 9",
                   json_events=False) as dt:
        dt.wait_ready()
        send(a, "10.81.0.2", 9, 40125)
        assert dt.wait(90) == 0, "".join(dt.stderr)
    lines = [ln.rstrip("\n") for ln in dt.stdout if ln.strip()]
    assert lines[1] == "  first seen as udp 10.81.0.1:40125 -> 10.81.0.2:9", lines
    now = [k for k, ln in enumerate(lines) if "headers now" in ln]
    assert len(now) == 2, lines
    assert lines[now[0]].split("headers now ")[1].startswith("udp 10.80.0.1:")
    assert lines[now[0]].endswith(" -> 10.80.0.2:4789") and "dtvxa@" in lines[now[0] - 1], lines
    assert lines[now[1]].split("headers now ")[1] == "udp 10.81.0.1:40125 -> 10.81.0.2:9"
