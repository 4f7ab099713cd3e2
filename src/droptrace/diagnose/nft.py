"""Which nftables rule dropped a packet, from `nft -j list ruleset`.

A NETFILTER_DROP says that some rule or chain policy dropped the packet, not which: the
ruleset does. evaluate() walks the packet through its hook as the kernel does (base chains by
priority, rules in order, accept ending a base chain, drop ending all, jumps, gotos, verdict
maps, policies last) with every match the packet decides evaluated: addresses, ports,
protocols, interfaces, sets, ranges, prefixes, concatenations, negations. A match it cannot
decide (connection state, rate limits...) splits the way in two, so the answer names the rule
the packet reaches that drops it and, in order, the undecidable rules that may decide first.
drop_rules() is the other view: each dropping rule judged alone, as if the packet reached it.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple, Union

from .iptables import LEGACY, TARGETS

Tri = Optional[bool]  # True, False, or None: cannot tell

MATCHES, MAY_MATCH = "matches", "may match"

# IP protocol numbers under the names nft prints (from /etc/protocols) and droptrace uses.
_PROTOS = {"hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17,
           "dccp": 33, "ipv6": 41, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58,
           "ospf": 89, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136,
           "ethernet": 143, "mptcp": 262}
_PORT_PROTOS = (6, 17, 33, 132, 136)
_L3 = {"ipv4": "ipv4", "ip": "ipv4", "ip4": "ipv4", "ipv6": "ipv6", "ip6": "ipv6", "arp": "arp"}
# meta nfproto and meta protocol (an ethertype), as names or numbers
_NFPROTO = {"ipv4": "ipv4", "ipv6": "ipv6", 2: "ipv4", 10: "ipv6"}
_ETHERTYPE = {"ip": "ipv4", "ip6": "ipv6", "arp": "arp", 0x0800: "ipv4", 0x86DD: "ipv6", 0x0806: "arp"}
# payload protocols with the L3 or L4 protocol their fields imply
_NEEDS_L3 = {"ip": "ipv4", "ip6": "ipv6"}
_NEEDS_L4 = {"tcp": 6, "udp": 17, "dccp": 33, "sctp": 132, "udplite": 136, "icmp": 1, "icmpv6": 58}
_FAMILY_L3 = {"ip": "ipv4", "ip6": "ipv6", "arp": "arp"}
# ICMP and ICMPv6 types under the names nft prints
_ICMP_TYPES = {
    "icmp": {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
             "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11,
             "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15,
             "info-reply": 16, "address-mask-request": 17, "address-mask-reply": 18},
    "icmpv6": {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
               "echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
               "mld-listener-done": 132, "mld-listener-reduction": 132, "nd-router-solicit": 133,
               "nd-router-advert": 134, "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136,
               "nd-redirect": 137, "router-renumbering": 138, "ind-neighbor-solicit": 141,
               "ind-neighbor-advert": 142, "mld2-listener-report": 143}}
_UNSURE_FAMILY = {"netdev": "whether the packet passed this netdev hook",
                  "bridge": "whether the packet was bridged"}
# statements with no bearing on whether the rule's verdict is reached
_SIDE_EFFECTS = {"counter", "log", "mangle", "set", "map", "ct helper", "ct timeout", "ct expectation",
                 "notrack", "dup", "secmark", "last", "comment", "xt_target"}
_NOT_DROP = {"accept", "continue", "return", "jump", "goto", "queue", "fwd", "snat", "dnat",
             "masquerade", "redirect", "tproxy", "synproxy", "flow"}
_UNQUALIFIED_META = {"iif", "oif", "iifname", "oifname", "iiftype", "oiftype", "iifgroup", "oifgroup",
                     "skuid", "skgid", "rtclassid", "cpu", "nftrace"}
_HANDLE = re.compile(r"\s+# handle (\d+)$")
_BLOCKS = ("table", "chain", "set", "map", "flowtable", "counter", "quota", "ct", "limit", "secmark",
           "synproxy", "tunnel")


@dataclass(frozen=True)
class Packet:
    """What droptrace decoded from a dropped packet; any field may be None (not known)."""

    l3: Optional[str]  # "ipv4" | "ipv6" | other
    l4: Union[str, int, None]  # "tcp" | "udp" | "icmp" | "icmpv6" | "sctp" | a protocol number
    saddr: Optional[str]
    daddr: Optional[str]
    sport: Optional[int]
    dport: Optional[int]
    iifname: Optional[str] = None
    oifname: Optional[str] = None
    mark: Optional[int] = None
    icmp_type: Optional[int] = None  # for ICMP and ICMPv6


@dataclass(frozen=True)
class RuleMatch:
    family: str
    table: str
    chain: str
    handle: Optional[int]  # None for a chain's policy
    verdict: str  # "drop", "reject", or "policy drop" (a base chain whose policy drops)
    fit: str  # "matches" (every condition holds) or "may match" (some could not be evaluated)
    text: str  # the rule as `nft -a list ruleset` prints it (without "# handle N"), or "policy drop"
    unevaluated: Tuple[str, ...]  # what could not be evaluated, briefly


def parse_json(text: str) -> dict:
    """`nft -j list ruleset` output -> {"nftables": [...]}; ValueError if it is not that."""
    if not text or not text.strip():
        raise ValueError("nft -j list ruleset printed nothing")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ValueError(f"nft -j list ruleset did not print JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        raise ValueError('nft -j list ruleset printed JSON without an "nftables" list')
    if not all(isinstance(x, dict) for x in doc["nftables"]):
        raise ValueError('the "nftables" list of nft -j list ruleset holds something other than objects')
    return doc


def rule_texts(text: str) -> Dict[Tuple[str, str, str, int], str]:
    """`nft -a list ruleset` output -> {(family, table, chain, handle): rule as printed}."""
    out: Dict[Tuple[str, str, str, int], str] = {}
    stack: List[Tuple[str, str]] = []  # open blocks: (keyword, name)
    family = table = ""
    for raw in text.splitlines():
        line = raw.strip()
        m = _HANDLE.search(line)
        body = line[:m.start()].rstrip() if m else line
        if m and len(stack) == 2 and stack[1][0] == "chain" and not body.endswith("{"):
            out[(family, table, stack[1][1], int(m.group(1)))] = uncounted(body)
        elif body.endswith("{") and body.split(None, 1)[0] in _BLOCKS:
            words = body[:-1].split()
            if words[0] == "table" and len(words) == 3 and not stack:
                family, table = words[1], _unquote(words[2])
            stack.append((words[0], _unquote(words[-1]) if len(words) > 1 else ""))
        elif body == "}" and stack:
            stack.pop()
    return out


def drop_rules(ruleset: dict, pkt: Packet,
               texts: Optional[Dict[Tuple[str, str, str, int], str]] = None) -> List[RuleMatch]:
    """Every rule (and base chain policy) that drops or rejects, each judged alone, as if the
    packet reached it: those whose conditions hold ("matches") or may hold ("may match"),
    matches first. What the packet really meets on its way is evaluate()'s answer; this is
    the list of what could drop such a packet anywhere in the ruleset."""
    model = Ruleset(ruleset, texts)
    found: List[RuleMatch] = []
    l3 = _l3(pkt.l3)
    for key, c in model.chains.items():
        if not _family_sees(key[0], l3):
            continue
        ctx = model.ctx(pkt, key[0], key[1])
        for r in model.rules.get(key, []):
            j = model.judge(ctx, r)
            drops = [o for o in j.options if o.verdict[0] in ("drop", "reject") and o.fit is not False]
            if j.fit is False or not drops:
                continue
            doubts = _family_doubt(key[0]) + j.doubts + tuple(d for o in drops for d in o.doubts)
            certain = not doubts and any(o.fit is True for o in drops)
            found.append(RuleMatch(key[0], key[1], key[2], _int(r.get("handle")), drops[0].verdict[0],
                                   MATCHES if certain else MAY_MATCH, j.text, _unique(doubts)))
        if c.get("hook") and c.get("policy") == "drop":
            found.append(RuleMatch(key[0], key[1], key[2], None, "policy drop", MAY_MATCH, "policy drop",
                                   _family_doubt(key[0]) + ("whether an earlier rule accepted it",)))
    return [m for m in found if m.fit == MATCHES] + [m for m in found if m.fit != MATCHES]


# --- the packet's way through the hook, as the kernel takes it

HOOKS = ("ingress", "prerouting", "input", "forward", "output", "postrouting", "egress")
MAX_WAYS = 256  # ways explored through undecidable rules before the rest are assumed not to match
MAX_DEPTH = 16  # jumps deep (the kernel allows 16 too)
_L3_HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
_TERMINAL_ACCEPT = {"accept", "queue", "snat", "dnat", "masquerade", "redirect", "fwd"}
Verdict = Tuple[str, Optional[str]]  # ("drop", None), ("jump", "chain"), ...


@dataclass(frozen=True)
class Step:
    """A rule (or a base chain's policy) on the packet's way that decides, or may decide."""

    family: str
    table: str
    chain: str
    handle: Optional[int]  # None for a policy
    verdict: str  # "drop", "reject", "accept", "jump NAME", ..., "policy drop", "policy accept"
    fit: str  # MATCHES or MAY_MATCH
    text: str  # the rule as nft prints it, or "policy drop"
    unevaluated: Tuple[str, ...]  # why it may match: what could not be evaluated

    def where(self) -> str:
        if self.table.startswith(LEGACY):  # a legacy iptables rule, numbered as iptables -L does
            tool = "iptables-legacy" if self.family == "ip" else "ip6tables-legacy"
            return f"{tool} -t {self.table[len(LEGACY):]}, chain {self.chain}" + (
                f", rule {self.handle}" if self.handle is not None else "")
        return f"table {self.family} {self.table}, chain {self.chain}" + (
            f", handle {self.handle}" if self.handle is not None else "")

    @property
    def drops(self) -> bool:
        return self.verdict in ("drop", "reject", "policy drop")


Assumption = Tuple[Step, bool]  # an undecidable rule and whether the way takes its verdict


@dataclass(frozen=True)
class Way:
    """One way through the hook: how it ends, the rule that ends it, and what it assumed."""

    end: str  # "drop" | "accept"
    by: Optional[Step]  # the dropping rule or policy; for "accept" the last verdict, None: no rule
    assumed: Tuple[Assumption, ...]

    @property
    def default(self) -> bool:
        """The way of a packet that matches none of the undecidable rules."""
        return not any(taken for _, taken in self.assumed)


@dataclass(frozen=True)
class Evaluation:
    """The packet at one hook: its base chains in the kernel's order and every way through them."""

    hook: str
    chains: Tuple[str, ...]  # "inet a in (priority 10)", in the order they run
    ways: Tuple[Way, ...]
    truncated: bool  # more undecidable rules than MAX_WAYS ways could follow

    def cause(self) -> Optional[Way]:
        """The way that drops: the default way if it drops, else the only rule that can."""
        default = next((w for w in self.ways if w.default), None)
        if default is not None and default.end == "drop":
            return default
        droppers = {w.by for w in self.ways if w.end == "drop"}
        if len(droppers) == 1:
            return next(w for w in self.ways if w.end == "drop")
        return None

    def undecided(self, way: Way) -> Tuple[Assumption, ...]:
        """The undecidable rules met on the way before its end whose other outcome leads to
        another end, in order: those that may decide instead (rules that change nothing about
        how the packet ends are left out)."""
        elsewhere = {s for w in self.ways if (w.end, w.by) != (way.end, way.by)
                     for s, taken in w.assumed if taken}
        elsewhere |= {s for w in self.ways if (w.end, w.by) != (way.end, way.by)
                      for s, taken in w.assumed if not taken and (s, True) in way.assumed}
        return tuple((s, taken) for s, taken in way.assumed if s != way.by and s in elsewhere)

    def others(self) -> List[Way]:
        """The other ways that drop, each with its own dropping rule (first way of each)."""
        cause = self.cause()
        seen = {cause.by} if cause else set()
        out = []
        for w in self.ways:
            if w.end == "drop" and w.by not in seen:
                seen.add(w.by)
                out.append(w)
        return out


def evaluate(ruleset: dict, pkt: Packet, hook: str,
             texts: Optional[Dict[Tuple[str, str, str, int], str]] = None) -> Evaluation:
    """pkt at one hook, as nf_hook runs the base chains: in priority order; in a chain, rules
    in order; accept ends that base chain (the next one still runs), drop and reject end it
    all; jump, goto and verdict maps followed; a base chain's policy when its rules fall
    through. A rule that cannot be evaluated from the packet alone (ct state, limits...) makes
    two ways, one where it matches and one where it does not."""
    return _Walk(Ruleset(ruleset, texts), pkt).hook(hook)


class Ruleset:
    """`nft -j list ruleset` indexed: chains, their rules, sets and maps."""

    def __init__(self, doc: dict, texts: Optional[Dict[Tuple[str, str, str, int], str]] = None) -> None:
        self.texts = texts or {}
        self.sets: Dict[Tuple[str, str, str], list] = {}
        self.chains: Dict[Tuple[str, str, str], dict] = {}
        self.rules: Dict[Tuple[str, str, str], List[dict]] = {}
        self.order: List[Tuple[str, str, str]] = []
        items = [x for x in (doc.get("nftables") or []) if isinstance(x, dict)]
        for item in items:
            for kind in ("set", "map"):
                s = item.get(kind)
                if isinstance(s, dict):
                    elem = s.get("elem")
                    self.sets[(str(s.get("family")), str(s.get("table")), str(s.get("name")))] = (
                        elem if isinstance(elem, list) else [])
            c, r = item.get("chain"), item.get("rule")
            if isinstance(c, dict):
                key = (str(c.get("family")), str(c.get("table")), str(c.get("name")))
                self.chains[key] = c
                self.order.append(key)
            if isinstance(r, dict):
                self.rules.setdefault((str(r.get("family")), str(r.get("table")), str(r.get("chain"))),
                                      []).append(r)
        self.sets_mark = _sets_mark(items)
        self._judged: Dict[Tuple[int, Packet], _Judged] = {}

    def ctx(self, pkt: Packet, family: str, table: str) -> "_Ctx":
        l3 = _l3(pkt.l3)
        if self.sets_mark:  # the mark seen at the drop may have been set by a rule since
            pkt = replace(pkt, mark=None)
        return _Ctx(pkt, l3 or _FAMILY_L3.get(family), self.sets, family, table)

    def judge(self, ctx: "_Ctx", r: dict) -> "_Judged":
        key = (id(r), ctx.pkt)  # a rule is in one table: its family and sets are always the same
        j = self._judged.get(key)
        if j is None:
            j = self._judged[key] = _judge(ctx, r, self.texts)
        return j


class _Walk:
    def __init__(self, model: Ruleset, pkt: Packet) -> None:
        self.model, self.pkt = model, pkt
        self.l3 = _l3(pkt.l3)
        self.ways = 1
        self.truncated = False
        self._ctx: Dict[Tuple[str, str], _Ctx] = {}

    def hook(self, hook: str) -> Evaluation:
        bases = [k for k in self.model.order if self._runs(k, hook)]
        bases.sort(key=lambda k: _prio(self.model.chains[k].get("prio")))  # stable: ruleset order on ties
        done: List[Way] = []
        going: List[Tuple[Assumption, ...]] = [()]
        for key in bases:
            c = self.model.chains[key]
            nxt: List[Tuple[Assumption, ...]] = []
            for assumed in going:
                for end, step, way in self._entered(key, c, assumed):
                    if end == "drop":
                        done.append(Way("drop", step, way))
                    else:
                        nxt.append(way)
            going = nxt
        done += [Way("accept", None, a) for a in going]
        chains = tuple(f"{k[0]} {k[1]} {k[2]} (priority {self.model.chains[k].get('prio')})" for k in bases)
        return Evaluation(hook, chains, tuple(done), self.truncated)

    def _runs(self, key: Tuple[str, str, str], hook: str) -> bool:
        c = self.model.chains[key]
        if c.get("hook") != hook or not _family_sees(key[0], self.l3):
            return False
        if key[0] == "bridge":
            return False  # bridged frames take the bridge's hooks, not the IP stack's
        dev = c.get("dev")
        name = self.pkt.iifname if hook == "ingress" else self.pkt.oifname if hook == "egress" else None
        if dev is not None and name is not None:
            devs = dev if isinstance(dev, list) else [dev]
            return name in devs
        return True

    def _entered(self, key, c: dict, assumed: Tuple[Assumption, ...]):
        """A base chain: its rules, then its policy if they fall through."""
        if c.get("type") == "nat":  # only the first packet of a connection meets a nat chain
            entry = Step(key[0], key[1], key[2], None, "entered", MAY_MATCH, f"type nat hook {c.get('hook')}",
                         ("whether this is its connection's first packet (nat chains see only that one)",))
            ways = [(True, assumed + ((entry, True),)), (False, assumed + ((entry, False),))]
        else:
            ways = [(True, assumed)]
        for enter, a in ways:
            if not enter:
                yield "accept", None, a
                continue
            for end, step, way in self._rules(key, 0, a, 0):
                if end == "return":
                    policy = str(c.get("policy") or "accept")
                    text = f"policy {policy}"
                    step = Step(key[0], key[1], key[2], None, text, MATCHES, text, ())
                    end = "drop" if policy == "drop" else "accept"
                yield end, step, way

    def _rules(self, key, i: int, assumed: Tuple[Assumption, ...], depth: int):
        """The rules of a chain from the i-th: yields (end, step, assumed), end in drop, accept, return."""
        rules = self.model.rules.get(key, [])
        while i < len(rules):
            r = rules[i]
            ctx = self._context(key)
            j = self.model.judge(ctx, r)
            if j.fit is False or not j.options:
                i += 1
                continue
            certain = False
            for o in j.options:
                fit = _and(j.fit, o.fit)
                if fit is False:
                    continue
                doubts = _unique(j.doubts + o.doubts)
                step = Step(key[0], key[1], key[2], _int(r.get("handle")), _verdict_text(o.verdict),
                            MATCHES if fit else MAY_MATCH, j.text, doubts)
                if fit is True:
                    certain = True
                    yield from self._verdict(key, i, o.verdict, step, assumed, depth)
                    break
                if self.ways >= MAX_WAYS:
                    self.truncated = True
                    continue
                self.ways += 1
                yield from self._verdict(key, i, o.verdict, step, assumed + ((step, True),), depth)
            if certain:
                return
            # the way on which the rule did not match: remember what was passed undecided
            step = Step(key[0], key[1], key[2], _int(r.get("handle")), _verdict_text(j.options[0].verdict),
                        MAY_MATCH, j.text, _unique(j.doubts + tuple(d for o in j.options for d in o.doubts)))
            assumed = assumed + ((step, False),)
            i += 1
        yield "return", None, assumed

    def _verdict(self, key, i: int, verdict: Verdict, step: Step, assumed, depth: int):
        kind, target = verdict
        if kind in ("drop", "reject"):
            yield "drop", step, assumed
        elif kind in _TERMINAL_ACCEPT:
            yield "accept", step, assumed
        elif kind == "return":
            yield "return", step, assumed
        elif kind == "continue":
            yield from self._rules(key, i + 1, assumed, depth)
        elif kind in ("jump", "goto") and target is not None and depth < MAX_DEPTH:
            called = (key[0], key[1], target)
            for end, s, a in self._rules(called, 0, assumed, depth + 1):
                if end == "return" and kind == "jump":
                    yield from self._rules(key, i + 1, a, depth)
                else:  # goto: its return is the calling chain's return
                    yield end, s, a
        else:
            yield from self._rules(key, i + 1, assumed, depth)

    def _context(self, key) -> "_Ctx":
        c = self._ctx.get(key[:2])
        if c is None:
            c = self._ctx[key[:2]] = self.model.ctx(self.pkt, key[0], key[1])
        return c


def _family_sees(family: str, l3: Optional[str]) -> bool:
    """Can a packet of this L3 protocol meet a table of this family (None: not known)?"""
    if l3 is None:
        return True
    if family in _FAMILY_L3:
        return _FAMILY_L3[family] == l3
    return family != "inet" or l3 in ("ipv4", "ipv6")


def _prio(p: Any) -> int:
    n = _int(p)
    return n if n is not None else 0


def _verdict_text(v: Verdict) -> str:
    return v[0] if v[1] is None else f"{v[0]} {v[1]}"


def _unique(xs: Tuple[str, ...]) -> Tuple[str, ...]:
    return tuple(dict.fromkeys(xs))


def _sets_mark(items: List[dict]) -> bool:
    """Does any rule set the packet's mark (`meta mark set ...`)?"""
    for item in items:
        r = item.get("rule")
        for x in (r.get("expr") if isinstance(r, dict) and isinstance(r.get("expr"), list) else []):
            m = x.get("mangle") if isinstance(x, dict) else None
            if isinstance(m, dict) and m.get("key") == {"meta": {"key": "mark"}}:
                return True
    return False


@dataclass(frozen=True)
class _Ctx:
    pkt: Packet
    l3: Optional[str]  # the packet's, or what the table's family implies
    sets: Dict[Tuple[str, str, str], list]
    family: str
    table: str

    def named(self, ref: str) -> Optional[list]:
        return self.sets.get((self.family, self.table, ref[1:]))


@dataclass(frozen=True)
class _Option:
    fit: Tri  # does this verdict apply (for a verdict map: does the key equal this element)
    verdict: Verdict
    doubts: Tuple[str, ...]


@dataclass(frozen=True)
class _Judged:
    fit: Tri  # do the rule's matches hold
    doubts: Tuple[str, ...]  # the matches that could not be evaluated
    options: Tuple[_Option, ...]  # its verdicts: one, or a verdict map's; none: it only counts, logs...
    text: str


def _judge(ctx: _Ctx, r: dict, texts: Dict[Tuple[str, str, str, int], str]) -> _Judged:
    """One rule against the packet: do its matches hold, and what verdict would it give."""
    exprs = r.get("expr")
    chain, handle = str(r.get("chain")), _int(r.get("handle"))
    text = texts.get((ctx.family, ctx.table, chain, handle)) if handle is not None else None
    if text is None:
        text = " ".join(_show(x) for x in exprs or ())
        text += f' comment "{r["comment"]}"' if "comment" in r else ""
    if not isinstance(exprs, list):
        return _Judged(False, (), (), text)
    doubts: List[str] = []
    fit: Tri = True
    for x in exprs:
        if not isinstance(x, dict) or len(x) != 1:
            doubts.append(_show(x))
            fit = _and(fit, None)
            continue
        (kind, val), = x.items()
        verdict = _as_verdict(x)
        if verdict is not None:
            return _Judged(fit, tuple(doubts), (_Option(True, verdict, ()),), text)
        if kind == "vmap":
            return _Judged(fit, tuple(doubts), _vmap(ctx, val, _show(x)), text)
        if kind == "match":
            m = _match(ctx, val) if isinstance(val, dict) else None
            if m is False:
                return _Judged(False, tuple(doubts), (), text)
            if m is None:
                doubts.append(_show(x))
                fit = None
        elif kind not in _SIDE_EFFECTS and kind not in _NOT_DROP:
            doubts.append(_show(x))  # limit, quota, xt matches, ...
            fit = None
    return _Judged(fit, tuple(doubts), (), text)


def _as_verdict(x: Any) -> Optional[Verdict]:
    """A verdict statement ({"drop": null}, {"jump": {"target": "x"}}, ...) or None."""
    if not isinstance(x, dict) or len(x) != 1:
        return None
    (kind, val), = x.items()
    if kind in ("jump", "goto"):
        target = val.get("target") if isinstance(val, dict) else None
        return (kind, str(target)) if target is not None else None
    if kind in ("drop", "reject", "return", "continue") or kind in _TERMINAL_ACCEPT:
        return kind, None
    if kind == "xt" and isinstance(val, dict) and val.get("type") == "target" and val.get("name") in TARGETS:
        return TARGETS[val["name"]], None  # iptables-nft's REJECT, MASQUERADE...
    return None


def _family_doubt(family: str) -> Tuple[str, ...]:
    return (_UNSURE_FAMILY[family],) if family in _UNSURE_FAMILY else ()


def _vmap(ctx: _Ctx, v: Any, shown: str) -> Tuple[_Option, ...]:
    """A verdict map's possible verdicts for this packet: the element its key equals, or each
    element it may equal when the key cannot be evaluated."""
    if not isinstance(v, dict):
        return ()
    data = v.get("data")
    pairs = ctx.named(data) if isinstance(data, str) and data.startswith("@") else (
        data.get("set") if isinstance(data, dict) else None)
    out: List[_Option] = []
    for p in pairs if isinstance(pairs, list) else ():
        verdict = _as_verdict(p[1]) if isinstance(p, list) and len(p) == 2 else None
        if verdict is None:
            continue
        fit = _match(ctx, {"op": "==", "left": v.get("key"), "right": p[0]})
        if fit is True:
            return tuple(out) + (_Option(True, verdict, ()),)
        if fit is None:
            out.append(_Option(None, verdict, (shown,)))
    return tuple(out)


def _match(ctx: _Ctx, m: dict) -> Tri:
    """One match expression against the packet: True, False, or None (cannot tell)."""
    op = m.get("op", "==")
    got = _left(ctx, m.get("left"))
    if got is None:
        return None
    needs, kind, value = got
    if needs is False:
        return False
    if value is None:
        return None
    right = m.get("right")
    if op in ("==", "in", "implicit"):
        fit = _member(ctx, kind, value, right)
    elif op == "!=":
        fit = _member(ctx, kind, value, right)
        fit = None if fit is None else not fit
    elif op in ("<", ">", "<=", ">=") and isinstance(value, int):
        n = _int(right)
        if n is None:
            return None
        fit = {"<": value < n, ">": value > n, "<=": value <= n, ">=": value >= n}[op]
    else:
        return None
    return _and(needs, fit)


def _left(ctx: _Ctx, left: Any) -> Optional[Tuple[Tri, str, Any]]:
    """The left side of a match -> (does the packet have this header, kind, its value), or
    None if it is not something this module evaluates."""
    pkt = ctx.pkt
    if not isinstance(left, dict) or len(left) != 1:
        return None
    (what, spec), = left.items()
    if what == "concat" and isinstance(spec, list):  # `ip saddr . tcp dport`: each part, in order
        parts = [_left(ctx, x) for x in spec]
        if any(p is not None and p[0] is False for p in parts):
            return False, "", None
        if any(p is None or p[2] is None for p in parts):
            return None
        needs: Tri = True
        for p in parts:
            needs = _and(needs, p[0])  # type: ignore[index]
        return needs, "concat", tuple((p[1], p[2]) for p in parts)  # type: ignore[index]
    if not isinstance(spec, dict):
        return None
    if what == "payload":
        proto, field = spec.get("protocol"), spec.get("field")
        if proto in _NEEDS_L3:
            needs = _eq(ctx.l3, _NEEDS_L3[proto])
            if field in ("saddr", "daddr"):
                return needs, "addr", _addr(pkt.saddr if field == "saddr" else pkt.daddr)
            if (proto, field) in (("ip", "protocol"), ("ip6", "nexthdr")):
                return needs, "proto", _proto(pkt.l4)
            return (False, "", None) if needs is False else None
        if proto in _NEEDS_L4 or proto == "th":
            l4 = _proto(pkt.l4)
            if proto == "th":
                needs = True if l4 in _PORT_PROTOS else None
            else:
                needs = _eq(l4, _NEEDS_L4[proto]) if isinstance(l4, int) or l4 is None else False
            if field in ("sport", "dport") and proto not in ("icmp", "icmpv6"):
                return needs, "int", _int(pkt.sport if field == "sport" else pkt.dport)
            if field == "type" and proto in _ICMP_TYPES:
                return needs, proto, _int(pkt.icmp_type)
            return (False, "", None) if needs is False else None
        return None
    if what == "meta":
        key = spec.get("key")
        if key == "l4proto":
            return True, "proto", _proto(pkt.l4)
        if key == "nfproto":
            return True, "nfproto", ctx.l3 if ctx.l3 in ("ipv4", "ipv6") else None
        if key == "protocol":
            return True, "ethertype", ctx.l3
        if key in ("iifname", "oifname", "iif", "oif"):  # nft lists iif/oif by the device's name
            name = pkt.iifname if key.startswith("i") else pkt.oifname
            return True, "ifname", name if isinstance(name, str) else None
        if key == "mark":
            return True, "int", _int(pkt.mark)
    return None


def _member(ctx: _Ctx, kind: str, value: Any, right: Any) -> Tri:
    """Is value in right: a literal, prefix, range, anonymous set or @named set?"""
    if isinstance(right, str) and right.startswith("@"):
        elems = ctx.named(right)
        if elems is None:
            return None
    elif isinstance(right, dict) and "set" in right:
        elems = right["set"] if isinstance(right["set"], list) else [right["set"]]
    else:
        elems = [right]
    out: Tri = False
    for e in elems:
        fit = _one(kind, value, e)
        if fit:
            return True
        if fit is None:
            out = None
    return out


def _one(kind: str, value: Any, e: Any) -> Tri:
    if isinstance(e, dict) and isinstance(e.get("elem"), dict):  # element with timeout/comment
        e = e["elem"].get("val")
    if kind == "concat":
        items = e.get("concat") if isinstance(e, dict) else None
        if not isinstance(items, list) or len(items) != len(value):
            return None
        fit: Tri = True
        for (k, v), x in zip(value, items):
            fit = _and(fit, _one(k, v, x))
        return fit
    if isinstance(e, dict) and isinstance(e.get("prefix"), dict) and kind == "addr":
        try:
            net = ipaddress.ip_network(f"{e['prefix'].get('addr')}/{e['prefix'].get('len')}", strict=False)
        except ValueError:
            return None
        return net.version == value.version and value in net
    if isinstance(e, dict) and isinstance(e.get("range"), list) and len(e["range"]) == 2:
        lo, hi = (_literal(kind, x) for x in e["range"])
        if lo is None or hi is None or type(lo) is not type(hi):
            return None
        if kind == "addr" and lo.version != value.version:
            return False
        return lo <= value <= hi if type(lo) is type(value) else None
    lit = _literal(kind, e)
    if lit is None:
        return None
    if kind == "ifname":
        if lit.endswith("*") and not lit.endswith("\\*"):
            return value.startswith(lit[:-1])
        return value == lit.replace("\\*", "*")
    if kind == "proto" and isinstance(value, str) != isinstance(lit, str):
        return None  # a protocol name we have no number for
    if kind == "addr" and value.version != lit.version:
        return False
    return value == lit


def _literal(kind: str, x: Any) -> Any:
    """A literal from the ruleset, as the kind of value it is compared with (None if unreadable)."""
    if isinstance(x, dict) or isinstance(x, list):
        return None
    if kind == "addr":
        return _addr(x)
    if kind == "int":
        return _int(x)
    if kind == "proto":
        return _proto(x)
    if kind == "ifname":
        return x if isinstance(x, str) else None
    if kind == "nfproto":
        return _NFPROTO.get(x.lower() if isinstance(x, str) else _int(x))
    if kind == "ethertype":
        return _ETHERTYPE.get(x.lower() if isinstance(x, str) else _int(x))
    if kind in _ICMP_TYPES:
        return _ICMP_TYPES[kind].get(x) if isinstance(x, str) and _int(x) is None else _int(x)
    return None


def _and(a: Tri, b: Tri) -> Tri:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _eq(a: Any, b: Any) -> Tri:
    return None if a is None else a == b


def _l3(x: Any) -> Optional[str]:
    if not isinstance(x, str) or not x:
        return None
    return _L3.get(x.lower(), x.lower())


def _proto(x: Any) -> Union[int, str, None]:
    """An L4 protocol as its number; a name with no known number stays a (lowercase) name."""
    if isinstance(x, str):
        n = _int(x)
        return n if n is not None else _PROTOS.get(x.lower(), x.lower() or None)
    return _int(x)


def _int(x: Any) -> Optional[int]:
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, str):
        try:
            return int(x, 0)
        except ValueError:
            return None
    return None


