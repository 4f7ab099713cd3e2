"""The layouts of the C structs shared with BPF, read by name from the compiled object's own BTF.

One source of truth: bpf/droptrace.h, compiled (clang -g puts every struct that a
map, a global or a function uses into the object's .BTF section). Python never
re-types those structs as format strings: it asks for a field by name and gets
its offset and size from the object it is about to load. Reordering or resizing
a C field therefore keeps droptrace correct, and renaming or removing one that
Python uses fails loudly with a LayoutError instead of decoding garbage.
"""
from __future__ import annotations

import functools
import os
import struct
import sys
from dataclasses import dataclass
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

from ..errors import DroptraceError
from . import btf as kbtf
from . import libbpf

Value = Union[int, bytes]
_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_SCALARS = (kbtf.KIND_INT, kbtf.KIND_ENUM, kbtf.KIND_ENUM64, kbtf.KIND_PTR)


class LayoutError(DroptraceError):
    """The BPF object's BTF does not have (or cannot give) a layout droptrace relies on."""


def _mismatch(source: str, what: str) -> LayoutError:
    return LayoutError(f"{what}: the BPF object {source} and this droptrace disagree "
                       "(reinstall droptrace so that both come from the same build)")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    offset: int  # bytes from the start of the struct
    size: int  # bytes
    kind: str  # "int": a scalar of 1/2/4/8 bytes; "bytes": anything else (arrays, nested structs)
    signed: bool = False  # "int" only: a signed C integer (or signed enum)

    @property
    def end(self) -> int:
        return self.offset + self.size


class StructLayout:
    """One C struct: its size and its fields by name, in offset order."""

    def __init__(self, name: str, size: int, fields: Sequence[FieldSpec], source: str = "<BTF>",
                 order: str = "<") -> None:
        self.name, self.size, self.source, self.order = name, size, source, order
        self.fields: Dict[str, FieldSpec] = {}
        for f in sorted(fields, key=lambda f: f.offset):
            self.fields.setdefault(f.name, f)

    def __repr__(self) -> str:
        return f"StructLayout({self.name!r}, size={self.size}, fields={list(self.fields)})"

    def field(self, name: str) -> FieldSpec:
        f = self.fields.get(name)
        if f is None:
            raise _mismatch(self.source, f"struct {self.name} has no field {name!r}")
        return f

    def offset(self, name: str) -> int:
        return self.field(name).offset

    def struct(self, names: Sequence[str]) -> Tuple[struct.Struct, Dict[str, int]]:
        """A struct.Struct unpacking just these fields (up to the end of the last), and each one's index."""
        specs = sorted({n: self.field(n) for n in names}.values(), key=lambda f: f.offset)
        fmt, pos, index = [self.order], 0, {}
        for i, f in enumerate(specs):
            if f.offset < pos:
                raise LayoutError(f"struct {self.name}: field {f.name!r} overlaps another requested field")
            if f.offset > pos:
                fmt.append(f"{f.offset - pos}x")
            if f.kind == "int":
                code = _INT_CODES[f.size]
                fmt.append(code.lower() if f.signed else code)
            else:
                fmt.append(f"{f.size}s")
            index[f.name] = i
            pos = f.end
        return struct.Struct("".join(fmt)), index

    def pack(self, values: Mapping[str, Value], complete: bool = True) -> bytes:
        """self.size bytes with each named field at its offset; the rest zero."""
        unknown = [n for n in values if n not in self.fields]
        if unknown:
            raise _mismatch(self.source, f"struct {self.name} has no field(s) {', '.join(unknown)}")
        if complete:
            missing = [n for n in self.fields if not n.startswith("_") and n not in values]
            if missing:
                raise _mismatch(self.source, f"struct {self.name} has field(s) droptrace does not set: "
                                f"{', '.join(missing)}")
        buf = bytearray(self.size)
        for name, v in values.items():
            f = self.fields[name]
            if f.kind == "int":
                bits = 8 * f.size
                lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if f.signed else (0, (1 << bits) - 1)
                if not isinstance(v, int) or not lo <= v <= hi:
                    raise LayoutError(f"{self.name}.{name}: {v!r} is not an integer in [{lo}, {hi}]")
                buf[f.offset:f.end] = v.to_bytes(f.size, "little" if self.order == "<" else "big",
                                                 signed=f.signed)
            else:
                if not isinstance(v, (bytes, bytearray)) or len(v) > f.size:
                    raise LayoutError(f"{self.name}.{name}: expected at most {f.size} bytes, got {v!r:.60}")
                buf[f.offset:f.end] = bytes(v).ljust(f.size, b"\0")
        return bytes(buf)

    def unpack(self, buf: bytes) -> Dict[str, Value]:
        """Every field by name (for tests and tools; the hot path uses struct())."""
        if len(buf) < self.size:
            raise LayoutError(f"struct {self.name} needs {self.size} bytes, got {len(buf)}")
        byteorder = "little" if self.order == "<" else "big"
        return {f.name: int.from_bytes(buf[f.offset:f.end], byteorder, signed=f.signed)
                if f.kind == "int" else bytes(buf[f.offset:f.end]) for f in self.fields.values()}


