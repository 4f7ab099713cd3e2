"""Every lab scenario, on every hook: the real kernel drops, droptrace's CLI reports.

Each test provokes one drop in a private namespace and asserts what the
`droptrace --json` subprocess printed: the kernel's reason name, the decoded
addresses and ports, the namespace inode and the interface.
"""
import pytest

from droptrace.lab import IFNAME, SCENARIOS
from droptrace.options import HOOKS

from .conftest import HAS_REASONS, SLOWDOWN, Droptrace


def matcher(scenario, lab):
    """The scenario's expectations on this kernel, in its namespace: before 5.17 the reason is null,
    and the location and the packet's fields must still be right (the namespace then tells apart
    drops of the same packet, e.g. a full qdisc in A from what got through to B)."""
    ns = lab.inode(scenario.netns(lab))
    if HAS_REASONS:
        return lambda e: e.get("netns") == ns and scenario.matches(e)
    return lambda e: (e.get("netns") == ns and e.get("reason") is None
                      and all(e.get(k) == v for k, v in scenario.expect.items()))


def check_event(lab, scenario, event):
    assert event["netns"] == lab.inode(scenario.netns(lab))
    assert event["ifname"] == IFNAME and event["ifindex"] > 0
    assert event["location"].split("+")[0] and "+0x" in event["location"]
    assert event["len"] > 0
    assert (event["reason_code"] >= 0) if HAS_REASONS else (event["reason_code"] is None)
    assert "stack" not in event


@pytest.mark.host_only  # other kernels run test_every_scenario_on_every_hook_at_once
@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_is_reported(lab, scenario, hook):
    ns = scenario.netns(lab)
    with scenario.prepared(lab), Droptrace("--json", "--hook", hook, "--netns", ns, "-d",
                                                    str(int(60 * SLOWDOWN))) as dt:
        dt.wait_ready()
        scenario.provoke(lab)
        event = dt.find(matcher(scenario, lab))
        assert event is not None, (
            f"no {'/'.join(scenario.reasons)} event matching {scenario.expect}; saw {dt.seen}")
        assert dt.stop() == 0
    check_event(lab, scenario, event)
    summary = dt.stderr[-1]
    assert "drops shown" in summary and " 0 lost" in summary


@pytest.mark.matrix
def test_every_scenario_on_every_hook_at_once(lab):
    """Every scenario, each provoked once and reported by one droptrace per hook running side by
    side (starting processes is what costs most under emulation): each hook reports each drop with
    this kernel's reason name, or null before 5.17, and the same packet fields."""
    wait = str(int(900 * SLOWDOWN))
    tracers = {hook: Droptrace("--json", "--hook", hook, "--netns", lab.a, "--netns", lab.b, "-d", wait)
               for hook in HOOKS}
    try:
        for dt in tracers.values():
            dt.wait_ready()
        missed = []
        for scenario in SCENARIOS:
            with scenario.prepared(lab):
                scenario.provoke(lab)
                for hook, dt in tracers.items():
                    event = dt.find(matcher(scenario, lab))
                    if event is None:
                        missed.append(f"{scenario.name} on {hook}")
                    else:
                        check_event(lab, scenario, event)
        for dt in tracers.values():
            assert dt.stop() == 0
        assert not missed, f"not reported: {missed}"
    finally:
        for dt in tracers.values():
            dt.__exit__(None, None, None)
