"""The value parsers behind every CLI flag and the Python API: a value in range, or one UsageError.

Whatever the text (surrogates from a non-UTF-8 argv, huge numbers, inf, nan, odd
digits), a parser returns a value within its documented range or raises
UsageError (DroptraceError where the answer depends on the host, for netns):
never an OverflowError, ValueError, TypeError or UnicodeEncodeError.
"""
import math
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from droptrace import options as opt
from droptrace.errors import DroptraceError, UsageError

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Texts a user (or a shell, or os.fsdecode of a non-UTF-8 argv) can produce.
TRICKY = ["", " ", "\t\n", "0", "-0", "+0", "1", "-1", "0x10", "0o7", "0b11", "010", "1_000", "1e3",
          "1e308", "1e309", "-1e308", "inf", "-inf", "Infinity", "nan", "NaN", "-nan", "1.5", ".5",
          "5.", "1" * 20, "1" * 5000, "0" * 5000 + "1", "9" * 400, "\udcff", "\udc80\udcff",
          "\ud800", "\udfff", "\x00", "1\x00", "²", "٣", "１２", "⑨", "½", "0x", "/", "1/", "/1",
          "1/2/3", "0x10/0xf0", "0xffffffff/0xffffffff", "0x100000000", "pid:", "pid:1", "pid:0",
          "pid:-1", "pid:²", "pid:" + "1" * 5000, "..", ".", "../../etc/passwd", "a" * 300, "é" * 8,
          "\xa0", "NO_SOCKET", "tp_btf", "raw_tp", "tracepoint", "TP_BTF"]
texts = st.one_of(st.sampled_from(TRICKY), st.text(),
                  st.binary(max_size=20).map(os.fsdecode),  # a non-UTF-8 argv: surrogates \udc80-\udcff
                  st.text(st.one_of(st.characters(categories=["Cs"]), st.characters(max_codepoint=127),
                                    st.characters(categories=["Nd", "No", "Zs"])), max_size=20),
                  st.from_regex(r"\A[ \t]*[+-]?(0[xob])?[0-9a-fA-F_]{0,30}(\.[0-9]*)?([eE][+-]?[0-9]{1,4})?"
                                r"(/[0-9a-fx]{0,12})?[ \t]*\Z"))
# What the Python API may be handed instead of text.
HUGE = 10 ** 5000  # longer than Python will print with repr() (int_max_str_digits)
api_values = st.one_of(st.integers(), st.sampled_from([HUGE, -HUGE, 2 ** 64, 2 ** 32, 2 ** 32 - 1,
                                                       True, False, None, 0.0, -0.0, math.inf, -math.inf,
                                                       math.nan, 1e308, 5e-324, b"1", b"\xff", [1], (1, 2),
                                                       object()]),
                       st.floats(allow_nan=True, allow_infinity=True))


def ident(value) -> str:
    """A pytest id: pytest's own str() fails on HUGE."""
    try:
        return ascii(value)[:24]
    except ValueError:
        return "huge"


def outcome(f, value):
    """f(value), or None if it raised UsageError; any other exception fails the test."""
    try:
        return f(value)
    except UsageError as e:
        assert e.exit_code == 2
        assert "\n" not in str(e), f"more than one line: {str(e)!r}"
        return None


def in_range(n, low, high):
    assert type(n) is int, f"{n!r} is not an int"
    assert low <= n <= high, f"{n} not in {low}..{high}"


# -- property tests: any text, any API value -----------------------------------------------
INT_PARSERS = [(opt.count, 1, opt.COUNT_MAX), (opt.pid, 1, opt.PID_MAX), (opt.rate_limit, 1, opt.U32_MAX),
               (opt.ring_mb, 1, opt.MAX_RING_MB)]


@pytest.mark.parametrize("parse,low,high", INT_PARSERS, ids=[p.__name__ for p, _, _ in INT_PARSERS])
@FAST
@given(value=st.one_of(texts, api_values))
def test_integer_parsers_any_value(parse, low, high, value):
    n = outcome(parse, value)
    if n is not None:
        in_range(n, low, high)
        if parse is opt.ring_mb:
            assert n & (n - 1) == 0, f"{n} is not a power of two"


@FAST
@given(st.one_of(texts, api_values))
def test_seconds_any_value(value):
    n = outcome(opt.seconds, value)
    if n is not None:
        assert isinstance(n, float) and math.isfinite(n) and 0 < n <= opt.MAX_SECONDS


@FAST
@given(st.one_of(texts, api_values, st.tuples(api_values, api_values), st.tuples(texts, texts),
                 st.tuples(st.integers()), st.tuples(st.integers(), st.integers(), st.integers())))