def _fields(btf: kbtf.BTF, t: kbtf.Type, base: int, depth: int = 0) -> Iterator[FieldSpec]:
    if depth > 16:
        raise kbtf.BTFError(f"struct {t.name or 'anonymous'} nests too deeply")
    for m in t.members:
        if m.bitfield_size or m.bit_offset % 8:
            raise kbtf.BTFError(f"bitfield {t.name}.{m.name} is not supported")
        off, mt = base + m.bit_offset // 8, btf.resolve(m.type)
        if not m.name:  # an anonymous struct or union: its members belong to this struct
            if mt.kind in (kbtf.KIND_STRUCT, kbtf.KIND_UNION):
                yield from _fields(btf, mt, off, depth + 1)
            continue
        size = btf.size_of(m.type)
        if mt.kind in _SCALARS and size in _INT_CODES:
            signed = bool(mt.encoding & kbtf.INT_SIGNED) if mt.kind == kbtf.KIND_INT else \
                mt.kind != kbtf.KIND_PTR and mt.kind_flag
            yield FieldSpec(m.name, off, size, "int", signed)
        else:
            yield FieldSpec(m.name, off, size, "bytes")


class ObjectLayout:
    """The structs and globals of one BPF object, from its BTF."""

    def __init__(self, btf: kbtf.BTF, source: str = "<BTF>", keep: object = None) -> None:
        self.btf, self.source = btf, source
        self.order = "<" if sys.byteorder == "little" else ">"  # libbpf holds BTF in host order
        self._keep = keep  # the opened object the BTF belongs to
        self._structs: Dict[str, StructLayout] = {}

    @classmethod
    def from_btf(cls, data: bytes, source: str = "<BTF>") -> "ObjectLayout":
        """From raw .BTF bytes (variable offsets are then the DATASEC's own)."""
        try:
            return cls(kbtf.parse(data), source)
        except kbtf.BTFError as e:
            raise _mismatch(source, f"unreadable BTF ({e})") from None

    @classmethod
    def from_elf(cls, data: bytes, source: str = "<ELF>") -> "ObjectLayout":
        """From the bytes of a BPF object file, opened by libbpf as it opens one to load it."""
        return cls._open(source, data)

    @classmethod
    def from_file(cls, path: str) -> "ObjectLayout":
        if not os.path.isfile(path):
            raise _mismatch(path, "cannot read it (no such file)")
        return cls._open(path, None)

    @classmethod
    def _open(cls, source: str, data: Optional[bytes]) -> "ObjectLayout":
        try:
            obj = libbpf.Object(source, data)
        except libbpf.BpfError as e:
            raise _mismatch(source, f"not a readable ELF64 object: libbpf cannot open it ({e})") from None
        try:
            return cls(kbtf.of_object(obj), source, obj)
        except kbtf.BTFError:
            obj.close()
            raise _mismatch(source, "no .BTF section (was it built without -g?)") from None

    def struct(self, name: str) -> StructLayout:
        """The layout of `struct name` (name without "struct ")."""
        if name not in self._structs:
            try:
                t = self.btf.find(name, kbtf.KIND_STRUCT) or self.btf.find(name, kbtf.KIND_UNION)
                if t is None:
                    raise _mismatch(self.source, f"struct {name} is not in its BTF")
                fields = list(_fields(self.btf, t, 0))
            except kbtf.BTFError as e:
                raise _mismatch(self.source, f"struct {name}: {e}") from None
            self._structs[name] = StructLayout(name, t.size, fields, self.source, self.order)
        return self._structs[name]

    def variable(self, section: str, name: str) -> Tuple[int, int]:
        """(offset, size) of the global `name` in a data section such as ".rodata" (libbpf set the
        offsets from the symbol table when it opened the object)."""
        try:
            sec = self.btf.find(section, kbtf.KIND_DATASEC)
            for v in sec.vars if sec else ():
                var = self.btf.type(v.type)
                if var.kind == kbtf.KIND_VAR and var.name == name:
                    return v.offset, v.size
        except kbtf.BTFError:
            pass
        raise _mismatch(self.source, f"no global {name} in its {section} section")

    def enum(self, name: str) -> Dict[str, int]:
        """The members of `enum name`, by name."""
        try:
            members = self.btf.enum(name)
        except kbtf.BTFError:
            members = None
        if members is None:
            raise _mismatch(self.source, f"enum {name} is not in its BTF")
        return members


@functools.cache  # lru_cache without a size limit
def load(path: str) -> ObjectLayout:
    """The layout of the BPF object at path, read once per process."""
    return ObjectLayout.from_file(path)


