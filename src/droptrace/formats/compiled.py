"""The drop-storm path: raw records rendered in C (droptrace._render), a batch at a time.

Why: at 500,000 drops a second, a bytes object and an Event per record cost
more in Python than the budget allows. A storm repeats itself, though: the
same reason, location, device and flow, packet after packet. So everything
that is decoded once per static key (Converter._key: the record minus time,
task, CPU, length, stack and the IPv4 ID and checksum) stays here in Python,
and C only looks the key up and fills in the per-packet values.

The first two records of each key (and any odd one) are rendered by the
Python writers themselves, exactly as without the extension, and the second
leaves a template for its key: literal bytes with typed holes (time, numbers,
the task name and stack through small caches, packet bytes, pcapng lengths).
Whatever changes how a key renders clears the templates: a text column that
widens (the header is printed again), a cache that is full. The Python paths
stay the reference; tests/unit/test_render.py compares both byte for byte.

Without the extension (no C compiler at install), or with
DROPTRACE_PURE_PYTHON=1, nothing here is used.
"""
from __future__ import annotations

import dataclasses
import json
import os
import struct
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set

from ..event import Event, dumps, iso_parts
from . import pcapng as pcap
from . import text as txt
from .jsonl import JsonWriter, RawJsonWriter
from .recording import Recorder

if TYPE_CHECKING:
    from ..convert import Converter
    from ..kernel.ringbuf import Batch

try:
    from .. import _render
except ImportError:  # built without a C compiler: the Python paths
    _render = None  # type: ignore[assignment]

PURE_ENV = "DROPTRACE_PURE_PYTHON"
# The renderings of the task name and of the stack, one slot per format (C caches each by its bytes).
JSON, TEXT, HUMAN, MACHINE = range(4)

Write = Callable[[bytes], None]
Items = List[Any]


def compiled() -> Any:
    """The compiled module, or None: not built, or switched off (DROPTRACE_PURE_PYTHON=1)."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return None
    return _render


def status() -> str:
    """For the doctor: whether batches are rendered in C, and if not, why."""
    if _render is None:
        return "not built (no C compiler or Python headers at install): output is rendered in Python"
    if compiled() is None:
        return f"built, switched off by {PURE_ENV}: output is rendered in Python"
    return "compiled (droptrace._render): drop storms are written in batches from the ring buffer"


def _json_dumps(obj: Any) -> bytes:
    """The machine comment's JSON (json.dumps, ASCII), as pcapng.machine_comment writes it."""
    return json.dumps(obj, separators=(",", ":")).encode()


class FastRenderer:
    """One output format's compiled renderer: poll() reads, renders and writes a batch straight
    from the ring; write() renders records already read. Subclasses say how Python renders one
    event (python()) and the template of its key (template())."""

    def __init__(self, conv: "Converter", write: Write, module: Any) -> None:
        self.conv = conv
        self._write = write
        self.templates: Dict[bytes, Any] = {}
        self._seen: Set[bytes] = set()  # keys seen once, without a template yet
        self.sizes = (conv.record_size, conv.stack_at + conv.stack_bytes)
        ev = conv.event
        op = module

        def field(name: str) -> tuple:
            f = ev.field(name)
            return f.offset, f.size

        comm = {JSON: lambda c: conv.comm_text(c)[1],
                TEXT: lambda c: txt.comm_cell(conv.comm_text(c)[0]).encode("utf-8", "replace"),
                HUMAN: lambda c: conv.comm_text(c)[0].encode(),
                MACHINE: lambda c: _json_dumps(conv.comm_text(c)[0])}
        stack = {JSON: lambda k: conv.stack_names(k)[1],
                 TEXT: lambda k: "".join("\n" + ln for ln in txt.stack_lines(conv.stack_names(k)[0])).encode(
                     "utf-8", "replace"),
                 HUMAN: lambda k: pcap.human_stack(conv.stack_names(k)[0]).encode(),
                 MACHINE: lambda k: _json_dumps(conv.stack_names(k)[0])}
        self.c = op.Renderer(
            sizes=self.sizes, data_at=conv.data_at, snap_area=conv.snap_area, ts=field("ts_ns"),
            len=field("len"), data_off=field("data_off"), cap_len=field("cap_len"), net_off=field("net_off"),
            stack_len=field("stack_len"), comm=field("comm"), stack=(conv.stack_at, conv.stack_bytes),
            keyed=tuple(conv.keyed), offset_ns=conv.offset_ns, templates=self.templates, miss=self._miss,
            iso=lambda sec: tuple(p.encode() for p in iso_parts(sec)),
            clock=lambda sec: txt.clock_second(sec).encode(),
            comm_cbs=tuple(comm[i] for i in range(4)), stack_cbs=tuple(stack[i] for i in range(4)))
        self.op = op
        self._pid, self._cpu, self._tid, self._len = (
            (op.OP_UINT, *field(n)) for n in ("pid", "cpu", "tid", "len"))

    def write_batch(self, batch: "Batch") -> int:
        """Render the batch where it lies in the ring and write it; how many records."""
        data, n = batch.render(self.c.render_ring)
        if data:
            self._write(data)
        return n

    # -- what C asks Python for ------------------------------------------------------------
    def _miss(self, raw: bytes, key: Optional[bytes]) -> bytes:
        """A record C has no template for: Python renders it, then leaves one for its key (None:
        a record C must not cache, such as one of an unexpected size)."""
        conv = self.conv
        if len(raw) not in self.sizes:
            conv.check(raw)  # a stale install: says so
        e = None if self.raw_python else conv.convert(raw)
        out = self.python(raw, e)
        if key is None:
            return out
        # A template pays off from a key's second record on: so a flood of spoofed sources (a new
        # key per packet) costs what the Python path costs, and not a template per packet more.
        if key not in self._seen:
            if len(self._seen) >= conv.CACHE_MAX:
                self._seen.clear()
            self._seen.add(key)
            return out
        items = self.template(e or conv.convert(raw))
        if items is not None:
            if len(self.templates) >= conv.CACHE_MAX:
                self.templates.clear()
            self.templates[key] = self.c.template(_merged(items))
        return out

    raw_python = False  # python() renders from the raw record alone: no Event is built for it

    def python(self, raw: bytes, e: Optional[Event]) -> bytes:
        raise NotImplementedError

    def template(self, e: Event) -> Optional[Items]:
        raise NotImplementedError

    # -- template pieces --------------------------------------------------------------------
    def json_object(self, d: Dict[str, Any], dump: Callable[[Any], bytes], slot: int) -> Items:
        """An object as `dump` writes it, with holes for the per-packet values."""
        holes = {"time": [b'"', (self.op.OP_ISO,), b'"'], "cpu": [self._cpu], "pid": [self._pid],
                 "tid": [self._tid], "comm": [(self.op.OP_COMM, slot)]}
        if d.get("len") is not None:
            holes["len"] = [self._len]
        if d.get("stack") is not None:
            holes["stack"] = [(self.op.OP_STACK, slot)]
        members: List[Items] = []
        run: Dict[str, Any] = {}
        for k, v in d.items():
            if k not in holes:
                run[k] = v
                continue
            if run:
                members.append([dump(run)[1:-1]])
                run = {}
            members.append([dump(k) + b":", *holes[k]])
        if run:
            members.append([dump(run)[1:-1]])
        items: Items = [b"{"]
        for i, m in enumerate(members):
            items += [b","] * bool(i) + m
        return items + [b"}"]