def test_mark_any_value(value):
    r = outcome(opt.mark, value)
    if r is not None:
        v, m = r
        in_range(v, 0, opt.U32_MAX)
        in_range(m, 0, opt.U32_MAX)
        assert v & ~m == 0, "the value keeps bits outside its mask"


@FAST
@given(st.one_of(texts, st.lists(texts, max_size=4), api_values, st.lists(api_values, max_size=3)))
def test_names_any_value(value):
    r = outcome(opt.names, value)
    if r is not None:
        assert r and all(isinstance(n, str) and n and n == n.strip() and "," not in n for n in r)


@FAST
@given(st.one_of(texts, st.binary(max_size=20), api_values))
def test_interface_any_value(value):
    r = outcome(opt.interface, value)
    if r is not None:
        assert isinstance(r, bytes) and 1 <= len(r) < opt.IFNAMSIZ
        assert r not in (b".", b"..")
        assert not any(c in r for c in b"/: \t\n\r\0\x0b\x0c")


@FAST
@given(st.one_of(texts, api_values))
def test_hook_any_value(value):
    r = outcome(opt.hook, value)
    assert r is None or r in opt.HOOKS


@FAST
@given(st.one_of(texts, st.binary(max_size=20), st.lists(texts, max_size=4), api_values,
                 st.lists(api_values, min_size=1, max_size=3)))
def test_expression_any_value(value):
    r = outcome(opt.expression, value)
    assert r is None or (isinstance(r, str) and r and r == r.strip())


@FAST
@given(st.one_of(texts, api_values))
def test_netns_any_value(value):
    """Only reads the host's namespaces, through the parser; host answers are DroptraceError (exit 1)."""
    try:
        ino = opt.netns(value)
    except UsageError as e:
        assert e.exit_code == 2 and "\n" not in str(e)
    except DroptraceError as e:
        assert e.exit_code == 1 and "\n" not in str(e)
    else:
        in_range(ino, 1, opt.U32_MAX)


# -- examples ----------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["inf", "1e308", "Infinity", "1e309", "9" * 400])
def test_seconds_too_long(text):
    with pytest.raises(UsageError, match="too long"):
        opt.seconds(text)


@pytest.mark.parametrize("value", ["0", "-0", "-1", "nan", "-inf", "1e-400", -HUGE, False], ids=ident)
def test_seconds_not_positive(value):
    with pytest.raises(UsageError, match="greater than zero"):
        opt.seconds(value)


def test_seconds_values():
    assert opt.seconds("1.5") == 1.5
    assert opt.seconds(" 2 ") == 2.0
    assert opt.seconds(opt.MAX_SECONDS) == opt.MAX_SECONDS
    with pytest.raises(UsageError, match="too long"):
        opt.seconds(HUGE)  # an int too large for a float: too long, not an OverflowError


def test_pid_twenty_digits():
    with pytest.raises(UsageError, match="out of range"):
        opt.pid("1" * 20)


def test_integers():
    assert opt.count("0x10") == 16
    assert opt.count(" 7 ") == 7
    assert opt.pid(opt.PID_MAX) == opt.PID_MAX
    assert opt.rate_limit(str(opt.U32_MAX)) == opt.U32_MAX
    assert opt.ring_mb("16") == 16
    with pytest.raises(UsageError, match="greater than zero"):
        opt.count("0")
    with pytest.raises(UsageError, match="power of two"):
        opt.ring_mb("3")
    for bad in ("1.5", "inf", "nan", "1e3", True, None, 1.0):
        with pytest.raises(UsageError, match="not an integer"):
            opt.count(bad)
    for f in (opt.count, opt.pid, opt.rate_limit, opt.ring_mb):
        with pytest.raises(UsageError, match="out of range"):
            f(HUGE)  # its message cannot repr() the number: no ValueError from the message itself


def test_mark():
    assert opt.mark("0x10/0xf0") == (0x10 & 0xF0, 0xF0)
    assert opt.mark("0x1f/0xf0") == (0x10, 0xF0)
    assert opt.mark("5") == (5, opt.U32_MAX)
    assert opt.mark(5) == (5, opt.U32_MAX)
    assert opt.mark((0xFF, 0x0F)) == (0x0F, 0x0F)
    for bad in ("-1", "0x100000000", "1/0x100000000", "a", "1/2/3", "/1", (1,), (1, 2, 3), HUGE,
                (HUGE, 1)):
        with pytest.raises(UsageError):
            opt.mark(bad)


