"""What a drop reason means and what to check, for the names of the running kernel.

The text lives in `data/explanations.json` (written by us from the kernel's own comments in
include/net/dropreason-core.h; its "about" says how); this module matches a name as a user gives it (any case,
prefix optional, SUBSYS:NAME, or this kernel's number) to that text and to the kernel's value.
"""
from __future__ import annotations

import functools
import json
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .errors import DroptraceError
from .kernel.reasons import normalise


class UnknownReason(DroptraceError):
    """Neither the running kernel nor our catalogue knows this name."""


@dataclass(frozen=True)
class Explanation:
    reason: str
    summary: str
    details: str
    causes: Tuple[str, ...]
    counters: Tuple[str, ...]
    checks: Tuple[Tuple[str, str], ...]  # (what to check, the command)
    since: Optional[str]
    value: Optional[int] = None  # on the running kernel; None where it has no such reason
    in_kernel: bool = False

    def to_dict(self) -> Dict[str, object]:
        d = asdict(self)
        d["causes"], d["counters"] = list(self.causes), list(self.counters)
        d["checks"] = [{"what": w, "command": c} for w, c in self.checks]
        return d


CATALOGUE = Path(__file__).resolve().parent / "data" / "explanations.json"


@functools.lru_cache(maxsize=1)
def _load() -> Dict[str, Dict[str, Dict[str, object]]]:
    """The catalogue file, read once: {"reasons": {name: entry}, "subsystems": {name: entry}}."""
    with open(CATALOGUE, encoding="utf-8") as f:
        doc = json.load(f)
    return {key: {e["reason"]: e for e in doc[key]} for key in ("reasons", "subsystems")}


def catalogue() -> Dict[str, Dict[str, object]]:
    """Our entries by reason name (core reasons)."""
    return _load()["reasons"]


def subsystems() -> Dict[str, Dict[str, object]]:
    return _load()["subsystems"]


def _make(name: str, entry: Dict[str, object], value: Optional[int], in_kernel: bool) -> Explanation:
    return Explanation(reason=name, summary=str(entry["summary"]), details=str(entry["details"]),
                       causes=tuple(entry.get("causes") or ()),  # type: ignore[arg-type]
                       counters=tuple(entry.get("counters") or ()),  # type: ignore[arg-type]
                       checks=tuple(tuple(c) for c in entry.get("checks") or ()),  # type: ignore
                       since=entry.get("since"), value=value, in_kernel=in_kernel)  # type: ignore[arg-type]


# The first word of a core reason's name says which part of the stack raises it (the kernel groups
# its reasons that way); words the names abbreviate, spelled out. Used only for reasons we have no
# entry for, so a newer kernel's reason still says where to look.
AREAS = {
    "IP": "IPv4 (net/ipv4)", "IPV6": "IPv6 (net/ipv6)", "IPV6DISABLED": "IPv6 (net/ipv6)",
    "TCP": "TCP", "UDP": "UDP", "ICMP": "ICMP", "SOCKET": "the socket layer", "UNIX": "AF_UNIX sockets",
    "NEIGH": "neighbour resolution (ARP/NDISC)", "ARP": "ARP", "QDISC": "traffic control (net/sched)",
    "TC": "traffic control (net/sched)", "FQ": "traffic control (net/sched)",
    "CAKE": "traffic control (net/sched)", "DUALPI2": "traffic control (net/sched)",
    "SKB": "the skb core (net/core)", "DEV": "the device layer (net/core/dev.c)",
    "CPU": "the device layer (net/core/dev.c)", "NETFILTER": "netfilter", "XFRM": "IPsec (xfrm)",
    "VXLAN": "VXLAN", "TAP": "tun/tap", "BRIDGE": "the bridge", "MAC": "the Ethernet/MAC layer",
    "CAN": "CAN", "CANFD": "CAN", "CANXL": "CAN", "PSP": "PSP encryption", "FRAG": "fragment reassembly",
    "PKT": "packet validation", "BPF": "BPF programs", "XDP": "XDP", "PACKET": "AF_PACKET sockets",
    "TUNNEL": "tunnels", "NO": "delivery",
}
WORDS = {
    "EXTHDR": "extension header", "EXTHDRS": "extension headers", "HDR": "header", "CSUM": "checksum",
    "RX": "receive", "TX": "transmit", "SKB": "skb", "PKT": "packet", "NEIGH": "neighbour",
    "RCVBUFF": "receive buffer", "NOMEM": "no memory", "OFO": "out-of-order", "SEQ": "sequence",
    "ACK": "ACK", "SYN": "SYN", "MAC": "MAC", "NDISC": "neighbour discovery", "PROTO": "protocol",
    "SRC": "source", "DST": "destination", "ADDR": "address", "QDISC": "qdisc", "TC": "tc",
}


def words_of(name: str) -> str:
    """NO_SOCKET -> 'no socket'; IPV6_TOO_MANY_EXTHDRS -> 'IPv6 too many extension headers'."""
    out = []
    for w in name.replace(":", "_").split("_"):
        if w in WORDS:
            out.append(WORDS[w])
        elif w in ("IP", "IPV4", "IPV6", "TCP", "UDP", "ICMP", "ARP", "XDP", "BPF", "CAN", "VXLAN"):
            out.append({"IPV4": "IPv4", "IPV6": "IPv6"}.get(w, w))
        elif w:
            out.append(w.lower())
    return " ".join(out)


