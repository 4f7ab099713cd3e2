"""The small ctypes binding to libbpf (>= 1.0) that droptrace needs.

This is the only module that touches ctypes for libbpf: it opens a BPF
object file, lets the caller set .rodata and program autoload before
loading, attaches programs, and reads maps (the ring buffer is read through
its mmap, in ringbuf.py). libbpf's own log messages are
captured (not printed) so errors can be reported in one clear line.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from typing import Iterator, List, Optional, Tuple

from ..errors import DroptraceError

_LIBBPF_NAMES = ("libbpf.so.1", "libbpf.so")

_print_fn_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

_lib: Optional[ctypes.CDLL] = None
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_log: List[str] = []


def _capture(level: int, fmt: bytes, args: int) -> int:
    buf = ctypes.create_string_buffer(2048)
    _libc.vsnprintf(buf, ctypes.c_size_t(len(buf)), fmt, ctypes.c_void_p(args))
    _log.append(buf.value.decode(errors="replace"))
    del _log[:-400]
    return 0


_capture_cb = _print_fn_t(_capture)


def log_tail(lines: int = 30) -> str:
    """The last lines libbpf logged (verifier output, relocation errors)."""
    return "".join(_log[-lines:])


def clear_log() -> None:
    _log.clear()


def _sig(name: str, restype, *argtypes) -> None:
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


def lib() -> ctypes.CDLL:
    """Load libbpf once, declaring the signatures used here."""
    global _lib
    if _lib is not None:
        return _lib
    for name in _LIBBPF_NAMES:
        try:
            _lib = ctypes.CDLL(name, use_errno=True)
            break
        except OSError:
            continue
    else:
        raise DroptraceError("libbpf not found (libbpf.so.1); install it: apt-get install libbpf1")
    vp, cp, i, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t
    _sig("libbpf_set_print", vp, _print_fn_t)
    _sig("libbpf_num_possible_cpus", i)
    _sig("libbpf_major_version", ctypes.c_uint32)
    _sig("libbpf_minor_version", ctypes.c_uint32)
    _sig("bpf_object__open_file", vp, cp, vp)
    _sig("bpf_object__load", i, vp)
    _sig("bpf_object__close", None, vp)
    _sig("bpf_object__find_program_by_name", vp, vp, cp)
    _sig("bpf_object__find_map_by_name", vp, vp, cp)
    _sig("bpf_object__next_map", vp, vp, vp)
    _sig("bpf_program__set_autoload", i, vp, ctypes.c_bool)
    _sig("bpf_program__attach", vp, vp)
    _sig("bpf_link__destroy", i, vp)
    _sig("bpf_program__attach_kprobe_multi_opts", vp, vp, cp, vp)
    _sig("bpf_program__attach_kprobe", vp, vp, ctypes.c_bool, cp)
    _sig("bpf_program__attach_trace", vp, vp)
    _sig("bpf_program__set_attach_target", i, vp, i, cp)
    _sig("bpf_map__reuse_fd", i, vp, i)
    _sig("bpf_object__next_program", vp, vp, vp)
    _sig("bpf_program__name", cp, vp)
    _sig("bpf_map__name", cp, vp)
    _sig("bpf_map__fd", i, vp)
    _sig("bpf_map__value_size", ctypes.c_uint32, vp)
    _sig("bpf_map__set_initial_value", i, vp, vp, sz)
    _sig("bpf_map__initial_value", vp, vp, ctypes.POINTER(sz))
    _sig("bpf_map__set_max_entries", i, vp, ctypes.c_uint32)
    _sig("bpf_map__set_key_size", i, vp, ctypes.c_uint32)
    _sig("bpf_map_update_elem", i, i, vp, vp, ctypes.c_uint64)
    _sig("bpf_map_lookup_elem", i, i, vp, vp)
    _sig("bpf_map_get_next_key", i, i, vp, vp)
    _sig("bpf_map_lookup_batch", i, i, vp, vp, vp, vp, ctypes.POINTER(ctypes.c_uint32), vp)
    _sig("bpf_map_lookup_and_delete_elem", i, i, vp, vp)
    _sig("bpf_map_delete_elem", i, i, vp)
    _sig("bpf_map_create", i, i, cp, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, vp)
    u32 = ctypes.c_uint32
    _sig("bpf_object__open_mem", vp, vp, sz, vp)
    _sig("bpf_object__btf", vp, vp)
    _sig("btf__new", vp, vp, u32)
    _sig("btf__parse", vp, cp, vp)
    _sig("btf__parse_split", vp, cp, vp)
    _sig("btf__free", None, vp)
    _sig("btf__type_cnt", u32, vp)
    _sig("btf__type_by_id", vp, vp, u32)
    _sig("btf__name_by_offset", cp, vp, u32)
    _sig("btf__find_by_name_kind", ctypes.c_int32, vp, cp, u32)
    _sig("btf__base_btf", vp, vp)
    _lib.libbpf_set_print(_capture_cb)
    return _lib


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise BpfError(what, -rc)
    return rc


def _ptr(p: Optional[int], what: str) -> int:
    if not p:
        raise BpfError(what, ctypes.get_errno() or errno.EINVAL)
    return p


class BpfError(DroptraceError):
    """A libbpf call failed; carries errno and libbpf's last log lines."""

    def __init__(self, what: str, err: int) -> None:
        self.errno = err
        self.log = log_tail()
        super().__init__(f"{what}: {os.strerror(err)}")


