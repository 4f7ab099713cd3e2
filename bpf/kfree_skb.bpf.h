/* ==== The drop hook the drops and counts features share ==============
 * skb:kfree_skb in three variants that differ only in how they receive the
 * tracepoint's arguments: tp_btf (typed, preferred), raw_tp (untyped args
 * array) and the classic tracepoint (fields at the offsets the format file
 * gives). User space enables exactly one with bpf_program__set_autoload().
 * The reason travels as its raw enum value: names come from the running
 * kernel's BTF in user space, never from a table here.
 *
 * DT_KFREE_SKB_PROGRAMS(handle) defines the three, each calling the feature's
 * handle(ctx, skb, location, reason, has_reason, direct). drop_wanted() runs
 * the filters in order of cost (reason, namespace, device, pid, mark, then the
 * tcpdump expression). Included after common, capture and cbpf. */
#ifndef DROPTRACE_KFREE_SKB_BPF_H
#define DROPTRACE_KFREE_SKB_BPF_H

/* direct: the skb is a typed pointer (tp_btf), its fields are loaded, not probe-read. Each value
 * is read only once a filter needs it; *netns is the namespace, read on the way. */
static __always_inline bool drop_wanted(struct sk_buff *skb, struct net_device *dev, __u32 reason,
					bool has_reason, bool direct, __u32 *netns)
{
	if (has_reason && !reason_wanted(reason))
		return false;
	*netns = netns_of(dev, skb, direct);
	if (!netns_wanted(*netns))
		return false;
	if (!ifname_wanted(dev))
		return false;
	if (cfg.pid && !pid_wanted(bpf_get_current_pid_tgid()))
		return false;
	if (cfg.mark_on && (DT_RD(direct, skb, mark) & cfg.mark_mask) != cfg.mark)
		return false;
	if (cfg.filter_on && !filter_accepts(skb, dev, direct))
		return false;
	return true;
}

#define DT_KFREE_SKB_PROGRAMS(handle)							\
SEC("tp_btf/kfree_skb")									\
int BPF_PROG(dt_tp_btf, struct sk_buff *skb, void *location)				\
{											\
	/* ctx[2] is the reason; it exists only on kernels >= 5.17 and the		\
	 * verifier skips the read when cfg.has_reason is 0. */				\
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;				\
	return handle(ctx, skb, (__u64)location, reason, cfg.has_reason, true);		\
}											\
											\
SEC("raw_tp/kfree_skb")									\
int BPF_PROG(dt_raw_tp, struct sk_buff *skb, void *location)				\
{											\
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;				\
	return handle(ctx, skb, (__u64)location, reason, cfg.has_reason, false);	\
}											\
											\
SEC("tracepoint/skb/kfree_skb")								\
int dt_tracepoint(void *ctx)								\
{											\
	struct dt_tp_fields f = {};							\
											\
	read_tp_fields(ctx, &f);							\
	if (!f.skb)									\
		return 0;								\
	return handle(ctx, f.skb, f.location, f.reason, cfg.has_reason, false);	\
}

#endif
