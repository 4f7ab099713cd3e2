"""One check per family of drop reasons: it looks at the live host, in the drop's namespace,
and says what it found with the evidence (the command's own words where they help).

Every check only reads. `result` is "cause" (this explains the drop), "ok" (looked, and this
is not it), "info" (context a person needs) or "unknown" (could not look, and why).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from ..event import Event
from . import conntrack, iptables, nft, routes, sockets
from .host import Netns


@dataclass(frozen=True)
class Finding:
    check: str
    result: str  # cause | ok | info | unknown
    detail: str

    def to_dict(self) -> Dict[str, str]:
        return {"check": self.check, "result": self.result, "detail": self.detail}


@dataclass
class Group:
    """Drops alike: same reason, location, namespace, interface and flow (source port aside)."""

    reason: Optional[str]
    location: str
    netns: Optional[int]
    ifname: Optional[str]
    sample: Event  # the first drop of the group: its packet, its stack
    count: int = 0
    first_seen: float = 0.0  # time.monotonic() when its first drop was read
    sports: Dict[Optional[int], int] = field(default_factory=dict)

    @property
    def proto(self) -> Optional[str]:
        return self.sample.l4 if isinstance(self.sample.l4, str) else None

    def flow(self) -> Dict[str, object]:
        e = self.sample
        return {"l3": e.l3, "l4": e.l4, "saddr": e.saddr, "daddr": e.daddr,
                "sport": e.sport if len(self.sports) == 1 else None, "dport": e.dport,
                "tcp_flags": e.tcp_flags, "icmp_type": e.icmp_type}


def _dst(g: Group) -> str:
    e = g.sample
    host = f"[{e.daddr}]" if e.daddr and ":" in e.daddr else (e.daddr or "?")
    return f"{host}:{e.dport}/{g.proto}"


def _socket_list(ns: Netns, proto: str, memory: bool = False) -> Optional[List[sockets.Socket]]:
    flag = {"udp": "-u", "tcp": "-t", "sctp": "-S", "dccp": "-d"}.get(proto)
    if flag is None:
        return None
    argv = ["ss", "-H", "-n", "-p", flag, "-a" if proto != "tcp" else "-l"] + (["-m"] if memory else [])
    r = ns.run(argv)
    return sockets.parse(r.out, proto) if r.ok else None


def no_socket(g: Group, ns: Netns) -> List[Finding]:
    e = g.sample
    if g.proto not in ("udp", "tcp", "sctp", "dccp") or e.dport is None:
        return [Finding("listeners", "unknown", f"no port to look up for a {e.l4 or 'non-IP'} packet")]
    found = _socket_list(ns, g.proto)
    if found is None:
        return [Finding("listeners", "unknown", f"could not list {g.proto} sockets: "
                        f"{ns.run(['ss', '-V']).err or 'ss failed'}")]
    on_port = [s for s in found if s.port == e.dport and s.state in ("UNCONN", "LISTEN")]
    fits = [s for s in on_port if s.accepts(e.daddr)]
    if fits:
        s = fits[0]
        return [Finding("listeners", "info", f"a socket now listens on {s.endpoint()}, {s.owner()}: it was "
                        "started or bound after the drop, or is bound to a device "
                        f"({s.device or 'none here'}) the packet did not arrive on")]
    v6only = [s for s in on_port if s.addr == "::" and e.l3 == "ipv4"]
    if v6only:
        s = v6only[0]
        return [Finding("listeners", "cause", f"nothing takes IPv4 on {_dst(g)}: {s.endpoint()}, "
                        f"{s.owner()}, is the IPv6 wildcard with IPV6_V6ONLY set (ss shows a dual-stack "
                        "socket as *, a v6-only one as [::]), so IPv4 packets to its port find no socket"),
                Finding("what would change it", "info",
                        "clear IPV6_V6ONLY before bind (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0); "
                        "many servers have an option for it, e.g. ipv6only=off), or also listen on "
                        f"0.0.0.0:{e.dport}; sockets that do not set it follow "
                        f"{ns.setting('net.ipv6.bindv6only')} (`sysctl -w net.ipv6.bindv6only=0`, for "
                        "sockets opened afterwards)")]
    if on_port:
        others = "; ".join(f"a socket is bound to {s.endpoint()}, {s.owner()}" for s in on_port)
        return [Finding("listeners", "cause", f"nothing listens on {_dst(g)}; {others} "
                        "(bound to another address or family: bind to the address the packets go to, "
                        "or to the wildcard)")]
    return [Finding("listeners", "cause", f"nothing listens on port {e.dport}/{g.proto} in namespace "
                    f"{ns.label}, on any address or family")]


def receive_buffer(g: Group, ns: Netns) -> List[Finding]:
    e = g.sample
    out: List[Finding] = []
    found = _socket_list(ns, g.proto or "", memory=True) if g.proto else None
    match = [s for s in found or () if s.port == e.dport and s.accepts(e.daddr)]
    if found is None:
        out.append(Finding("socket", "unknown", f"could not list the {g.proto or e.l4} sockets"))
    elif not match:
        out.append(Finding("socket", "info", f"no socket on {_dst(g)} now (closed since the drops?)"))
    for s in match[:3]:
        full = s.rcvbuf is not None and s.queued is not None and s.queued >= s.rcvbuf // 2
        out.append(Finding("socket", "cause" if full or g.reason != "PROTO_MEM" else "info",
                           f"{s.endpoint()}, {s.owner()}: receive buffer {s.rcvbuf} bytes, {s.queued} "
                           f"queued ({s.recv_q} in Recv-Q), {s.drops} drops counted on the socket"
                           + ("; the reader is not keeping up" if full else "")))
    settings = ["net.core.rmem_default", "net.core.rmem_max"]
    if g.reason == "PROTO_MEM" or g.proto == "udp":
        settings.append("net.ipv4.udp_mem" if g.proto == "udp" else "net.ipv4.tcp_mem")
    values = ", ".join(ns.setting(k) for k in settings)
    out.append(Finding("sysctls", "info", f"{values} (SO_RCVBUF is capped by rmem_max; the protocol's "
                       "memory limit is in pages)"))
    if g.reason in ("SOCKET_RCVBUFF", "SOCKET_BACKLOG"):
        biggest = max((s.rcvbuf or 0 for s in match), default=0)
        want = max(4 * biggest, 4 << 20)
        out.append(Finding("what would change it", "info",
                           "a reader that keeps up (more threads, less work per packet), or a bigger receive "
                           "buffer: the application sets SO_RCVBUF (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, "
                           f"{want}); the kernel doubles it and caps it at net.core.rmem_max, so first "
                           f"`sysctl -w net.core.rmem_max={want}`); sockets that do not set it get "
                           f"net.core.rmem_default (`sysctl -w net.core.rmem_default={want}`)"
                           + (f" in namespace {ns.label}" if ns.path else "")))
    if g.reason == "PROTO_MEM":
        stat = ns.read("/proc/net/sockstat") or ""
        line = next((ln for ln in stat.splitlines() if ln.startswith(("UDP:", "TCP:"))
                     and ln.split(":")[0].lower() == g.proto), "")
        out.append(Finding("sockstat", "info", line.strip() or "no /proc/net/sockstat"))
    return out


def netfilter(g: Group, ns: Netns) -> List[Finding]:
    e = g.sample
    out: List[Finding] = []
    way = direction(e)  # the interface is the input one on receive, the output one on send
    pkt = nft.Packet(l3=e.l3, l4=e.l4, saddr=e.saddr, daddr=e.daddr, sport=e.sport, dport=e.dport,
                     iifname=g.ifname if way == "in" else None, oifname=g.ifname if way == "out" else None,
                     mark=e.mark, icmp_type=e.icmp_type)
    r = ns.run(["nft", "-j", "list", "ruleset"])
    legacy, texts = _legacy_iptables(ns)
    doc: Optional[dict] = None
    if not r.ok:
        out.append(Finding("nftables", "unknown", f"nft -j list ruleset: {r.err or 'failed'}"))
    else:
        texts.update(nft.rule_texts(ns.run(["nft", "-a", "list", "ruleset"]).out))
        try:
            doc = nft.parse_json(r.out)
        except ValueError as exc:
            out.append(Finding("nftables", "unknown", str(exc)))
    if doc is not None or legacy:
        ruleset = {"nftables": (doc or {}).get("nftables", []) + legacy}
        out += nft_findings(ruleset, pkt, hook(e), way, texts, ns.label)
    out += conntrack_entry(g, ns)
    return out


def _legacy_iptables(ns: Netns) -> Tuple[List[dict], Dict[Tuple[str, str, str, int], str]]:
    """The legacy backend's iptables and ip6tables rules, as nft JSON items (the nf_tables
    backend's are in `nft list ruleset` already)."""
    if ns.run(["iptables-legacy-save", "--version"]).ok:
        tools = ("iptables-legacy-save", "ip6tables-legacy-save")
    elif "legacy" in ns.run(["iptables-save", "--version"]).out:
        tools = ("iptables-save", "ip6tables-save")
    else:
        return [], {}
    items: List[dict] = []
    texts: Dict[Tuple[str, str, str, int], str] = {}
    for tool, family in zip(tools, ("ip", "ip6")):
        x = ns.run([tool])
        if x.ok:
            more, t = iptables.to_nft(x.out, family)
            items += more
            texts.update(t)
    return items, texts


