/* ==== The ring buffers, for the features that stream events ===========
 * (drops, trail; counts keeps its counts in a map). Included after common.bpf.h. */
#ifndef DROPTRACE_RING_BPF_H
#define DROPTRACE_RING_BPF_H

/* The events go through one ring buffer per CPU (user space creates them and puts them in `rings`
 * by CPU number, then reads them all with one epoll): a CPU's program reserves in its own ring
 * only, so reservations never wait on another CPU's lock. (One shared ring seemed to fail
 * reservations with room to spare; that was user space tearing the consumer position as it
 * wrote it: kernel/ringbuf.py, BENCHMARKS.md.) A CPU without a ring (hotplugged after start)
 * counts its events as lost. */
struct dt_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16); /* a template: the rings are made by user space, at their size */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* set by user space to the number of possible CPUs */
	__type(key, __u32);
	__array(values, struct dt_ring);
} rings SEC(".maps");

/* This CPU's ring buffer, or NULL. */
static __always_inline void *dt_ring(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rings, &cpu);
}

/* The ring buffer's submit flags for a record of `size` bytes. By default the kernel wakes the
 * reader whenever it had read everything: in a storm, a reader that keeps up is woken for nearly
 * every event, and each wakeup (an irq_work, an interrupt, an IPI to the reader's CPU: exits to
 * the hypervisor in a VM) costs the dropping CPU more than the event itself (measured: 620 ns an
 * event without wakeups, 700-1450 with the default, more when forcing one per event above a
 * mark). With cfg.wake_bytes the reader is woken once, when the queue grows past that mark; it
 * also polls on a short timer, which bounds how late a lone event shows. */
static __always_inline __u64 wake_flags(void *ring, __u64 size, __u64 not_yet_in)
{
	if (!cfg.wake_bytes)
		return 0;
	/* what the ring holds with this record (`not_yet_in` of which it does not hold yet) */
	__u64 queued = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) + not_yet_in;
	return queued >= cfg.wake_bytes && queued < cfg.wake_bytes + size ? BPF_RB_FORCE_WAKEUP
									   : BPF_RB_NO_WAKEUP;
}

/* Commit a record reserved with DT_RESERVE in `ring` (size: what it set), waking the reader as
 * above. */
static __always_inline void dt_submit(void *ring, void *e, __u64 size)
{
	bpf_ringbuf_submit(e, wake_flags(ring, size + 8, 0)); /* and the record's 8-byte header */
}

/* Copy `size` bytes at e into this CPU's ring as one record (waking the reader as above); false
 * if the ring is full or this CPU has none. For records whose length is known only once they
 * are filled in (bpf_ringbuf_reserve() takes a constant size). */
static __always_inline bool dt_output(void *e, __u64 size)
{
	void *ring = dt_ring();

	if (!ring)
		return false;
	return bpf_ringbuf_output(ring, e, size, wake_flags(ring, size + 8, size + 8)) == 0;
}

/* A reservation for one `type` in this CPU's ring buffer (`ring` set to it, for dt_submit; `size`
 * set to the type's size), or NULL: the ring is full, or this CPU has none. */
#define DT_RESERVE(ring, type, size)                                                            \
	({                                                                                      \
		(size) = sizeof(type);                                                          \
		(ring) = dt_ring();                                                             \
		(ring) ? bpf_ringbuf_reserve((ring), sizeof(type), 0) : NULL;                   \
	})

#endif
