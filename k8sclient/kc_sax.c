/*
 * The schema-driven SAX walker (kc_sax.h) and the JSON scanner under it.
 *
 * The scanner is an incremental, resumable push parser for one JSON value
 * whose root must be an object.  It validates strictly (RFC 8259 grammar,
 * string escapes with paired surrogates, UTF-8 as RFC 3629 defines it: no
 * overlong forms, no encoded surrogates, nothing above U+10FFFF, no control
 * characters, numbers, literals, matching brackets, nothing but blanks after
 * the root) everywhere, inside skipped subtrees too: skipping saves the
 * walker's work and every copy, not the checks.  Strings are scanned 16 bytes
 * at a time for a quote, a backslash, a control byte or a non-ASCII byte.
 * Only the strings and numbers the walker reports are copied, and only when
 * they span feeds or hold escapes (into tok, bounded by KC_SAX_MAX_TOKEN);
 * the others are reported in place.  The walker keeps a stack of frames for
 * the kept containers and a single counter for skipped ones, which a loop of
 * their own scans (skip_run).
 *
 * Scanner and walker stay in one file, over the 800 lines other files keep
 * to: the scanner calls the walker for every key and value of the hot path,
 * and as static functions of one unit the compiler can inline those calls
 * into the scan loop, which separate files (without LTO) would forbid.
 */
#include "kc_sax.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "kc_util.h"

/* Grammar states: what may come next. */
enum {
	G_START,  /* the root value (an object) */
	G_VALUE,  /* a value, after ':' or after ',' in an array */
	G_ARR0,   /* a value or ']', after '[' */
	G_OBJ0,   /* a key or '}', after '{' */
	G_KEY,    /* a key, after ',' in an object */
	G_COLON,  /* ':' after a key */
	G_AFTER,  /* ',' or the closing bracket, after a value in a container */
	G_DONE,   /* blanks only, after the root */
};

/* Token states: the token that the last feed ended inside of. */
enum { T_NONE, T_STR, T_NUM, T_LIT };

/* String sub-states. */
enum { S_PLAIN, S_ESC, S_U, S_LOW_BS, S_LOW_U };

/* Number sub-states: after '-', after a leading 0, in the integer part,
 * after '.', in the fraction, after 'e', after the exponent's sign, in the
 * exponent. */
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_EXP, N_ESIGN, N_EDIG };

/* ---- the walker ------------------------------------------------------------------ */

static void clear_pending(struct kc_sax *s)
{
	s->pend_str = s->pend_int = s->pend_bool = s->pend_obj = s->pend_arr = NULL;
}

static const struct kc_sax_schema *frame_schema(const struct kc_sax *s, const struct kc_sax_frame *f)
{
	return f->field ? f->field->sub : s->root;
}

static void emit(struct kc_sax *s, const struct kc_sax_field *f, enum kc_sax_event ev,
		 const struct kc_sax_value *v)
{
	int r = s->handler(s->ud, f->id, ev, v);

	if (r)
		s->error = r;
}

/* A key in a kept object (never called while skipping). */
static void on_key(struct kc_sax *s, const char *key, size_t len)
{
	struct kc_sax_frame *top = &s->st[s->depth];

	if (top->type == KC_SAX_MAP) {
		s->key_ok = len < sizeof(s->key);
		if (s->key_ok) {
			memcpy(s->key, key, len);
			s->key[len] = '\0';
			s->klen = len;
		}
		return;
	}
	clear_pending(s);
	for (const struct kc_sax_schema *sc = frame_schema(s, top); sc; sc = sc->next) {
		for (size_t i = 0; i < sc->n; i++) {
			const struct kc_sax_field *f = &sc->fields[i];

			/* The first byte sorts out most fields without a call to memcmp. */
			if (f->klen != len || (len && f->key[0] != key[0]) || memcmp(f->key, key, len) != 0)
				continue;
			switch (f->kind) {
			case KC_SAX_STR:
				if (!s->pend_str)
					s->pend_str = f;
				break;
			case KC_SAX_INT:
				if (!s->pend_int)
					s->pend_int = f;
				break;
			case KC_SAX_BOOL:
				if (!s->pend_bool)
					s->pend_bool = f;
				break;
			case KC_SAX_OBJ:
			case KC_SAX_MAP:
				if (!s->pend_obj)
					s->pend_obj = f;
				break;
			case KC_SAX_ARR:
				if (!s->pend_arr)
					s->pend_arr = f;
				break;
			}
		}
	}
}

