"""diagnose's parsers of what host tools print: `ss`, `nft monitor trace`, and the drop's direction."""
from dataclasses import replace
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from droptrace.commands.diagnose import Grouper, render
from droptrace.diagnose import sockets
from droptrace.diagnose.checks import direction
from droptrace.diagnose.nfttrace import verdicts
from droptrace.event import Event

DATA = Path(__file__).resolve().parent.parent / "data" / "nft"

# `ss -H -a -n -p -m -u` as iproute2 6.1 prints it (captured in a namespace of our own)
SS_UDP = """\
ESTAB  0      0      127.0.0.1:45867 127.0.0.1:5353 users:(("python3",pid=6983,fd=6))
\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0)
UNCONN 1280   0      127.0.0.1:5353    0.0.0.0:*    users:(("python3",pid=6983,fd=3))
\t skmem:(r1280,rb2304,t0,tb212992,f2816,w0,o0,bl0,d4)
UNCONN 0      0              *:53            *:*    users:(("python3",pid=6983,fd=4))
\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0)
UNCONN 0      0      [fe80::1]%eth0:547   [::]:*  users:(("dhcpd",pid=7,fd=5),("dhcpd",pid=8,fd=5))
"""


def test_ss_sockets_with_memory():
    got = sockets.parse(SS_UDP, "udp")
    assert [(s.state, s.addr, s.port) for s in got] == [
        ("ESTAB", "127.0.0.1", 45867), ("UNCONN", "127.0.0.1", 5353), ("UNCONN", "*", 53),
        ("UNCONN", "fe80::1", 547)]
    full = got[1]
    assert (full.rcvbuf, full.queued, full.drops, full.recv_q) == (2304, 1280, 4, 1280)
    assert full.owner() == "pid 6983 (python3)" and full.endpoint() == "127.0.0.1:5353/udp"
    assert got[3].device == "eth0" and got[3].endpoint() == "[fe80::1]%eth0:547/udp"
    assert got[3].owner() == "pid 7 (dhcpd), pid 8 (dhcpd)"


def test_which_socket_accepts_an_address():
    s = {x.port: x for x in sockets.parse(SS_UDP, "udp")}
    assert s[53].accepts("10.0.0.2") and s[53].accepts("2001:db8::1")  # dual-stack wildcard
    assert s[5353].accepts("127.0.0.1") and not s[5353].accepts("10.0.0.2")
    v4any = sockets.parse("UNCONN 0 0 0.0.0.0:9 0.0.0.0:*\n", "udp")[0]
    assert v4any.accepts("10.0.0.2") and not v4any.accepts("::1")


@given(st.text(max_size=300))
def test_ss_parser_never_raises(text):
    for s in sockets.parse(text, "tcp"):
        assert 0 <= s.port


def test_nft_monitor_trace_gives_the_dropping_rule():
    lines = (DATA / "monitor-trace.txt").read_text().splitlines()
    got = verdicts(lines)
    assert got == {("10.9.0.1", "10.9.0.2", 40931, 7777):
                   "table inet filter, chain input: rule `udp dport 7777 counter drop` gave "
                   "verdict drop"}


def test_nft_monitor_trace_policy_drop():
    lines = ['trace id 1 ip filter input packet: iif "eth0" ip saddr 10.0.0.1 ip daddr 10.0.0.2 '
             'tcp sport 5 tcp dport 22 tcp flags == syn',
             "trace id 1 ip filter input policy drop "]
    want = "table ip filter, chain input: the chain's policy gave verdict drop"
    assert verdicts(lines) == {("10.0.0.1", "10.0.0.2", 5, 22): want}


@given(st.lists(st.text(max_size=120), max_size=20))
def test_trace_parser_never_raises(lines):
    verdicts(lines)


def test_direction_from_the_stack():
    ev = Event.from_dict({"reason": "NETFILTER_DROP", "location": "nf_hook_slow+0x9c"})
    assert direction(ev) is None
    ev.stack = ["nf_hook_slow+0x9c", "ip_local_deliver+0x6e", "ip_rcv_finish+0x1", "ip_rcv+0x2"]
    assert direction(ev) == "in"
    ev.stack = ["nf_hook_slow+0x9c", "__ip_local_out+0x10", "ip_send_skb+0x1"]
    assert direction(ev) == "out"