def _neighbours(name: str, name_of: Optional[Dict[int, str]]) -> List[str]:
    """The reasons declared next to `name` in this kernel's enum that we have entries for."""
    if not name_of:
        return []
    core = [n for _, n in sorted(name_of.items()) if ":" not in n]
    if name not in core:
        return []
    i = core.index(name)
    return [n for n in core[max(i - 1, 0):i] + core[i + 1:i + 2] if n in catalogue()]


def _unwritten(name: str, value: Optional[int], name_of: Optional[Dict[int, str]] = None) -> Explanation:
    """A reason of a newer kernel than our catalogue: what its name and its place in the kernel's
    list say, where to see it happen, and no invented meaning."""
    first = name.split(":", 1)[0].split("_", 1)[0]
    area = AREAS.get(first)
    release = platform.release()
    near = _neighbours(name, name_of)
    details = [f"{name} is a reason of this kernel ({release}, value {value}) that droptrace has no "
               f"entry for yet: it is newer than the kernels droptrace's explanations were written for."
               if value is not None else f"{name} has no entry in droptrace's catalogue."]
    details.append(f"Its name reads '{words_of(name)}'" + (f", raised by {area}." if area else "."))
    if near:
        details.append("The kernel declares it next to " + " and ".join(
            f"{n} ({str(catalogue()[n]['summary']).rstrip('.')})" for n in near) + ".")
    details.append("The kernel's own comment on it is in include/net/dropreason-core.h (or the "
                   "subsystem's header); the drop location (func+0xoff) and `--stack` show the code "
                   "that dropped it.")
    summary = f"the kernel dropped the packet for reason {name}: {words_of(name)} (no entry written yet)"
    return Explanation(
        reason=name, summary=summary, details=" ".join(details), causes=(), counters=(),
        checks=(("where it is dropped", "droptrace --reason " + name + " --stack"),
                ("the kernel's comment", "grep -B3 -A3 'SKB_DROP_REASON_" + name.split(":")[-1]
                 + "' include/net/dropreason-core.h  # in this kernel's sources")),
        since=None, value=value, in_kernel=value is not None)


def unwritten(name_of: Optional[Dict[int, str]]) -> List[str]:
    """The reasons of a kernel (value -> name) that the catalogue has no entry for, in value order."""
    out = []
    for _, n in sorted((name_of or {}).items()):
        family = n.split(":", 1)[0] if ":" in n else None
        if n not in catalogue() and not (family and family in subsystems()):
            out.append(n)
    return out


def explain(name: str, name_of: Optional[Dict[int, str]] = None) -> Explanation:
    """The explanation of one reason. `name_of` is the running kernel's value -> name (None: no
    drop reasons on this kernel). Raises UnknownReason for a name nobody knows."""
    text = name.strip()
    by_name = {n.upper(): v for v, n in (name_of or {}).items()}
    if re.fullmatch(r"-?[0-9]+", text):  # ASCII digits only: str.isdigit() also takes "²"
        if not name_of or len(text) > 20 or int(text) not in name_of:  # (int() refuses 4,300 digits)
            shown = text if len(text) <= 20 else text[:20] + "..."
            raise UnknownReason(f"no drop reason {shown} on this kernel; `droptrace explain` lists them")
        key = name_of[int(text)].upper()
    else:
        key = normalise(text)
        if key.startswith("SUBSYS_") and text.strip().upper().startswith("SKB_DROP_REASON_SUBSYS_"):
            key = key[len("SUBSYS_"):] + ":"  # a whole subsystem, by its enum member's name
    value = by_name.get(key)
    canonical = name_of[value] if value is not None and name_of else key
    entry = catalogue().get(key)
    if entry is not None:
        return _make(canonical, entry, value, value is not None)
    if ":" in key:
        family = key.split(":", 1)[0]
        sub = subsystems().get(family)
        if sub is not None:  # its names are in the module's BTF, read only while it is loaded
            return _make(canonical.rstrip(":") or family, sub, value, value is not None)
    if value is not None:
        return _unwritten(canonical, value, name_of)
    import difflib

    known = sorted(set(catalogue()) | {n for n in by_name})
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UnknownReason(f"unknown drop reason {name!r}{hint}; `droptrace explain` lists them")


def kernel_names() -> Optional[Dict[int, str]]:
    """value -> name of the running kernel's drop reasons; None where it has none (before 5.17)."""
    from .kernel import btf, reasons

    try:
        names = reasons.load(btf.VMLINUX).all_names()
    except (DroptraceError, OSError, btf.BTFError):
        return None
    return names or None


def check_names(names: List[str]) -> None:
    """Refuse, as the live filters do (UsageError, exit 2), a reason name that neither the running
    kernel nor the catalogue knows: offline filters have no kernel list of their own to check."""
    from .errors import UsageError

    kernel = kernel_names()
    for name in names:
        try:
            explain(name, kernel)
        except UnknownReason as e:
            raise UsageError(str(e)) from None


def listing(name_of: Optional[Dict[int, str]]) -> List[Explanation]:
    """Every reason of the running kernel (by value), or our whole catalogue where it has none."""
    if not name_of:
        return [_make(n, e, None, False) for n, e in catalogue().items()]
    return [explain(n, name_of) for _, n in sorted(name_of.items())]


@functools.cache
def summary(name: str) -> Optional[str]:
    """The one-line summary of a reason name as droptrace shows it (None if we have none)."""
    entry = catalogue().get(name)
    if entry is None and ":" in name:
        entry = subsystems().get(name.split(":", 1)[0])
    return None if entry is None else str(entry["summary"])


__all__ = ["Explanation", "UnknownReason", "explain", "listing", "summary", "catalogue", "unwritten",
           "words_of", "kernel_names", "check_names", "subsystems"]