/* Whether a scalar arrives as the value of a kept key; clears the pending keys. */
static const struct kc_sax_field *take(struct kc_sax *s, const struct kc_sax_field *f)
{
	if (s->depth < 0 || s->st[s->depth].type != KC_SAX_OBJ)
		return NULL;
	clear_pending(s);
	return f;
}

/* Whether the string value that begins now is reported (and so copied if need be). */
static bool want_str(const struct kc_sax *s)
{
	const struct kc_sax_frame *top;

	if (s->skip || s->depth < 0)
		return false;
	top = &s->st[s->depth];
	return top->type == KC_SAX_MAP ? s->key_ok : top->type == KC_SAX_OBJ && s->pend_str;
}

static bool want_int(const struct kc_sax *s)
{
	return !s->skip && s->depth >= 0 && s->st[s->depth].type == KC_SAX_OBJ && s->pend_int;
}

/* A string value outside skipped containers; str is NULL when !want_str(). */
static void on_string(struct kc_sax *s, const char *str, size_t len)
{
	struct kc_sax_value v = { .s = str, .len = len };
	const struct kc_sax_field *f;

	if (s->depth < 0)
		return;
	/* Our strings are C strings: a value (or map key) holding \u0000 cannot be kept
	 * whole, so it is dropped like a value of the wrong type.  Kubernetes names,
	 * labels and resource names never contain one. */
	if (str && memchr(str, '\0', len))
		str = NULL;
	if (s->st[s->depth].type == KC_SAX_MAP) {
		if (!str || memchr(s->key, '\0', s->klen))
			return;
		v.key = s->key;
		v.klen = s->klen;
		emit(s, s->st[s->depth].field, KC_SAX_EV_ENTRY, &v);
		return;
	}
	f = take(s, s->pend_str);
	if (f && str)
		emit(s, f, KC_SAX_EV_STR, &v);
}

