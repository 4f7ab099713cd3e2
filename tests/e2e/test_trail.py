"""`droptrace trail`: real packets through real namespaces, their hops from tracepoints only."""
import contextlib
import json
import os
import re
import subprocess
import sys

import pytest

from droptrace.lab import A4, B4, IFNAME, SCENARIOS

from .conftest import HAS_BPF_LOOP, HAS_REASONS, SLOWDOWN, Droptrace, run

pytestmark = pytest.mark.skipif(not HAS_REASONS, reason="trail is for kernels with drop reasons (5.17+)")
WAIT = str(int(60 * SLOWDOWN))


def trail(ns_list, provoke, *extra):
    """Run `droptrace trail --json -c 1` over these namespaces; the one packet it shows."""
    args = ["trail", "--json", "-c", "1", "-d", WAIT, *extra]
    for ns in ns_list:
        args += ["--netns", ns]
    with Droptrace(*args, json_events=False) as dt:
        dt.wait_ready()
        provoke()
        assert dt.wait(90) == 0, "".join(dt.stderr)
    lines = [ln for ln in dt.stdout if ln.strip()]
    assert len(lines) == 1, (lines, dt.stderr)
    return json.loads(lines[0])


def hops(t):
    return [(h["hook"], h["ifname"], h["netns"]) for h in t["hops"]]


@pytest.mark.matrix
def test_closed_port_over_veth(lab):
    a, b = lab.inode(lab.a), lab.inode(lab.b)
    t = trail([lab.a, lab.b], lambda: lab.traffic(lab.a, "udp", B4, "9"), "udp dst port 9")
    assert t["verdict"] == "dropped" and t["reason"] == "NO_SOCKET" and "+0x" in t["location"]
    assert (t["l4"], t["saddr"], t["daddr"], t["dport"]) == ("udp", A4, B4, 9)
    h = hops(t)
    assert ("net_dev_start_xmit", IFNAME, a) in h  # transmitted in A
    assert ("netif_receive_skb", IFNAME, b) in h  # received in B
    assert h[-1] == ("kfree_skb", IFNAME, b) and t["hops_lost"] == 0
    assert h.index(("net_dev_start_xmit", IFNAME, a)) < h.index(("netif_receive_skb", IFNAME, b))
    times = [x["time"] for x in t["hops"]]
    assert times == sorted(times)


@pytest.mark.matrix
def test_full_qdisc_shows_the_queueing_and_the_drop(lab):
    from droptrace.kernel import reasons

    sc = next(s for s in SCENARIOS if s.name == "qdisc-full")
    here = set(reasons.load().all_names().values())  # QDISC_OVERLIMIT is new in 6.14
    with sc.prepared(lab):
        t = trail([lab.a], lambda: sc.provoke(lab), "--reason", ",".join(r for r in sc.reasons if r in here),
                  "udp")
    h = hops(t)
    assert t["reason"] in sc.reasons
    assert h[0] == ("net_dev_queue", IFNAME, lab.inode(lab.a))  # handed to the device's queue
    assert h[-1][0] == "kfree_skb" and len(h) == 2


def sh(*cmd, ns=None):
    """A command, in namespace ns if given; it must succeed."""
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    subprocess.run(full, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def namespaces(*names):
    """These network namespaces, each with lo up, deleted afterwards whatever happened."""
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        yield names
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def chain():
    """client -- router -- server: two veth pairs, forwarding in the router, an nft forward
    rule that drops UDP to port 7777."""
    tag = f"dtlabt{os.getpid()}"
    c, r, s = f"{tag}c", f"{tag}r", f"{tag}s"
    with namespaces(c, r, s):
        sh("ip", "link", "add", "dtc0", "type", "veth", "peer", "name", "dtr0")
        sh("ip", "link", "add", "dtr1", "type", "veth", "peer", "name", "dts0")
        for dev, ns, addr in (("dtc0", c, "10.77.1.2/24"), ("dtr0", r, "10.77.1.1/24"),
                              ("dtr1", r, "10.77.2.1/24"), ("dts0", s, "10.77.2.2/24")):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "addr", "add", addr, "dev", dev, ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
        sh("ip", "route", "add", "default", "via", "10.77.1.1", ns=c)
        sh("ip", "route", "add", "default", "via", "10.77.2.1", ns=s)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=r)
        sh("nft", "add table inet dtfwd", ns=r)
        sh("nft", "add chain inet dtfwd forward { type filter hook forward priority 0 ; }", ns=r)
        sh("nft", "add rule inet dtfwd forward udp dport 7777 drop", ns=r)
        yield c, r, s


