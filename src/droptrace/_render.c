/* droptrace._render: raw ring-buffer records to output bytes, one batch per call.
 *
 * Why: in a drop storm, building a bytes object and an Event per record in
 * Python costs more than the kernel takes to drop the packet. Here a batch
 * is read straight from the ring buffer's memory and rendered into one bytes
 * object. C knows no output format and no struct layout: Python passes the
 * layout (read from the BPF object's BTF) and, per static key (the record
 * minus what changes per packet, computed exactly as Converter._key does), a
 * Template: literal bytes with typed holes for the per-packet values. A key
 * C has no template for goes to Python (`miss`), which renders that record
 * itself and may leave a template for the next ones. Every Python path stays
 * the reference: the unit tests compare both byte for byte.
 *
 * The ring layout is the kernel's (kernel/bpf/ringbuf.c), as described in
 * kernel/ringbuf.py: the producer position at the start of the data mapping,
 * the data area after one page, mapped twice so a wrapping record is
 * contiguous; each record an 8-byte header whose length word carries BUSY
 * and DISCARD bits, records 8-byte aligned.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NSLOT 4          /* renderings of comm and of the stack (one per output format) */
#define MAXDEPTH 4       /* nesting of length-prefixed regions (pcapng block, option) */
#define CACHE_MAX 8192   /* entries of each comm/stack cache before it is cleared */
#define MAX_PAD 4096     /* widest column a template may ask for */
#define SHRINK_ABOVE (16 << 20)  /* output buffer kept between calls up to this size */
#define RB_BUSY (1u << 31)
#define RB_DISCARD (1u << 30)

enum {
    OP_LIT,         /* literal bytes */
    OP_ISO,         /* ISO-8601 time: second prefix (cached, from `iso`), .microseconds, UTC offset */
    OP_CLOCK,       /* HH:MM:SS (cached, from `clock`) .milliseconds, left-justified to a width */
    OP_UINT,        /* (offset, size, width): an unsigned field in decimal, left-justified */
    OP_ORIG,        /* (captured, has_skb): pcapng original length, u32 LE */
    OP_TS_US,       /* pcapng timestamp: microseconds as two u32 LE, high word first */
    OP_DATA,        /* (n): the first n captured bytes, zero-padded to 4 */
    OP_COMM,        /* (slot): the task name, rendered by the slot's callback (cached) */
    OP_STACK,       /* (slot): the stack, rendered by the slot's callback (cached) */
    OP_OPT_BEGIN,   /* (code): a pcapng option; its length is filled in by OP_OPT_END */
    OP_OPT_END,
    OP_BLOCK_BEGIN, /* (type): a pcapng block; its total length is filled in by OP_BLOCK_END */
    OP_BLOCK_END,
    OP_COUNT
};

typedef struct {
    Py_ssize_t off, size;
} Field;

typedef struct {
    int op;
    const char *lit;
    Py_ssize_t n, a, b, c;
} Op;

typedef struct {
    PyObject_VAR_HEAD
    PyObject *keep;     /* the literal bytes objects the ops point into */
    void *owner;        /* the Renderer that checked it (never dereferenced) */
    Op ops[1];
} Template;

static PyTypeObject TemplateType;

typedef struct {
    PyObject_HEAD
    Py_ssize_t sizes[2];
    int nsizes;
    Py_ssize_t min_size, data_at, snap_area;
    Field ts, plen, data_off, cap_len, net_off, stack_len, comm, stack;  /* plen: skb->len */
    Py_ssize_t nranges;
    Py_ssize_t *ranges;     /* (start, end) pairs of the keyed header bytes */
    Py_ssize_t key_max;
    int64_t offset_ns;      /* monotonic to wall clock */
    PyObject *templates, *miss, *iso, *clock;
    PyObject *comm_cb[NSLOT], *stack_cb[NSLOT];
    PyObject *comm_cache[NSLOT], *stack_cache[NSLOT];
    unsigned char *key, *memo_key;
    unsigned char *pad;     /* a trimmed record, zero-padded to min_size */
    Py_ssize_t memo_len;
    PyObject *memo_tpl;
    int iso_ok, clock_ok;
    uint64_t iso_sec, clock_sec;
    PyObject *iso_prefix, *iso_tz, *clock_text;
    unsigned char *comm_memo[NSLOT], *stack_memo[NSLOT];
    Py_ssize_t stack_memo_len[NSLOT];
    PyObject *comm_val[NSLOT], *stack_val[NSLOT];
    char *buf;
    Py_ssize_t len, cap;
    int busy;
} Renderer;

/* -- small helpers ------------------------------------------------------ */