/* Accepts only plain integers that fit in int64_t; anything else is a wrong type. */
static bool parse_int(const char *p, size_t len, int64_t *ret)
{
	bool neg = false;
	uint64_t v = 0;
	size_t i = 0;

	if (len && p[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == len)
		return false;
	for (; i < len; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
		return false;
	*ret = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* A number outside skipped containers; num is NULL when !want_int(). */
static void on_number(struct kc_sax *s, const char *num, size_t len)
{
	struct kc_sax_value v = { 0 };
	const struct kc_sax_field *f;

	f = take(s, s->pend_int);
	if (f && num && parse_int(num, len, &v.i))
		emit(s, f, KC_SAX_EV_INT, &v);
}

static void on_bool(struct kc_sax *s, bool b)
{
	struct kc_sax_value v = { .b = b };
	const struct kc_sax_field *f;

	f = take(s, s->pend_bool);
	if (f)
		emit(s, f, KC_SAX_EV_BOOL, &v);
}

static bool push(struct kc_sax *s, const struct kc_sax_field *f, uint8_t type)
{
	/* Deeper than any schema: walk it as skipped instead. */
	if (s->depth + 1 >= KC_SAX_MAX_DEPTH) {
		s->skip = 1;
		return false;
	}
	s->depth++;
	s->st[s->depth].field = f;
	s->st[s->depth].type = type;
	return true;
}

static void on_start_map(struct kc_sax *s)
{
	struct kc_sax_frame *top;
	const struct kc_sax_field *f;

	if (s->skip) {
		s->skip++;
		return;
	}
	if (s->depth < 0) {
		push(s, NULL, KC_SAX_OBJ);
		return;
	}
	top = &s->st[s->depth];
	if (top->type == KC_SAX_ARR) {
		f = top->field;
		if (push(s, f, KC_SAX_OBJ))
			emit(s, f, KC_SAX_EV_BEGIN, NULL);
		return;
	}
	f = top->type == KC_SAX_OBJ ? s->pend_obj : NULL;
	clear_pending(s);
	if (!f) {
		s->skip = 1;
		return;
	}
	if (f->kind == KC_SAX_MAP) {
		s->key_ok = false;
		push(s, f, KC_SAX_MAP);
		return;
	}
	if (push(s, f, KC_SAX_OBJ))
		emit(s, f, KC_SAX_EV_BEGIN, NULL);
}

static void on_start_array(struct kc_sax *s)
{
	const struct kc_sax_field *f = NULL;

	if (s->skip) {
		s->skip++;
		return;
	}
	if (s->depth >= 0 && s->st[s->depth].type == KC_SAX_OBJ)
		f = s->pend_arr;
	clear_pending(s);
	if (!f) {
		s->skip = 1;
		return;
	}
	push(s, f, KC_SAX_ARR);
}

static void on_end(struct kc_sax *s)
{
	struct kc_sax_frame *f;

	if (s->skip) {
		s->skip--;
		return;
	}
	if (s->depth < 0)
		return;
	f = &s->st[s->depth--];
	clear_pending(s);
	if (s->depth < 0)
		s->root_done = true;
	if (f->type == KC_SAX_OBJ && f->field)
		emit(s, f->field, KC_SAX_EV_END, NULL);
}

/* ---- the scanner ---------------------------------------------------------------- */

/* The bounds' errors (-EMSGSIZE); a handler's error leaves s->why NULL. */
static const char too_long[] = "token", too_deep[] = "nesting";

/* Records what was wrong with the input at p; returns NULL for the callers' convenience. */
static const unsigned char *bad(struct kc_sax *s, const char *why, const unsigned char *p)
{
	s->why = why;
	s->erroff = s->off + (uint64_t)(p - s->base);
	s->error = -EBADMSG;
	return NULL;
}

/* Appends to the kept token; false (and -EMSGSIZE) past KC_SAX_MAX_TOKEN. */
static bool tok_add(struct kc_sax *s, const void *p, size_t n)
{
	if (n == 0)
		return true;
	if (n > KC_SAX_MAX_TOKEN - s->tlen) {
		s->why = too_long;
		s->error = -EMSGSIZE;
		return false;
	}
	if (n > s->tcap - s->tlen) {
		size_t cap = s->tcap ? s->tcap : 256;

		while (cap < s->tlen + n)
			cap *= 2;
		s->tok = kc_xrealloc(s->tok, cap);
		s->tcap = cap;
	}
	memcpy(s->tok + s->tlen, p, n);
	s->tlen += n;
	return true;
}

static bool tok_utf8(struct kc_sax *s, uint32_t c)
{
	unsigned char b[4];
	size_t n;

	if (c < 0x80) {
		b[0] = (unsigned char)c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = (unsigned char)(0xC0 | c >> 6);
		b[1] = (unsigned char)(0x80 | (c & 0x3F));
		n = 2;
	} else if (c < 0x10000) {
		b[0] = (unsigned char)(0xE0 | c >> 12);
		b[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
		b[2] = (unsigned char)(0x80 | (c & 0x3F));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | c >> 18);
		b[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
		b[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
		b[3] = (unsigned char)(0x80 | (c & 0x3F));
		n = 4;
	}
	return tok_add(s, b, n);
}

/* 1 for the bytes a string may hold as they are: not '"', '\\', a control
 * byte or a non-ASCII byte (validated as UTF-8 one sequence at a time). */
static const unsigned char plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
	R16(0), R16(0),
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* '"' */
	R16(1), R16(1),
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,  /* '\\' */
	R16(1), R16(1),
	R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),
#undef R16
};

/* The first byte in [p, end) that plain[] does not pass, or end. */
static inline __attribute__((always_inline)) const unsigned char *plain_run(const unsigned char *p,
									    const unsigned char *end)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* Signed: bytes >= 0x80 are negative, so below ' ' too. */
		__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
					 _mm_cmplt_epi8(v, space));
		unsigned mask = (unsigned)_mm_movemask_epi8(m);

		if (mask)
			return p + __builtin_ctz(mask);
		p += 16;
	}
#endif
	while (p < end && plain[*p])
		p++;
	return p;
}

