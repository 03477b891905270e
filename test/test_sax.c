/*
 * Unit tests of kc_sax (the schema walker and its JSON scanner): every
 * grammar corner of RFC 8259 accepted or refused, escapes and surrogate
 * pairs unescaped exactly, invalid UTF-8, deep nesting and the token bound,
 * and every input fed whole, split at every byte offset and byte by byte
 * with the same result.  A differential test checks validity and the kept
 * strings against jansson on random and mutated documents.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "kc_sax.h"
#include "kc_util.h"

/* ---- a schema that keeps one field of each kind, and a transcript of its events ---- */

static const struct kc_sax_field inner_f[] = {
	KC_SAX_F("s", KC_SAX_STR, 5, NULL),
	KC_SAX_F("i", KC_SAX_INT, 6, NULL),
};
static const struct kc_sax_schema inner_s = KC_SAX_SCHEMA(inner_f);
/* A schema that nests without end, to go past KC_SAX_MAX_DEPTH kept frames. */
static const struct kc_sax_schema rec_s;
static const struct kc_sax_field rec_f[] = { KC_SAX_F("r", KC_SAX_OBJ, 11, &rec_s) };
static const struct kc_sax_schema rec_s = KC_SAX_SCHEMA(rec_f);
static const struct kc_sax_field root_f[] = {
	KC_SAX_F("s", KC_SAX_STR, 1, NULL),    KC_SAX_F("i", KC_SAX_INT, 2, NULL),
	KC_SAX_F("b", KC_SAX_BOOL, 3, NULL),   KC_SAX_F("o", KC_SAX_OBJ, 4, &inner_s),
	KC_SAX_F("a", KC_SAX_ARR, 7, &inner_s), KC_SAX_F("m", KC_SAX_MAP, 8, NULL),
	KC_SAX_F("x", KC_SAX_STR, 9, NULL),    KC_SAX_F("x", KC_SAX_INT, 10, NULL),
	KC_SAX_F("r", KC_SAX_OBJ, 11, &rec_s),
};
static const struct kc_sax_schema root_s = KC_SAX_SCHEMA(root_f);

struct transcript {
	char *p;
	size_t len, cap;
};

static void put(struct transcript *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->p = kc_xrealloc(t->p, t->cap);
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void putf(struct transcript *t, const char *fmt, ...) KC_PRINTF(2, 3);
static void putf(struct transcript *t, const char *fmt, ...)
{
	char buf[128];
	va_list a;
	int n;

	va_start(a, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, a);
	va_end(a);
	put(t, buf, (size_t)n);
}

/* Bytes as they are, but the non-printable ones as \xNN, so NULs show. */
static void put_bytes(struct transcript *t, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == '\\' || c == 0x7f)
			putf(t, "\\x%02x", c);
		else
			put(t, (const char *)&c, 1);
	}
}

static int record(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v)
{
	struct transcript *t = ud;

	switch (ev) {
	case KC_SAX_EV_STR:
		putf(t, "S%u[", id);
		put_bytes(t, v->s, v->len);
		put(t, "]\n", 2);
		break;
	case KC_SAX_EV_INT:
		putf(t, "I%u %lld\n", id, (long long)v->i);
		break;
	case KC_SAX_EV_BOOL:
		putf(t, "B%u %d\n", id, v->b);
		break;
	case KC_SAX_EV_BEGIN:
		putf(t, "{%u\n", id);
		break;
	case KC_SAX_EV_END:
		putf(t, "}%u\n", id);
		break;
	case KC_SAX_EV_ENTRY:
		putf(t, "E%u[", id);
		put_bytes(t, v->key, v->klen);
		put(t, "]=[", 3);
		put_bytes(t, v->s, v->len);
		put(t, "]\n", 2);
		break;
	}
	return 0;
}

