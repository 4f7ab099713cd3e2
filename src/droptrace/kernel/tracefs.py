"""tracefs: where it is, and the kfree_skb event's format file.

The format file gives the classic tracepoint's field offsets (used by the
tracepoint hook, and without BTF) and its `print fmt`, which names the drop
reasons when BTF is missing.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from typing import Dict, Optional

from ..errors import DroptraceError

CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
EVENT = "events/skb/kfree_skb/format"


@dataclass(frozen=True)
class Field:
    offset: int
    size: int


@dataclass
class EventFormat:
    fields: Dict[str, Field]
    print_fmt: str


def find(mount: bool = True) -> Optional[str]:
    """The tracefs directory, mounting it at /sys/kernel/tracing if asked and needed."""
    for d in CANDIDATES:
        if os.path.exists(os.path.join(d, "events")):
            return d
    if mount and os.path.isdir(CANDIDATES[0]):
        subprocess.run(["mount", "-t", "tracefs", "nodev", CANDIDATES[0]],
                       capture_output=True, check=False)
        if os.path.exists(os.path.join(CANDIDATES[0], "events")):
            return CANDIDATES[0]
    return None


def require() -> str:
    d = find()
    if d is None:
        raise DroptraceError("tracefs is not mounted; mount it: mount -t tracefs nodev /sys/kernel/tracing")
    return d


_FIELD = re.compile(r"field:(?P<decl>[^;]*);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);")


def parse_format(text: str) -> EventFormat:
    """Parse a tracepoint format file; unknown lines are ignored."""
    fields: Dict[str, Field] = {}
    for m in _FIELD.finditer(text):
        decl = m.group("decl").strip()
        fname = re.sub(r"\[.*\]$", "", decl.split()[-1] if decl else "").lstrip("*")
        if fname:
            fields[fname] = Field(int(m.group("off")), int(m.group("size")))
    pm = re.search(r"^print fmt:\s*(.*)$", text, re.M)
    return EventFormat(fields, pm.group(1) if pm else "")


def kfree_skb_format() -> EventFormat:
    path = os.path.join(require(), EVENT)
    try:
        with open(path) as f:
            return parse_format(f.read())
    except OSError as e:
        raise DroptraceError(f"cannot read {path}: {e.strerror}") from None
