/* ==== The drop hook the drops and counts features share ==============
 * skb:kfree_skb in three variants that differ only in how they receive the
 * tracepoint's arguments: tp_btf (typed, preferred), raw_tp (untyped args
 * array) and the classic tracepoint (fields at the offsets the format file
 * gives). User space enables exactly one with bpf_program__set_autoload().
 * The reason travels as its raw enum value: names come from the running
 * kernel's BTF in user space, never from a table here.
 *
 * Each runs the filters in order of cost (reason, namespace, device, pid,
 * mark, then the tcpdump expression) and hands a drop they pass to the
 * feature's handle(), declared here and defined by the feature after this
 * header. Included after common, capture and cbpf. */
#ifndef DROPTRACE_KFREE_SKB_BPF_H
#define DROPTRACE_KFREE_SKB_BPF_H

/* The feature's: a drop the filters passed, with what they read on the way. direct: the skb is a
 * typed pointer (tp_btf), its fields are loaded, not probe-read. */
static __always_inline int handle(void *ctx, struct sk_buff *skb, struct net_device *dev, __u64 location,
				  __u32 reason, bool has_reason, __u32 netns, __u32 ifindex, bool direct);

/* Each value is read only once a filter or the feature needs it. */
static __always_inline int dt_kfree_skb(void *ctx, struct sk_buff *skb, __u64 location, __u32 reason,
					bool has_reason, bool direct)
{
	if (has_reason && !reason_wanted(reason))
		return 0;
	struct net_device *dev = DT_RD(direct, skb, dev);
	__u32 netns = netns_of(dev, skb, direct);

	if (!netns_wanted(netns))
		return 0;
	if (!ifname_wanted(dev))
		return 0;
	if (cfg.pid && !pid_wanted(bpf_get_current_pid_tgid()))
		return 0;
	if (cfg.mark_on && (DT_RD(direct, skb, mark) & cfg.mark_mask) != cfg.mark)
		return 0;
	if (cfg.filter_on && !filter_accepts(skb, dev, direct))
		return 0;
	__u32 ifindex = dev ? DT_RD(direct, dev, ifindex) : DT_RD(direct, skb, skb_iif);
	return handle(ctx, skb, dev, location, reason, has_reason, netns, ifindex, direct);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(dt_tp_btf, struct sk_buff *skb, void *location)
{
	/* ctx[2] is the reason; it exists only on kernels >= 5.17 and the
	 * verifier skips the read when cfg.has_reason is 0. */
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return dt_kfree_skb(ctx, skb, (__u64)location, reason, cfg.has_reason, true);
}

SEC("raw_tp/kfree_skb")
int BPF_PROG(dt_raw_tp, struct sk_buff *skb, void *location)
{
	__u32 reason = cfg.has_reason ? (__u32)ctx[2] : 0;
	return dt_kfree_skb(ctx, skb, (__u64)location, reason, cfg.has_reason, false);
}

SEC("tracepoint/skb/kfree_skb")
int dt_tracepoint(void *ctx)
{
	struct dt_tp_fields f = {};

	read_tp_fields(ctx, &f);
	if (!f.skb)
		return 0;
	return dt_kfree_skb(ctx, f.skb, f.location, f.reason, cfg.has_reason, false);
}

#endif