/* Parses json cut at the given offsets (ascending); the result and, in *ret_t, the events. */
static int run_cuts(const char *json, size_t len, const size_t *cuts, size_t ncuts, char **ret_t)
{
	struct transcript t = { 0 };
	struct kc_sax s;
	char err[256] = "";
	size_t at = 0;
	int r = 0;

	put(&t, "", 0);
	kc_sax_init(&s, &root_s, record, &t);
	kc_sax_begin(&s);
	for (size_t i = 0; i <= ncuts && r == 0; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		r = kc_sax_feed(&s, json + at, to - at, err, sizeof(err));
		if (r)
			assert_true(err[0] != '\0');
		at = to;
	}
	if (r == 0)
		r = kc_sax_complete(&s, err, sizeof(err));
	/* Errors are sticky. */
	if (r)
		assert_int_equal(kc_sax_feed(&s, "{", 1, err, sizeof(err)), r);
	assert_null(strchr(err, '\n'));
	kc_sax_done(&s);
	*ret_t = t.p;
	return r;
}

static int run(const char *json, size_t len, char **ret_t)
{
	return run_cuts(json, len, NULL, 0, ret_t);
}

/* The result and events are the same whole, at every split offset and byte by byte. */
static int run_all_splits(const char *json, size_t len, char **ret_t)
{
	char *want, *got;
	int r = run(json, len, &want);
	size_t *cuts = kc_xmalloc((len + 1) * sizeof(*cuts));

	for (size_t k = 0; k <= len; k++) {
		assert_int_equal(run_cuts(json, len, &k, 1, &got), r);
		if (r == 0)
			assert_string_equal(got, want);
		free(got);
	}
	for (size_t k = 0; k < len; k++)
		cuts[k] = k + 1;
	assert_int_equal(run_cuts(json, len, cuts, len ? len - 1 : 0, &got), r);
	if (r == 0)
		assert_string_equal(got, want);
	free(got);
	free(cuts);
	*ret_t = want;
	return r;
}

/* ---- the grammar --------------------------------------------------------------- */

struct vcase {
	const char *json;
	int want;
};

static const struct vcase valid_cases[] = {
	{ "{}", 0 },
	{ " \t\r\n{ \t\r\n} \t\r\n", 0 },
	{ "{\"k\":[]}", 0 },
	{ "{\"k\":[1,-1,0,-0,0.5,-0.5,1e5,1E+5,1e-5,1.25e10,123456789012345678901234567890]}", 0 },
	{ "{\"k\":[true,false,null,\"\",{},[],[[[]]],{\"a\":{\"b\":{}}}]}", 0 },
	{ "{\"k\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\u20AC\\ud83d\\ude00\"}", 0 },
	{ "{\"k\":\"p\xc3\xb6\xe6\x97\xa5\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}", 0 },
	{ "{\"\":\"\",\"k\":1,\"k\":2}", 0 },
	{ "{\"k\" : 1 , \"l\" : [ 1 , 2 ] }", 0 },
	{ "{\"k\":\"\x7f\"}", 0 },
};