def version() -> str:
    return f"{lib().libbpf_major_version()}.{lib().libbpf_minor_version()}"


def num_possible_cpus() -> int:
    return _check(lib().libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


BPF_MAP_TYPE_RINGBUF = 27  # uapi linux/bpf.h


def create_ringbuf(size: int, name: str = "dt_ring") -> int:
    """A new BPF ring buffer of size bytes (a power of two, whole pages); its fd, the caller's to close."""
    fd = lib().bpf_map_create(BPF_MAP_TYPE_RINGBUF, name.encode(), 0, 0, size, None)
    return _check(fd, f"creating a {size >> 10} KiB ring buffer")


class Map:
    def __init__(self, ptr: int) -> None:
        self._ptr = ptr

    @property
    def name(self) -> str:
        return lib().bpf_map__name(self._ptr).decode()

    @property
    def fd(self) -> int:
        return lib().bpf_map__fd(self._ptr)

    @property
    def value_size(self) -> int:
        return lib().bpf_map__value_size(self._ptr)

    def initial_value(self) -> bytes:
        """The map's data as the object holds it before load (.rodata/.data images)."""
        size = ctypes.c_size_t(0)
        ptr = lib().bpf_map__initial_value(self._ptr, ctypes.byref(size))
        return ctypes.string_at(ptr, size.value) if ptr else b""

    def set_initial_value(self, data: bytes) -> None:
        buf = ctypes.create_string_buffer(data, len(data))
        _check(lib().bpf_map__set_initial_value(self._ptr, buf, len(data)),
               f"setting initial value of map {self.name}")

    def reuse_fd(self, fd: int) -> None:
        """Use this existing map (another object's) instead of creating one at load."""
        _check(lib().bpf_map__reuse_fd(self._ptr, fd), f"reusing map {self.name}")

    def set_max_entries(self, n: int) -> None:
        _check(lib().bpf_map__set_max_entries(self._ptr, n), f"resizing map {self.name}")

    def set_key_size(self, n: int) -> None:
        """Before load: hash only the first n bytes of the key the programs pass."""
        _check(lib().bpf_map__set_key_size(self._ptr, n), f"setting the key size of map {self.name}")

    def update(self, key: bytes, value: bytes) -> None:
        k = ctypes.create_string_buffer(key, len(key))
        v = ctypes.create_string_buffer(value, len(value))
        _check(lib().bpf_map_update_elem(self.fd, k, v, 0), f"updating map {self.name}")

    def lookup(self, key: bytes, value_len: int) -> Optional[bytes]:
        k = ctypes.create_string_buffer(key, len(key))
        v = ctypes.create_string_buffer(value_len)
        rc = lib().bpf_map_lookup_elem(self.fd, k, v)
        if rc < 0:
            err = ctypes.get_errno()
            if err == errno.ENOENT:
                return None
            raise BpfError(f"reading map {self.name}", err)
        return v.raw


    def items(self, key_size: int, value_size: int) -> Iterator[Tuple[bytes, bytes]]:
        """Every (key, value) of a hash map, up to a chunk of entries per syscall (BPF_MAP_LOOKUP_BATCH,
        5.6+), else one key at a time. Entries added meanwhile may be missed, as with any walk."""
        try:
            yield from self._batched(key_size, value_size)
        except _NoBatch:
            yield from self._one_by_one(key_size, value_size)

    def _batched(self, key_size: int, value_size: int, chunk: int = 1024) -> Iterator[Tuple[bytes, bytes]]:
        fd, lb = self.fd, lib()
        token_in, token_out = ctypes.create_string_buffer(8), ctypes.create_string_buffer(8)  # a bucket index
        first = True
        while True:
            keys = ctypes.create_string_buffer(key_size * chunk)
            vals = ctypes.create_string_buffer(value_size * chunk)
            count = ctypes.c_uint32(chunk)
            rc = lb.bpf_map_lookup_batch(fd, None if first else token_in, token_out, keys, vals,
                                         ctypes.byref(count), None)
            err = -rc if rc < 0 else 0
            if err == errno.ENOSPC and count.value == 0:  # one bucket holds more than a chunk
                chunk *= 4
                continue
            if err and err != errno.ENOENT:
                if first and err in (errno.EINVAL, errno.ENOTSUP, 524):  # 524: ENOTSUPP, old kernels
                    raise _NoBatch()
                raise BpfError(f"reading map {self.name}", err)
            kraw, vraw = keys.raw, vals.raw
            for i in range(count.value):
                yield kraw[i * key_size:(i + 1) * key_size], vraw[i * value_size:(i + 1) * value_size]
            if err == errno.ENOENT:  # that was the last bucket
                return
            first = False
            ctypes.memmove(token_in, token_out, 8)

    def _one_by_one(self, key_size: int, value_size: int) -> Iterator[Tuple[bytes, bytes]]:
        fd, lb = self.fd, lib()
        key = ctypes.create_string_buffer(key_size)
        nxt = ctypes.create_string_buffer(key_size)
        val = ctypes.create_string_buffer(value_size)
        prev = None
        while lb.bpf_map_get_next_key(fd, prev, nxt) == 0:
            ctypes.memmove(key, nxt, key_size)
            if lb.bpf_map_lookup_elem(fd, key, val) == 0:
                yield key.raw, val.raw
            prev = key

    def pop(self, key: bytes, value_size: int) -> Optional[bytes]:
        """Delete one entry and return its last value (None if absent). Atomic against other map
        operations (5.14+; before, a lookup then a delete)."""
        k = ctypes.create_string_buffer(key, len(key))
        v = ctypes.create_string_buffer(value_size)
        lb = lib()
        rc = lb.bpf_map_lookup_and_delete_elem(self.fd, k, v)
        if rc < 0 and -rc in (errno.EINVAL, errno.ENOTSUP, 524):
            rc = lb.bpf_map_lookup_elem(self.fd, k, v)
            if rc == 0:
                rc = lb.bpf_map_delete_elem(self.fd, k)
        if rc < 0:
            if -rc == errno.ENOENT:
                return None
            raise BpfError(f"deleting from map {self.name}", -rc)
        return v.raw


class _NoBatch(Exception):
    """The kernel has no BPF_MAP_LOOKUP_BATCH."""


class _KprobeMultiOpts(ctypes.Structure):
    """struct bpf_kprobe_multi_opts (libbpf 1.0+; later versions append fields, told by sz)."""

    _fields_ = [("sz", ctypes.c_size_t), ("syms", ctypes.POINTER(ctypes.c_char_p)),
                ("addrs", ctypes.c_void_p), ("cookies", ctypes.c_void_p), ("cnt", ctypes.c_size_t),
                ("retprobe", ctypes.c_bool)]


class Program:
    def __init__(self, ptr: int, name: str) -> None:
        self._ptr = ptr
        self.name = name

    def set_autoload(self, on: bool) -> None:
        _check(lib().bpf_program__set_autoload(self._ptr, on), f"autoload {self.name}")

    def attach(self) -> "Link":
        return Link(_ptr(lib().bpf_program__attach(self._ptr), f"attaching {self.name}"))

    def attach_kprobe_multi(self, functions: List[str], retprobe: bool = False) -> "Link":
        """One kprobe-multi link (5.18+, CONFIG_FPROBE) on all these functions' entries (or
        returns)."""
        syms = (ctypes.c_char_p * len(functions))(*(f.encode() for f in functions))
        opts = _KprobeMultiOpts(sz=ctypes.sizeof(_KprobeMultiOpts), syms=syms, cnt=len(functions),
                                retprobe=retprobe)
        p = lib().bpf_program__attach_kprobe_multi_opts(self._ptr, None, ctypes.byref(opts))
        return Link(_ptr(p, f"attaching {self.name} as kprobe-multi to {len(functions)} functions"))

    def attach_kprobe(self, function: str, retprobe: bool = False) -> "Link":
        """A kprobe on this function's entry (or a kretprobe on its return)."""
        return Link(_ptr(lib().bpf_program__attach_kprobe(self._ptr, retprobe, function.encode()),
                         f"attaching {self.name} as a kprobe on {function}"))

    def set_attach_target(self, function: str) -> None:
        """The kernel function an fentry program is for (before loading)."""
        _check(lib().bpf_program__set_attach_target(self._ptr, 0, function.encode()),
               f"{self.name}: fentry target {function}")

    def attach_trace(self) -> "Link":
        """An fentry/fexit program on the function it was loaded for."""
        return Link(_ptr(lib().bpf_program__attach_trace(self._ptr), f"attaching {self.name}"))


class Link:
    def __init__(self, ptr: int) -> None:
        self._ptr: Optional[int] = ptr

    def destroy(self) -> None:
        if self._ptr:
            lib().bpf_link__destroy(self._ptr)
            self._ptr = None


class Btf:
    """A BTF that libbpf parsed: its types by id, as the bytes of their records (kernel/btf.py reads
    them), its strings, and look-ups by name. `keep` holds what must outlive it (its base BTF, or
    the Object that owns it); `owned`: freed by us, not by that Object."""

    def __init__(self, ptr: int, owned: bool, keep: Tuple[object, ...] = ()) -> None:
        self._ptr: Optional[int] = ptr
        self._owned, self._keep = owned, keep
        self.count = lib().btf__type_cnt(ptr)  # ids 1 .. count - 1 (a split BTF's start after its base's)
        base = lib().btf__base_btf(ptr)
        self.first = lib().btf__type_cnt(base) if base else 1

    @classmethod
    def from_bytes(cls, data: bytes) -> "Btf":
        buf = ctypes.create_string_buffer(data, len(data))
        return cls(_ptr(lib().btf__new(buf, len(data)), "parsing BTF"), True)

    @classmethod
    def from_file(cls, path: str, base: Optional["Btf"] = None) -> "Btf":
        """Raw BTF (/sys/kernel/btf/*) or an ELF file's .BTF section."""
        ptr = (lib().btf__parse_split(path.encode(), base._ptr) if base is not None
               else lib().btf__parse(path.encode(), None))
        return cls(_ptr(ptr, f"reading BTF from {path}"), True, (base,) if base is not None else ())

    def record(self, type_id: int, size: int) -> bytes:
        """`size` bytes of type type_id's record (struct btf_type and what follows it), host order."""
        p = lib().btf__type_by_id(self._ptr, type_id)
        return ctypes.string_at(_ptr(p, f"BTF type {type_id}"), size)

    def name(self, offset: int) -> str:
        raw = lib().btf__name_by_offset(self._ptr, offset)
        return raw.decode(errors="replace") if raw else ""

    def find(self, name: str, kind: int) -> int:
        """The id of the first type of this kind and name, or 0."""
        found = lib().btf__find_by_name_kind(self._ptr, name.encode(), kind)
        return found if found > 0 else 0

    def close(self) -> None:
        if self._ptr and self._owned:
            lib().btf__free(self._ptr)
        self._ptr = None

    def __del__(self) -> None:
        if _lib is not None:
            self.close()


class Object:
    """A BPF object file: open, configure, load, then attach and read."""

    def __init__(self, path: str, data: Optional[bytes] = None) -> None:
        """The object at path, or (data given) the object in those bytes, path naming it."""
        clear_log()
        if data is None:
            ptr = lib().bpf_object__open_file(path.encode(), None)
        else:
            self._data = ctypes.create_string_buffer(data, len(data))  # libbpf reads it until close
            ptr = lib().bpf_object__open_mem(self._data, len(data), None)
        self._ptr: Optional[int] = _ptr(ptr, f"opening BPF object {path}")

    def btf(self) -> Btf:
        """The object's own BTF, its sections' variable offsets set from the symbol table as libbpf
        does on opening; it lives as long as this Object (which it keeps open)."""
        return Btf(_ptr(lib().bpf_object__btf(self._ptr), "the BPF object has no BTF"), False, (self,))

    def program(self, name: str) -> Program:
        p = lib().bpf_object__find_program_by_name(self._ptr, name.encode())
        return Program(_ptr(p, f"no program {name}"), name)

    def map(self, name: str) -> Map:
        return Map(_ptr(lib().bpf_object__find_map_by_name(self._ptr, name.encode()),
                        f"no map {name}"))

    def programs(self) -> Iterator[Program]:
        p = lib().bpf_object__next_program(self._ptr, None)
        while p:
            yield Program(p, lib().bpf_program__name(p).decode())
            p = lib().bpf_object__next_program(self._ptr, p)

    def maps(self) -> Iterator[Map]:
        m = lib().bpf_object__next_map(self._ptr, None)
        while m:
            yield Map(m)
            m = lib().bpf_object__next_map(self._ptr, m)

    def map_by_suffix(self, suffix: str) -> Map:
        """A map whose name ends with suffix: libbpf names .rodata after the object (`droptrac.rodata`)."""
        m = next((m for m in self.maps() if m.name.endswith(suffix)), None)
        if m is None:
            raise BpfError(f"no map {suffix}", errno.ENOENT)
        return m

    def load(self) -> None:
        _check(lib().bpf_object__load(self._ptr), "loading BPF programs")

    def close(self) -> None:
        if self._ptr:
            lib().bpf_object__close(self._ptr)
            self._ptr = None