def test_groups_and_text_report():
    g = Grouper()
    base = {"reason": "NO_SOCKET", "location": "__udp4_lib_rcv+0x6e", "l3": "ipv4", "l4": "udp",
            "saddr": "10.0.0.1", "daddr": "10.0.0.2", "dport": 9, "netns": 4026532000, "ifname": "eth0"}
    g.write([Event.from_dict({**base, "sport": p}) for p in (1000, 1001, 1000)])
    g.write([Event.from_dict({**base, "dport": 53, "sport": 1})])
    assert g.total == 4 and len(g.groups) == 2
    first = max(g.groups.values(), key=lambda x: x.count)
    assert first.count == 3 and first.flow()["sport"] is None and first.flow()["dport"] == 9
    report = {"duration": 1.0, "drops": 4, "lost": 0, "group_count": 2, "groups": [{
        "reason": "NO_SOCKET", "location": first.location, "netns": 4026532000, "netns_name": "lab-b",
        "ifname": "eth0", "count": 3, "flow": first.flow(), "summary": "no socket",
        "findings": [{"check": "listeners", "result": "cause", "detail": "nothing listens on port 9/udp"}]}]}
    text = render(report)
    assert "[1] NO_SOCKET x3  udp 10.0.0.1 -> 10.0.0.2:9  on eth0 in netns lab-b" in text
    assert "  !! listeners: nothing listens on port 9/udp" in text


def test_tc_stats_numbers():
    from droptrace.diagnose.checks import _number_after

    line = "Sent 4240 bytes 4 pkt (dropped 46, overlimits 50 requeues 0)"
    assert _number_after(line, "dropped") == 46 and _number_after(line, "overlimits") == 50
    assert _number_after("nothing here", "dropped") == 0


# --- routes: the kernel's choice worked out from `ip -j rule/route show` (as iproute2 6.1 prints them)

RULES4 = [{"priority": 0, "src": "all", "table": "local"},
          {"priority": 100, "src": "192.0.2.0", "srclen": 24, "table": "7"},
          {"priority": 200, "src": "all", "fwmark": "0x1", "table": "8"},
          {"priority": 32766, "src": "all", "table": "main"}]