static const struct vcase invalid_cases[] = {
	{ "", -EBADMSG }, { "   ", -EBADMSG }, { "[]", -EBADMSG }, { "1", -EBADMSG },
	{ "\"x\"", -EBADMSG }, { "null", -EBADMSG }, { "{", -EBADMSG }, { "{\"k\":1", -EBADMSG },
	{ "{}}", -EBADMSG }, { "{}{}", -EBADMSG }, { "{} 1", -EBADMSG }, { "{}\"x", -EBADMSG },
	{ "{} tru", -EBADMSG }, { "{} [", -EBADMSG }, { "{}x", -EBADMSG }, { "{},", -EBADMSG },
	{ "{,}", -EBADMSG }, { "{\"k\":1,}", -EBADMSG }, { "{\"k\":[1,]}", -EBADMSG },
	{ "{\"k\":[,1]}", -EBADMSG }, { "{\"k\" 1}", -EBADMSG }, { "{\"k\"::1}", -EBADMSG },
	{ "{1:2}", -EBADMSG }, { "{k:1}", -EBADMSG }, { "{'k':1}", -EBADMSG }, { "{\"k\":1 2}", -EBADMSG },
	{ "{\"k\":[1 2]}", -EBADMSG }, { "{\"k\":{]}", -EBADMSG }, { "{\"k\":[}", -EBADMSG },
	{ "{\"k\":[1}", -EBADMSG }, { "{\"k\":{\"a\":1]}", -EBADMSG }, { "{\"k\"}", -EBADMSG },
	{ "{\"k\":}", -EBADMSG }, { "{\"k\":01}", -EBADMSG }, { "{\"k\":-}", -EBADMSG },
	{ "{\"k\":-a}", -EBADMSG }, { "{\"k\":1.}", -EBADMSG }, { "{\"k\":.5}", -EBADMSG },
	{ "{\"k\":1.e5}", -EBADMSG }, { "{\"k\":1e}", -EBADMSG }, { "{\"k\":1e+}", -EBADMSG },
	{ "{\"k\":+1}", -EBADMSG }, { "{\"k\":1x}", -EBADMSG }, { "{\"k\":0x10}", -EBADMSG },
	{ "{\"k\":--1}", -EBADMSG }, { "{\"k\":tru}", -EBADMSG }, { "{\"k\":truee}", -EBADMSG },
	{ "{\"k\":True}", -EBADMSG }, { "{\"k\":nul}", -EBADMSG }, { "{\"k\":fals}", -EBADMSG },
	{ "{\"k\":NaN}", -EBADMSG }, { "{\"k\":Infinity}", -EBADMSG }, { "{\"k\":\"abc}", -EBADMSG },
	{ "{\"k\":\"a\nb\"}", -EBADMSG }, { "{\"k\":\"a\tb\"}", -EBADMSG }, { "{\"k\":\"a\x01\"}", -EBADMSG },
	{ "{\"k\":\"\\x\"}", -EBADMSG }, { "{\"k\":\"\\'\"}", -EBADMSG }, { "{\"k\":\"\\u12\"}", -EBADMSG },
	{ "{\"k\":\"\\u12G4\"}", -EBADMSG }, { "{\"k\":\"\\ud800\"}", -EBADMSG },
	{ "{\"k\":\"\\ud800x\"}", -EBADMSG }, { "{\"k\":\"\\ud800\\n\"}", -EBADMSG },
	{ "{\"k\":\"\\ud800\\u0041\"}", -EBADMSG }, { "{\"k\":\"\\udc00\"}", -EBADMSG },
	{ "{\"k\":\"\\ud800\\ud800\"}", -EBADMSG }, { "{\"k\":\"\\", -EBADMSG },
	{ "{\"k\":\"\x80\"}", -EBADMSG }, { "{\"k\":\"\xbf\"}", -EBADMSG }, { "{\"k\":\"\xc0\x80\"}", -EBADMSG },
	{ "{\"k\":\"\xc1\xbf\"}", -EBADMSG }, { "{\"k\":\"\xc3\"}", -EBADMSG }, { "{\"k\":\"\xc3\x28\"}", -EBADMSG },
	{ "{\"k\":\"\xe0\x80\x80\"}", -EBADMSG }, { "{\"k\":\"\xe0\x9f\xbf\"}", -EBADMSG },
	{ "{\"k\":\"\xed\xa0\x80\"}", -EBADMSG }, { "{\"k\":\"\xe6\x97\"}", -EBADMSG },
	{ "{\"k\":\"\xf0\x80\x80\x80\"}", -EBADMSG }, { "{\"k\":\"\xf0\x8f\xbf\xbf\"}", -EBADMSG },
	{ "{\"k\":\"\xf4\x90\x80\x80\"}", -EBADMSG }, { "{\"k\":\"\xf5\x80\x80\x80\"}", -EBADMSG },
	{ "{\"k\":\"\xff\"}", -EBADMSG }, { "{\"\xc3\":1}", -EBADMSG }, { "{\"k\":\"a\"\"b\"}", -EBADMSG },
	/* The same faults inside a kept field and inside a skipped subtree. */
	{ "{\"s\":\"\\ud800\"}", -EBADMSG }, { "{\"m\":{\"k\":\"\xc0\x80\"}}", -EBADMSG },
	{ "{\"o\":{\"s\":\"a\\q\"}}", -EBADMSG }, { "{\"i\":01}", -EBADMSG },
	{ "{\"skip\":{\"a\":[{\"b\":\"\\u00zz\"}]}}", -EBADMSG }, { "{\"skip\":[[[]]]]}", -EBADMSG },
	{ "{\"skip\":{\"a\":1,}}", -EBADMSG }, { "{\"skip\":[1,2,]}", -EBADMSG },
	{ "{\"skip\":{\"a\" 1}}", -EBADMSG }, { "{\"skip\":[\"\x01\"]}", -EBADMSG },
	{ "{\"a\":[{\"s\":\"x\"},]}", -EBADMSG }, { "{\"a\":[{\"s\":\"x\"}}", -EBADMSG },
};

