/*
 * ethp2p._speedups: the verification hot paths in C (optional; pure Python is the reference).
 *
 *   keccak256(data) -> bytes
 *   ordered_trie_root(items) -> bytes          root of the trie keyed by rlp(index)
 *   body_roots(body_raw) -> (tx_root, tx_count, ommers_hash, withdrawals_root | None) | None
 *   receipts69_root(list_raw) -> (root, count) | None
 *   receipts69_shape(list_raw) -> (count, last cumulative gas) | None   (checked, not hashed)
 *   receipts68_root(list_raw) -> (root, count, list in eth/69 form) | None
 *   receipts69_to_68(list_raw) -> bytes | None            (what a server sends an eth/68 peer)
 *       root of the receipts trie of an eth/69-form receipt list (blooms rebuilt from the
 *       logs).
 *   These return None when the input is malformed in any way, so that the caller runs the
 *   pure-Python path, which raises the precise error.
 *
 * No cryptography is implemented here. Keccak-256 is the XKCP sponge that safe-pysha3
 * (an ethp2p dependency) compiles into its _pysha3 extension and exports; it is looked up
 * with dlsym when this module is imported and checked against pysha3's own hasher on
 * inputs of several lengths. If it is missing or disagrees, the import fails and ethp2p
 * runs in pure Python (ethp2p.accel decides).
 *
 * Every length read from the input is bounded by the buffer before use; the scanners
 * follow ethp2p/chain/receipts.py and body.py rule for rule (tests/unit/test_speedups.py
 * checks that both accept and reject the same inputs and give the same roots).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*sponge_fn)(unsigned int rate, unsigned int capacity, const unsigned char *input,
                         size_t input_len, unsigned char suffix, unsigned char *output, size_t output_len);

static sponge_fn sponge = NULL;

static inline void keccak256(const uint8_t *p, size_t n, uint8_t *out)
{
    /* Keccak-256: rate 1088 bits, capacity 512, the original (pre-SHA-3) padding 0x01. */
    sponge(1088, 512, p, n, 0x01, out, 32);
}

/* Same bounds as ethp2p.chain.receipts. */
#define MAX_RECEIPTS 100000
#define MAX_LOGS 100000

/* ---- growable byte buffer ---------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *np = realloc(b->p, cap);
    if (!np)
        return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

/* ``arr`` (``*cap`` elements of ``size`` bytes) with room for ``need``: the same pointer, a
   reallocated one (capacity doubled until it fits), or NULL if out of memory (``arr`` is kept). */
static void *grow(void *arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return arr;
    size_t c = *cap;
    while (c < need)
        c *= 2;
    void *np = realloc(arr, c * size);
    if (np)
        *cap = c;
    return np;
}

/* RLP length header for a payload of ``len`` bytes (base 0x80 strings, 0xc0 lists). */
static size_t put_header(uint8_t *out, size_t len, uint8_t base)
{
    if (len < 56) {
        out[0] = (uint8_t)(base + len);
        return 1;
    }
    int nb = 0;
    for (size_t t = len; t; t >>= 8)
        nb++;
    out[0] = (uint8_t)(base + 55 + nb);
    for (int i = nb; i > 0; i--) {
        out[i] = (uint8_t)(len & 0xff);
        len >>= 8;
    }
    return 1 + (size_t)nb;
}

/* ---- ordered trie root ------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n;
} span_t;

typedef struct {
    uint8_t nib[20];
    int len;
} tkey_t;

typedef struct {
    uint8_t b[33];
    int len;
} ref_t;

typedef struct {
    const span_t *vals; /* by item index */
    const tkey_t *keys; /* by sorted position */
    const uint32_t *order; /* sorted position -> item index */
    buf_t scratch;
} trie_t;

static void index_key(uint32_t i, tkey_t *k)
{
    uint8_t raw[5];
    int n;
    if (i == 0) {
        raw[0] = 0x80;
        n = 1;
    } else if (i < 0x80) {
        raw[0] = (uint8_t)i;
        n = 1;
    } else {
        int nb = 0;
        for (uint32_t t = i; t; t >>= 8)
            nb++;
        raw[0] = (uint8_t)(0x80 + nb);
        for (int j = nb; j > 0; j--) {
            raw[j] = (uint8_t)(i & 0xff);
            i >>= 8;
        }
        n = 1 + nb;
    }
    for (int j = 0; j < n; j++) {
        k->nib[2 * j] = raw[j] >> 4;
        k->nib[2 * j + 1] = raw[j] & 0x0f;
    }
    k->len = 2 * n;
}

/* Hex-prefix encoding of nib[from:to] as an RLP string (always < 56 bytes here). */
static size_t put_path(uint8_t *out, const uint8_t *nib, int from, int to, int leaf)
{
    uint8_t hp[12];
    int n = to - from, flag = leaf ? 2 : 0, m = 0;
    if (n & 1) {
        hp[m++] = (uint8_t)(((flag + 1) << 4) | nib[from]);
        from++;
    } else {
        hp[m++] = (uint8_t)(flag << 4);
    }
    for (int i = from; i < to; i += 2)
        hp[m++] = (uint8_t)((nib[i] << 4) | nib[i + 1]);
    if (m == 1 && hp[0] < 0x80) {
        out[0] = hp[0];
        return 1;
    }
    out[0] = (uint8_t)(0x80 + m);
    memcpy(out + 1, hp, (size_t)m);
    return 1 + (size_t)m;
}

static void finish(const uint8_t *node, size_t len, int force_hash, ref_t *out)
{
    if (len < 32 && !force_hash) {
        memcpy(out->b, node, len);
        out->len = (int)len;
    } else {
        out->b[0] = 0xa0;
        keccak256(node, len, out->b + 1);
        out->len = 33;
    }
}