static int hexval(unsigned c)
{
	if (c - '0' < 10)
		return (int)(c - '0');
	c |= 0x20;
	if (c - 'a' < 6)
		return (int)(c - 'a' + 10);
	return -1;
}

/* A complete string (key or value), in place or in tok.  A kept string read
 * in place obeys the bound too, so that the result does not depend on how
 * the input was cut. */
static void str_done(struct kc_sax *s, const char *v, size_t n)
{
	if (s->keep && n > KC_SAX_MAX_TOKEN) {
		s->why = too_long;
		s->error = -EMSGSIZE;
		return;
	}
	if (!v)
		v = "";  /* an empty tok that was never allocated */
	s->ts = T_NONE;
	if (s->is_key) {
		s->gs = G_COLON;
		if (s->keep)
			on_key(s, v, n);
	} else {
		s->gs = s->nest ? G_AFTER : G_DONE;
		if (!s->skip)
			on_string(s, s->keep ? v : NULL, n);
	}
}

/*
 * Scans string content from p, just after the opening quote or where the
 * last feed stopped.  Returns the position after the closing quote (the
 * string is reported), end if the string goes on in the next feed, or NULL
 * on an error.  run is the start of the bytes not yet copied into tok that
 * are content as they are; a kept string is copied only at an escape or at
 * the end of the feed.
 */
