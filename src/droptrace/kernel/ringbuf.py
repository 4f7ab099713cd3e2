"""Reading a BPF ring buffer straight from its memory (mmap), in batches.

libbpf's ring_buffer__poll calls back into Python once per record through
ctypes, which costs more than formatting the event; in a drop storm that is
the difference between keeping up and losing events. The layout is the
kernel's (kernel/bpf/ringbuf.c): a consumer-position page we write, then a
producer-position page and the data area, mapped twice in a row so a record
that wraps is still contiguous. Each record has an 8-byte header whose length
word carries BUSY (not yet committed) and DISCARD bits.

The two positions are read and written as whole aligned 8-byte words (a
memoryview cast to "Q": one load, one store). struct.pack_into zeroes its
bytes first and then writes them one at a time: for that moment the kernel
read a consumer position of 0 (or half of one), judged the ring full and
dropped the events of that instant, some tens a flood (BENCHMARKS.md).
"""
from __future__ import annotations

import mmap
import select
import struct
from typing import Any, Callable, List, Optional, Tuple

from ..errors import DroptraceError

BUSY, DISCARD = 1 << 31, 1 << 30
# The BPF side wakes the reader only once a share of the ring is queued (the configuration's wake_bytes):
# a wakeup per event would cost the dropping CPU more than the event. So the reader also looks
# every POLL_MS, which bounds how late a lone drop is shown.
POLL_MS = 10
_U32 = struct.Struct("<I")


class MmapRing:
    """One ring buffer's mappings: read() copies records out, render() hands them to a compiled
    renderer in place. Rings waits for it, with the others."""

    def __init__(self, map_fd: int, size: int) -> None:
        if size & (size - 1):
            raise DroptraceError(f"ring buffer size {size} is not a power of two")
        page = mmap.PAGESIZE
        try:
            self._cons = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                                   offset=0)
            self._data = mmap.mmap(map_fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                                   offset=page)
        except OSError as e:
            raise DroptraceError(f"cannot map the ring buffer: {e.strerror}") from None
        self._mask = size - 1
        self._page = page
        self._positions()

    def _positions(self) -> None:
        """The consumer and producer positions as native 8-byte words (see the module's doc)."""
        self._cons_pos = memoryview(self._cons)[:8].cast("B").cast("Q")
        self._prod_pos = memoryview(self._data)[:8].cast("B").cast("Q")

    def read(self, limit: int = 4096) -> List[bytes]:
        """Up to limit committed records, in order; their space is released."""
        cons = self._cons_pos[0]
        prod = self._prod_pos[0]
        data, base, mask, out = self._data, self._page, self._mask, []
        unpack = _U32.unpack_from
        while cons < prod and len(out) < limit:
            off = base + (cons & mask)
            hdr = unpack(data, off)[0]
            if hdr & BUSY:
                break
            length = hdr & ~(BUSY | DISCARD)
            if not hdr & DISCARD:
                out.append(data[off + 8:off + 8 + length])
            cons += (length + 8 + 7) & ~7
        self._cons_pos[0] = cons
        return out

    def pending(self) -> bool:
        return self.queued() > 0

    def queued(self) -> int:
        """Bytes written and not yet read (records and their headers)."""
        return self._prod_pos[0] - self._cons_pos[0]

    def render(self, render_ring: Callable[[Any, int, int, int, int], Tuple[int, bytes, int]],
               limit: int = 4096) -> Tuple[bytes, int]:
        """Like read(), but the records are rendered in place by a compiled renderer
        (formats/compiled.py) instead of copied out one by one: (its output, records rendered). The
        space is released only once the batch is rendered; an error leaves it in the ring."""
        cons, out, n = render_ring(self._data, self._page, self._mask, self._cons_pos[0], limit)
        self._cons_pos[0] = cons
        return out, n

    @classmethod
    def over(cls, cons: Any, data: Any, size: int, page: int = mmap.PAGESIZE) -> "MmapRing":
        """A ring over buffers laid out like the kernel's mappings (tests: anonymous mmaps)."""
        ring = cls.__new__(cls)
        ring._cons, ring._data, ring._mask, ring._page = cons, data, size - 1, page
        ring._positions()
        return ring

    def close(self) -> None:
        self._cons_pos.release()  # an mmap with views still exported refuses to close
        self._prod_pos.release()
        for m in (self._data, self._cons):
            if isinstance(m, mmap.mmap):
                m.close()


def online_cpus(text: Optional[str] = None) -> List[int]:
    """The CPUs online now (/sys/devices/system/cpu/online: "0-3,5")."""
    if text is None:
        try:
            with open("/sys/devices/system/cpu/online") as f:
                text = f.read()
        except OSError:
            return [0]
    cpus: List[int] = []
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        if lo.strip().isdigit():
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus or [0]


