"""diagnose.nft on rulesets as nft 1.0.6 printed them.

tests/data/nft/NAME.nft was loaded in a scratch network namespace and dumped from there:
    ip netns add x; ip netns exec x nft -f NAME.nft
    ip netns exec x nft -j list ruleset > NAME.json; ip netns exec x nft -a list ruleset > NAME.txt
so the JSON and the rule texts are nft's own, not written by hand.
"""
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from droptrace.diagnose.nft import (
    HOOKS,
    MATCHES,
    MAY_MATCH,
    Packet,
    RuleMatch,
    drop_rules,
    evaluate,
    parse_json,
    rule_texts,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "nft"
NAMES = ("filter", "misc", "quirks")
RULESETS = {n: parse_json((DATA / f"{n}.json").read_text()) for n in NAMES}
TEXTS = {n: rule_texts((DATA / f"{n}.txt").read_text()) for n in NAMES}

Key = Tuple[str, str, str, Optional[int]]


def pkt(l3: Optional[str] = "ipv4", l4=None, saddr=None, daddr=None, sport=None, dport=None, **kw) -> Packet:
    return Packet(l3=l3, l4=l4, saddr=saddr, daddr=daddr, sport=sport, dport=dport, **kw)


def found(name: str, p: Packet) -> Dict[Key, RuleMatch]:
    return {(m.family, m.table, m.chain, m.handle): m for m in drop_rules(RULESETS[name], p, TEXTS[name])}


def fits(name: str, p: Packet) -> Dict[Key, str]:
    return {k: m.fit for k, m in found(name, p).items()}


F = ("inet", "filter", "input")  # the chain most of filter.nft is in
M = ("inet", "misc", "pre")
V4 = dict(l3="ipv4", saddr="192.0.2.200", daddr="192.0.2.1")
V6 = dict(l3="ipv6", saddr="2001:db8:ffff::1", daddr="2001:db8:ffff::2")


# --- the rule texts, as `nft -a list ruleset` printed them


def test_rule_texts_filter():
    t = TEXTS["filter"]
    assert t[(*F, 5)] == "udp dport 7777 drop"
    assert t[(*F, 7)] == "tcp dport { 22, 80 } reject"
    assert t[(*F, 8)] == "ip saddr 10.0.0.0/8 udp dport 53 drop"
    assert t[(*F, 9)] == 'iifname "eth0" meta l4proto icmp drop'
    assert t[(*F, 10)] == "ct state invalid drop"
    assert t[(*F, 11)] == "ip saddr @blocked4 counter drop"  # the counter's values left out
    assert t[(*F, 18)] == "tcp dport vmap { 9000 : drop, 9001 : accept }"
    assert t[(*F, 21)] == "jump extra"
    assert t[("inet", "filter", "extra", 22)] == "udp sport 123 drop"
    assert t[("ip", "legacy", "forward", 2)] == \
        'oifname "wan0" tcp dport 25 reject with icmp admin-prohibited'
    assert t[("ip6", "v6only", "input", 2)] == "icmpv6 type echo-request drop"
    assert t[("netdev", "ingress", "ing", 2)] == "ip saddr 203.0.113.0/24 drop"
    assert t[("bridge", "br", "brfwd", 2)] == "ether type ip drop"
    rules = [x["rule"] for x in RULESETS["filter"]["nftables"] if "rule" in x]
    assert set(t) == {(r["family"], r["table"], r["chain"], r["handle"]) for r in rules}  # all, and no more


def test_rule_texts_quirks():
    # "# handle 99 {" inside a comment, and set elements over several lines
    assert TEXTS["quirks"] == {
        ("inet", "my-t", "in_put", 4): 'tcp dport { 1, 2, 3 } drop comment "x # handle 99 {"',
        ("inet", "my-t", "in_put", 5): "ip daddr @many drop"}
    assert TEXTS["misc"][(*M, 25)] == \
        'tcp dport 9 counter reject with tcp reset comment "discard"'


def test_rule_texts_of_nothing():
    assert rule_texts("") == {}
    assert rule_texts("Error: Could not process rule: Operation not permitted\n") == {}


def test_text_of_each_match_is_nfts():
    for name in NAMES:
        for m in drop_rules(RULESETS[name], pkt(l3=None), TEXTS[name]):
            if m.handle is None:
                assert m.text == "policy drop"
            else:
                assert m.text == TEXTS[name][(m.family, m.table, m.chain, m.handle)]


def test_text_without_nft_a_is_rebuilt_from_json():
    got = drop_rules(RULESETS["filter"], pkt(l3=None))  # no texts
    by = {(m.family, m.table, m.chain, m.handle): m.text for m in got}
    assert by[(*F, 5)] == "udp dport 7777 drop"
    assert by[(*F, 7)] == "tcp dport { 22, 80 } reject"
    assert by[(*F, 9)] == 'iifname "eth0" meta l4proto icmp drop'
    assert by[(*F, 15)] == "meta mark 0x0000002a drop"


# --- the brief's inet table


def test_udp_port():
    assert fits("filter", pkt(**V4, l4="udp", sport=40000, dport=7777))[(*F, 5)] == MATCHES
    assert fits("filter", pkt(**V6, l4="udp", sport=40000, dport=7777))[(*F, 5)] == MATCHES  # inet: both
    assert fits("filter", pkt(**V4, l4=17, dport=7777))[(*F, 5)] == MATCHES  # protocol as a number
    assert (*F, 5) not in fits("filter", pkt(**V4, l4="udp", dport=7778))  # wrong port
    assert (*F, 5) not in fits("filter", pkt(**V4, l4="tcp", dport=7777))  # wrong protocol


def test_reject_anonymous_set():
    for port in (22, 80):
        m = found("filter", pkt(**V4, l4="tcp", sport=1, dport=port))[(*F, 7)]
        assert (m.verdict, m.fit, m.unevaluated) == ("reject", MATCHES, ())
        assert m.text == "tcp dport { 22, 80 } reject"
    assert (*F, 7) not in fits("filter", pkt(**V4, l4="tcp", dport=23))
    assert (*F, 7) not in fits("filter", pkt(**V4, l4="udp", dport=22))


def test_prefix_and_port():
    m = found("filter", pkt(l3="ipv4", l4="udp", saddr="10.200.1.2", daddr="192.0.2.1", sport=5, dport=53))
    assert m[(*F, 8)].fit == MATCHES
    assert m[(*F, 8)].verdict == "drop"
    assert (*F, 8) not in fits("filter", pkt(l3="ipv4", l4="udp", saddr="11.0.0.1", dport=53))  # address
    assert (*F, 8) not in fits("filter", pkt(l3="ipv4", l4="tcp", saddr="10.0.0.1", dport=53))  # protocol
    assert (*F, 8) not in fits("filter", pkt(l3="ipv6", l4="udp", saddr="::a00:1", dport=53))  # family
    # the address unknown: the port alone cannot rule it in
    m = found("filter", pkt(l3="ipv4", l4="udp", dport=53))[(*F, 8)]
    assert (m.fit, m.unevaluated) == (MAY_MATCH, ("ip saddr 10.0.0.0/8",))


def test_interface_and_l4proto():
    assert fits("filter", pkt(**V4, l4="icmp", iifname="eth0"))[(*F, 9)] == MATCHES
    assert (*F, 9) not in fits("filter", pkt(**V4, l4="icmp", iifname="eth1"))
    assert (*F, 9) not in fits("filter", pkt(**V4, l4="udp", iifname="eth0"))
    m = found("filter", pkt(**V4, l4="icmp"))[(*F, 9)]
    assert (m.fit, m.unevaluated) == (MAY_MATCH, ('iifname "eth0"',))


def test_ct_state_may_match():
    for p in (pkt(**V4, l4="tcp", dport=443), pkt(**V6, l4="udp", dport=1), pkt(l3=None)):
        m = found("filter", p)[(*F, 10)]
        assert (m.verdict, m.fit, m.unevaluated, m.text) == ("drop", MAY_MATCH, ("ct state invalid",),
                                                             "ct state invalid drop")


def test_named_set():
    for a in ("192.0.2.77", "198.51.100.7"):
        assert fits("filter", pkt(l3="ipv4", l4="tcp", saddr=a, dport=1))[(*F, 11)] == MATCHES
    assert (*F, 11) not in fits("filter", pkt(l3="ipv4", l4="tcp", saddr="198.51.100.8", dport=1))
    assert fits("filter", pkt(**V4, l4="tcp", dport=6667))[(*F, 12)] == MATCHES
    assert (*F, 12) not in fits("filter", pkt(**V4, l4="tcp", dport=6668))


def test_named_set_missing_from_ruleset():
    rs = {"nftables": [x for x in RULESETS["filter"]["nftables"] if "set" not in x]}
    m = {(x.chain, x.handle): x for x in drop_rules(rs, pkt(**V4, l4="tcp", dport=6668))}
    assert (m[("input", 12)].fit, m[("input", 12)].unevaluated) == (MAY_MATCH, ("tcp dport @badports",))


def test_range_and_not_equal():
    assert fits("filter", pkt(**V4, l4="tcp", dport=1500))[(*F, 13)] == MATCHES
    assert (*F, 13) not in fits("filter", pkt(**V4, l4="tcp", dport=2001))
    assert fits("filter", pkt(l3="ipv4", l4="tcp", daddr="10.0.0.1", dport=8080))[(*F, 14)] == MATCHES
    assert (*F, 14) not in fits("filter", pkt(l3="ipv4", l4="tcp", daddr="172.16.5.5", dport=8080))
    # `ip daddr != ...` still needs an IPv4 header
    assert (*F, 14) not in fits("filter", pkt(**V6, l4="tcp", dport=8080))


def test_mark():
    assert fits("filter", pkt(**V4, l4="tcp", dport=1, mark=42))[(*F, 15)] == MATCHES
    assert (*F, 15) not in fits("filter", pkt(**V4, l4="tcp", dport=1, mark=7))
    assert found("filter", pkt(**V4, l4="tcp", dport=1))[(*F, 15)].unevaluated == ("meta mark 0x0000002a",)


def test_ip6_address_in_inet():
    assert fits("filter", pkt(l3="ipv6", l4="tcp", saddr="2001:db8::5", dport=1))[(*F, 16)] == MATCHES
    assert (*F, 16) not in fits("filter", pkt(**V4, l4="tcp", dport=1))


def test_vmap():
    m = found("filter", pkt(**V4, l4="tcp", dport=9000))[(*F, 18)]
    assert (m.verdict, m.fit) == ("drop", MATCHES)
    assert (*F, 18) not in fits("filter", pkt(**V4, l4="tcp", dport=9001))  # accept
    assert (*F, 18) not in fits("filter", pkt(**V4, l4="udp", dport=9000))
    m = found("filter", pkt(**V4, l4="tcp"))[(*F, 18)]
    assert (m.fit, m.unevaluated) == (MAY_MATCH, ("tcp dport vmap { 9000 : drop, 9001 : accept }",))


def test_limit_may_match_and_accept_never_listed():
    m = found("filter", pkt(**V4, l4="tcp", dport=443))
    assert m[(*F, 19)].unevaluated == ("limit rate 10/second",)
    assert (*F, 20) not in m and (*F, 21) not in m  # accept, jump


def test_chains_judged_alone():
    # extra is only reached through `jump extra`; its rule is a candidate all the same
    assert fits("filter", pkt(**V4, l4="udp", sport=123, dport=9))[("inet", "filter", "extra", 22)] == MATCHES


# --- ip, ip6, netdev and bridge tables, policies


def test_ip_table_and_policy_drop():
    m = found("filter", pkt(**V4, l4="tcp", dport=25, oifname="wan0"))
    rule = m[("ip", "legacy", "forward", 2)]
    assert (rule.verdict, rule.fit) == ("reject", MATCHES)
    policy = m[("ip", "legacy", "forward", None)]
    assert policy == RuleMatch("ip", "legacy", "forward", None, "policy drop", MAY_MATCH, "policy drop",
                               ("whether an earlier rule accepted it",))
    assert ("ip", "legacy", "forward", 2) not in fits("filter", pkt(**V4, l4="tcp", dport=25, oifname="eth0"))
    # an ip table never sees IPv6
    assert not [k for k in fits("filter", pkt(**V6, l4="tcp", dport=25, oifname="wan0")) if k[0] == "ip"]


def test_ip6_table():
    six = ("ip6", "v6only", "input")
    m = found("filter", pkt(l3="ipv6", l4="tcp", daddr="::1", dport=5555))
    assert m[(*six, 3)].fit == MATCHES
    assert (*six, 3) not in fits("filter", pkt(l3="ipv6", l4="tcp", daddr="::2", dport=5555))
    assert (*six, 2) not in m  # icmpv6 only
    m = found("filter", pkt(**V6, l4="icmpv6"))[(*six, 2)]
    assert (m.fit, m.unevaluated) == (MAY_MATCH, ("icmpv6 type echo-request",))
    assert fits("filter", pkt(**V6, l4="udp", dport=9999))[(*six, 5)] == MATCHES  # meta l4proto { } th dport
    assert (*six, 5) not in fits("filter", pkt(**V6, l4="icmpv6", dport=9999))
    assert not [k for k in fits("filter", pkt(l3="ipv4", l4="tcp", dport=5555)) if k[0] == "ip6"]


def test_netdev_and_bridge_only_may_match():
    m = found("filter", pkt(l3="ipv4", l4="udp", saddr="203.0.113.9", dport=1))
    nd = m[("netdev", "ingress", "ing", 2)]
    assert (nd.fit, nd.unevaluated) == (MAY_MATCH, ("whether the packet passed this netdev hook",))
    br = m[("bridge", "br", "brfwd", 2)]
    assert (br.fit, br.unevaluated) == (MAY_MATCH, ("whether the packet was bridged", "ether type ip"))
    # contradicted: another address, or not IPv4 at all
    assert ("netdev", "ingress", "ing", 2) not in fits("filter", pkt(l3="ipv4", l4="udp", saddr="10.0.0.1"))
    assert ("netdev", "ingress", "ing", 2) not in fits("filter", pkt(**V6, l4="udp"))


def test_policy_drop_by_family():
    strict = ("ip6", "strict", "input", None)
    arp = ("arp", "a", "in", None)
    assert set(fits("misc", pkt(l3="arp"))) == {arp}
    assert strict in fits("misc", pkt(**V6, l4="tcp", dport=1))
    assert strict not in fits("misc", pkt(**V4, l4="tcp", dport=1))
    assert arp not in fits("misc", pkt(**V6, l4="tcp", dport=1))


def test_order_matches_first():
    got = drop_rules(RULESETS["filter"], pkt(l3="ipv4", l4="udp", saddr="10.0.0.1", sport=123, dport=7777),
                     TEXTS["filter"])
    order = [m.fit for m in got]
    assert order == sorted(order, key=lambda f: f != MATCHES)
    assert [(m.chain, m.handle) for m in got if m.fit == MATCHES] == [("input", 5), ("extra", 22)]


# --- misc.nft: sets, maps, operators, what is not evaluated


def test_named_set_negated_and_nfproto():
    assert fits("misc", pkt(l3="ipv6", l4="tcp", saddr="2001:db8:2::1", dport=2049))[(*M, 8)] == MATCHES
    assert (*M, 8) not in fits("misc", pkt(l3="ipv6", l4="tcp", saddr="2001:db8:1::1", dport=2049))
    assert (*M, 8) not in fits("misc", pkt(l3="ipv4", l4="tcp", saddr="192.0.2.1", dport=2049))


def test_interface_wildcard_and_meta_protocol():
    assert fits("misc", pkt(**V4, l4="udp", dport=4789, iifname="veth12"))[(*M, 9)] == MATCHES
    assert (*M, 9) not in fits("misc", pkt(**V4, l4="udp", dport=4789, iifname="eth0"))
    assert (*M, 9) not in fits("misc", pkt(**V6, l4="udp", dport=4789, iifname="veth12"))


def test_set_elements_empty_with_timeout_interval():
    assert (*M, 10) not in fits("misc", pkt(**V4, l4="tcp", dport=1))  # empty set
    assert fits("misc", pkt(l3="ipv4", l4="tcp", saddr="192.0.2.9", dport=1))[(*M, 11)] == MATCHES
    assert fits("misc", pkt(**V4, l4="udp", dport=3050))[(*M, 14)] == MATCHES
    assert fits("misc", pkt(**V4, l4="udp", dport=4000))[(*M, 14)] == MATCHES
    assert (*M, 14) not in fits("misc", pkt(**V4, l4="udp", dport=3100))


def test_concatenation():
    assert fits("misc", pkt(l3="ipv4", l4="tcp", saddr="192.0.2.1", dport=22))[(*M, 12)] == MATCHES
    assert (*M, 12) not in fits("misc", pkt(l3="ipv4", l4="tcp", saddr="192.0.2.1", dport=23))
    assert (*M, 12) not in fits("misc", pkt(l3="ipv4", l4="tcp", saddr="192.0.2.2", dport=22))
    m = found("misc", pkt(l3="ipv4", l4="tcp", dport=22))[(*M, 12)]  # the address unknown
    assert (m.fit, m.unevaluated) == (MAY_MATCH, ("ip saddr . tcp dport @pairs",))
    assert (*M, 12) not in fits("misc", pkt(**V6, l4="tcp", dport=22))
    assert (*M, 12) not in fits("misc", pkt(**V4, l4="udp", dport=22))


def test_named_verdict_map():
    assert found("misc", pkt(**V4, l4="tcp", dport=2222))[(*M, 13)].fit == MATCHES
    assert (*M, 13) not in fits("misc", pkt(**V4, l4="tcp", dport=2223))


def test_comparisons():
    assert fits("misc", pkt(**V4, l4="tcp", dport=80))[(*M, 15)] == MATCHES
    assert (*M, 15) not in fits("misc", pkt(**V4, l4="tcp", dport=22))
    assert (*M, 15) not in fits("misc", pkt(**V4, l4="tcp", dport=2000))


def test_not_evaluated():
    m = found("misc", pkt(l3="ipv4", l4="tcp", saddr="192.0.2.1", daddr="192.0.2.50", dport=1, mark=1))
    assert m[(*M, 16)].unevaluated == ("meta mark & 255 == 1",)  # bitwise: not evaluated
    assert m[(*M, 19)].unevaluated == ("tcp flags syn",)
    assert m[(*M, 27)].unevaluated == ("ether saddr 00:11:22:33:44:55",)
    assert (*M, 17) not in m  # icmp type: an ICMP packet only
    assert found("misc", pkt(**V4, l4="icmp"))[(*M, 17)].unevaluated == ("icmp type echo-request",)
    assert fits("misc", pkt(**V4, l4="icmp", icmp_type=8))[(*M, 17)] == MATCHES  # the type known
    assert (*M, 17) not in fits("misc", pkt(**V4, l4="icmp", icmp_type=0))
    six = ("ip6", "v6only", "input", 2)  # icmpv6 type echo-request
    assert fits("filter", pkt(**V6, l4="icmpv6", icmp_type=128))[six] == MATCHES
    assert six not in fits("filter", pkt(**V6, l4="icmpv6", icmp_type=129))
    assert found("misc", pkt(**V4, l4="udp", dport=5353))[(*M, 18)].unevaluated == ("fib daddr type local",)
    assert (*M, 18) not in fits("misc", pkt(**V4, l4="udp", dport=53))
    assert (*M, 19) not in fits("misc", pkt(l3="ipv4", l4="tcp", daddr="192.0.2.51", dport=1))


def test_ip6_nexthdr_and_l4proto_number():
    assert fits("misc", pkt(**V6, l4="udp", dport=500))[(*M, 20)] == MATCHES
    assert (*M, 20) not in fits("misc", pkt(**V4, l4="udp", dport=500))
    assert fits("misc", pkt(**V4, l4=253))[(*M, 21)] == MATCHES
    assert (*M, 21) not in fits("misc", pkt(**V4, l4="udp"))
    assert fits("misc", pkt(**V4, l4="no-such-protocol"))[(*M, 21)] == MAY_MATCH


def test_anonymous_set_of_prefix_range_and_address():
    def f(saddr: str, sport: int) -> Dict[Key, str]:
        return fits("misc", pkt(l3="ipv4", l4="udp", saddr=saddr, sport=sport, dport=9))
    assert f("10.1.255.255", 1)[(*M, 24)] == MATCHES
    assert f("10.2.0.5", 100)[(*M, 24)] == MATCHES
    assert f("10.3.0.1", 200)[(*M, 24)] == MATCHES
    assert (*M, 24) not in f("10.2.0.10", 50)
    assert (*M, 24) not in f("10.3.0.1", 150)


def test_reject_with_comment():
    m = found("misc", pkt(**V4, l4="tcp", dport=9))[(*M, 25)]
    assert (m.verdict, m.fit) == ("reject", MATCHES)
    assert m.text.endswith('reject with tcp reset comment "discard"')


# --- junk


@pytest.mark.parametrize("junk", [
    "", "   \n", "nft: command not found", "Error: syntax error, unexpected junk", "[]", '{"foo": 1}',
    '{"nftables": {}}', '{"nftables": [1, 2]}', (DATA / "filter.json").read_text()[:500],
])
def test_junk_is_a_value_error(junk):
    with pytest.raises(ValueError, match="nft"):
        parse_json(junk)


# --- any packet at all


def _maybe(s):
    return st.one_of(st.none(), s)


PACKETS = st.builds(
    Packet,
    l3=_maybe(st.one_of(st.sampled_from(["ipv4", "ipv6", "arp", "IPv4", "ip6", ""]), st.text(max_size=8))),
    l4=_maybe(st.one_of(st.sampled_from(["tcp", "udp", "icmp", "icmpv6", "sctp", "ipv6-icmp", "0x11"]),
                        st.integers(-3, 300), st.text(max_size=8))),
    saddr=_maybe(st.one_of(st.ip_addresses().map(str), st.sampled_from(["10.0.0.1", "2001:db8::5"]),
                           st.text(max_size=12))),
    daddr=_maybe(st.one_of(st.ip_addresses().map(str), st.sampled_from(["::1", "192.0.2.50"]),
                           st.text(max_size=12))),
    sport=_maybe(st.one_of(st.integers(-5, 70000), st.sampled_from([123, 53, 200]))),
    dport=_maybe(st.one_of(st.integers(-5, 70000), st.sampled_from([22, 53, 7777, 9000, 2222, 3050]))),
    iifname=_maybe(st.one_of(st.sampled_from(["eth0", "veth0", "lo"]), st.text(max_size=16))),
    oifname=_maybe(st.one_of(st.sampled_from(["wan0", "lo"]), st.text(max_size=16))),
    mark=_maybe(st.one_of(st.integers(-(2 ** 40), 2 ** 40), st.just(42))),
    icmp_type=_maybe(st.one_of(st.integers(-1, 300), st.sampled_from([0, 8, 128]))),
)
FIELDS = ("l3", "l4", "saddr", "daddr", "sport", "dport", "iifname", "oifname", "mark", "icmp_type")


@settings(max_examples=150, deadline=None)
@given(p=PACKETS, name=st.sampled_from(NAMES), blank=st.sampled_from(FIELDS))
def test_any_packet(p, name, blank):
    got = drop_rules(RULESETS[name], p, TEXTS[name])  # never raises
    assert all(m.verdict in ("drop", "reject", "policy drop") for m in got)
    assert all((m.fit == MATCHES) == (not m.unevaluated) for m in got)
    assert [m.fit for m in got] == sorted((m.fit for m in got), key=lambda f: f != MATCHES)
    # knowing less about the packet never rules a candidate out
    less = drop_rules(RULESETS[name], Packet(**{f: None if f == blank else getattr(p, f) for f in FIELDS}))
    assert {(m.family, m.table, m.chain, m.handle) for m in got} <= \
        {(m.family, m.table, m.chain, m.handle) for m in less}


# --- hooks.nft: the packet's way through a hook, as the kernel takes it

HOOKS_RS = parse_json((DATA / "hooks.json").read_text())
HOOKS_TX = rule_texts((DATA / "hooks.txt").read_text())


def way(hook: str, **kw):
    p = pkt(**{**dict(l3="ipv4", l4="udp", saddr="10.0.0.1", daddr="10.0.0.2", sport=5), **kw})
    e = evaluate(HOOKS_RS, p, hook, HOOKS_TX)
    return e, e.cause()


def where(step) -> Tuple[str, str, str, Optional[int]]:
    return (step.family, step.table, step.chain, step.handle)


def test_base_chains_run_in_priority_order():
    e, _ = way("input", dport=1)
    assert e.chains == ("inet a in (priority 10)", "inet b in (priority 20)", "ip c in (priority 30)")
    e, _ = way("input", l3="ipv6", saddr="2001:db8::1", daddr="2001:db8::2", dport=1)
    assert e.chains == ("inet a in (priority 10)", "inet b in (priority 20)")  # an ip table: IPv4 only


def test_the_first_drop_is_the_cause_and_later_tables_are_not_reached():
    e, c = way("input", dport=7005)  # table a's vmap drops it; table b's range would too
    assert where(c.by) == ("inet", "a", "in", 3) and c.by.fit == MATCHES and c.assumed == ()
    assert e.others() == [] and [w.by for w in e.ways] == [c.by]


def test_accept_ends_only_its_base_chain():
    _, c = way("input", dport=7010)  # accepted by a's vmap, then dropped by b
    assert where(c.by) == ("inet", "b", "in", 2) and c.by.text == "udp dport 7000-7200 drop"


def test_negated_accept_before_a_drop_policy():
    e, c = way("input", dport=7400)
    assert where(c.by) == ("ip", "c", "in", None) and c.by.verdict == "policy drop"
    assert e.undecided(c) == ()  # ct state in table a: accepted or not, c drops it
    for port in (7300, 9):  # `udp dport != 7400 accept`: accepted, no rule drops it
        e, c = way("input", dport=port)
        assert c is None and e.others() == [] and {w.end for w in e.ways} == {"accept"}


def test_an_undecidable_rule_before_the_drop_is_named():
    e, c = way("input", dport=7100)
    assert where(c.by) == ("inet", "a", "in", 5)
    ((step, taken),) = e.undecided(c)
    assert (step.text, step.unevaluated, taken) == ("ct state established,related accept",
                                                    ("ct state established,related",), False)
    # had it matched, table b would have dropped it
    assert [where(w.by) for w in e.others()] == [("inet", "b", "in", 2)]
    # before 7150, the same rule changes nothing: b drops it either way
    e, c = way("input", dport=7150)
    assert where(c.by) == ("inet", "b", "in", 2) and e.undecided(c) == () and e.others() == []


def test_jump_return_and_goto():
    e, c = way("prerouting", saddr="10.50.0.1", dport=7550)  # jump check: dropped there
    assert where(c.by) == ("inet", "d", "check", 12)
    e, c = way("prerouting", saddr="10.50.0.1", dport=7500)  # check returns, pre accepts
    assert c is None or where(c.by) != ("inet", "d", "check", 12)
    for sport in (1, 2):  # goto gone: accept, or its return ends pre too: 7601 drop never reached
        e, _ = way("prerouting", dport=7601, sport=sport)
        assert ("inet", "d", "pre", 7) not in {where(w.by) for w in e.ways if w.by}


def test_undecidable_drops_when_no_rule_drops_for_sure():
    e, c = way("prerouting", dport=9)
    assert c is None  # two rules may: the limit and ct state invalid
    assert [where(w.by) for w in e.others()] == [("inet", "d", "pre", 8), ("inet", "d", "pre", 9)]
    assert e.others()[0].by.unevaluated == ("meta mark 0x00000007", "limit rate 1/second")
    e, c = way("prerouting", dport=9, mark=7)
    assert e.others()[0].by.unevaluated == ("limit rate 1/second",)  # the mark is known
    e, c = way("prerouting", dport=9, mark=8)
    assert where(c.by) == ("inet", "d", "pre", 9)  # only ct state invalid is left: the only one that can


def test_nat_chains_see_a_connections_first_packet_only():
    e, c = way("prerouting", dport=7800)
    droppers = [where(w.by) for w in e.ways if w.end == "drop"]
    assert ("inet", "d", "nat_pre", 15) in droppers and c is None
    first = next(w for w in e.ways if w.by and where(w.by) == ("inet", "d", "nat_pre", 15))
    assert [(s.verdict, t) for s, t in first.assumed] == [("entered", True)]


def test_hook_of_another_family_or_hook_is_not_run():
    e, c = way("output", dport=7005)
    assert e.chains == () and c is None and [w.end for w in e.ways] == ["accept"]


@settings(max_examples=100, deadline=None)
@given(p=PACKETS, hook=st.sampled_from(HOOKS), name=st.sampled_from(NAMES + ("hooks",)))
def test_any_packet_any_hook(p, hook, name):
    rs, tx = (HOOKS_RS, HOOKS_TX) if name == "hooks" else (RULESETS[name], TEXTS[name])
    e = evaluate(rs, p, hook, tx)  # never raises
    assert e.ways and all(w.end in ("drop", "accept") for w in e.ways)
    assert sum(1 for w in e.ways if w.default) == 1  # exactly one way matches no undecidable rule
    c = e.cause()
    assert c is None or (c.end == "drop" and c.by is not None and c.by.drops)


def test_iptables_on_nf_tables():
    # its rules are nft rules; what it could not translate is an xt match (not evaluated) or target
    rs = parse_json((DATA / "iptables-nft.json").read_text())
    tx = rule_texts((DATA / "iptables-nft.txt").read_text())
    p = pkt(**V4, l4="udp", sport=5, dport=7900)
    e = evaluate(rs, p, "input", tx)
    c = e.cause()
    assert (c.by.handle, c.by.text, c.by.fit) == (2, "udp dport 7900 counter drop", MATCHES)
    assert [(s.handle, s.unevaluated) for s, _ in e.undecided(c)] == [(3, ("xt match conntrack",))]
    p = pkt(l3="ipv4", l4="tcp", saddr="10.1.1.1", daddr="10.0.0.2", sport=5, dport=22)
    e = evaluate(rs, p, "input", tx)
    c = e.cause()  # the xt target REJECT is a reject; the multiport match is not evaluated
    assert (c.by.handle, c.by.verdict, c.by.fit, c.by.unevaluated) == (4, "reject", MAY_MATCH,
                                                                         ("xt match multiport",))
