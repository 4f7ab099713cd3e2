#!/usr/bin/env python3
"""Records per second each output path writes, in process, without BPF: Python vs compiled.

A synthetic ring buffer (anonymous memory laid out like the kernel's, records
from the BPF object's BTF) holds a UDP flood to a closed port: a few flows,
each packet with its own time, IPv4 ID and task. Each path reads it the way
the live commands do (Python: MmapRing.read and the writers; compiled:
FastRenderer.write_batch), in batches of RECORD_BATCH, writing to /dev/null;
the ring is replayed by resetting the consumer position. One core, no
kernel involved: this is the user-space ceiling, not an end-to-end figure.

Usage: .venv/bin/python bench/render.py [SECONDS per measurement, default 1]
"""
import os
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from droptrace.convert import Converter  # noqa: E402
from droptrace.formats import compiled as render  # noqa: E402
from droptrace.formats.jsonl import RawJsonWriter  # noqa: E402
from droptrace.formats.out import Output  # noqa: E402
from droptrace.formats.recording import Recorder  # noqa: E402
from droptrace.formats.text import TextWriter  # noqa: E402
from droptrace.kernel.contract import contract  # noqa: E402
from droptrace.kernel.ringbuf import Batch  # noqa: E402
from droptrace.kernel.tracer import RECORD_BATCH  # noqa: E402
from droptrace.options import DEFAULT_SNAPLEN  # noqa: E402
from unit.test_decode import eth, ipv4, udp  # noqa: E402
from unit.test_render import Ring  # noqa: E402

N = 16384
EVENT = contract().struct("dt_event")
SYMS = {0xFFFFFFFF81A00000 + i: f"fn{i}+0x{i:x}" for i in range(8)}


def converter(stack: bool) -> Converter:
    return Converter(lambda v: {2: "NO_SOCKET"}.get(v, str(v)), lambda a: SYMS.get(a, f"0x{a:x}"),
                     1_700_000_000 * 10**9, stack)


def storm(stack: bool, spoofed: bool = False) -> Ring:
    """A flood of a few flows, or with spoofed: a new source address and port per packet (no
    template is ever reused: the compiled path's worst case)."""
    s = contract().struct("dt_event_stack")
    ring = Ring(size=1 << 24)
    for i in range(N):
        src = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" if spoofed else "10.0.0.1"
        pkt = ipv4(17, udp(40000 + (i if spoofed else i % 4) % 20000, 9, b"x" * 18), src=src)
        pkt = pkt[:4] + (i & 0xFFFF).to_bytes(2, "big") + pkt[6:]
        data = eth(0x0800, pkt)
        raw = EVENT.pack(dict(ts_ns=10**12 + i * 2000, location=0xFFFFFFFF81A00003, reason=2,
                              pid=1000 + i % 2, tid=1000 + i % 2, cpu=0, len=46, mark=0, ifindex=2,
                              netns=4026532246,
                              protocol=0x0800, mac_off=0, net_off=14, cap_len=len(data), dev_type=1,
                              stack_len=64 if stack else 0, data_off=14, flags=1,
                              comm=b"flood" if i % 2 else b"ksoftirqd/0", ifname=b"veth0", data=data))
        if stack:
            frames = b"".join(struct.pack("<Q", a) for a in sorted(SYMS))
            raw = raw.ljust(s.offset("stack"), b"\0") + frames.ljust(s.field("stack").size, b"\0")
        ring.push(raw)
    return ring


def sink(fmt: str, conv: Converter, stack: bool):
    """(the writer, its compiled renderer) for one format, writing to /dev/null."""
    if fmt in ("json", "text"):
        out = Output.open("/dev/null")
        if fmt == "json":
            w = RawJsonWriter(out)
        else:
            w = TextWriter(out, stack, 20)
            w.write([])  # the header: the compiled path starts once it is out
    else:
        w = Recorder("/dev/null", fmt, stack, DEFAULT_SNAPLEN)
        w.open()
    return w, render.for_sink(w, conv)


def rate(ring: Ring, step, seconds: float) -> float:
    ring_mm = ring.mmap_ring()
    done, t0 = 0, time.perf_counter()
    while True:
        struct.pack_into("<Q", ring.cons, 0, 0)  # replay the same records
        while ring.consumer < ring.prod:
            done += step(ring_mm)
        if time.perf_counter() - t0 >= seconds:
            break
    return done / (time.perf_counter() - t0)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    if render.compiled() is None:
        sys.exit("droptrace._render is not built (or DROPTRACE_PURE_PYTHON is set)")
    print(f"{'format':<16} {'python rec/s':>13} {'compiled rec/s':>15} {'x':>6}")
    for stack, spoofed in ((False, False), (True, False), (False, True)):
        ring = storm(stack, spoofed)
        for fmt in ("json", "text", "pcapng", "jsonl"):
            conv = converter(stack)
            py, fast = sink(fmt, conv, stack)

            def python(mm, py=py, conv=conv):
                return py.write_batch(Batch(mm, RECORD_BATCH, conv.convert, conv.check, None, conv))

            def compiled(mm, fast=fast, conv=conv):
                return fast.write_batch(Batch(mm, RECORD_BATCH, conv.convert, conv.check, None, conv))

            a = rate(ring, python, seconds)
            b = rate(ring, compiled, seconds)
            name = fmt + (" --stack" if stack else "") + (" spoofed" if spoofed else "")
            print(f"{name:<16} {a:>13,.0f} {b:>15,.0f} {b / a:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
