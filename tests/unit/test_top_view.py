"""`droptrace top`'s view and summary, from an Aggregator fed by hand (no BPF).

render(): at any terminal size every count shown keeps all its digits (columns
are dropped, trend, then share, then rate, and names shortened, first), and the
title stays one line. summary(): one row per group, counts summing to the total.
"""
import io
import re
import socket
from typing import List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from droptrace.commands.top import GROUP_FIELDS, GROUPS, Aggregator, render, summary

FLOW_BITS = {"DT_FLOW_ADDRS": 1, "DT_FLOW_PORTS": 2}
REASONS = {1: "NO_SOCKET", 2: "BRIDGE_INGRESS_STP_STATE", 3: "TCP_CSUM", 4: "NETFILTER_DROP",
           5: "SKB_UCOPY_FAULT", 6: "IP_INADDRERRORS"}
NUMBER_COLUMNS = ["COUNT", "RATE/s", "SHARE", "TREND"]  # the order they are kept in


def reason_name(code: int) -> str:
    return REASONS.get(code, f"UNKNOWN_{code}")


def symbolize(addr: int) -> str:
    return f"a_rather_long_kernel_function_{addr & 0xFFF:x}+0x{addr >> 12 & 0xFFF:x}"


def key(reason=1, location=0xFFFFFFFF81000000, netns=4026531840, ifindex=2, l3proto=0x0800, l4proto=6,
        has_flow=3, saddr="10.0.0.1", daddr="10.0.0.2", sport=1234, dport=80):
    fam = socket.AF_INET6 if l3proto == 0x86DD else socket.AF_INET
    pack = (lambda a: socket.inet_pton(fam, a).ljust(16, b"\0")) if l3proto in (0x0800, 0x86DD) else (
        lambda a: bytes(16))
    return dict(location=location, reason=reason, netns=netns, ifindex=ifindex, l3proto=l3proto,
                l4proto=l4proto, has_flow=has_flow, saddr=pack(saddr), daddr=pack(daddr), sport=sport,
                dport=dport)


V6 = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
ENTRIES = [
    (key(1), 16_000_000, 10 ** 9, "eth0"),
    (key(2, location=0xFFFFFFFF81234567, l3proto=0x86DD, saddr=V6, daddr=V6, sport=65535, dport=65535),
     123_456_789_012, 10 ** 12, "verylonginterfa"),
    (key(3, ifindex=3, netns=4294967295, sport=4321), 5, 300, ""),
    (key(4, l3proto=0x0806, has_flow=0), 999_999, 60_000_000, "br0"),
    (key(5, l4proto=17, has_flow=1), 1_000_000_000_000_000_000, 2 ** 62, "wlp0s20f3"),
    (key(6, l4proto=132, sport=1, dport=2), 7, 700, "veth1234567890a"),
]


def aggregator(entries=ENTRIES, rounds=3) -> Aggregator:
    agg = Aggregator(reason_name, symbolize, FLOW_BITS)
    for i in range(1, rounds + 1):  # counts grow each refresh: rates and trends
        agg.update([(k, c * i, b * i, ifn) for k, c, b, ifn in entries], 1.0)
    return agg


def shown(agg: Aggregator, group: str, width: int, height: int, interactive=True, lost=12_345_678,
          elapsed=3600.7) -> List[str]:
    console = Console(width=width, height=height, record=True, file=io.StringIO(), color_system=None)
    console.print(render(agg, group, lost, elapsed, interactive, width, height))
    return console.export_text().rstrip("\n").split("\n")


def title(agg: Aggregator, group: str, lost=12_345_678, elapsed=3600.7) -> str:
    return f"droptrace top: {agg.total:,} drops, {lost:,} lost, {int(elapsed)} s, grouped by {group}"