SHOWN_RULES = 5  # undecidable rules, or rules that may drop, named per group


def nft_findings(ruleset: dict, pkt: nft.Packet, at: Optional[str], way: Optional[str],
                 texts: Dict[Tuple[str, str, str, int], str], label: str) -> List[Finding]:
    """What the packet met at its hook (or at each hook it may have met, the hook unknown):
    the rule that drops it (`cause` only for the rule it reaches that drops it), the
    undecidable rules that may decide first, in order, and the other rules that may drop it."""
    hooks = [at] if at else list(_HOOKS_BY_WAY.get(way, _HOOKS_BY_WAY[None]))
    try:
        evaluations = [nft.evaluate(ruleset, pkt, h, texts) for h in hooks]
    except RecursionError:  # hundreds of jumps in a row, each followed by a generator
        return [Finding("nftables", "unknown", "the ruleset's chains of jumps are too deep to follow here")]
    causes = [(ev, ev.cause()) for ev in evaluations if ev.cause() is not None]
    sure = at is not None or len(causes) == 1
    out: List[Finding] = []
    for ev in evaluations:
        cause = ev.cause()
        others = ev.others()
        if cause is None and not others:
            if at is not None:
                out.append(Finding("nftables", "ok", f"hook {ev.hook}: no nftables rule in namespace {label} "
                                   "drops or rejects a packet like this one"
                                   + (f" (base chains: {', '.join(ev.chains)})" if ev.chains else "")))
            continue
        out.append(Finding("nftables", "info", f"hook {ev.hook}" + ("" if at else " (the hook is not known: "
                           "each one the packet may have met is evaluated)") + ", base chains in the "
                           f"order the kernel runs them: {', '.join(ev.chains)}"))
        if cause is not None:
            step = cause.by
            assert step is not None
            if step.fit == nft.MATCHES:
                detail = (f"{step.where()}: `{step.text}` drops this packet: the first rule on its way "
                          "that does")
            else:
                detail = (f"{step.where()}: `{step.text}` is the only rule that can drop this packet here, "
                          f"if it matched (not evaluated: {_why(step)})")
            out.append(Finding("nftables", "cause" if sure else "info", detail))
            undecided = ev.undecided(cause)
            for s, taken in undecided[:SHOWN_RULES]:
                out.append(Finding("nftables", "info", (
                    f"may decide first: {s.where()}: `{s.text}`" if not taken else
                    f"on this way, {s.where()}: `{s.text}` matched") + f" (not evaluated: {_why(s)})"))
            if len(undecided) > SHOWN_RULES:
                out.append(Finding("nftables", "info", f"and {len(undecided) - SHOWN_RULES} more undecidable "
                                   "rules before it"))
        if others:
            lead = "other rules that may drop it instead" if cause else "no rule drops it for sure; these may"
            if len(others) > SHOWN_RULES:
                out.append(Finding("nftables", "info", f"{len(others)} rules may drop it; the first "
                                   f"{SHOWN_RULES} on its way:"))
            for w in others[:SHOWN_RULES]:
                s = w.by
                assert s is not None
                ifs = [f"`{a.text}` matched (not evaluated: {_why(a)})" for a, taken in w.assumed
                       if taken and a != s][:3]
                out.append(Finding("nftables", "info", f"{lead}: {s.where()}: `{s.text}`"
                                   + (f" (not evaluated: {_why(s)})" if s.unevaluated else "")
                                   + (f", if {' and '.join(ifs)}" if ifs else "")))
        if ev.truncated:
            out.append(Finding("nftables", "info", f"more undecidable rules than {nft.MAX_WAYS} ways: the "
                               "rest were taken as not matching"))
    if not out:
        out.append(Finding("nftables", "ok", f"no nftables rule in namespace {label} drops or rejects a "
                           f"packet like this one at {', '.join(hooks)}"))
    if all(f.result == "ok" for f in out):
        # nothing on its way drops it now: the ruleset changed since, or the drop was elsewhere
        for m in [m for m in nft.drop_rules(ruleset, pkt, texts) if m.fit == nft.MATCHES][:3]:
            where = f"table {m.family} {m.table}, chain {m.chain}" + (
                f", handle {m.handle}" if m.handle is not None else "")
            out.append(Finding("nftables", "info", f"not on its way at {', '.join(hooks)}, but it would drop "
                               f"such a packet if reached: {where}: `{m.text}`"))
    return out


