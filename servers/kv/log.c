/* log.c — the kv store's pure parts: log records on disk, the recovery choice, loading a log
 * file, the protocol lines and the arg (no os calls: tests/test_kv_log.c runs them alone). */
#include "kv.h"

#include <argwords.h>

#include <stdio.h>
#include <string.h>

uint32_t kv_crc32(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Layout (little-endian): magic, epoch, index, prev, key_len (1), 0 (1), value_len (2), key
 * (64), value (256), CRC-32 of the 340 bytes before it. */
enum { R_KEY = 20, R_VALUE = R_KEY + KV_KEY_MAX, R_CRC = R_VALUE + KV_VALUE_MAX };
_Static_assert(R_CRC + 4 == KV_REC, "record layout");

void kv_rec_encode(kv_entry_t *e, uint8_t out[KV_REC])
{
    memset(out, 0, KV_REC);
    put32(out, KV_REC_MAGIC);
    put32(out + 4, e->epoch);
    put32(out + 8, e->index);
    put32(out + 12, e->prev);
    out[16] = e->key_len;
    out[18] = (uint8_t)e->value_len, out[19] = (uint8_t)(e->value_len >> 8);
    memcpy(out + R_KEY, e->key, e->key_len);
    memcpy(out + R_VALUE, e->value, e->value_len);
    e->crc = kv_crc32(out, R_CRC);
    put32(out + R_CRC, e->crc);
}

void kv_chain(kv_entry_t *log, uint32_t from, uint32_t len)
{
    uint8_t rec[KV_REC];
    for (uint32_t i = from < 1 ? 1 : from; i <= len; i++) {
        log[i].index = i;
        log[i].prev = i > 1 ? log[i - 1].crc : 0;
        kv_rec_encode(&log[i], rec);
    }
}

int kv_rec_decode(const uint8_t *in, kv_entry_t *e)
{
    if (get32(in) != KV_REC_MAGIC || get32(in + R_CRC) != kv_crc32(in, R_CRC))
        return -1;
    uint32_t klen = in[16], vlen = in[18] | (uint32_t)in[19] << 8;
    if (klen > KV_KEY_MAX || vlen > KV_VALUE_MAX || in[17] != 0)
        return -1;
    memset(e, 0, sizeof *e);
    e->epoch = get32(in + 4);
    e->index = get32(in + 8);
    e->prev = get32(in + 12);
    e->crc = get32(in + R_CRC);
    e->key_len = (uint8_t)klen;
    e->value_len = (uint16_t)vlen;
    memcpy(e->key, in + R_KEY, klen);
    memcpy(e->value, in + R_VALUE, vlen);
    return 0;
}

bool kv_log_better(kv_logpos_t a, kv_logpos_t b)
{
    return a.last_epoch > b.last_epoch || (a.last_epoch == b.last_epoch && a.len > b.len);
}

size_t kv_log_choose(const kv_logpos_t *c, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (kv_log_better(c[i], c[best]))
            best = i;
    return best;
}

size_t kv_load_records(kv_loader_t *ld, kv_entry_t *log, uint32_t pos, const uint8_t *p, size_t n)
{
    size_t taken = 0;
    for (size_t off = 0; !ld->end && off + KV_REC <= n; off += KV_REC, pos++) {
        kv_entry_t e;
        bool whole = kv_rec_decode(p + off, &e) == 0 && e.index == pos;
        if (pos == 0 && !whole) {
            taken++; /* a torn header: the epoch is lost, the entries are not (recovery goes
                      * past every epoch it sees) */
            continue;
        }
        if (!whole || pos > KV_LOG_MAX || (pos > 0 && e.prev != (pos > 1 ? log[pos - 1].crc : 0))) {
            ld->end = true;
            break;
        }
        if (pos == 0) {
            ld->header = true;
            ld->epoch = e.epoch;
        } else {
            /* epochs never go down along a log: a record that breaks this is not ours */
            if (ld->len > 0 && e.epoch < log[ld->len].epoch) {
                ld->end = true;
                break;
            }
            log[pos] = e;
            ld->len = pos;
        }
        taken++;
    }
    if (n % KV_REC != 0 || n == 0)
        ld->end = true; /* a short read: the end of the file */
    return taken;
}

/* ---- lines -------------------------------------------------------------------------------- */

/* The next space-separated word of s[*i..n), or NULL. */
static const char *word(const char *s, size_t n, size_t *i, size_t *len)
{
    while (*i < n && s[*i] == ' ')
        (*i)++;
    if (*i >= n)
        return NULL;
    size_t start = *i;
    while (*i < n && s[*i] != ' ')
        (*i)++;
    *len = *i - start;
    return s + start;
}

static bool number(const char *w, size_t len, uint32_t *out)
{
    if (!w || len == 0 || len > 10)
        return false;
    uint64_t v = 0;
    for (size_t k = 0; k < len; k++) {
        if (w[k] < '0' || w[k] > '9')
            return false;
        v = v * 10 + (uint64_t)(w[k] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool printable(const char *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (p[k] < 0x20 || p[k] > 0x7e)
            return false;
    return true;
}

/* The key (a word) and, with value, the rest of the line after one space. */
static bool key_value(const char *s, size_t n, size_t *i, kv_line_t *out, bool value)
{
    size_t len;
    const char *k = word(s, n, i, &len);
    if (!k) {
        out->why = "missing key";
        return false;
    }
    if (len > KV_KEY_MAX) {
        out->why = "key longer than 64 bytes";
        return false;
    }
    if (!printable(k, len)) {
        out->why = "key has a control byte";
        return false;
    }
    memcpy(out->e.key, k, len);
    out->e.key_len = (uint8_t)len;
    if (!value) {
        if (word(s, n, i, &len)) {
            out->why = "more than a key";
            return false;
        }
        return true;
    }
    if (*i >= n || *i + 1 >= n) {
        out->why = "missing value";
        return false;
    }
    size_t vlen = n - (*i + 1);
    if (vlen > KV_VALUE_MAX) {
        out->why = "value longer than 256 bytes";
        return false;
    }
    if (!printable(s + *i + 1, vlen)) {
        out->why = "value has a control byte";
        return false;
    }
    memcpy(out->e.value, s + *i + 1, vlen);
    out->e.value_len = (uint16_t)vlen;
    return true;
}

void kv_parse_line(const char *s, size_t n, kv_line_t *out)
{
    static const struct {
        const char *name;
        kv_verb_t verb;
        int nums; /* numbers after the verb */
    } verbs[] = {
        {"PUT", KV_V_PUT, 0},     {"GET", KV_V_GET, 0}, {"HELLO", KV_V_HELLO, 1},
        {"FETCH", KV_V_FETCH, 1}, {"E", KV_V_E, 3},     {"SYNC", KV_V_SYNC, 0},
        {"LOG", KV_V_LOG, 2},     {"END", KV_V_END, 1}, {"ACK", KV_V_ACK, 1},
        {"NACK", KV_V_NACK, 1},
    };
    memset(out, 0, sizeof *out);
    size_t i = 0, len;
    const char *w = word(s, n, &i, &len);
    if (!w) {
        out->why = "empty line";
        return;
    }
    size_t v = 0;
    while (v < sizeof verbs / sizeof verbs[0] &&
           (strlen(verbs[v].name) != len || memcmp(verbs[v].name, w, len) != 0))
        v++;
    if (v == sizeof verbs / sizeof verbs[0]) {
        out->why = "unknown command (PUT key value, GET key)";
        return;
    }
    uint32_t nums[3] = {0, 0, 0};
    for (int k = 0; k < verbs[v].nums; k++) {
        w = word(s, n, &i, &len);
        if (!number(w, len, &nums[k])) {
            out->why = "bad number";
            return;
        }
    }
    out->a = nums[0], out->b = nums[1], out->c = nums[2];
    kv_verb_t verb = verbs[v].verb;
    bool ok = true;
    if (verb == KV_V_PUT || verb == KV_V_GET) {
        ok = key_value(s, n, &i, out, verb == KV_V_PUT);
    } else if (verb == KV_V_E) {
        out->e.epoch = nums[0];
        out->e.index = nums[1];
        size_t j = i;
        if (word(s, n, &j, &len)) /* a key: a PUT's entry; none: a no-op */
            ok = key_value(s, n, &i, out, true);
        if (ok && (out->e.index == 0 || out->e.index > KV_LOG_MAX)) {
            out->why = "index out of range";
            ok = false;
        }
    } else if (word(s, n, &i, &len)) {
        out->why = "trailing words";
        ok = false;
    }
    if (ok)
        out->verb = verb;
}

size_t kv_format_entry(const kv_entry_t *e, uint32_t prev_epoch, char *out)
{
    int n;
    if (e->key_len == 0)
        n = snprintf(out, KV_LINE_MAX, "E %u %u %u\n", (unsigned)e->epoch, (unsigned)e->index,
                     (unsigned)prev_epoch);
    else
        n = snprintf(out, KV_LINE_MAX, "E %u %u %u %.*s %.*s\n", (unsigned)e->epoch,
                     (unsigned)e->index, (unsigned)prev_epoch, (int)e->key_len, e->key,
                     (int)e->value_len, e->value);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- the arg ------------------------------------------------------------------------------ */

int kv_parse_args(const char *s, size_t n, kv_args_t *a, char *why)
{
    memset(a, 0, sizeof *a);
    a->port = KV_PORT;
    snprintf(a->log, sizeof a->log, "/kv.log");
    bool role = false;
    size_t i = 0, klen, vlen;
    const char *item, *v;
    int r;
    while ((r = arg_item(s, n, &i, &item, &klen, &v, &vlen)) != 0) {
        if (r < 0) {
            snprintf(why, 128, "'%.*s' is not KEY=VALUE", (int)(klen > 40 ? 40 : klen), item);
            return -1;
        }
#define IS(k) arg_is(item, klen, k)
        if (IS("role") && vlen == 6 && memcmp(v, "leader", 6) == 0) {
            a->leader = role = true;
        } else if (IS("role") && vlen == 8 && memcmp(v, "follower", 8) == 0) {
            role = true;
        } else if (IS("role")) {
            snprintf(why, 128, "role is leader or follower");
            return -1;
        } else if (IS("port")) {
            uint64_t p;
            if (!arg_u64(v, vlen, 1, 65535, &p)) {
                snprintf(why, 128, "port needs a number 1..65535");
                return -1;
            }
            a->port = (uint16_t)p;
        } else if (IS("peers")) {
            size_t j = 0;
            while (j < vlen) {
                size_t s0 = j;
                while (j < vlen && v[j] != '+')
                    j++;
                if (a->npeers == KV_PEERS_MAX) {
                    snprintf(why, 128, "more than %d peers", KV_PEERS_MAX);
                    return -1;
                }
                if (!arg_ipv4(v + s0, j - s0, &a->peers[a->npeers])) {
                    snprintf(why, 128, "peers needs IPv4 addresses joined by '+'");
                    return -1;
                }
                a->npeers++;
                j++;
            }
        } else if (IS("log")) {
            if (vlen == 0 || vlen >= sizeof a->log || v[0] != '/') {
                snprintf(why, 128, "log needs an absolute path of at most %zu bytes",
                         sizeof a->log - 1);
                return -1;
            }
            memcpy(a->log, v, vlen);
            a->log[vlen] = 0;
        } else if (IS("bug") && vlen == 16 && memcmp(v, "ack-before-fsync", 16) == 0) {
            a->bugs |= KV_BUG_ACK_BEFORE_FSYNC;
        } else {
            snprintf(why, 128, "unknown '%.*s' (role, port, peers, log, bug=ack-before-fsync)",
                     (int)(klen > 40 ? 40 : klen), item);
            return -1;
        }
#undef IS
    }
    if (!role) {
        snprintf(why, 128, "role=leader or role=follower is needed");
        return -1;
    }
    if (!a->leader && a->npeers) {
        snprintf(why, 128, "peers are the leader's (followers wait for it)");
        return -1;
    }
    return 0;
}