static void test_grammar(void **state)
{
	char *t;

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(valid_cases); i++) {
		int r = run_all_splits(valid_cases[i].json, strlen(valid_cases[i].json), &t);

		if (r != valid_cases[i].want)
			fail_msg("valid case %zu (%s): got %d", i, valid_cases[i].json, r);
		free(t);
	}
	for (size_t i = 0; i < KC_ARRAY_SIZE(invalid_cases); i++) {
		int r = run_all_splits(invalid_cases[i].json, strlen(invalid_cases[i].json), &t);

		if (r != invalid_cases[i].want)
			fail_msg("invalid case %zu (%s): got %d", i, invalid_cases[i].json, r);
		free(t);
	}
}

/* A raw NUL byte is never valid JSON text; strlen() cannot carry it in the table. */
static void test_nul_bytes(void **state)
{
	static const char a[] = "{\"k\":\"a\0b\"}", b[] = "{\"k\":1\0}", c[] = "{}\0";
	char *t;

	(void)state;
	assert_int_equal(run_all_splits(a, sizeof(a) - 1, &t), -EBADMSG);
	free(t);
	assert_int_equal(run_all_splits(b, sizeof(b) - 1, &t), -EBADMSG);
	free(t);
	assert_int_equal(run_all_splits(c, sizeof(c) - 1, &t), -EBADMSG);
	free(t);
}

/* ---- kept values, exactly ----------------------------------------------------------- */

/* Fuzzing found "nvid\u0000ia.com/gpu" kept as the C string "nvid": values and map
 * keys holding U+0000 are dropped instead, wherever the chunks split. */
static void test_nul_strings_dropped(void **state)
{
	static const char json[] = "{\"s\":\"a\\u0000b\",\"m\":{\"k\\u0000x\":\"v\",\"k\":\"v\\u0000\",\"ok\":\"v\"}}";
	char *t;

	(void)state;
	assert_int_equal(run_all_splits(json, sizeof(json) - 1, &t), 0);
	assert_string_equal(t, "E8[ok]=[v]\n");
	free(t);
}

static void test_kept_values(void **state)
{
	static const char json[] =
		"{\"skip\":{\"s\":\"no\",\"m\":{\"k\":\"no\"},\"a\":[{\"s\":\"no\"}]},"
		"\"s\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\\u0001j\\u00e9\\u20ac\\uD83D\\uDE00 p\xc3\xb6\","
		"\"i\":-9223372036854775808,\"b\":true,"
		"\"o\":{\"s\":\"\",\"i\":9223372036854775807,\"deeper\":{\"s\":\"no\"}},"
		"\"a\":[{\"s\":\"one\",\"i\":1},{},{\"i\":1.5,\"s\":2},7,\"str\",[{\"s\":\"no\"}],null],"
		"\"m\":{\"k1\":\"v1\",\"k\\u00e9\":\"v\\n2\",\"num\":3,\"obj\":{\"k\":\"no\"},\"arr\":[\"no\"],\"\":\"\"},"
		"\"x\":\"as string\",\"x\":42,\"x\":true,"
		"\"i\":9223372036854775808,\"i\":1e3,\"i\":\"str\",\"b\":null,\"s\":5,\"o\":[],\"a\":{},\"m\":\"no\","
		"\"b\":false}";
	static const char want[] =
		"S1[a\"b\\x5cc/d\\x08e\\x0cf\\x0ag\\x0dh\\x09i\\x01j\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 p\xc3\xb6]\n"
		"I2 -9223372036854775808\n"
		"B3 1\n"
		"{4\nS5[]\nI6 9223372036854775807\n}4\n"
		"{7\nS5[one]\nI6 1\n}7\n{7\n}7\n{7\n}7\n"
		"E8[k1]=[v1]\nE8[k\xc3\xa9]=[v\\x0a2]\nE8[]=[]\n"
		"S9[as string]\nI10 42\n"
		"B3 0\n";
	char *t;

	(void)state;
	assert_int_equal(run_all_splits(json, sizeof(json) - 1, &t), 0);
	assert_string_equal(t, want);
	free(t);
}

