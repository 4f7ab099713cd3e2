"""tcpdump filter expressions compiled by libpcap, the reference compiler.

A small ctypes binding: pcap_open_dead + pcap_compile turn an expression into
classic BPF for a link type; droptrace runs that program in the kernel (see
the interpreter in bpf/cbpf.bpf.h), once for Ethernet frames and once for
packets whose capture starts at the IP header.
"""
from __future__ import annotations

import ctypes
import os
from typing import List, Tuple

from ..errors import DroptraceError, UsageError

DLT_EN10MB, DLT_RAW = 1, 12
_LIBS = ("libpcap.so.0.8", "libpcap.so.1", "libpcap.so")


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


Insn = Tuple[int, int, int, int]
_lib = None


def _pcap() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        for name in _LIBS:
            try:
                _lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise DroptraceError("filter expressions need libpcap (libpcap.so.0.8); install it: "
                                 "apt-get install libpcap0.8")
        _lib.pcap_open_dead.restype = ctypes.c_void_p
        _lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        _lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p,
                                      ctypes.c_int, ctypes.c_uint32]
        _lib.pcap_geterr.restype = ctypes.c_char_p
        _lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        _lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
        _lib.pcap_close.argtypes = [ctypes.c_void_p]
        _lib.bpf_filter.restype = ctypes.c_uint
        _lib.bpf_filter.argtypes = [ctypes.POINTER(_Insn), ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint]
    return _lib


def compile_filter(expr: str, linktype: int, snaplen: int = 65535) -> List[Insn]:
    """The classic BPF program for expr on linktype, as (code, jt, jf, k) tuples."""
    lib = _pcap()
    handle = lib.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise DroptraceError("libpcap could not open a dead handle")
    prog = _Program()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog), os.fsencode(expr), 1, 0xFFFFFFFF) != 0:
            msg = lib.pcap_geterr(handle).decode(errors="replace")
            raise UsageError(f"invalid filter expression {expr!r}: {msg}")
        insns = [(prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf, prog.bf_insns[i].k)
                 for i in range(prog.bf_len)]
        lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)
    return insns


class OfflineProgram:
    """A compiled program (packet/filter.py's), run by libpcap's own interpreter on stored
    bytes: recordings read back."""

    def __init__(self, insns: List[Insn]) -> None:
        self._insns = (_Insn * len(insns))(*[_Insn(*i) for i in insns])

    def matches(self, packet: bytes, wire_len: int) -> bool:
        return _pcap().bpf_filter(self._insns, packet, wire_len, len(packet)) != 0
