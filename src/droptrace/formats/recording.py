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
from datetime import datetime
from typing import Any, BinaryIO, Dict, Iterator, List, Optional

from ..errors import DroptraceError
from ..event import Event, dumps
from . import pcapng
from .jsonl import JsonWriter
from .out import Output

FORMATS = ("pcapng", "jsonl")
SUMMARY_KEY = "droptrace_summary"


def format_for(path: str, fmt: Optional[str]) -> str:
    if fmt:
        return fmt
    if path == "-":
        return "pcapng"
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if ext in (".pcapng", ".pcap", ".ntar", ""):
        return "pcapng"
    raise DroptraceError(f"cannot tell the format of {path!r} from its extension; "
                         "use .pcapng or .jsonl, or --format")


class Recorder:
    """A recording being written. open() only once tracing is attached, so a failed start
    never touches an existing file; every batch is written whole."""

    def __init__(self, path: str, fmt: str, stack: bool, snaplen: Optional[int] = None) -> None:
        self.path = path
        self.fmt = fmt
        self.stack = stack
        self.snaplen = snaplen  # bytes of each packet stored; None: all that was captured
        self._out: Optional[Output] = None
        self._writer: Any = None

    @property
    def name(self) -> str:
        return "stdout" if self.path == "-" else self.path

    def open(self) -> None:
        self._out = Output.open(self.path)
        if self.fmt == "pcapng":
            self._writer = pcapng.Writer(self._out)
        else:
            self._writer = JsonWriter(self._out, self.stack)

    def write(self, events: List[Event]) -> None:
        if self.snaplen is not None:
            for e in events:
                if len(e.packet) > self.snaplen:
                    e.packet = e.packet[:self.snaplen]
        self._writer.write(events)

    def finish(self, summary: Dict[str, Any]) -> None:
        """The closing summary: drops written, lost, suppressed."""
        if self._writer is None:
            return
        if self.fmt == "pcapng":
            self._writer.finish(summary)
        else:
            self._out.write(dumps({SUMMARY_KEY: summary}) + b"\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


class Recording:
    """A recording read back: iterate for its Events; `summary` is set once the end is reached
    (None when the file has none, e.g. a killed run)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.summary: Optional[Dict[str, Any]] = None
        try:
            self._f: BinaryIO = open(path, "rb")
        except OSError as e:
            raise DroptraceError(f"cannot read {path}: {e.strerror}") from None
        self._events = self._read()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def _read(self) -> Iterator[Event]:
        with self._f as f:
            head = f.read(4)
            f.seek(0)
            if head == b"\x0a\x0d\x0d\x0a":
                reader = pcapng.Reader(f)
                try:
                    yield from reader
                except (pcapng.PcapngError, ValueError) as e:
                    raise DroptraceError(f"{self.path}: {e}") from None
                self.summary = reader.summary
                return
            lines = f.read().splitlines()
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                if n == len(lines) and line.startswith(b"{"):
                    return  # the torn last line of a killed recording
                raise DroptraceError(f"{self.path}:{n}: not a droptrace recording "
                                     "(neither pcapng nor JSON lines)") from None
            if not isinstance(obj, dict):
                raise DroptraceError(f"{self.path}:{n}: expected a JSON object per line")
            if SUMMARY_KEY in obj:
                self.summary = obj[SUMMARY_KEY] if isinstance(obj[SUMMARY_KEY], dict) else None
                continue
            yield Event.from_dict(obj, ts_ns=_ts_ns(obj.get("time")))


def read(path: str) -> Recording:
    """The Events of a recording (pcapng or JSON lines, told apart by content); the file is
    opened now, so a missing one is an error at the call."""
    return Recording(path)


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