static inline uint64_t rd(const unsigned char *p, Field f)
{
    p += f.off;
    switch (f.size) {
    case 1: return p[0];
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static int grow(Renderer *r, Py_ssize_t need)
{
    Py_ssize_t cap = r->cap ? r->cap : 65536;
    while (cap < r->len + need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *b = PyMem_Realloc(r->buf, cap);
    if (b == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    r->buf = b;
    r->cap = cap;
    return 0;
}

static inline int reserve(Renderer *r, Py_ssize_t n)
{
    return r->len + n <= r->cap ? 0 : grow(r, n);
}

static inline int put(Renderer *r, const void *p, Py_ssize_t n)
{
    if (reserve(r, n) < 0)
        return -1;
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

static inline int put_bytes(Renderer *r, PyObject *b)
{
    return put(r, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
}

static inline int fill(Renderer *r, char c, Py_ssize_t n)
{
    if (n <= 0)
        return 0;
    if (reserve(r, n) < 0)
        return -1;
    memset(r->buf + r->len, c, n);
    r->len += n;
    return 0;
}

static inline void le16_at(char *p, uint32_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
}

static inline void le32_at(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)((v >> (8 * i)) & 0xff);
}

static inline int put_le32(Renderer *r, uint32_t v)
{
    if (reserve(r, 4) < 0)
        return -1;
    le32_at(r->buf + r->len, v);
    r->len += 4;
    return 0;
}

/* digits of v, at least `min` of them (zero-filled) */
static inline int put_dec(Renderer *r, uint64_t v, int min)
{
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v || 24 - i < min);
    return put(r, tmp + i, 24 - i);
}

/* characters (not bytes) of UTF-8 text: Python pads by characters */
static Py_ssize_t chars(const char *p, Py_ssize_t n)
{
    Py_ssize_t c = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

static uint64_t load_u64(const unsigned char *p)
{
    if (((uintptr_t)p & 7) == 0)
        return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
    uint64_t v;
    memcpy(&v, p, 8);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return v;
}

static uint32_t load_u32(const unsigned char *p)
{
    if (((uintptr_t)p & 3) == 0)
        return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);
    uint32_t v;
    memcpy(&v, p, 4);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return v;
}

/* -- Template ------------------------------------------------------------ */

static void Template_dealloc(Template *t)
{
    Py_XDECREF(t->keep);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyTypeObject TemplateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "droptrace._render.Template",
    .tp_basicsize = offsetof(Template, ops),
    .tp_itemsize = sizeof(Op),
    .tp_dealloc = (destructor)Template_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One static key's output: literal bytes and per-packet holes (made by Renderer.template).",
};

/* -- Renderer: construction ---------------------------------------------- */

static int field_arg(PyObject *o, Field *f, const char *name)
{
    if (!PyArg_ParseTuple(o, "nn;a field is (offset, size)", &f->off, &f->size))
        return -1;
    if (f->off < 0 || (f->size != 1 && f->size != 2 && f->size != 4 && f->size != 8)) {
        PyErr_Format(PyExc_ValueError, "field %s: bad offset or size", name);
        return -1;
    }
    return 0;
}

static int callbacks_arg(PyObject *o, PyObject **out, const char *what)
{
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) > NSLOT) {
        PyErr_Format(PyExc_TypeError, "%s: a tuple of at most %d callables or None", what, NSLOT);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(o); i++) {
        PyObject *cb = PyTuple_GET_ITEM(o, i);
        if (cb == Py_None)
            continue;
        if (!PyCallable_Check(cb)) {
            PyErr_Format(PyExc_TypeError, "%s[%zd] is not callable", what, i);
            return -1;
        }
        Py_INCREF(cb);
        out[i] = cb;
    }
    return 0;
}

static int Renderer_init(Renderer *r, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"sizes", "data_at", "snap_area", "ts", "len", "data_off", "cap_len",
                             "net_off", "stack_len", "comm", "stack", "keyed", "offset_ns", "templates",
                             "miss", "iso", "clock", "comm_cbs", "stack_cbs", NULL};
    PyObject *sizes, *ts, *len, *data_off, *cap_len, *net_off, *stack_len, *comm, *stack, *keyed;
    PyObject *templates, *miss, *iso, *clock, *comm_cbs, *stack_cbs;
    long long offset_ns;
    if (r->ranges != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Renderer is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OnnOOOOOOOOOLO!OOOOO", kwlist, &sizes, &r->data_at,
                                     &r->snap_area, &ts, &len, &data_off, &cap_len, &net_off, &stack_len,
                                     &comm, &stack, &keyed, &offset_ns, &PyDict_Type, &templates, &miss,
                                     &iso, &clock, &comm_cbs, &stack_cbs))
        return -1;
    r->offset_ns = offset_ns;
    if (!PyTuple_Check(sizes) || PyTuple_GET_SIZE(sizes) < 1 || PyTuple_GET_SIZE(sizes) > 2) {
        PyErr_SetString(PyExc_TypeError, "sizes: a tuple of one or two record sizes");
        return -1;
    }
    r->nsizes = (int)PyTuple_GET_SIZE(sizes);
    r->min_size = PY_SSIZE_T_MAX;
    for (int i = 0; i < r->nsizes; i++) {
        r->sizes[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(sizes, i));
        if (r->sizes[i] == -1 && PyErr_Occurred())
            return -1;
        if (r->sizes[i] <= 0) {
            PyErr_SetString(PyExc_ValueError, "sizes must be positive");
            return -1;
        }
        if (r->sizes[i] < r->min_size)
            r->min_size = r->sizes[i];
    }
    if (field_arg(ts, &r->ts, "ts") < 0 || field_arg(len, &r->plen, "len") < 0 ||
        field_arg(data_off, &r->data_off, "data_off") < 0 || field_arg(cap_len, &r->cap_len, "cap_len") < 0 ||
        field_arg(net_off, &r->net_off, "net_off") < 0 || field_arg(stack_len, &r->stack_len, "stack_len") < 0)
        return -1;
    if (!PyArg_ParseTuple(comm, "nn;comm is (offset, size)", &r->comm.off, &r->comm.size) ||
        !PyArg_ParseTuple(stack, "nn;stack is (offset, size)", &r->stack.off, &r->stack.size))
        return -1;
    Field scalars[] = {r->ts, r->plen, r->data_off, r->cap_len, r->net_off, r->stack_len, r->comm};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        if (scalars[i].off < 0 || scalars[i].size < 0 || scalars[i].off + scalars[i].size > r->min_size) {
            PyErr_SetString(PyExc_ValueError, "a field lies outside the record");
            return -1;
        }
    }
    if (r->stack.off < 0 || r->stack.size < 0 || r->data_at < 0 || r->snap_area < 0 ||
        r->data_at + r->snap_area > r->min_size) {
        PyErr_SetString(PyExc_ValueError, "the stack or data area lies outside the record");
        return -1;
    }
    PyObject *fast = PySequence_Fast(keyed, "keyed: a sequence of (start, end)");
    if (fast == NULL)
        return -1;
    r->nranges = PySequence_Fast_GET_SIZE(fast);
    r->ranges = PyMem_Calloc(2 * r->nranges + 1, sizeof(Py_ssize_t));
    if (r->ranges == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t head = 0;
    for (Py_ssize_t i = 0; i < r->nranges; i++) {
        Py_ssize_t a, b;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "nn;keyed: (start, end)", &a, &b)) {
            Py_DECREF(fast);
            return -1;
        }
        if (a < 0 || b < a || b > r->min_size) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "a keyed range lies outside the record");
            return -1;
        }
        r->ranges[2 * i] = a;
        r->ranges[2 * i + 1] = b;
        head += b - a;
    }
    Py_DECREF(fast);
    r->key_max = head + r->snap_area;
    r->key = PyMem_Malloc(r->key_max + 1);
    r->memo_key = PyMem_Malloc(r->key_max + 1);
    r->pad = PyMem_Malloc(r->min_size);
    if (r->key == NULL || r->memo_key == NULL || r->pad == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < NSLOT; i++) {
        r->comm_memo[i] = PyMem_Malloc(r->comm.size + 1);
        r->stack_memo[i] = PyMem_Malloc(r->stack.size + 1);
        r->comm_cache[i] = PyDict_New();
        r->stack_cache[i] = PyDict_New();
        if (!r->comm_memo[i] || !r->stack_memo[i] || !r->comm_cache[i] || !r->stack_cache[i]) {
            PyErr_NoMemory();
            return -1;
        }
    }
    if (!PyCallable_Check(miss) || (iso != Py_None && !PyCallable_Check(iso)) ||
        (clock != Py_None && !PyCallable_Check(clock))) {
        PyErr_SetString(PyExc_TypeError, "miss, iso and clock must be callable (iso, clock: or None)");
        return -1;
    }
    Py_INCREF(templates);
    r->templates = templates;
    Py_INCREF(miss);
    r->miss = miss;
    if (iso != Py_None) {
        Py_INCREF(iso);
        r->iso = iso;
    }
    if (clock != Py_None) {
        Py_INCREF(clock);
        r->clock = clock;
    }
    if (callbacks_arg(comm_cbs, r->comm_cb, "comm_cbs") < 0 ||
        callbacks_arg(stack_cbs, r->stack_cb, "stack_cbs") < 0)
        return -1;
    return 0;
}

