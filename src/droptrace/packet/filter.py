"""tcpdump expressions to classic BPF, for the interpreter that runs them in the kernel.

libpcap compiles the expression twice: for Ethernet frames and for packets
that start at the IP header (a drop may happen before or after the MAC
header is set). The programs go into the object's filter_insns map.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from ..errors import DroptraceError, UsageError
from .libpcap import DLT_EN10MB, DLT_RAW, Insn, compile_filter

_REJECT_ALL: List[Insn] = [(0x06, 0, 0, 0)]  # BPF_RET|BPF_K 0
_ANCILLARY = 0xFFFFF000  # SKF_AD_OFF: Linux socket-filter extensions (packet type, ifindex...)
_LOADS = (0x20, 0x28, 0x30)  # BPF_LD|BPF_ABS with W, H, B
_DIRECTION = re.compile(r"\b(inbound|outbound)\b")


def compile_filters(expr: str, max_insns: Optional[int]) -> Tuple[List[Insn], List[Insn]]:
    """The expression for Ethernet captures and for captures starting at the IP header.

    An expression that only makes sense with a link layer ("ether host ...",
    "arp") matches nothing where there is none, as in tcpdump on a raw-IP link.
    Expressions that need what only a live socket filter knows (direction,
    ifindex) are refused: a dropped packet has none of it. max_insns is the kernel
    interpreter's limit (None offline, where libpcap runs the program itself).
    """
    word = _DIRECTION.search(expr)
    if word:
        raise UsageError(f"filter expression {expr!r}: '{word.group(1)}' needs a capture direction, "
                         "which a dropped packet does not have; use --netns and -i to choose where")
    eth = _checked(expr, compile_filter(expr, DLT_EN10MB), max_insns)
    try:
        raw = compile_filter(expr, DLT_RAW)
    except DroptraceError:  # needs a link layer: matches no raw-IP packet
        raw = _REJECT_ALL
    return eth, _checked(expr, raw, max_insns)


def _checked(expr: str, prog: List[Insn], max_insns: Optional[int]) -> List[Insn]:
    if max_insns is not None and len(prog) > max_insns:
        raise UsageError(f"filter expression {expr!r} compiles to {len(prog)} instructions; "
                         f"droptrace runs at most {max_insns} in the kernel")
    if any(code in _LOADS and k >= _ANCILLARY for code, _jt, _jf, k in prog):
        raise UsageError(f"filter expression {expr!r} uses Linux socket-filter extensions (packet "
                         "direction, ifindex) that have no meaning for a dropped packet")
    return prog
