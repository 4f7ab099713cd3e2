"""Drop reason names, always read from the running kernel.

Numbers change between kernel versions (NO_SOCKET is 2 on 6.1 and 3 on
6.18), so nothing here is a table: names come from BTF `enum
skb_drop_reason` or, without BTF, from the tracepoint's `print fmt`.
Subsystem reasons (upper 16 bits) are named SUBSYS:NAME from the enums that
subsystems (openvswitch, mac80211, ...) declare in vmlinux or module BTF.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import DroptraceError, UsageError
from . import btf as btfmod

PREFIX = "SKB_DROP_REASON_"
SUBSYS_SHIFT = 16
BTF_DIR = "/sys/kernel/btf"
_SYMBOLIC = re.compile(r'\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*"([^"]*)"\s*\}')


def subsystem_enums(name: str) -> bool:
    """Enums that may hold a subsystem's drop reasons (ovs_drop_reason, mac80211_drop_reason...)."""
    return "drop" in name


def normalise(name: str) -> str:
    """A reason name as users may give it (any case, prefix optional) as droptrace shows it."""
    return _short(name.strip().upper())


def _short(member: str) -> str:
    """SKB_DROP_REASON_NO_SOCKET -> NO_SOCKET; SKB_CONSUMED -> CONSUMED; SKB_CSUM stays."""
    if member.startswith(PREFIX):
        return member[len(PREFIX):]
    if member in ("SKB_NOT_DROPPED_YET", "SKB_CONSUMED"):
        return member[4:]
    return member


@dataclass
class Reasons:
    """value -> name for this kernel, with the values never shown as drops."""

    names: Dict[int, str]
    source: str
    not_drops: List[int] = field(default_factory=list)  # NOT_DROPPED_YET, CONSUMED
    subsystems: Dict[int, str] = field(default_factory=dict)  # id -> OPENVSWITCH
    _subsys_names: Optional[Dict[int, str]] = None
    btf_dir: str = BTF_DIR

    def name(self, value: int) -> str:
        n = self.names.get(value)
        if n is not None:
            return n
        sub = value >> SUBSYS_SHIFT
        if sub:
            n = self._subsystem_names().get(value)
            if n:
                return n
            return f"{self.subsystems.get(sub, f'SUBSYS_{sub}')}:{value & 0xFFFF}"
        return f"UNKNOWN_{value}"

    def value(self, name: str) -> int:
        """The value of a reason given by name (any case, prefix optional)."""
        key = normalise(name)
        for v, n in self.all_names().items():
            if n.upper() == key:
                return v
        close = difflib.get_close_matches(key, list(self.all_names().values()), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"unknown drop reason {name!r} on this kernel{hint}; "
                             "`droptrace --list-reasons` lists them")

    def core_names(self) -> Dict[int, str]:
        """The drop reasons of enum skb_drop_reason (not the subsystems' own, which take reading
        every module's BTF: some 0.4 s)."""
        return {v: n for v, n in self.names.items() if v not in self.not_drops}

    def all_names(self) -> Dict[int, str]:
        out = self.core_names()
        out.update(self._subsystem_names())
        return out

    def _subsystem_names(self) -> Dict[int, str]:
        # Read lazily: module BTF is only parsed when a subsystem reason appears.
        if self._subsys_names is None:
            self._subsys_names = _read_subsystem_names(self.subsystems, self.btf_dir)
        return self._subsys_names


def from_btf(data: btfmod.BTF) -> Reasons:
    enum = data.enum("skb_drop_reason")
    if not enum:
        raise DroptraceError("this kernel's BTF has no enum skb_drop_reason (kernel < 5.17?)")
    names: Dict[int, str] = {}
    not_drops: List[int] = []
    for member, value in enum.items():
        if member in ("SKB_DROP_REASON_MAX", "SKB_DROP_REASON_SUBSYS_MASK"):
            continue
        if member in ("SKB_NOT_DROPPED_YET", "SKB_CONSUMED"):
            not_drops.append(value)
        names.setdefault(value, _short(member))
    subsystems = {}
    for member, value in (data.enum("skb_drop_reason_subsys") or {}).items():
        sub = member.replace("SKB_DROP_REASON_SUBSYS_", "")
        if value and sub not in ("NUM",):
            subsystems[value] = sub
    return Reasons(names, "btf", not_drops, subsystems)


def from_print_fmt(print_fmt: str) -> Reasons:
    """Names from the tracepoint's `print fmt` (its __print_symbolic list)."""
    start = print_fmt.find("__print_symbolic")
    pairs = _SYMBOLIC.findall(print_fmt[start:] if start >= 0 else "")
    if not pairs:
        raise DroptraceError("the kfree_skb tracepoint names no drop reasons (kernel < 5.17?)")
    names: Dict[int, str] = {}
    not_drops: List[int] = []
    for num, name in pairs:
        value = int(num, 0)
        if name == "MAX":
            continue
        name = _short(name) if name.startswith(PREFIX) else name
        if name in ("NOT_DROPPED_YET", "CONSUMED"):
            not_drops.append(value)
        names.setdefault(value, name)
    if 0 not in names:  # SKB_NOT_DROPPED_YET is 0 on every kernel; 6.1 does not print it
        names[0] = "NOT_DROPPED_YET"
        not_drops.append(0)
    return Reasons(names, "tracefs", not_drops)


def _read_subsystem_names(subsystems: Dict[int, str], btf_dir: str) -> Dict[int, str]:
    out: Dict[int, str] = {}
    if not subsystems:
        return out
    try:
        base = btfmod.kernel(os.path.join(btf_dir, "vmlinux"))
        files = sorted(os.listdir(btf_dir))
    except (OSError, btfmod.BTFError):
        return out
    for fname in files:
        try:
            data = base if fname == "vmlinux" else btfmod.read(os.path.join(btf_dir, fname), base)
        except (OSError, btfmod.BTFError):
            continue
        _collect_subsystem(data.own_enums(subsystem_enums), subsystems, out)
    return out


def _collect_subsystem(enums: Dict[str, Dict[str, int]], subsystems: Dict[int, str],
                       out: Dict[int, str]) -> None:
    for ename, members in enums.items():
        if ename in ("skb_drop_reason", "skb_drop_reason_subsys") or "drop" not in ename:
            continue
        for member, value in members.items():
            sub = value >> SUBSYS_SHIFT
            if sub in subsystems:
                out.setdefault(value, f"{subsystems[sub]}:{member}")


def load(btf_path: str = os.path.join(BTF_DIR, "vmlinux"), print_fmt: Optional[str] = None) -> Reasons:
    """Reasons of the running kernel: BTF first, then the tracepoint format."""
    if os.path.exists(btf_path):
        try:
            return from_btf(btfmod.kernel(btf_path))
        except (OSError, btfmod.BTFError):
            pass
    if print_fmt is None:
        from . import tracefs
        print_fmt = tracefs.kfree_skb_format().print_fmt
    return from_print_fmt(print_fmt)