def _merged(items: Items) -> Items:
    """Adjacent literals joined: fewer steps per record."""
    out: Items = []
    for it in items:
        if isinstance(it, bytes) and out and isinstance(out[-1], bytes):
            out[-1] += it
        elif not (isinstance(it, bytes) and not it):
            out.append(it)
    return out


class JsonRenderer(FastRenderer):
    """--json and JSON lines recordings: one object per line."""

    def __init__(self, conv: "Converter", write: Write, module: Any, with_stack: Optional[bool],
                 python: Callable[[bytes, Optional[Event]], bytes], raw: bool = False) -> None:
        super().__init__(conv, write, module)
        self.with_stack = with_stack
        self._python = python
        self.raw_python = raw

    def python(self, raw: bytes, e: Optional[Event]) -> bytes:
        return self._python(raw, e)

    def template(self, e: Event) -> Items:
        return self.json_object(e.to_dict(with_stack=self.with_stack), dumps, JSON) + [b"\n"]


class TextRenderer(FastRenderer):
    """The aligned text lines. The first batch sizes the first header, so Python writes it."""

    def __init__(self, conv: "Converter", write: Write, module: Any, writer: txt.TextWriter) -> None:
        super().__init__(conv, write, module)
        self.writer = writer

    def write_batch(self, batch: "Batch") -> int:
        if self.writer.header_written:
            return super().write_batch(batch)
        return self.writer.write_batch(batch)  # the first: its header is sized in Python

    def python(self, raw: bytes, e: Optional[Event]) -> bytes:
        assert e is not None
        widths = dict(self.writer.columns.w)
        out = self.writer.render([e]).encode("utf-8", "replace")
        if self.writer.columns.w != widths:  # a new header: every line is laid out anew
            self.templates.clear()
        return out

    def template(self, e: Event) -> Items:
        op, w = self.op, self.writer
        middle = w.columns.middle(e, *txt.flow_cells(e))
        items: Items = [(op.OP_CLOCK, 12), b"  ", (*self._pid[:3], txt.PID_W), b" ", (op.OP_COMM, TEXT),
                        b" ", middle.encode("utf-8", "replace")]
        after = " ".join(txt.flow_details(e))
        if e.len is not None:
            items += [b"len=", self._len, (" " + after if after else "").encode("utf-8", "replace")]
        else:
            items.append(after.encode("utf-8", "replace"))
        if w.stack and e.stack is not None:
            items.append((op.OP_STACK, TEXT))
        return items + [b"\n"]


