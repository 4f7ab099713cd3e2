"""Kernel addresses to `func+0xoff`, from /proc/kallsyms.

Loaded once (and only when the first address needs a name); lookups are a
bisect plus a cache, since a drop storm repeats the same few locations.
"""
from __future__ import annotations

import bisect
from typing import Dict, Iterable, List, Optional, Tuple

PATH = "/proc/kallsyms"
_TEXT = frozenset(b"tTwW")


class Kallsyms:
    def __init__(self, lines: Iterable[bytes]) -> None:
        syms: List[Tuple[int, str]] = []
        for line in lines:
            parts = line.split()
            if len(parts) < 3 or parts[1][0] not in _TEXT:
                continue
            try:
                addr = int(parts[0], 16)
            except ValueError:
                continue
            name = parts[2].decode(errors="replace")
            if len(parts) > 3:
                name += " " + parts[3].decode(errors="replace")
            syms.append((addr, name))
        syms.sort()
        self._addrs = [a for a, _ in syms]
        self._names = [n for _, n in syms]
        self._cache: Dict[int, str] = {}
        # With kptr_restrict, addresses read as zero: nothing can be named.
        self.usable = bool(self._addrs) and self._addrs[-1] != 0

    @classmethod
    def load(cls, path: str = PATH) -> "Kallsyms":
        try:
            with open(path, "rb") as f:
                return cls(f.read().splitlines())
        except OSError:
            return cls([])

    def lookup(self, addr: int) -> Optional[Tuple[str, int]]:
        """(symbol, offset) of the text symbol containing addr, or None."""
        if not self.usable or addr == 0:
            return None
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        return self._names[i], addr - self._addrs[i]

    def symbolize(self, addr: int) -> str:
        """`func+0xoff` (with ` [module]` for module code), or the hex address."""
        s = self._cache.get(addr)
        if s is None:
            hit = self.lookup(addr)
            if hit is None:
                s = f"0x{addr:x}"
            else:
                name, off = hit
                mod = ""
                if " " in name:
                    name, mod = name.split(" ", 1)
                    mod = " " + mod
                s = f"{name}+0x{off:x}{mod}"
            self._cache[addr] = s
        return s
