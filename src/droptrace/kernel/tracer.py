"""The loader every feature shares: load a feature's BPF object, configure it, attach it, read it.

A feature (features/X/tracer.py) names its objects and its configuration struct and adds its own
fields; everything else is here: privileges, the filters (compiled into the shared part of the
configuration and the filter maps), the kernel's features and reason names, the hook ladder,
the ring buffer and the stats. The ladder is tp_btf -> raw_tp -> classic tracepoint on
skb:kfree_skb: each rung is tried by loading and attaching it (the kernel is the only reliable
judge of what it accepts); the first that works is used and the reasons the others failed are
kept for `--verbose` and the doctor. Configuration is written into the object's .rodata field by
field, by name (kernel/contract.py); nothing here knows a struct offset.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, List, Optional, Tuple, Union

from ..convert import Converter
from ..errors import DroptraceError
from ..event import Event
from ..options import HOOKS, Options
from . import btf as btfmod
from . import features, libbpf, reasons, tracefs
from .contract import Contract, contract
from .kallsyms import Kallsyms, Reading
from .privileges import check_privileges
from .ringbuf import Batch, MmapRing, Rings, online_cpus, per_cpu_bytes

PROGRAMS = {"tp_btf": "dt_tp_btf", "raw_tp": "dt_raw_tp", "tracepoint": "dt_tracepoint"}
BTF_PATH = btfmod.VMLINUX
U32_NONE = 0xFFFFFFFF
USERSPACE_FILTER = ("the filter expression runs in user space: this kernel has no bpf_loop (5.17+), so "
                    "every drop the other filters pass crosses the ring buffer")
RECORD_BATCH = 4096  # records read from the ring per batch: bounds memory per write


class Tracer:
    """One tracing session of a feature: start(), then batch() or poll() for events (features
    that stream them), then close(). Subclasses say what differs (the class attributes below
    and _feature_config)."""

    # the feature's object, and its build without bpf_loop (kernels before 5.17)
    OBJECTS: Tuple[str, str] = ("", "")
    OBJECT_NOBTF: Optional[str] = None  # its build for kernels without BTF, if it has one
    CONFIG = ""  # the C name of its configuration struct (`cfg` in .rodata)
    WHAT = "this"  # what it is called in errors ("top needs kernel BTF")
    RING = True  # it streams events through the ring buffers (else it fills maps only)

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.hook: Optional[str] = None
        self.fallbacks: List[Tuple[str, str]] = []  # (hook, why it was not used)
        self.reasons: Optional[reasons.Reasons] = None
        self.has_reason = False
        self.btf = os.path.exists(BTF_PATH)
        self.limits: List[str] = []  # what this host cannot show, said once at start
        self.object = self.OBJECTS[0] if self.btf or not self.OBJECT_NOBTF else self.OBJECT_NOBTF
        self.contract: Contract = contract(self.OBJECTS[0])  # layouts and constants, as compiled
        self._obj: Optional[libbpf.Object] = None
        self._links: List[libbpf.Link] = []
        self._rb: Optional[Rings] = None
        self._ring_fds: List[int] = []
        self._cpus = online_cpus()
        self.ring_bytes = per_cpu_bytes(opts.ringbuf_bytes, len(self._cpus))  # each CPU's ring
        self._wake_bytes = self.ring_bytes // 16  # the programs wake the reader past this mark
        self._listed: List[int] = []
        self._filter: Optional[Tuple[list, list]] = None  # (ethernet, raw IP) programs
        self._user_filter: Optional[Callable[[Event], bool]] = None  # the expression, without bpf_loop
        self._kallsyms: Optional[Reading] = None
        self._converter: Optional[Converter] = None
        self._stats_map: Optional[libbpf.Map] = None
        self.attach_seconds = 0.0
        self.suppressed = 0  # --rate-limit: events held back, read by detach()

    @property
    def big(self) -> bool:
        """Records with room for a whole frame (--payload, or a --snaplen past the headers)."""
        o = self.opts
        return o.payload or (o.snaplen or 0) > self.contract.const["DT_SNAP_MAX"]

    # -- setup ---------------------------------------------------------
    def start(self) -> None:
        """Check, compile the filters, learn the kernel, attach, and get ready to read."""
        t0 = time.monotonic()
        check_privileges()
        if self.RING:
            # Read while the rest starts (the kernel's work: its text, the verifier), so it is
            # there by the first event: a reader waiting for it in a flood would fill the rings.
            # Programs loaded after this snapshot are named by its reload (Kallsyms.symbolize).
            self._kallsyms = Kallsyms.in_background()
        self._compile_filter()
        if self.btf:
            self._learn_kernel()
        else:
            self._without_btf()
        self._attach()
        if self._kallsyms is None:  # counts: named at the first refresh, after the `Tracing` line
            self._kallsyms = Kallsyms.in_background()
        self._converter = Converter(self.reason_name, self._kallsyms.symbolize,
                                    time.time_ns() - time.monotonic_ns(), self.opts.stack, big=self.big,
                                    layouts=self.contract)
        self.attach_seconds = time.monotonic() - t0

    def _compile_filter(self) -> None:
        """The tcpdump expression, compiled by libpcap into its two classic BPF programs."""
        if not self.opts.filter:
            return
        from ..packet.filter import compile_filters

        self._filter = compile_filters(self.opts.filter, self.contract.const["DT_FILTER_MAX"])
        if not self.btf:
            raise DroptraceError(f"filter expressions need kernel BTF ({BTF_PATH} is missing)")

    def _learn_kernel(self) -> None:
        """The reasons and bpf_loop from the shared probe (kernel/features.py): without bpf_loop,
        the object built without it, and the expression run in user space."""
        kernel = features.probe(BTF_PATH)
        self.has_reason = kernel.reasons is not None
        if self.has_reason:
            self.reasons = kernel.reasons
        if not kernel.bpf_loop:
            self.object = self.OBJECTS[1]
            if self._filter:
                self._user_filter = _program_filter(self._filter)
                self._filter = None
                self.limits.append(USERSPACE_FILTER)

    def _attach(self) -> None:
        """The hook ladder: each rung loaded and attached until one works (or the forced one)."""
        libbpf.lib()
        ladder = [self.opts.hook] if self.opts.hook else list(HOOKS)
        for hook in ladder:
            try:
                self._try_hook(hook)
                self.hook = hook
                return
            except libbpf.BpfError as e:
                self._teardown()
                self.fallbacks.append((hook, _why(e)))
            except BaseException:
                self._teardown()
                raise
        tried = "; ".join(f"{h}: {w}" for h, w in self.fallbacks)
        raise DroptraceError(f"could not attach to skb:kfree_skb ({tried})")

    def _without_btf(self) -> None:
        """What to do on a kernel without BTF: refuse (features that need it), or settle for what
        the classic tracepoint gives (drops, with its own object)."""
        raise DroptraceError(f"{self.WHAT} needs kernel BTF ({BTF_PATH} is missing)")

    def _feature_config(self) -> Dict[str, Union[int, bytes]]:
        """The feature's own configuration fields (after DT_SHARED_CONFIG's), by name."""
        return {}

    def _before_load(self, obj: libbpf.Object) -> None:
        """The feature's last changes to its object before it is loaded (map sizes)."""

    def _config(self, hook: str) -> Dict[str, Union[int, bytes]]:
        """The configuration struct's fields, by name, for this hook: DT_SHARED_CONFIG's, then
        the feature's."""
        o, c = self.opts, self.contract.const
        skip = [U32_NONE, U32_NONE]
        mode, listed = c["DT_REASONS_ALL"], []
        tp = {"tp_off_skb": 0, "tp_off_location": 0, "tp_off_reason": 0, "tp_size_reason": 0,
              "tp_off_protocol": 0}
        has_reason = self.has_reason
        if hook == "tracepoint":
            fmt = tracefs.kfree_skb_format()
            f = fmt.fields
            if "skbaddr" not in f or "location" not in f:
                raise DroptraceError("the kfree_skb format file lacks skbaddr/location")
            tp.update(tp_off_skb=f["skbaddr"].offset, tp_off_location=f["location"].offset,
                      tp_off_protocol=f["protocol"].offset if "protocol" in f else 0)
            has_reason = "reason" in f
            if has_reason:
                tp.update(tp_off_reason=f["reason"].offset, tp_size_reason=f["reason"].size)
                if self.reasons is None:
                    self.reasons = reasons.from_print_fmt(fmt.print_fmt)
            self.has_reason = has_reason
        if has_reason and self.reasons is not None:
            for i, v in enumerate(self.reasons.not_drops[:2]):
                skip[i] = v
            if o.reasons:
                mode, listed = c["DT_REASONS_ONLY"], [self.reasons.value(n) for n in o.reasons]
            elif o.exclude_reasons:
                mode, listed = c["DT_REASONS_EXCEPT"], [self.reasons.value(n) for n in o.exclude_reasons]
        elif o.reasons or o.exclude_reasons:
            raise DroptraceError("this kernel reports no drop reasons; --reason/--exclude-reason "
                             "cannot be used")
        self._listed = listed
        mark, mask = o.mark if o.mark else (0, 0)
        return {
            "has_reason": int(has_reason),
            # filters and decoding always see the headers; a smaller --snaplen trims what is stored
            "snaplen": c["DT_SNAP_BIG"] if self.big else c["DT_SNAP_MAX"],
            "skip_reason_a": skip[0], "skip_reason_b": skip[1], "reason_mode": mode,
            "netns_on": int(bool(o.netns)), **self._netns_few(),
            "ifname_on": int(bool(o.interfaces)), "pid": o.pid,
            "mark_on": int(o.mark is not None), "mark": mark & mask, "mark_mask": mask, **tp,
            "filter_on": int(bool(self._filter)),
            "filter_eth_len": len(self._filter[0]) if self._filter else 0,
            "filter_raw_len": len(self._filter[1]) if self._filter else 0,
            "filter_class": self._filter_classes(),
            # woken once 1/16 of a ring is queued, else by the reader's poll timer (POLL_MS)
            "wake_bytes": self._wake_bytes if self.RING else 0,
            **self._feature_config(),
        }

    def _filter_classes(self) -> bytes:
        """The configuration's filter_class: for each class of packets, the bytes the expression reads there
        (the kernel caches its verdicts by them), or nothing (not cached)."""
        from ..packet.filter_reads import CLASSES, reads

        c, st = self.contract.const, self.contract.struct("dt_filter_class")
        fixed, after = c["DT_FC_FIXED"], c["DT_FC_AFTER"]
        out = []
        for cls in CLASSES[:c["DT_FC_CLASSES"]]:
            prog, off, mask, value = cls
            r = reads(self._filter[prog == "raw"], cls, fixed, after) if self._filter else None
            if r is None:
                out.append(st.pack({"on": 0}, complete=False))
                continue
            marks = bytearray(fixed + after)
            for i in r.fixed:
                marks[i] = 0xFF
            for i in r.after_msh:
                marks[fixed + i] = 0xFF
            out.append(st.pack({"on": c["DT_FC_ON"] | (c["DT_FC_LEN"] if r.uses_len else 0),
                                "raw": int(prog == "raw"), "off": off, "msh": r.msh or 0, "mask": mask,
                                "value": value, "reads": bytes(marks)}))
        return b"".join(out)

    def _netns_few(self) -> Dict[str, Union[int, bytes]]:
        """A short --netns list goes into the configuration itself (compared in place); a longer
        one only into the netns_filter map."""
        few = sorted(set(self.opts.netns))
        if len(few) > self.contract.const["DT_NETNS_FEW"]:
            few = []
        return {"netns_few_n": len(few), "netns_few": b"".join(n.to_bytes(4, "little") for n in few)}

    def _try_hook(self, hook: str) -> None:
        if hook == "tracepoint":
            tracefs.require()
        config = self.contract.struct(self.CONFIG).pack(self._config(hook))
        loaded = contract(self.object)  # the object to load, with its own .rodata offsets
        obj = self._obj = libbpf.Object(loaded.path)
        attach = self._programs(obj, hook)
        rodata = obj.map_by_suffix(".rodata")
        at = loaded.config_offset
        image = bytearray(rodata.initial_value())
        image[at:at + len(config)] = config
        rodata.set_initial_value(bytes(image))
        if self.RING:
            obj.map("rings").set_max_entries(libbpf.num_possible_cpus())
        self._before_load(obj)
        obj.load()
        if self.RING:
            self._make_rings(obj.map("rings"))
        self._stats_map = obj.map("stats")
        one = b"\1"
        rf = obj.map("reason_filter")
        for value in self._listed:
            rf.update(value.to_bytes(4, "little"), one)
        if self.btf:
            for ino in self.opts.netns:
                obj.map("netns_filter").update(ino.to_bytes(4, "little"), one)
            names = self.contract.struct("dt_ifname")
            for name in self.opts.interfaces:
                obj.map("ifname_filter").update(names.pack({"name": name}), one)
        if self._filter:
            insn, fi = self.contract.struct("dt_insn"), obj.map("filter_insns")
            base = self.contract.const["DT_FILTER_MAX"]
            for start, prog in zip((0, base), self._filter):
                for i, (code, jt, jf, k) in enumerate(prog):
                    fi.update((start + i).to_bytes(4, "little"),
                              insn.pack({"code": code, "jt": jt, "jf": jf, "k": k}))
        for name in attach:
            self._links.append(obj.program(name).attach())

    def _make_rings(self, rings: libbpf.Map) -> None:
        """A ring buffer for each online CPU, in `rings` at its number, before anything attaches."""
        made = []
        for cpu in self._cpus:
            fd = libbpf.create_ringbuf(self.ring_bytes)
            self._ring_fds.append(fd)
            rings.update(cpu.to_bytes(4, "little"), fd.to_bytes(4, "little"))
            made.append((fd, MmapRing(fd, self.ring_bytes)))
        self._rb = Rings(made, self._wake_bytes)

    def _programs(self, obj: libbpf.Object, hook: str) -> List[str]:
        """Switch on the programs of this hook (the others are not even loaded); their names.
        The skb:kfree_skb programs (bpf/kfree_skb.bpf.h); trail has its own."""
        if self.btf:
            for h, prog in PROGRAMS.items():
                obj.program(prog).set_autoload(h == hook)
        return [PROGRAMS[hook]]

    # -- running -------------------------------------------------------
    def symbolize(self, addr: int) -> str:
        return self._kallsyms.symbolize(addr) if self._kallsyms else f"0x{addr:x}"

    def reason_name(self, value: int) -> str:
        return self.reasons.name(value) if self.reasons else str(value)

    @property
    def reason_width(self) -> int:
        """The longest core reason name of this kernel (text columns are laid out for it; a longer
        subsystem name widens them when it appears, and module BTF is not read for it)."""
        if self.reasons is None:
            return 1
        return max((len(n) for n in self.reasons.names.values()), default=1)

    def batch(self, timeout_ms: int = 0, limit: int = RECORD_BATCH) -> Batch:
        """Up to limit records waiting in the ring, for one sink to take (after waiting up to
        timeout_ms if none are there yet)."""
        if timeout_ms:
            self._rb.wait(timeout_ms)
        conv = self._converter
        return Batch(self._rb, limit, conv.convert, self._check, self._user_filter, conv)

    def _check(self, raw: bytes) -> None:
        """Refuse a record this droptrace cannot read (an object of another install)."""
        self._converter.check(raw)

    def poll(self, timeout_ms: int = 100) -> List[Event]:
        """Wait up to timeout_ms for events; return those that arrived, decoded."""
        return self.batch(timeout_ms).events()

    def drain(self) -> List[Event]:
        """Every event still in the ring."""
        events: List[Event] = []
        while True:
            b = self.batch()
            events += b.events()
            if b.short:
                return events

    @property
    def converter(self) -> Converter:
        return self._converter

    def counters(self) -> Tuple[int, int]:
        """(emitted, lost) summed over CPUs, as counted in the kernel."""
        return self.stat("DT_STAT_EMITTED"), self.stat("DT_STAT_LOST")

    def stat(self, name: str) -> int:
        """One per-CPU counter of the stats map (DT_STAT_*), summed over CPUs."""
        if self._stats_map is None:
            return 0
        ncpu = libbpf.num_possible_cpus()
        slot = self.contract.const[name]
        raw = self._stats_map.lookup(slot.to_bytes(4, "little"), 8 * ncpu) or b""
        return sum(int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8))

    # -- teardown ------------------------------------------------------
    def _teardown(self) -> None:
        if self._rb is not None:
            self._rb.close()
            self._rb = None
        while self._ring_fds:
            os.close(self._ring_fds.pop())
        self._unlink()
        if self._obj is not None:
            self._obj.close()
            self._obj = None
        self._stats_map = None

    def detach(self) -> None:
        """Stop new events; those already in the ring buffer can still be taken (batch())."""
        if self._links:
            self._unlink()
            self.suppressed = self.stat("DT_STAT_SUPPRESSED")  # final once nothing runs

    def _unlink(self) -> None:
        while self._links:
            self._links.pop().destroy()

    def close(self) -> None:
        self._teardown()

    def __enter__(self) -> "Tracer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _program_filter(programs: Tuple[list, list]) -> Callable[[Event], bool]:
    """The expression's two classic BPF programs, run on an event's copied headers."""
    from ..packet.libpcap import OfflineProgram

    eth, raw = OfflineProgram(programs[0]), OfflineProgram(programs[1])

    def keep(e: Event) -> bool:
        if not e.packet:
            return False
        return (eth if e.link_ethernet else raw).matches(e.packet, max(e.wire_len, len(e.packet)))
    return keep


def _why(e: Exception) -> str:
    log = getattr(e, "log", "")
    last = [ln.strip() for ln in log.splitlines() if ln.strip()]
    detail = f" [{last[-1]}]" if last else ""
    return f"{e}{detail}"
