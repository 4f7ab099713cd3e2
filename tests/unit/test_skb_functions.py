"""Which kernel functions take a packet (trail --functions): found in BTF, narrowed, shown."""
import errno

from hypothesis import given
from hypothesis import strategies as st

from droptrace.kernel import btf, skb_functions

from .btfgen import KIND_CONST, KIND_PTR, KIND_TYPEDEF, BTFBuilder


def kernel() -> btf.BTF:
    """A BTF with struct sk_buff and functions that take it at various places, or not at all."""
    b = BTFBuilder()
    i32 = b.int("int", 4, signed=True)
    skb = b.struct("sk_buff", 232, [])
    other = b.struct("sock", 64, [])
    p_skb = b.ref(KIND_PTR, skb)
    p_const_skb = b.ref(KIND_PTR, b.ref(KIND_CONST, skb))  # const struct sk_buff *
    p_typedef = b.ref(KIND_TYPEDEF, p_skb, "skb_ptr_t")
    p_sock = b.ref(KIND_PTR, other)
    b.func("ip_forward", b.func_proto(i32, [("skb", p_skb)]))
    b.func("nf_hook_slow", b.func_proto(i32, [("skb", p_const_skb), ("state", p_sock)]))
    b.func("sk_skb_reason_drop", b.func_proto(0, [("sk", p_sock), ("skb", p_typedef)]))
    b.func("skb_clone", b.func_proto(p_skb, [("skb", p_skb), ("gfp", i32)]))
    b.func("late_skb", b.func_proto(i32, [(f"a{i}", i32) for i in range(5)] + [("skb", p_skb)]))
    b.func("sock_only", b.func_proto(i32, [("sk", p_sock)]))
    return btf.parse(b.bytes())


def test_functions_with_an_skb_among_the_first_five_arguments():
    assert skb_functions.skb_functions(kernel(), 5) == {
        "ip_forward": 0, "nf_hook_slow": 0, "sk_skb_reason_drop": 1, "skb_clone": 0}


def test_return_kinds():
    kinds = skb_functions.return_kinds(kernel(), ["ip_forward", "sk_skb_reason_drop", "skb_clone"])
    assert kinds == {"ip_forward": "int", "sk_skb_reason_drop": "void", "skb_clone": "pointer"}


def test_select_by_globs_and_availability():
    found = {"ip_forward": 0, "ip_rcv": 0, "nf_hook_slow": 0, "tcp_v4_rcv": 0}
    chosen = skb_functions.select(found, None, ["ip_*", "nf_*"])
    assert list(chosen) == ["ip_forward", "ip_rcv", "nf_hook_slow"]
    assert list(skb_functions.select(found, {"ip_rcv", "tcp_v4_rcv"}, [])) == ["ip_rcv", "tcp_v4_rcv"]
    assert skb_functions.select(found, None, ["nothing*"]) == {}


def test_available_filter_functions_lines():
    text = "ip_forward\nnft_do_chain [nf_tables]\n\nffffffff81000000 ip_rcv\n"
    assert skb_functions.parse_available(text) == {"ip_forward", "nft_do_chain", "ffffffff81000000"}


def test_returns_shown():
    show = skb_functions.show_return
    assert show(-errno.EPERM, "int") == "-EPERM"
    assert show((1 << 32) - errno.EXDEV, "int") == "-EXDEV"  # an int in the low half of rax
    assert show(1, "int") == "1" and show(0, "int") == "0"
    assert show(-0x777700000000, "pointer") == f"0x{(1 << 64) - 0x777700000000:x}"
    assert show(-errno.ENOMEM, "pointer") == "-ENOMEM"  # ERR_PTR
    assert show(-1, "void") is None


@given(st.lists(st.text(), max_size=5))
def test_globs_parse_any_input(values):
    globs = skb_functions.parse_globs(values)
    assert all(g and g == g.strip() and "," not in g for g in globs)
    skb_functions.select({"ip_forward": 0}, None, globs)  # any glob compiles


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
       st.sampled_from(["int", "pointer", "void"]))
def test_any_return_value_is_shown_or_none(value, kind):
    shown = skb_functions.show_return(value, kind)
    assert (shown is None) == (kind == "void")