/* ---- bounds ----------------------------------------------------------------------- */

static char *nested(const char *key, size_t depth, const char *open, const char *close)
{
	struct transcript b = { 0 };

	put(&b, "{\"", 2);
	put(&b, key, strlen(key));
	put(&b, "\":", 2);
	for (size_t i = 0; i < depth; i++)
		put(&b, open, strlen(open));
	put(&b, "1", 1);
	for (size_t i = 0; i < depth; i++)
		put(&b, close, strlen(close));
	put(&b, "}", 1);
	return b.p;
}

static void test_nesting_bound(void **state)
{
	char err[256] = "", *j, *t;
	struct kc_sax s;

	(void)state;
	/* KC_SAX_MAX_NEST levels in all, counting the root object. */
	j = nested("skip", KC_SAX_MAX_NEST - 1, "[", "]");
	assert_int_equal(run(j, strlen(j), &t), 0);
	free(t);
	free(j);
	j = nested("skip", KC_SAX_MAX_NEST - 1, "{\"a\":", "}");
	assert_int_equal(run(j, strlen(j), &t), 0);
	free(t);
	free(j);
	j = nested("skip", KC_SAX_MAX_NEST, "[", "]");
	kc_sax_init(&s, &root_s, record, NULL);
	kc_sax_begin(&s);
	assert_int_equal(kc_sax_feed(&s, j, strlen(j), err, sizeof(err)), -EMSGSIZE);
	assert_non_null(strstr(err, "nested deeper"));
	assert_int_equal(kc_sax_complete(&s, err, sizeof(err)), -EMSGSIZE);
	kc_sax_done(&s);
	free(j);
	/* Kept frames deeper than KC_SAX_MAX_DEPTH are skipped, not an error. */
	j = nested("r", KC_SAX_MAX_DEPTH + 8, "{\"r\":", "}");
	assert_int_equal(run(j, strlen(j), &t), 0);
	{
		int begins = 0;

		for (const char *q = t; (q = strstr(q, "{11\n")); q++)
			begins++;
		assert_int_equal(begins, KC_SAX_MAX_DEPTH - 1);
	}
	free(t);
	free(j);
}

static void test_token_bound(void **state)
{
	size_t big = KC_SAX_MAX_TOKEN + 100, chunk = 64 * 1024;
	char *j = kc_xmalloc(big + 64), err[256] = "", *t;
	struct transcript tr = { 0 };
	struct kc_sax s;
	int r = 0;

	(void)state;
	/* A skipped string of any length passes without being buffered. */
	memcpy(j, "{\"skip\":\"", 9);
	memset(j + 9, 'a', big);
	memcpy(j + 9 + big, "\"}", 3);
	kc_sax_init(&s, &root_s, record, &tr);
	kc_sax_begin(&s);
	for (size_t at = 0; at < big + 11 && r == 0; at += chunk)
		r = kc_sax_feed(&s, j + at, at + chunk < big + 11 ? chunk : big + 11 - at, err, sizeof(err));
	assert_int_equal(r, 0);
	assert_int_equal(kc_sax_complete(&s, err, sizeof(err)), 0);
	assert_true(s.tcap <= 256);
	kc_sax_done(&s);
	/* A kept one is refused past the bound, whole or in pieces. */
	memcpy(j, "{\"s\":\"    ", 9);
	assert_int_equal(run(j, big + 11, &t), -EMSGSIZE);
	free(t);
	kc_sax_init(&s, &root_s, record, &tr);
	kc_sax_begin(&s);
	for (size_t at = 0; at < big + 11 && r == 0; at += chunk)
		r = kc_sax_feed(&s, j + at, at + chunk < big + 11 ? chunk : big + 11 - at, err, sizeof(err));
	assert_int_equal(r, -EMSGSIZE);
	assert_non_null(strstr(err, "token"));
	kc_sax_done(&s);
	/* Just under the bound is fine, and the buffer is given back by the next document. */
	memcpy(j + 6 + KC_SAX_MAX_TOKEN, "\"}", 3);
	kc_sax_init(&s, &root_s, record, &tr);
	kc_sax_begin(&s);
	assert_int_equal(kc_sax_feed(&s, j, 100, err, sizeof(err)), 0);
	assert_int_equal(kc_sax_feed(&s, j + 100, 8 + KC_SAX_MAX_TOKEN - 100, err, sizeof(err)), 0);
	assert_int_equal(kc_sax_complete(&s, err, sizeof(err)), 0);
	kc_sax_begin(&s);
	assert_true(s.tcap == 0);
	kc_sax_done(&s);
	free(tr.p);
	free(j);
}