static void forget(Renderer *r)
{
    Py_CLEAR(r->memo_tpl);
    r->memo_len = 0;
    for (int i = 0; i < NSLOT; i++) {
        Py_CLEAR(r->comm_val[i]);
        Py_CLEAR(r->stack_val[i]);
    }
    Py_CLEAR(r->iso_prefix);
    Py_CLEAR(r->iso_tz);
    Py_CLEAR(r->clock_text);
    r->iso_ok = r->clock_ok = 0;
}

static int Renderer_traverse(Renderer *r, visitproc visit, void *arg)
{
    Py_VISIT(r->templates);
    Py_VISIT(r->miss);
    Py_VISIT(r->iso);
    Py_VISIT(r->clock);
    Py_VISIT(r->memo_tpl);
    for (int i = 0; i < NSLOT; i++) {
        Py_VISIT(r->comm_cb[i]);
        Py_VISIT(r->stack_cb[i]);
        Py_VISIT(r->comm_cache[i]);
        Py_VISIT(r->stack_cache[i]);
    }
    return 0;
}

static int Renderer_clear(Renderer *r)
{
    forget(r);
    Py_CLEAR(r->templates);
    Py_CLEAR(r->miss);
    Py_CLEAR(r->iso);
    Py_CLEAR(r->clock);
    for (int i = 0; i < NSLOT; i++) {
        Py_CLEAR(r->comm_cb[i]);
        Py_CLEAR(r->stack_cb[i]);
        Py_CLEAR(r->comm_cache[i]);
        Py_CLEAR(r->stack_cache[i]);
    }
    return 0;
}

