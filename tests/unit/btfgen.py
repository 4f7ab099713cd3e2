"""Builds small raw BTF blobs for tests (the inverse of droptrace.btf)."""
import struct
from typing import Dict, List, Tuple


class BTFBuilder:
    def __init__(self, base_str_len: int = 0) -> None:
        self.strings = bytearray(b"\0") if base_str_len == 0 else bytearray()
        self.base = base_str_len
        self.types = bytearray()

    def s(self, text: str) -> int:
        off = self.base + len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def enum(self, name: str, members: Dict[str, int], size: int = 4) -> None:
        self.types += struct.pack("<III", self.s(name), (6 << 24) | len(members), size)
        for m, v in members.items():
            self.types += struct.pack("<II", self.s(m), v & 0xFFFFFFFF)

    def enum64(self, name: str, members: Dict[str, int]) -> None:
        self.types += struct.pack("<III", self.s(name), (19 << 24) | len(members), 8)
        for m, v in members.items():
            self.types += struct.pack("<III", self.s(m), v & 0xFFFFFFFF, v >> 32)

    def struct(self, name: str, size: int, members: List[Tuple[str, int, int]]) -> None:
        self.types += struct.pack("<III", self.s(name), (4 << 24) | len(members), size)
        for m, type_id, bit_off in members:
            self.types += struct.pack("<III", self.s(m), type_id, bit_off)

    def int(self, name: str, size: int) -> None:
        self.types += struct.pack("<IIII", self.s(name), 1 << 24, size, size * 8)

    def bytes(self) -> bytes:
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types),
                          len(self.strings))
        return hdr + bytes(self.types) + bytes(self.strings)