/* ---- differential against jansson --------------------------------------------------- */

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void gen_string(struct transcript *b)
{
	static const char *const pieces[] = {
		"a", "Z", " ", "k8s.io/x", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
		"\\u0041", "\\u00e9", "\\u0000", "\\u20AC", "\\uffff", "\\ud83d\\ude00", "\\uDBFF\\uDFFF",
		"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\x7f",
	};
	unsigned n = rnd(6);

	put(b, "\"", 1);
	for (unsigned i = 0; i < n; i++) {
		const char *p = pieces[rnd(KC_ARRAY_SIZE(pieces))];

		put(b, p, strlen(p));
	}
	put(b, "\"", 1);
}

static void gen_value(struct transcript *b, int depth);

static void gen_object(struct transcript *b, int depth, bool root)
{
	static const char *const keys[] = { "\"s\"", "\"i\"", "\"b\"", "\"o\"", "\"a\"", "\"m\"", "\"x\"", "\"k\"" };
	unsigned n = rnd(5) + (root ? 1 : 0);

	put(b, "{", 1);
	for (unsigned i = 0; i < n; i++) {
		const char *k;

		if (i) {
			const char *sep = rnd(4) ? "," : " , ";

			put(b, sep, strlen(sep));
		}
		if (root && i == 0) {
			put(b, "\"m\"", 3);
		} else if (rnd(3)) {
			k = keys[rnd(KC_ARRAY_SIZE(keys))];
			put(b, k, strlen(k));
		} else {
			gen_string(b);
		}
		put(b, ":", 1);
		if (root && (i == 0 || rnd(3) == 0)) {
			/* A map of strings under "m" to compare the unescaped values. */
			unsigned m = rnd(4);

			put(b, "{", 1);
			for (unsigned j = 0; j < m; j++) {
				if (j)
					put(b, ",", 1);
				gen_string(b);
				put(b, ":", 1);
				gen_string(b);
			}
			put(b, "}", 1);
		} else {
			gen_value(b, depth + 1);
		}
	}
	put(b, "}", 1);
}

static void gen_value(struct transcript *b, int depth)
{
	static const char *const scalars[] = {
		"0", "-0", "1", "-17", "42", "3.25", "-0.5e-3", "1E+2", "9223372036854775807",
		"-9223372036854775808", "12345678901234567890", "true", "false", "null",
	};
	unsigned k = depth > 6 ? rnd(2) : rnd(5);

	switch (k) {
	case 0: {
		const char *s = scalars[rnd(KC_ARRAY_SIZE(scalars))];

		put(b, s, strlen(s));
		break;
	}
	case 1:
		gen_string(b);
		break;
	case 2:
		gen_object(b, depth, false);
		break;
	default: {
		unsigned n = rnd(4);

		put(b, "[", 1);
		for (unsigned i = 0; i < n; i++) {
			if (i)
				put(b, ",", 1);
			gen_value(b, depth + 1);
		}
		put(b, "]", 1);
	}
	}
}