static void Renderer_dealloc(Renderer *r)
{
    PyObject_GC_UnTrack(r);
    Renderer_clear(r);
    PyMem_Free(r->ranges);
    PyMem_Free(r->key);
    PyMem_Free(r->memo_key);
    PyMem_Free(r->pad);
    for (int i = 0; i < NSLOT; i++) {
        PyMem_Free(r->comm_memo[i]);
        PyMem_Free(r->stack_memo[i]);
    }
    PyMem_Free(r->buf);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static int initialised(Renderer *r)
{
    if (r->ranges == NULL || r->templates == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Renderer is not initialised");
        return -1;
    }
    return 0;
}

/* initialised, and not rendering already (its buffer and memos are in use) */
static int ready(Renderer *r)
{
    if (initialised(r) < 0)
        return -1;
    if (r->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Renderer called again from one of its callbacks");
        return -1;
    }
    return 0;
}

/* -- Renderer.template ---------------------------------------------------- */

static PyObject *Renderer_template(Renderer *r, PyObject *items)
{
    if (initialised(r) < 0)
        return NULL;
    PyObject *keep = PySequence_Tuple(items);  /* immutable: the ops point into its bytes */
    if (keep == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(keep);
    Template *t = PyObject_NewVar(Template, &TemplateType, n ? n : 1);
    if (t == NULL) {
        Py_DECREF(keep);
        return NULL;
    }
    t->keep = keep;
    t->owner = r;
    Py_SET_SIZE(t, n);
    char kinds[MAXDEPTH];
    int depth = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyTuple_GET_ITEM(keep, i);
        Op *o = &t->ops[i];
        memset(o, 0, sizeof *o);
        if (PyBytes_Check(it)) {
            o->op = OP_LIT;
            o->lit = PyBytes_AS_STRING(it);
            o->n = PyBytes_GET_SIZE(it);
            continue;
        }
        int op;
        Py_ssize_t a = 0, b = 0, c = 0;
        if (!PyTuple_Check(it)) {
            PyErr_Format(PyExc_TypeError, "template item %zd: an item is bytes or (op, args...)", i);
            goto bad;
        }
        if (!PyArg_ParseTuple(it, "i|nnn;an item is bytes or (op, args...)", &op, &a, &b, &c))
            goto bad;
        o->op = op;
        o->a = a;
        o->b = b;
        o->c = c;
        const char *why = NULL;
        switch (op) {
        case OP_ISO:
            if (r->iso == NULL)
                why = "no iso callback";
            break;
        case OP_CLOCK:
            if (r->clock == NULL)
                why = "no clock callback";
            else if (a < 0 || a > MAX_PAD)
                why = "bad width";
            break;
        case OP_UINT:
            if (a < 0 || (b != 1 && b != 2 && b != 4 && b != 8) || a + b > r->min_size || c < 0 || c > MAX_PAD)
                why = "bad field or width";
            break;
        case OP_ORIG:
            if (a < 0 || a > r->snap_area)
                why = "bad captured length";
            break;
        case OP_TS_US:
            break;
        case OP_DATA:
            if (a < 0 || a > r->snap_area)
                why = "bad data length";
            break;
        case OP_COMM:
            if (a < 0 || a >= NSLOT || r->comm_cb[a] == NULL)
                why = "no such comm slot";
            break;
        case OP_STACK:
            if (a < 0 || a >= NSLOT || r->stack_cb[a] == NULL)
                why = "no such stack slot";
            break;
        case OP_OPT_BEGIN:
        case OP_BLOCK_BEGIN:
            if (depth == MAXDEPTH)
                why = "regions nest too deeply";
            else if (a < 0 || a > (op == OP_OPT_BEGIN ? 0xffff : 0xffffffffLL))
                why = "bad code";
            else
                kinds[depth++] = (char)op;
            break;
        case OP_OPT_END:
        case OP_BLOCK_END:
            if (depth == 0 || kinds[depth - 1] != (op == OP_OPT_END ? OP_OPT_BEGIN : OP_BLOCK_BEGIN))
                why = "an end without its begin";
            else
                depth--;
            break;
        default:
            why = "unknown op";
        }
        if (why != NULL) {
            PyErr_Format(PyExc_ValueError, "template item %zd: %s", i, why);
            goto bad;
        }
    }
    if (depth != 0) {
        PyErr_SetString(PyExc_ValueError, "template: a region is not closed");
        goto bad;
    }
    return (PyObject *)t;
bad:
    Py_DECREF(t);
    return NULL;
}

/* -- rendering one record ------------------------------------------------- */

/* The static key, as Converter._key: the keyed header bytes, then the captured bytes
 * without the IPv4 ID and header checksum. */
static Py_ssize_t make_key(Renderer *r, const unsigned char *rec)
{
    unsigned char *k = r->key;
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < r->nranges; i++) {
        Py_ssize_t a = r->ranges[2 * i], b = r->ranges[2 * i + 1];
        memcpy(k + n, rec + a, b - a);
        n += b - a;
    }
    Py_ssize_t at = r->data_at;
    uint64_t cap = rd(rec, r->cap_len);
    Py_ssize_t end = at + (cap < (uint64_t)r->snap_area ? (Py_ssize_t)cap : r->snap_area);
    Py_ssize_t ip = at + (Py_ssize_t)rd(rec, r->net_off);
    if (ip + 12 < end && rec[ip] >> 4 == 4) {
        memcpy(k + n, rec + at, ip + 4 - at);
        n += ip + 4 - at;
        memcpy(k + n, rec + ip + 6, 4);
        n += 4;
        memcpy(k + n, rec + ip + 12, end - ip - 12);
        n += end - ip - 12;
    } else {
        memcpy(k + n, rec + at, end - at);
        n += end - at;
    }
    return n;
}