def test_names():
    assert opt.names("NO_SOCKET") == ["NO_SOCKET"]  # one name, not its letters
    assert opt.names(["A,B", "C"]) == ["A", "B", "C"]
    assert opt.names(" A , B ") == ["A", "B"]
    assert opt.names(("X",)) == ["X"]
    for bad in ("", ",", " , ", [], [""], [","], [1], 5, None):
        with pytest.raises(UsageError):
            opt.names(bad)


def test_interface():
    assert opt.interface(b"\xff") == b"\xff"
    assert opt.interface("\udcff") == b"\xff"  # as os.fsdecode gives it from a non-UTF-8 argv
    assert opt.interface("eth0") == b"eth0"
    assert opt.interface("x" * 15) == b"x" * 15
    for bad in ("", b"", "x" * 16, "é" * 8, ".", "..", "a/b", "a:1", "a b", "a\x00", "\ud800", 5, None):
        with pytest.raises(UsageError):
            opt.interface(bad)


def test_hook_and_expression():
    assert opt.hook(None) is None
    assert opt.hook("raw_tp") == "raw_tp"
    with pytest.raises(UsageError):
        opt.hook("kprobe")
    assert opt.expression(None) is None
    assert opt.expression("  ") is None
    assert opt.expression(["tcp", "port", "80"]) == "tcp port 80"
    assert opt.expression(b"host 10.0.0.1") == "host 10.0.0.1"
    for bad in (5, [1], ["tcp", None]):
        with pytest.raises(UsageError):
            opt.expression(bad)


@pytest.mark.parametrize("spec", ["", " ", "0", "00", "-1", str(opt.U32_MAX + 1), "1" * 5000, "²", "٣",
                                  "../../etc/passwd", "..", ".x", "a/b",
                                  "a\x00", "\udcff", "pid:", "pid:0", "pid:x", 0, -1, HUGE], ids=ident)
def test_netns_malformed(spec):
    with pytest.raises(UsageError):
        opt.netns(spec)


def test_netns_own_process():
    assert opt.netns(f"pid:{os.getpid()}") == os.stat("/proc/self/ns/net").st_ino


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read /proc/1/ns/net")
def test_netns_pid_1():
    try:
        want = os.stat("/proc/1/ns/net").st_ino
    except PermissionError:  # root without CAP_SYS_PTRACE over pid 1 (a container)
        pytest.skip("/proc/1/ns/net is not readable here even as root")
    assert opt.netns("pid:1") == want


def test_netns_own_inode():
    ino = os.stat("/proc/self/ns/net").st_ino
    assert opt.netns(str(ino)) == ino
    assert opt.netns(ino) == ino
    assert opt.netns(f" {ino} ") == ino
    assert opt.netns("0" * 5000 + str(ino)) == ino  # longer than int() reads, yet that inode


def test_netns_unknown_inode():
    assert 12345 not in opt.known_namespaces()
    with pytest.raises(DroptraceError) as info:
        opt.netns(12345)
    assert type(info.value) is DroptraceError and info.value.exit_code == 1


def test_netns_missing_name():
    with pytest.raises(DroptraceError) as info:
        opt.netns("droptrace-no-such-namespace")
    assert not isinstance(info.value, UsageError)


def test_make():
    with pytest.raises(UsageError, match="cannot be combined"):
        opt.make(reasons="X", exclude_reasons="Y")
    o = opt.make(reasons="NO_SOCKET,TCP_CSUM", pid_value="1", mark_value="0x10/0xf0", interfaces="eth0",
                 filter_expr=["tcp"], rate="100", ring_buffer_mb="16", hook_name="raw_tp")
    assert o.reasons == ["NO_SOCKET", "TCP_CSUM"] and o.pid == 1 and o.mark == (0x10, 0xF0)
    assert o.interfaces == [b"eth0"] and o.filter == "tcp" and o.rate_limit == 100 and o.ringbuf_mb == 16
    assert o.hook == "raw_tp"
    assert opt.make(exclude_reasons=["A"]).exclude_reasons == ["A"]
    for kw in ({"reasons": ""}, {"reasons": []}, {"netns_specs": []}, {"interfaces": []},
               {"pid_value": "-1"}, {"interfaces": 0}, {"netns_specs": 1.5}, {"ring_buffer_mb": "0"},
               {"hook_name": "x"}):
        with pytest.raises(UsageError):
            opt.make(**kw)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["reasons", "exclude_reasons", "interfaces", "pid_value",
                                        "mark_value", "filter_expr", "ring_buffer_mb", "rate"]),
                       st.one_of(texts, api_values), max_size=4))
@example({"reasons": "\udcff", "interfaces": "\ud800"})
def test_make_any_values(kw):
    try:
        opt.make(**kw)
    except UsageError:
        pass