def check_view(agg: Aggregator, group: str, width: int, height: int, interactive=True) -> List[str]:
    lines = shown(agg, group, width, height, interactive)
    full = title(agg, group)
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    # The title: one line, whole or cut with an ellipsis; never wrapped onto the next line.
    first = lines[0].rstrip()
    if first != full:
        assert first.endswith("…") and full.startswith(first[:-1]), (first, full)
    header_at = next(i for i, line in enumerate(lines) if re.search(r"\bCOUNT\b", line))
    assert header_at == 1, "\n".join(lines)
    header = lines[header_at]
    columns = [c for c in NUMBER_COLUMNS if re.search(rf"(^|\s){re.escape(c)}(\s|$)", header)]
    assert columns == NUMBER_COLUMNS[:len(columns)], f"dropped out of order: {columns}\n{header}"
    # Every label column is there, if need be shortened (to "…" at the very least), never gone.
    titles = header.split()
    assert len(titles) == len(columns) + len(GROUPS[group]), f"a column vanished:\n{header}"
    for t, want in zip(titles[len(columns):], GROUPS[group]):
        assert t == want or (t.endswith("…") and want.startswith(t[:-1])), f"{want}: {t!r}\n{header}"
    body = lines[header_at + 1:]
    if interactive:
        assert body[-1].startswith("[r]eason"), "\n".join(lines)
        body = body[:-1]
    rows = agg.sorted_rows(group)
    assert 1 <= len(body) <= len(rows)
    assert len(lines) <= max(height, 1 + 1 + 1 + interactive), "more lines than the terminal has"
    for line, (_gk, row) in zip(body, rows):
        cells = line.split()
        assert f"{row.count:,}" in cells, f"count {row.count:,} cut:\n" + "\n".join(lines)
        if "RATE/s" in columns:
            assert f"{row.rates[-1]:,.1f}" in cells, "rate cut:\n" + "\n".join(lines)
        if "SHARE" in columns:
            share = row.count / agg.total * 100 if agg.total else 0.0
            assert f"{share:.1f}%" in cells, "share cut:\n" + "\n".join(lines)
    return lines


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_counts_whole_at_every_size(group, width):
    agg = aggregator()
    for height in range(10, 51, 5):
        check_view(agg, group, width, height)
    check_view(agg, group, width, 24, interactive=False)


@pytest.mark.parametrize("group", list(GROUPS))
def test_title_whole_at_120(group):
    agg = aggregator()
    lines = shown(agg, group, 120, 30)
    assert lines[0].rstrip() == title(agg, group)


@pytest.mark.parametrize("group", list(GROUPS))
def test_wide_terminal_shows_everything(group):
    """At 200 columns nothing needs dropping or shortening."""
    agg = aggregator()
    lines = check_view(agg, group, 200, 50)
    header = lines[1].split()
    assert header[:4] == ["RATE/s", "COUNT", "SHARE", "TREND"] and header[4:] == list(GROUPS[group])
    assert "…" not in "\n".join(lines[1:])


def test_numbers_in_label_columns_whole():
    """NETNS is a number too: the iface view shortens the name, not the inode (when the counts
    leave room for it: with 25-digit counts in 40 columns, the count comes first)."""
    agg = aggregator([e for e in ENTRIES if e[1] < 10 ** 12])
    for width in (40, 60, 80):
        text = "\n".join(check_view(agg, "iface", width, 20))
        assert "4294967295" in text and "4026531840" in text, text


def test_title_never_wraps_with_huge_numbers():
    agg = aggregator([(key(1), 10 ** 18, 10 ** 18, "eth0")])
    for width in (40, 60, 80, 120):
        lines = shown(agg, "flow", width, 12, lost=10 ** 18, elapsed=31_622_400)
        assert lines[0].rstrip().endswith("…") or lines[0].rstrip() == title(
            agg, "flow", lost=10 ** 18, elapsed=31_622_400)
        assert "COUNT" in lines[1]


@pytest.mark.parametrize("group", list(GROUPS))
def test_u64_counts_whole_at_40(group):
    """The kernel's counters are u64: even the largest fits 40 columns, names shortened around it."""
    agg = aggregator([(key(1), 2 ** 64 - 1, 2 ** 64 - 1, "eth0"),
                      (key(2, location=0xFFFFFFFF81000040, sport=9), 1, 1, "eth1")], rounds=1)
    text = "\n".join(check_view(agg, group, 40, 10))
    assert "18,446,744,073,709,551,615" in text


def test_height_limits_rows():
    agg = aggregator()
    lines = check_view(agg, "reason", 120, 10)
    assert len(lines) <= 10


def test_empty_view():
    agg = Aggregator(reason_name, symbolize, FLOW_BITS)
    for width in (40, 120):
        lines = shown(agg, "reason", width, 20)
        assert lines[0].startswith("droptrace top: 0 drops")


@st.composite
def entries(draw):
    out = []
    for i in range(draw(st.integers(1, 8))):
        v6 = draw(st.booleans())
        out.append((key(reason=draw(st.integers(1, 9)), location=0xFFFFFFFF81000000 + draw(st.integers(0, 8)),
                        netns=draw(st.sampled_from([0, 4026531840, 4294967295])), ifindex=i + 1,
                        l3proto=0x86DD if v6 else 0x0800, l4proto=draw(st.sampled_from([6, 17, 1, 132])),
                        has_flow=draw(st.integers(0, 3)), saddr=V6 if v6 else "10.1.2.3",
                        daddr="::1" if v6 else "192.168.100.200", sport=draw(st.integers(0, 65535)),
                        dport=draw(st.integers(0, 65535))),
                    draw(st.integers(0, 10 ** 15)), draw(st.integers(0, 10 ** 18)),
                    draw(st.sampled_from(["", "eth0", "verylonginterfa", "wg0"]))))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries(), st.sampled_from(list(GROUPS)), st.integers(40, 200), st.integers(10, 50))