class PcapngRenderer(FastRenderer):
    """pcapng recordings: an Enhanced Packet Block per drop, with both comments."""

    def __init__(self, conv: "Converter", write: Write, module: Any, writer: pcap.Writer,
                 snaplen: Optional[int]) -> None:
        super().__init__(conv, write, module)
        self.writer = writer
        self.snaplen = snaplen

    def _trimmed(self, e: Event) -> Event:
        """e as Recorder.write() hands it on (a copy: the template needs the captured length)."""
        if self.snaplen is not None and len(e.packet) > self.snaplen:
            return dataclasses.replace(e, packet=e.packet[:self.snaplen])
        return e

    def python(self, raw: bytes, e: Optional[Event]) -> bytes:
        assert e is not None
        return self.writer.render([self._trimmed(e)])

    def template(self, e: Event) -> Items:
        op = self.op
        captured = len(e.packet)
        n = len(pcap.stored(self._trimmed(e)))
        linktype = pcap.LINKTYPE_ETHERNET if e.link_ethernet else pcap.LINKTYPE_RAW
        idx, idb = self.writer.interface(e, linktype)
        assert not idb, "python() described the interface"
        items: Items = [(op.OP_BLOCK_BEGIN, pcap.EPB), struct.pack("<I", idx), (op.OP_TS_US,),
                        struct.pack("<I", n), (op.OP_ORIG, captured, int(e.len is not None)),
                        (op.OP_DATA, n), (op.OP_OPT_BEGIN, pcap.OPT_COMMENT),
                        f"{pcap.human_where(e)}; pid ".encode(), self._pid, b" comm ", (op.OP_COMM, HUMAN),
                        b" (task on CPU ", self._cpu, b")"]
        if e.stack is not None:
            items.append((op.OP_STACK, HUMAN))
        items += [(op.OP_OPT_END,), (op.OP_OPT_BEGIN, pcap.OPT_COMMENT), pcap.MACHINE_PREFIX.encode()]
        items += self.json_object(pcap.machine_dict(self._trimmed(e)), _json_dumps, MACHINE)  # as stored
        return items + [(op.OP_OPT_END,), struct.pack("<HH", pcap.OPT_END, 0), (op.OP_BLOCK_END,)]


# -- what the sinks ask for ----------------------------------------------------------------------
def _usable(conv: "Converter") -> Any:
    mod = compiled()
    if mod is None or conv.event.order != ("<" if sys.byteorder == "little" else ">"):
        return None
    return mod


def json_stream(conv: "Converter", write: Write) -> Optional[FastRenderer]:
    """--json, as RawJsonWriter writes it (Converter.json_lines)."""
    mod = _usable(conv)
    if mod is None:
        return None
    return JsonRenderer(conv, write, mod, conv.with_stack, lambda raw, e: conv.json_lines([raw])[0] + b"\n",
                        raw=True)


def jsonl(conv: "Converter", writer: "JsonWriter", write: Write) -> Optional[FastRenderer]:
    """A JSON lines recording, as its JsonWriter writes it."""
    mod = _usable(conv)
    if mod is None:
        return None
    return JsonRenderer(conv, write, mod, writer.stack, lambda raw, e: writer.render([e]))  # type: ignore[list-item]


def text(conv: "Converter", writer: txt.TextWriter) -> Optional[FastRenderer]:
    """The text stream, as its TextWriter writes it."""
    mod = _usable(conv)
    return None if mod is None else TextRenderer(conv, writer.out.write, mod, writer)


def pcapng(conv: "Converter", writer: pcap.Writer, write: Write,
           snaplen: Optional[int]) -> Optional[FastRenderer]:
    """A pcapng recording, as its Writer writes it after Recorder's --snaplen trim."""
    mod = _usable(conv)
    return None if mod is None else PcapngRenderer(conv, write, mod, writer, snaplen)


def for_sink(sink: Any, conv: "Converter") -> Optional[FastRenderer]:
    """The compiled renderer writing what sink's own write would, or None: the extension is
    absent, or sink is not one of the writers rendered here."""
    if isinstance(sink, RawJsonWriter):
        return json_stream(conv, sink.out.write)
    if isinstance(sink, txt.TextWriter):
        return text(conv, sink)
    if isinstance(sink, Recorder):  # once open()
        if sink.fmt == "pcapng":
            return pcapng(conv, sink.writer, sink.out.write, sink.snaplen)
        if sink.fmt == "jsonl":
            return jsonl(conv, sink.writer, sink.out.write)
    return None


class Compiled:
    """A sink whose batches are rendered in C where that writes the same bytes: batches that
    can be read in place (no filter runs in user space), for the writers rendered here."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self._for: Any = None  # the converter the renderer was made for
        self._fast: Optional[FastRenderer] = None

    def write_batch(self, batch: "Batch") -> int:
        if batch.in_place and batch.converter is not None:
            if batch.converter is not self._for:
                self._for, self._fast = batch.converter, for_sink(self.sink, batch.converter)
            if self._fast is not None:
                return self._fast.write_batch(batch)
        return self.sink.write_batch(batch)


def fastest(sink: Any) -> Any:
    """sink, behind its compiled renderer where the extension is there to render it."""
    return sink if compiled() is None else Compiled(sink)
