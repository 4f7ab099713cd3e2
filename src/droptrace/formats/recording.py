"""Recordings: where events are written (-w) and read back (report, droptrace.read).

pcapng keeps the packets for Wireshark and tshark; JSON lines keep the same
objects as --json. The format follows the file's extension unless --format
says otherwise; reading recognises both by their content. A recording ends
with a summary (drops written, lost in the kernel, suppressed by
--rate-limit): in pcapng an Interface Statistics Block, in JSON lines a last
`{"droptrace_summary": ...}` line that readers skip, so a file never claims
to hold every drop when some were lost.
"""
from __future__ import annotations

import json
import os
import struct
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Dict, Iterator, List, Optional

from ..errors import DroptraceError
from ..event import Event, dumps
from . import pcap, pcapng
from .jsonl import JsonWriter
from .out import Output
from .sink import EventSink

if TYPE_CHECKING:
    pass

FORMATS = ("pcapng", "jsonl", "pcap")
SUMMARY_KEY = "droptrace_summary"


def format_for(path: str, fmt: Optional[str]) -> str:
    if fmt:
        return fmt
    if path == "-":
        return "pcapng"
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if ext in (".pcapng", ".ntar", ""):
        return "pcapng"
    if ext in (".pcap", ".cap", ".dmp"):
        return "pcap"
    raise DroptraceError(f"cannot tell the format of {path!r} from its extension; "
                         "use .pcapng, .jsonl or .pcap, or --format")


class Recorder(EventSink):
    """A recording being written. open() only once tracing is attached, so a failed start
    never touches an existing file; every batch is written whole."""

    def __init__(self, path: str, fmt: str, stack: bool, snaplen: Optional[int] = None) -> None:
        self.path = path
        self.fmt = fmt
        self.stack = stack
        self.snaplen = snaplen  # bytes of each packet stored; None: all that was captured
        self.out: Optional[Output] = None
        self.writer: Any = None

    @property
    def name(self) -> str:
        return "stdout" if self.path == "-" else self.path

    def open(self) -> None:
        self.out = Output.open(self.path)
        if self.fmt == "pcapng":
            self.writer = pcapng.Writer(self.out)
        elif self.fmt == "pcap":
            self.writer = pcap.Writer(self.out)
        else:
            self.writer = JsonWriter(self.out, self.stack)

    def write(self, events: List[Event]) -> None:
        self.writer.write(self._trimmed(events))

    def _trimmed(self, events: List[Event]) -> List[Event]:
        if self.snaplen is not None:
            for e in events:
                if len(e.packet) > self.snaplen:
                    e.packet = e.packet[:self.snaplen]
        return events

    def finish(self, summary: Dict[str, Any]) -> None:
        """The closing summary: drops written, lost, suppressed."""
        if self.writer is None:
            return
        if self.fmt == "pcapng":
            self.writer.finish(summary)
        elif self.fmt == "jsonl":
            self.out.write(dumps({SUMMARY_KEY: summary}) + b"\n")

    @property
    def skipped(self) -> int:
        """Drops the format had nothing to store for (classic pcap: no packet bytes)."""
        return getattr(self.writer, "skipped", 0)

    @property
    def lost_in_format(self) -> Optional[str]:
        """What this format could not keep, said once at the end (classic pcap keeps packets only)."""
        if self.fmt != "pcap" or self.writer is None:
            return None
        kept = "classic pcap keeps the packets only (reason, location and task are in pcapng or JSON lines)"
        return kept + (f"; {self.skipped} drops without packet bytes left out" if self.skipped else "")

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


class _Rewound:
    """A stream whose first bytes were read to tell its format, read again from the start."""

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self.head, self.f = head, f

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.f.read(n)
        if n < 0:
            out, self.head = self.head + self.f.read(), b""
            return out
        out, self.head = self.head[:n], self.head[n:]
        return out + self.f.read(n - len(out)) if len(out) < n else out

    def readline(self) -> bytes:
        if self.head:
            nl = self.head.find(b"\n")
            if nl >= 0:
                out, self.head = self.head[:nl + 1], self.head[nl + 1:]
                return out
            out, self.head = self.head, b""
            return out + self.f.readline()
        return self.f.readline()


