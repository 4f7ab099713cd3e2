"""A reader for the kernel's raw BTF, just enough to list enums and structs.

droptrace names drop reasons from the running kernel: enum skb_drop_reason in
/sys/kernel/btf/vmlinux, and subsystem enums in module BTF (split BTF whose
string offsets continue the base's). No bpftool or libbpf is needed for it.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

MAGIC = 0xEB9F
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 1, 2, 3, 4, 5, 6
KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM64 = 13, 14, 15, 17, 19

# bytes that follow struct btf_type, per kind: (fixed, per vlen member)
_EXTRA = {KIND_INT: (4, 0), KIND_ARRAY: (12, 0), KIND_STRUCT: (0, 12), KIND_UNION: (0, 12),
          KIND_ENUM: (0, 8), KIND_FUNC_PROTO: (0, 8), KIND_VAR: (4, 0), KIND_DATASEC: (0, 12),
          KIND_DECL_TAG: (4, 0), KIND_ENUM64: (0, 12)}


class BTFError(ValueError):
    """The bytes are not BTF this reader understands."""


@dataclass
class BTF:
    enums: Dict[str, Dict[str, int]] = field(default_factory=dict)
    struct_sizes: Dict[str, int] = field(default_factory=dict)
    str_len: int = 0  # size of this file's string section (base for split BTF)


def parse(data: bytes, base: Optional[BTF] = None,
          enums: Optional[Callable[[str], bool]] = None) -> BTF:
    """Parse raw BTF bytes. For module BTF pass the vmlinux BTF as base.

    `enums`, if given, chooses which enums to keep by name (the kernel has
    thousands; droptrace needs two), and struct sizes are then skipped too.
    """
    if len(data) < 24:
        raise BTFError("BTF too short")
    magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    order = "<"
    if magic != MAGIC:
        magic, _ver, _flags, hdr_len = struct.unpack_from(">HBBI", data, 0)
        order = ">"
        if magic != MAGIC:
            raise BTFError("bad BTF magic")
    type_off, type_len, str_off, str_len = struct.unpack_from(order + "4I", data, 8)
    t0, s0 = hdr_len + type_off, hdr_len + str_off
    if t0 + type_len > len(data) or s0 + str_len > len(data):
        raise BTFError("BTF sections run past the end of the data")
    strings = data[s0:s0 + str_len]
    base_len = base.str_len if base else 0

    def name(off: int) -> str:
        off -= base_len
        if off < 0 or off >= len(strings):
            return ""
        end = strings.find(b"\0", off)
        return strings[off:end if end >= 0 else len(strings)].decode(errors="replace")

    out = BTF(str_len=base_len + str_len)
    hdr = struct.Struct(order + "3I")
    pos, end = t0, t0 + type_len
    while pos + 12 <= end:
        name_off, info, size = hdr.unpack_from(data, pos)
        pos += 12
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        fixed, per = _EXTRA.get(kind, (0, 0))
        nxt = pos + fixed + per * vlen
        if nxt > end:
            raise BTFError("truncated BTF type")
        if kind in (KIND_ENUM, KIND_ENUM64) and name_off and (enums is None or enums(name(name_off))):
            signed = bool(info >> 31)
            members: Dict[str, int] = {}
            for i in range(vlen):
                if kind == KIND_ENUM:
                    m_off, val = struct.unpack_from(order + ("Ii" if signed else "II"), data, pos + 8 * i)
                else:
                    m_off, lo, hi = struct.unpack_from(order + "3I", data, pos + 12 * i)
                    val = (hi << 32) | lo
                members[name(m_off)] = val
            out.enums.setdefault(name(name_off), members)
        elif kind in (KIND_STRUCT, KIND_UNION) and name_off and enums is None:
            out.struct_sizes.setdefault(name(name_off), size)
        pos = nxt
    return out


def read(path: str, base: Optional[BTF] = None,
         enums: Optional[Callable[[str], bool]] = None) -> BTF:
    with open(path, "rb") as f:
        return parse(f.read(), base, enums)
