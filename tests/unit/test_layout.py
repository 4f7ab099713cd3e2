"""Struct layouts read by name from the BPF object's own BTF (kernel/layout.py)."""
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from droptrace.features.counts.tracer import CountTracer
from droptrace.features.drops.tracer import DropTracer
from droptrace.features.trail.tracer import TrailTracer
from droptrace.kernel import btf, layout
from droptrace.kernel.layout import FieldSpec, LayoutError, ObjectLayout

from .btfgen import KIND_CONST, KIND_TYPEDEF, KIND_VOLATILE, BTFBuilder

BPF_DIR = Path(__file__).resolve().parents[2] / "src" / "droptrace" / "bpf"
OBJ = BPF_DIR / DropTracer.OBJECTS[0]
NOT_BUILT = f"{OBJ} not built (python3 bpf/build.py src/droptrace/bpf)"
needs_obj = pytest.mark.skipif(not OBJ.exists(), reason=NOT_BUILT)
FEATURES = (DropTracer, CountTracer, TrailTracer)
# (feature, a struct its object shares with user space)
STRUCTS = [(DropTracer, n) for n in ("dt_event", "dt_event_stack", "dt_event_big", "dt_event_big_stack",
                                     "dt_insn")]
STRUCTS += [(CountTracer, "dt_agg_key"), (CountTracer, "dt_agg_val")] + [(f, f.CONFIG) for f in FEATURES]
EVENT_FIELDS = {"ts_ns": 8, "location": 8, "reason": 4, "pid": 4, "tid": 4, "cpu": 4, "len": 4, "mark": 4,
                "ifindex": 4, "netns": 4, "protocol": 2, "mac_off": 2, "net_off": 2, "cap_len": 2,
                "dev_type": 2, "stack_len": 2, "data_off": 2, "flags": 4, "comm": 16, "ifname": 16}


@pytest.fixture(scope="module")
def obj() -> ObjectLayout:
    if not OBJ.exists():
        pytest.skip(NOT_BUILT)
    return layout.load(str(OBJ))


def feature_object(feature: type, name: str = "") -> ObjectLayout:
    path = BPF_DIR / (name or feature.OBJECTS[0])
    if not path.exists():
        pytest.skip(f"{path} not built (python3 bpf/build.py src/droptrace/bpf)")
    return layout.load(str(path))


@pytest.mark.parametrize("feature,name", STRUCTS)
def test_every_shared_struct_is_in_the_object(feature, name):
    s = feature_object(feature).struct(name)
    assert s.size > 0 and s.fields
    for f in s.fields.values():
        assert 0 <= f.offset and f.end <= s.size, f
    fields = list(s.fields.values())
    assert [f.offset for f in fields] == sorted(f.offset for f in fields)
    for a, b in zip(fields, fields[1:]):
        assert a.end <= b.offset, (a, b)


@needs_obj
@pytest.mark.parametrize("name", ["dt_event_stack", "dt_event_big_stack"])
def test_stack_follows_the_event(obj, name):
    s = obj.struct(name)
    stack = s.field("stack")
    assert stack.kind == "bytes" and stack.size % 8 == 0 and stack.end == s.size
    assert stack.offset >= obj.struct("dt_event").size


def test_event_fields_have_sane_sizes(obj):
    ev = obj.struct("dt_event")
    for name, size in EVENT_FIELDS.items():
        f = ev.field(name)
        assert (f.size, f.kind) == (size, "int" if size <= 8 else "bytes"), f
        assert not f.signed and ev.offset(name) == f.offset
    data = ev.field("data")
    assert data.kind == "bytes" and data.size >= 64 and data.end <= ev.size
    assert ev.size % 8 == 0


@pytest.mark.parametrize("feature", FEATURES)
def test_rodata_cfg_is_the_features_config(feature):
    """Each object's `cfg` is its feature's struct, which begins with the shared fields."""
    obj = feature_object(feature)
    offset, size = obj.variable(".rodata", "cfg")
    assert size == obj.struct(feature.CONFIG).size
    assert offset % 4 == 0
    shared = feature_object(DropTracer).struct(DropTracer.CONFIG).fields
    mine = obj.struct(feature.CONFIG).fields
    assert [mine[n] for n in list(shared)[:-2]] == list(shared.values())[:-2]  # drops adds two
    with pytest.raises(LayoutError, match="no global nope"):
        obj.variable(".rodata", "nope")
    with pytest.raises(LayoutError, match="disagree"):
        obj.variable(".nosuchsection", "cfg")


@pytest.mark.parametrize("name", [DropTracer.OBJECT_NOBTF, *DropTracer.OBJECTS[1:], *CountTracer.OBJECTS[1:],
                                  *TrailTracer.OBJECTS[1:]])