def send(ns, port):
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "droptrace.lab.traffic", "udp",
                    "10.77.2.2", str(port)], check=True)


@pytest.mark.matrix
def test_forward_drop_in_the_router(chain):
    c, r, s = chain
    t = trail([c, r, s], lambda: send(c, 7777), "udp dst port 7777")
    assert t["reason"] == "NETFILTER_DROP"
    ns = {h["netns"] for h in t["hops"]}
    rin = os.stat(f"/run/netns/{r}").st_ino
    assert ("netif_receive_skb", "dtr0", rin) in hops(t)  # into the router
    assert hops(t)[-1][0] == "kfree_skb" and hops(t)[-1][2] == rin  # dropped there
    assert os.stat(f"/run/netns/{s}").st_ino not in ns  # never reached the server


@pytest.mark.matrix
def test_closed_port_on_the_server_crosses_three_namespaces(chain):
    c, r, s = chain
    t = trail([c, r, s], lambda: send(c, 9), "udp dst port 9")
    assert t["reason"] == "NO_SOCKET"
    inodes = [os.stat(f"/run/netns/{x}").st_ino for x in (c, r, s)]
    seen = [h["netns"] for h in t["hops"]]
    assert all(i in seen for i in inodes), hops(t)
    assert [seen.index(i) for i in inodes] == sorted(seen.index(i) for i in inodes)  # in that order
    assert ("net_dev_start_xmit", "dtr1", inodes[1]) in hops(t)  # forwarded out of the router


def inode(ns):
    return os.stat(f"/run/netns/{ns}").st_ino


def both(c, first, then):
    """Send UDP to port `first`, then to `then`, from the client."""
    return lambda: (send(c, first), send(c, then))


def test_netns_selects_the_packets_that_crossed_the_router(chain):
    """--netns ROUTER alone: the client's packet forwarded there and dropped, its trail whole from
    the client (where droptrace first saw it), the router's hops and the verdict there."""
    c, r, s = chain
    t = trail([r], lambda: send(c, 7777), "udp")
    assert t["reason"] == "NETFILTER_DROP"
    h = hops(t)
    assert h[0][2] == inode(c)  # from where it was first seen: queued in the client
    assert ("netif_receive_skb", "dtr0", inode(r)) in h
    assert h[-1][0] == "kfree_skb" and h[-1][2] == inode(r)


def test_netns_selects_by_a_later_hop_and_only_those(chain):
    """--netns SERVER: the router's forward drop never reached the server and is not shown; the
    packet that did (to the server's closed port) is, sent after it."""
    c, r, s = chain
    t = trail([s], both(c, 7777, 9), "udp")
    assert t["reason"] == "NO_SOCKET" and t["dport"] == 9
    assert [inode(x) in [h[2] for h in hops(t)] for x in (c, r, s)] == [True, True, True]


def test_interface_selects_by_any_hop(chain):
    """-i dtr1, the router's device towards the server: only the packet forwarded out of it."""
    c, r, s = chain
    t = trail([], both(c, 7777, 9), "-i", "dtr1", "udp")
    assert t["reason"] == "NO_SOCKET" and ("net_dev_start_xmit", "dtr1", inode(r)) in hops(t)