/* Python renders this record (and may leave a template under key); its bytes are appended. */
static int python(Renderer *r, const unsigned char *rec, Py_ssize_t n, PyObject *key)
{
    PyObject *raw = PyBytes_FromStringAndSize((const char *)rec, n);
    if (raw == NULL)
        return -1;
    PyObject *res = PyObject_CallFunctionObjArgs(r->miss, raw, key ? key : Py_None, NULL);
    Py_DECREF(raw);
    Py_CLEAR(r->memo_tpl);  /* the callback may have cleared or replaced templates */
    r->memo_len = 0;
    if (res == NULL)
        return -1;
    if (!PyBytes_Check(res)) {
        PyErr_Format(PyExc_TypeError, "miss returned %.80s, not bytes", Py_TYPE(res)->tp_name);
        Py_DECREF(res);
        return -1;
    }
    int rc = put_bytes(r, res);
    Py_DECREF(res);
    return rc;
}

/* A cached rendering of `n` bytes at p through callback cb: memo of the last, then dict. */
static PyObject *cached(const unsigned char *p, Py_ssize_t n, unsigned char *memo, Py_ssize_t *memo_len,
                        PyObject **val, PyObject *cache, PyObject *cb)
{
    if (*val != NULL && *memo_len == n && memcmp(memo, p, n) == 0)
        return *val;
    PyObject *key = PyBytes_FromStringAndSize((const char *)p, n);
    if (key == NULL)
        return NULL;
    PyObject *v = PyDict_GetItemWithError(cache, key);
    if (v != NULL) {
        Py_INCREF(v);
    } else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    } else {
        v = PyObject_CallOneArg(cb, key);
        if (v != NULL && !PyBytes_Check(v)) {
            PyErr_Format(PyExc_TypeError, "a rendering callback returned %.80s, not bytes",
                         Py_TYPE(v)->tp_name);
            Py_CLEAR(v);
        }
        if (v != NULL) {
            if (PyDict_GET_SIZE(cache) >= CACHE_MAX)
                PyDict_Clear(cache);
            if (PyDict_SetItem(cache, key, v) < 0)
                Py_CLEAR(v);
        }
    }
    Py_DECREF(key);
    if (v == NULL)
        return NULL;
    memcpy(memo, p, n);
    *memo_len = n;
    Py_XSETREF(*val, v);
    return v;
}

