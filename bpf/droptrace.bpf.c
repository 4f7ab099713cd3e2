// SPDX-License-Identifier: GPL-2.0
/* droptrace: one event per dropped packet, from the skb:kfree_skb tracepoint.
 *
 * Three programs share one body and differ only in how they receive the
 * tracepoint's arguments: tp_btf (typed, preferred), raw_tp (untyped args
 * array) and the classic tracepoint (fields at the offsets the format file
 * gives). User space enables exactly one with bpf_program__set_autoload().
 * The reason travels as its raw enum value: names come from the running
 * kernel's BTF in user space, never from a table here.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "droptrace.h"

char LICENSE[] SEC("license") = "GPL";

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define dt_ntohs(x) __builtin_bswap16(x)
#else
#define dt_ntohs(x) (x)
#endif

const volatile struct dt_config cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DT_STAT_NUM);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* reason value -> 1, consulted when cfg.reason_mode != DT_REASONS_ALL */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} reason_filter SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

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

static __always_inline __u32 netns_of(struct net_device *dev, struct sk_buff *skb)
{
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

/* Copy the packet from its first known header: MAC, else network, else data. */
static __always_inline void copy_headers(struct dt_event *e, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *data = BPF_CORE_READ(skb, data);
	__u32 mac = BPF_CORE_READ(skb, mac_header);
	__u32 net = BPF_CORE_READ(skb, network_header);
	__u32 tail = BPF_CORE_READ(skb, tail);
	__u32 start;

	if (mac != DT_OFF_UNSET && (net == DT_OFF_UNSET || mac <= net))
		start = mac;
	else if (net != DT_OFF_UNSET)
		start = net;
	else
		start = (__u32)(data - head);

	e->mac_off = mac != DT_OFF_UNSET && mac >= start ? mac - start : DT_OFF_UNSET;
	e->net_off = net != DT_OFF_UNSET && net >= start ? net - start : DT_OFF_UNSET;

	__u32 cap = tail > start ? tail - start : 0;
	if (cap > cfg.snaplen)
		cap = cfg.snaplen;
	if (cap > DT_SNAP_MAX)
		cap = DT_SNAP_MAX;
	e->cap_len = cap;
	if (cap)
		bpf_probe_read_kernel(e->data, cap, head + start);
}

static __always_inline bool ifname_matches(struct net_device *dev)
{
	char name[16] = {};

	if (!dev)
		return false;
	bpf_probe_read_kernel_str(name, sizeof(name), dev->name);
	for (int i = 0; i < 16; i++) {
		if (name[i] != cfg.ifname[i])
			return false;
		if (!name[i])
			break;
	}
	return true;
}

static __always_inline int handle(void *ctx, struct sk_buff *skb, __u64 location,
				  __u32 reason, bool has_reason)
{
	if (has_reason && !reason_wanted(reason))
		return 0;

	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u32 ifindex = dev ? BPF_CORE_READ(dev, ifindex) : BPF_CORE_READ(skb, skb_iif);
	__u32 netns = netns_of(dev, skb);
	__u32 mark = BPF_CORE_READ(skb, mark);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (cfg.netns && netns != cfg.netns)
		return 0;
	if (cfg.ifindex && ifindex != cfg.ifindex)
		return 0;
	if (cfg.ifname_on && !ifname_matches(dev))
		return 0;
	if (cfg.pid && (pid_tgid >> 32) != cfg.pid)
		return 0;
	if (cfg.mark_on && (mark & cfg.mark_mask) != cfg.mark)
		return 0;

	struct dt_event *e;
	if (cfg.want_stack)
		e = bpf_ringbuf_reserve(&events, sizeof(struct dt_event_stack), 0);
	else
		e = bpf_ringbuf_reserve(&events, sizeof(struct dt_event), 0);
	if (!e) {
		count(DT_STAT_LOST);
		return 0;
	}

	e->ts_ns = bpf_ktime_get_ns();
	e->location = location;
	e->reason = reason;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->cpu = bpf_get_smp_processor_id();
	e->len = BPF_CORE_READ(skb, len);
	e->mark = mark;
	e->ifindex = ifindex;
	e->netns = netns;
	e->protocol = dt_ntohs(BPF_CORE_READ(skb, protocol));
	e->flags = has_reason ? DT_F_HAS_REASON : 0;
	e->stack_len = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (dev) {
		e->dev_type = BPF_CORE_READ(dev, type);
		bpf_probe_read_kernel_str(e->ifname, sizeof(e->ifname), dev->name);
	} else {
		e->dev_type = 0xffff;
		e->ifname[0] = 0;
	}
	copy_headers(e, skb);

	if (cfg.want_stack) {
		struct dt_event_stack *es = (void *)e;
		long n = bpf_get_stack(ctx, es->stack, sizeof(es->stack), 0);
		e->stack_len = n > 0 ? n : 0;
	}
	bpf_ringbuf_submit(e, 0);
	count(DT_STAT_EMITTED);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_tp_btf, struct sk_buff *skb, void *location)
{
	/* ctx[2] is the reason; it exists only on kernels >= 5.17 and the
	 * verifier skips the read when cfg.has_reason is 0. */
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return handle(ctx, skb, (__u64)location, reason, cfg.has_reason);
}

SEC("raw_tp/kfree_skb")
int BPF_PROG(dt_raw_tp, struct sk_buff *skb, void *location)
{
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return handle(ctx, skb, (__u64)location, reason, cfg.has_reason);
}

SEC("tracepoint/skb/kfree_skb")
int dt_tracepoint(void *ctx)
{
	struct sk_buff *skb = NULL;
	__u64 location = 0;
	__u32 reason = 0;

	bpf_probe_read_kernel(&skb, sizeof(skb), ctx + cfg.tp_off_skb);
	bpf_probe_read_kernel(&location, sizeof(location), ctx + cfg.tp_off_location);
	if (cfg.has_reason) {
		if (cfg.tp_size_reason == 2) {
			__u16 r16 = 0;
			bpf_probe_read_kernel(&r16, sizeof(r16), ctx + cfg.tp_off_reason);
			reason = r16;
		} else {
			bpf_probe_read_kernel(&reason, sizeof(reason), ctx + cfg.tp_off_reason);
		}
	}
	if (!skb)
		return 0;
	return handle(ctx, skb, location, reason, cfg.has_reason);
}