def per_cpu_bytes(total: int, cpus: int) -> int:
    """Each CPU's ring: an even share of total, rounded down to a power of two, at least MIN_RING."""
    share = max(total // max(cpus, 1), MIN_RING)
    return 1 << (share.bit_length() - 1)


MIN_RING = 1 << 20


class Rings:
    """The per-CPU ring buffers (bpf/ring.bpf.h), read as one: a batch takes the records of each
    CPU's ring in turn (each CPU's in the order it wrote them), and one epoll waits for all.
    The order promised: per CPU, the order of the events; across CPUs, a batch holds each CPU's
    records in turn, so two events of different CPUs may come out of order by up to a batch's
    span (at most 4,096 records, or the 10 ms between polls). Every record carries its CPU and
    its time."""

    def __init__(self, rings: "List[Tuple[int, MmapRing]]", wake_bytes: int) -> None:
        self.rings = [r for _, r in rings]
        self.wake_bytes = wake_bytes
        self._epoll: Optional[select.epoll] = select.epoll()
        for fd, _ in rings:  # edge-triggered: woken by the programs' wakeups, not by any record there
            self._epoll.register(fd, select.EPOLLIN | select.EPOLLET)
        self._next = 0  # the ring a batch starts with: each in turn, so none waits behind the others

    def _order(self) -> List[MmapRing]:
        n = len(self.rings)
        first, self._next = self._next % n, (self._next + 1) % n
        return self.rings[first:] + self.rings[:first]

    def pending(self) -> bool:
        return any(r.pending() for r in self.rings)

    def wait(self, timeout_ms: int) -> None:
        """Wait up to timeout_ms (at most POLL_MS) until a ring holds wake_bytes (the mark at which
        the programs wake the reader), unless one does already. A reader that took whatever was
        there as soon as it was there would, in a storm, read a few records a time and spend its
        CPU on the loop instead of the records (measured: all of a CPU, and 3% of a flood lost)."""
        if self._epoll is not None and not any(r.queued() >= self.wake_bytes for r in self.rings):
            try:
                self._epoll.poll(min(timeout_ms, POLL_MS) / 1000)
            except InterruptedError:
                pass

    def read(self, limit: int = 4096) -> List[bytes]:
        out: List[bytes] = []
        for r in self._order():
            if len(out) >= limit:
                break
            out += r.read(limit - len(out))
        return out

    def render(self, render_ring: Callable[[Any, int, int, int, int], Tuple[int, bytes, int]],
               limit: int = 4096) -> Tuple[bytes, int]:
        parts, n = [], 0
        for r in self._order():
            if n >= limit:
                break
            out, got = r.render(render_ring, limit - n)
            if out:
                parts.append(out)
            n += got
        return (parts[0] if len(parts) == 1 else b"".join(parts)), n  # one CPU's: not copied again

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        for r in self.rings:
            r.close()


class Batch:
    """Up to `limit` records waiting in a ring, taken once by one sink (formats/sink.py): copied
    out as raw records or Events, or rendered in place (formats/compiled.py). Whichever way, the
    ring's space is released as the records are taken. `convert` turns a record into an Event,
    `check` refuses a record this droptrace cannot read (a stale install), and `keep`, where
    set, is a filter that runs in user space (kernels without bpf_loop)."""

    def __init__(self, ring: "Optional[MmapRing | Rings]", limit: int, convert: Callable[[bytes], Any],
                 check: Callable[[bytes], None], keep: Optional[Callable[[Any], bool]] = None,
                 converter: Any = None) -> None:
        self.ring, self.limit, self.convert, self.check, self.keep = ring, limit, convert, check, keep
        self.converter = converter  # what compiled renderers read a record's layout from
        self.taken = 0  # records taken from the ring (before the user-space filter)

    @property
    def in_place(self) -> bool:
        """Whether a renderer may read the records where they are (no user-space filter)."""
        return self.ring is not None and self.keep is None and self.limit > 0

    def _read(self) -> List[bytes]:
        raw = self.ring.read(self.limit) if self.ring is not None and self.limit > 0 else []
        self.taken = len(raw)
        if raw:
            self.check(raw[0])
        return raw

    def records(self) -> List[bytes]:
        """The raw records (those the user-space filter keeps)."""
        raw = self._read()
        keep = self.keep
        if keep is None:
            return raw
        convert = self.convert
        return [r for r in raw if keep(convert(r))]

    def events(self) -> List[Any]:
        """The records as Events (those the user-space filter keeps)."""
        events = [self.convert(r) for r in self._read()]
        keep = self.keep
        return events if keep is None else [e for e in events if keep(e)]

    def render(self, render_ring: Callable[[Any, int, int, int, int], Tuple[int, bytes, int]]
               ) -> Tuple[bytes, int]:
        """The records rendered in place by a compiled renderer: (its output, records rendered)."""
        assert self.ring is not None
        out, self.taken = self.ring.render(render_ring, self.limit)
        return out, self.taken

    @property
    def short(self) -> bool:
        """Once taken: fewer records than the limit were there (the ring was emptied)."""
        return self.taken < self.limit