static int second_text(PyObject *cb, uint64_t sec, PyObject **a, PyObject **b)
{
    PyObject *s = PyLong_FromUnsignedLongLong(sec);
    if (s == NULL)
        return -1;
    PyObject *res = PyObject_CallOneArg(cb, s);
    Py_DECREF(s);
    if (res == NULL)
        return -1;
    if (b == NULL) {
        if (!PyBytes_Check(res)) {
            Py_DECREF(res);
            PyErr_SetString(PyExc_TypeError, "clock must return bytes");
            return -1;
        }
        Py_XSETREF(*a, res);
        return 0;
    }
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(res, 0)) ||
        !PyBytes_Check(PyTuple_GET_ITEM(res, 1))) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "iso must return (bytes, bytes)");
        return -1;
    }
    Py_INCREF(PyTuple_GET_ITEM(res, 0));
    Py_XSETREF(*a, PyTuple_GET_ITEM(res, 0));
    Py_INCREF(PyTuple_GET_ITEM(res, 1));
    Py_XSETREF(*b, PyTuple_GET_ITEM(res, 1));
    Py_DECREF(res);
    return 0;
}

/* 0: rendered; 1: this record needs Python (the caller rolls back); -1: error */
static int run(Renderer *r, Template *t, const unsigned char *rec, Py_ssize_t n, uint64_t wall)
{
    Py_ssize_t open[MAXDEPTH];
    int depth = 0;
    for (Py_ssize_t i = 0; i < Py_SIZE(t); i++) {
        const Op *o = &t->ops[i];
        switch (o->op) {
        case OP_LIT:
            if (put(r, o->lit, o->n) < 0)
                return -1;
            break;
        case OP_ISO: {
            uint64_t sec = wall / 1000000000u;
            if (!r->iso_ok || sec != r->iso_sec) {
                r->iso_ok = 0;
                if (second_text(r->iso, sec, &r->iso_prefix, &r->iso_tz) < 0)
                    return -1;
                r->iso_sec = sec;
                r->iso_ok = 1;
            }
            if (put_bytes(r, r->iso_prefix) < 0 || put(r, ".", 1) < 0 ||
                put_dec(r, (wall % 1000000000u) / 1000u, 6) < 0 || put_bytes(r, r->iso_tz) < 0)
                return -1;
            break;
        }
        case OP_CLOCK: {
            uint64_t sec = wall / 1000000000u;
            if (!r->clock_ok || sec != r->clock_sec) {
                r->clock_ok = 0;
                if (second_text(r->clock, sec, &r->clock_text, NULL) < 0)
                    return -1;
                r->clock_sec = sec;
                r->clock_ok = 1;
            }
            Py_ssize_t start = r->len;
            if (put_bytes(r, r->clock_text) < 0 || put(r, ".", 1) < 0 ||
                put_dec(r, (wall / 1000000u) % 1000u, 3) < 0)
                return -1;
            if (fill(r, ' ', o->a - chars(r->buf + start, r->len - start)) < 0)
                return -1;
            break;
        }
        case OP_UINT: {
            Py_ssize_t start = r->len;
            if (put_dec(r, rd(rec, (Field){o->a, o->b}), 1) < 0 || fill(r, ' ', o->c - (r->len - start)) < 0)
                return -1;
            break;
        }
        case OP_ORIG: {
            uint64_t v = (uint64_t)o->a;
            if (o->b) {
                uint64_t w = rd(rec, r->plen) + rd(rec, r->data_off);
                if (w > v)
                    v = w;
            }
            if (v > 0xffffffffu)
                return 1;
            if (put_le32(r, (uint32_t)v) < 0)
                return -1;
            break;
        }
        case OP_TS_US: {
            uint64_t us = wall / 1000u;
            if (put_le32(r, (uint32_t)(us >> 32)) < 0 || put_le32(r, (uint32_t)us) < 0)
                return -1;
            break;
        }
        case OP_DATA:
            if (put(r, rec + r->data_at, o->a) < 0 || fill(r, 0, (-o->a) & 3) < 0)
                return -1;
            break;
        case OP_COMM: {
            Py_ssize_t dummy = r->comm.size;
            PyObject *v = cached(rec + r->comm.off, r->comm.size, r->comm_memo[o->a], &dummy,
                                 &r->comm_val[o->a], r->comm_cache[o->a], r->comm_cb[o->a]);
            if (v == NULL || put_bytes(r, v) < 0)
                return -1;
            break;
        }
        case OP_STACK: {
            Py_ssize_t k = 0;
            if (n >= r->stack.off + r->stack.size) {
                uint64_t sl = rd(rec, r->stack_len);
                k = sl < (uint64_t)r->stack.size ? (Py_ssize_t)sl : r->stack.size;
            }
            PyObject *v = cached(rec + r->stack.off, k, r->stack_memo[o->a], &r->stack_memo_len[o->a],
                                 &r->stack_val[o->a], r->stack_cache[o->a], r->stack_cb[o->a]);
            if (v == NULL || put_bytes(r, v) < 0)
                return -1;
            break;
        }
        case OP_OPT_BEGIN:
        case OP_BLOCK_BEGIN:
            open[depth++] = r->len;
            if (reserve(r, 8) < 0)
                return -1;
            if (o->op == OP_OPT_BEGIN) {
                le16_at(r->buf + r->len, (uint32_t)o->a);
                le16_at(r->buf + r->len + 2, 0);
                r->len += 4;
            } else {
                le32_at(r->buf + r->len, (uint32_t)o->a);
                le32_at(r->buf + r->len + 4, 0);
                r->len += 8;
            }
            break;
        case OP_OPT_END: {
            Py_ssize_t at = open[--depth], value = r->len - at - 4;
            if (value > 0xffff)
                return 1;  /* struct.pack("<H") refuses it: Python says so */
            le16_at(r->buf + at + 2, (uint32_t)value);
            if (fill(r, 0, (-value) & 3) < 0)
                return -1;
            break;
        }
        case OP_BLOCK_END: {
            Py_ssize_t at = open[--depth], total = r->len - at + 4;
            if ((uint64_t)total > 0xffffffffu)
                return 1;
            le32_at(r->buf + at + 4, (uint32_t)total);
            if (put_le32(r, (uint32_t)total) < 0)
                return -1;
            break;
        }
        }
    }
    return 0;
}