def _why(s: nft.Step) -> str:
    return ", ".join(s.unevaluated) or "?"


def conntrack_entry(g: Group, ns: Netns) -> List[Finding]:
    """The flow's conntrack entry (state, status, mark, zone), or that it has none."""
    e = g.sample
    sport = e.sport if len(g.sports) == 1 else None
    found, how = conntrack.lookup(ns, e.l3, g.proto, e.saddr, e.daddr, sport, e.dport)
    if found is None:
        return [Finding("conntrack", "unknown", f"could not list conntrack entries: {how}")]
    if not found:
        return [Finding("conntrack", "info", f"no conntrack entry for this flow in namespace {ns.label} "
                        f"(`{how}`, either direction): a first packet that is dropped never gets one "
                        "(an entry is confirmed when its packet leaves netfilter alive), or it expired, or "
                        "nothing loads conntrack there")]
    return [Finding("conntrack", "info", f"entry: {x.text()}") for x in found[:3]]


def _near_conntrack(e: Event) -> bool:
    return any(f.startswith(("nf_conntrack", "nf_ct_", "__nf_conntrack", "nf_nat")) for f in
               [e.location or "", *(e.stack or ())])


def rp_filter(g: Group, ns: Netns) -> List[Finding]:
    e = g.sample
    dev = g.ifname or "?"
    every, this = ns.sysctl("net.ipv4.conf.all.rp_filter"), ns.sysctl(f"net.ipv4.conf.{dev}.rp_filter")
    mode = max(int(x) for x in (every or "0", this or "0") if x.isdigit())
    names = {0: "off", 1: "strict", 2: "loose"}
    out = [Finding("rp_filter", "info", f"net.ipv4.conf.all.rp_filter={every}, "
                   f"net.ipv4.conf.{dev}.rp_filter={this}: in effect {mode} ({names.get(mode, '?')}; "
                   "the higher of the two applies)")]
    # what fib_validate_source looks up: the route to the source, from the destination
    back = routes.lookup(ns, str(e.saddr), src=str(e.daddr))
    via = back.route.dev if back.route else None
    route = back.route.text() if back.route else (back.error or "no route")
    if back.error:
        out.append(Finding("route back", "unknown", f"could not read the routes: {back.error}"))
    elif back.route is None or via is None:
        out.append(Finding("route back", "cause", f"no route back to {e.saddr} ({route}): with rp_filter "
                           f"on, a packet from it is dropped on {dev}"))
    elif via != dev and mode == 1:
        out.append(Finding("route back", "cause", f"the route back to {e.saddr} leaves through {via}, not "
                           f"{dev} ({route}): strict rp_filter drops packets from it arriving on {dev}"))
    else:
        out.append(Finding("route back", "info", f"route back to {e.saddr}: {route}"))
    if back.skipped:
        out.append(Finding("route rules", "info", "not evaluated (selectors the packet alone cannot "
                           f"settle): {'; '.join(back.skipped)}"))
    out.append(Finding("what would change it", "info",
                       f"a route to {e.saddr} through {dev} (e.g. ip route add {e.saddr}/32 dev {dev}), or "
                       f"rp_filter=2 (loose: any route back will do) on all and {dev}, if this asymmetric "
                       "path is intended"))
    return out