/* What jansson says of the bytes: 1 valid with an object root, 0 not; and its "m" entries. */
static int jansson_view(const char *j, size_t len, struct transcript *want)
{
	json_error_t e;
	json_t *root = json_loadb(j, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	json_t *m;
	const char *key;
	json_t *v;
	int ok;

	if (!root) {
		/* jansson refuses numbers out of its range; JSON does not. */
		if (strstr(e.text, "overflow") || strstr(e.text, "too big"))
			return -1;
		/* Nor does it take "\u0000" in a key, even with JSON_ALLOW_NUL. */
		if (strstr(e.text, "NUL"))
			return -1;
		return 0;
	}
	ok = json_is_object(root);
	put(want, "", 0);
	if (ok) {
		m = json_object_get(root, "m");
		if (json_is_object(m)) {
			json_object_foreach(m, key, v) {
				/* The walker drops strings holding U+0000: they cannot be C strings. */
				if (!json_is_string(v) || memchr(json_string_value(v), '\0', json_string_length(v)))
					continue;
				put(want, "E8[", 3);
				put_bytes(want, key, strlen(key));
				put(want, "]=[", 3);
				put_bytes(want, json_string_value(v), json_string_length(v));
				put(want, "]\n", 2);
			}
		}
	}
	json_decref(root);
	return ok;
}

/* Every "m" entry jansson holds was reported.  The walker reports duplicate
 * keys and every "m" object, jansson keeps the last of each, so this is an
 * inclusion, not an equality. */
static bool same_entries(const char *got, const char *want)
{
	for (const char *w = want; *w;) {
		const char *nl = strchr(w, '\n');
		char line[512];
		size_t n = (size_t)(nl - w) + 1;

		if (n >= sizeof(line))
			return false;
		memcpy(line, w, n);
		line[n] = '\0';
		if (!strstr(got, line))
			return false;
		w += n;
	}
	return true;
}

static void mutate(char *j, size_t *len, size_t cap)
{
	static const char alphabet[] = "{}[]\",:\\ 01-.eE+tfnul\x80\xc3\xed\xf4\xff\x01u";
	unsigned n = 1 + rnd(3);

	for (unsigned i = 0; i < n && *len > 0; i++) {
		size_t at = rnd((unsigned)*len);

		switch (rnd(3)) {
		case 0:
			j[at] = alphabet[rnd(sizeof(alphabet) - 1)];
			break;
		case 1:
			memmove(j + at, j + at + 1, *len - at - 1);
			(*len)--;
			break;
		default:
			if (*len + 1 < cap) {
				memmove(j + at + 1, j + at, *len - at);
				j[at] = alphabet[rnd(sizeof(alphabet) - 1)];
				(*len)++;
			}
		}
	}
}

/*
 * Errors inside skipped subtrees (scanned by their own loop) are reported
 * with the same text and byte offset whether the document comes whole or a
 * byte at a time (then scan() sees every byte).
 */
static int record_none(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v)
{
	(void)ud;
	(void)id;
	(void)ev;
	(void)v;
	return 0;
}

static void sax_error(const char *json, size_t step, char *err, size_t errsize)
{
	struct kc_sax s;
	size_t len = strlen(json);
	int r = 0;

	err[0] = '\0';
	kc_sax_init(&s, &root_s, record_none, NULL);
	kc_sax_begin(&s);
	for (size_t at = 0; at < len && r == 0; at += step)
		r = kc_sax_feed(&s, json + at, len - at < step ? len - at : step, err, errsize);
	if (r == 0)
		r = kc_sax_complete(&s, err, errsize);
	kc_sax_done(&s);
}

static void test_skipped_error_offsets(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "{\"skip\":{\"a\":\"b\",}}", "invalid JSON: unexpected '}' at byte 17" },
		{ "{\"skip\":{\"a\":\"b\"\"c\"}}", "invalid JSON: unexpected value at byte 16" },
		{ "{\"skip\":{\"a\":\"b\"]}", "invalid JSON: unexpected ']' at byte 16" },
		{ "{\"skip\":[\"a\":1]}", "invalid JSON: unexpected ':' at byte 12" },
		{ "{\"skip\":{\"a\"}}", "invalid JSON: unexpected '}' at byte 12" },
		{ "{\"skip\":{:1}}", "invalid JSON: unexpected ':' at byte 9" },
		{ "{\"skip\":[,]}", "invalid JSON: unexpected ',' at byte 9" },
		{ "{\"skip\":{\"a\":{\"b\":[]},}}", "invalid JSON: unexpected '}' at byte 22" },
		{ "{\"skip\":{\"a\":{}}}}", "invalid JSON: unexpected '}' at byte 17" },
		{ "{\"skip\":{\"a\":[\"x\" \"y\"]}}", "invalid JSON: unexpected value at byte 18" },
		{ "{\"skip\":{\"a\":\"\x01\"}}", "invalid JSON: control character in a string at byte 14" },
		{ "{\"skip\":{\"a\":[{}{}]}}", "invalid JSON: unexpected value at byte 16" },
		{ "{\"skip\":{\"k\":[1,\"é\",{\"a\":tru}]}}", "invalid JSON: invalid literal at byte 29" },
	};
	char whole[256], bytewise[256];

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		sax_error(cases[i].json, 1 << 20, whole, sizeof(whole));
		sax_error(cases[i].json, 1, bytewise, sizeof(bytewise));
		if (strcmp(whole, cases[i].want) != 0 || strcmp(bytewise, cases[i].want) != 0)
			fail_msg("case %zu (%s): whole \"%s\", bytewise \"%s\", want \"%s\"", i, cases[i].json,
				 whole, bytewise, cases[i].want);
	}
}

