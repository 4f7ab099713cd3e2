"""Loading counts.bpf.c: drops counted in a per-CPU hash map in the kernel, read by `top` and the
exporter; nothing crosses the ring buffer per drop."""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple, Union

from ...errors import DroptraceError
from ...kernel import features, libbpf
from ...kernel.tracer import BTF_PATH, Tracer


class CountTracer(Tracer):
    """Counts by reason, location, namespace, device, protocols and (opts.agg_flows) the flow."""

    OBJECTS = ("counts.bpf.o", "counts_noloop.bpf.o")
    CONFIG = "dt_counts_config"
    WHAT = "counting drops in the kernel (top, the exporter)"
    RING = False

    def start(self) -> None:
        if self.opts.filter and self.btf and not features.probe(BTF_PATH).bpf_loop:
            raise DroptraceError("a filter expression cannot be used to count in the kernel here: "
                                 "this kernel has no bpf_loop (5.17+); filter with --reason, "
                                 "--netns, -i, --pid or --mark")
        super().start()

    def _feature_config(self) -> Dict[str, Union[int, bytes]]:
        return {"agg_flows": int(self.opts.agg_flows)}

    def _before_load(self, obj: libbpf.Object) -> None:
        obj.map("agg").set_key_size(self._agg_key_size)

    def aggregates(self) -> List[Tuple[Dict[str, Union[int, bytes]], int, int, str]]:
        """top: (key fields by name, count, bytes, ifname) for every key counted in the kernel."""
        return [(self.aggregate_key(k), *self.aggregate_value(v)) for k, v in self.aggregate_items()]

    @property
    def _agg_key_size(self) -> int:
        """The bytes of struct dt_agg_key the count map hashes: without flows, only its flow-less
        prefix (reason, location, namespace, interface, protocols), a third of the key."""
        key = self.contract.struct("dt_agg_key")
        return key.size if self.opts.agg_flows else key.offset("saddr")

    def aggregate_key(self, raw: bytes) -> Dict[str, Union[int, bytes]]:
        """A raw key of the count map, by field name (a flow-less key reads as zero flow fields)."""
        key = self.contract.struct("dt_agg_key")
        return key.unpack(raw.ljust(key.size, b"\0"))

    def aggregate_items(self) -> Iterator[Tuple[bytes, bytes]]:
        """The raw (key, value) pairs of the in-kernel count map, read in batches; a value holds one
        copy of struct dt_agg_val per possible CPU (the map is per CPU)."""
        if self._obj is None:
            return iter(())
        return self._obj.map("agg").items(self._agg_key_size, self._agg_value_size())

    def _agg_value_size(self) -> int:
        one = (self.contract.struct("dt_agg_val").size + 7) // 8 * 8  # the kernel pads each copy to 8
        return one * libbpf.num_possible_cpus()

    def aggregate_value(self, raw: bytes) -> Tuple[int, int, str]:
        """(count, bytes, ifname) of one raw value of the count map: the CPUs' copies summed."""
        val = self.contract.struct("dt_agg_val")
        step = (val.size + 7) // 8 * 8
        count = nbytes = 0
        ifname = b""
        for at in range(0, len(raw) - val.size + 1, step):
            fields = val.unpack(raw[at:at + val.size])
            count += fields["count"]
            nbytes += fields["bytes"]
            if not ifname and fields["ifname"][:1] != b"\0":
                ifname = fields["ifname"]
        return count, nbytes, ifname.split(b"\0", 1)[0].decode(errors="replace")

    def forget_aggregate(self, raw_key: bytes) -> Optional[Tuple[int, int]]:
        """Delete one key from the count map; its last (count, bytes), or None if it was gone."""
        if self._obj is None:
            return None
        raw = self._obj.map("agg").pop(raw_key, self._agg_value_size())
        return None if raw is None else self.aggregate_value(raw)[:2]