/* Reference to the node holding sorted keys [lo, hi) below ``depth``; 0 ok, -1 on error. */
static int node_ref(trie_t *t, uint32_t lo, uint32_t hi, int depth, int force_hash, ref_t *out)
{
    const tkey_t *first = &t->keys[lo];
    if (hi - lo == 1) {
        const span_t *v = &t->vals[t->order[lo]];
        uint8_t path[12];
        size_t ph = put_path(path, first->nib, depth, first->len, 1);
        uint8_t vh[9];
        size_t vhl;
        if (v->n == 1 && v->p[0] < 0x80)
            vhl = 0;
        else
            vhl = put_header(vh, v->n, 0x80);
        size_t payload = ph + vhl + v->n;
        if (buf_reserve(&t->scratch, payload + 9) < 0)
            return -1;
        uint8_t *w = t->scratch.p;
        size_t lh = put_header(w, payload, 0xc0);
        memcpy(w + lh, path, ph);
        memcpy(w + lh + ph, vh, vhl);
        memcpy(w + lh + ph + vhl, v->p, v->n);
        finish(w, lh + payload, force_hash, out);
        return 0;
    }
    const tkey_t *last = &t->keys[hi - 1];
    int n = first->len < last->len ? first->len : last->len;
    int prefix = 0;
    while (depth + prefix < n && first->nib[depth + prefix] == last->nib[depth + prefix])
        prefix++;
    if (prefix) {
        ref_t child;
        if (node_ref(t, lo, hi, depth + prefix, 0, &child) < 0)
            return -1;
        uint8_t node[3 + 12 + 33];
        uint8_t body[12 + 33];
        size_t ph = put_path(body, first->nib, depth, depth + prefix, 0);
        memcpy(body + ph, child.b, (size_t)child.len);
        size_t payload = ph + (size_t)child.len;
        size_t lh = put_header(node, payload, 0xc0);
        memcpy(node + lh, body, payload);
        finish(node, lh + payload, force_hash, out);
        return 0;
    }
    /* A branch. Ordered-trie keys are prefix-free, so no key ends here (no branch value). */
    uint8_t node[3 + 16 * 33 + 1];
    size_t w = 3;
    uint32_t i = lo;
    if (first->len == depth)
        return -1;
    for (int nib = 0; nib < 16; nib++) {
        if (i < hi && t->keys[i].nib[depth] == nib) {
            uint32_t j = i + 1;
            while (j < hi && t->keys[j].nib[depth] == nib)
                j++;
            ref_t child;
            if (node_ref(t, i, j, depth + 1, 0, &child) < 0)
                return -1;
            memcpy(node + w, child.b, (size_t)child.len);
            w += (size_t)child.len;
            i = j;
        } else {
            node[w++] = 0x80;
        }
    }
    if (i != hi)
        return -1; /* keys not sorted: cannot happen for ordered keys */
    node[w++] = 0x80; /* empty value */
    size_t payload = w - 3;
    uint8_t hdr[9];
    size_t lh = put_header(hdr, payload, 0xc0);
    memcpy(node + 3 - lh, hdr, lh);
    finish(node + 3 - lh, lh + payload, force_hash, out);
    return 0;
}

/* Root of the trie mapping rlp(i) -> vals[i]; 0 ok, -1 out of memory. */
static int ordered_root(const span_t *vals, uint32_t n, uint8_t root[32])
{
    static const uint8_t EMPTY_ROOT[32] = {
        0x56, 0xe8, 0x1f, 0x17, 0x1b, 0xcc, 0x55, 0xa6, 0xff, 0x83, 0x45, 0xe6, 0x92, 0xc0, 0xf8, 0x6e,
        0x5b, 0x48, 0xe0, 0x1b, 0x99, 0x6c, 0xad, 0xc0, 0x01, 0x62, 0x2f, 0xb5, 0xe3, 0x63, 0xb4, 0x21};
    if (n == 0) {
        memcpy(root, EMPTY_ROOT, 32);
        return 0;
    }
    uint32_t *order = malloc(sizeof(uint32_t) * n);
    tkey_t *keys = malloc(sizeof(tkey_t) * n);
    if (!order || !keys) {
        free(order);
        free(keys);
        return -1;
    }
    /* Sorted order of the keys rlp(i): 0x01..0x7f (i = 1..127), 0x80 (i = 0), then
       0x81 xx, 0x82 xx xx, ... (i >= 128), which sort by length and then by value. */
    uint32_t k = 0;
    for (uint32_t i = 1; i < n && i < 0x80; i++)
        order[k++] = i;
    order[k++] = 0;
    for (uint32_t i = 0x80; i < n; i++)
        order[k++] = i;
    for (uint32_t j = 0; j < n; j++)
        index_key(order[j], &keys[j]);
    trie_t t = {vals, keys, order, {NULL, 0, 0}};
    ref_t r;
    int rc = node_ref(&t, 0, n, 0, 1, &r);
    free(t.scratch.p);
    free(order);
    free(keys);
    if (rc == 0)
        memcpy(root, r.b + 1, 32);
    return rc;
}

/* ---- eth/69 receipt lists ------------------------------------------------------------------ */

/* The payload of a header at pos whose length takes the ``ll`` bytes after its first byte
   (canonical: no leading zero, at least 56; the payload ends by ``end``); 0 and
   (*start, *length), or -1. */
static int long_length(const uint8_t *b, size_t pos, size_t end, size_t ll, size_t *start, size_t *length)
{
    if (ll > end - pos - 1 || b[pos + 1] == 0)
        return -1;
    *start = pos + 1 + ll;
    uint64_t l = 0;
    for (size_t i = 0; i < ll; i++)
        l = (l << 8) | b[pos + 1 + i];
    if (l < 56 || l > (uint64_t)(end - *start))
        return -1;
    *length = (size_t)l;
    return 0;
}

/* A list header at pos (payload must end by ``end``): 0 and its payload [*ps, *pe), or -1. */
static int list_at(const uint8_t *b, size_t pos, size_t end, size_t *ps, size_t *pe)
{
    if (pos >= end)
        return -1;
    uint8_t b0 = b[pos];
    size_t start, length;
    if (b0 < 0xc0)
        return -1;
    if (b0 < 0xf8) {
        start = pos + 1;
        length = (size_t)(b0 - 0xc0);
    } else if (long_length(b, pos, end, (size_t)(b0 - 0xf7), &start, &length) < 0) {
        return -1;
    }
    if (length > end - start)
        return -1;
    *ps = start;
    *pe = start + length;
    return 0;
}

/* Bloom bit indices of recently seen log addresses and topics (the same contracts and
   event signatures recur in every block), in a direct-mapped table: an entry is used only
   if its whole key matches. Guarded by bits_lock (callers run without the GIL). */
