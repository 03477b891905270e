/*
 * Unit tests of Kubernetes' protobuf encoding (kc_pb.h) at the wire level:
 * varints, fields of every wire type, the "k8s\0" envelope, the schema walker
 * (the events it reports for each kind of field, and what it skips, drops or
 * refuses), and a protobuf Status body (kc_status.h).  The decoders' LIST and
 * WATCH streams in protobuf are tested in test_decode.c, against fixtures the
 * Kubernetes Go libraries wrote.
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

#include "kc_pb.h"
#include "kc_status.h"

/* ---- a message writer ----------------------------------------------------------- */

struct msg {
	uint8_t b[4096];
	size_t n;
};

static void put_varint(struct msg *m, uint64_t v)
{
	do {
		uint8_t c = v & 0x7F;

		v >>= 7;
		m->b[m->n++] = c | (v ? 0x80 : 0);
	} while (v);
}

static void put_key(struct msg *m, unsigned num, unsigned wire)
{
	put_varint(m, (uint64_t)num << 3 | wire);
}

static void put_bytes(struct msg *m, unsigned num, const void *p, size_t n)
{
	put_key(m, num, KC_PB_LEN);
	put_varint(m, n);
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void put_str(struct msg *m, unsigned num, const char *s)
{
	put_bytes(m, num, s, strlen(s));
}

static void put_msg(struct msg *m, unsigned num, const struct msg *sub)
{
	put_bytes(m, num, sub->b, sub->n);
}

static void put_int(struct msg *m, unsigned num, int64_t v)
{
	put_key(m, num, KC_PB_VARINT);
	put_varint(m, (uint64_t)v);
}

/* ---- the wire reader ------------------------------------------------------------- */

static void test_varint(void **state)
{
	static const uint8_t ten[] = { 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
	static const uint8_t eleven[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	static const uint8_t cut[] = { 0x96 };
	static const uint8_t two[] = { 0x96, 0x01 };
	const uint8_t *p;
	uint64_t v;

	(void)state;
	p = two;
	assert_int_equal(kc_pb_varint(&p, two + 2, &v), 1);
	assert_int_equal(v, 150);
	assert_ptr_equal(p, two + 2);
	/* -2 as an int32 field: sign-extended to ten bytes. */
	p = ten;
	assert_int_equal(kc_pb_varint(&p, ten + sizeof(ten), &v), 1);
	assert_int_equal((int64_t)v, -2);
	p = eleven;
	assert_int_equal(kc_pb_varint(&p, eleven + sizeof(eleven), &v), -EBADMSG);
	p = cut;
	assert_int_equal(kc_pb_varint(&p, cut + 1, &v), 0);
	assert_ptr_equal(p, cut);
}

static void test_fields_of_every_wire_type(void **state)
{
	struct msg m = { .n = 0 };
	struct kc_pb_reader r;
	struct kc_pb_field f;

	(void)state;
	put_int(&m, 1, 300);
	put_key(&m, 2, KC_PB_I64);
	memcpy(m.b + m.n, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	m.n += 8;
	put_str(&m, 3, "abc");
	put_key(&m, 4, KC_PB_I32);
	memcpy(m.b + m.n, "\x01\x00\x00\x80", 4);
	m.n += 4;
	put_str(&m, 536870911, "");  /* the largest field number */

	kc_pb_reader_init(&r, m.b, m.n);
	assert_int_equal(kc_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 1);
	assert_int_equal(f.wire, KC_PB_VARINT);
	assert_int_equal(f.v, 300);
	assert_int_equal(kc_pb_next(&r, &f), 1);
	assert_int_equal(f.wire, KC_PB_I64);
	assert_int_equal(f.v, 0x0807060504030201ull);
	assert_int_equal(kc_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 3);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.data, "abc", 3);
	assert_int_equal(kc_pb_next(&r, &f), 1);
	assert_int_equal(f.wire, KC_PB_I32);
	assert_int_equal(f.v, 0x80000001u);
	assert_int_equal(kc_pb_next(&r, &f), 1);
	assert_int_equal(f.num, 536870911);
	assert_int_equal(f.len, 0);
	assert_int_equal(kc_pb_next(&r, &f), 0);
}

static void test_malformed_fields(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t n;
	} bad[] = {
		{ "field number 0", "\x02\x00", 2 },
		{ "a group", "\x0b", 1 },
		{ "end of a group", "\x0c", 1 },
		{ "wire type 6", "\x0e", 1 },
		{ "wire type 7", "\x0f", 1 },
		{ "length past the end", "\x0a\x05" "abc", 5 },
		{ "a length cut", "\x0a\x85", 2 },
		{ "a varint value cut", "\x08\x80", 2 },
		{ "a fixed64 cut", "\x09\x01\x02\x03", 4 },
		{ "a fixed32 cut", "\x0d\x01\x02", 3 },
		{ "a key cut", "\x80", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kc_pb_reader r;
		struct kc_pb_field f;

		kc_pb_reader_init(&r, bad[i].bytes, bad[i].n);
		if (kc_pb_next(&r, &f) != -EBADMSG)
			fail_msg("%s: not refused", bad[i].what);
	}
}

static void test_envelope(void **state)
{
	struct msg tm = { .n = 0 }, u = { .n = 0 }, body = { .n = 0 };
	const uint8_t *kind, *raw;
	size_t klen, rlen;
	char err[128];

	(void)state;
	put_str(&tm, 1, "v1");
	put_str(&tm, 2, "Pod");
	put_msg(&u, 1, &tm);
	put_str(&u, 2, "\x0a\x02hi");
	put_str(&u, 3, "");
	put_str(&u, 4, "");
	memcpy(body.b, KC_PB_MAGIC, KC_PB_MAGIC_LEN);
	memcpy(body.b + KC_PB_MAGIC_LEN, u.b, u.n);
	body.n = KC_PB_MAGIC_LEN + u.n;
	assert_int_equal(kc_pb_unwrap(body.b, body.n, &kind, &klen, &raw, &rlen, err, sizeof(err)), 0);
	assert_int_equal(klen, 3);
	assert_memory_equal(kind, "Pod", 3);
	assert_int_equal(rlen, 4);
	assert_memory_equal(raw, "\x0a\x02hi", 4);

	/* Without the magic (a JSON body, say). */
	assert_int_equal(kc_pb_unwrap("{\"kind\":1}", 10, &kind, &klen, &raw, &rlen, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "k8s"));
	/* A contentEncoding we do not read. */
	put_str(&u, 3, "gzip");
	memcpy(body.b + KC_PB_MAGIC_LEN, u.b, u.n);
	body.n = KC_PB_MAGIC_LEN + u.n;
	assert_int_equal(kc_pb_unwrap(body.b, body.n, &kind, &klen, &raw, &rlen, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "gzip"));
	/* Cut short. */
	assert_int_equal(kc_pb_unwrap(body.b, KC_PB_MAGIC_LEN + 3, &kind, &klen, &raw, &rlen, err, sizeof(err)),
			 -EBADMSG);
}

static void test_content_type(void **state)
{
	(void)state;
	assert_true(kc_pb_is_content_type("application/vnd.kubernetes.protobuf"));
	assert_true(kc_pb_is_content_type("application/vnd.kubernetes.protobuf;stream=watch"));
	assert_true(kc_pb_is_content_type(" Application/VND.Kubernetes.Protobuf ; stream=watch"));
	assert_false(kc_pb_is_content_type("application/json"));
	assert_false(kc_pb_is_content_type("application/vnd.kubernetes.protobufx"));
	assert_false(kc_pb_is_content_type("application/vnd.kubernetes.protobuf+json"));
	assert_false(kc_pb_is_content_type(""));
	assert_false(kc_pb_is_content_type(NULL));
}

/* ---- the walker --------------------------------------------------------------------- */

enum { ID_NAME = 1, ID_COUNT, ID_ON, ID_SUB, ID_ITEM, ID_LABELS, ID_QTY, ID_WHEN, ID_SUBNAME };

static const struct kc_sax_field sub_f[] = { KC_SAX_P("name", 1, KC_SAX_STR, ID_SUBNAME, NULL) };
static const struct kc_sax_schema sub_s = KC_SAX_SCHEMA(sub_f);
static const struct kc_sax_field top_f[] = {
	KC_SAX_P("name", 1, KC_SAX_STR, ID_NAME, NULL),
	KC_SAX_P("count", 2, KC_SAX_INT, ID_COUNT, NULL),
	KC_SAX_P("on", 3, KC_SAX_BOOL, ID_ON, NULL),
	KC_SAX_P("sub", 4, KC_SAX_OBJ, ID_SUB, &sub_s),
	KC_SAX_P("items", 5, KC_SAX_ARR, ID_ITEM, &sub_s),
	KC_SAX_P("labels", 6, KC_SAX_MAP, ID_LABELS, NULL),
	KC_SAX_PW("requests", 7, KC_SAX_PB_QUANTITY, KC_SAX_MAP, ID_QTY, NULL),
	KC_SAX_PW("when", 8, KC_SAX_PB_TIME, KC_SAX_STR, ID_WHEN, NULL),
	KC_SAX_F("jsonOnly", KC_SAX_STR, ID_NAME, NULL),
};
static const struct kc_sax_schema top_s = KC_SAX_SCHEMA(top_f);

/* The handler writes each event as a line of text. */
struct rec {
	char buf[2048];
	size_t n;
	unsigned fail_on;  /* return -ECANCELED at this field id */
};

static int record(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v)
{
	struct rec *r = ud;
	size_t room = sizeof(r->buf) - r->n;
	int n = 0;

	if (id == r->fail_on)
		return -ECANCELED;
	switch (ev) {
	case KC_SAX_EV_STR:
		n = snprintf(r->buf + r->n, room, "%u str %.*s\n", id, (int)v->len, v->s);
		break;
	case KC_SAX_EV_INT:
		n = snprintf(r->buf + r->n, room, "%u int %lld\n", id, (long long)v->i);
		break;
	case KC_SAX_EV_BOOL:
		n = snprintf(r->buf + r->n, room, "%u bool %d\n", id, v->b);
		break;
	case KC_SAX_EV_BEGIN:
		n = snprintf(r->buf + r->n, room, "%u begin\n", id);
		break;
	case KC_SAX_EV_END:
		n = snprintf(r->buf + r->n, room, "%u end\n", id);
		break;
	case KC_SAX_EV_ENTRY:
		n = snprintf(r->buf + r->n, room, "%u entry %.*s=%.*s\n", id, (int)v->klen, v->key, (int)v->len, v->s);
		break;
	}
	r->n += (size_t)n;
	return 0;
}

static void entry(struct msg *m, unsigned num, const char *k, const char *v, bool quantity)
{
	struct msg e = { .n = 0 }, q = { .n = 0 };

	put_str(&e, 1, k);
	if (quantity) {
		put_str(&q, 1, v);
		put_msg(&e, 2, &q);
	} else if (v) {
		put_str(&e, 2, v);
	}
	put_msg(m, num, &e);
}

static void test_walk_reports_every_kind(void **state)
{
	struct msg m = { .n = 0 }, sub = { .n = 0 }, t = { .n = 0 }, zero = { .n = 0 };
	struct rec r = { .n = 0 };
	char err[128];

	(void)state;
	put_str(&m, 1, "pod-a");
	put_int(&m, 2, -5);                 /* an int32 of -5: ten bytes on the wire */
	put_int(&m, 3, 1);
	put_str(&sub, 1, "inner");
	put_msg(&m, 4, &sub);
	put_msg(&m, 5, &sub);               /* a repeated message: one element each */
	put_msg(&m, 5, &sub);
	entry(&m, 6, "app", "x", false);
	entry(&m, 6, "empty", NULL, false);  /* Go leaves an empty value out */
	entry(&m, 7, "nvidia.com/gpu", "2", true);
	put_int(&t, 1, 1700000000);
	put_int(&t, 2, 5);
	put_msg(&m, 8, &t);
	put_msg(&m, 8, &zero);              /* the zero Time: JSON's null, not reported */
	t.n = 0;
	put_int(&t, 1, -30641760000);       /* the year 999: four digits, as JSON writes it */
	put_msg(&m, 8, &t);
	put_str(&m, 99, "unknown");          /* skipped, as are unknown fields of every wire type */
	put_key(&m, 98, KC_PB_I64);
	memcpy(m.b + m.n, "12345678", 8);
	m.n += 8;
	put_key(&m, 97, KC_PB_I32);
	memcpy(m.b + m.n, "1234", 4);
	m.n += 4;
	put_str(&m, 2, "not an int");        /* the wrong wire type: skipped */
	put_int(&m, 1, 7);                   /* likewise */
	assert_int_equal(kc_pb_walk(&top_s, m.b, m.n, record, &r, err, sizeof(err)), 0);
	r.buf[r.n] = '\0';
	assert_string_equal(r.buf,
			    "1 str pod-a\n"
			    "2 int -5\n"
			    "3 bool 1\n"
			    "4 begin\n9 str inner\n4 end\n"
			    "5 begin\n9 str inner\n5 end\n"
			    "5 begin\n9 str inner\n5 end\n"
			    "6 entry app=x\n"
			    "6 entry empty=\n"
			    "7 entry nvidia.com/gpu=2\n"
			    "8 str 2023-11-14T22:13:20Z\n"
			    "8 str 0999-01-01T00:00:00Z\n");
}

static void test_walk_drops_and_refuses(void **state)
{
	struct msg m = { .n = 0 };
	struct rec r = { .n = 0 };
	char err[128], longkey[600];

	(void)state;
	/* A string with NUL is dropped, as kc_sax drops \u0000; so is a map entry with one,
	 * or with a key longer than kc_sax can hold. */
	put_bytes(&m, 1, "a\0b", 3);
	{
		struct msg e = { .n = 0 };

		put_str(&e, 1, "k");
		put_bytes(&e, 2, "v\0w", 3);
		put_msg(&m, 6, &e);
	}
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	entry(&m, 6, longkey, "v", false);
	entry(&m, 6, "ok", "\xc3\xa9t\xc3\xa9", false);  /* UTF-8 is kept */
	assert_int_equal(kc_pb_walk(&top_s, m.b, m.n, record, &r, err, sizeof(err)), 0);
	r.buf[r.n] = '\0';
	assert_string_equal(r.buf, "6 entry ok=\xc3\xa9t\xc3\xa9\n");

	/* A kept string that is not UTF-8 fails the message, as invalid JSON does. */
	static const char *const bad_utf8[] = {
		"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
		"0123456789abcdefghi\xff",            /* past 16 bytes: in the tail */
		"0123456789abcdef0123456789abcdef\x80", /* after two clean blocks */
	};

	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		m.n = 0;
		put_str(&m, 1, bad_utf8[i]);
		assert_int_equal(kc_pb_walk(&top_s, m.b, m.n, record, &r, err, sizeof(err)), -EBADMSG);
		assert_non_null(strstr(err, "UTF-8"));
	}
	/* A NUL past the first 16 bytes drops the string too. */
	m.n = 0;
	r.n = 0;
	put_bytes(&m, 1, "0123456789abcdefgh\0j", 20);
	put_str(&m, 1, "0123456789abcdefghij");
	assert_int_equal(kc_pb_walk(&top_s, m.b, m.n, record, &r, err, sizeof(err)), 0);
	r.buf[r.n] = '\0';
	assert_string_equal(r.buf, "1 str 0123456789abcdefghij\n");

	/* Not UTF-8 where it is skipped: no matter. */
	m.n = 0;
	put_str(&m, 50, "\xff");
	assert_int_equal(kc_pb_walk(&top_s, m.b, m.n, record, &r, err, sizeof(err)), 0);

	/* A message cut short, inside a kept sub-message too. */
	m.n = 0;
	put_str(&m, 1, "abc");
	assert_int_equal(kc_pb_walk(&top_s, m.b, m.n - 1, record, &r, err, sizeof(err)), -EBADMSG);
	m.n = 0;
	put_bytes(&m, 4, "\x0a\x09" "abc", 5);
	assert_int_equal(kc_pb_walk(&top_s, m.b, m.n, record, &r, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "malformed"));

	/* The handler's error stops the walk and is returned. */
	m.n = 0;
	r.n = 0;
	r.fail_on = ID_COUNT;
	put_str(&m, 1, "a");
	put_int(&m, 2, 1);
	put_str(&m, 1, "b");
	assert_int_equal(kc_pb_walk(&top_s, m.b, m.n, record, &r, err, sizeof(err)), -ECANCELED);
	r.buf[r.n] = '\0';
	assert_string_equal(r.buf, "1 str a\n");
}

/* Unread fields of every length form are stepped over (one-byte keys take a shortcut). */
static void test_walk_skips_unread_fields(void **state)
{
	static const size_t lens[] = { 0, 5, 127, 128, 300, 1000 };  /* lengths of one and two bytes */
	static uint8_t big[1000];
	static struct msg m;
	struct rec r = { .n = 0 };
	char err[128];

	(void)state;
	m.n = 0;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		put_bytes(&m, 9 + (unsigned)(i % 6), big, lens[i]);
		put_int(&m, 15, 1);          /* a one-byte varint */
		put_int(&m, 14, 1u << 20);   /* a longer one */
		put_key(&m, 13, KC_PB_I32);  /* a fixed32: the general path */
		memcpy(m.b + m.n, "abcd", 4);
		m.n += 4;
		put_str(&m, 1, "kept");
	}
	assert_int_equal(kc_pb_walk(&top_s, m.b, m.n, record, &r, err, sizeof(err)), 0);
	r.buf[r.n] = '\0';
	assert_string_equal(r.buf, "1 str kept\n1 str kept\n1 str kept\n1 str kept\n1 str kept\n1 str kept\n");
	/* An unread field whose length runs past the end is malformed, at every length form. */
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct msg b = { .n = 0 };

		put_key(&b, 9, KC_PB_LEN);
		put_varint(&b, lens[i] + 1);
		memset(b.b + b.n, 'x', lens[i]);
		b.n += lens[i];
		assert_int_equal(kc_pb_walk(&top_s, b.b, b.n, record, &r, err, sizeof(err)), -EBADMSG);
	}
}

