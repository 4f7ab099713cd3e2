"""Loading trail.bpf.c: a BTF tracepoint (tp_btf) program per networking step, each told which of its
tracepoint's arguments is the skb.

Which tracepoints exist, and where the skb is among their arguments, differ between kernels
(udp_fail_queue_rcv_skb has carried its skb only lately; icmp_send is recent): both are read from
the running kernel's BTF, whose `btf_trace_<name>` typedefs give each tracepoint's
prototype. A step this kernel lacks is left out and said once.
"""
from __future__ import annotations

import operator
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

from ...convert import Converter, describe_flow
from ...errors import DroptraceError, UsageError
from ...event import Event
from ...kernel import libbpf, skb_functions, tracefs
from ...kernel.contract import Contract
from ...kernel.features import pointer_arguments, probe
from ...kernel.layout import StructLayout
from ...kernel.tracer import BTF_PATH, Tracer
from .functions import CLONES, METHODS, FunctionHooks, program_names, supported_arch

HOOK_PREFIX = "DT_HOOK_"
NO_ARG = 0xFF  # cfg.trail_skb_arg/trail_dev_arg: this tracepoint has no such argument here
TRAIL_GAP_NS = 1_000_000_000  # a trail idle 1 s belongs to an earlier packet at the same address


def hooks(const: Dict[str, int]) -> Dict[int, str]:
    """enum dt_hook, as tracepoint names by value: DT_HOOK_NETIF_RX -> netif_rx."""
    return {v: k[len(HOOK_PREFIX):].lower() for k, v in const.items()
            if k.startswith(HOOK_PREFIX) and k != "DT_HOOK_NUM"}


FUNCTION_HOOK = "function"  # Hop.hook of a function's hop (Hop.function names it)
# the return probes' trampolines (kretprobe-multi's rethook, a kretprobe's), found where the caller
# would be when the return is hooked too
TRAMPOLINES = ("arch_rethook_trampoline", "kretprobe_trampoline", "__kretprobe_trampoline")
CLONE_HOOK = "clone"  # ... of a clone's or copy's first own hop (Hop.function made it)
HEADERS_HOOK = "headers"  # ... of a headers change whose step was not kept (Hop.headers says what)


def no_function_hooks(tried: List[Tuple[str, str]]) -> DroptraceError:
    """The one line where no function hook works here."""
    why = "; ".join(f"{m}: {w}" for m, w in tried)
    return DroptraceError(f"no kernel function hook works here ({why}): run trail without --functions "
                          "for the tracepoint steps; `droptrace doctor` says what trail can use")


@dataclass
class Hop:
    time_ns: int  # CLOCK_MONOTONIC
    hook: str
    ifindex: int
    ifname: str
    netns: int
    len: int
    cpu: int
    function: Optional[str] = None  # hook "function": the kernel function
    caller: Optional[str] = None  # ... and where it was called from (func+0xoff), where known
    returned: Optional[str] = None  # --returns: what it returned (-EPERM, 0, 0xffff...)
    # the packet's headers from this hop on, where they changed here (NAT, encapsulation): l3, l4,
    # saddr, daddr, sport, dport as in the event
    headers: Optional[Dict[str, Any]] = None


class Trail(NamedTuple):
    """One packet's trail, as read from its record."""
    event: Event  # the packet at its end
    verdict: str
    hops: List[Hop]  # oldest first
    lost: int  # hops not kept (the oldest)
    first: Optional[Dict[str, Any]]  # its headers where first read (as Hop.headers), None if never