#define BITS_CACHE_SLOTS (1u << 16)

typedef struct {
    uint8_t key[32];
    uint8_t len; /* 0: empty slot; else 20 or 32 */
    uint16_t bits[3];
} bits_entry_t;

static bits_entry_t *bits_cache = NULL;
static PyThread_type_lock bits_lock = NULL;

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void bloom_add(uint8_t *bloom, const uint8_t *key, size_t n)
{
    uint64_t mix = (load64(key + n - 8) ^ (load64(key) * 0xff51afd7ed558ccdULL)) * 0x9e3779b97f4a7c15ULL;
    bits_entry_t *e = &bits_cache[mix >> 48];
    if (e->len != n || memcmp(e->key, key, n) != 0) {
        uint8_t h[32];
        keccak256(key, n, h);
        for (int i = 0; i < 3; i++)
            e->bits[i] = (uint16_t)((((unsigned)h[2 * i] << 8) | h[2 * i + 1]) & 2047u);
        memcpy(e->key, key, n);
        e->len = (uint8_t)n;
    }
    for (int i = 0; i < 3; i++) {
        unsigned bit = e->bits[i];
        bloom[255 - (bit >> 3)] |= (uint8_t)(1u << (bit & 7));
    }
}

/* The logs payload b[pos:end]: checked, and their bits ORed into ``bloom`` (unless NULL); 0 ok, -1 invalid. */
static int scan_logs(const uint8_t *b, size_t pos, size_t end, uint8_t *bloom)
{
    size_t count = 0;
    while (pos < end) {
        size_t ls, le;
        if (list_at(b, pos, end, &ls, &le) < 0)
            return -1;
        if (le - ls < 22 || b[ls] != 0x94)
            return -1;
        if (bloom)
            bloom_add(bloom, b + ls + 1, 20);
        size_t p = ls + 21;
        uint8_t t = b[p];
        int k;
        if (t == 0xc0) {
            k = 0;
            p += 1;
        } else if (t == 0xe1) {
            k = 1;
            p += 1;
        } else if (t == 0xf8 && p + 1 < le && (b[p + 1] == 0x42 || b[p + 1] == 0x63 || b[p + 1] == 0x84)) {
            k = b[p + 1] == 0x42 ? 2 : (b[p + 1] == 0x63 ? 3 : 4);
            p += 2;
        } else {
            return -1;
        }
        if (p + 33 * (size_t)k >= le)
            return -1;
        for (int j = 0; j < k; j++) {
            if (b[p] != 0xa0)
                return -1;
            if (bloom)
                bloom_add(bloom, b + p + 1, 32);
            p += 33;
        }
        uint8_t d = b[p];
        if (d < 0x80) {
            p += 1;
        } else if (d < 0xb8) {
            if (d == 0x81 && (p + 1 >= le || b[p + 1] < 0x80))
                return -1;
            p += 1 + (size_t)(d - 0x80);
        } else if (d < 0xc0) {
            size_t ll = (size_t)(d - 0xb7);
            if (ll > le - p - 1)
                return -1;
            size_t start = p + 1 + ll;
            if (b[p + 1] == 0)
                return -1;
            uint64_t l = 0;
            for (size_t i = 0; i < ll; i++)
                l = (l << 8) | b[p + 1 + i];
            if (l < 56 || l > (uint64_t)(le - start))
                return -1;
            p = start + (size_t)l;
        } else {
            return -1; /* log data must be a string */
        }
        if (p != le)
            return -1;
        pos = le;
        if (++count > MAX_LOGS)
            return -1;
    }
    return 0;
}

/* Status (empty, 1 or a 32-byte root) and cumulative gas at p; the offset after, or 0 if invalid. */
static size_t status_gas(const uint8_t *b, size_t p, size_t end)
{
    if (p >= end)
        return 0;
    uint8_t s = b[p];
    if (s == 0x80 || s == 0x01)
        p += 1;
    else if (s == 0xa0)
        p += 33;
    else
        return 0;
    if (p >= end)
        return 0;
    uint8_t g = b[p];
    if (g > 0 && g <= 0x80)
        p += 1;
    else if (g >= 0x81 && g <= 0x88 && p + 1 < end && b[p + 1] != 0 && (g != 0x81 || b[p + 1] >= 0x80))
        p += 1 + (size_t)(g - 0x80);
    else
        return 0;
    if (p > end)
        return 0;
    return p;
}

/* One eth/69 receipt: its list payload [rs, re), type, and where its logs item starts. */
typedef struct {
    size_t rs, re, logs_at;
    int tx_type;
} r69_t;

/* The eth/69 receipt ``[type, status, cumulative-gas, logs]`` at pos, checked as
   ethp2p.chain.receipts._scan69 and _scan_logs do; its log bits go into ``bloom`` unless
   NULL. 0 ok, -1 invalid. */
static int scan69(const uint8_t *b, size_t pos, size_t stop, r69_t *r, uint8_t *bloom)
{
    size_t rs, re, ls, le;
    if (list_at(b, pos, stop, &rs, &re) < 0 || rs >= re)
        return -1;
    uint8_t t = b[rs];
    if (!(t == 0x80 || (t > 0 && t <= 4)))
        return -1;
    size_t logs_at = status_gas(b, rs + 1, re);
    if (!logs_at || list_at(b, logs_at, re, &ls, &le) < 0 || le != re || scan_logs(b, ls, le, bloom) < 0)
        return -1;
    r->rs = rs;
    r->re = re;
    r->logs_at = logs_at;
    r->tx_type = t == 0x80 ? 0 : t;
    return 0;
}

typedef struct {
    size_t off, len;
} piece_t;

/* Consensus encodings of an eth/69 list, written into ``arena`` (pieces by offset); 0 ok,
   -1 invalid input, -2 out of memory. */
