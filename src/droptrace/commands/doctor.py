"""`droptrace doctor`: what this host supports, and what droptrace will use.

Every check is the real thing (hooks are loaded and attached, then removed),
and every fallback is printed with its reason.
"""
from __future__ import annotations

import os
import platform
from typing import List, Sequence, Tuple

from ..errors import DroptraceError
from ..event import dumps
from ..features.drops.tracer import NOBTF_LIMITS, DropTracer
from ..formats.out import Output
from ..kernel import btf as btfmod
from ..kernel import features, libbpf, reasons, tracefs
from ..kernel.privileges import check_privileges
from ..kernel.tracer import BTF_PATH
from ..options import HOOKS, Options
from .common import Parser

Check = Tuple[str, bool, str]


def checks() -> Tuple[List[Check], List[str]]:
    """(name, ok, detail) for each check, and the hooks that work."""
    out: List[Check] = [("kernel", True, f"{platform.release()} ({platform.machine()})")]

    def add(name: str, fn) -> bool:
        try:
            out.append((name, True, fn()))
            return True
        except (DroptraceError, OSError, btfmod.BTFError) as e:
            out.append((name, False, str(e)))
            return False

    root = add("privileges", lambda: (check_privileges(), "root or CAP_BPF+CAP_PERFMON")[1])
    add("libbpf", lambda: f"libbpf {libbpf.version()}")

    def kernel_btf() -> str:
        if not os.path.exists(BTF_PATH):
            raise DroptraceError(f"{BTF_PATH} missing: {NOBTF_LIMITS}")
        n = len(features.probe(BTF_PATH).btf.enum("skb_drop_reason") or {})
        return f"{BTF_PATH} (enum skb_drop_reason: {n} members)" if n else \
            f"{BTF_PATH} (no enum skb_drop_reason: kernel < 5.17, locations only)"
    add("kernel BTF", kernel_btf)

    def tracefs_fields() -> str:
        fields = [n for n in tracefs.kfree_skb_format().fields if not n.startswith("common_")]
        return f"{tracefs.require()}; kfree_skb fields: {', '.join(fields)}"
    add("tracefs", tracefs_fields)

    def reason_source() -> str:
        r = reasons.load(BTF_PATH)
        no_socket = next((v for v, n in r.names.items() if n == "NO_SOCKET"), None)
        return f"named from {r.source} ({len(r.all_names())} reasons; NO_SOCKET = {no_socket})"
    add("drop reasons", reason_source)

    def explanations() -> str:
        from ..explain import unwritten

        try:
            names = reasons.load(BTF_PATH).all_names()
        except DroptraceError:
            return "this kernel has no drop reasons; explain lists the newer kernels' reasons"
        missing = unwritten(names)
        if not missing:
            return f"an entry for each of this kernel's {len(names)} reasons"
        return (f"{len(names) - len(missing)} of {len(names)} reasons have an entry; newer than the "
                f"catalogue: {', '.join(missing)} (explain shows what their names and neighbours say)")
    add("explanations", explanations)

    def expressions() -> str:
        if not os.path.exists(BTF_PATH):
            raise DroptraceError("not available: they need kernel BTF to read the packet")
        if features.probe(BTF_PATH).bpf_loop:
            return "evaluated in the kernel (bpf_loop); also with top and the exporter"
        return ("evaluated in user space: no bpf_loop before 5.17, so every drop the other filters "
                "pass crosses the ring buffer; not with top or the exporter (they count in the kernel)")
    add("filter expressions", expressions)

    def trail_steps() -> str:
        from ..features.trail.tracer import TrailTracer, hooks
        from ..kernel.contract import contract

        if not os.path.exists(BTF_PATH):
            raise DroptraceError("not available: it needs kernel BTF")
        names = list(hooks(contract(TrailTracer.OBJECTS[0]).const).values())
        found = features.probe(BTF_PATH).tracepoint_args(names, "sk_buff")
        missing = [n for n in names if found[n] is None]
        return f"{len(names) - len(missing)} of {len(names)} steps have a tracepoint with the skb" + (
            f" (not: {', '.join(missing)})" if missing else "")
    add("trail", trail_steps)

    def trail_functions() -> str:
        if not root:
            raise DroptraceError("not checked: needs root")
        return function_hooks()
    add("trail functions", trail_functions)

    from ..formats.compiled import status

    out.append(("renderer", True, status()))  # either way the output is the same; only its speed differs

    working: List[str] = []
    for hook in HOOKS:
        if not root:
            out.append((f"hook {hook}", False, "not checked: needs root"))
            continue
        t = DropTracer(Options(hook=hook))
        try:
            t.start()
            working.append(hook)
            out.append((f"hook {hook}", True, "loads and attaches"))
        except DroptraceError as e:
            out.append((f"hook {hook}", False, str(e)))
        finally:
            t.close()
    out.append(("kprobes, fentry", True, "not used but by trail --functions (trail functions, above): the "
                "skb:kfree_skb tracepoint is the stable hook"))
    return out, working