static void test_differential_jansson(void **state)
{
	unsigned valid = 0, invalid = 0, compared = 0;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		struct transcript doc = { 0 }, want = { 0 };
		size_t len, cut[3];
		char *got, *got2;
		int jv, r;

		gen_object(&doc, 0, true);
		len = doc.len;
		if (iter % 2) {
			put(&doc, "        ", 8);  /* room to insert */
			mutate(doc.p, &len, doc.len);
		}
		jv = jansson_view(doc.p, len, &want);
		r = run(doc.p, len, &got);
		if (jv >= 0 && (r == 0) != (jv == 1))
			fail_msg("kc_sax %d, jansson %d on: %.*s", r, jv, (int)len, doc.p);
		if (r == 0) {
			valid++;
			if (want.p && want.p[0]) {
				compared++;
				if (!same_entries(got, want.p))
					fail_msg("entries differ on %.*s\ngot:\n%s\nwant:\n%s", (int)len, doc.p, got,
						 want.p);
			}
		} else {
			invalid++;
			if (!(iter % 2))
				fail_msg("generated document refused (%d): %.*s", r, (int)len, doc.p);
		}
		/* Chunked the same. */
		for (int c = 0; c < 3; c++)
			cut[c] = len ? rnd((unsigned)len + 1) : 0;
		if (cut[0] > cut[1]) {
			size_t x = cut[0];
			cut[0] = cut[1];
			cut[1] = x;
		}
		if (cut[1] > cut[2]) {
			size_t x = cut[1];
			cut[1] = cut[2];
			cut[2] = x;
		}
		if (cut[0] > cut[1]) {
			size_t x = cut[0];
			cut[0] = cut[1];
			cut[1] = x;
		}
		assert_int_equal(run_cuts(doc.p, len, cut, 3, &got2), r);
		if (r == 0)
			assert_string_equal(got2, got);
		free(got);
		free(got2);
		free(doc.p);
		free(want.p);
	}
	print_message("differential: %u valid, %u invalid, %u with kept entries compared\n", valid, invalid,
		      compared);
	assert_true(valid > 5000 && invalid > 2000 && compared > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_kept_values),
		cmocka_unit_test(test_nul_strings_dropped),
		cmocka_unit_test(test_nesting_bound),
		cmocka_unit_test(test_token_bound),
		cmocka_unit_test(test_skipped_error_offsets),
		cmocka_unit_test(test_differential_jansson),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