static int receipts69_consensus(const uint8_t *b, size_t n, buf_t *arena, piece_t **pieces_out, uint32_t *count_out)
{
    size_t pos, stop;
    if (list_at(b, 0, n, &pos, &stop) < 0 || stop != n)
        return -1;
    size_t cap = 64, count = 0;
    piece_t *pieces = malloc(sizeof(piece_t) * cap);
    if (!pieces)
        return -2;
    int rc = 0;
    while (pos < stop) {
        r69_t r;
        uint8_t bloom[256];
        memset(bloom, 0, sizeof bloom);
        if (scan69(b, pos, stop, &r, bloom) < 0 || ++count > MAX_RECEIPTS) {
            rc = -1;
            break;
        }
        piece_t *np = grow(pieces, &cap, count, sizeof *pieces);
        if (!np) {
            rc = -2;
            break;
        }
        pieces = np;
        /* type? || rlp([status, gas, bloom, logs]): the fields after the type, the bloom inserted. */
        size_t s = r.rs + 1, size = r.re - s + 259;
        if (buf_reserve(arena, size + 10) < 0) {
            rc = -2;
            break;
        }
        uint8_t *w = arena->p + arena->len;
        size_t m = 0;
        if (r.tx_type)
            w[m++] = (uint8_t)r.tx_type;
        m += put_header(w + m, size, 0xc0);
        memcpy(w + m, b + s, r.logs_at - s);
        m += r.logs_at - s;
        w[m++] = 0xb9;
        w[m++] = 0x01;
        w[m++] = 0x00;
        memcpy(w + m, bloom, 256);
        m += 256;
        memcpy(w + m, b + r.logs_at, r.re - r.logs_at);
        m += r.re - r.logs_at;
        pieces[count - 1].off = arena->len;
        pieces[count - 1].len = m;
        arena->len += m;
        pos = r.re;
    }
    if (rc < 0) {
        free(pieces);
        return rc;
    }
    *pieces_out = pieces;
    *count_out = (uint32_t)count;
    return 0;
}

/* Shape check of an eth/69 list without hashing (what receipts69_consensus checks): the
   receipt count and the last receipt's cumulative gas; 0 ok, -1 invalid. */
static int receipts69_shape(const uint8_t *b, size_t n, size_t *count_out, uint64_t *gas_out)
{
    size_t pos, stop, count = 0;
    uint64_t gas = 0;
    if (list_at(b, 0, n, &pos, &stop) < 0 || stop != n)
        return -1;
    while (pos < stop) {
        r69_t r;
        if (scan69(b, pos, stop, &r, NULL) < 0 || ++count > MAX_RECEIPTS)
            return -1;
        /* The gas item ends at logs_at; status_gas checked it is canonical and at most 8 bytes. */
        size_t gp = b[r.rs + 1] == 0xa0 ? r.rs + 34 : r.rs + 2;
        gas = b[gp] < 0x80 ? b[gp] : 0;
        if (b[gp] >= 0x80)
            for (size_t i = gp + 1; i < r.logs_at; i++)
                gas = (gas << 8) | b[i];
        pos = r.re;
    }
    *count_out = count;
    *gas_out = gas;
    return 0;
}

/* ---- eth/68 receipt lists and the eth/68 form --------------------------------------------- */

static size_t header_size(size_t len)
{
    size_t n = 1;
    if (len >= 56)
        for (size_t t = len; t; t >>= 8)
            n++;
    return n;
}

static int read_header(const uint8_t *b, size_t pos, size_t end, int *is_list, size_t *ps, size_t *pe);

typedef struct {
    size_t cs, ce;  /* consensus encoding [cs, ce) */
    size_t fs;      /* first field (status) */
    size_t bloom;   /* bloom item */
    size_t logs;    /* logs item; ends at ce */
    int tx_type;
} r68_t;

/* One eth/68 receipt at pos (as ethp2p.chain.receipts._scan68 reads it; logs are not scanned,
   the receipts root covers them); 0 and the item's end in *next, or -1. */
static int scan68(const uint8_t *b, size_t pos, size_t end, r68_t *r, size_t *next)
{
    size_t fs, fe, item_end;
    if (b[pos] >= 0xc0) {
        if (list_at(b, pos, end, &fs, &fe) < 0)
            return -1;
        r->tx_type = 0;
        r->cs = pos;
        item_end = fe;
    } else {
        int is_list;
        size_t ps;
        if (read_header(b, pos, end, &is_list, &ps, &item_end) < 0)
            return -1;
        if (item_end - ps < 2 || b[ps] == 0 || b[ps] > 4 || b[ps + 1] < 0xc0)
            return -1;
        r->tx_type = b[ps];
        r->cs = ps;
        if (list_at(b, ps + 1, item_end, &fs, &fe) < 0 || fe != item_end)
            return -1;
    }
    size_t bloom_at = status_gas(b, fs, fe);
    if (!bloom_at || bloom_at + 259 > fe || b[bloom_at] != 0xb9 || b[bloom_at + 1] != 0x01 || b[bloom_at + 2] != 0x00)
        return -1;
    size_t logs_at = bloom_at + 259, ls, le;
    if (list_at(b, logs_at, fe, &ls, &le) < 0 || le != fe)
        return -1;
    r->fs = fs;
    r->bloom = bloom_at;
    r->logs = logs_at;
    r->ce = item_end;
    *next = item_end;
    return 0;
}

/* An eth/68 list: its receipts root, count and the list in eth/69 form (malloc'd into *out);
   0 ok, -1 invalid, -2 out of memory. */
static int receipts68(const uint8_t *b, size_t n, uint8_t root[32], uint32_t *count_out, uint8_t **out, size_t *out_len)
{
    size_t pos, stop;
    if (list_at(b, 0, n, &pos, &stop) < 0 || stop != n)
        return -1;
    size_t cap = 64, count = 0, payload = 0;
    r68_t *rs = malloc(sizeof(r68_t) * cap);
    if (!rs)
        return -2;
    int rc = 0;
    while (pos < stop) {
        if (++count > MAX_RECEIPTS) {
            rc = -1;
            break;
        }
        r68_t *np = grow(rs, &cap, count, sizeof *rs);
        if (!np) {
            rc = -2;
            break;
        }
        rs = np;
        r68_t *r = &rs[count - 1];
        if (scan68(b, pos, stop, r, &pos) < 0) {
            rc = -1;
            break;
        }
        size_t size = 1 + (r->bloom - r->fs) + (r->ce - r->logs);
        payload += header_size(size) + size;
    }
    span_t *vals = NULL;
    uint8_t *w = NULL;
    if (rc == 0) {
        vals = malloc(sizeof(span_t) * (count ? count : 1));
        w = malloc(payload + 9);
        if (!vals || !w)
            rc = -2;
    }
    if (rc == 0) {
        size_t m = put_header(w, payload, 0xc0);
        for (size_t i = 0; i < count; i++) {
            r68_t *r = &rs[i];
            vals[i].p = b + r->cs;
            vals[i].n = r->ce - r->cs;
            size_t size = 1 + (r->bloom - r->fs) + (r->ce - r->logs);
            m += put_header(w + m, size, 0xc0);
            w[m++] = r->tx_type ? (uint8_t)r->tx_type : 0x80;
            memcpy(w + m, b + r->fs, r->bloom - r->fs);
            m += r->bloom - r->fs;
            memcpy(w + m, b + r->logs, r->ce - r->logs);
            m += r->ce - r->logs;
        }
        if (ordered_root(vals, (uint32_t)count, root) < 0)
            rc = -2;
        *out_len = m;
    }
    free(vals);
    free(rs);
    if (rc == 0) {
        *out = w;
        *count_out = (uint32_t)count;
    } else {
        free(w);
    }
    return rc;
}