ROUTES4 = [{"dst": "default", "gateway": "198.18.0.254", "dev": "eth1", "flags": []},
           {"dst": "198.18.0.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "flags": []},
           {"dst": "203.0.113.0/24", "dev": "eth0", "metric": 10, "flags": []},
           {"dst": "203.0.113.0/24", "dev": "eth2", "metric": 5, "flags": []},
           {"type": "blackhole", "dst": "198.51.100.0/24", "flags": []},
           {"dst": "default", "dev": "eth3", "table": "7", "flags": []},
           {"type": "local", "dst": "198.18.0.2", "dev": "eth0", "table": "local", "flags": []}]


def test_route_choice():
    from ipaddress import ip_address

    from droptrace.diagnose.routes import choose

    def via(dst, src=None):
        got = choose(RULES4, ROUTES4, ip_address(dst), src)
        return got.route and (got.route.table, got.route.dev, got.route.gateway), got.skipped

    assert via("198.18.0.7") == (("main", "eth0", None), ("rule 200 (fwmark)",))  # longest prefix
    assert via("8.8.8.8")[0] == ("main", "eth1", "198.18.0.254")  # the default
    assert via("203.0.113.9")[0] == ("main", "eth2", None)  # same prefix: the lower metric
    assert via("8.8.8.8", src="192.0.2.5")[0] == ("7", "eth3", None)  # a source rule
    assert via("198.18.0.2")[0] == ("local", "eth0", None)
    got = choose(RULES4, ROUTES4, ip_address("198.51.100.1"))  # a blackhole: the lookup fails
    assert got.route is None and "blackhole 198.51.100.0/24 table main" in got.skipped
    assert choose(RULES4, [], ip_address("10.0.0.1")).route is None


def test_route_text():
    from droptrace.diagnose.routes import Route

    assert Route("main", "unicast", "default", "eth1", "198.18.0.254").text() == \
        "default via 198.18.0.254 dev eth1 table main"
    assert Route("local", "local", "10.0.0.2", "eth0", None).text() == "local 10.0.0.2 dev eth0 table local"


def test_hook_from_the_stack():
    from droptrace.diagnose.checks import hook

    def at(*frames):
        return hook(Event.from_dict({"stack": ["sk_skb_reason_drop+0x90", "nft_do_chain+0x46f",
                                               "nft_do_chain_inet+0x4c", "nf_hook_slow+0x43", *frames]}))

    # as the 6.18 kernel's stacks showed them, one per hook (lab: a chain on each hook dropping)
    assert at("ip_rcv+0x171") == "prerouting"
    assert at("ip_local_deliver+0x119", "__netif_receive_skb_one_core+0x8d") == "input"
    assert at("ip_forward+0x6e9") == "forward"
    assert at("__ip_local_out+0x15c", "ip_send_skb+0x1e") == "output"
    assert at("ip_output+0x122") == "postrouting"
    assert at("__netif_receive_skb_core.constprop.0+0x847") == "ingress"
    assert at("something_else+0x1") is None and hook(Event.from_dict({})) is None


# --- `conntrack -L` then `conntrack -L -o extended` as conntrack-tools 1.4.7 printed them in a
# scratch namespace (a TCP connection and UDP over IPv4 and IPv6 on loopback)

CONNTRACK = (DATA.parent / "conntrack-L.txt").read_text()


def test_conntrack_entries():
    from droptrace.diagnose.conntrack import parse

    got = parse(CONNTRACK)
    assert len(got) == 6 and got[:3] == got[3:]  # plain and extended read alike
    tcp, udp, six = got[:3]
    assert (tcp.proto, tcp.state, tcp.timeout, tcp.status, tcp.mark, tcp.zone) == (
        "tcp", "ESTABLISHED", 431999, ("ASSURED",), 0, 0)
    assert tcp.original == ("src=127.0.0.1", "dst=127.0.0.1", "sport=56794", "dport=2222")
    assert tcp.reply == ("src=127.0.0.1", "dst=127.0.0.1", "sport=2222", "dport=56794")
    assert (udp.state, udp.status, udp.mark) == (None, ("UNREPLIED",), 0)
    assert udp.text() == ("udp src=127.0.0.1 dst=127.0.0.1 sport=43042 dport=5353 [UNREPLIED] mark=0 zone=0, "
                          "29 s left")
    assert six.proto == "udp" and six.original[0] == "src=::1"


@given(st.text(max_size=300))
def test_conntrack_parser_never_raises(text):
    from droptrace.diagnose.conntrack import parse

    for e in parse(text):
        assert e.proto and e.zone >= 0


# --- the text report's defects of issue 24


def test_report_brackets_ipv6_and_leaves_out_what_is_not_known():
    flow = {"l3": "ipv6", "l4": "udp", "saddr": "::1", "daddr": "::1", "sport": 51641, "dport": 9,
            "tcp_flags": None, "icmp_type": None}
    report = {"duration": 1.0, "drops": 1, "lost": 0, "group_count": 1, "groups": [{
        "reason": "NO_SOCKET", "location": "__udp6_lib_rcv+0x1", "netns": None, "netns_name": None,
        "ifname": None, "count": 1, "flow": flow, "summary": "no socket", "findings": []}]}
    text = render(report)
    assert "[1] NO_SOCKET x1  udp [::1]:51641 -> [::1]:9\n" in text
    assert "None" not in text and "on ?" not in text


def test_other_locations_once_each_and_not_the_groups_own():
    from droptrace.commands.diagnose import inspect

    g = Grouper()
    base = {"reason": "NOT_SPECIFIED", "l3": "ipv6", "l4": "icmpv6", "saddr": "fe80::1", "netns": None}
    g.write([Event.from_dict({**base, "location": "ip6_mc_input+0xd4", "daddr": d}) for d in
             ("ff02::16", "ff02::16", "ff02::2")])
    g.write([Event.from_dict({**base, "location": "icmpv6_rcv+0x10", "daddr": "ff02::1"})])
    groups = sorted(g.groups.values(), key=lambda x: -x.count)
    out = inspect(groups)
    others = {r["location"]: [f["detail"] for f in r["findings"] if f["check"] == "other locations"]
              for r in out}
    assert others["ip6_mc_input+0xd4"] == ["same reason also at icmpv6_rcv+0x10 (1)"]
    assert others["icmpv6_rcv+0x10"] == ["same reason also at ip6_mc_input+0xd4 (3)"]


def test_nft_findings_mark_only_the_rule_reached():
    from droptrace.diagnose.checks import nft_findings
    from droptrace.diagnose.nft import Packet, parse_json, rule_texts

    rs = parse_json((DATA / "hooks.json").read_text())
    tx = rule_texts((DATA / "hooks.txt").read_text())
    p = Packet("ipv4", "udp", "10.0.0.1", "10.0.0.2", 5, 7005)
    got = nft_findings(rs, p, "input", "in", tx, "lab-b")
    assert [(f.result, f.detail) for f in got if f.result == "cause"] == [
        ("cause", "table inet a, chain in, handle 3: `udp dport vmap { 7005 : drop, 7010 : accept }` drops "
         "this packet: the first rule on its way that does")]
    got = nft_findings(rs, replace(p, dport=7100), "input", "in", tx, "lab-b")
    details = [f.detail for f in got]
    assert any(d.startswith("may decide first: table inet a, chain in, handle 4: `ct state "
                            "established,related accept` (not evaluated: ct state established,related)")
               for d in details), details
    assert any(d.startswith("other rules that may drop it instead: table inet b, chain in, handle 2")
               for d in details), details
    got = nft_findings(rs, replace(p, dport=7300), "input", "in", tx, "lab-b")
    assert [f.result for f in got] == ["ok"]
    # nothing on its way drops it, but a rule elsewhere would: said, as context
    got = nft_findings(rs, replace(p, dport=7700), "input", "in", tx, "lab-b")
    assert [(f.result, f.detail) for f in got][1:] == [
        ("info", "not on its way at input, but it would drop such a packet if reached: table inet d, "
         "chain pre, handle 10: `udp dport 7700 drop`")]
    # the hook not known: each hook the packet may have met, and no `!!` unless only one drops it
    got = nft_findings(rs, p, None, "in", tx, "lab-b")
    assert [f.result for f in got if f.result == "cause"] == ["cause"]


_JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 40000), st.text(max_size=12),
                                  st.sampled_from(["all", "default", "main", "local", "10.0.0.0/8", "::/0",
                                                   "blackhole", "unicast", "10.1.2.3", "eth0"])),
                        lambda inner: st.dictionaries(st.sampled_from(
                            ["priority", "src", "srclen", "dst", "dstlen", "iif", "table", "action", "type",
                             "dev", "gateway", "metric", "fwmark", "not"]), inner, max_size=6), max_leaves=12)


