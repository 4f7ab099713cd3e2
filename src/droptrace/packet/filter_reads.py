"""Which packet bytes a classic BPF filter reads: the proof behind the kernel's verdict cache.

`port 1` reads the EtherType, the IP protocol, the fragment field and the ports: the same bytes
for every packet of a flow. When every path a filter can take, for packets of one class (IPv4 or
IPv6, in an Ethernet frame or from the IP header), reads only bytes at fixed offsets from the
start, or from the end of the IPv4 header (libpcap's `ldx 4*([k]&0xf)`), and perhaps the length,
then two packets of that class equal in those bytes get the same verdict. The kernel keys a
small per-CPU cache by them and runs the interpreter once per distinct key, not once per packet.

The proof is an abstract interpretation over the program (classic BPF only jumps forward): a
value is known bits (mask, value) or "4*(byte k & 0xf)"; the bytes that define the class are
known, so the branches they decide (the EtherType test) are followed one way only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from .libpcap import Insn

# What makes a packet of each class: (program, offset, mask, value) over the 16 bits at offset
# from the start of the program's input. The kernel tests the same tuples (dt_filter_class).
CLASSES: Tuple[Tuple[str, int, int, int], ...] = (
    ("eth", 12, 0xFFFF, 0x0800),  # IPv4 in an Ethernet frame
    ("eth", 12, 0xFFFF, 0x86DD),  # IPv6 in an Ethernet frame
    ("raw", 0, 0xF000, 0x4000),   # IPv4 from its header
    ("raw", 0, 0xF000, 0x6000),   # IPv6 from its header
)

_U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Reads:
    """What a filter reads of a packet of one class: bytes at offsets from the start (`fixed`),
    bytes at offsets from 4*(byte `msh` & 0xf) (`after_msh`), and whether the length."""

    fixed: FrozenSet[int]
    after_msh: FrozenSet[int] = frozenset()
    msh: Optional[int] = None
    uses_len: bool = False


@dataclass(frozen=True)
class _Val:
    """An abstract 32-bit value: the bits in `known` are those of `value`; `msh` set means the
    value is exactly 4*(byte msh & 0xf)."""

    known: int = 0
    value: int = 0
    msh: Optional[int] = None

    @staticmethod
    def const(v: int) -> "_Val":
        return _Val(_U32, v & _U32)

    @property
    def is_const(self) -> bool:
        return self.known == _U32

    def join(self, other: "_Val") -> "_Val":
        if self == other:
            return self
        known = self.known & other.known & ~(self.value ^ other.value) & _U32
        return _Val(known, self.value & known, self.msh if self.msh == other.msh else None)

    @property
    def bounds(self) -> Tuple[int, int]:
        return self.value & self.known, (self.value & self.known) | (~self.known & _U32)


_UNKNOWN = _Val()


@dataclass
class _State:
    a: _Val = _Val.const(0)  # the interpreter starts with A, X and M[] zero
    x: _Val = _Val.const(0)
    mem: Tuple[_Val, ...] = (_Val.const(0),) * 16

    def join(self, o: "_State") -> "_State":
        return _State(self.a.join(o.a), self.x.join(o.x), tuple(p.join(q) for p, q in zip(self.mem, o.mem)))


class _NotCacheable(Exception):
    pass


@dataclass
class _Reads:
    fixed: set = field(default_factory=set)
    after: set = field(default_factory=set)
    msh: Optional[int] = None
    uses_len: bool = False


def reads(prog: Sequence[Insn], cls: Tuple[str, int, int, int], fixed_window: int,
          msh_window: int) -> Optional[Reads]:
    """What `prog` reads of a packet of class `cls`, or None when that is not a fixed set of
    bytes within the windows (fixed: [0, fixed_window); after the IPv4 header: [0, msh_window))."""
    try:
        return _analyse(prog, cls, fixed_window, msh_window)
    except _NotCacheable:
        return None


def _known_bytes(cls: Tuple[str, int, int, int]) -> Dict[int, Tuple[int, int]]:
    _prog, off, mask, value = cls
    return {off: (mask >> 8, (value >> 8) & (mask >> 8)), off + 1: (mask & 0xFF, value & mask & 0xFF)}


def _analyse(prog: Sequence[Insn], cls: Tuple[str, int, int, int], fixed_window: int,
             msh_window: int) -> Reads:
    known = _known_bytes(cls)
    r = _Reads()
    states: List[Optional[_State]] = [None] * len(prog)
    if prog:
        states[0] = _State()

    def flow(to: int, s: _State) -> None:
        if to >= len(prog):
            raise _NotCacheable  # a jump past the end: let the interpreter refuse it
        states[to] = s if states[to] is None else states[to].join(s)  # type: ignore[union-attr]

    def load(off: int, size: int) -> _Val:
        if off + size > fixed_window:
            raise _NotCacheable
        kmask = kval = 0
        for i in range(off, off + size):
            m, v = known.get(i, (0, 0))
            kmask, kval = kmask << 8 | m, kval << 8 | v
            r.fixed.add(i)
        return _Val(kmask, kval & kmask)

    for pc, (code, jt, jf, k) in enumerate(prog):
        s = states[pc]
        if s is None:
            continue  # no path reaches it for this class
        cls_ = code & 0x07
        if cls_ in (0x00, 0x01):  # LD, LDX
            mode, size = code & 0xE0, {0x00: 4, 0x08: 2, 0x10: 1}.get(code & 0x18)
            if size is None:
                raise _NotCacheable
            if mode == 0x00:  # IMM
                v = _Val.const(k)
            elif mode == 0x80:  # LEN
                r.uses_len, v = True, _UNKNOWN
            elif mode == 0x60:  # MEM
                v = s.mem[k & 15]
            elif mode == 0x20 and cls_ == 0x00:  # ABS
                v = load(k, size)
            elif mode == 0x40 and cls_ == 0x00:  # IND: [x + k]
                if s.x.is_const:
                    v = load((s.x.value + k) & _U32, size)
                elif s.x.msh is not None:
                    if r.msh not in (None, s.x.msh) or k + size > msh_window:
                        raise _NotCacheable
                    r.msh = s.x.msh
                    r.after.update(range(k, k + size))
                    v = _UNKNOWN
                else:
                    raise _NotCacheable
            elif mode == 0xA0 and cls_ == 0x01 and size == 1:  # MSH: x = 4*([k] & 0xf)
                load(k, 1)
                v = _Val(_U32 & ~0x3C, 0, k)
            else:
                raise _NotCacheable
            s = _State(v, s.x, s.mem) if cls_ == 0x00 else _State(s.a, v, s.mem)
        elif cls_ in (0x02, 0x03):  # ST, STX
            mem = list(s.mem)
            mem[k & 15] = s.a if cls_ == 0x02 else s.x
            s = _State(s.a, s.x, tuple(mem))
        elif cls_ == 0x04:  # ALU
            s = _State(_alu(code & 0xF0, s.a, s.x if code & 0x08 else _Val.const(k)), s.x, s.mem)
            if s.a is None:
                continue  # division by zero: the program returns 0 here
        elif cls_ == 0x05:  # JMP
            op = code & 0xF0
            if op == 0x00:
                flow(pc + 1 + k, s)
                continue
            src = s.x if code & 0x08 else _Val.const(k)
            taken = _decide(op, s.a, src)
            if taken is not False:
                flow(pc + 1 + jt, s)
            if taken is not True:
                flow(pc + 1 + jf, s)
            continue
        elif cls_ == 0x06:  # RET
            continue
        else:  # MISC: TAX, TXA
            s = _State(s.a, s.a, s.mem) if (code & 0xF8) == 0x00 else _State(s.x, s.x, s.mem)
        flow(pc + 1, s)
    if r.msh is not None:
        r.fixed.add(r.msh)
    return Reads(frozenset(r.fixed), frozenset(r.after), r.msh, r.uses_len)


def _alu(op: int, a: _Val, src: _Val) -> Optional[_Val]:
    """A op= src, abstractly; None for a certain division by zero."""
    if op in (0x30, 0x90) and src.is_const and src.value == 0:
        return None
    if a.is_const and src.is_const:
        x, y = a.value, src.value
        v = {0x00: x + y, 0x10: x - y, 0x20: x * y, 0x30: x // y if y else 0, 0x40: x | y, 0x50: x & y,
             0x60: x << y if y < 32 else 0, 0x70: x >> y if y < 32 else 0, 0x80: -x,
             0x90: x % y if y else 0, 0xA0: x ^ y}.get(op)
        return _UNKNOWN if v is None else _Val.const(v)
    if src.is_const:
        y = src.value
        if op == 0x50:  # AND: a bit is known where y has a 0, or where a's bit is known
            known = (~y | a.known) & _U32
            return _Val(known, a.value & y & known)
        if op == 0x40:  # OR
            known = (y | a.known) & _U32
            return _Val(known, (a.value | y) & known)
        if op == 0x70 and y < 32:  # RSH
            known = ((a.known >> y) | ~(_U32 >> y)) & _U32
            return _Val(known, (a.value >> y) & known)
        if op == 0x60 and y < 32:  # LSH
            known = ((a.known << y) | ((1 << y) - 1)) & _U32
            return _Val(known, (a.value << y) & known)
    return _UNKNOWN


def _decide(op: int, a: _Val, src: _Val) -> Optional[bool]:
    """Whether a jump is taken, when the known bits decide it."""
    if not src.is_const:
        return None
    k = src.value
    lo, hi = a.bounds
    if op == 0x10:  # JEQ
        if (a.value ^ k) & a.known:
            return False
        return True if a.is_const else None
    if op == 0x20:  # JGT
        return True if lo > k else False if hi <= k else None
    if op == 0x30:  # JGE
        return True if lo >= k else False if hi < k else None
    if op == 0x40:  # JSET
        if a.value & a.known & k:
            return True
        maybe_set = ~(a.known & ~a.value) & _U32  # the bits of a not known to be 0
        return False if k & maybe_set == 0 else None
    return None


__all__ = ["CLASSES", "Reads", "reads"]
