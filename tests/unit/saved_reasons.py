"""The reason lists of the kernels droptrace was tested on, saved under tests/data: the tracepoint's
format (`kfree_skb-VERSION.format`) and the BTF enums (`skb_drop_reason-VERSION.btf.txt`, rebuilt
here into real BTF so droptrace's own reader names them). Tests check completeness against these,
never against the running kernel, whose list may be newer than anything saved."""
from pathlib import Path
from typing import Dict, List

from droptrace.kernel import btf, reasons, tracefs

from .btfgen import BTFBuilder

DATA = Path(__file__).resolve().parent.parent / "data"


def format_versions() -> List[str]:
    """Versions whose saved tracepoint format names drop reasons (5.15's does not)."""
    out = []
    for f in sorted(DATA.glob("kfree_skb-*.format")):
        if "__print_symbolic" in f.read_text():
            out.append(f.name[len("kfree_skb-"):-len(".format")])
    return out


def btf_versions() -> List[str]:
    files = DATA.glob("skb_drop_reason-*.btf.txt")
    return sorted(f.name[len("skb_drop_reason-"):-len(".btf.txt")] for f in files)


def from_format(version: str) -> reasons.Reasons:
    fmt = tracefs.parse_format((DATA / f"kfree_skb-{version}.format").read_text())
    return reasons.from_print_fmt(fmt.print_fmt)


def btf_blob(enums: Dict[str, Dict[str, int]]) -> bytes:
    b = BTFBuilder()
    b.int("int", 4)
    for name, members in enums.items():
        b.enum(name, members)
    return b.bytes()


def saved_enums(version: str) -> Dict[str, Dict[str, int]]:
    """{enum name: {member: value}} as saved from a kernel's BTF."""
    enums: Dict[str, Dict[str, int]] = {}
    current = None
    for line in (DATA / f"skb_drop_reason-{version}.btf.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        word, rest = line.split(" ", 1)
        if word == "enum":
            current = enums.setdefault(rest, {})
        else:
            current[word] = int(rest)
    return enums


def from_btf(version: str) -> reasons.Reasons:
    return reasons.from_btf(btf.parse(btf_blob(saved_enums(version))))
