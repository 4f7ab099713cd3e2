"""diagnose.iptables: legacy iptables rules walked with the nftables evaluator.

tests/data/iptables/legacy.save is what `iptables-legacy-save` printed (iptables 1.8.9) after
`iptables-legacy-restore < legacy.rules` in a scratch network namespace.
"""
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from droptrace.diagnose.iptables import table_name, to_nft
from droptrace.diagnose.nft import MATCHES, Packet, evaluate

SAVED = (Path(__file__).resolve().parent.parent / "data" / "iptables" / "legacy.save").read_text()
ITEMS, TEXTS = to_nft(SAVED, "ip")
RULESET = {"nftables": ITEMS}
FILTER = table_name("filter")


def way(hook="input", **kw):
    p = Packet(**{**dict(l3="ipv4", l4="udp", saddr="198.18.0.1", daddr="198.18.0.2", sport=5, dport=None,
                         iifname="eth0"), **kw})
    e = evaluate(RULESET, p, hook, TEXTS)
    return e, e.cause()


def test_chains_and_policies():
    chains = {(c["chain"]["table"], c["chain"]["name"]): c["chain"] for c in ITEMS if "chain" in c}
    assert chains[(FILTER, "INPUT")] == {"family": "ip", "table": FILTER, "name": "INPUT", "hook": "input",
                                         "prio": 0, "type": "filter", "policy": "drop"}
    assert chains[(table_name("raw"), "PREROUTING")]["prio"] == -300
    assert "hook" not in chains[(FILTER, "checks")]


def test_the_rule_reached_drops_it():
    e, c = way(saddr="10.1.1.1", dport=53)
    assert (c.by.table, c.by.chain, c.by.fit) == (FILTER, "INPUT", MATCHES)
    assert c.by.text == "-A INPUT -s 10.0.0.0/8 -p udp -m udp --dport 53 -j DROP"
    assert c.by.where() == "iptables-legacy -t filter, chain INPUT, rule 3"  # as iptables -L --line-numbers
    # established or related, it would have been accepted: said first
    assert [s.text for s, _ in e.undecided(c)] == [
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    assert e.undecided(c)[0][0].unevaluated == ("ct state related,established",)


def test_accepted_by_multiport():
    e, c = way(l4="tcp", dport=8050)
    assert c is None and {w.end for w in e.ways} == {"accept"}


def test_jump_into_a_user_chain_and_return():
    _, c = way(dport=10, iifname="veth1")
    assert (c.by.chain, c.by.verdict) == ("checks", "reject")
    _, c = way(dport=6200)  # checks returns: INPUT's policy drops it
    assert (c.by.chain, c.by.verdict) == ("INPUT", "policy drop")
    _, c = way(dport=9)  # `! --dport 9`: no jump, the policy
    assert c.by.verdict == "policy drop"
    _, c = way(dport=7000)  # checks accepts any other UDP
    assert c is None


def test_a_limit_may_decide_first():
    e, c = way(saddr="192.0.2.5", dport=6050)  # from 192.0.2.0/24: no jump to checks
    assert c.by.verdict == "policy drop"
    assert [s.text for s, _ in e.undecided(c)][-1] == \
        "-A INPUT -p udp -m udp --dport 6000:6099 -m limit --limit 5/sec -j ACCEPT"


def test_raw_table_before_everything():
    _, c = way("prerouting", dport=6100)
    assert (c.by.table, c.by.chain) == (table_name("raw"), "PREROUTING")


@given(st.text(max_size=400))
def test_any_text(text):
    items, texts = to_nft(text, "ip6")  # never raises
    assert all(set(x) <= {"chain", "rule"} for x in items)
