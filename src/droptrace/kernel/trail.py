"""Loading bpf/trail.bpf.c: a raw tracepoint program per networking step, each told which of its
tracepoint's arguments is the skb.

Which tracepoints exist, and where the skb is among their arguments, differ between kernels
(udp_fail_queue_rcv_skb has carried its skb only lately; icmp_send is recent): both are read from
the running kernel's BTF, whose `btf_trace_<name>` typedefs give each raw tracepoint's
prototype. A step this kernel lacks is left out and said once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

from ..errors import DroptraceError
from ..event import Event
from . import btf as btfmod
from . import libbpf
from .contract import OBJECT_TRAIL, OBJECT_TRAIL_NOLOOP
from .tracer import BTF_PATH, Tracer, has_bpf_loop

HOOK_PREFIX = "DT_HOOK_"
NO_ARG = 0xFF  # cfg.trail_skb_arg/trail_dev_arg: this tracepoint has no such argument here
TRAIL_GAP_NS = 1_000_000_000  # a trail idle 1 s belongs to an earlier packet at the same address


def hooks(const: Dict[str, int]) -> Dict[int, str]:
    """enum dt_hook, as tracepoint names by value: DT_HOOK_NETIF_RX -> netif_rx."""
    return {v: k[len(HOOK_PREFIX):].lower() for k, v in const.items()
            if k.startswith(HOOK_PREFIX) and k != "DT_HOOK_NUM"}


def pointer_arguments(kernel_btf: btfmod.BTF, names: List[str],
                      struct: str) -> Dict[str, Optional[int]]:
    """For each raw tracepoint name, the index of its first `struct <struct> *` argument (None:
    the tracepoint is missing here, or has no such argument)."""
    out: Dict[str, Optional[int]] = {}
    wanted = {f"btf_trace_{n}": n for n in names}
    found = {t.name: t for t in kernel_btf.types if t.kind == btfmod.KIND_TYPEDEF and t.name in wanted}
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


@dataclass
class Hop:
    time_ns: int  # CLOCK_MONOTONIC
    hook: str
    ifindex: int
    ifname: str
    netns: int
    len: int
    cpu: int


class TrailTracer(Tracer):
    """The drop tracer's loader and ring buffer, with trail.bpf.o's programs: all that exist here."""

    OBJECTS = (OBJECT_TRAIL, OBJECT_TRAIL_NOLOOP)

    def __init__(self, opts, every: bool = False) -> None:  # type: ignore[no-untyped-def]
        super().__init__(opts)
        self.every = every
        self.missing: List[str] = []  # steps this kernel has no tracepoint (or skb) for
        self._skb_args: Dict[str, Optional[int]] = {}
        self._dev_args: Dict[str, Optional[int]] = {}
        self._hooks = hooks(self.bpf.const)

    def start(self) -> None:
        if not self.btf:
            raise DroptraceError(f"trail needs kernel BTF ({BTF_PATH} is missing)")
        if self.opts.pid:
            raise DroptraceError("trail follows packets, not tasks: --pid cannot be used with it")
        kbtf = btfmod.read(BTF_PATH, types=True)
        loop = has_bpf_loop(kbtf)
        if self.opts.filter and not loop:
            raise DroptraceError("trail evaluates the filter expression in the kernel, where it first sees "
                                 "a packet: this needs bpf_loop (5.17+); filter with --netns, -i or --mark")
        self._skb_args = pointer_arguments(kbtf, list(self._hooks.values()), "sk_buff")
        self._dev_args = pointer_arguments(kbtf, list(self._hooks.values()), "net_device")
        self.missing = [n for n, i in self._skb_args.items() if i is None]
        if self.missing:
            self.limits.append(f"no tracepoint with an skb here for: {', '.join(self.missing)}; "
                               "those steps are not shown")
        if self._skb_args.get("kfree_skb") is None:
            raise DroptraceError("this kernel has no skb:kfree_skb raw tracepoint")
        self.opts.hook = "raw_tp"
        super().start()  # picks OBJECTS[1] where the kernel has no bpf_loop

    def _programs(self, obj: libbpf.Object, hook: str) -> List[str]:
        names = []
        for name in self._hooks.values():
            prog = f"dt_trail_{name}"
            on = self._skb_args.get(name) is not None
            obj.program(prog).set_autoload(on)
            if on:
                names.append(prog)
        return names

    def _trail_config(self) -> Dict[str, Union[int, bytes]]:
        n = self.bpf.const["DT_HOOK_NUM"]
        skb, dev = bytearray([NO_ARG] * n), bytearray([NO_ARG] * n)
        for value, name in self._hooks.items():
            for table, found in ((skb, self._skb_args), (dev, self._dev_args)):
                if found.get(name) is not None:
                    table[value] = found[name]  # type: ignore[assignment]
        return {"trail_all": int(self.every), "trail_gap_ns": TRAIL_GAP_NS, "trail_skb_arg": bytes(skb),
                "trail_dev_arg": bytes(dev)}

    def _take(self) -> List[bytes]:
        if not self._pending:
            return []
        raw, self._pending = self._pending, []
        size = self.bpf.struct("dt_trail_event").size
        if len(raw[0]) != size:
            raise DroptraceError(f"trail record of {len(raw[0])} bytes from BPF, expected {size}: the BPF "
                                 "object and this droptrace disagree; reinstall droptrace")
        return raw

    def trails(self, raw: List[bytes]) -> List[Tuple[Event, str, List[Hop], int]]:
        """Ring records -> (the packet at its end, verdict, hops oldest first, hops lost)."""
        te, trail, hop = (self.bpf.struct(n) for n in ("dt_trail_event", "dt_trail", "dt_hop"))
        ev_at, ev_size = te.fields["ev"].offset, self.bpf.struct("dt_event").size
        tr_at, vd = te.fields["trail"].offset, te.fields["verdict"]
        hops_at, keep = trail.fields["hops"].offset, self.bpf.const["DT_TRAIL_HOPS"]
        verdicts = {v: k[len("DT_VERDICT_"):].lower() for k, v in self.bpf.const.items()
                    if k.startswith("DT_VERDICT_")}
        convert = self.converter.convert
        out = []
        for r in raw:
            e = convert(r[ev_at:ev_at + ev_size])
            t = trail.unpack(r[tr_at:tr_at + trail.size])
            n = t["nhops"]
            steps = []
            for i in range(max(0, n - keep), n):
                at = tr_at + hops_at + (i % keep) * hop.size
                h = hop.unpack(r[at:at + hop.size])
                steps.append(Hop(h["ts_ns"], self._hooks.get(h["hook"], str(h["hook"])), h["ifindex"],
                                 h["ifname"].split(b"\0", 1)[0].decode(errors="replace"), h["netns"],
                                 h["len"], h["cpu"]))
            verdict = verdicts.get(int.from_bytes(r[vd.offset:vd.end], "little"), "?")
            out.append((e, verdict, steps, max(0, n - keep)))
        return out


def mono_to_wall_ns() -> int:
    """Add to a CLOCK_MONOTONIC time to get the wall clock's."""
    import time

    return time.time_ns() - time.monotonic_ns()


__all__ = ["TrailTracer", "Hop", "hooks", "pointer_arguments", "mono_to_wall_ns", "NO_ARG"]