static const unsigned char *scan_str(struct kc_sax *s, const unsigned char *p, const unsigned char *end)
{
	const unsigned char *run = p;
	unsigned c;

	for (;;) {
		if (s->sub == S_PLAIN && !s->u8need) {
			p = plain_run(p, end);
			if (p == end)
				break;
			c = *p;
			if (c == '"') {
				if (s->keep && s->copied) {
					if (!tok_add(s, run, (size_t)(p - run)))
						return NULL;
					str_done(s, s->tok, s->tlen);
				} else {
					str_done(s, (const char *)run, (size_t)(p - run));
				}
				return s->error ? NULL : p + 1;
			}
			if (c == '\\') {
				if (s->keep) {
					if (!tok_add(s, run, (size_t)(p - run)))
						return NULL;
					s->copied = true;
				}
				s->sub = S_ESC;
				run = ++p;
				continue;
			}
			if (c < 0x20)
				return bad(s, "control character in a string", p);
			if (c < 0xC2)
				return bad(s, "invalid UTF-8 in a string", p);
			if (c < 0xE0) {
				s->u8need = 1;
				s->u8lo = 0x80;
				s->u8hi = 0xBF;
			} else if (c < 0xF0) {
				s->u8need = 2;
				s->u8lo = c == 0xE0 ? 0xA0 : 0x80;  /* not overlong */
				s->u8hi = c == 0xED ? 0x9F : 0xBF;  /* not a surrogate */
			} else if (c < 0xF5) {
				s->u8need = 3;
				s->u8lo = c == 0xF0 ? 0x90 : 0x80;  /* not overlong */
				s->u8hi = c == 0xF4 ? 0x8F : 0xBF;  /* not above U+10FFFF */
			} else {
				return bad(s, "invalid UTF-8 in a string", p);
			}
			p++;
			continue;
		}
		if (p == end)
			break;
		c = *p;
		if (s->u8need) {
			if (c < s->u8lo || c > s->u8hi)
				return bad(s, "invalid UTF-8 in a string", p);
			s->u8lo = 0x80;
			s->u8hi = 0xBF;
			s->u8need--;
			p++;
			continue;
		}
		switch (s->sub) {
		case S_ESC: {
			char out;

			switch (c) {
			case '"': case '\\': case '/':
				out = (char)c;
				break;
			case 'b':
				out = '\b';
				break;
			case 'f':
				out = '\f';
				break;
			case 'n':
				out = '\n';
				break;
			case 'r':
				out = '\r';
				break;
			case 't':
				out = '\t';
				break;
			case 'u':
				s->sub = S_U;
				s->cnt = 0;
				s->cp = 0;
				goto next;
			default:
				return bad(s, "invalid escape in a string", p);
			}
			if (s->keep && !tok_add(s, &out, 1))
				return NULL;
			s->sub = S_PLAIN;
			break;
		}
		case S_U: {
			int h = hexval(c);

			if (h < 0)
				return bad(s, "invalid \\u escape in a string", p);
			s->cp = (uint16_t)(s->cp << 4 | (unsigned)h);
			if (++s->cnt < 4)
				break;
			if (s->hi) {
				if (s->cp < 0xDC00 || s->cp > 0xDFFF)
					return bad(s, "unpaired surrogate in a string", p);
				if (s->keep && !tok_utf8(s, 0x10000 + ((uint32_t)(s->hi - 0xD800) << 10) + (s->cp - 0xDC00u)))
					return NULL;
				s->hi = 0;
				s->sub = S_PLAIN;
			} else if (s->cp >= 0xD800 && s->cp <= 0xDBFF) {
				s->hi = s->cp;
				s->sub = S_LOW_BS;
			} else if (s->cp >= 0xDC00 && s->cp <= 0xDFFF) {
				return bad(s, "unpaired surrogate in a string", p);
			} else {
				if (s->keep && !tok_utf8(s, s->cp))
					return NULL;
				s->sub = S_PLAIN;
			}
			break;
		}
		case S_LOW_BS:
			if (c != '\\')
				return bad(s, "unpaired surrogate in a string", p);
			s->sub = S_LOW_U;
			break;
		case S_LOW_U:
			if (c != 'u')
				return bad(s, "unpaired surrogate in a string", p);
			s->sub = S_U;
			s->cnt = 0;
			s->cp = 0;
			break;
		}
next:
		run = ++p;
	}
	/* The string goes on in the next feed. */
	if (s->keep) {
		if (!tok_add(s, run, (size_t)(end - run)))
			return NULL;
		s->copied = true;
	}
	return end;
}

static void num_done(struct kc_sax *s, const char *v, size_t n)
{
	if (s->keep && n > KC_SAX_MAX_TOKEN) {
		s->why = too_long;
		s->error = -EMSGSIZE;
		return;
	}
	s->ts = T_NONE;
	s->gs = s->nest ? G_AFTER : G_DONE;
	if (!s->skip && s->depth >= 0)
		on_number(s, s->keep ? v : NULL, n);
}

/* Scans a number from p (start: its first byte in this feed, for copies);
 * returns the byte after it, end, or NULL on an error. */
