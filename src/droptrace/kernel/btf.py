"""A reader for raw BTF: enums and struct sizes of the kernel's, or every type of a small one.

droptrace names drop reasons from the running kernel: enum skb_drop_reason in
/sys/kernel/btf/vmlinux, and subsystem enums in module BTF (split BTF whose
string offsets continue the base's). No bpftool or libbpf is needed for it.
With types=True, parse() also keeps the full type table (for the small BTF of
droptrace's own BPF object, whose struct layouts kernel/layout.py reads, and the
kernel's tracepoint prototypes for trail); a type is made when first asked for.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

# The running kernel's BTF; DROPTRACE_KERNEL_BTF points elsewhere (tests use it to act as a kernel
# without BTF, or with reasons no saved list has).
VMLINUX = os.environ.get("DROPTRACE_KERNEL_BTF", "/sys/kernel/btf/vmlinux")
MAGIC = 0xEB9F
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 1, 2, 3, 4, 5, 6
KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC = 7, 8, 9, 10, 11, 12
KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM64 = 13, 14, 15, 17, 19
KIND_FLOAT, KIND_TYPE_TAG = 16, 18
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4  # INT encoding bits

# bytes that follow struct btf_type, per kind: (fixed, per vlen member)
_EXTRA = {KIND_INT: (4, 0), KIND_ARRAY: (12, 0), KIND_STRUCT: (0, 12), KIND_UNION: (0, 12),
          KIND_ENUM: (0, 8), KIND_FUNC_PROTO: (0, 8), KIND_VAR: (4, 0), KIND_DATASEC: (0, 12),
          KIND_DECL_TAG: (4, 0), KIND_ENUM64: (0, 12)}
# kinds whose size_type field is a type id, not a size
_REFS = (KIND_PTR, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_VAR,
         KIND_DECL_TAG, KIND_TYPE_TAG, KIND_FUNC_PROTO)
_MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
_SIZED = (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT)
_MAX_KIND = KIND_ENUM64


class BTFError(ValueError):
    """The bytes are not BTF this reader understands."""


@dataclass(frozen=True)
class Member:
    """A STRUCT/UNION member (bitfield_size 0: not a bitfield), or a FUNC_PROTO parameter."""

    name: str
    type: int
    bit_offset: int = 0
    bitfield_size: int = 0


@dataclass(frozen=True)
class SecVar:
    """A DATASEC entry: the VAR's type id, and where it sits in the section."""

    type: int
    offset: int
    size: int


@dataclass
class Type:
    """One BTF type. `type` is the referenced type (PTR, TYPEDEF and modifiers, VAR, FUNC) or the
    element type (ARRAY); `size` is in bytes (INT, STRUCT, UNION, ENUM, DATASEC, FLOAT)."""

    id: int
    kind: int  # 0 for void (id 0)
    name: str = ""
    size: int = 0
    type: int = 0
    nelems: int = 0  # ARRAY
    encoding: int = 0  # INT: INT_SIGNED | INT_CHAR | INT_BOOL
    bits: int = 0  # INT: bits used
    kind_flag: bool = False
    members: Tuple[Member, ...] = ()  # STRUCT, UNION, FUNC_PROTO
    values: Dict[str, int] = field(default_factory=dict)  # ENUM, ENUM64
    vars: Tuple[SecVar, ...] = ()  # DATASEC
    linkage: int = 0  # VAR, FUNC


@dataclass
class BTF:
    enums: Dict[str, Dict[str, int]] = field(default_factory=dict)
    struct_sizes: Dict[str, int] = field(default_factory=dict)
    str_len: int = 0  # size of this file's string section (base for split BTF)
    types: Sequence[Type] = field(default_factory=list)  # by id, [0] is void; only with types=True

    def type(self, type_id: int) -> Type:
        if not 0 <= type_id < len(self.types):
            raise BTFError(f"BTF type id {type_id} out of range ({len(self.types)} types)")
        return self.types[type_id]

    def resolve(self, type_id: int) -> Type:
        """The type behind typedefs and const/volatile/restrict/type tags."""
        t = self.type(type_id)
        for _ in range(len(self.types)):
            if t.kind not in _MODIFIERS:
                return t
            t = self.type(t.type)
        raise BTFError(f"BTF type {type_id} refers to itself")

    def size_of(self, type_id: int, _depth: int = 0) -> int:
        """sizeof the type, through typedefs, modifiers and arrays (pointers are 8 bytes)."""
        t = self.resolve(type_id)
        if t.kind in _SIZED:
            return t.size
        if t.kind == KIND_PTR:
            return 8
        if t.kind == KIND_ARRAY and _depth < 64:
            return t.nelems * self.size_of(t.type, _depth + 1)
        raise BTFError(f"BTF type {type_id} ({t.name or 'anonymous'}, kind {t.kind}) has no size")

    def find(self, name: str, kind: int) -> Optional[Type]:
        """The first type of this kind and name, if any."""
        return self.named(kind, [name]).get(name)

    def named(self, kind: int, names: Iterable[str]) -> Dict[str, Type]:
        """The first type of this kind for each of these names that has one."""
        wanted = set(names)
        if isinstance(self.types, _Types):
            return self.types.named(kind, wanted)
        out: Dict[str, Type] = {}
        for t in self.types:
            if t.kind == kind and t.name in wanted:
                out.setdefault(t.name, t)
        return out


