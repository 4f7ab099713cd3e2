/* ==== tcpdump filters: libpcap's classic BPF, interpreted here ========
 * The expression is compiled in user space by libpcap (twice: for Ethernet
 * frames and for captures that start at the IP header) and loaded into
 * filter_insns. Each drop's headers are copied into a per-CPU scratch event
 * and the program runs over them with bpf_loop, one instruction a step, unless
 * the verdict cache knows the answer: for packets of a class where user space
 * proved which bytes the program reads (cfg.filter_class), the verdict is kept
 * per CPU by those bytes. A drop the filter rejects goes no further: no ring
 * buffer, no count. */
#ifndef DROPTRACE_CBPF_BPF_H
#define DROPTRACE_CBPF_BPF_H

#ifdef DT_NO_BPF_LOOP
/* droptrace_noloop.bpf.o, for kernels before 5.17: no bpf_loop, and their verifiers reject
 * an object that calls it even on a path never taken. User space runs the expression on the
 * copied headers instead (cfg.filter_on stays 0 with this object). */
static __always_inline bool filter_accepts(struct sk_buff *skb, struct net_device *dev, bool direct)
{
	return true;
}
#else

/* Classic BPF opcodes (linux/filter.h, linux/bpf_common.h), named here. */
#define CBPF_CLASS(code) ((code) & 0x07)
#define CBPF_LD 0x00
#define CBPF_LDX 0x01
#define CBPF_ST 0x02
#define CBPF_STX 0x03
#define CBPF_ALU 0x04
#define CBPF_JMP 0x05
#define CBPF_RET 0x06
#define CBPF_MISC 0x07

#define CBPF_SIZE(code) ((code) & 0x18)
#define CBPF_W 0x00
#define CBPF_H 0x08
#define CBPF_B 0x10

#define CBPF_MODE(code) ((code) & 0xe0)
#define CBPF_IMM 0x00
#define CBPF_ABS 0x20
#define CBPF_IND 0x40
#define CBPF_MEM 0x60
#define CBPF_LEN 0x80
#define CBPF_MSH 0xa0

#define CBPF_SRC(code) ((code) & 0x08)
#define CBPF_X 0x08

#define CBPF_OP(code) ((code) & 0xf0)
#define CBPF_ADD 0x00
#define CBPF_SUB 0x10
#define CBPF_MUL 0x20
#define CBPF_DIV 0x30
#define CBPF_OR 0x40
#define CBPF_AND 0x50
#define CBPF_LSH 0x60
#define CBPF_RSH 0x70
#define CBPF_NEG 0x80
#define CBPF_MOD 0x90
#define CBPF_XOR 0xa0

#define CBPF_JA 0x00
#define CBPF_JEQ 0x10
#define CBPF_JGT 0x20
#define CBPF_JGE 0x30
#define CBPF_JSET 0x40

#define CBPF_RVAL(code) ((code) & 0x18)
#define CBPF_RET_K 0x00
#define CBPF_RET_X 0x08
#define CBPF_RET_A 0x10

#define CBPF_MISCOP(code) ((code) & 0xf8)
#define CBPF_TXA 0x80

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * DT_FILTER_MAX);
	__type(key, __u32);
	__type(value, struct dt_insn);
} filter_insns SEC(".maps");

/* The verdict cache's key: the bytes the program may read (the rest masked to 0), then the
 * class, how many bytes were captured, and the length if the program reads it. */
#define FC_WORDS ((DT_FC_FIXED + DT_FC_AFTER) / 8 + 1)
#define FC_SLOTS 64
#define FC_READ_MAX (DT_FC_FIXED > 60 + DT_FC_AFTER ? DT_FC_FIXED : 60 + DT_FC_AFTER)

struct dt_fc_slot {
	__u64 key[FC_WORDS];
	__u64 verdict; /* 0: empty, 1: rejected, 2: accepted */
};

struct dt_fc {
	struct dt_fc_slot slot[FC_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_fc);
} filter_cache SEC(".maps");

struct dt_vm {
	__u32 A, X, pc, ret, len, base, start, stop;
	__u32 M[16];
	__u64 key[FC_WORDS];
	struct dt_event ev;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dt_vm);
} scratch SEC(".maps");

/* A big-endian load of size bytes at off from the filter's start; false when
 * it runs past what was captured (the filter then does not match). */