static const unsigned char *scan_num(struct kc_sax *s, const unsigned char *start, const unsigned char *p,
				     const unsigned char *end)
{
	for (; p < end; p++) {
		unsigned c = *p, d = c - '0';

		switch (s->sub) {
		case N_MINUS:
			if (d > 9)
				return bad(s, "invalid number", p);
			s->sub = d ? N_INT : N_ZERO;
			continue;
		case N_ZERO:
			break;
		case N_INT:
			if (d <= 9)
				continue;
			break;
		case N_DOT:
			if (d > 9)
				return bad(s, "invalid number", p);
			s->sub = N_FRAC;
			continue;
		case N_FRAC:
			if (d <= 9)
				continue;
			if (c == 'e' || c == 'E') {
				s->sub = N_EXP;
				continue;
			}
			goto done;
		case N_EXP:
			if (c == '+' || c == '-') {
				s->sub = N_ESIGN;
				continue;
			}
			/* fall through */
		case N_ESIGN:
			if (d > 9)
				return bad(s, "invalid number", p);
			s->sub = N_EDIG;
			continue;
		case N_EDIG:
			if (d <= 9)
				continue;
			goto done;
		}
		/* After the integer part. */
		if (c == '.') {
			s->sub = N_DOT;
			continue;
		}
		if (c == 'e' || c == 'E') {
			s->sub = N_EXP;
			continue;
		}
		goto done;
	}
	if (s->keep) {
		if (!tok_add(s, start, (size_t)(end - start)))
			return NULL;
		s->copied = true;
	}
	return end;
done:
	if (s->keep && s->copied) {
		if (!tok_add(s, start, (size_t)(p - start)))
			return NULL;
		num_done(s, s->tok, s->tlen);
	} else {
		num_done(s, (const char *)start, (size_t)(p - start));
	}
	return s->error ? NULL : p;
}

static const unsigned char *scan_lit(struct kc_sax *s, const unsigned char *p, const unsigned char *end)
{
	while (s->lit[s->sub]) {
		if (p == end)
			return end;
		if (*p != (unsigned char)s->lit[s->sub])
			return bad(s, "invalid literal", p);
		p++;
		s->sub++;
	}
	s->ts = T_NONE;
	s->gs = s->nest ? G_AFTER : G_DONE;
	if (!s->skip && s->depth >= 0) {
		if (s->lit[0] == 'n')
			take(s, NULL);
		else
			on_bool(s, s->lit[0] == 't');
	}
	return s->error ? NULL : p;
}

/* Whether a value may begin here; records the error if not. */
static bool value_ok(struct kc_sax *s, const unsigned char *p)
{
	if (s->gs == G_VALUE || s->gs == G_ARR0)
		return true;
	if (s->gs == G_START)
		bad(s, "not a JSON object", p);
	else if (s->gs == G_DONE)
		bad(s, "more than one JSON value", p);
	else
		bad(s, "unexpected value", p);
	return false;
}

static bool top_is_obj(const struct kc_sax *s)
{
	unsigned i = s->nest - 1;

	return s->objs[i / 8] >> (i % 8) & 1;
}