class TrailTracer(Tracer):
    """The shared loader and ring buffer, with trail.bpf.o's programs: all that exist here."""

    OBJECTS = ("trail.bpf.o", "trail_noloop.bpf.o")
    CONFIG = "dt_trail_config"
    WHAT = "trail"

    def __init__(self, opts, every: bool = False,  # type: ignore[no-untyped-def]
                 functions: Optional[List[str]] = None, returns: bool = False,
                 function_hook: Optional[str] = None) -> None:
        """functions: with --functions, its globs (empty: every function that takes an skb);
        returns: --returns; function_hook: the method forced (--function-hook), else each in turn."""
        super().__init__(opts)
        self.methods = [function_hook] if function_hook else list(METHODS)
        self.every = every
        self.globs = functions
        self.returns = returns
        self._return_kinds: Dict[str, str] = {}
        self.functions: Optional[FunctionHooks] = None
        self._method = ""
        self.missing: List[str] = []  # steps this kernel has no tracepoint (or skb) for
        self._skb_args: Dict[str, Optional[int]] = {}
        self._dev_args: Dict[str, Optional[int]] = {}
        self._hooks = hooks(self.contract.const)
        self._records: Optional[TrailRecords] = None

    def start(self) -> None:
        if not self.btf:
            raise DroptraceError(f"trail needs kernel BTF ({BTF_PATH} is missing)")
        if self.opts.pid:
            raise DroptraceError("trail follows packets, not tasks: --pid cannot be used with it")
        kernel = probe(BTF_PATH)
        if self.opts.filter and not kernel.bpf_loop:
            raise DroptraceError("trail evaluates the filter expression in the kernel, where it first sees "
                                 "a packet: this needs bpf_loop (5.17+); filter with --netns, -i or --mark")
        self._skb_args = kernel.tracepoint_args(list(self._hooks.values()), "sk_buff")
        self._dev_args = kernel.tracepoint_args(list(self._hooks.values()), "net_device")
        self.missing = [n for n, i in self._skb_args.items() if i is None]
        if self.missing:
            self.limits.append(f"no tracepoint with an skb here for: {', '.join(self.missing)}; "
                               "those steps are not shown")
        if self._skb_args.get("kfree_skb") is None:
            raise DroptraceError("this kernel has no skb:kfree_skb tracepoint in its BTF")
        if self.returns and self.globs is None:
            raise UsageError("--returns shows the return values of the functions --functions follows: "
                             "give --functions too")
        if self.globs is not None:
            chosen, clones = self._skb_functions(kernel)
            self.functions = FunctionHooks(chosen, clones, self.returns)
            self._return_kinds = skb_functions.return_kinds(kernel.btf, list(chosen) + clones)
        self.opts.hook = "tp_btf"
        super().start()  # picks OBJECTS[1] where the kernel has no bpf_loop

    def _skb_functions(self, kernel) -> Tuple[Dict[str, int], List[str]]:  # type: ignore[no-untyped-def]
        """--functions: the kernel's functions that take an skb, hookable, matching the globs; and
        those of the clone and copy functions this kernel has (followed into the new skb)."""
        if not supported_arch():
            raise no_function_hooks([(m, "not built for this architecture (x86_64 only)")
                                     for m in self.methods])
        found = skb_functions.skb_functions(kernel.btf, self.contract.const["DT_FN_ARGS"])
        available = skb_functions.hookable(tracefs.find())
        chosen = skb_functions.select(found, available, self.globs or [])
        if not chosen:
            raise UsageError(f"--functions {','.join(self.globs or ['*'])}: no kernel function that takes "
                             "an skb matches")
        clones = [n for n, i in skb_functions.select(found, available, list(CLONES)).items() if i == 0]
        return chosen, clones

    def _attach(self) -> None:
        """With --functions, the tracepoints and the function hooks by each method in turn, until
        one works; without, the tracepoints alone."""
        if self.functions is None:
            return super()._attach()
        tried: List[Tuple[str, str]] = []
        for method in self.methods:
            self._method = method
            t0 = time.monotonic()
            try:
                super()._attach()
                fns = self.functions
                clones = f", clones and copies followed ({', '.join(fns.clones)})" if fns.clones else ""
                self.limits.append(f"also {fns.count} kernel functions that take the skb, via {method} "
                                   f"(attached in {time.monotonic() - t0:.1f} s){clones}")
                return
            except DroptraceError:
                tried.append((method, self.fallbacks[-1][1] if self.fallbacks else "?"))
                self.fallbacks.clear()
        raise no_function_hooks(tried)

    def _try_hook(self, hook: str) -> None:
        super()._try_hook(hook)
        if self.functions is not None:
            self._links += self.functions.attach(self._obj, self.object_path, self._method)

    @property
    def object_path(self) -> str:
        from ...kernel.contract import contract

        return contract(self.object).path

    def _teardown(self) -> None:
        super()._teardown()
        if self.functions is not None:
            self.functions.close()

    def _programs(self, obj: libbpf.Object, hook: str) -> List[str]:
        names = []
        for name in self._hooks.values():
            prog = f"dt_trail_{name}"
            on = self._skb_args.get(name) is not None
            obj.program(prog).set_autoload(on)
            if on:
                names.append(prog)
        positions = self.contract.const["DT_FN_ARGS"]
        if self.functions is not None:
            self.functions.autoload(obj, self._method, positions)
        else:
            for prog in program_names(positions):
                obj.program(prog).set_autoload(False)
        return names

    def _feature_config(self) -> Dict[str, Union[int, bytes]]:
        n = self.contract.const["DT_HOOK_NUM"]
        skb, dev = bytearray([NO_ARG] * n), bytearray([NO_ARG] * n)
        for value, name in self._hooks.items():
            for table, found in ((skb, self._skb_args), (dev, self._dev_args)):
                if found.get(name) is not None:
                    table[value] = found[name]  # type: ignore[assignment]
        return {"trail_all": int(self.every), "trail_gap_ns": TRAIL_GAP_NS, "trail_skb_arg": bytes(skb),
                "trail_dev_arg": bytes(dev), "trail_returns": int(self.returns)}

    def _check(self, raw: bytes) -> None:
        size = self.contract.struct("dt_trail_event").size
        if len(raw) != size:
            raise DroptraceError(f"trail record of {len(raw)} bytes from BPF, expected {size}: the BPF "
                                 "object and this droptrace disagree; reinstall droptrace")

    @property
    def records(self) -> "TrailRecords":
        """How to read this object's trail records."""
        if self._records is None:
            self._records = TrailRecords(self.contract, self._hooks, self.converter, self.symbolize,
                                         self._return_kinds)
        return self._records

    def trails(self, raw: List[bytes]) -> List[Trail]:
        """Ring records -> trails."""
        return [self.records.trail(r) for r in raw]


