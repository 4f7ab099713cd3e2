"""Which nftables rules could have dropped a packet, from `nft -j list ruleset`.

A NETFILTER_DROP says that some rule or chain policy dropped the packet, not which: the
ruleset does. Matching the decoded packet against the conditions of every rule that drops
or rejects leaves the few candidates, each told apart as one whose conditions all hold
("matches") or one with conditions a packet alone cannot settle, such as connection state
or rate limits ("may match"). Jumps are not followed: each chain is judged on its own, so a
candidate is a rule that drops the packet if the packet reaches it.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

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
            out[(family, table, stack[1][1], int(m.group(1)))] = body
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
    """The rules (and base chain policies) in ruleset that could have dropped pkt: those that
    drop or reject and whose conditions hold ("matches") or may hold ("may match"), matches
    first, each group in ruleset order. A policy drop is always "may match": an earlier rule
    may have accepted the packet."""
    items = [x for x in (ruleset.get("nftables") or []) if isinstance(x, dict)]
    sets: Dict[Tuple[str, str, str], list] = {}
    chains: List[dict] = []
    rules: Dict[Tuple[str, str, str], List[dict]] = {}
    for item in items:
        for kind in ("set", "map"):
            s = item.get(kind)
            if isinstance(s, dict):
                elem = s.get("elem")
                sets[(str(s.get("family")), str(s.get("table")), str(s.get("name")))] = (
                    elem if isinstance(elem, list) else [])
        c, r = item.get("chain"), item.get("rule")
        if isinstance(c, dict):
            chains.append(c)
        if isinstance(r, dict):
            rules.setdefault((str(r.get("family")), str(r.get("table")), str(r.get("chain"))), []).append(r)
    found: List[RuleMatch] = []
    l3 = _l3(pkt.l3)
    for c in chains:
        key = (str(c.get("family")), str(c.get("table")), str(c.get("name")))
        if l3 is not None and key[0] in _FAMILY_L3 and _FAMILY_L3[key[0]] != l3:
            continue
        if l3 is not None and l3 not in ("ipv4", "ipv6") and key[0] == "inet":
            continue
        ctx = _Ctx(pkt, l3 or _FAMILY_L3.get(key[0]), sets, key[0], key[1])
        for r in rules.get(key, []):
            m = _rule(ctx, r, texts or {})
            if m is not None:
                found.append(m)
        if c.get("hook") and c.get("policy") == "drop":
            found.append(RuleMatch(key[0], key[1], key[2], None, "policy drop", MAY_MATCH, "policy drop",
                                   _family_doubt(key[0]) + ("whether an earlier rule accepted it",)))
    return [m for m in found if m.fit == MATCHES] + [m for m in found if m.fit != MATCHES]


@dataclass(frozen=True)
class _Ctx:
    pkt: Packet
    l3: Optional[str]  # the packet's, or what the table's family implies
    sets: Dict[Tuple[str, str, str], list]
    family: str
    table: str

    def named(self, ref: str) -> Optional[list]:
        return self.sets.get((self.family, self.table, ref[1:]))


def _rule(ctx: _Ctx, r: dict, texts: Dict[Tuple[str, str, str, int], str]) -> Optional[RuleMatch]:
    exprs = r.get("expr")
    if not isinstance(exprs, list):
        return None
    verdict: Optional[str] = None
    doubts: List[str] = list(_family_doubt(ctx.family))
    for x in exprs:
        if not isinstance(x, dict) or len(x) != 1:
            doubts.append(_show(x))
            continue
        (kind, val), = x.items()
        if kind in ("drop", "reject"):
            verdict = kind
        elif kind == "vmap":
            fit = _vmap(ctx, val)
            if fit is False:
                return None
            verdict = "drop"
            if fit is None:
                doubts.append(_show(x))
        elif kind == "match":
            fit = _match(ctx, val) if isinstance(val, dict) else None
            if fit is False:
                return None
            if fit is None:
                doubts.append(_show(x))
        elif kind not in _SIDE_EFFECTS and kind not in _NOT_DROP:
            doubts.append(_show(x))  # limit, quota, xt matches, ...
    if verdict is None:
        return None
    chain, handle = str(r.get("chain")), _int(r.get("handle"))
    text = texts.get((ctx.family, ctx.table, chain, handle)) if handle is not None else None
    if text is None:
        text = " ".join(_show(x) for x in exprs) + (f' comment "{r["comment"]}"' if "comment" in r else "")
    return RuleMatch(ctx.family, ctx.table, chain, handle, verdict, MAY_MATCH if doubts else MATCHES,
                     text, tuple(doubts))


def _family_doubt(family: str) -> Tuple[str, ...]:
    return (_UNSURE_FAMILY[family],) if family in _UNSURE_FAMILY else ()


def _vmap(ctx: _Ctx, v: Any) -> Tri:
    """A verdict map: False if it cannot drop this packet, True if it drops it, None: may."""
    if not isinstance(v, dict):
        return None
    data = v.get("data")
    pairs = ctx.named(data) if isinstance(data, str) and data.startswith("@") else (
        data.get("set") if isinstance(data, dict) else None)
    if not isinstance(pairs, list):
        return None
    drops = [p[0] for p in pairs if isinstance(p, list) and len(p) == 2 and _is_drop(p[1])]
    if not drops:
        return False
    return _match(ctx, {"op": "==", "left": v.get("key"), "right": {"set": drops}})


def _is_drop(verdict: Any) -> bool:
    return isinstance(verdict, dict) and "drop" in verdict


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
    if what == "concat" and isinstance(spec, list):  # not evaluated, but its parts imply headers
        parts = [_left(ctx, x) for x in spec]
        return (False, "", None) if any(p is not None and p[0] is False for p in parts) else None
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
        if key in ("iifname", "oifname"):
            name = pkt.iifname if key == "iifname" else pkt.oifname
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


def _unquote(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def _show(x: Any) -> str:
    """An expression or statement, roughly as nft prints it."""
    if isinstance(x, list):
        return " . ".join(_show(y) for y in x)
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
        return _show(v)  # concat
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


__all__ = ["Packet", "RuleMatch", "parse_json", "rule_texts", "drop_rules", "MATCHES", "MAY_MATCH"]