def test_netns_and_interface_select_one_hop_in_both(chain):
    """--netns ROUTER -i dtr0: the forward drop (received on dtr0 in the router); --netns CLIENT
    -i dtr0 matches no hop (dtr0 is the router's), so nothing."""
    c, r, s = chain
    t = trail([r], lambda: send(c, 7777), "-i", "dtr0", "udp")
    assert t["reason"] == "NETFILTER_DROP"
    with Droptrace("trail", "--json", "--netns", c, "-i", "dtr0", "-d", str(int(3 * SLOWDOWN)), "udp",
                   json_events=False) as dt:
        dt.wait_ready()
        send(c, 7777)
        send(c, 9)
        assert dt.wait(60) == 0
    assert not [ln for ln in dt.stdout if ln.strip()] and "0 packets shown" in dt.stderr[-1]


def test_reason_selects_by_the_verdict(chain):
    c, r, s = chain
    t = trail([], both(c, 9, 7777), "--reason", "NETFILTER_DROP", "udp")
    assert t["reason"] == "NETFILTER_DROP" and t["dport"] == 7777


# The forward path's functions (narrowed so that one fentry per function fits the emulated kernels' time)
FORWARD = "ip_rcv,ip_rcv_core,ip_rcv_finish,ip_forward,ip_forward_finish,nf_hook_slow,ip_output"


@pytest.mark.matrix
@pytest.mark.parametrize("method", [None, "fentry", "kprobe"])
def test_functions_show_the_forward_path_or_refuse_in_one_line(chain, method):
    """--functions: the router's forward drop with ip_forward and the netfilter hook before the
    verdict, each function hop with its caller; where no function hook works (this host: kprobes
    compiled out, fentry refused), one line naming each method and why, exit 1, nothing on stdout.
    DROPTRACE_TEST_FUNCTION_HOOK (set by scripts/test-other-kernel for the kernels it boots) says
    which method must be used there; `method` forces one (--function-hook), which may be refused
    (kprobes compiled out), but then in the same one line."""
    c, r, s = chain
    known = os.environ.get("DROPTRACE_TEST_FUNCTION_HOOK")  # set: function hooks work on this kernel
    expected = known if method is None else None if known in (None, "none") else method
    forced = ["--function-hook", method] if method else []
    with Droptrace("trail", "--json", "-c", "1", "-d", WAIT, "--netns", r, f"--functions={FORWARD}", *forced,
                   "udp dst port 7777", json_events=False) as dt:
        dt._ready.wait(120 * SLOWDOWN)
        if not any("Tracing" in ln for ln in dt.stderr):
            assert dt.wait(60) == 1 and not dt.stdout and expected in (None, "none"), dt.stderr
            assert len(dt.stderr) == 1 and "Traceback" not in dt.stderr[0]
            methods = [method] if method else ["kprobe-multi", "fentry", "kprobe"]
            assert all(f"({m}:" in dt.stderr[0] or f"; {m}:" in dt.stderr[0] for m in methods), dt.stderr
            return
        if method:
            expected = method
        assert expected != "none", dt.stderr
        note = next(ln for ln in dt.stderr if "kernel functions" in ln)
        assert expected is None or f"via {expected}" in note, note
        send(c, 7777)
        assert dt.wait(90) == 0, "".join(dt.stderr)
    t = json.loads(dt.stdout[0])
    assert t["reason"] == "NETFILTER_DROP"
    fns = [h["function"] for h in t["hops"]]
    assert "ip_forward" in fns and "nf_hook_slow" in fns, fns
    assert fns.index("ip_forward") < len(fns) - 1 - fns[::-1].index("nf_hook_slow")  # forward, then its hook
    assert t["hops"][-1]["hook"] == "kfree_skb" and t["hops"][-1]["netns"] == inode(r)
    assert all(h["hook"] == "function" for h in t["hops"] if h["function"])
    if "fentry" not in note:
        assert any(h["caller"] and "+0x" in h["caller"] for h in t["hops"] if h["function"]), t["hops"]


def function_hooks_or_skip(*args):
    """Start trail with function hooks; skip where none works and none is expected (the host:
    test_functions_show_the_forward_path_or_refuse_in_one_line checks the refusal)."""
    dt = Droptrace(*args, json_events=False)
    dt._ready.wait(120 * SLOWDOWN)
    if not any("Tracing" in ln for ln in dt.stderr):
        dt.wait(60)
        assert os.environ.get("DROPTRACE_TEST_FUNCTION_HOOK") in (None, "none"), dt.stderr
        pytest.skip("no kernel function hook works here")
    return dt


