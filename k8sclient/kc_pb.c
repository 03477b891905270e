/*
 * Kubernetes' protobuf encoding (kc_pb.h): the wire reader, the envelope and
 * the schema walker.  Nothing here allocates: values are reported as pointers
 * into the message, as kc_sax reports strings in place.
 */
#include "kc_pb.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define HOT static inline __attribute__((always_inline))

HOT int varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	const uint8_t *q = *p;
	uint64_t v = 0;

	/* Keys, lengths under 128 and small numbers: one byte. */
	if (q < end && *q < 0x80) {
		*ret = *q;
		*p = q + 1;
		return 1;
	}
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (q == end)
			return 0;
		v |= (uint64_t)(*q & 0x7F) << shift;
		if (!(*q++ & 0x80)) {
			*ret = v;
			*p = q;
			return 1;
		}
	}
	return -EBADMSG;
}

int kc_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	return varint(p, end, ret);
}

HOT int next_field(struct kc_pb_reader *r, struct kc_pb_field *f)
{
	uint64_t key, n;

	if (r->p == r->end)
		return 0;
	if (varint(&r->p, r->end, &key) != 1 || key >> 3 == 0 || key >> 3 > UINT32_MAX)
		return -EBADMSG;
	f->num = (uint32_t)(key >> 3);
	f->wire = key & 7;
	f->data = NULL;
	f->len = 0;
	f->v = 0;
	switch (f->wire) {
	case KC_PB_VARINT:
		return varint(&r->p, r->end, &f->v) == 1 ? 1 : -EBADMSG;
	case KC_PB_I64:
	case KC_PB_I32:
		n = f->wire == KC_PB_I64 ? 8 : 4;
		if ((uint64_t)(r->end - r->p) < n)
			return -EBADMSG;
		for (unsigned i = 0; i < n; i++)
			f->v |= (uint64_t)r->p[i] << (8 * i);
		r->p += n;
		return 1;
	case KC_PB_LEN:
		if (varint(&r->p, r->end, &n) != 1 || n > (uint64_t)(r->end - r->p))
			return -EBADMSG;
		f->data = r->p;
		f->len = (size_t)n;
		r->p += n;
		return 1;
	}
	return -EBADMSG;  /* groups (3, 4) are not used by Kubernetes; 6 and 7 do not exist */
}

int kc_pb_next(struct kc_pb_reader *r, struct kc_pb_field *f)
{
	return next_field(r, f);
}

int kc_pb_unwrap(const void *body, size_t len, const uint8_t **kind, size_t *kind_len, const uint8_t **raw,
		 size_t *raw_len, char *err, size_t errsize)
{
	struct kc_pb_reader r, tm;
	struct kc_pb_field f, g;
	int n;

	*kind = *raw = NULL;
	*kind_len = *raw_len = 0;
	if (len < KC_PB_MAGIC_LEN || memcmp(body, KC_PB_MAGIC, KC_PB_MAGIC_LEN) != 0) {
		snprintf(err, errsize, "protobuf body without the \"k8s\\0\" prefix");
		return -EBADMSG;
	}
	kc_pb_reader_init(&r, (const uint8_t *)body + KC_PB_MAGIC_LEN, len - KC_PB_MAGIC_LEN);
	while ((n = next_field(&r, &f)) == 1) {
		if (f.wire != KC_PB_LEN)
			continue;
		if (f.num == 1) {
			kc_pb_reader_init(&tm, f.data, f.len);
			while ((n = next_field(&tm, &g)) == 1)
				if (g.num == 2 && g.wire == KC_PB_LEN) {
					*kind = g.data;
					*kind_len = g.len;
				}
			if (n < 0)
				break;
		} else if (f.num == 2) {
			*raw = f.data;
			*raw_len = f.len;
		} else if (f.num == 3 && f.len > 0) {
			snprintf(err, errsize, "protobuf body with contentEncoding \"%.*s\"", (int)(f.len > 32 ? 32 : f.len),
				 (const char *)f.data);
			return -EBADMSG;
		}
	}
	if (n < 0) {
		snprintf(err, errsize, "malformed protobuf envelope");
		return -EBADMSG;
	}
	if (!*raw)
		*raw = (const uint8_t *)body;  /* an empty object: a valid pointer, no bytes */
	return 0;
}