/* ---- block bodies --------------------------------------------------------------------------- */

/* Any RLP header at pos, as strict as ethp2p.rlp's decoder; 0 and (is_list, payload), or -1. */
static int read_header(const uint8_t *b, size_t pos, size_t end, int *is_list, size_t *ps, size_t *pe)
{
    if (pos >= end)
        return -1;
    uint8_t b0 = b[pos];
    size_t start, length;
    if (b0 < 0x80) {
        *is_list = 0;
        *ps = pos;
        *pe = pos + 1;
        return 0;
    }
    if (b0 < 0xb8) {
        length = (size_t)(b0 - 0x80);
        start = pos + 1;
        if (length == 1 && (start >= end || b[start] < 0x80))
            return -1;
        *is_list = 0;
    } else if (b0 < 0xc0) {
        if (long_length(b, pos, end, (size_t)(b0 - 0xb7), &start, &length) < 0)
            return -1;
        *is_list = 0;
    } else {
        if (list_at(b, pos, end, ps, pe) < 0)
            return -1;
        *is_list = 1;
        return 0;
    }
    if (length > end - start)
        return -1;
    *ps = start;
    *pe = start + length;
    return 0;
}

#define MAX_TRANSACTIONS 100000

/* Split the list payload b[pos:stop] into items (whole encodings) appended to ``out``;
   0 ok, -1 invalid (a bad item header, or more than ``max_items``), -2 out of memory. */
static int split_items(const uint8_t *b, size_t pos, size_t stop, size_t max_items, span_t **out, size_t *count)
{
    size_t cap = 64, n = 0;
    span_t *items = malloc(sizeof(span_t) * cap);
    if (!items)
        return -2;
    while (pos < stop) {
        int is_list;
        size_t ps, pe;
        if (read_header(b, pos, stop, &is_list, &ps, &pe) < 0 || ++n > max_items) {
            free(items);
            return -1;
        }
        span_t *np = grow(items, &cap, n, sizeof *items);
        if (!np) {
            free(items);
            return -2;
        }
        items = np;
        items[n - 1].p = b + pos;
        items[n - 1].n = pe - pos;
        pos = pe;
    }
    *out = items;
    *count = n;
    return 0;
}

typedef struct {
    uint8_t tx_root[32], ommers_hash[32], withdrawals_root[32];
    size_t tx_count;
    int has_withdrawals;
} body_roots_t;

/* The roots of a body ``[txs, ommers]`` or ``[txs, ommers, withdrawals]`` (the same rules as
   ethp2p.chain.body.BlockBody); 0 ok, -1 malformed, -2 out of memory. */
static int body_roots(const uint8_t *b, size_t n, body_roots_t *r)
{
    int is_list, rc;
    size_t ps, pe;
    if (read_header(b, 0, n, &is_list, &ps, &pe) < 0 || !is_list || pe != n)
        return -1;
    span_t *parts = NULL, *txs = NULL, *ws = NULL;
    size_t nparts = 0, ntx = 0, nw = 0;
    rc = split_items(b, ps, pe, 4, &parts, &nparts);
    if (rc < 0)
        return rc;
    if (nparts != 2 && nparts != 3) {
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].p[0] < 0xc0) {
            rc = -1;
            goto done;
        }
    /* Each part is a list whose header delimits it exactly, so its payload starts after the header. */
    for (size_t i = 0; i < nparts; i += 2) {
        size_t s, e;
        const uint8_t *base = parts[i].p;
        if (list_at(base, 0, parts[i].n, &s, &e) < 0) {
            rc = -1;
            goto done;
        }
        rc = split_items(base, s, e, MAX_TRANSACTIONS, i == 0 ? &txs : &ws, i == 0 ? &ntx : &nw);
        if (rc < 0)
            goto done;
    }
    for (size_t i = 0; i < ntx; i++) {
        const uint8_t *t = txs[i].p;
        if (t[0] >= 0xc0)
            continue; /* legacy: the list itself */
        int tl;
        size_t ts, te;
        if (read_header(t, 0, txs[i].n, &tl, &ts, &te) < 0 || tl || te != txs[i].n || te - ts < 2 || t[ts] == 0 ||
            t[ts] > 4 || t[ts + 1] < 0xc0) {
            rc = -1;
            goto done;
        }
        txs[i].p = t + ts; /* typed: the string's payload, type || rlp(fields) */
        txs[i].n = te - ts;
    }
    for (size_t i = 0; i < nw; i++)
        if (ws[i].p[0] < 0xc0) {
            rc = -1;
            goto done;
        }
    keccak256(parts[1].p, parts[1].n, r->ommers_hash);
    r->tx_count = ntx;
    r->has_withdrawals = nparts == 3;
    rc = ordered_root(txs, (uint32_t)ntx, r->tx_root) < 0 ? -2 : 0;
    if (rc == 0 && nparts == 3)
        rc = ordered_root(ws, (uint32_t)nw, r->withdrawals_root) < 0 ? -2 : 0;
done:
    free(parts);
    free(txs);
    free(ws);
    return rc;
}

/* ---- Python bindings --------------------------------------------------------------------- */