/* A record BPF trimmed to its packet (drops.bpf.c), n bytes from data_at to below min_size: its
 * copy zero-padded to min_size, as Python reads it. */
static const unsigned char *padded(Renderer *r, const unsigned char *rec, Py_ssize_t n)
{
    memcpy(r->pad, rec, n);
    memset(r->pad + n, 0, r->min_size - n);
    return r->pad;
}

static int render_one(Renderer *r, const unsigned char *rec, Py_ssize_t n)
{
    int sized = 0;
    for (int i = 0; i < r->nsizes; i++)
        sized |= n == r->sizes[i];
    if (!sized && n >= r->data_at && n < r->min_size) {
        rec = padded(r, rec, n);
        n = r->min_size;
        sized = 1;
    }
    if (!sized)  /* a record this object does not write: Python decides (it refuses it) */
        return python(r, rec, n, NULL);
    uint64_t ts = rd(rec, r->ts), wall;
    if (r->offset_ns >= 0 ? ts > UINT64_MAX - (uint64_t)r->offset_ns : ts < (uint64_t)(-(r->offset_ns + 1)) + 1)
        return python(r, rec, n, NULL);  /* a wall clock outside 0..2**64: Python's integers */
    wall = ts + (uint64_t)r->offset_ns;
    Py_ssize_t klen = make_key(r, rec);
    PyObject *tpl = r->memo_tpl;
    if (tpl == NULL || klen != r->memo_len || memcmp(r->key, r->memo_key, klen) != 0) {
        PyObject *key = PyBytes_FromStringAndSize((const char *)r->key, klen);
        if (key == NULL)
            return -1;
        tpl = PyDict_GetItemWithError(r->templates, key);
        if (tpl == NULL) {
            int rc = PyErr_Occurred() ? -1 : python(r, rec, n, key);
            Py_DECREF(key);
            return rc;
        }
        Py_DECREF(key);
        if (Py_TYPE(tpl) != &TemplateType || ((Template *)tpl)->owner != (void *)r) {
            PyErr_SetString(PyExc_TypeError, "templates holds a value that is not this renderer's Template");
            return -1;
        }
        Py_INCREF(tpl);
        Py_XSETREF(r->memo_tpl, tpl);
        memcpy(r->memo_key, r->key, klen);
        r->memo_len = klen;
    }
    Py_ssize_t start = r->len;
    Py_INCREF(tpl);  /* a callback of run() may drop the memo */
    int rc = run(r, (Template *)tpl, rec, n, wall);
    Py_DECREF(tpl);
    if (rc == 1) {
        r->len = start;
        return python(r, rec, n, NULL);
    }
    return rc;
}

