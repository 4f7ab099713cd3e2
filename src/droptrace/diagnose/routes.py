"""The route the kernel would pick, worked out from the routing tables and rules as `ip -j`
lists them, without asking the kernel.

`ip route get` sends RTM_GETROUTE, and the kernel answers it by building a packet and routing
it; when the lookup fails (no route back, the very thing rp_filter drops for) it frees that
packet with kfree_skb: a NOT_SPECIFIED drop at inet_rtm_getroute in the namespace being
diagnosed, which droptrace, an exporter or anyone tracing there would record. Reading the
tables is a dump, which frees nothing. Rules with selectors other than from/to/iif (fwmark,
uid ranges, ports...) are skipped and said to be.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from .host import Netns

# rule keys whose selectors are evaluated here (or that select nothing); any other skips the rule
_PLAIN_RULE_KEYS = {"priority", "src", "srclen", "dst", "dstlen", "iif", "table", "action", "protocol",
                    "flags"}


@dataclass(frozen=True)
class Route:
    table: str
    type: str  # unicast, local, broadcast, blackhole, unreachable, prohibit, ...
    dst: str  # as `ip route` prints it: 10.0.0.0/24, default
    dev: Optional[str]
    gateway: Optional[str]

    def text(self) -> str:
        """The route as `ip route show table all` prints it."""
        kind = "" if self.type == "unicast" else f"{self.type} "
        return (f"{kind}{self.dst}" + (f" via {self.gateway}" if self.gateway else "")
                + (f" dev {self.dev}" if self.dev else "") + f" table {self.table}")


@dataclass(frozen=True)
class Lookup:
    route: Optional[Route]  # None: no route (the lookup fails)
    skipped: Tuple[str, ...]  # rules passed over because their selectors cannot be evaluated here
    error: Optional[str] = None  # the tables could not be read


def lookup(ns: Netns, dst: str, src: Optional[str] = None, iif: Optional[str] = None) -> Lookup:
    """The route to dst (from src, arriving on iif), as the policy rules and tables give it."""
    try:
        target = ipaddress.ip_address(dst)
    except ValueError:
        return Lookup(None, (), f"not an address: {dst}")
    family = "-4" if target.version == 4 else "-6"
    rules = ns.run(["ip", "-j", family, "rule", "show"])
    routes = ns.run(["ip", "-j", family, "route", "show", "table", "all"])
    if not rules.ok or not routes.ok:
        return Lookup(None, (), (rules.err if not rules.ok else routes.err) or "ip failed")
    try:
        return choose(json.loads(rules.out or "[]"), json.loads(routes.out or "[]"), target, src, iif)
    except (ValueError, TypeError) as e:
        return Lookup(None, (), f"ip -j printed what could not be read: {e}")


def choose(rules: List[dict], routes: List[dict], target: Any, src: Optional[str] = None,
           iif: Optional[str] = None) -> Lookup:
    """The kernel's choice: the rules by priority; for each that applies, the most specific
    route of its table (then the lowest metric); blackhole, unreachable and prohibit end the
    lookup as failures, as the kernel's do."""
    source = _addr(src)
    skipped: List[str] = []
    for rule in sorted((r for r in rules if isinstance(r, dict)), key=lambda r: _int(r.get("priority"))):
        extra = set(rule) - _PLAIN_RULE_KEYS
        if extra or rule.get("not"):
            skipped.append(f"rule {rule.get('priority')} ({', '.join(sorted(extra)) or 'not'})")
            continue
        if not (_selects(rule.get("src"), rule.get("srclen"), source)
                and _selects(rule.get("dst"), rule.get("dstlen"), target)
                and (rule.get("iif") is None or rule.get("iif") == (iif or "lo"))):
            continue
        action = rule.get("action")
        if action in ("blackhole", "unreachable", "prohibit"):
            return Lookup(Route(str(rule.get("priority")), action, "(rule)", None, None), tuple(skipped))
        table = str(rule.get("table", "main"))
        best = _best([r for r in routes if isinstance(r, dict) and str(r.get("table", "main")) == table],
                     target)
        if best is not None:
            route = Route(table, str(best.get("type", "unicast")), str(best.get("dst")), best.get("dev"),
                          best.get("gateway"))
            if route.type in ("blackhole", "unreachable", "prohibit", "throw"):
                if route.type == "throw":
                    continue
                return Lookup(None, tuple(skipped) + (route.text(),))
            return Lookup(route, tuple(skipped))
    return Lookup(None, tuple(skipped))


def _best(routes: List[dict], target: Any) -> Optional[dict]:
    best: Optional[Tuple[int, int, dict]] = None
    for r in routes:
        net = _network(r.get("dst"), target.version)
        if net is None or target not in net:
            continue
        key = (net.prefixlen, -_int(r.get("metric")))
        if best is None or key > best[:2]:
            best = (*key, r)
    return best[2] if best else None


def _network(dst: Any, version: int) -> Optional[Any]:
    if dst == "default":
        return ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
    if not isinstance(dst, str):
        return None
    try:
        net = ipaddress.ip_network(dst, strict=False)
    except ValueError:
        return None
    return net if net.version == version else None


def _selects(prefix: Any, length: Any, addr: Any) -> bool:
    if prefix in (None, "all"):
        return True
    if addr is None:
        return False  # a source-selected rule cannot apply when the source is not known
    try:
        net = ipaddress.ip_network(f"{prefix}/{length}" if length is not None else str(prefix), strict=False)
    except ValueError:
        return False
    return net.version == addr.version and addr in net


def _addr(text: Optional[str]) -> Optional[Any]:
    try:
        return ipaddress.ip_address(text) if text else None
    except ValueError:
        return None


def _int(x: Any) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else 0


__all__ = ["Route", "Lookup", "lookup", "choose"]