static bool open_container(struct kc_sax *s, bool obj)
{
	unsigned i = s->nest;

	if (i >= KC_SAX_MAX_NEST) {
		s->why = too_deep;
		s->error = -EMSGSIZE;
		return false;
	}
	if (obj)
		s->objs[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		s->objs[i / 8] &= (uint8_t)~(1u << (i % 8));
	s->nest++;
	return true;
}

/* Continues the token that the last feed ended inside of. */
static const unsigned char *resume(struct kc_sax *s, const unsigned char *p, const unsigned char *end)
{
	switch (s->ts) {
	case T_STR:
		return scan_str(s, p, end);
	case T_NUM:
		return scan_num(s, p, p, end);
	case T_LIT:
		return scan_lit(s, p, end);
	}
	return p;
}

/*
 * The bulk of a Pod is skipped (managedFields alone is thousands of short
 * keys and empty objects), so skipped containers get a loop of their own:
 * the same grammar checks as scan(), with the state in locals and no walker
 * calls, since nothing inside a skipped container is reported.  It stops
 * where the skipped container ends, at the end of the feed, and at anything
 * it does not handle itself (numbers, literals, strings with escapes, non-ASCII
 * or cut by the feed, and every error), leaving that byte to scan(), which
 * checks it and reports errors at the same offsets.
 */
static const unsigned char *skip_run(struct kc_sax *s, const unsigned char *p, const unsigned char *end)
{
	unsigned long skip = s->skip;
	unsigned nest = s->nest;
	uint8_t gs = s->gs;

	while (p < end && skip) {
		unsigned c = *p;

		switch (c) {
		case ' ': case '\t': case '\n': case '\r':
			p++;
			continue;
		case '"': {
			const unsigned char *q;
			bool key = gs == G_OBJ0 || gs == G_KEY;

			if (!key && gs != G_VALUE && gs != G_ARR0)
				goto out;
			q = plain_run(p + 1, end);
			if (q == end || *q != '"')
				goto out;
			gs = key ? G_COLON : G_AFTER;
			p = q + 1;
			continue;
		}
		case ':':
			if (gs != G_COLON)
				goto out;
			gs = G_VALUE;
			p++;
			continue;
		case ',':
			if (gs != G_AFTER)
				goto out;
			gs = s->objs[(nest - 1) / 8] >> ((nest - 1) % 8) & 1 ? G_KEY : G_VALUE;
			p++;
			continue;
		case '{':
		case '[':
			if ((gs != G_VALUE && gs != G_ARR0) || nest >= KC_SAX_MAX_NEST)
				goto out;
			if (c == '{')
				s->objs[nest / 8] |= (uint8_t)(1u << (nest % 8));
			else
				s->objs[nest / 8] &= (uint8_t)~(1u << (nest % 8));
			nest++;
			skip++;
			gs = c == '{' ? G_OBJ0 : G_ARR0;
			p++;
			continue;
		case '}':
		case ']':
			if (gs != (c == '}' ? G_OBJ0 : G_ARR0) &&
			    (gs != G_AFTER || (s->objs[(nest - 1) / 8] >> ((nest - 1) % 8) & 1) != (c == '}')))
				goto out;
			nest--;
			skip--;
			gs = nest ? G_AFTER : G_DONE;
			p++;
			continue;
		default:
			goto out;
		}
	}
out:
	s->skip = skip;
	s->nest = nest;
	s->gs = gs;
	return p;
}

static const unsigned char *scan(struct kc_sax *s, const unsigned char *p, const unsigned char *end)
{
	while (p < end) {
		unsigned c;

		if (s->skip) {
			p = skip_run(s, p, end);
			if (p == end)
				break;
		}
		c = *p;

		switch (c) {
		case ' ': case '\t': case '\n': case '\r':
			p++;
			continue;
		case '"': {
			const unsigned char *q;

			if (s->gs == G_OBJ0 || s->gs == G_KEY) {
				s->is_key = true;
				s->keep = !s->skip;
			} else if (value_ok(s, p)) {
				s->is_key = false;
				s->keep = want_str(s);
			} else {
				return NULL;
			}
			/*
			 * Most strings are plain ASCII, without escapes, and end in
			 * this feed: one plain_run finds the closing quote and the
			 * string is done in place, without the token state that
			 * scan_str keeps for strings cut by a feed.  Anything else
			 * (an escape, a non-ASCII or control byte, the end of the
			 * feed) goes through scan_str from the start of the string.
			 */
			q = plain_run(p + 1, end);
			if (q < end && *q == '"') {
				str_done(s, (const char *)p + 1, (size_t)(q - p - 1));
				if (s->error)
					return NULL;
				p = q + 1;
				continue;
			}
			s->ts = T_STR;
			s->sub = S_PLAIN;
			s->u8need = 0;
			s->hi = 0;
			s->tlen = 0;
			s->copied = false;
			p = scan_str(s, p + 1, end);
			if (!p)
				return NULL;
			continue;
		}
		case '{':
			if (s->gs != G_START && !value_ok(s, p))
				return NULL;
			if (!open_container(s, true))
				return NULL;
			on_start_map(s);
			if (s->error)
				return NULL;
			s->gs = G_OBJ0;
			p++;
			continue;
		case '[':
			if (!value_ok(s, p) || !open_container(s, false))
				return NULL;
			on_start_array(s);
			s->gs = G_ARR0;
			p++;
			continue;
		case '}':
		case ']':
			if (s->gs != (c == '}' ? G_OBJ0 : G_ARR0) &&
			    (s->gs != G_AFTER || top_is_obj(s) != (c == '}')))
				return bad(s, c == '}' ? "unexpected '}'" : "unexpected ']'", p);
			s->nest--;
			on_end(s);
			if (s->error)
				return NULL;
			s->gs = s->nest ? G_AFTER : G_DONE;
			p++;
			continue;
		case ',':
			if (s->gs != G_AFTER)
				return bad(s, "unexpected ','", p);
			s->gs = top_is_obj(s) ? G_KEY : G_VALUE;
			p++;
			continue;
		case ':':
			if (s->gs != G_COLON)
				return bad(s, "unexpected ':'", p);
			s->gs = G_VALUE;
			p++;
			continue;
		case '-': case '0': case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9':
			if (!value_ok(s, p))
				return NULL;
			s->ts = T_NUM;
			s->sub = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
			s->keep = want_int(s);
			s->tlen = 0;
			s->copied = false;
			p = scan_num(s, p, p + 1, end);
			if (!p)
				return NULL;
			continue;
		case 't': case 'f': case 'n':
			if (!value_ok(s, p))
				return NULL;
			s->ts = T_LIT;
			s->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
			s->sub = 1;
			p = scan_lit(s, p + 1, end);
			if (!p)
				return NULL;
			continue;
		default:
			if (s->gs == G_DONE)
				return bad(s, "more than one JSON value", p);
			return bad(s, "invalid character", p);
		}
	}
	return p;
}

/* ---- the interface ------------------------------------------------------------- */

void kc_sax_init(struct kc_sax *s, const struct kc_sax_schema *root, kc_sax_handler h, void *ud)
{
	memset(s, 0, sizeof(*s));
	s->root = root;
	s->handler = h;
	s->ud = ud;
	s->depth = -1;
}

void kc_sax_begin(struct kc_sax *s)
{
	/* A rare huge token gives its buffer back; a small one is reused. */
	if (s->tcap > 64 * 1024) {
		free(s->tok);
		s->tok = NULL;
		s->tcap = 0;
	}
	s->tlen = 0;
	s->depth = -1;
	s->skip = 0;
	s->root_done = false;
	s->error = 0;
	s->gs = G_START;
	s->ts = T_NONE;
	s->nest = 0;
	s->off = 0;
	s->why = NULL;
	clear_pending(s);
}

static int failed(struct kc_sax *s, char *err, size_t errsize)
{
	if (s->why == too_long)
		snprintf(err, errsize, "a JSON token longer than %u bytes", KC_SAX_MAX_TOKEN);
	else if (s->why == too_deep)
		snprintf(err, errsize, "JSON nested deeper than %u levels", KC_SAX_MAX_NEST);
	else if (s->why && strcmp(s->why, "not a JSON object") == 0)
		snprintf(err, errsize, "%s", s->why);
	else if (s->why)
		snprintf(err, errsize, "invalid JSON: %s at byte %llu", s->why, (unsigned long long)s->erroff);
	return s->error;
}

int kc_sax_feed(struct kc_sax *s, const char *buf, size_t len, char *err, size_t errsize)
{
	const unsigned char *p = (const unsigned char *)buf, *end = p + len;

	if (s->error)
		return s->error;
	if (len == 0)
		return 0;
	s->base = p;
	if (s->ts != T_NONE)
		p = resume(s, p, end);
	if (p)
		p = scan(s, p, end);
	s->off += len;
	s->base = NULL;
	if (!p || s->error) {
		if (!s->error)
			s->error = -EBADMSG;
		return failed(s, err, errsize);
	}
	return 0;
}

int kc_sax_complete(struct kc_sax *s, char *err, size_t errsize)
{
	if (s->error)
		return s->error;
	if (s->gs == G_DONE && s->ts == T_NONE)
		return 0;
	s->error = -EBADMSG;
	s->erroff = s->off;
	s->why = s->gs == G_START && s->ts == T_NONE ? "not a JSON object" : "premature end of input";
	return failed(s, err, errsize);
}

void kc_sax_done(struct kc_sax *s)
{
	if (s) {
		free(s->tok);
		s->tok = NULL;
		s->tcap = s->tlen = 0;
	}
}