static __always_inline bool vm_load(struct dt_vm *vm, __u32 off, __u32 size, __u32 *val)
{
	__u32 i = vm->start + off;

	if (off >= DT_SNAP_MAX || i + size > vm->ev.cap_len || i + size > DT_SNAP_MAX)
		return false;
	if (size == 1) {
		*val = vm->ev.data[i & (DT_SNAP_MAX - 1)];
	} else if (size == 2) {
		*val = ((__u32)vm->ev.data[i & (DT_SNAP_MAX - 1)] << 8) |
		       vm->ev.data[(i + 1) & (DT_SNAP_MAX - 1)];
	} else {
		*val = ((__u32)vm->ev.data[i & (DT_SNAP_MAX - 1)] << 24) |
		       ((__u32)vm->ev.data[(i + 1) & (DT_SNAP_MAX - 1)] << 16) |
		       ((__u32)vm->ev.data[(i + 2) & (DT_SNAP_MAX - 1)] << 8) |
		       vm->ev.data[(i + 3) & (DT_SNAP_MAX - 1)];
	}
	return true;
}

static __always_inline int vm_reject(struct dt_vm *vm)
{
	vm->ret = 0;
	return 1; /* stop the loop */
}

static int vm_step(__u32 index, void *unused)
{
	__u32 zero = 0;
	struct dt_vm *vm = bpf_map_lookup_elem(&scratch, &zero);

	if (!vm)
		return 1;
	__u32 idx = vm->base + vm->pc;
	struct dt_insn *in = bpf_map_lookup_elem(&filter_insns, &idx);
	if (!in || vm->pc >= DT_FILTER_MAX)
		return vm_reject(vm);
	__u16 code = in->code;
	__u32 k = in->k, src = CBPF_SRC(code) == CBPF_X ? vm->X : k, val = 0;
	vm->pc++;

	switch (CBPF_CLASS(code)) {
	case CBPF_LD:
	case CBPF_LDX: {
		__u32 mode = CBPF_MODE(code);
		__u32 size = CBPF_SIZE(code) == CBPF_W ? 4 : CBPF_SIZE(code) == CBPF_H ? 2 : 1;
		if (mode == CBPF_IMM) {
			val = k;
		} else if (mode == CBPF_LEN) {
			val = vm->len;
		} else if (mode == CBPF_MEM) {
			val = vm->M[k & 15];
		} else if (mode == CBPF_ABS || mode == CBPF_IND || mode == CBPF_MSH) {
			if (!vm_load(vm, k + (mode == CBPF_IND ? vm->X : 0), size, &val))
				return vm_reject(vm); /* out of the captured bytes: no match */
			if (mode == CBPF_MSH)
				val = (val & 0xf) << 2; /* the IPv4 header length */
		}
		if (CBPF_CLASS(code) == CBPF_LD)
			vm->A = val;
		else
			vm->X = val;
		break;
	}
	case CBPF_ST:
		vm->M[k & 15] = vm->A;
		break;
	case CBPF_STX:
		vm->M[k & 15] = vm->X;
		break;
	case CBPF_ALU:
		switch (CBPF_OP(code)) {
		case CBPF_ADD: vm->A += src; break;
		case CBPF_SUB: vm->A -= src; break;
		case CBPF_MUL: vm->A *= src; break;
		case CBPF_DIV:
			if (!src)
				return vm_reject(vm);
			vm->A /= src;
			break;
		case CBPF_OR: vm->A |= src; break;
		case CBPF_AND: vm->A &= src; break;
		case CBPF_LSH: vm->A = src < 32 ? vm->A << src : 0; break;
		case CBPF_RSH: vm->A = src < 32 ? vm->A >> src : 0; break;
		case CBPF_NEG: vm->A = -vm->A; break;
		case CBPF_MOD:
			if (!src)
				return vm_reject(vm);
			vm->A %= src;
			break;
		case CBPF_XOR: vm->A ^= src; break;
		}
		break;
	case CBPF_JMP: {
		bool taken;
		switch (CBPF_OP(code)) {
		case CBPF_JA: vm->pc += k; return 0;
		case CBPF_JEQ: taken = vm->A == src; break;
		case CBPF_JGT: taken = vm->A > src; break;
		case CBPF_JGE: taken = vm->A >= src; break;
		case CBPF_JSET: taken = (vm->A & src) != 0; break;
		default: return vm_reject(vm);
		}
		vm->pc += taken ? in->jt : in->jf;
		break;
	}
	case CBPF_RET:
		vm->ret = CBPF_RVAL(code) == CBPF_RET_A ? vm->A : CBPF_RVAL(code) == CBPF_RET_X ? vm->X : k;
		vm->stop = 1;
		return 1;
	case CBPF_MISC:
		if (CBPF_MISCOP(code) == CBPF_TXA)
			vm->A = vm->X;
		else
			vm->X = vm->A; /* TAX */
		break;
	}
	return 0;
}

/* The cache slot for the packet in vm, its key left in vm->key; NULL when the packet is of no
 * cached class. Direct-mapped by a hash of the key: one compare of FC_WORDS words to look up. */