def test_every_build_of_a_feature_has_its_config(name):
    feature = next(f for f in FEATURES if name in (*f.OBJECTS, f.OBJECT_NOBTF))
    other = feature_object(feature, name)
    assert other.struct(feature.CONFIG).fields == feature_object(feature).struct(feature.CONFIG).fields
    assert other.variable(".rodata", "cfg")[1] == other.struct(feature.CONFIG).size


def test_missing_struct_and_field_fail_loudly(obj):
    with pytest.raises(LayoutError, match="struct dt_nope is not in its BTF.*disagree.*reinstall"):
        obj.struct("dt_nope")
    with pytest.raises(LayoutError, match="struct dt_event has no field 'nope'"):
        obj.struct("dt_event").offset("nope")
    assert layout.load(str(OBJ)) is obj


def _event_values(ev: layout.StructLayout) -> dict:
    values = {}
    for i, f in enumerate(ev.fields.values()):
        if not f.name.startswith("_"):
            values[f.name] = (0x0102030405060708 + i) & ((1 << (8 * f.size)) - 1) if f.kind == "int" \
                else bytes(range(1, 1 + min(f.size, 7)))
    return values


def test_pack_unpack_round_trip(obj):
    ev = obj.struct("dt_event")
    values = _event_values(ev)
    buf = ev.pack(values)
    assert len(buf) == ev.size
    out = ev.unpack(buf)
    for name, v in values.items():
        assert out[name] == (v if isinstance(v, int) else v.ljust(ev.field(name).size, b"\0"))
    assert out["_pad"] == 0 and out["_reserved"] == 0
    with pytest.raises(LayoutError, match="needs"):
        ev.unpack(buf[:-1])


def test_pack_rejects_unknown_missing_and_bad_values(obj):
    ev = obj.struct("dt_event")
    values = _event_values(ev)
    with pytest.raises(LayoutError, match="no field.*nope"):
        ev.pack({**values, "nope": 1})
    with pytest.raises(LayoutError, match="does not set: pid, comm"):
        ev.pack({k: v for k, v in values.items() if k not in ("pid", "comm")})
    assert ev.pack({"pid": 7}, complete=False)[ev.offset("pid")] == 7
    with pytest.raises(LayoutError, match="not an integer"):
        ev.pack({"protocol": 0x10000}, complete=False)
    with pytest.raises(LayoutError, match="not an integer"):
        ev.pack({"pid": -1}, complete=False)
    with pytest.raises(LayoutError, match="at most 16 bytes"):
        ev.pack({"comm": b"x" * 17}, complete=False)
    with pytest.raises(LayoutError, match="at most 16 bytes"):
        ev.pack({"comm": 5}, complete=False)


def test_struct_unpacks_the_right_values(obj):
    ev = obj.struct("dt_event")
    values = _event_values(ev)
    buf = ev.pack(values) + b"trailing bytes are not read"
    st_, idx = ev.struct(["comm", "ts_ns", "protocol", "reason", "comm"])
    assert sorted(idx) == ["comm", "protocol", "reason", "ts_ns"]
    assert st_.size == ev.field("comm").end and st_.format.startswith("<")
    row = st_.unpack_from(buf)
    assert len(row) == 4
    assert row[idx["ts_ns"]] == values["ts_ns"] and row[idx["reason"]] == values["reason"]
    assert row[idx["protocol"]] == values["protocol"]
    assert row[idx["comm"]].rstrip(b"\0") == values["comm"]
    empty, none = ev.struct([])
    assert empty.size == 0 and none == {}


def _pair_btf(reversed_order: bool) -> bytes:
    """struct dt_pair { u32 a; u32 b; } -- or with b first -- plus a typedef'd array and a .rodata global."""
    b = BTFBuilder()
    u32 = b.int("unsigned int", 4)
    u8 = b.int("unsigned char", 1)
    typedef = b.ref(KIND_TYPEDEF, u32, "__u32")
    first, second = ("b", "a") if reversed_order else ("a", "b")
    name_arr = b.array(u8, 6)
    pair = b.struct("dt_pair", 16, [(first, typedef, 0), (second, u32, 32), ("name", name_arr, 64),
                                    ("_pad", u8, 112)])
    cv = b.ref(KIND_CONST, b.ref(KIND_VOLATILE, pair))
    var = b.var("cfg", cv)
    b.datasec(".rodata", 24, [(var, 8, 16)])
    return b.bytes()