def _addr(x: Any) -> Union[ipaddress.IPv4Address, ipaddress.IPv6Address, None]:
    if not isinstance(x, str):
        return None
    try:
        return ipaddress.ip_address(x)
    except ValueError:
        return None


def uncounted(rule: str) -> str:
    """The rule as written: without its counter's running values (`counter packets 3 bytes 84`)."""
    return re.sub(r" packets \d+ bytes \d+", "", rule)


def _unquote(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def _show(x: Any) -> str:
    """An expression or statement, roughly as nft prints it."""
    if isinstance(x, list):  # flags: ct state { established, related } prints them with commas
        return ",".join(_show(y) for y in x)
    if not isinstance(x, dict) or len(x) != 1:
        return "null" if x is None else str(x)
    (kind, v), = x.items()
    if kind == "match" and isinstance(v, dict):
        left, right, op = v.get("left"), v.get("right"), v.get("op", "==")
        meta = left.get("meta") if isinstance(left, dict) else None
        key = meta.get("key") if isinstance(meta, dict) else None
        if key in ("iifname", "oifname") and isinstance(right, str):
            shown = f'"{right}"'
        elif key == "mark" and isinstance(right, int):
            shown = f"0x{right:08x}"
        else:
            shown = _show(right)
        binop = isinstance(left, dict) and any(k in left for k in ("&", "|", "^", "<<", ">>"))
        if op in ("==", "in", "implicit") and not binop:
            return f"{_show(left)} {shown}"
        return f"{_show(left)} {op} {shown}"
    if isinstance(v, list):
        if kind == "set":
            return "{ " + ", ".join(_show(y) for y in v) + " }"
        if kind == "range":
            return "-".join(_show(y) for y in v)
        if kind in ("&", "|", "^", "<<", ">>"):
            return f" {kind} ".join(_show(y) for y in v)
        return " . ".join(_show(y) for y in v)  # concat
    if not isinstance(v, dict):
        return kind if v is None else f"{kind} {_show(v)}"
    if kind == "payload":
        if "protocol" in v:
            return f"{v.get('protocol')} {v.get('field')}"
        return f"@{v.get('base')},{v.get('offset')},{v.get('len')}"
    if kind == "meta":
        key = v.get("key")
        return str(key) if key in _UNQUALIFIED_META else f"meta {key}"
    if kind == "ct":
        return " ".join(str(p) for p in ("ct", v.get("dir"), v.get("key")) if p)
    if kind == "fib":
        flags = v.get("flags")
        flags = " . ".join(map(str, flags)) if isinstance(flags, list) else str(flags)
        return f"fib {flags} {v.get('result')}"
    if kind == "prefix":
        return f"{v.get('addr')}/{v.get('len')}"
    if kind == "elem":
        return _show(v.get("val"))
    if kind == "vmap":
        data = v.get("data")
        pairs = data.get("set") if isinstance(data, dict) else None
        if isinstance(pairs, list):
            data = "{ " + ", ".join(f"{_show(p[0])} : {_show(p[1])}" for p in pairs
                                    if isinstance(p, list) and len(p) == 2) + " }"
        return f"{_show(v.get('key'))} vmap {data}"
    if kind == "limit":
        return f"limit rate {v.get('rate')}/{v.get('per')}"
    if kind in ("jump", "goto"):
        return f"{kind} {v.get('target')}"
    if kind == "reject":
        if v.get("type") in (None, "icmpx") and v.get("expr") in (None, "port-unreachable"):
            return "reject"  # the default
        return f"reject with {v.get('type')} {v.get('expr') or ''}".rstrip()
    if kind == "xt":
        return " ".join(str(p) for p in ("xt", v.get("type"), v.get("name")) if p)
    if kind == "log" and "prefix" in v:
        return f'log prefix "{v["prefix"]}"'
    return kind


__all__ = ["Packet", "RuleMatch", "Step", "Way", "Evaluation", "Ruleset", "HOOKS", "parse_json", "rule_texts",
           "drop_rules", "evaluate", "uncounted", "MATCHES", "MAY_MATCH"]
