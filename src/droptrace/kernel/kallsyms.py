"""Kernel addresses to `func+0xoff`, from /proc/kallsyms.

Loaded once and reloaded when needed: a module loaded after droptrace started
(nf_tables is often loaded by the first nft command) has no symbols in the
first snapshot, and its addresses would otherwise be named after whatever
module lies below them. /proc/modules tells which module an address is in;
a mismatch triggers a reload (at most once a second). Lookups are a bisect
plus a cache, since a drop storm repeats the same few locations.
"""
from __future__ import annotations

import bisect
import re
import sys
import threading
import time
from array import array
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

KALLSYMS, MODULES = "/proc/kallsyms", "/proc/modules"
_TEXT_LINE = re.compile(rb"^([0-9a-fA-F]+) [tTwW] ", re.M)
_NAME_MODULE = re.compile(rb"(\S+)(?:\s+\[([^\]]+)\])?")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _read_lines(path: str) -> List[bytes]:
    return _read(path).splitlines()


def parse_modules(lines: Iterable[bytes]) -> List[Tuple[int, int, str]]:
    """(start, end, name) of each loaded module with a known address."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6:
            continue
        try:
            start, size = int(parts[5], 16), int(parts[1])
        except ValueError:
            continue
        if start:
            out.append((start, start + size, parts[0].decode(errors="replace")))
    out.sort()
    return out


class Kallsyms:
    def __init__(self, lines: Union[bytes, Iterable[bytes]], modules: Iterable[bytes] = (),
                 reload: Optional[Callable[[], Tuple[bytes, Iterable[bytes]]]] = None) -> None:
        self._reload = reload
        self._last_reload = 0.0
        self._load(lines, modules)

    def _load(self, lines: Iterable[bytes], modules: Iterable[bytes]) -> None:
        # Compact and quick: the text symbols' addresses in one sorted array (made in C: the hex
        # digits joined and decoded at once), names found in the text when first asked for (a
        # few MB instead of tens of MB of Python objects, and some 50 ms instead of 120 to read
        # 120,000 symbols, which a flood's first events wait for).
        blob = lines if isinstance(lines, bytes) else b"\n".join(lines) + b"\n"
        found = _TEXT_LINE.findall(blob)
        digits = b"".join(found)
        if len(digits) == 16 * len(found):  # 64-bit addresses, as every line has them
            addrs = array("Q", bytes.fromhex(digits.decode()))
            if sys.byteorder == "little":
                addrs.byteswap()
        else:
            addrs = array("Q", (int(h, 16) for h in found))
        # in order per part (the core, then each module), not overall
        self._blob, self._addrs = blob, array("Q", sorted(addrs))
        self._modules = parse_modules(modules)
        self._mod_starts = [s for s, _, _ in self._modules]
        self._cache: Dict[int, str] = {}
        # With kptr_restrict, addresses read as zero: nothing can be named.
        self.usable = bool(addrs) and self._addrs[-1] != 0

    def _entry(self, i: int) -> Tuple[str, str]:
        """(name, module) of the i-th text symbol, from its line: found as a plain substring (the
        kernel prints 16 lowercase hex digits), a millisecond in 10 MB; a regex compiled and run
        per address took tens, and a new 32-frame stack (--stack) stalled the reader for most of
        a second while the rings filled."""
        addr, blob = self._addrs[i], self._blob
        needle = b"%016x " % addr
        pos = blob.find(needle)
        while pos != -1:
            kind = blob[pos + 17:pos + 19]
            if (pos == 0 or blob[pos - 1] == 0x0A) and kind[:1] in b"tTwW" and kind[1:] == b" ":
                end = blob.find(b"\n", pos)
                m = _NAME_MODULE.match(blob, pos + 19, len(blob) if end == -1 else end)
                if m:
                    return m.group(1).decode(errors="replace"), (m.group(2) or b"").decode(errors="replace")
            pos = blob.find(needle, pos + 1)
        line = re.compile(rb"^0*%x [tTwW] " % addr + _NAME_MODULE.pattern, re.M | re.I)  # other forms
        m = line.search(blob)
        assert m is not None, "an address read from the text is in it"
        return m.group(1).decode(errors="replace"), (m.group(2) or b"").decode(errors="replace")

    @classmethod
    def load(cls) -> "Kallsyms":
        def read() -> Tuple[bytes, List[bytes]]:
            return _read(KALLSYMS), _read_lines(MODULES)
        return cls(*read(), reload=read)

    @classmethod
    def in_background(cls) -> "Reading":
        """load() in a thread: start need not wait for it (some 0.1 s for 120,000 symbols)."""
        return Reading(cls.load)

    def module_of(self, addr: int) -> Optional[str]:
        i = bisect.bisect_right(self._mod_starts, addr) - 1
        if i >= 0 and addr < self._modules[i][1]:
            return self._modules[i][2]
        return None

    def lookup(self, addr: int) -> Optional[Tuple[str, int, str]]:
        """(symbol, offset, module) of the text symbol containing addr, or None."""
        if not self.usable or addr == 0:
            return None
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        name, mod = self._entry(i)
        return name, addr - self._addrs[i], mod

    def _consistent(self, addr: int, hit: Optional[Tuple[str, int, str]]) -> bool:
        """False when the symbol found cannot be the one containing addr."""
        if not self._modules:
            return True
        if hit is None:
            return False
        mod = self.module_of(addr)
        if mod is not None:
            return hit[2] == mod
        # Outside every known module: core text, or code that lives in module space
        # without being a module (BPF programs, trampolines: [bpf], [__builtin__*]).
        # Another module's symbol here means a module loaded since the last read.
        return not hit[2] or hit[2] == "bpf" or hit[2].startswith("__builtin")

    def symbolize(self, addr: int) -> str:
        """`func+0xoff` (with ` [module]` for module code), or the hex address."""
        s = self._cache.get(addr)
        if s is not None:
            return s
        hit = self.lookup(addr)
        if not self._consistent(addr, hit) and self._reload is not None \
                and time.monotonic() - self._last_reload > 1.0:
            self._last_reload = time.monotonic()
            self._load(*self._reload())
            hit = self.lookup(addr)
        if hit is None or not self._consistent(addr, hit):
            mod = self.module_of(addr)
            s = f"0x{addr:x}" + (f" [{mod}]" if mod else "")
        else:
            name, off, mod = hit
            s = f"{name}+0x{off:x}" + (f" [{mod}]" if mod else "")
        self._cache[addr] = s
        return s


class Reading:
    """Kallsyms being read in a thread (Kallsyms.in_background): the first name asked for waits
    until it is read; an error reading it is raised there."""

    def __init__(self, load: Callable[[], Kallsyms]) -> None:
        self._done: Optional[Kallsyms] = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(load,), name="kallsyms", daemon=True)
        self._thread.start()

    def _run(self, load: Callable[[], Kallsyms]) -> None:
        try:
            self._done = load()
        except BaseException as e:  # handed to whoever asks for a name
            self._error = e

    def get(self) -> Kallsyms:
        if self._done is None:
            self._thread.join()
            if self._error is not None:
                raise self._error
        assert self._done is not None
        return self._done

    def symbolize(self, addr: int) -> str:
        return self.get().symbolize(addr)