@pytest.mark.parametrize("reversed_order", [False, True])
def test_fields_are_read_by_name_whatever_their_order(reversed_order):
    obj = ObjectLayout.from_btf(_pair_btf(reversed_order))
    s = obj.struct("dt_pair")
    assert (s.offset("a"), s.offset("b")) == ((4, 0) if reversed_order else (0, 4))
    assert list(s.fields) == (["b", "a", "name", "_pad"] if reversed_order else ["a", "b", "name", "_pad"])
    assert s.field("name") == FieldSpec("name", 8, 6, "bytes")
    buf = s.pack({"a": 1, "b": 2, "name": b"eth0"})  # _pad may be left out
    assert buf[:8] == ((2).to_bytes(4, "little") + (1).to_bytes(4, "little") if reversed_order
                       else (1).to_bytes(4, "little") + (2).to_bytes(4, "little"))
    st_, idx = s.struct(["a", "b"])
    row = st_.unpack(buf[:st_.size])
    assert (row[idx["a"]], row[idx["b"]]) == (1, 2)
    assert s.unpack(buf) == {"a": 1, "b": 2, "name": b"eth0\0\0", "_pad": 0}
    assert obj.variable(".rodata", "cfg") == (8, 16)


def test_btf_type_table_resolves_sizes():
    types = btf.parse(_pair_btf(False))
    assert types.type(0).kind == 0
    pair = types.find("dt_pair", btf.KIND_STRUCT)
    assert pair is not None and [m.name for m in pair.members] == ["a", "b", "name", "_pad"]
    assert types.size_of(pair.members[2].type) == 6  # array of 6 u8
    var = types.find("cfg", btf.KIND_VAR)
    assert types.resolve(var.type) is pair and types.size_of(var.type) == 16
    sec = types.find(".rodata", btf.KIND_DATASEC)
    assert sec.vars == (btf.SecVar(var.id, 8, 16),)
    with pytest.raises(btf.BTFError):
        types.size_of(999)


def test_bitfields_and_signed_ints():
    b = BTFBuilder()
    u32 = b.int("unsigned int", 4)
    s16 = b.int("short", 2, signed=True)
    b.struct("dt_bits", 4, [("lo", u32, (3 << 24) | 0), ("hi", u32, (29 << 24) | 3)], kind_flag=True)
    b.struct("dt_signed", 4, [("x", s16, 0), ("y", u32, 0)], union=True)
    data = b.bytes()
    bits = btf.parse(data).find("dt_bits", btf.KIND_STRUCT)
    assert [(m.bit_offset, m.bitfield_size) for m in bits.members] == [(0, 3), (3, 29)]
    obj = ObjectLayout.from_btf(data)
    with pytest.raises(LayoutError, match="bitfield"):
        obj.struct("dt_bits")
    u = obj.struct("dt_signed")
    assert u.field("x").signed and u.unpack(u.pack({"x": -2}, complete=False))["x"] == -2
    st_, idx = u.struct(["x"])
    assert st_.format == "<h"
    with pytest.raises(LayoutError, match="overlaps"):
        u.struct(["x", "y"])


def test_unreadable_objects_raise_layout_error(tmp_path):
    with pytest.raises(LayoutError, match="cannot read"):
        ObjectLayout.from_file(str(tmp_path / "missing.o"))
    (tmp_path / "x.o").write_bytes(b"not an ELF file at all" * 4)
    with pytest.raises(LayoutError, match="not a readable ELF64 object.*reinstall"):
        layout.load(str(tmp_path / "x.o"))


def _check_readers(data: bytes) -> None:
    try:
        btf.parse(data)
    except btf.BTFError:
        pass
    for reader in (ObjectLayout.from_elf, ObjectLayout.from_btf):
        try:
            obj = reader(data)
            for t in map(obj.btf.type, range(1, len(obj.btf))):
                if t.kind in (btf.KIND_STRUCT, btf.KIND_UNION) and t.name:
                    s = obj.struct(t.name)
                    if s.size < 1 << 16:
                        s.unpack(s.pack({}, complete=False))
                elif t.kind == btf.KIND_DATASEC:
                    for v in t.vars:
                        if 0 < v.type < len(obj.btf):
                            obj.variable(t.name, obj.btf.type(v.type).name)
        except LayoutError:
            pass


@given(st.binary(max_size=600))
def test_readers_reject_random_bytes_cleanly(data):
    _check_readers(data)
    _check_readers(b"\x7fELF\x02\x01\x01" + data)


@given(st.binary(max_size=300))
def test_readers_survive_corrupted_btf(noise):
    blob = bytearray(_pair_btf(True))
    blob[24:24 + len(noise)] = noise[: max(0, len(blob) - 24)]
    _check_readers(bytes(blob))


@needs_obj
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_readers_survive_truncated_or_corrupted_objects(data):
    blob = bytearray(OBJ.read_bytes())
    at = blob.find(b"\x9f\xeb\x01")  # the .BTF section (it precedes .BTF.ext), where damage matters most
    for _ in range(data.draw(st.integers(0, 8))):
        blob[data.draw(st.integers(at, at + 4000))] = data.draw(st.integers(0, 255))
    blob = blob[:data.draw(st.integers(0, len(blob)))]
    _check_readers(bytes(blob))
