"""Builds small raw BTF blobs for tests (the inverse of droptrace.kernel.btf).

Types get ids 1, 2, ... in the order they are added; each method returns its id.
"""
import struct
from typing import Dict, List, Tuple

KIND_PTR, KIND_ARRAY, KIND_UNION, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST = 2, 3, 5, 8, 9, 10


class BTFBuilder:
    def __init__(self, base_str_len: int = 0, base_types: int = 0) -> None:
        self.strings = bytearray(b"\0") if base_str_len == 0 else bytearray()
        self.base = base_str_len
        self.types = bytearray()
        self.last_id = base_types  # split BTF: ids continue the base's (void plus its types - 1)

    def s(self, text: str) -> int:
        if not text:
            return 0
        off = self.base + len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def _type(self, name: str, kind: int, vlen: int, size_or_type: int, kind_flag: bool = False) -> int:
        info = (kind << 24) | vlen | (1 << 31 if kind_flag else 0)
        self.types += struct.pack("<III", self.s(name), info, size_or_type)
        self.last_id += 1
        return self.last_id

    def enum(self, name: str, members: Dict[str, int], size: int = 4) -> int:
        tid = self._type(name, 6, len(members), size)
        for m, v in members.items():
            self.types += struct.pack("<II", self.s(m), v & 0xFFFFFFFF)
        return tid

    def enum64(self, name: str, members: Dict[str, int]) -> int:
        tid = self._type(name, 19, len(members), 8)
        for m, v in members.items():
            self.types += struct.pack("<III", self.s(m), v & 0xFFFFFFFF, v >> 32)
        return tid

    def struct(self, name: str, size: int, members: List[Tuple[str, int, int]], kind_flag: bool = False,
               union: bool = False) -> int:
        """members: (name, type id, bit offset); with kind_flag, bit offset | bitfield size << 24."""
        tid = self._type(name, KIND_UNION if union else 4, len(members), size, kind_flag)
        for m, type_id, bit_off in members:
            self.types += struct.pack("<III", self.s(m), type_id, bit_off)
        return tid

    def int(self, name: str, size: int, signed: bool = False) -> int:
        tid = self._type(name, 1, 0, size)
        self.types += struct.pack("<I", (1 << 24 if signed else 0) | size * 8)
        return tid

    def array(self, elem: int, nelems: int, index_type: int = 0) -> int:
        tid = self._type("", KIND_ARRAY, 0, 0)
        self.types += struct.pack("<III", elem, index_type, nelems)
        return tid

    def ref(self, kind: int, type_id: int, name: str = "") -> int:
        """PTR, TYPEDEF (named), VOLATILE, CONST, RESTRICT or TYPE_TAG pointing at type_id."""
        return self._type(name, kind, 0, type_id)

    def var(self, name: str, type_id: int, linkage: int = 1) -> int:
        tid = self._type(name, 14, 0, type_id)
        self.types += struct.pack("<I", linkage)
        return tid

    def datasec(self, name: str, size: int, entries: List[Tuple[int, int, int]]) -> int:
        """entries: (VAR type id, offset, size)."""
        tid = self._type(name, 15, len(entries), size)
        for entry in entries:
            self.types += struct.pack("<III", *entry)
        return tid

    def func_proto(self, ret: int, params: List[Tuple[str, int]]) -> int:
        """A function prototype: its return type id (0: void) and (name, type id) parameters."""
        tid = self._type("", 13, len(params), ret)
        for name, type_id in params:
            self.types += struct.pack("<II", self.s(name), type_id)
        return tid

    def func(self, name: str, proto: int, linkage: int = 1) -> int:
        return self._type(name, 12, linkage, proto)

    def bytes(self) -> bytes:
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types),
                          len(self.strings))
        return hdr + bytes(self.types) + bytes(self.strings)
