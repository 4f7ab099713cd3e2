/* ==== What every feature's BPF object shares =========================
 * The maps user space reads (stats), and the
 * filters that need nothing from the skb's layout: reason and pid. Included
 * once per object. */
#ifndef DROPTRACE_COMMON_BPF_H
#define DROPTRACE_COMMON_BPF_H

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define dt_ntohs(x) __builtin_bswap16(x)
#else
#define dt_ntohs(x) (x)
#endif

/* A field of a kernel struct. tp_btf programs load it directly: their arguments are typed
 * pointers the verifier knows, and a load is one instruction. The others (raw_tp, and
 * pointers read from raw memory) go through bpf_probe_read_kernel, a helper call each, which
 * costs more than the rest of counting a drop. `direct` is a constant at every call site, so
 * the compiler keeps one of the two. */
#define DT_RD(direct, src, field) ((direct) ? (src)->field : BPF_CORE_READ(src, field))

/* `cfg`, the configuration, is the feature's own (its struct begins with DT_SHARED_CONFIG), declared
 * before this header. Never read here: carries the contract's enums and types into this object's BTF. */
const volatile struct dt_contract dt_contract = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_STAT_NUM);
	__type(key, enum dt_stat);
	__type(value, __u64);
} stats SEC(".maps");

/* reason value -> 1, consulted when cfg.reason_mode != DT_REASONS_ALL */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} reason_filter SEC(".maps");

static __always_inline void count(enum dt_stat slot)
{
	__u32 key = slot;
	__u64 *v = bpf_map_lookup_elem(&stats, &key);

	if (v)
		*v += 1;
}

static __always_inline bool reason_wanted(__u32 reason)
{
	if (reason == cfg.skip_reason_a || reason == cfg.skip_reason_b)
		return false;
	if (cfg.reason_mode == DT_REASONS_ALL)
		return true;
	bool listed = bpf_map_lookup_elem(&reason_filter, &reason) != NULL;
	return cfg.reason_mode == DT_REASONS_ONLY ? listed : !listed;
}

static __always_inline bool pid_wanted(__u64 pid_tgid)
{
	return !cfg.pid || (pid_tgid >> 32) == cfg.pid;
}

struct dt_tp_fields {
	void *skb;
	__u64 location;
	__u32 reason;
	__u16 protocol;
};

/* The classic tracepoint's record, read at the offsets of its format file
 * (they differ between kernels: 6.1 has no rx_sk, so reason moves). */
static __always_inline void read_tp_fields(void *ctx, struct dt_tp_fields *f)
{
	bpf_probe_read_kernel(&f->skb, sizeof(f->skb), ctx + cfg.tp_off_skb);
	bpf_probe_read_kernel(&f->location, sizeof(f->location), ctx + cfg.tp_off_location);
	bpf_probe_read_kernel(&f->protocol, sizeof(f->protocol), ctx + cfg.tp_off_protocol);
	if (!cfg.has_reason)
		return;
	if (cfg.tp_size_reason == 2) {
		__u16 r16 = 0;
		bpf_probe_read_kernel(&r16, sizeof(r16), ctx + cfg.tp_off_reason);
		f->reason = r16;
	} else {
		bpf_probe_read_kernel(&f->reason, sizeof(f->reason), ctx + cfg.tp_off_reason);
	}
}

#endif