bool kc_pb_is_content_type(const char *ct)
{
	size_t n = sizeof(KC_PB_CONTENT_TYPE) - 1;

	while (ct && (*ct == ' ' || *ct == '\t'))
		ct++;
	return ct && strncasecmp(ct, KC_PB_CONTENT_TYPE, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

/* ---- the walker -------------------------------------------------------------------- */

struct walk {
	kc_sax_handler h;
	void *ud;
	char *err;
	size_t errsize;
};

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		unsigned need;
		uint8_t lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			return false;
		}
		if (n - i <= need)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (unsigned k = 2; k <= need; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
		i += need + 1;
	}
	return true;
}

static int fail(struct walk *w, int r, const char *why, uint32_t num)
{
	snprintf(w->err, w->errsize, "%s (protobuf field %u)", why, num);
	return r;
}

/*
 * A string value as kc_sax would report it: a string holding NUL is dropped
 * (JSON's \u0000), one over KC_SAX_MAX_TOKEN or not UTF-8 fails the message.
 * Returns 1 to report it, 0 to drop it, or the error.
 */
#ifdef __SSE2__
/* Whether 16 bytes are all ASCII and none is NUL. */
HOT bool plain16(const uint8_t *s)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);

	return !_mm_movemask_epi8(_mm_or_si128(v, _mm_cmpeq_epi8(v, _mm_setzero_si128())));
}
#endif

static int string_ok(struct walk *w, const uint8_t *s, size_t n, uint32_t num)
{
	size_t i = 0;

	if (n > KC_SAX_MAX_TOKEN)
		return fail(w, -EMSGSIZE, "token longer than the bound", num);
	/* Most kept strings are ASCII without NUL: one pass; the rest are checked in full. */
#ifdef __SSE2__
	while (n - i >= 16) {
		if (!plain16(s + i))
			break;
		i += 16;
	}
	/* The tail: the last 16 bytes again, overlapping what was checked. */
	if (i < n && n >= 16 && plain16(s + n - 16))
		i = n;
#endif
	while (i < n && s[i] - 1u < 0x7Fu)
		i++;
	if (i == n)
		return 1;
	if (!utf8_ok(s + i, n - i))
		return fail(w, -EBADMSG, "a string that is not UTF-8", num);
	return memchr(s + i, '\0', n - i) ? 0 : 1;
}

/* A metav1.Time {1: seconds, 2: nanos} as RFC 3339 in buf; 0 for the zero time
 * (Go writes an unset Time as an empty message, as JSON writes null). */
