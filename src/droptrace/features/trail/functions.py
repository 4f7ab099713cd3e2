"""trail's hooks on kernel functions (--functions): each function that takes the skb gets the
program for the argument the skb is (trail.bpf.c's dt_fn_<method>_<n>), by the best method the
kernel accepts.

The methods, best first: kprobe-multi (5.18+, CONFIG_FPROBE: one link per argument position for
all its functions, attached in about a second), fentry (one program loaded per function, in a
copy of the object that shares the first one's maps), one kprobe per function. Which works is
learnt by trying, as the kernel is the only reliable judge; a progress bar shows on a terminal
while one hook per function is attached.
"""
from __future__ import annotations

import platform
import sys
from typing import Callable, Dict, List, Optional

from ...kernel import libbpf

METHODS = ("kprobe-multi", "fentry", "kprobe")
_PROGRAM = {"kprobe-multi": "dt_fn_multi_{}", "fentry": "dt_fn_fentry_{}", "kprobe": "dt_fn_kprobe_{}"}
ARCHES = ("x86_64",)  # where trail.bpf.c builds the function programs (a kprobe's registers)
# The functions that make a new skb from one (their first argument): a clone shares the data, a
# copy has its own; GSO segments are new skbs cut from the original (returned as a list, by ->next).
CLONES = ("skb_clone", "skb_copy", "__pskb_copy_fclone", "skb_copy_expand", "skb_segment")
_CLONE = {"kprobe-multi": "dt_fn_clone_multi", "kprobe": "dt_fn_clone_kprobe"}
_RETURN = {"kprobe-multi": "dt_fn_ret_multi", "kprobe": "dt_fn_ret_kprobe"}


def supported_arch() -> bool:
    return platform.machine() in ARCHES


def program_names(positions: int) -> List[str]:
    """Every function program of the object (each method, each argument position, the clone and
    return programs)."""
    return [p.format(n) for p in _PROGRAM.values() for n in range(positions)] + \
        list(_CLONE.values()) + list(_RETURN.values())


def progress_bar(what: str) -> Optional[Callable[[int, int], None]]:
    """`what: done/total` redrawn on stderr, where stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r{what} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
        sys.stderr.flush()
    return show


def _around(method: str) -> str:
    """How the clone functions and the returns are hooked with this method: fentry's by kprobes
    and kretprobes (an fexit program reads its function's return at a slot that differs with the
    function's arity)."""
    return "kprobe" if method == "fentry" else method


class FunctionHooks:
    """The functions to hook (name -> the skb's argument index), the clone and copy functions
    followed into their new skb, whether returns are wanted, and once attached their links (and
    fentry's objects)."""

    def __init__(self, functions: Dict[str, int], clones: List[str], returns: bool) -> None:
        self.functions = {n: i for n, i in functions.items() if n not in clones}
        self.clones = clones
        self.returns = returns
        self.method: Optional[str] = None
        self._objects: List[libbpf.Object] = []  # fentry: one per function

    @property
    def count(self) -> int:
        return len(self.functions) + len(self.clones)

    def by_position(self) -> Dict[int, List[str]]:
        out: Dict[int, List[str]] = {}
        for name, n in self.functions.items():
            out.setdefault(n, []).append(name)
        return out

    def returning(self) -> List[str]:
        """The functions whose return is hooked."""
        return (list(self.functions) if self.returns else []) + self.clones

    def autoload(self, obj: libbpf.Object, method: str, positions: int) -> None:
        """Switch on, in the main object, the programs this method attaches from it (fentry's are
        loaded in copies, one per function)."""
        used = set(self.by_position()) if method != "fentry" else set()
        for n in range(positions):
            for m, fmt in _PROGRAM.items():
                obj.program(fmt.format(n)).set_autoload(m == method and n in used)
        by = _around(method)
        for table, on in ((_CLONE, bool(self.clones)), (_RETURN, bool(self.returning()))):
            for m, name in table.items():
                obj.program(name).set_autoload(on and m == by)

    def attach(self, obj: libbpf.Object, path: str, method: str) -> List[libbpf.Link]:
        """Attach every function by this method (raises libbpf.BpfError at the first refusal)."""
        links: List[libbpf.Link] = []
        try:
            if method == "kprobe-multi":
                for n, names in sorted(self.by_position().items()):
                    links.append(obj.program(_PROGRAM[method].format(n)).attach_kprobe_multi(names))
                if self.clones:
                    links.append(obj.program(_CLONE[method]).attach_kprobe_multi(self.clones))
                if self.returning():
                    links.append(obj.program(_RETURN[method]).attach_kprobe_multi(self.returning(), True))
            else:
                show = progress_bar(f"attaching {len(self.functions)} {method} hooks")
                for i, (name, n) in enumerate(self.functions.items()):
                    if method == "kprobe":
                        links.append(obj.program(_PROGRAM[method].format(n)).attach_kprobe(name))
                    else:
                        links.append(self._fentry(obj, path, name, n))
                    if show:
                        show(i + 1, len(self.functions))
                by = _around(method)
                links += [obj.program(_CLONE[by]).attach_kprobe(n) for n in self.clones]
                links += [obj.program(_RETURN[by]).attach_kprobe(n, True) for n in self.returning()]
        except BaseException:
            for link in links:
                link.destroy()
            self.close()
            raise
        self.method = method
        return links

    def _fentry(self, main: libbpf.Object, path: str, name: str, n: int) -> libbpf.Link:
        """fentry on one function: a copy of the object with only that program, sharing the main
        object's maps (its configuration, the trails, the ring buffer)."""
        copy = libbpf.Object(path)
        self._objects.append(copy)
        wanted = _PROGRAM["fentry"].format(n)
        for prog in copy.programs():
            prog.set_autoload(prog.name == wanted)
        copy.program(wanted).set_attach_target(name)
        shared = {m.name: m.fd for m in main.maps()}
        for m in copy.maps():
            m.reuse_fd(shared[m.name])
        copy.load()
        return copy.program(wanted).attach_trace()

    def close(self) -> None:
        while self._objects:
            self._objects.pop().close()