def clone_and_original(dt):
    """Of the two trails trail printed, the clone's (with a `clone` hop), the original's, and where
    in the clone's hops its `clone` hop is."""
    trails = [json.loads(ln) for ln in dt.stdout if ln.strip()]
    clone = next((t for t in trails if any(h["hook"] == "clone" for h in t["hops"])), None)
    assert clone is not None, ([[(h["hook"], h["function"], h["ifname"]) for h in t["hops"]] for t in trails],
                               dt.stderr)
    original = next(t for t in trails if t is not clone)
    return clone, original, next(i for i, h in enumerate(clone["hops"]) if h["hook"] == "clone")


@pytest.mark.matrix
def test_a_mirrored_copy_is_followed_as_a_clone(chain):
    """tc mirrors what the router receives on dtr0 to a veth of its own (mirred: skb_clone): with
    --all, the original's trail (dropped by the forward rule) and the clone's, which goes on from
    the original's hops with a hop `clone` by skb_clone, then its own on the mirror device."""
    c, r, s = chain
    for cmd in (["ip", "link", "add", "dtrm", "type", "veth", "peer", "name", "dtrn"],
                ["ip", "link", "set", "dtrm", "up"], ["ip", "link", "set", "dtrn", "up"],
                ["tc", "qdisc", "add", "dev", "dtr0", "clsact"],
                ["tc", "filter", "add", "dev", "dtr0", "ingress", "protocol", "all", "u32", "match", "u32",
                 "0", "0", "action", "mirred", "egress", "mirror", "dev", "dtrm"]):
        subprocess.run(["ip", "netns", "exec", r, *cmd], check=True, capture_output=True)
    dt = function_hooks_or_skip("trail", "--json", "--all", "-c", "2", "-d", WAIT, "--netns", r,
                                f"--functions={FORWARD}", "udp dst port 7777")
    with dt:
        send(c, 7777)
        assert dt.wait(90) == 0, "".join(dt.stderr)
    clone, original, at = clone_and_original(dt)
    assert original["reason"] == "NETFILTER_DROP"
    assert clone["hops"][at]["function"] == "skb_clone"
    assert ("netif_receive_skb", "dtr0", inode(r)) in hops({"hops": clone["hops"][:at]})  # the original's
    assert "dtrm" in [h["ifname"] for h in clone["hops"][at + 1:]]  # then its own, to the mirror
    assert clone["hops"][-1]["hook"] in ("kfree_skb", "consume_skb")


@pytest.mark.matrix
def test_returns_show_the_function_that_said_no(lab):
    """--returns: UDP from an address B has no route back to (rp_filter): the route lookup returns
    -EXDEV, then the packet is dropped as IP_RPFILTER."""
    sc = next(x for x in SCENARIOS if x.name == "rp-filter")
    dt = function_hooks_or_skip("trail", "--json", "-c", "1", "-d", WAIT, "--netns", lab.b, "--returns",
                                "--functions=ip_route_input*,fib_validate_source,ip_rcv*", "udp")
    with dt, sc.prepared(lab):
        sc.provoke(lab)
        assert dt.wait(90) == 0, "".join(dt.stderr)
    t = json.loads(dt.stdout[0])
    assert t["reason"] == "IP_RPFILTER"
    said_no = [h["function"] for h in t["hops"] if h["returned"] == "-EXDEV"]
    assert said_no, t["hops"]
    assert t["hops"][-1]["hook"] == "kfree_skb"


