"""Symbolization of kernel addresses."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from droptrace.kernel.kallsyms import Kallsyms

LINES = [b"ffffffff81000000 T _stext", b"ffffffff81000100 t tcp_v4_rcv",
         b"ffffffff81000400 D some_data", b"ffffffff81000500 T ip_rcv_core",
         b"ffffffffc0001000 t nft_do_chain\t[nf_tables]", b"garbage", b"zzzz T bad"]


def test_function_plus_offset():
    k = Kallsyms(LINES)
    assert k.symbolize(0xFFFFFFFF810002A4) == "tcp_v4_rcv+0x1a4"
    assert k.symbolize(0xFFFFFFFF81000500) == "ip_rcv_core+0x0"
    # data symbols are not functions: the address still belongs to tcp_v4_rcv's range
    assert k.symbolize(0xFFFFFFFF81000450) == "tcp_v4_rcv+0x350"


def test_module_symbols_carry_the_module():
    assert Kallsyms(LINES).symbolize(0xFFFFFFFFC0001010) == "nft_do_chain+0x10 [nf_tables]"


def test_below_every_symbol_and_restricted_addresses_are_hex():
    assert Kallsyms(LINES).symbolize(0x1000) == "0x1000"
    restricted = Kallsyms([b"0000000000000000 T tcp_v4_rcv", b"0000000000000000 T ip_rcv"])
    assert not restricted.usable
    assert restricted.symbolize(0xFFFFFFFF810002A4) == "0xffffffff810002a4"


def test_a_module_loaded_later_is_found_by_reloading():
    core = [b"ffffffff81000000 T _stext", b"ffffffff81000100 t tcp_v4_rcv",
            b"ffffffffc0001000 t kvm_run\t[kvm]"]
    mods_then = [b"kvm 4096 0 - Live 0xffffffffc0001000"]
    later = core + [b"ffffffffc0a00000 t nft_do_chain\t[nf_tables]"]
    mods_now = mods_then + [b"nf_tables 8192 0 - Live 0xffffffffc0a00000"]
    reloads = []

    def reload():
        reloads.append(1)
        return later, mods_now

    k = Kallsyms(core, mods_then, reload=reload)
    assert k.symbolize(0xFFFFFFFFC0A00010) == "nft_do_chain+0x10 [nf_tables]"
    assert len(reloads) == 1
    assert k.symbolize(0xFFFFFFFF81000110) == "tcp_v4_rcv+0x10"
    assert k.symbolize(0xFFFFFFFFC0001008) == "kvm_run+0x8 [kvm]"
    assert len(reloads) == 1


def test_bpf_programs_in_module_space_are_named():
    k = Kallsyms([b"ffffffff81000100 t tcp_v4_rcv", b"ffffffffc0001000 t kvm_run\t[kvm]",
                  b"ffffffffc0270000 t bpf_prog_6deef7357e7b4530_dt_tp_btf\t[bpf]"],
                 [b"kvm 4096 0 - Live 0xffffffffc0001000"])
    assert k.symbolize(0xFFFFFFFFC0270C6D) == "bpf_prog_6deef7357e7b4530_dt_tp_btf+0xc6d [bpf]"


def test_module_address_without_symbols_is_not_misnamed():
    k = Kallsyms([b"ffffffffc0001000 t kvm_run\t[kvm]"],
                 [b"kvm 4096 0 - Live 0xffffffffc0001000",
                  b"nf_tables 8192 0 - Live 0xffffffffc0a00000"])
    assert k.symbolize(0xFFFFFFFFC0A00010) == "0xffffffffc0a00010 [nf_tables]"


@given(st.integers(0, 2**64 - 1))
def test_symbolize_is_total(addr):
    assert isinstance(Kallsyms(LINES).symbolize(addr), str)


def test_reading_in_the_background_waits_for_the_first_name():
    """Kallsyms.in_background: names once read; an error reading them is raised where one is asked."""
    import threading

    from droptrace.kernel.kallsyms import Reading

    go = threading.Event()

    def load():
        go.wait(5)
        return Kallsyms(b"ffffffff81000000 T a_func\nffffffff81000100 T b_func\n")
    r = Reading(load)
    go.set()
    assert r.symbolize(0xFFFFFFFF81000010) == "a_func+0x10"

    def broken():
        raise PermissionError("kallsyms")
    with pytest.raises(PermissionError):
        Reading(broken).symbolize(0xFFFFFFFF81000010)


def test_names_come_from_the_text_line_of_that_address():
    # the same address as a data symbol first, a module's symbol, and a name that only ends alike
    blob = (b"ffffffff81000000 D data_first\n"
            b"ffffffff81000000 T text_second\n"
            b"ffffffff8100000f t xffffffff81000000 \n"
            b"ffffffffc0001000 t nft_do_chain\t[nf_tables]\n")
    k = Kallsyms(blob)
    assert k.symbolize(0xFFFFFFFF81000004) == "text_second+0x4"
    assert k.symbolize(0xFFFFFFFFC0001010) == "nft_do_chain+0x10 [nf_tables]"
    assert k.symbolize(0xFFFFFFFF81000010) == "xffffffff81000000+0x1"
