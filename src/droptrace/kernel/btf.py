"""BTF, the kernel's and droptrace's own objects', parsed by libbpf and read here by name.

libbpf (kernel/libbpf.py) parses the file: header, strings, split module BTF over vmlinux,
byte order; it finds types by name and, for a BPF object it opens, sets the data sections'
variable offsets. droptrace names drop reasons from enum skb_drop_reason of
/sys/kernel/btf/vmlinux and from subsystem enums in module BTF, finds tracepoint prototypes
for trail, and reads the layouts of its own structs (kernel/layout.py); each type it asks for
is made into a small Type record from libbpf's in-memory record, when first asked for.
"""
from __future__ import annotations

import functools
import os
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple

from . import libbpf

# The running kernel's BTF; DROPTRACE_KERNEL_BTF points elsewhere (tests use it to act as a kernel
# without BTF, or with reasons no saved list has).
VMLINUX = os.environ.get("DROPTRACE_KERNEL_BTF", "/sys/kernel/btf/vmlinux")
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
_HEAD = struct.Struct("=3I")  # libbpf holds BTF in host byte order


class BTFError(ValueError):
    """Not BTF that libbpf and this reader understand, or a type it lacks."""


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


class BTF:
    """One BTF held by libbpf; its types by id (1 .. len - 1; a split BTF's base's come first)."""

    def __init__(self, handle: libbpf.Btf) -> None:
        self.handle = handle
        self._made: Dict[int, Type] = {0: Type(0, 0)}

    def __len__(self) -> int:
        return self.handle.count

    def type(self, type_id: int) -> Type:
        t = self._made.get(type_id)
        if t is None:
            if not 0 < type_id < len(self):
                raise BTFError(f"BTF type id {type_id} out of range ({len(self)} types)")
            try:
                t = self._made[type_id] = self._make(type_id)
            except (libbpf.BpfError, struct.error) as e:
                raise BTFError(f"BTF type {type_id}: {e}") from None
        return t

    def _make(self, type_id: int) -> Type:
        h = self.handle
        name_off, info, size = _HEAD.unpack(h.record(type_id, _HEAD.size))
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31)
        fixed, per = _EXTRA.get(kind, (0, 0))
        rest = h.record(type_id, _HEAD.size + fixed + per * vlen)[_HEAD.size:]
        t = Type(type_id, kind, h.name(name_off), kind_flag=kflag)
        if kind in _REFS:
            t.type = size
        else:
            t.size = size
        if kind == KIND_INT:
            (word,) = struct.unpack("=I", rest)
            t.encoding, t.bits = (word >> 24) & 0xF, word & 0xFF
        elif kind == KIND_ARRAY:
            t.type, _index, t.nelems = struct.unpack("=3I", rest)
        elif kind in (KIND_STRUCT, KIND_UNION):
            ms = []
            for m_off, m_type, off in struct.iter_unpack("=3I", rest):
                bits = off >> 24 if kflag else 0
                ms.append(Member(h.name(m_off), m_type, off & 0xFFFFFF if kflag else off, bits))
            t.members = tuple(ms)
        elif kind == KIND_FUNC_PROTO:
            t.members = tuple(Member(h.name(m_off), m_type) for m_off, m_type in
                              struct.iter_unpack("=2I", rest))
        elif kind == KIND_ENUM:
            signed = "=Ii" if kflag else "=II"
            t.values = {h.name(m_off): v for m_off, v in struct.iter_unpack(signed, rest)}
        elif kind == KIND_ENUM64:
            t.values = {h.name(m_off): (hi << 32) | lo for m_off, lo, hi in struct.iter_unpack("=3I", rest)}
        elif kind == KIND_VAR:
            (t.linkage,) = struct.unpack("=I", rest)
        elif kind == KIND_FUNC:
            t.linkage = vlen
        elif kind == KIND_DATASEC:
            t.vars = tuple(SecVar(*v) for v in struct.iter_unpack("=3I", rest))
        return t

    def resolve(self, type_id: int) -> Type:
        """The type behind typedefs and const/volatile/restrict/type tags."""
        t = self.type(type_id)
        for _ in range(len(self)):
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
        """The first type of this kind and name, if any (libbpf's look-up)."""
        found = self.handle.find(name, kind)
        return self.type(found) if found else None

    def named(self, kind: int, names: Iterable[str]) -> Dict[str, Type]:
        """The first type of this kind for each of these names that has one."""
        out = {}
        for n in names:
            t = self.find(n, kind)
            if t is not None:
                out[n] = t
        return out

    def enum(self, name: str) -> Optional[Dict[str, int]]:
        """The members of enum `name` (32 or 64 bits), or None."""
        t = self.find(name, KIND_ENUM) or self.find(name, KIND_ENUM64)
        return None if t is None else dict(t.values)

    def own_of_kind(self, kind: int) -> Iterator[Tuple[int, str, int]]:
        """(id, name, referenced type or size) of each type of this kind in this BTF itself (not its
        base), read from the records' heads only (a FUNC's referenced type is its prototype)."""
        h = self.handle
        for i in range(h.first, len(self)):
            name_off, info, ref = _HEAD.unpack(h.record(i, _HEAD.size))
            if (info >> 24) & 0x1F == kind:
                yield i, h.name(name_off), ref

    def own_enums(self, where: Callable[[str], bool]) -> Dict[str, Dict[str, int]]:
        """The named enums of this BTF itself (not of its base) whose name `where` accepts."""
        out: Dict[str, Dict[str, int]] = {}
        for i in range(self.handle.first, len(self)):
            name_off, info, _ = _HEAD.unpack(self.handle.record(i, _HEAD.size))
            if (info >> 24) & 0x1F in (KIND_ENUM, KIND_ENUM64) and name_off:
                name = self.handle.name(name_off)
                if name not in out and where(name):
                    out[name] = dict(self.type(i).values)
        return out


def _wrap(make: Callable[[], libbpf.Btf]) -> BTF:
    try:
        return BTF(make())
    except libbpf.BpfError as e:
        raise BTFError(str(e)) from None


def parse(data: bytes, base: Optional[BTF] = None) -> BTF:
    """Raw BTF bytes; for split (module) BTF, the vmlinux BTF as base (libbpf 1.1 splits files only)."""
    if base is None:
        return _wrap(lambda: libbpf.Btf.from_bytes(data))
    with tempfile.NamedTemporaryFile(prefix="droptrace-btf-") as f:
        f.write(data)
        f.flush()
        return read(f.name, base)


def read(path: str, base: Optional[BTF] = None) -> BTF:
    """A raw BTF file (/sys/kernel/btf/*) or an ELF object's .BTF. OSError if it cannot be read."""
    if not os.access(path, os.R_OK):
        raise FileNotFoundError(2, "cannot read BTF", path) if not os.path.exists(path) else \
            PermissionError(13, "cannot read BTF", path)
    return _wrap(lambda: libbpf.Btf.from_file(path, base.handle if base else None))


@functools.lru_cache(maxsize=4)
def kernel(path: str = VMLINUX) -> BTF:
    """The running kernel's BTF, parsed once per process (libbpf: some 10 ms)."""
    return read(path)


def of_object(obj: libbpf.Object) -> BTF:
    """An opened BPF object's BTF, with the offsets libbpf set in its data sections."""
    return _wrap(obj.btf)