def test_counts_whole_any_view(es, group, width, height):
    check_view(aggregator(es, rounds=2), group, width, height)


# -- summary -----------------------------------------------------------------------------
class FakeTracer:
    def counters(self):
        return (0, 0)

    def stat(self, name):
        return 0


@pytest.mark.parametrize("group", list(GROUPS))
def test_summary(group):
    agg = aggregator()
    out = summary(agg, FakeTracer(), group, 3.0)
    assert out["group"] == group and out["lost"] == 0 and out["folded"] == 0 and out["duration"] == 3.0
    assert out["total"] == agg.total == 3 * sum(c for _k, c, _b, _i in ENTRIES)
    rows = out["rows"]
    assert sum(r["count"] for r in rows) == agg.total
    assert sum(r["bytes"] for r in rows) == 3 * sum(b for _k, _c, b, _i in ENTRIES)
    for r in rows:
        assert list(r) == [*GROUP_FIELDS[group], "count", "bytes", "share", "rate"]
        assert r["rate"] == round(r["count"] / 3.0, 2)
    assert [r["count"] for r in rows] == sorted((r["count"] for r in rows), reverse=True)
    keys = [tuple(r[f] for f in GROUP_FIELDS[group]) for r in rows]
    assert len(keys) == len(set(keys)), "one row per group"
    want = {"reason": len({k["reason"] for k, *_ in ENTRIES}),
            "location": len({k["location"] for k, *_ in ENTRIES}),
            "iface": len({(ifn or None, k["netns"]) for k, _c, _b, ifn in ENTRIES}),
            "flow": len(ENTRIES)}
    assert len(rows) == want[group]


def test_summary_fields():
    agg = aggregator()
    rows = {r["reason"]: r for r in summary(agg, FakeTracer(), "flow", 1.0)["rows"]}
    v6 = rows["BRIDGE_INGRESS_STP_STATE"]
    assert (v6["l3"], v6["l4"], v6["saddr"], v6["sport"], v6["daddr"], v6["dport"]) == (
        "ipv6", "tcp", V6, 65535, V6, 65535)
    assert v6["ifname"] == "verylonginterfa" and v6["netns"] == 4026531840
    assert v6["location"] == symbolize(0xFFFFFFFF81234567)
    arp = rows["NETFILTER_DROP"]
    assert (arp["l3"], arp["l4"], arp["saddr"], arp["sport"]) == ("arp", None, None, None)
    no_ports = rows["SKB_UCOPY_FAULT"]  # addresses, no ports
    assert (no_ports["l4"], no_ports["saddr"], no_ports["sport"], no_ports["dport"]) == (
        "udp", "10.0.0.1", None, None)
    assert rows["TCP_CSUM"]["ifname"] is None  # no name: null, not ""


def test_summary_flow_rows_keep_their_reason():
    """One flow dropped for two reasons on two interfaces: --json --group flow must not say all of
    them were the first reason's, on the first interface."""
    agg = Aggregator(reason_name, symbolize, FLOW_BITS)
    agg.update([(key(1, ifindex=2), 10, 100, "eth0"), (key(3, ifindex=3, netns=4294967295), 5, 50, "eth1")],
               1.0)
    rows = summary(agg, FakeTracer(), "flow", 1.0)["rows"]
    by_reason = {r["reason"]: r["count"] for r in rows}
    assert by_reason == {"NO_SOCKET": 10, "TCP_CSUM": 5}, rows


def test_summary_merges_and_empty():
    agg = Aggregator(reason_name, symbolize, FLOW_BITS)
    agg.update([(key(1, ifindex=i), 10, 100, f"eth{i}") for i in range(5)], 1.0)
    out = summary(agg, FakeTracer(), "reason", 2.0)
    assert out["rows"] == [{"reason": "NO_SOCKET", "count": 50, "bytes": 500, "share": 1.0, "rate": 25.0}]
    empty = Aggregator(reason_name, symbolize, FLOW_BITS)
    out = summary(empty, FakeTracer(), "flow", 0.0)
    assert out["total"] == 0 and out["rows"] == [] and out["duration"] == 0.0


@pytest.mark.parametrize("group", list(GROUPS))
def test_explain_legend_names_each_reason_shown_once(group):
    from droptrace.explain import summary

    agg = aggregator()
    console = Console(width=200, height=60, record=True, file=io.StringIO(), color_system=None)
    console.print(render(agg, group, 0, 10, True, 200, 60, explain=True))
    text = console.export_text()
    for name in ("NO_SOCKET", "TCP_CSUM"):
        assert text.count(f"{name}: {summary(name)}") == 1
    assert "[e]xplain" in text