static PyObject *py_keccak256(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint8_t out[32];
    if (view.len > 4096) {
        Py_BEGIN_ALLOW_THREADS
        keccak256(view.buf, (size_t)view.len, out);
        Py_END_ALLOW_THREADS
    } else {
        keccak256(view.buf, (size_t)view.len, out);
    }
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyObject *py_ordered_trie_root(PyObject *self, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "ordered_trie_root() takes a sequence of bytes-like items");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > (Py_ssize_t)UINT32_MAX / 2) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many items");
        return NULL;
    }
    Py_buffer *views = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
    span_t *vals = PyMem_Calloc((size_t)(n ? n : 1), sizeof(span_t));
    if (!views || !vals) {
        PyMem_Free(views);
        PyMem_Free(vals);
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    Py_ssize_t got = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (; got < n; got++) {
        if (PyObject_GetBuffer(items[got], &views[got], PyBUF_SIMPLE) < 0)
            break;
        vals[got].p = views[got].buf;
        vals[got].n = (size_t)views[got].len;
    }
    PyObject *result = NULL;
    if (got == n) {
        uint8_t root[32];
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ordered_root(vals, (uint32_t)n, root);
        Py_END_ALLOW_THREADS
        if (rc < 0)
            PyErr_NoMemory();
        else
            result = PyBytes_FromStringAndSize((const char *)root, 32);
    }
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(vals);
    Py_DECREF(seq);
    return result;
}

/* The receipt-list and body functions share one shape: read a bytes-like argument, work on
   it without the GIL, then return None (malformed input), raise MemoryError, or build a result. */

typedef int (*work_fn)(const uint8_t *b, size_t n, void *ctx); /* 0 ok, -1 malformed, -2 no memory */

/* Run ``work`` on the bytes of ``arg`` without the GIL. Returns 0 when it succeeded (the caller
   builds the result from ``ctx``), else 1 with *res set to None or NULL (an exception). */
static int run_on_buffer(PyObject *arg, work_fn work, void *ctx, PyObject **res)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        *res = NULL;
        return 1;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = work(view.buf, (size_t)view.len, ctx);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (rc == -2) {
        *res = PyErr_NoMemory();
        return 1;
    }
    if (rc < 0) {
        Py_INCREF(Py_None);
        *res = Py_None;
        return 1;
    }
    return 0;
}

/* receipts69_consensus under the bloom-bits cache lock. */
static int consensus_locked(const uint8_t *b, size_t n, buf_t *arena, piece_t **pieces, uint32_t *count)
{
    PyThread_acquire_lock(bits_lock, WAIT_LOCK);
    int rc = receipts69_consensus(b, n, arena, pieces, count);
    PyThread_release_lock(bits_lock);
    return rc;
}

typedef struct {
    uint8_t root[32];
    uint32_t count;
} root_ctx_t;

static int work_receipts69_root(const uint8_t *b, size_t n, void *ctx)
{
    root_ctx_t *c = ctx;
    buf_t arena = {NULL, 0, 0};
    piece_t *pieces = NULL;
    int rc = consensus_locked(b, n, &arena, &pieces, &c->count);
    if (rc == 0) {
        span_t *vals = malloc(sizeof(span_t) * (c->count ? c->count : 1));
        if (!vals) {
            rc = -2;
        } else {
            for (uint32_t i = 0; i < c->count; i++) {
                vals[i].p = arena.p + pieces[i].off;
                vals[i].n = pieces[i].len;
            }
            rc = ordered_root(vals, c->count, c->root) < 0 ? -2 : 0;
            free(vals);
        }
    }
    free(pieces);
    free(arena.p);
    return rc;
}

static PyObject *py_receipts69_root(PyObject *self, PyObject *arg)
{
    root_ctx_t c;
    PyObject *res;
    if (run_on_buffer(arg, work_receipts69_root, &c, &res))
        return res;
    return Py_BuildValue("(y#I)", (const char *)c.root, (Py_ssize_t)32, (unsigned int)c.count);
}

static int work_body_roots(const uint8_t *b, size_t n, void *ctx)
{
    return body_roots(b, n, ctx);
}

static PyObject *py_body_roots(PyObject *self, PyObject *arg)
{
    body_roots_t r;
    PyObject *res;
    if (run_on_buffer(arg, work_body_roots, &r, &res))
        return res;
    if (r.has_withdrawals)
        return Py_BuildValue("(y#ny#y#)", (const char *)r.tx_root, (Py_ssize_t)32, (Py_ssize_t)r.tx_count,
                             (const char *)r.ommers_hash, (Py_ssize_t)32, (const char *)r.withdrawals_root,
                             (Py_ssize_t)32);
    return Py_BuildValue("(y#ny#O)", (const char *)r.tx_root, (Py_ssize_t)32, (Py_ssize_t)r.tx_count,
                         (const char *)r.ommers_hash, (Py_ssize_t)32, Py_None);
}

typedef struct {
    size_t count;
    uint64_t gas;
} shape_ctx_t;

static int work_receipts69_shape(const uint8_t *b, size_t n, void *ctx)
{
    shape_ctx_t *c = ctx;
    return receipts69_shape(b, n, &c->count, &c->gas);
}

static PyObject *py_receipts69_shape(PyObject *self, PyObject *arg)
{
    shape_ctx_t c;
    PyObject *res;
    if (run_on_buffer(arg, work_receipts69_shape, &c, &res))
        return res;
    return Py_BuildValue("(nK)", (Py_ssize_t)c.count, (unsigned long long)c.gas);
}

typedef struct {
    root_ctx_t r;
    uint8_t *out; /* malloc'd */
    size_t out_len;
} list_ctx_t;

static int work_receipts68_root(const uint8_t *b, size_t n, void *ctx)
{
    list_ctx_t *c = ctx;
    return receipts68(b, n, c->r.root, &c->r.count, &c->out, &c->out_len);
}

static PyObject *py_receipts68_root(PyObject *self, PyObject *arg)
{
    list_ctx_t c = {{{0}, 0}, NULL, 0};
    PyObject *res;
    if (run_on_buffer(arg, work_receipts68_root, &c, &res))
        return res;
    res = Py_BuildValue("(y#Iy#)", (const char *)c.r.root, (Py_ssize_t)32, (unsigned int)c.r.count,
                        (const char *)c.out, (Py_ssize_t)c.out_len);
    free(c.out);
    return res;
}

