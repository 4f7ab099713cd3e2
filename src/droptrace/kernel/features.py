"""What the running kernel offers droptrace, found once per process from its BTF.

The tracer, trail and `droptrace doctor` ask the same questions here (is there BTF, which drop
reasons, is there bpf_loop, which tracepoints carry an skb), so what doctor reports is what
the tracer will do.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

from . import btf as btfmod
from . import reasons as reasonsmod


@dataclass(frozen=True)
class Features:
    btf_path: str
    btf: Optional[btfmod.BTF]  # the kernel's BTF; None where the kernel has none
    reasons: Optional[reasonsmod.Reasons]  # from BTF; None: no enum skb_drop_reason (before 5.17)
    bpf_loop: bool  # the bpf_loop helper (5.17+): filter expressions run in the kernel

    def tracepoint_args(self, names: List[str], struct: str) -> Dict[str, Optional[int]]:
        """For each raw tracepoint name, the index of its first `struct <struct> *` argument (None:
        missing here, or no such argument); all None without BTF."""
        if self.btf is None:
            return {n: None for n in names}
        return pointer_arguments(self.btf, names, struct)


@functools.lru_cache(maxsize=4)
def probe(btf_path: str = btfmod.VMLINUX) -> Features:
    """The running kernel's features (btf_path: its BTF, as DROPTRACE_KERNEL_BTF may point)."""
    if not os.path.exists(btf_path):
        return Features(btf_path, None, None, False)
    kernel = btfmod.kernel(btf_path)
    reasons = reasonsmod.from_btf(kernel) if kernel.enum("skb_drop_reason") is not None else None
    return Features(btf_path, kernel, reasons, "BPF_FUNC_loop" in (kernel.enum("bpf_func_id") or {}))


def pointer_arguments(kernel_btf: btfmod.BTF, names: List[str], struct: str) -> Dict[str, Optional[int]]:
    """For each raw tracepoint name, the index of its first `struct <struct> *` argument (None:
    the tracepoint is missing here, or has no such argument), from the `btf_trace_<name>`
    typedefs that give each tracepoint's prototype."""
    out: Dict[str, Optional[int]] = {}
    wanted = {f"btf_trace_{n}": n for n in names}
    found = kernel_btf.named(btfmod.KIND_TYPEDEF, wanted)
    for typedef, name in wanted.items():
        out[name] = None
        t = found.get(typedef)
        if t is None:
            continue
        proto = kernel_btf.resolve(kernel_btf.resolve(t.type).type)
        if proto.kind != btfmod.KIND_FUNC_PROTO:
            continue
        for i, p in enumerate(proto.members[1:]):  # the first parameter is the tracing context
            ptr = kernel_btf.resolve(p.type)
            if ptr.kind == btfmod.KIND_PTR and kernel_btf.resolve(ptr.type).name == struct:
                out[name] = i
                break
    return out