def neighbour(g: Group, ns: Netns) -> List[Finding]:
    e = g.sample
    found = routes.lookup(ns, str(e.daddr))
    if found.route is None:
        return [Finding("route", "unknown", f"no route to {e.daddr} now"
                        + (f" ({found.error})" if found.error else ""))]
    hop = found.route.gateway or str(e.daddr)
    dev = found.route.dev or g.ifname or ""
    neigh = ns.run(["ip", "neigh", "show", "to", hop, "dev", dev])
    entry = " ".join(neigh.out.split())
    state = entry.split()[-1] if entry else None
    out = [Finding("route", "info", f"to {e.daddr}: {found.route.text()}")]
    if not entry:
        out.append(Finding("neighbour", "info", f"no neighbour entry for {hop} on {dev} now (expired)"))
    else:
        bad = state in ("FAILED", "INCOMPLETE")
        asked = "ND" if ":" in hop else "ARP"
        out.append(Finding("neighbour", "cause" if bad else "info",
                           entry + (f": {hop} never answered {asked} on {dev}" if bad else "")))
    if g.reason == "NEIGH_QUEUEFULL":
        key = "ipv6" if ":" in hop else "ipv4"
        out.append(Finding("sysctls", "info", f"net.{key}.neigh.{dev}.unres_qlen_bytes="
                           f"{ns.sysctl(f'net.{key}.neigh.{dev}.unres_qlen_bytes')}"))
    return out