class Recording:
    """A recording read back: iterate for its Events. Reads files and streams (a pipe,
    /dev/stdin) alike, in one pass. `summary` is the recording's closing statistics once the
    end is reached (None for a killed run); `warnings` what was odd about the file (cut short,
    lines skipped, packets without droptrace metadata), each said once, also to `on_warning`."""

    def __init__(self, path: str, on_warning: Optional[Callable[[str], None]] = None) -> None:
        self.path = path
        self.summary: Optional[Dict[str, Any]] = None
        self.warnings: List[str] = []
        self._on_warning = on_warning
        try:
            self._f: BinaryIO = open(path, "rb")
        except OSError as e:
            raise DroptraceError(f"cannot read {path}: {e.strerror}") from None
        try:
            head = self._f.read(4)
        except OSError as e:
            self._f.close()
            raise DroptraceError(f"cannot read {path}: {e.strerror}") from None
        if head == b"\x0a\x0d\x0d\x0a":
            self.format = "pcapng"
        elif head in pcapng.PCAP_MAGICS:
            self.format = "pcap"
        elif not head.strip() or head.lstrip()[:1] == b"{":
            self.format = "jsonl"
        else:
            self._f.close()
            raise DroptraceError(f"{path}: not a droptrace recording (neither pcapng nor JSON lines)")
        self._src = _Rewound(head, self._f)
        self._events = self._read()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._on_warning is not None:
            self._on_warning(message)

    def _read(self) -> Iterator[Event]:
        try:
            with self._f:
                if self.format == "jsonl":
                    yield from self._jsonl()
                else:
                    yield from self._packets()
        except OSError as e:
            raise DroptraceError(f"reading {self.path}: {e.strerror}") from None

    def _packets(self) -> Iterator[Event]:
        reader = pcapng.Reader(self._src) if self.format == "pcapng" else pcapng.ClassicReader(self._src)
        try:
            yield from reader
        except (pcapng.PcapngError, ValueError, struct.error) as e:
            raise DroptraceError(f"{self.path}: {e}") from None
        self.summary = reader.summary
        if reader.foreign:
            self.warn(f"{self.path}: {reader.foreign} packets were not written by droptrace: shown "
                      "from their bytes, without reason, location or task")
        if reader.truncated:
            self.warn(f"{self.path}: the file ends inside a block (a killed run or a full disk?); "
                      "read up to the last whole one")

    def _jsonl(self) -> Iterator[Event]:
        n = good = 0
        skipped: List[int] = []
        nxt = self._src.readline()
        while nxt:
            raw, nxt = nxt, self._src.readline()
            n += 1
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                if not nxt and line.startswith(b"{"):  # the last line, cut short
                    self.warn(f"{self.path}: line {n} is cut short (a killed run or a full disk?); "
                              "read up to the last whole line")
                    break
                if not good and not skipped:
                    raise DroptraceError(f"{self.path}:{n}: not a droptrace recording "
                                         "(neither pcapng nor JSON lines)")
                skipped.append(n)
                if len(skipped) == 1:
                    self.warn(f"{self.path}: line {n}: invalid JSON, skipped")
                continue
            if SUMMARY_KEY in obj:
                self.summary = obj[SUMMARY_KEY] if isinstance(obj[SUMMARY_KEY], dict) else None
                continue
            good += 1
            yield Event.from_dict(obj, ts_ns=_ts_ns(obj.get("time")))
        if len(skipped) > 1:
            self.warn(f"{self.path}: {len(skipped)} lines in all were not valid JSON and were skipped")


def read(path: str, on_warning: Optional[Callable[[str], None]] = None) -> Recording:
    """The Events of a recording (pcapng, JSON lines, or another tool's pcap/pcapng, told apart by
    content); the file is opened now, so a missing one is an error at the call."""
    return Recording(path, on_warning)


def _ts_ns(text: Optional[str]) -> int:
    if not text:
        return 0
    try:
        dt = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return 0
    # exact to the microsecond: no float rounding
    return (int(dt.timestamp()) * 1_000_000 + dt.microsecond) * 1000 if dt.tzinfo else \
        int(dt.timestamp() * 1e6) * 1000