static void begin(Renderer *r)
{
    forget(r);  /* Python may have changed its caches since the last call */
    r->len = 0;
    r->busy = 1;
}

static PyObject *finish(Renderer *r)
{
    r->busy = 0;
    PyObject *out = PyBytes_FromStringAndSize(r->buf ? r->buf : "", r->len);
    r->len = 0;
    if (r->cap > SHRINK_ABOVE) {
        PyMem_Free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
    return out;
}

/* -- entry points --------------------------------------------------------- */

static PyObject *Renderer_render_ring(Renderer *r, PyObject *args)
{
    PyObject *data;
    Py_ssize_t page, limit;
    unsigned long long mask, cons;
    if (!PyArg_ParseTuple(args, "OnKKn:render_ring", &data, &page, &mask, &cons, &limit) || ready(r) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *buf = view.buf;
    if (page < 8 || view.len < page || (mask & (mask + 1)) != 0 || (uint64_t)(view.len - page) < mask + 1) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "not a ring buffer mapping of this size");
        return NULL;
    }
    begin(r);
    uint64_t prod = load_u64(buf);
    Py_ssize_t count = 0;
    while (cons < prod && count < limit) {
        Py_ssize_t off = page + (Py_ssize_t)(cons & mask);
        if (off + 8 > view.len)
            break;
        uint32_t hdr = load_u32(buf + off);
        if (hdr & RB_BUSY)
            break;
        uint32_t length = hdr & ~(RB_BUSY | RB_DISCARD);
        if (!(hdr & RB_DISCARD)) {
            Py_ssize_t avail = view.len - off - 8;  /* as a Python slice would, never past the end */
            if (render_one(r, buf + off + 8, (Py_ssize_t)length < avail ? (Py_ssize_t)length : avail) < 0) {
                r->busy = 0;
                PyBuffer_Release(&view);
                return NULL;
            }
            count++;
        }
        cons += ((uint64_t)length + 8 + 7) & ~(uint64_t)7;
    }
    PyBuffer_Release(&view);
    PyObject *out = finish(r);
    if (out == NULL)
        return NULL;
    return Py_BuildValue("(KNn)", (unsigned long long)cons, out, count);
}

static PyObject *Renderer_key(Renderer *r, PyObject *raw)
{
    if (ready(r) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *rec = view.buf;
    if (view.len < r->min_size) {
        if (view.len < r->data_at) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "record shorter than the layout");
            return NULL;
        }
        rec = padded(r, rec, view.len);  /* as render_one reads it */
    }
    Py_ssize_t n = make_key(r, rec);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)r->key, n);
}

static PyMethodDef Renderer_methods[] = {
    {"render_ring", (PyCFunction)Renderer_render_ring, METH_VARARGS,
     "render_ring(data, page, mask, cons, limit) -> (cons, bytes, count): up to limit committed records "
     "from the ring's data mapping, from consumer position cons; the caller stores the new position."},
    {"template", (PyCFunction)Renderer_template, METH_O,
     "template(items) -> Template: items checked against this renderer's layout."},
    {"key", (PyCFunction)Renderer_key, METH_O, "key(raw) -> bytes: the static key of a record."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RendererType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "droptrace._render.Renderer",
    .tp_basicsize = sizeof(Renderer),
    .tp_dealloc = (destructor)Renderer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Raw records to output bytes through per-key templates (see droptrace/formats/compiled.py).",
    .tp_traverse = (traverseproc)Renderer_traverse,
    .tp_clear = (inquiry)Renderer_clear,
    .tp_methods = Renderer_methods,
    .tp_init = (initproc)Renderer_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "droptrace._render",
    "Compiled batch rendering of ring-buffer records (see droptrace/formats/compiled.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__render(void)
{
    if (PyType_Ready(&TemplateType) < 0 || PyType_Ready(&RendererType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RendererType);
    if (PyModule_AddObject(m, "Renderer", (PyObject *)&RendererType) < 0) {
        Py_DECREF(&RendererType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&TemplateType);
    if (PyModule_AddObject(m, "Template", (PyObject *)&TemplateType) < 0) {
        Py_DECREF(&TemplateType);
        Py_DECREF(m);
        return NULL;
    }
    static const char *names[] = {"OP_LIT", "OP_ISO", "OP_CLOCK", "OP_UINT", "OP_ORIG", "OP_TS_US",
                                  "OP_DATA", "OP_COMM", "OP_STACK", "OP_OPT_BEGIN", "OP_OPT_END",
                                  "OP_BLOCK_BEGIN", "OP_BLOCK_END"};
    for (int i = 0; i < OP_COUNT; i++) {
        if (PyModule_AddIntConstant(m, names[i], i) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddIntConstant(m, "NSLOT", NSLOT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
