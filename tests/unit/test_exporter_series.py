"""The exporter's series bound (--max-series), on a stand-in for the tracer: label sets at most N, the
folded ones included, and every drop counted under its own reason (sum by reason exact)."""
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from droptrace.commands.exporter import OTHER, Series
from droptrace.errors import UsageError

KNOWN = ("NO_SOCKET", "TCP_CSUM", "NETFILTER_DROP")


class FakeReasons:
    def all_names(self):
        return dict(enumerate(KNOWN))

    def value(self, name):
        return KNOWN.index(name)

    def name(self, value):
        return KNOWN[value]


class FakeTracer:
    """Kernel keys are (reason, port) pairs; the map is what the test put in it."""

    def __init__(self, reasons=None):
        self.contract = SimpleNamespace(const={"DT_FLOW_ADDRS": 1, "DT_FLOW_PORTS": 2})
        self.reasons, self.has_reason = FakeReasons(), True
        self.opts = SimpleNamespace(reasons=list(reasons or []), exclude_reasons=[])
        self.map = {}

    def aggregate_items(self):
        return list(self.map.items())

    def aggregate_value(self, raw):
        return raw[0], raw[1], "eth0"

    def forget_aggregate(self, raw_key):
        return None


class KeyedSeries(Series):
    def _values(self, key, ifname):  # the kernel key is the label values, already
        return key


def series(tracer, max_series):
    s = KeyedSeries(tracer, ("reason", "dport"), max_series, forget_after=0)
    s.tracer.aggregate_key = lambda raw: raw
    return s


@given(st.integers(5, 12), st.lists(st.tuples(st.sampled_from(KNOWN + ("UNKNOWN_99",)),
                                             st.integers(1, 40), st.integers(1, 5)), max_size=60))
def test_label_sets_never_exceed_the_cap_and_reasons_stay_exact(cap, drops):
    tracer = FakeTracer()
    s = series(tracer, cap)
    counts = {}
    for reason, port, n in drops:
        key = (reason, str(port))
        old = tracer.map.get(key, (0, 0))
        tracer.map[key] = (old[0] + n, old[1] + 100 * n)
        counts[reason] = counts.get(reason, 0) + n
        s.update()
        assert len(s.totals) <= cap
    by_reason = {}
    for (reason, _port), (count, _size) in s.totals.items():
        by_reason[reason] = by_reason.get(reason, 0) + count
    for reason in KNOWN:
        assert by_reason.get(reason, 0) == counts.get(reason, 0)
    unknown = counts.get("UNKNOWN_99", 0)
    assert by_reason.get("UNKNOWN_99", 0) + by_reason.get(OTHER, 0) == unknown  # folded: reason `other`


def test_a_cap_without_room_is_a_usage_error():
    with pytest.raises(UsageError, match="--max-series 4 leaves no room: 4 label sets"):
        series(FakeTracer(), 4)
    assert series(FakeTracer(reasons=["NO_SOCKET"]), 3).ordinary_cap == 1