class TrailRecords:
    """Where each part of a trail record is (from the object's layouts, read once), and the
    record's parts: the whole trail, or for a storm just its shape and its times."""

    def __init__(self, layouts: Contract, hook_names: Dict[int, str], converter: Converter,
                 symbolize: Callable[[int], str] = hex,
                 return_kinds: Optional[Dict[str, str]] = None) -> None:
        te, ev, trail, hop = (layouts.struct(n) for n in ("dt_trail_event", "dt_event", "dt_trail", "dt_hop"))
        ev_at, tr_at = te.offset("ev"), te.offset("trail")

        def field_at(base: int, layout: StructLayout, name: str) -> slice:
            f = layout.field(name)
            return slice(base + f.offset, base + f.end)

        fields = ("ts_ns", "hook", "ifindex", "ifname", "netns", "len", "cpu", "func", "caller", "ret")
        st, index = hop.struct(fields)
        self._pick = operator.itemgetter(*(index[f] for f in fields))  # in that order, whatever the struct's
        self._hop = struct.Struct(st.format + f"{hop.size - st.size}x")  # one hop, its whole stride
        self.keep = layouts.const["DT_TRAIL_HOPS"]
        ts = hop.field("ts_ns")
        # every hop's time, in ring order
        self._times = struct.Struct(hop.order + f"{ts.offset}xQ{hop.size - ts.end}x" * self.keep)
        self._ev = slice(ev_at, ev_at + ev.size)
        self._ev_len = field_at(ev_at, ev, "len")
        self._cap = field_at(ev_at, ev, "cap_len")
        self._nhops = field_at(tr_at, trail, "nhops")
        self._verdict = field_at(0, te, "verdict")
        self._hops_at = tr_at + trail.offset("hops")
        self._hops = slice(self._hops_at, self._hops_at + self.keep * hop.size)
        self._hook = struct.Struct(hop.order + f"{hop.offset('hook')}xH")  # a slot's hook
        headers = layouts.struct("dt_headers")
        self._headers_in_hop = field_at(0, hop, "headers")
        self._first = field_at(tr_at, trail, "first")
        self._headers_layout = headers
        self._flow_bits = (layouts.const["DT_FLOW_ADDRS"], layouts.const["DT_FLOW_PORTS"])
        self._headers_seen: Dict[bytes, Optional[Dict[str, Any]]] = {}
        # What a storm's trails of one flow that took one path have in common (the kernel zeroes the
        # bytes of their headers that differ, and captures no payload): the event without its
        # time, task, length and packet bytes (converter.keyed), the packet bytes it captured, and
        # the trail without its times and its skb's address.
        head = bytearray(ev.offset("data"))
        for a, b in converter.keyed:
            for i in range(a, min(b, len(head))):
                head[i] = 0xFF
        self._head = slice(ev_at, ev_at + len(head))
        self._head_mask = int.from_bytes(head, "little")
        self._data_at = ev_at + len(head)
        whole = bytearray(b"\xff" * trail.size)
        times = [(trail.offset("hops") + i * hop.size + ts.offset, ts.size) for i in range(self.keep)]
        for off, size in [(trail.offset(f), trail.field(f).size) for f in ("skb", "last_ns")] + times:
            whole[off:off + size] = bytes(size)
        self._trail = slice(tr_at, tr_at + trail.size)
        self._trail_mask = int.from_bytes(whole, "little")
        self._verdicts = {v: k[len("DT_VERDICT_"):].lower() for k, v in layouts.const.items()
                          if k.startswith("DT_VERDICT_")}
        self._hook_names, self._ifnames = hook_names, {}  # type: Dict[bytes, str]
        c = layouts.const
        self._fn_hooks = {c["DT_FN_HOOK"]: FUNCTION_HOOK, c["DT_FN_RETURNED"]: FUNCTION_HOOK,
                          c["DT_FN_CLONE"]: CLONE_HOOK}
        self._returned = c["DT_FN_RETURNED"]
        self._headers_hook = c["DT_HOP_HEADERS"]
        self._symbolize = symbolize
        self._return_kinds = return_kinds or {}
        self._converter = converter

    def count(self, r: bytes) -> int:
        """Hops the trail saw (the last `keep` are in the record)."""
        return int.from_bytes(r[self._nhops], "little")

    def _headers(self, raw: bytes) -> Optional[Dict[str, Any]]:
        """struct dt_headers' bytes as the event's l3, l4, saddr, daddr, sport, dport; None if
        nothing was read."""
        d = self._headers_seen.get(raw)
        if d is None and raw not in self._headers_seen:
            if len(self._headers_seen) > 4096:
                self._headers_seen.clear()
            f = self._headers_layout.unpack(raw)
            d = self._headers_seen[raw] = describe_flow(f, *self._flow_bits) if f["has_flow"] else None
        return d

    def _kept(self, r: bytes) -> List[int]:
        """The slots, oldest first, that are hops of their own: all but the headers changes that
        follow a kept step (they go into that step's Hop.headers)."""
        n, keep, hook = self.count(r), self.keep, self._hook.unpack_from
        slots = [i % keep for i in range(max(0, n - keep), n)]
        return [s for j, s in enumerate(slots)
                if not j or hook(r, self._hops_at + s * self._hop.size)[0] != self._headers_hook]

    def trail(self, r: bytes) -> Trail:
        """The trail a record holds."""
        e = self._converter.convert(r[self._ev])
        n, keep, pick, names = self.count(r), self.keep, self._pick, self._ifnames
        hops, size, at = r[self._hops], self._hop.size, self._headers_in_hop
        slots = list(self._hop.iter_unpack(hops))
        steps: List[Hop] = []
        for i in range(max(0, n - keep), n):
            ts, hook, ifindex, ifname, netns, length, cpu, func, caller, ret = pick(slots[i % keep])
            if hook == self._headers_hook:
                base = (i % keep) * size
                headers = self._headers(hops[base + at.start:base + at.stop])
                if steps:
                    steps[-1].headers = headers
                else:
                    steps.append(Hop(ts, HEADERS_HOOK, 0, "", 0, length, cpu, headers=headers))
                continue
            name = names.get(ifname)
            if name is None:
                name = names[ifname] = ifname.split(b"\0", 1)[0].decode(errors="replace")
            if hook in self._fn_hooks:
                fn = self._symbolize(func).split("+0x", 1)[0]
                returned = skb_functions.show_return(ret, self._return_kinds.get(fn, "int")) \
                    if hook == self._returned else None
                steps.append(Hop(ts, self._fn_hooks[hook], ifindex, name, netns, length, cpu, fn,
                                 self._caller(caller), returned))
            else:
                steps.append(Hop(ts, self._hook_names.get(hook) or str(hook), ifindex, name, netns, length,
                                 cpu))
        verdict = self._verdicts.get(int.from_bytes(r[self._verdict], "little"), "?")
        return Trail(e, verdict, steps, max(0, n - keep), self._headers(r[self._first]))

    def _caller(self, addr: int) -> Optional[str]:
        """Where a function was called from, or None: unknown (fentry), or hidden where its return
        is hooked too (the return address on the stack is then the return probe's trampoline)."""
        if not addr:
            return None
        where = self._symbolize(addr)
        return None if where.startswith(TRAMPOLINES) else where

    def shape(self, r: bytes) -> tuple:
        """All of a record that its text or JSON shows but its times and the packet's length: equal
        for the trails of one flow that took one path, so their output is made once."""
        cap = int.from_bytes(r[self._cap], "little")
        return (int.from_bytes(r[self._head], "little") & self._head_mask,
                r[self._data_at:self._data_at + cap],
                int.from_bytes(r[self._trail], "little") & self._trail_mask, r[self._verdict])

    def times(self, r: bytes) -> Callable[[bytes], tuple]:
        """For records shaped like r: a function of a record giving its hops' times, oldest first."""
        order = self._kept(r)
        unpack, at = self._times.unpack_from, self._hops_at
        if len(order) == 1:
            return lambda rec: (unpack(rec, at)[order[0]],)
        get = operator.itemgetter(*order)
        return lambda rec: get(unpack(rec, at))

    def packet_len(self, r: bytes) -> int:
        return int.from_bytes(r[self._ev_len], "little")


def mono_to_wall_ns() -> int:
    """Add to a CLOCK_MONOTONIC time to get the wall clock's."""
    return time.time_ns() - time.monotonic_ns()


__all__ = ["TrailTracer", "TrailRecords", "Trail", "Hop", "hooks", "pointer_arguments", "mono_to_wall_ns",
           "NO_ARG"]