@given(st.lists(_JSONISH, max_size=6), st.lists(_JSONISH, max_size=8),
       st.sampled_from(["10.1.2.3", "192.0.2.1", "2001:db8::1"]), st.sampled_from([None, "10.0.0.1", "x"]))
def test_route_choice_never_raises(rules, routes, dst, src):
    from ipaddress import ip_address

    from droptrace.diagnose.routes import choose

    got = choose(rules, routes, ip_address(dst), src)  # whatever `ip -j` printed
    assert got.route is None or got.route.text()


class _Answers:
    """A namespace whose commands print what was saved (no host is read)."""

    label = "lab-b"
    path = "/run/netns/lab-b"

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def run(self, argv):
        from droptrace.diagnose.host import Result

        self.asked.append(argv)
        out = self.answers.get(argv[0])
        return Result(out is not None, out or "", "" if out is not None else f"{argv[0]} is not installed")


def _udp_group(**kw):
    from droptrace.diagnose.checks import Group

    e = Event.from_dict({"reason": "NETFILTER_DROP", "location": "nft_do_chain+0x46f", "l3": "ipv4",
                         "l4": "udp", "saddr": "127.0.0.1", "daddr": "127.0.0.1", "sport": 43042,
                         "dport": 5353, **kw})
    g = Group(e.reason, e.location, None, "lo", e, count=1)
    g.sports[e.sport] = 1
    return g


def test_conntrack_entry_or_its_absence():
    from droptrace.diagnose.checks import conntrack_entry

    ns = _Answers({"conntrack": CONNTRACK.splitlines()[1] + "\n"})
    (f,) = conntrack_entry(_udp_group(), ns)
    assert f.detail.startswith("entry: udp src=127.0.0.1 dst=127.0.0.1 sport=43042 dport=5353 [UNREPLIED]")
    assert ns.asked[0] == ["conntrack", "-L", "-f", "ipv4", "-p", "udp", "-s", "127.0.0.1", "-d", "127.0.0.1",
                           "--sport", "43042", "--dport", "5353"]
    assert ns.asked[1][4:] == ["-p", "udp", "--reply-src", "127.0.0.1", "--reply-dst", "127.0.0.1",
                               "--reply-port-src", "43042", "--reply-port-dst", "5353"]
    (f,) = conntrack_entry(_udp_group(), _Answers({"conntrack": ""}))
    assert f.result == "info" and f.detail.startswith("no conntrack entry for this flow in namespace lab-b")
    (f,) = conntrack_entry(_udp_group(), _Answers({}))
    assert f.result == "unknown" and "conntrack is not installed" in f.detail