@pytest.mark.matrix
def test_returns_show_the_verdict_of_a_function_that_freed_the_packet(chain):
    """--returns: the router's nft forward rule drops the packet inside nf_hook_slow (kfree_skb,
    which ends the trail), which then returns -EPERM: the trail is emitted once the calls on the
    packet have returned, with nf_hook_slow's -EPERM before the drop."""
    c, r, s = chain
    dt = function_hooks_or_skip("trail", "--json", "-c", "1", "-d", WAIT, "--netns", r, "--returns",
                                f"--functions={FORWARD}", "udp dst port 7777")
    with dt:
        send(c, 7777)
        assert dt.wait(90) == 0, "".join(dt.stderr)
    t = json.loads(dt.stdout[0])
    assert t["reason"] == "NETFILTER_DROP"
    fns = [(h["function"], h["returned"]) for h in t["hops"] if h["function"]]
    assert ("nf_hook_slow", "-EPERM") in fns, fns
    assert t["hops"][-1]["hook"] == "kfree_skb"


def test_returns_need_functions():
    p = run("trail", "--returns", "-d", "1")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--functions" in p.stderr, p.stderr


@pytest.mark.matrix
def test_doctor_says_what_trail_functions_can_use():
    """doctor's `trail functions` line agrees with what trail --functions does here."""
    d = json.loads(run("doctor", "--json").stdout)
    check = next(c for c in d["checks"] if c["name"] == "trail functions")
    p = run("trail", "--functions=ip_rcv", "-d", "1")
    if p.returncode == 1:
        assert not check["ok"], check
        assert all(f"{m}:" in check["detail"] for m in ("kprobe-multi", "fentry", "kprobe")), check
    else:
        assert p.returncode == 0, p.stderr
        method = re.search(r"via (\S+) \(attached", p.stderr)[1]
        assert check["ok"] and check["detail"].endswith(f"hooked via {method}"), check


def test_functions_that_match_nothing_are_refused():
    """A glob no kernel function that takes an skb matches: one line, usage error."""
    p = run("trail", "--functions=dt_no_such_function_*", "-d", "1")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no kernel function" in p.stderr, p.stderr


def test_a_filter_that_matches_nothing_shows_nothing(lab):
    if not HAS_BPF_LOOP:
        pytest.skip("expressions in trail need bpf_loop")
    with Droptrace("trail", "--json", "--netns", lab.b, "-d", "3", "udp dst port 1", json_events=False) as dt:
        dt.wait_ready()
        lab.traffic(lab.a, "udp", B4, "9")
        assert dt.wait(60) == 0
    assert not [ln for ln in dt.stdout if ln.strip()]
    assert "0 packets shown" in dt.stderr[-1]


ECHO = ("import socket, struct\n"
        "def csum(b):\n"
        "    s = sum(struct.unpack('!' + 'H' * (len(b) // 2), b))\n"
        "    s = (s >> 16) + (s & 0xffff)\n"
        "    return ~(s + (s >> 16)) & 0xffff\n"
        "body = struct.pack('!BBHHH', 8, 0, 0, 0x4454, 1) + b'droptrace'\n"
        "pkt = body[:2] + struct.pack('!H', csum(body + b'\\0')) + body[4:]\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
        "s.sendto(pkt, (DST, 0))\n")


def test_all_shows_a_consumed_packet(lab):
    """--all: an ICMP echo request, consumed by B's ICMP code once answered (consume_skb)."""
    t = trail([lab.a, lab.b], lambda: lab.run(sys.executable, "-c", ECHO.replace("DST", repr(B4)), ns=lab.a),
              "--all", "icmp[icmptype] == icmp-echo")
    assert t["verdict"] == "consumed" and t["reason"] is None and t["l4"] == "icmp"
    h = hops(t)
    assert ("netif_receive_skb", IFNAME, lab.inode(lab.b)) in h and h[-1][0] == "consume_skb"