class _Types(Sequence):
    """Every type of a BTF by id, each made when first asked for: the kernel's has some 100,000
    and droptrace needs a few dozen."""

    def __init__(self, base: Sequence[Type], data: bytes, order: str,
                 entries: List[Tuple[int, int, int, int]], name: Callable[[int], str]) -> None:
        self._base, self._first = base, len(base)  # the base BTF's ids come first
        self._data, self._order, self._entries, self._name = data, order, entries, name
        self._made: Dict[int, Type] = {}

    def __len__(self) -> int:
        return self._first + len(self._entries)

    def __getitem__(self, i: Union[int, slice]):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if i < self._first:
            return self._base[i]
        t = self._made.get(i)
        if t is None:
            pos, name_off, info, size = self._entries[i - self._first]  # IndexError past the end
            t = self._made[i] = _full_type(i, self._data, self._order, pos, name_off, info, size, self._name)
        return t

    def named(self, kind: int, names: set) -> Dict[str, Type]:
        out: Dict[str, Type] = {}
        for j, (_pos, name_off, info, _size) in enumerate(self._entries):
            if (info >> 24) & 0x1F == kind and name_off:
                n = self._name(name_off)
                if n in names and n not in out:
                    out[n] = self[self._first + j]
        return out


def parse(data: bytes, base: Optional[BTF] = None,
          enums: Optional[Callable[[str], bool]] = None, types: bool = False) -> BTF:
    """Parse raw BTF bytes. For module BTF pass the vmlinux BTF as base.

    `enums`, if given, chooses which enums to keep by name (the kernel has
    thousands; droptrace needs two), and struct sizes are then skipped too.
    `types` keeps every type in BTF.types, by id (for small BTF; split BTF
    needs a base parsed with types=True too, whose ids come first).
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
    entries: List[Tuple[int, int, int, int]] = []
    if types and base is not None and not base.types:
        raise BTFError("split BTF with types=True needs a base parsed with types=True")
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
        if types:
            if kind == 0 or kind > _MAX_KIND:
                raise BTFError(f"unknown BTF kind {kind} (type {len(entries) + 1})")
            entries.append((pos, name_off, info, size))
        if kind in (KIND_ENUM, KIND_ENUM64) and name_off and (enums is None or enums(name(name_off))):
            out.enums.setdefault(name(name_off), _enum_values(data, order, pos, kind, info, name))
        elif kind in (KIND_STRUCT, KIND_UNION) and name_off and enums is None:
            out.struct_sizes.setdefault(name(name_off), size)
        pos = nxt
    if types and pos != end:
        raise BTFError("trailing bytes after the last BTF type")
    if types:
        out.types = _Types(base.types if base is not None else [Type(0, 0)], data, order, entries, name)
    return out


def _enum_values(data: bytes, order: str, pos: int, kind: int, info: int,
                 name: Callable[[int], str]) -> Dict[str, int]:
    signed = bool(info >> 31)
    members: Dict[str, int] = {}
    for i in range(info & 0xFFFF):
        if kind == KIND_ENUM:
            m_off, val = struct.unpack_from(order + ("Ii" if signed else "II"), data, pos + 8 * i)
        else:
            m_off, lo, hi = struct.unpack_from(order + "3I", data, pos + 12 * i)
            val = (hi << 32) | lo
        members[name(m_off)] = val
    return members


def _full_type(type_id: int, data: bytes, order: str, pos: int, name_off: int, info: int, size: int,
               name: Callable[[int], str]) -> Type:
    kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31)
    if kind == 0 or kind > _MAX_KIND:
        raise BTFError(f"unknown BTF kind {kind} (type {type_id})")
    t = Type(type_id, kind, name(name_off), kind_flag=kflag)
    if kind in _REFS:
        t.type = size
    else:
        t.size = size
    if kind == KIND_INT:
        (word,) = struct.unpack_from(order + "I", data, pos)
        t.encoding, t.bits = (word >> 24) & 0xF, word & 0xFF
    elif kind == KIND_ARRAY:
        t.type, _index, t.nelems = struct.unpack_from(order + "3I", data, pos)
    elif kind in (KIND_STRUCT, KIND_UNION):
        ms = []
        for i in range(vlen):
            m_off, m_type, off = struct.unpack_from(order + "3I", data, pos + 12 * i)
            bits = off >> 24 if kflag else 0
            ms.append(Member(name(m_off), m_type, off & 0xFFFFFF if kflag else off, bits))
        t.members = tuple(ms)
    elif kind == KIND_FUNC_PROTO:
        t.members = tuple(Member(name(m_off), m_type) for m_off, m_type in
                          (struct.unpack_from(order + "2I", data, pos + 8 * i) for i in range(vlen)))
    elif kind in (KIND_ENUM, KIND_ENUM64):
        t.values = _enum_values(data, order, pos, kind, info, name)
    elif kind == KIND_VAR:
        (t.linkage,) = struct.unpack_from(order + "I", data, pos)
    elif kind == KIND_FUNC:
        t.linkage = vlen
    elif kind == KIND_DATASEC:
        t.vars = tuple(SecVar(*struct.unpack_from(order + "3I", data, pos + 12 * i)) for i in range(vlen))
    return t


def read(path: str, base: Optional[BTF] = None,
         enums: Optional[Callable[[str], bool]] = None, types: bool = False) -> BTF:
    with open(path, "rb") as f:
        return parse(f.read(), base, enums, types)
