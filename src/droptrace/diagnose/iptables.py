"""Legacy iptables rules (`iptables-legacy-save`) in the vocabulary of `nft -j list ruleset`,
so that nft.evaluate walks them with the nftables chains of the same hook.

iptables on the nf_tables backend needs none of this: its rules are nftables rules already and
`nft -j list ruleset` lists them. The legacy backend's tables hook in at fixed priorities (raw
-300, mangle -150, nat -100/100, filter 0, security 50), each built-in chain a base chain with
its policy. What has no nft equivalent here (`-m conntrack`, `-m limit`, other modules and
their options) becomes a match that cannot be evaluated: the rule "may match".
"""
from __future__ import annotations

import shlex
from typing import Any, Dict, List, Optional, Tuple

# built-in chains: (hook, priority) per table; nat chains only see a connection's first packet
_BASE = {
    "raw": {"PREROUTING": ("prerouting", -300), "OUTPUT": ("output", -300)},
    "mangle": {c: (c.lower(), -150) for c in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")},
    "nat": {"PREROUTING": ("prerouting", -100), "INPUT": ("input", 100), "OUTPUT": ("output", -100),
            "POSTROUTING": ("postrouting", 100)},
    "filter": {c: (c.lower(), 0) for c in ("INPUT", "FORWARD", "OUTPUT")},
    "security": {c: (c.lower(), 50) for c in ("INPUT", "FORWARD", "OUTPUT")},
}
TARGETS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return", "QUEUE": "queue",
            "NFQUEUE": "queue", "DNAT": "dnat", "SNAT": "snat", "MASQUERADE": "masquerade",
            "REDIRECT": "redirect"}
_SIDE_TARGETS = {"LOG", "NFLOG", "MARK", "CONNMARK", "CT", "NOTRACK", "TRACE", "CLASSIFY", "DSCP", "TOS",
                 "TCPMSS", "CHECKSUM", "AUDIT", "SET"}
_PORT_MODULES = {"tcp", "udp", "sctp", "dccp", "udplite", "multiport"}
_QUIET_MODULES = {"comment"}


LEGACY = "iptables-legacy:"


def table_name(table: str) -> str:
    """How a legacy table is named among the nft tables (which may have a `filter` of their own)."""
    return f"{LEGACY}{table}"


def to_nft(text: str, family: str) -> Tuple[List[dict], Dict[Tuple[str, str, str, int], str]]:
    """`iptables-legacy-save` (family "ip") or `ip6tables-legacy-save` ("ip6") output -> nft JSON
    items (chains, rules) and each rule's text: its line. A rule's handle is its number in its
    chain, as `iptables -L CHAIN --line-numbers` shows it."""
    items: List[dict] = []
    texts: Dict[Tuple[str, str, str, int], str] = {}
    table = ""
    numbers: Dict[Tuple[str, str], int] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":") and table:
            name, policy = (line[1:].split() + ["-"])[:2]
            chain: Dict[str, Any] = {"family": family, "table": table_name(table), "name": name}
            if name in _BASE.get(table, {}):
                hook, prio = _BASE[table][name]
                chain.update(hook=hook, prio=prio, type="nat" if table == "nat" else "filter",
                             policy=policy.lower())
            items.append({"chain": chain})
        elif line.startswith("-A ") and table:
            try:
                words = shlex.split(line)
            except ValueError:
                words = line.split()
            chain_key = (table, words[1] if len(words) > 1 else "")
            numbers[chain_key] = number = numbers.get(chain_key, 0) + 1
            rule = _rule(words, family, table_name(table), number)
            if rule is not None:
                items.append({"rule": rule})
                texts[(family, rule["table"], rule["chain"], number)] = line
    return items, texts


def _rule(words: List[str], family: str, table: str, handle: int) -> Optional[dict]:
    if len(words) < 2:
        return None
    chain, rest = words[1], words[2:]
    exprs: List[dict] = []
    verdict: Optional[dict] = None
    negate = False
    module = ""
    i = 0
    while i < len(rest):
        w = rest[i]
        arg = rest[i + 1] if i + 1 < len(rest) else ""
        if w == "!":
            negate = True
            i += 1
            continue
        op = "!=" if negate else "=="
        negate = False
        if w in ("-s", "--source", "-d", "--destination"):
            field = "saddr" if w in ("-s", "--source") else "daddr"
            exprs.append(_match({"payload": {"protocol": family, "field": field}}, _prefix(arg), op))
        elif w in ("-p", "--protocol"):
            exprs.append(_match({"meta": {"key": "l4proto"}}, arg.lower(), op))
        elif w in ("-i", "--in-interface", "-o", "--out-interface"):
            key = "iifname" if w in ("-i", "--in-interface") else "oifname"
            exprs.append(_match({"meta": {"key": key}}, arg[:-1] + "*" if arg.endswith("+") else arg, op))
        elif w == "-m":
            module = arg
            if module not in _PORT_MODULES | _QUIET_MODULES | {"mark", "conntrack", "state"}:
                exprs.append({"xt": {"type": "match", "name": module}})
        elif w in ("--dport", "--sport", "--destination-port", "--source-port") and module in _PORT_MODULES:
            field = "dport" if w in ("--dport", "--destination-port") else "sport"
            exprs.append(_match({"payload": {"protocol": "th", "field": field}}, _ports(arg), op))
        elif w in ("--dports", "--sports", "--destination-ports", "--source-ports") and module == "multiport":
            field = "dport" if w in ("--dports", "--destination-ports") else "sport"
            exprs.append(_match({"payload": {"protocol": "th", "field": field}},
                                {"set": [_ports(p) for p in arg.split(",")]}, op))
        elif w == "--mark" and module == "mark" and "/" not in arg:
            exprs.append(_match({"meta": {"key": "mark"}}, arg, op))
        elif w in ("-j", "--jump", "-g", "--goto"):
            verdict = _target(arg, goto=w in ("-g", "--goto"))
            break  # what follows are the target's options
        elif (w, module) in (("--ctstate", "conntrack"), ("--state", "state")):
            exprs.append(_match({"ct": {"key": "state"}}, [x.lower() for x in arg.split(",")], op))
        else:
            # an option not evaluated here (a module's, or -f): the rule may match; its values
            # are the words up to the next option
            if module not in _QUIET_MODULES and {"xt": {"type": "match", "name": module or w}} not in exprs:
                exprs.append({"xt": {"type": "match", "name": module or w}})
            i += 1
            while i < len(rest) and not rest[i].startswith("-") and rest[i] != "!":
                i += 1
            continue
        i += 2
    if verdict is not None:
        exprs.append(verdict)
    return {"family": family, "table": table, "chain": chain, "handle": handle, "expr": exprs}


def _match(left: dict, right: Any, op: str) -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _prefix(arg: str) -> Any:
    addr, _, length = arg.partition("/")
    if not length or length in ("32", "128"):
        return addr
    return {"prefix": {"addr": addr, "len": int(length)}} if length.isdigit() else arg


def _ports(arg: str) -> Any:
    lo, _, hi = arg.partition(":")
    if hi:
        return {"range": [int(lo or 0) if (lo or "0").isdigit() else lo, int(hi) if hi.isdigit() else hi]}
    return int(lo) if lo.isdigit() else lo


def _target(name: str, goto: bool) -> dict:
    if goto:
        return {"goto": {"target": name}}
    if name in TARGETS:
        kind = TARGETS[name]
        return {kind: None}
    if name in _SIDE_TARGETS:
        return {"counter": None}  # not a verdict: the next rule runs
    return {"jump": {"target": name}}


__all__ = ["to_nft", "table_name", "TARGETS", "LEGACY"]