static int work_receipts69_to_68(const uint8_t *b, size_t n, void *ctx)
{
    list_ctx_t *c = ctx;
    buf_t arena = {NULL, 0, 0};
    piece_t *pieces = NULL;
    uint32_t count = 0;
    int rc = consensus_locked(b, n, &arena, &pieces, &count);
    if (rc == 0) {
        /* Legacy receipts go as their list; typed ones as a string holding type || rlp(...). */
        size_t payload = 0;
        for (uint32_t i = 0; i < count; i++)
            payload += pieces[i].len + (arena.p[pieces[i].off] < 0xc0 ? header_size(pieces[i].len) : 0);
        c->out = malloc(payload + 9);
        if (!c->out) {
            rc = -2;
        } else {
            size_t w = put_header(c->out, payload, 0xc0);
            for (uint32_t i = 0; i < count; i++) {
                const uint8_t *p = arena.p + pieces[i].off;
                if (p[0] < 0xc0)
                    w += put_header(c->out + w, pieces[i].len, 0x80);
                memcpy(c->out + w, p, pieces[i].len);
                w += pieces[i].len;
            }
            c->out_len = w;
        }
    }
    free(pieces);
    free(arena.p);
    return rc;
}

static PyObject *py_receipts69_to_68(PyObject *self, PyObject *arg)
{
    list_ctx_t c = {{{0}, 0}, NULL, 0};
    PyObject *res;
    if (run_on_buffer(arg, work_receipts69_to_68, &c, &res))
        return res;
    res = PyBytes_FromStringAndSize((const char *)c.out, (Py_ssize_t)c.out_len);
    free(c.out);
    return res;
}

/* ---- export: transaction fields and receipt logs as Python objects -------------------------- */

/* Count the items of the list payload b[pos:stop) (each header checked); 0 ok, -1 malformed. */
static int count_items(const uint8_t *b, size_t pos, size_t stop, size_t *count)
{
    size_t n = 0;
    while (pos < stop) {
        int is_list;
        size_t ps, pe;
        if (read_header(b, pos, stop, &is_list, &ps, &pe) < 0 || ++n > MAX_TRANSACTIONS)
            return -1;
        pos = pe;
    }
    *count = n;
    return 0;
}

/* The string at pos (payload in [pos, stop)) as bytes; NULL with *bad = 1 if it is not a string. */
static PyObject *string_at(const uint8_t *b, size_t pos, size_t stop, size_t *next, int *bad)
{
    int is_list;
    size_t ps, pe;
    if (read_header(b, pos, stop, &is_list, &ps, &pe) < 0 || is_list) {
        *bad = 1;
        return NULL;
    }
    *next = pe;
    return PyBytes_FromStringAndSize((const char *)b + ps, (Py_ssize_t)(pe - ps));
}

/* tx_fields(encoding) -> (type, fields, payload_start, signature_start) or None.
   ``fields``: each item of the transaction's RLP list, a string as its payload (bytes), a list as
   its item count (int); ``payload_start``/``signature_start``: offsets of the list's payload and
   of its third-from-last item (v), so the unsigned fields are encoding[payload_start:signature_start]. */
