/* ==== --rate-limit: at most N events a second =======================
 * Events held back are counted exactly (DT_STAT_SUPPRESSED); the window reset
 * may race between CPUs, which only blurs where one second ends. */
#ifndef DROPTRACE_RATELIMIT_BPF_H
#define DROPTRACE_RATELIMIT_BPF_H

struct dt_rate {
	__u64 second;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_rate);
} rate SEC(".maps");

static __always_inline bool rate_allows(void)
{
	__u32 zero = 0;
	struct dt_rate *r;

	if (!cfg.rate_limit)
		return true;
	r = bpf_map_lookup_elem(&rate, &zero);
	if (!r)
		return true;
	__u64 second = bpf_ktime_get_ns() / 1000000000ULL;
	if (r->second != second) {
		r->second = second;
		r->count = 0;
	}
	/* An add without fetch (BPF_XADD) then a read: kernels before 5.12 have no fetching
	 * atomics. Two CPUs may both pass at the boundary: a second lets through up to one
	 * event per CPU more than the limit. */
	__sync_fetch_and_add(&r->count, 1);
	if (r->count > cfg.rate_limit) {
		count(DT_STAT_SUPPRESSED);
		return false;
	}
	return true;
}

#endif
