"""The kernel functions that take a packet: those with a `struct sk_buff *` among their first
arguments, as the running kernel's BTF declares them (as pwru finds them), narrowed to those
ftrace can hook (tracefs's available_filter_functions) and to the user's globs.

`droptrace trail --functions` hooks each at the argument the skb is; `droptrace doctor` counts them.
"""
from __future__ import annotations

import errno
import fnmatch
import os
import re
from typing import Dict, Iterable, List, Optional, Set

from . import btf as btfmod

AVAILABLE = "available_filter_functions"


def skb_functions(kernel: btfmod.BTF, first: int) -> Dict[str, int]:
    """Each function of this BTF with a `struct sk_buff *` among its first `first` arguments ->
    the index of the first such argument."""
    skb = kernel.find("sk_buff", btfmod.KIND_STRUCT)
    if skb is None:
        return {}
    out: Dict[str, int] = {}
    pointers: Dict[int, bool] = {}  # parameter type id -> is it `struct sk_buff *` (behind modifiers)

    def is_skb(type_id: int) -> bool:
        hit = pointers.get(type_id)
        if hit is None:
            t = kernel.resolve(type_id)
            hit = pointers[type_id] = t.kind == btfmod.KIND_PTR and kernel.resolve(t.type).id == skb.id
        return hit

    for _, name, proto_id in kernel.own_of_kind(btfmod.KIND_FUNC):
        for n, p in enumerate(kernel.type(proto_id).members[:first]):
            if p.type and is_skb(p.type):
                out.setdefault(name, n)
                break
    return out


def return_kinds(kernel: btfmod.BTF, names: Iterable[str]) -> Dict[str, str]:
    """What each function returns, as --returns shows it: void, pointer, or int (any other
    scalar: bool, enum, integer)."""
    want, out = set(names), {}
    for _, name, proto_id in kernel.own_of_kind(btfmod.KIND_FUNC):
        if name in want and name not in out:
            ret = kernel.type(proto_id).type
            kind = kernel.resolve(ret).kind if ret else 0
            out[name] = "void" if not ret else "pointer" if kind == btfmod.KIND_PTR else "int"
    return out


def show_return(value: int, kind: str) -> Optional[str]:
    """A return value as --returns shows it: a negative errno by name (-EPERM), a pointer in hex,
    nothing for a void function."""
    if kind == "void":
        return None
    if kind == "pointer":
        return f"0x{value & (1 << 64) - 1:x}" if not -4096 < value < 0 else _errno(value)
    value = value if value < 1 << 31 else value - (1 << 32) if value < 1 << 32 else value
    return _errno(value) if -4096 < value < 0 else str(value)


def _errno(value: int) -> str:
    return f"-{errno.errorcode.get(-value, str(-value))}"


def hookable(tracefs_dir: Optional[str]) -> Optional[Set[str]]:
    """The functions ftrace can hook here (kprobe-multi and fentry hook nothing else), or None
    where the list cannot be read."""
    if tracefs_dir is None:
        return None
    try:
        with open(os.path.join(tracefs_dir, AVAILABLE), "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    return parse_available(text)


def parse_available(text: str) -> Set[str]:
    """available_filter_functions' names: `name`, `name [module]`, or `addr name` (6.5+ with
    available_filter_functions_addrs; the plain file never has addresses)."""
    out = set()
    for line in text.splitlines():
        words = line.split()
        if words:
            out.add(words[0])
    return out


def parse_globs(values: Iterable[str]) -> List[str]:
    """--functions 'ip_*,nf_*' (repeatable) -> the globs; empty: every function."""
    return [g for v in values for g in (p.strip() for p in v.split(",")) if g]


def select(found: Dict[str, int], available: Optional[Set[str]], globs: List[str]) -> Dict[str, int]:
    """The functions to hook: found in BTF, hookable (when that is known), matching a glob (any,
    without globs); in name order."""
    pattern = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None
    return {n: found[n] for n in sorted(found)
            if (available is None or n in available) and (pattern is None or pattern.match(n))}