static size_t format_time(const uint8_t *m, size_t len, char *buf, size_t size)
{
	struct kc_pb_reader r;
	struct kc_pb_field f;
	int64_t secs = 0;
	int64_t nanos = 0;
	struct tm tm;
	time_t t;
	int n;

	kc_pb_reader_init(&r, m, len);
	while ((n = next_field(&r, &f)) == 1) {
		if (f.wire != KC_PB_VARINT)
			continue;
		if (f.num == 1)
			secs = (int64_t)f.v;
		else if (f.num == 2)
			nanos = (int64_t)f.v;
	}
	if (n < 0 || (secs == 0 && nanos == 0))
		return 0;
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return 0;
	/* Four-digit years, as Go's RFC 3339 (strftime's %Y writes 999, not 0999). */
	return (size_t)snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
				tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A map entry {1: key, 2: value}; a Quantity value is {1: string}. */
static int map_entry(struct walk *w, const struct kc_sax_field *fd, const uint8_t *m, size_t len)
{
	struct kc_pb_reader r, q;
	struct kc_pb_field f, g;
	struct kc_sax_value v = { 0 };
	bool have_key = false, have_val = false;
	int n, ok;

	kc_pb_reader_init(&r, m, len);
	while ((n = next_field(&r, &f)) == 1) {
		if (f.wire != KC_PB_LEN)
			continue;
		if (f.num == 1) {
			v.key = (const char *)f.data;
			v.klen = f.len;
			have_key = true;
		} else if (f.num == 2 && fd->pbw == KC_SAX_PB_QUANTITY) {
			kc_pb_reader_init(&q, f.data, f.len);
			v.s = "";
			v.len = 0;
			while ((n = next_field(&q, &g)) == 1)
				if (g.num == 1 && g.wire == KC_PB_LEN) {
					v.s = (const char *)g.data;
					v.len = g.len;
				}
			if (n < 0)
				return fail(w, -EBADMSG, "malformed Quantity", fd->pb);
			have_val = true;
		} else if (f.num == 2) {
			v.s = (const char *)f.data;
			v.len = f.len;
			have_val = true;
		}
	}
	if (n < 0)
		return fail(w, -EBADMSG, "malformed map entry", fd->pb);
	if (!have_key)
		return 0;
	if (!have_val)
		v.s = "";  /* Go leaves out an empty value: "" */
	/* A key kc_sax could not hold (too long, or with \u0000) drops its entry there too. */
	if (v.klen >= KC_SAX_MAX_KEY)
		return 0;
	if ((ok = string_ok(w, (const uint8_t *)v.key, v.klen, fd->pb)) <= 0)
		return ok;
	if ((ok = string_ok(w, (const uint8_t *)v.s, v.len, fd->pb)) <= 0)
		return ok;
	return w->h(w->ud, fd->id, KC_SAX_EV_ENTRY, &v);
}

static bool wire_fits(const struct kc_sax_field *fd, uint8_t wire)
{
	return fd->kind == KC_SAX_INT || fd->kind == KC_SAX_BOOL ? wire == KC_PB_VARINT : wire == KC_PB_LEN;
}

HOT const struct kc_sax_field *lookup(const struct kc_sax_schema *sc, const struct kc_pb_field *f)
{
	if (f->num > UINT8_MAX)
		return NULL;
	for (; sc; sc = sc->next)
		for (size_t i = 0; i < sc->n; i++)
			if (sc->fields[i].pb == f->num && wire_fits(&sc->fields[i], f->wire))
				return &sc->fields[i];
	return NULL;
}

/*
 * The field numbers below 64 the schema reads, as a mask: most fields of a
 * message are not kept, and the mask turns them away without a look at the
 * schema.  *first: some field is KC_SAX_PB_FIRST.
 */
static uint64_t schema_mask(const struct kc_sax_schema *sc, bool *first)
{
	uint64_t mask = 0;

	*first = false;
	for (; sc; sc = sc->next)
		for (size_t i = 0; i < sc->n; i++) {
			unsigned pb = sc->fields[i].pb;

			mask |= pb >= 64 ? 1 : (uint64_t)1 << pb;  /* bit 0: a number above 63, looked up */
			*first |= sc->fields[i].pbw == KC_SAX_PB_FIRST;
		}
	return mask;
}

static int walk(struct walk *w, const struct kc_sax_schema *sc, const uint8_t *m, size_t len, int depth);

/*
 * Steps over the fields the mask says are not read, in the common forms (a
 * one-byte key; a varint of one byte or a length of one or two), without
 * decoding them into a kc_pb_field: most of a message's fields are such.
 * Returns 1 when a field is left for next_field (kept, or in another form),
 * 0 at the end of the message.
 */
HOT int skip_unread(struct kc_pb_reader *r, uint64_t mask)
{
	const uint8_t *p = r->p, *end = r->end;

	while (p < end && *p < 0x80 && *p >> 3 && !(mask >> (*p >> 3) & 1)) {
		const uint8_t *q = p + 1;
		size_t n;

		if ((*p & 7) == KC_PB_VARINT && q < end && *q < 0x80) {
			p = q + 1;
			continue;
		}
		if ((*p & 7) != KC_PB_LEN || q >= end)
			break;
		if (*q < 0x80) {
			n = *q;
			q += 1;
		} else if (end - q >= 2 && q[1] < 0x80) {
			n = (size_t)(q[0] & 0x7F) | (size_t)q[1] << 7;
			q += 2;
		} else {
			break;
		}
		if ((size_t)(end - q) < n)
			break;  /* next_field says what is wrong */
		p = q + n;
	}
	r->p = p;
	return p < end;
}

/* Two passes where the schema orders some fields first: those, then the others. */
static int walk_fields(struct walk *w, const struct kc_sax_schema *sc, uint64_t mask, const uint8_t *m,
		       size_t len, int depth, int pass)
{
	struct kc_pb_reader r;
	struct kc_pb_field f;
	struct kc_sax_value v;
	char tbuf[40];
	int n, ok;

	kc_pb_reader_init(&r, m, len);
	while ((n = skip_unread(&r, mask)) > 0 && (n = next_field(&r, &f)) == 1) {
		const struct kc_sax_field *fd;

		if (!(mask >> (f.num < 64 ? f.num : 0) & 1))
			continue;
		fd = lookup(sc, &f);
		if (!fd || (pass >= 0 && (fd->pbw == KC_SAX_PB_FIRST) != (pass == 0)))
			continue;
		memset(&v, 0, sizeof(v));
		switch (fd->kind) {
		case KC_SAX_STR:
			if (fd->pbw == KC_SAX_PB_TIME) {
				v.len = format_time(f.data, f.len, tbuf, sizeof(tbuf));
				if (!v.len)
					continue;
				v.s = tbuf;
			} else {
				if ((ok = string_ok(w, f.data, f.len, f.num)) < 0)
					return ok;
				if (!ok)
					continue;
				v.s = (const char *)f.data;
				v.len = f.len;
			}
			ok = w->h(w->ud, fd->id, KC_SAX_EV_STR, &v);
			break;
		case KC_SAX_INT:
			v.i = (int64_t)f.v;  /* int32 and int64 are both sign-extended to 64 bits */
			ok = w->h(w->ud, fd->id, KC_SAX_EV_INT, &v);
			break;
		case KC_SAX_BOOL:
			v.b = f.v != 0;
			ok = w->h(w->ud, fd->id, KC_SAX_EV_BOOL, &v);
			break;
		case KC_SAX_OBJ:
		case KC_SAX_ARR:
			/* A repeated message: each occurrence is one element, as JSON's array items. */
			ok = w->h(w->ud, fd->id, KC_SAX_EV_BEGIN, &v);
			if (!ok && fd->sub)
				ok = walk(w, fd->sub, f.data, f.len, depth + 1);
			if (!ok)
				ok = w->h(w->ud, fd->id, KC_SAX_EV_END, &v);
			break;
		case KC_SAX_MAP:
			ok = map_entry(w, fd, f.data, f.len);
			break;
		default:
			ok = 0;
		}
		if (ok)
			return ok;
	}
	return n < 0 ? fail(w, -EBADMSG, "malformed protobuf message", 0) : 0;
}

static int walk(struct walk *w, const struct kc_sax_schema *sc, const uint8_t *m, size_t len, int depth)
{
	bool first;
	uint64_t mask = schema_mask(sc, &first);
	int r;

	if (depth > KC_SAX_MAX_DEPTH)
		return fail(w, -EMSGSIZE, "nesting deeper than the bound", 0);
	if (!first)
		return walk_fields(w, sc, mask, m, len, depth, -1);
	r = walk_fields(w, sc, mask, m, len, depth, 0);
	return r ? r : walk_fields(w, sc, mask, m, len, depth, 1);
}

int kc_pb_walk(const struct kc_sax_schema *root, const void *msg, size_t len, kc_sax_handler h, void *ud,
	       char *err, size_t errsize)
{
	struct walk w = { h, ud, err, errsize };

	if (errsize)
		err[0] = '\0';
	return walk(&w, root, msg, len, 0);
}
