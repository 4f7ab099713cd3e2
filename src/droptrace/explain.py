"""What a drop reason means and what to check, for the names of the running kernel.

The text lives in `explanations.py` (written by us from the kernel's own comments in
include/net/dropreason-core.h); this module matches a name as a user gives it (any case,
prefix optional, SUBSYS:NAME, or this kernel's number) to that text and to the kernel's value.
"""
from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
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


@functools.lru_cache(maxsize=1)
def catalogue() -> Dict[str, Dict[str, object]]:
    """Our entries by reason name (core reasons), read once."""
    from .explanations import ENTRIES

    return {e["reason"]: e for e in ENTRIES}


def _subsystems() -> Dict[str, Dict[str, object]]:
    from .explanations import SUBSYSTEMS

    return SUBSYSTEMS


def _make(name: str, entry: Dict[str, object], value: Optional[int], in_kernel: bool) -> Explanation:
    return Explanation(reason=name, summary=str(entry["summary"]), details=str(entry["details"]),
                       causes=tuple(entry.get("causes") or ()),  # type: ignore[arg-type]
                       counters=tuple(entry.get("counters") or ()),  # type: ignore[arg-type]
                       checks=tuple(tuple(c) for c in entry.get("checks") or ()),  # type: ignore
                       since=entry.get("since"), value=value, in_kernel=in_kernel)  # type: ignore[arg-type]


def _unwritten(name: str, value: Optional[int]) -> Explanation:
    """A reason of a newer kernel than our catalogue: say so rather than invent."""
    return Explanation(
        reason=name, summary=f"the kernel dropped the packet for reason {name} (no entry written yet)",
        details=(f"{name} is a reason of this kernel that droptrace has no explanation for yet. The "
                 "kernel's own comment on it is in include/net/dropreason-core.h (or the subsystem's "
                 "header); the drop location (func+0xoff) and `--stack` show the code that dropped it."),
        causes=(), counters=(), checks=(("where it is dropped", "droptrace --reason " + name + " --stack"),),
        since=None, value=value, in_kernel=value is not None)


def explain(name: str, name_of: Optional[Dict[int, str]] = None) -> Explanation:
    """The explanation of one reason. `name_of` is the running kernel's value -> name (None: no
    drop reasons on this kernel). Raises UnknownReason for a name nobody knows."""
    text = name.strip()
    by_name = {n.upper(): v for v, n in (name_of or {}).items()}
    if re.fullmatch(r"-?[0-9]+", text):  # ASCII digits only: str.isdigit() also takes "²"
        if not name_of or int(text) not in name_of:
            raise UnknownReason(f"no drop reason {text} on this kernel; `droptrace explain` lists them")
        key = name_of[int(text)].upper()
    else:
        key = normalise(text)
        if key.startswith("SKB_DROP_REASON_SUBSYS_"):  # a whole subsystem
            key = key[len("SKB_DROP_REASON_SUBSYS_"):] + ":"
    value = by_name.get(key)
    canonical = name_of[value] if value is not None and name_of else key
    entry = catalogue().get(key)
    if entry is not None:
        return _make(canonical, entry, value, value is not None)
    if ":" in key:
        family = key.split(":", 1)[0]
        sub = _subsystems().get(family)
        if sub is not None and (value is not None or key.endswith(":")
                                or any(n.startswith(family + ":") for n in by_name)
                                or not name_of):
            return _make(canonical.rstrip(":") or family, sub, value, value is not None)
    if value is not None:
        return _unwritten(canonical, value)
    import difflib

    known = sorted(set(catalogue()) | {n for n in by_name})
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UnknownReason(f"unknown drop reason {name!r}{hint}; `droptrace explain` lists them")


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
        entry = _subsystems().get(name.split(":", 1)[0])
    return None if entry is None else str(entry["summary"])


__all__ = ["Explanation", "UnknownReason", "explain", "listing", "summary", "catalogue"]
