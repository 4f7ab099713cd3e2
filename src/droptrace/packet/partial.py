"""Classic BPF run on a packet only partly known: a verdict, or which unknown bytes it needs.

A JSON lines recording keeps a drop's fields, not its bytes. packet/synth.py rebuilds the headers
those fields describe and says which bits are real (`known`): addresses, protocol, ports, TCP
flags, ICMP type and code, the version, the fragment offset of a first fragment. This runs
libpcap's program for raw IP on those bytes with every value carrying the mask of its unknown bits:
a decision that needs an unknown bit (the TTL, a length, a sequence number, the payload) stops the
run with the offsets it needed, so the expression is refused rather than answered wrongly.
ldx 4*([k]&0xf) (libpcap's way to the transport header) takes the rebuilt layout's value: the
transport header sits where the line's transport fields are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Sequence, Tuple

from .libpcap import Insn

M32 = 0xFFFFFFFF
LEN = -1  # the packet's length, as a needed "offset"


@dataclass(frozen=True)
class Val:
    value: int  # the known bits' values (unknown bits are 0)
    unknown: int = 0  # the bits not known
    needs: FrozenSet[int] = frozenset()  # offsets of the unknown bytes it came from

    @staticmethod
    def of(v: int) -> "Val":
        return Val(v & M32)

    def hi(self) -> int:
        return self.value | self.unknown


class Undecided(Exception):
    """The verdict depends on bits the packet's fields do not give."""

    def __init__(self, needs: FrozenSet[int]) -> None:
        super().__init__(sorted(needs))
        self.needs = needs


def _load(data: bytes, known: bytes, at: int, size: int) -> Val:
    value = unknown = 0
    needs = set()
    for i in range(at, at + size):
        b, k = (data[i], known[i]) if 0 <= i < len(data) else (0, 0)  # past the rebuilt headers: payload
        value, unknown = (value << 8) | (b & k), (unknown << 8) | (~k & 0xFF)
        if k != 0xFF:
            needs.add(i)
    return Val(value, unknown, frozenset(needs))


def _alu(op: int, a: Val, b: Val) -> Val:
    needs = a.needs | b.needs
    if op == 0x50:  # AND: a known 0 on either side is a known 0
        unknown = (a.unknown & b.hi()) | (b.unknown & a.hi())
        return Val(a.value & b.value & ~unknown & M32, unknown, needs if unknown else frozenset())
    if op == 0x40:  # OR: a known 1 on either side is a known 1
        ones = a.value | b.value
        unknown = (a.unknown | b.unknown) & ~ones & M32
        return Val(ones, unknown, needs if unknown else frozenset())
    if not (a.unknown or b.unknown):
        x, y = a.value, b.value
        result = {0x00: x + y, 0x10: x - y, 0x20: x * y, 0x30: x // y if y else 0, 0x90: x % y if y else 0,
                  0x60: x << (y & 31), 0x70: x >> (y & 31), 0xA0: x ^ y, 0x80: -x}.get(op)
        if result is None:
            raise ValueError(f"unknown ALU op {op:#x}")
        return Val.of(result)
    if op in (0x60, 0x70) and not b.unknown:  # shifts move the unknown bits
        s = b.value & 31
        if op == 0x60:
            return Val((a.value << s) & M32, (a.unknown << s) & M32, needs)
        return Val(a.value >> s, a.unknown >> s, needs)
    if op == 0xA0:
        return Val((a.value ^ b.value) & ~(a.unknown | b.unknown) & M32, a.unknown | b.unknown, needs)
    if op in (0x00, 0x10):  # a carry spreads upwards from the lowest unknown bit
        low = (a.unknown | b.unknown) & -(a.unknown | b.unknown)
        return Val(0, ~(low - 1) & M32, needs)
    return Val(0, M32, needs)


def _decide(op: int, a: Val, b: Val) -> bool:
    if op == 0x10:  # JEQ
        if (a.value ^ b.value) & ~(a.unknown | b.unknown) & M32:
            return False
        if not (a.unknown | b.unknown):
            return a.value == b.value
    elif op in (0x20, 0x30):  # JGT, JGE
        gt = op == 0x20
        if (a.value > b.hi()) if gt else (a.value >= b.hi()):
            return True
        if (a.hi() <= b.value) if gt else (a.hi() < b.value):
            return False
    elif op == 0x40:  # JSET
        if a.value & b.value:
            return True
        if not (a.hi() & b.hi()):
            return False
    raise Undecided(a.needs | b.needs)


def run(prog: Sequence[Insn], data: bytes, known: bytes) -> bool:
    """libpcap's verdict for the packet (nonzero: match); Undecided if it needs unknown bits."""
    a = x = Val(0)
    mem: List[Val] = [Val(0)] * 16
    pc = 0
    while 0 <= pc < len(prog):
        code, jt, jf, k = prog[pc]
        cls, pc = code & 0x07, pc + 1
        if cls in (0x00, 0x01):  # LD, LDX
            mode, size = code & 0xE0, {0x00: 4, 0x08: 2, 0x10: 1}.get(code & 0x18, 4)
            if mode == 0x00:  # IMM
                v = Val.of(k)
            elif mode == 0x20:  # ABS
                v = _load(data, known, k, size)
            elif mode == 0x40:  # IND
                if x.unknown:
                    raise Undecided(x.needs)
                v = _load(data, known, (x.value + k) & M32, size)
            elif mode == 0x60:  # MEM
                v = mem[k & 15]
            elif mode == 0x80:  # LEN
                v = Val(0, M32, frozenset({LEN}))
            elif mode == 0xA0:  # MSH: the rebuilt layout's header length
                v = Val.of(4 * (data[k] & 0xF)) if k < len(data) else Val(0, M32, frozenset({k}))
            else:
                raise ValueError(f"unknown load mode {mode:#x}")
            if cls == 0x00:
                a = v
            else:
                x = v
        elif cls == 0x02:  # ST
            mem[k & 15] = a
        elif cls == 0x03:  # STX
            mem[k & 15] = x
        elif cls == 0x04:  # ALU
            a = _alu(code & 0xF0, a, x if code & 0x08 else Val.of(k))
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
            else:
                pc += jt if _decide(op, a, x if code & 0x08 else Val.of(k)) else jf
        elif cls == 0x06:  # RET
            r = a if code & 0x18 == 0x10 else Val.of(k)
            if r.unknown:
                raise Undecided(r.needs)
            return r.value != 0
        else:  # MISC: TAX, TXA
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
    return False


def verdict(prog: Sequence[Insn], packet: Tuple[bytes, bytes]) -> Optional[bool]:
    """run(), or None where the packet's fields do not decide it."""
    try:
        return run(prog, *packet)
    except Undecided:
        return None