def qdisc(g: Group, ns: Netns) -> List[Finding]:
    dev = g.ifname
    if not dev:
        return [Finding("qdisc", "unknown", "the drop has no interface")]
    r = ns.run(["tc", "-s", "qdisc", "show", "dev", dev])
    if not r.ok:
        return [Finding("qdisc", "unknown", f"tc -s qdisc show dev {dev}: {r.err}")]
    out = []
    lines = [ln.strip() for ln in r.out.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.startswith("qdisc "):
            stats = next((x for x in lines[i + 1:i + 3] if x.startswith("Sent")), "")
            dropped = _number_after(stats, "dropped")
            out.append(Finding("qdisc", "cause" if dropped else "info", f"{ln}: {stats}"))
    return out or [Finding("qdisc", "info", f"no qdisc listed on {dev}")]


def backlog(g: Group, ns: Netns) -> List[Finding]:
    text = ns.read("/proc/net/softnet_stat") or ""
    drops = [int(row.split()[1], 16) for row in text.splitlines() if len(row.split()) > 1]
    per_cpu = ", ".join(f"cpu{i}: {d}" for i, d in enumerate(drops) if d) or "none"
    return [Finding("softnet_stat", "cause" if any(drops) else "info",
                    f"backlog drops per CPU (/proc/net/softnet_stat, 2nd column): {per_cpu}"),
            Finding("sysctls", "info", "net.core.netdev_max_backlog="
                    f"{ns.sysctl('net.core.netdev_max_backlog')} (packets queued per CPU before "
                    "RPS/backlog processing drops them)")]


def otherhost(g: Group, ns: Netns) -> List[Finding]:
    e = g.sample
    dev = g.ifname or ""
    r = ns.run(["ip", "-j", "link", "show", "dev", dev])
    try:
        link = json.loads(r.out)[0] if r.ok else {}
    except (ValueError, IndexError):
        link = {}
    mac, flags = link.get("address"), link.get("flags", [])
    if not e.link_ethernet or len(e.packet) < 6:
        return [Finding("MAC", "unknown", f"the dropped frame's Ethernet header was not captured; {dev} "
                        f"has {mac or '?'}")]
    dst = ":".join(f"{b:02x}" for b in e.packet[:6])
    promisc = "PROMISC" in flags
    return [Finding("MAC", "cause" if mac and dst != mac else "info",
                    f"the frame was addressed to {dst}; {dev} has {mac or '?'}"
                    f"{', promiscuous' if promisc else ', not promiscuous'}: the frame was for another "
                    "host (a bridge or switch flooding it, or a stale ARP/neighbour entry at the sender)")]


def offload(g: Group, ns: Netns) -> List[Finding]:
    dev = g.ifname
    if not dev:
        return [Finding("offload", "unknown", "the drop has no interface")]
    r = ns.run(["ethtool", "-k", dev])
    if not r.ok:
        return [Finding("offload", "unknown", f"ethtool -k {dev}: {r.err}")]
    keep = [ln.strip() for ln in r.out.splitlines() if ln.strip().startswith(("rx-checksumming",
                                                                               "tx-checksumming"))]
    return [Finding("offload", "info", f"{dev}: {'; '.join(keep)} (a bad checksum that reaches the stack "
                    "was computed wrong by the sender, changed on the way, or not verified by the NIC)")]


def generic(g: Group, ns: Netns) -> List[Finding]:
    out = [Finding("location", "info", f"dropped at {g.location}")]
    if g.sample.stack:
        out.append(Finding("stack", "info", " <- ".join(g.sample.stack[:8])))
    if _near_conntrack(g.sample):
        out += conntrack_entry(g, ns)
    return out


_RECEIVE = ("ip_rcv", "ipv6_rcv", "__netif_receive_skb", "ip_forward", "ip6_forward", "br_handle_frame")
_SEND = ("ip_output", "ip6_output", "__ip_local_out", "__ip6_local_out", "ip_finish_output", "dev_queue_xmit")


# the function that calls nf_hook_slow for each netfilter hook (IPv4, IPv6, ARP, netdev)
_HOOK_CALLERS = {
    "ip_rcv": "prerouting", "ip_sublist_rcv": "prerouting", "ipv6_rcv": "prerouting",
    "ip6_sublist_rcv": "prerouting", "ip_local_deliver": "input", "ip6_input": "input", "arp_rcv": "input",
    "ip_forward": "forward", "ip6_forward": "forward", "__ip_local_out": "output",
    "__ip6_local_out": "output", "arp_xmit": "output", "ip_output": "postrouting",
    "ip6_output": "postrouting",
    "__netif_receive_skb_core": "ingress", "__dev_queue_xmit": "egress"}
_HOOKS_BY_WAY: Dict[Optional[str], Tuple[str, ...]] = {
    "in": ("ingress", "prerouting", "input", "forward"), "out": ("output", "postrouting", "egress"),
    None: nft.HOOKS}


def hook(e: Event) -> Optional[str]:
    """The netfilter hook a NETFILTER_DROP happened at: the frame that called nf_hook_slow."""
    frames = [f.split("+", 1)[0].split(".", 1)[0] for f in e.stack or ()]
    for i, fn in enumerate(frames[:-1]):
        if fn in ("nf_hook_slow", "nf_hook_slow_list"):
            return _HOOK_CALLERS.get(frames[i + 1])
    return None


def direction(e: Event) -> Optional[str]:
    """"in" or "out" from the drop's stack (the frames that called netfilter), None if unknown."""
    for frame in e.stack or ():
        fn = frame.split("+", 1)[0]
        if fn.startswith(_RECEIVE):
            return "in"
        if fn.startswith(_SEND):
            return "out"
    return None


def _word_after(text: str, word: str) -> Optional[str]:
    parts = text.split()
    return parts[parts.index(word) + 1] if word in parts[:-1] else None


def _number_after(text: str, word: str) -> int:
    """`tc -s` prints "(dropped 45, overlimits 0 ...)": the number after a word, 0 if none."""
    w = _word_after(text.replace(",", " ").replace("(", " ").replace(")", " "), word)
    return int(w) if w and w.isdigit() else 0


Check = Callable[[Group, Netns], List[Finding]]
CHECKS: Dict[str, Check] = {
    "NO_SOCKET": no_socket,
    "SOCKET_RCVBUFF": receive_buffer, "SOCKET_BACKLOG": receive_buffer, "PROTO_MEM": receive_buffer,
    "NETFILTER_DROP": netfilter,
    "IP_RPFILTER": rp_filter,
    "QDISC_DROP": qdisc, "QDISC_OVERLIMIT": qdisc, "QDISC_CONGESTED": qdisc, "CAKE_FLOOD": qdisc,
    "FQ_BAND_LIMIT": qdisc, "FQ_HORIZON_LIMIT": qdisc, "FQ_FLOW_LIMIT": qdisc, "TC_EGRESS": qdisc,
    "CPU_BACKLOG": backlog,
    "OTHERHOST": otherhost,
}


def checks_for(reason: Optional[str]) -> Check:
    if reason in CHECKS:
        return CHECKS[reason]  # type: ignore[index]
    if reason and reason.startswith("NEIGH_"):
        return neighbour
    if reason and reason.endswith("_CSUM"):
        return offload
    return generic


__all__ = ["Finding", "Group", "CHECKS", "checks_for"]