/* A field marked first is reported before the others, as JSON orders it, wherever it is. */
static void test_walk_first_fields(void **state)
{
	static const struct kc_sax_field f[] = {
		KC_SAX_P("containers", 2, KC_SAX_ARR, ID_ITEM, &sub_s),
		KC_SAX_PW("initContainers", 20, KC_SAX_PB_FIRST, KC_SAX_ARR, ID_SUB, &sub_s),
		KC_SAX_P("nodeName", 10, KC_SAX_STR, ID_NAME, NULL),
	};
	static const struct kc_sax_schema s = KC_SAX_SCHEMA(f);
	struct msg m = { .n = 0 }, a = { .n = 0 }, b = { .n = 0 };
	struct rec r = { .n = 0 };
	char err[128];

	(void)state;
	put_str(&a, 1, "main");
	put_str(&b, 1, "init");
	put_msg(&m, 2, &a);
	put_str(&m, 10, "node-1");
	put_msg(&m, 20, &b);
	assert_int_equal(kc_pb_walk(&s, m.b, m.n, record, &r, err, sizeof(err)), 0);
	r.buf[r.n] = '\0';
	assert_string_equal(r.buf, "4 begin\n9 str init\n4 end\n5 begin\n9 str main\n5 end\n1 str node-1\n");
}