def function_hooks() -> str:
    """What `trail --functions` can use here: the kernel functions that take an skb, and the first
    hook method that attaches (tried for real on one of them, as trail would)."""
    from ..features.trail.tracer import TrailTracer
    from ..kernel import skb_functions
    from ..kernel.contract import contract

    kernel = features.probe(BTF_PATH)
    if kernel.btf is None:
        raise DroptraceError("not available: it needs kernel BTF")
    positions = contract(TrailTracer.OBJECTS[0]).const["DT_FN_ARGS"]
    found = skb_functions.select(skb_functions.skb_functions(kernel.btf, positions),
                                 skb_functions.hookable(tracefs.find()), [])
    if not found:
        raise DroptraceError("no kernel function that takes an skb can be hooked here")
    t = TrailTracer(Options(), functions=[next(iter(found))])
    try:
        t.start()
        return f"--functions: {len(found)} kernel functions take an skb; hooked via {t.functions.method}"
    finally:
        t.close()


def main(argv: Sequence[str] = ()) -> int:
    p = Parser(prog="droptrace doctor", description="What this host supports, and which hook and "
               "features droptrace will use. Every check is the real thing: hooks are loaded, "
               "attached and removed.")
    p.add_argument("--json", action="store_true", help='one object: {"checks": [{"name", "ok", '
                   '"detail"}], "hook", "features"}')
    args = p.parse_args(list(argv))
    results, working = checks()
    btf = os.path.exists(BTF_PATH)
    features = ["drop reasons" if any(n == "drop reasons" and ok for n, ok, _ in results)
                else "locations only (no drop reasons)"]
    exprs = next((d for n, ok, d in results if n == "filter expressions" and ok), "")
    where = " (expressions in user space)" if "user space" in exprs else ""
    features += ["packet decode", "interface and namespace", "all filters" + where] if btf else \
        ["reason/pid filters only"]
    features.append("kernel stacks")
    out = Output.stdout()
    if args.json:
        out.write(dumps({"checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in results],
                         "hook": working[0] if working else None,
                         "features": features if working else []}) + b"\n")
        return 0 if working else 1
    lines = ["droptrace doctor: what this host supports"]
    width = max(len(name) for name, _, _ in results)
    lines += [f"  {name:<{width}} {'ok ' if ok else 'NO '} {detail}" for name, ok, detail in results]
    if not working:
        lines.append("\ndroptrace cannot trace here: see the NO lines above.")
        out.write_text("\n".join(lines) + "\n")
        return 1
    skipped = [h for h in HOOKS[:HOOKS.index(working[0])]]
    why = f" ({', '.join(skipped)} unavailable: see above)" if skipped else ""
    lines.append(f"\ndroptrace will use the {working[0]} hook{why}: {', '.join(features)}.")
    out.write_text("\n".join(lines) + "\n")
    return 0
