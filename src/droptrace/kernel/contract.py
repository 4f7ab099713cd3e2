"""The BPF/Python contract, read from the compiled objects' own BTF.

bpf/droptrace.h defines every struct and constant shared with user space,
once. The compiled object carries them as BTF; this module reads them by
name (struct fields by offset, constants by enum member), so Python re-types
nothing. A renamed or missing field fails here, loudly, at start.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Dict

from ..errors import DroptraceError
from .layout import ObjectLayout, StructLayout
from .layout import load as load_layout

# Every feature's object carries droptrace.h's layouts and constants; the shared ones are read
# from this one's. Each feature names its own objects (features/X/tracer.py).
OBJECT = "drops.bpf.o"
# The enums of droptrace.h that hold constants, by their C name.
_ENUMS = ("dt_limit", "dt_event_flag", "dt_stat", "dt_reason_mode", "dt_flow", "dt_hook", "dt_verdict",
          "dt_fc_flag", "dt_fn", "dt_hop_kind")


def object_path(name: str = OBJECT) -> str:
    path = resources.files("droptrace") / "bpf" / name
    if not path.is_file():
        raise DroptraceError(f"BPF object {path} is missing: this droptrace was installed without "
                             "its compiled BPF program; reinstall it with clang present")
    return str(path)


@dataclass(frozen=True)
class Contract:
    """One object's layouts and constants."""

    path: str
    layout: ObjectLayout
    const: Dict[str, int]  # every member of droptrace.h's constant enums, e.g. DT_SNAP_MAX

    def struct(self, name: str) -> StructLayout:
        return self.layout.struct(name)

    @property
    def config_offset(self) -> int:
        """Where `cfg` (the feature's configuration struct) sits in the object's .rodata."""
        return self.layout.variable(".rodata", "cfg")[0]


@functools.cache
def contract(name: str = OBJECT) -> Contract:
    path = object_path(name)
    layout = load_layout(path)
    const: Dict[str, int] = {}
    for enum in _ENUMS:
        const.update(layout.enum(enum))
    return Contract(path, layout, const)


def limits() -> Dict[str, int]:
    """The constants of droptrace.h (DT_SNAP_MAX, DT_SNAP_BIG, DT_FILTER_MAX, ...)."""
    return contract().const