/* ---- a protobuf Status body ------------------------------------------------------------ */

static void status_body(struct msg *body, const struct msg *status)
{
	struct msg tm = { .n = 0 }, u = { .n = 0 };

	put_str(&tm, 1, "v1");
	put_str(&tm, 2, "Status");
	put_msg(&u, 1, &tm);
	put_msg(&u, 2, status);
	memcpy(body->b, KC_PB_MAGIC, KC_PB_MAGIC_LEN);
	memcpy(body->b + KC_PB_MAGIC_LEN, u.b, u.n);
	body->n = KC_PB_MAGIC_LEN + u.n;
}

static void test_status_body(void **state)
{
	struct msg st = { .n = 0 }, det = { .n = 0 }, cause = { .n = 0 }, body = { .n = 0 };
	struct kc_status s;

	(void)state;
	put_str(&st, 2, "Failure");
	put_str(&st, 3, "too old resource version: 1 (2)");
	put_str(&st, 4, "Expired");
	put_str(&cause, 1, "FieldValueInvalid");
	put_str(&cause, 2, "bad");
	put_str(&cause, 3, "spec.x");
	put_msg(&det, 4, &cause);
	put_int(&det, 5, 3);
	put_msg(&st, 5, &det);
	put_int(&st, 6, 410);
	status_body(&body, &st);
	assert_int_equal(kc_status_decode((const char *)body.b, body.n, &s), 0);
	assert_int_equal(s.code, 410);
	assert_string_equal(s.status, "Failure");
	assert_string_equal(s.reason, "Expired");
	assert_string_equal(s.message, "too old resource version: 1 (2)");
	assert_int_equal(s.retry_after_s, 3);
	assert_int_equal(s.n_causes, 1);
	assert_string_equal(s.causes[0].reason, "FieldValueInvalid");
	assert_string_equal(s.causes[0].field, "spec.x");
	assert_true(kc_status_has_cause(&s, "FieldValueInvalid"));
	kc_status_done(&s);

	/* A Status without its strings reads as empty ones, as the JSON decoder gives. */
	st.n = 0;
	put_int(&st, 6, 500);
	status_body(&body, &st);
	assert_int_equal(kc_status_decode((const char *)body.b, body.n, &s), 0);
	assert_int_equal(s.code, 500);
	assert_string_equal(s.reason, "");
	assert_string_equal(s.message, "");
	kc_status_done(&s);

	/* Another kind, or a malformed body, is not a Status. */
	body.b[KC_PB_MAGIC_LEN + 2 + 4 + 2] = 'X';  /* the kind "Status" becomes "Xtatus" */
	assert_int_equal(kc_status_decode((const char *)body.b, body.n, &s), -EBADMSG);
	status_body(&body, &st);
	assert_int_equal(kc_status_decode((const char *)body.b, body.n - 1, &s), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint),
		cmocka_unit_test(test_fields_of_every_wire_type),
		cmocka_unit_test(test_malformed_fields),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_content_type),
		cmocka_unit_test(test_walk_reports_every_kind),
		cmocka_unit_test(test_walk_drops_and_refuses),
		cmocka_unit_test(test_walk_skips_unread_fields),
		cmocka_unit_test(test_walk_first_fields),
		cmocka_unit_test(test_status_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