static PyObject *py_tx_fields(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *b = view.buf;
    size_t n = (size_t)view.len, ps, pe;
    PyObject *fields = NULL, *res = NULL;
    size_t starts[16];
    if (n == 0)
        goto bad;
    int type = b[0] >= 0xc0 ? 0 : b[0];
    size_t off = type ? 1 : 0;
    if (list_at(b, off, n, &ps, &pe) < 0 || pe != n)
        goto bad;
    fields = PyList_New(0);
    if (!fields)
        goto fail;
    size_t pos = ps, count = 0;
    while (pos < pe) {
        int is_list;
        size_t s, e;
        if (count >= 16 || read_header(b, pos, pe, &is_list, &s, &e) < 0)
            goto bad;
        starts[count++] = pos;
        PyObject *item;
        if (is_list) {
            size_t items;
            if (count_items(b, s, e, &items) < 0)
                goto bad;
            item = PyLong_FromSize_t(items);
        } else {
            item = PyBytes_FromStringAndSize((const char *)b + s, (Py_ssize_t)(e - s));
        }
        if (!item || PyList_Append(fields, item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
        pos = e;
    }
    if (count < 3)
        goto bad;
    res = Py_BuildValue("(iOnn)", type, fields, (Py_ssize_t)ps, (Py_ssize_t)starts[count - 3]);
    Py_DECREF(fields);
    PyBuffer_Release(&view);
    return res;
bad:
    Py_XDECREF(fields);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(fields);
    PyBuffer_Release(&view);
    return NULL;
}

/* One log [address, [topics...], data] at pos as (address, (topic, ...), data); NULL with *bad. */
static PyObject *log_at(const uint8_t *b, size_t pos, size_t stop, size_t *next, int *bad)
{
    size_t ps, pe, q, tps, tpe;
    if (list_at(b, pos, stop, &ps, &pe) < 0) {
        *bad = 1;
        return NULL;
    }
    PyObject *addr = NULL, *topics = NULL, *data = NULL, *res = NULL;
    addr = string_at(b, ps, pe, &q, bad);
    if (!addr)
        goto out;
    if (list_at(b, q, pe, &tps, &tpe) < 0) {
        *bad = 1;
        goto out;
    }
    topics = PyList_New(0);
    if (!topics)
        goto out;
    size_t t = tps;
    while (t < tpe) {
        PyObject *topic = string_at(b, t, tpe, &t, bad);
        if (!topic || PyList_Append(topics, topic) < 0) {
            Py_XDECREF(topic);
            goto out;
        }
        Py_DECREF(topic);
    }
    data = string_at(b, tpe, pe, &q, bad);
    if (!data)
        goto out;
    if (q != pe) { /* more than three items */
        *bad = 1;
        goto out;
    }
    res = PyTuple_Pack(3, addr, topics, data);
    *next = pe;
out:
    Py_XDECREF(addr);
    Py_XDECREF(topics);
    Py_XDECREF(data);
    return res;
}

/* receipts69_fields(receipts) -> [(status, cumulative_gas, [log, ...]), ...] or None: each receipt
   [type, status, cumulative gas, logs] of an eth/69-form list, strings as bytes, logs as above. */
static PyObject *py_receipts69_fields(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *b = view.buf;
    size_t n = (size_t)view.len, ps, pe;
    int bad = 0;
    PyObject *out = NULL;
    if (list_at(b, 0, n, &ps, &pe) < 0 || pe != n)
        goto bad;
    out = PyList_New(0);
    if (!out)
        goto fail;
    size_t pos = ps;
    while (pos < pe) {
        size_t rs, re, q, ls, le;
        PyObject *type = NULL, *status = NULL, *gas = NULL, *logs = NULL, *rec = NULL;
        if (list_at(b, pos, pe, &rs, &re) < 0)
            goto bad;
        type = string_at(b, rs, re, &q, &bad);
        if (type)
            status = string_at(b, q, re, &q, &bad);
        if (status)
            gas = string_at(b, q, re, &q, &bad);
        if (gas && list_at(b, q, re, &ls, &le) < 0)
            bad = 1;
        if (gas && !bad && le != re)
            bad = 1;
        if (gas && !bad && (logs = PyList_New(0)) != NULL) {
            size_t l = ls;
            while (l < le) {
                PyObject *lg = log_at(b, l, le, &l, &bad);
                if (!lg || PyList_Append(logs, lg) < 0) {
                    Py_XDECREF(lg);
                    Py_CLEAR(logs);
                    break;
                }
                Py_DECREF(lg);
            }
        }
        if (logs)
            rec = PyTuple_Pack(3, status, gas, logs);
        Py_XDECREF(type);
        Py_XDECREF(status);
        Py_XDECREF(gas);
        Py_XDECREF(logs);
        if (!rec || PyList_Append(out, rec) < 0) {
            Py_XDECREF(rec);
            if (bad)
                goto bad;
            goto fail;
        }
        Py_DECREF(rec);
        pos = re;
    }
    PyBuffer_Release(&view);
    return out;
bad:
    PyErr_Clear();
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    return NULL;
}

static PyMethodDef methods[] = {
    {"keccak256", py_keccak256, METH_O, "keccak256(data) -> 32 bytes."},
    {"ordered_trie_root", py_ordered_trie_root, METH_O,
     "Root of the trie keyed by rlp(index) over a sequence of bytes-like items."},
    {"receipts68_root", py_receipts68_root, METH_O,
     "(receipts root, receipt count, the list in eth/69 form) of an eth/68 list, or None if it is malformed."},
    {"receipts69_to_68", py_receipts69_to_68, METH_O,
     "An eth/69-form list re-encoded for eth/68 (blooms rebuilt), or None if it is malformed."},
    {"receipts69_shape", py_receipts69_shape, METH_O,
     "(receipt count, last cumulative gas or 0) of an eth/69-form list, checked but not hashed; "
     "or None if it is malformed."},
    {"body_roots", py_body_roots, METH_O,
     "(transactions root, transaction count, ommers hash, withdrawals root or None) of a block body, "
     "or None if it is malformed."},
    {"receipts69_root", py_receipts69_root, METH_O,
     "(receipts root, receipt count) of an eth/69-form receipt list, or None if it is malformed."},
    {"tx_fields", py_tx_fields, METH_O,
     "(type, fields, payload start, signature start) of a consensus-encoded transaction, strings as bytes "
     "and lists as their item counts; or None if it is malformed."},
    {"receipts69_fields", py_receipts69_fields, METH_O,
     "[(status, cumulative gas, [(address, [topics], data), ...]), ...] of an eth/69-form receipt list, "
     "or None if it is malformed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods, NULL, NULL, NULL, NULL};

/* Find safe-pysha3's exported XKCP sponge and check it against pysha3's hasher. */
static int load_sponge(void)
{
    PyObject *mod = PyImport_ImportModule("_pysha3");
    if (!mod)
        return -1;
    PyObject *file = PyObject_GetAttrString(mod, "__file__");
    Py_DECREF(mod);
    if (!file)
        return -1;
    const char *path = PyUnicode_AsUTF8(file);
    if (!path) {
        Py_DECREF(file);
        return -1;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        h = dlopen(path, RTLD_NOW);
    Py_DECREF(file);
    if (!h) {
        PyErr_SetString(PyExc_ImportError, "cannot open safe-pysha3's library");
        return -1;
    }
    sponge = (sponge_fn)dlsym(h, "_PySHA3_KeccakWidth1600_Sponge");
    if (!sponge) {
        PyErr_SetString(PyExc_ImportError, "safe-pysha3 does not export its Keccak sponge");
        return -1;
    }
    /* Self-test against pysha3's own keccak_256 across the rate boundary (136 bytes). */
    PyObject *sha3 = PyImport_ImportModule("_pysha3");
    PyObject *cls = sha3 ? PyObject_GetAttrString(sha3, "keccak_256") : NULL;
    Py_XDECREF(sha3);
    if (!cls)
        return -1;
    static const size_t lengths[] = {0, 1, 3, 32, 135, 136, 137, 271, 272, 1000};
    uint8_t data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 131 + 7);
    int ok = 1;
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0] && ok; i++) {
        PyObject *h_obj = PyObject_CallFunction(cls, "y#", (const char *)data, (Py_ssize_t)lengths[i]);
        PyObject *dig = h_obj ? PyObject_CallMethod(h_obj, "digest", NULL) : NULL;
        Py_XDECREF(h_obj);
        if (!dig || !PyBytes_Check(dig) || PyBytes_GET_SIZE(dig) != 32) {
            Py_XDECREF(dig);
            Py_DECREF(cls);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ImportError, "pysha3 self-test failed");
            return -1;
        }
        uint8_t out[32];
        keccak256(data, lengths[i], out);
        ok = memcmp(out, PyBytes_AS_STRING(dig), 32) == 0;
        Py_DECREF(dig);
    }
    Py_DECREF(cls);
    if (!ok) {
        sponge = NULL;
        PyErr_SetString(PyExc_ImportError, "safe-pysha3's Keccak sponge disagrees with its hasher");
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__speedups(void)
{
    if (load_sponge() < 0)
        return NULL;
    bits_cache = calloc(BITS_CACHE_SLOTS, sizeof(bits_entry_t));
    bits_lock = PyThread_allocate_lock();
    if (!bits_cache || !bits_lock)
        return PyErr_NoMemory();
    return PyModule_Create(&module);
}
