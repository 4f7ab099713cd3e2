"""Every lab scenario, on every hook: the real kernel drops, droptrace's CLI reports.

Each test provokes one drop in a private namespace and asserts what the
`droptrace --json` subprocess printed: the kernel's reason name, the decoded
addresses and ports, the namespace inode and the interface.
"""
import pytest

from droptrace.lab import IFNAME, SCENARIOS
from droptrace.options import HOOKS

from .conftest import SLOWDOWN, Droptrace


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_is_reported(lab, scenario, hook):
    ns = scenario.netns(lab)
    with scenario.prepared(lab), Droptrace("--json", "--hook", hook, "--netns", ns, "-d",
                                                    str(int(60 * SLOWDOWN))) as dt:
        dt.wait_ready()
        scenario.provoke(lab)
        event = dt.find(scenario.matches)
        assert event is not None, (
            f"no {'/'.join(scenario.reasons)} event matching {scenario.expect}; saw {dt.seen}")
        assert dt.stop() == 0
    assert event["netns"] == lab.inode(ns)
    assert event["ifname"] == IFNAME and event["ifindex"] > 0
    assert event["location"].split("+")[0] and "+0x" in event["location"]
    assert event["reason_code"] >= 0 and event["len"] > 0
    assert "stack" not in event
    summary = dt.stderr[-1]
    assert "drops shown" in summary and " 0 lost" in summary