static __always_inline struct dt_fc_slot *fc_slot(struct dt_vm *vm)
{
	int c = -1;
	__u32 v;

#pragma unroll
	for (int i = 0; i < DT_FC_CLASSES; i++) {
		if (c < 0 && cfg.filter_class[i].on && (cfg.filter_class[i].raw ? DT_FILTER_MAX : 0) == vm->base &&
		    vm_load(vm, cfg.filter_class[i].off, 2, &v) &&
		    (v & cfg.filter_class[i].mask) == cfg.filter_class[i].value)
			c = i;
	}
	__u32 s = vm->start, x = 0, on;
	if (c < 0 || s > DT_SNAP_MAX - 64 - DT_FC_AFTER) /* the key's bytes are all copied */
		return NULL;
	on = cfg.filter_class[c & 3].on;
	if (vm_load(vm, cfg.filter_class[c & 3].msh, 1, &v))
		x = (v & 0xf) << 2;
	const volatile __u8 *m = cfg.filter_class[c & 3].reads;
	__u64 h = c + 1;
#pragma unroll
	for (int i = 0; i < DT_FC_FIXED / 8; i++) {
		vm->key[i] = *(__u64 *)&vm->ev.data[s + 8 * i] & *(const volatile __u64 *)&m[8 * i];
		h = (h ^ vm->key[i]) * 0x9e3779b97f4a7c15ULL;
	}
#pragma unroll
	for (int i = 0; i < DT_FC_AFTER / 8; i++) {
		vm->key[DT_FC_FIXED / 8 + i] = *(__u64 *)&vm->ev.data[s + x + 8 * i] &
					       *(const volatile __u64 *)&m[DT_FC_FIXED + 8 * i];
		h = (h ^ vm->key[DT_FC_FIXED / 8 + i]) * 0x9e3779b97f4a7c15ULL;
	}
	__u32 avail = vm->ev.cap_len > s ? vm->ev.cap_len - s : 0;
	if (avail > FC_READ_MAX) /* past what any cached program reads: a read cannot fail */
		avail = FC_READ_MAX;
	vm->key[FC_WORDS - 1] = (__u64)c | (__u64)avail << 8 | (__u64)(on & DT_FC_LEN ? vm->len : 0) << 32;
	h = (h ^ vm->key[FC_WORDS - 1]) * 0x9e3779b97f4a7c15ULL;

	__u32 zero = 0;
	struct dt_fc *fc = bpf_map_lookup_elem(&filter_cache, &zero);
	return fc ? &fc->slot[(h >> 40) & (FC_SLOTS - 1)] : NULL;
}

static __always_inline bool fc_hit(struct dt_fc_slot *slot, struct dt_vm *vm)
{
	if (!slot->verdict)
		return false;
#pragma unroll
	for (int i = 0; i < FC_WORDS; i++)
		if (slot->key[i] != vm->key[i])
			return false;
	return true;
}

/* true when the loaded filter accepts this skb (direct: see DT_RD) */
static __always_inline bool filter_accepts(struct sk_buff *skb, struct net_device *dev, bool direct)
{
	__u32 zero = 0;
	struct dt_vm *vm = bpf_map_lookup_elem(&scratch, &zero);

	if (!vm)
		return false;
	copy_headers(&vm->ev, skb, DT_SNAP_MAX, direct);
	__u16 type = dev ? DT_RD(direct, dev, type) : 0xffff;
	__u16 mac = vm->ev.mac_off, net = vm->ev.net_off;
	__u32 n;
	if (mac != DT_OFF_UNSET && (type == 1 || type == 772) &&
	    (net == DT_OFF_UNSET || net >= mac + 14)) {
		vm->base = 0; /* ARPHRD_ETHER or loopback: the Ethernet program */
		vm->start = mac;
		n = cfg.filter_eth_len;
	} else if (net != DT_OFF_UNSET) {
		vm->base = DT_FILTER_MAX;
		vm->start = net;
		n = cfg.filter_raw_len;
	} else {
		return false;
	}
	vm->A = vm->X = vm->pc = vm->ret = vm->stop = 0;
	__builtin_memset(vm->M, 0, sizeof(vm->M));
	vm->len = DT_RD(direct, skb, len) + vm->ev.data_off - vm->start;
	struct dt_fc_slot *slot = fc_slot(vm); /* NULL when no class is cached */
	if (slot && fc_hit(slot, vm))
		return slot->verdict == 2;
	bpf_loop(n > DT_FILTER_MAX ? DT_FILTER_MAX : n, vm_step, NULL, 0);
	bool ok = vm->stop && vm->ret;
	if (slot) {
		__builtin_memcpy(slot->key, vm->key, sizeof(slot->key));
		slot->verdict = ok ? 2 : 1;
	}
	return ok;
}

#endif /* DT_NO_BPF_LOOP */

#endif