@pytest.fixture
def bridged():
    """A sender in namespace s, and a bridge br0 in namespace b with three ports: the sender's veth
    (dtbs0 -- dtbb0), and two whose peers are in namespace h (dtbb1 -- dtbh1, dtbb2 -- dtbh2).
    The sender knows 10.79.0.99 by a MAC nobody has: a frame to it is unknown unicast, which the
    bridge floods to its two other ports (br_flood: a clone to the first, the original to the
    last), and each copy is dropped in h (the MAC is not its own)."""
    tag = f"dtbr{os.getpid()}"
    s, b, h = f"{tag}s", f"{tag}b", f"{tag}h"
    with namespaces(s, b, h):
        sh("ip", "link", "add", "br0", "type", "bridge", ns=b)
        for near, far, ns in (("dtbs0", "dtbb0", s), ("dtbh1", "dtbb1", h), ("dtbh2", "dtbb2", h)):
            sh("ip", "link", "add", near, "type", "veth", "peer", "name", far)
            sh("ip", "link", "set", near, "netns", ns)
            sh("ip", "link", "set", far, "netns", b)
            sh("ip", "link", "set", far, "master", "br0", ns=b)
            sh("ip", "link", "set", far, "up", ns=b)
            sh("ip", "link", "set", near, "up", ns=ns)
        sh("ip", "link", "set", "br0", "up", ns=b)
        sh("ip", "addr", "add", "10.79.0.1/24", "dev", "dtbs0", ns=s)
        sh("ip", "neigh", "add", "10.79.0.99", "lladdr", "02:00:00:00:79:99", "dev", "dtbs0", ns=s)
        yield s, b, h


@pytest.mark.matrix
def test_a_bridged_copy_is_followed_as_a_clone(bridged):
    """The bridge floods an unknown-unicast frame to its two other ports: the copy br_flood makes
    (skb_clone) has a trail that goes on from the original's hops (the sender's, the bridge port's),
    then `clone` by skb_clone, then its own out of one port; the original goes out of the other."""
    s, b, h = bridged
    dt = function_hooks_or_skip("trail", "--json", "--all", "-c", "2", "-d", WAIT, "--netns", b,
                                "--functions=ip_rcv", "udp dst port 9")
    with dt:
        subprocess.run(["ip", "netns", "exec", s, sys.executable, "-m", "droptrace.lab.traffic", "udp",
                        "10.79.0.99", "9"], check=True)
        assert dt.wait(90) == 0, "".join(dt.stderr)
    clone, original, at = clone_and_original(dt)
    assert clone["hops"][at]["function"] == "skb_clone"
    before = [(x["hook"], x["ifname"]) for x in clone["hops"][:at]]
    assert ("net_dev_queue", "dtbs0") in before and ("netif_receive_skb", "dtbb0") in before, before
    own = {x["ifname"] for x in clone["hops"][at + 1:]}
    theirs = {x["ifname"] for x in original["hops"]}
    ports = {"dtbb1", "dtbb2"}
    assert len(own & ports) == 1 and len(theirs & ports) == 1 and own & ports != theirs & ports, (own, theirs)


GSO_SEND = ("import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.setsockopt(socket.IPPROTO_UDP, 103, 1000)  # UDP_SEGMENT: segments of 1000 bytes\n"
            "s.sendto(b'x' * 4000, ('DST', 9))\n")


@pytest.mark.matrix
def test_every_gso_segment_is_followed(lab):
    """A 4000-byte UDP send with UDP_SEGMENT=1000, out of a veth whose UDP segmentation offload is
    off: the stack segments it (skb_segment: four skbs linked by ->next), each is dropped at B's
    closed port, and each one's trail goes on from the original's with `clone` by skb_segment."""
    subprocess.run(["ip", "netns", "exec", lab.a, "ethtool", "-K", IFNAME, "tx-udp-segmentation", "off"],
                   check=True, capture_output=True)
    dt = function_hooks_or_skip("trail", "--json", "-c", "4", "-d", WAIT, "--netns", lab.b,
                                "--functions=ip_rcv", "udp dst port 9")
    with dt:
        lab.run(sys.executable, "-c", GSO_SEND.replace("DST", B4), ns=lab.a)
        assert dt.wait(90) == 0, "".join(dt.stderr)
    trails = [json.loads(ln) for ln in dt.stdout if ln.strip()]
    made = [[x["function"] for x in t["hops"] if x["hook"] == "clone"] for t in trails]
    assert len(trails) == 4 and made == [["skb_segment"]] * 4, (made, [hops(t) for t in trails])
    assert all(t["reason"] == "NO_SOCKET" for t in trails)
