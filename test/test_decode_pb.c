/*
 * The decoders (kc_decode.h) on Kubernetes' protobuf encoding, against the
 * fixtures of test/fixtures/pb: written by the Kubernetes Go libraries, or
 * captured from a real kube-apiserver, each with its JSON twin (see the
 * README there).  Every test is differential: the protobuf LIST or WATCH and
 * its JSON twin must decode to the same objects and events (compared by
 * object_dump), whatever the chunking, so the protobuf path keeps exactly
 * what the JSON path keeps.  Then the bounds and hostile input: bodies cut at
 * every length, an item over the size bound, frames over the line bound.
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

#include "kc_decode.h"
#include "kc_intern.h"
#include "kc_status.h"
#include "kc_util.h"
#include "object_dump.h"

#define MAX_OBJS 32

static struct kc_intern *intern;

static int setup(void **state)
{
	(void)state;
	intern = kc_intern_new();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	intern = kc_intern_free(intern);
	return 0;
}

static char *fixture(const char *name, size_t *len)
{
	const char *dir = getenv("FIXTURES");
	char *path, *data;
	size_t n;

	path = kc_xasprintf("%s/pb/%s", dir ? dir : "test/fixtures", name);
	if (kc_read_file(path, 4 << 20, &data, &n) != 0)
		fail_msg("cannot read %s", path);
	free(path);
	*len = n;
	return data;
}

/* What a decoder delivered: objects as dumps, and events with their envelope. */
struct got {
	const struct kc_type *t;
	char *dumps[MAX_OBJS];
	int types[MAX_OBJS];
	char rvs[MAX_OBJS][32];
	bool initial_end[MAX_OBJS];
	int code[MAX_OBJS];
	char reason[MAX_OBJS][32];
	char message[MAX_OBJS][64];
	size_t n;
};

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->dumps[i]);
	g->n = 0;
}

static int on_item(void *obj, void *ud)
{
	struct got *g = ud;

	assert_true(g->n < MAX_OBJS);
	g->dumps[g->n++] = object_dump(g->t, obj);
	kc_object_free(obj);
	return 0;
}

static int on_event(struct kc_watch_event *ev, void *ud)
{
	struct got *g = ud;

	assert_true(g->n < MAX_OBJS);
	g->types[g->n] = ev->type;
	g->initial_end[g->n] = ev->initial_events_end;
	snprintf(g->rvs[g->n], sizeof(g->rvs[0]), "%s", ev->resource_version ? ev->resource_version : "");
	g->code[g->n] = ev->status.code;
	snprintf(g->reason[g->n], sizeof(g->reason[0]), "%s", ev->status.reason ? ev->status.reason : "");
	snprintf(g->message[g->n], sizeof(g->message[0]), "%s", ev->status.message ? ev->status.message : "");
	g->dumps[g->n] = ev->object ? object_dump(g->t, ev->object) : NULL;
	g->n++;
	return 0;
}

static void same(const struct got *pb, const struct got *json, const char *what)
{
	if (pb->n != json->n)
		fail_msg("%s: %zu from protobuf, %zu from JSON", what, pb->n, json->n);
	for (size_t i = 0; i < pb->n; i++) {
		if ((pb->dumps[i] == NULL) != (json->dumps[i] == NULL) ||
		    (pb->dumps[i] && strcmp(pb->dumps[i], json->dumps[i]) != 0))
			fail_msg("%s #%zu:\n--- protobuf\n%s--- JSON\n%s", what, i, pb->dumps[i] ? pb->dumps[i] : "(none)\n",
				 json->dumps[i] ? json->dumps[i] : "(none)\n");
		assert_int_equal(pb->types[i], json->types[i]);
		assert_string_equal(pb->rvs[i], json->rvs[i]);
		assert_int_equal(pb->initial_end[i], json->initial_end[i]);
		assert_int_equal(pb->code[i], json->code[i]);
		assert_string_equal(pb->reason[i], json->reason[i]);
		assert_string_equal(pb->message[i], json->message[i]);
	}
}

/* A LIST body fed in two pieces, cut at k; returns the decoder (the caller frees it). */
static struct kc_list_decoder *list_pb(const struct kc_type *t, const char *body, size_t len, size_t k,
				       size_t max_item, struct got *g, int *ret)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct kc_list_decoder *d = kc_list_decoder_new(t, &ctx, on_item, g);

	kc_list_decoder_set_protobuf(d, max_item);
	*ret = kc_list_decoder_feed(d, body, k);
	if (*ret == 0)
		*ret = kc_list_decoder_feed(d, body + k, len - k);
	if (*ret == 0)
		*ret = kc_list_decoder_finish(d);
	return d;
}

static struct kc_list_decoder *list_json(const struct kc_type *t, const char *body, size_t len, struct got *g)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct kc_list_decoder *d = kc_list_decoder_new(t, &ctx, on_item, g);

	assert_int_equal(kc_list_decoder_feed(d, body, len), 0);
	assert_int_equal(kc_list_decoder_finish(d), 0);
	return d;
}

static void check_list(const struct kc_type *t, const char *pbname, const char *jsonname, size_t want_items)
{
	size_t plen, jlen;
	char *pb = fixture(pbname, &plen), *json = fixture(jsonname, &jlen);
	struct got gj = { .t = t };
	struct kc_list_decoder *dj = list_json(t, json, jlen, &gj);

	assert_int_equal(gj.n, want_items);
	for (size_t k = 0; k <= plen; k++) {
		struct got gp = { .t = t };
		int r;
		struct kc_list_decoder *dp = list_pb(t, pb, plen, k, 0, &gp, &r);

		if (r != 0)
			fail_msg("%s cut at %zu: %d %s", pbname, k, r, kc_list_decoder_error(dp));
		same(&gp, &gj, pbname);
		assert_string_equal(kc_list_decoder_resource_version(dp), kc_list_decoder_resource_version(dj));
		assert_string_equal(kc_list_decoder_continue(dp), kc_list_decoder_continue(dj));
		assert_int_equal(kc_list_decoder_items(dp), want_items);
		kc_list_decoder_free(dp);
		got_free(&gp);
	}
	kc_list_decoder_free(dj);
	got_free(&gj);
	free(pb);
	free(json);
}

static void test_list_same_as_json(void **state)
{
	(void)state;
	/* Every variant: deletion, owners, UTF-8 labels, init containers, every container
	 * state, negative and large priorities, quantities, DRA claims, managedFields. */
	check_list(&kc_type_pod, "podlist.pb", "podlist.json", 13);
	check_list(&kc_type_pod, "real-list.pb", "real-list.json", 1);
}

static void watch_feed_all(struct kc_watch_decoder *w, const char *s, size_t len, size_t k)
{
	int r = kc_watch_decoder_feed(w, s, k);

	if (r == 0)
		r = kc_watch_decoder_feed(w, s + k, len - k);
	if (r != 0)
		fail_msg("cut at %zu: %d %s", k, r, kc_watch_decoder_error(w));
}

static void check_watch(const char *pbname, const char *jsonname, size_t want_events)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	size_t plen, jlen;
	char *pb = fixture(pbname, &plen), *json = fixture(jsonname, &jlen);
	struct got gj = { .t = &kc_type_pod };
	struct kc_watch_decoder *wj = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, on_event, &gj);

	watch_feed_all(wj, json, jlen, jlen);
	assert_int_equal(gj.n, want_events);
	for (size_t k = 0; k <= plen; k++) {
		struct got gp = { .t = &kc_type_pod };
		struct kc_watch_decoder *wp = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, on_event, &gp);

		kc_watch_decoder_set_protobuf(wp, true);
		watch_feed_all(wp, pb, plen, k);
		same(&gp, &gj, pbname);
		kc_watch_decoder_free(wp);
		got_free(&gp);
	}
	kc_watch_decoder_free(wj);
	got_free(&gj);
	free(pb);
	free(json);
}

static void test_watch_same_as_json(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct got g = { .t = &kc_type_pod };
	struct kc_watch_decoder *w;
	size_t len;
	char *pb;

	(void)state;
	/* ADDED, MODIFIED (a GPU turned Unhealthy), DELETED, the initial-events-end
	 * BOOKMARK and a 410 ERROR. */
	check_watch("watch.pb", "watch.jsonl", 7);
	check_watch("real-watch.pb", "real-watch.jsonl", 2);

	/* A real WatchList: the state, then the bookmark that ends it. */
	pb = fixture("real-watchlist.pb", &len);
	w = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, on_event, &g);
	kc_watch_decoder_set_protobuf(w, true);
	watch_feed_all(w, pb, len, len);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.types[0], KC_WATCH_ADDED);
	assert_int_equal(g.types[1], KC_WATCH_BOOKMARK);
	assert_false(g.initial_end[0]);
	assert_true(g.initial_end[1]);
	kc_watch_decoder_free(w);
	got_free(&g);
	free(pb);
}

/* The same decoder reads JSON after protobuf and back, as its reflector's streams switch. */
static void test_watch_switches_encoding(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	size_t plen, jlen;
	char *pb = fixture("watch.pb", &plen), *json = fixture("watch.jsonl", &jlen);
	struct got g = { .t = &kc_type_pod };
	struct kc_watch_decoder *w = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, on_event, &g);

	(void)state;
	kc_watch_decoder_set_protobuf(w, true);
	watch_feed_all(w, pb, plen / 2, plen / 2);  /* a stream cut mid-frame ... */
	got_free(&g);
	kc_watch_decoder_reset(w);                   /* ... and the next one, in JSON */
	kc_watch_decoder_set_protobuf(w, false);
	watch_feed_all(w, json, jlen, jlen);
	assert_int_equal(g.n, 7);
	got_free(&g);
	kc_watch_decoder_reset(w);
	kc_watch_decoder_set_protobuf(w, true);
	watch_feed_all(w, pb, plen, plen);
	assert_int_equal(g.n, 7);
	got_free(&g);
	kc_watch_decoder_free(w);
	free(pb);
	free(json);
}

static void test_status_bodies(void **state)
{
	static const char *const names[] = { "status-410", "status-429" };

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(names); i++) {
		char *pbname = kc_xasprintf("%s.pb", names[i]), *jsonname = kc_xasprintf("%s.json", names[i]);
		size_t plen, jlen;
		char *pb = fixture(pbname, &plen), *json = fixture(jsonname, &jlen);
		struct kc_status a, b;

		assert_int_equal(kc_status_decode(pb, plen, &a), 0);
		assert_int_equal(kc_status_decode(json, jlen, &b), 0);
		assert_int_equal(a.code, b.code);
		assert_string_equal(a.status, b.status);
		assert_string_equal(a.reason, b.reason);
		assert_string_equal(a.message, b.message);
		assert_int_equal(a.retry_after_s, b.retry_after_s);
		assert_int_equal(a.n_causes, b.n_causes);
		for (size_t c = 0; c < a.n_causes; c++) {
			assert_string_equal(a.causes[c].reason, b.causes[c].reason);
			assert_string_equal(a.causes[c].message, b.causes[c].message);
			assert_string_equal(a.causes[c].field, b.causes[c].field);
		}
		kc_status_done(&a);
		kc_status_done(&b);
		free(pb);
		free(json);
		free(pbname);
		free(jsonname);
	}
	{
		size_t len;
		char *pb = fixture("real-status-404.pb", &len);
		struct kc_status s;

		assert_int_equal(kc_status_decode(pb, len, &s), 0);
		assert_int_equal(s.code, 404);
		assert_string_equal(s.reason, "NotFound");
		kc_status_done(&s);
		free(pb);
	}
}

/* Cut at every length, a LIST fails, or is whole when only the envelope's trailing empty
 * fields (contentEncoding, contentType) are cut off; no item is delivered twice or half. */
static void test_list_cut_short(void **state)
{
	size_t len;
	char *pb = fixture("podlist.pb", &len);

	(void)state;
	for (size_t cut = 0; cut < len; cut++) {
		struct got g = { .t = &kc_type_pod };
		int r;
		struct kc_list_decoder *d = list_pb(&kc_type_pod, pb, cut, cut / 2, 0, &g, &r);

		if (r == 0 && (g.n != 13 || cut < len - 4))
			fail_msg("a LIST cut at %zu of %zu bytes was accepted with %zu items", cut, len, g.n);
		if (r != 0) {
			assert_int_equal(r, -EBADMSG);
			assert_true(g.n <= 13);
			assert_non_null(strstr(kc_list_decoder_error(d), "list"));
		}
		kc_list_decoder_free(d);
		got_free(&g);
	}
	free(pb);
}

/* An item over the size bound is left out and counted; the LIST goes on. */
static void test_list_item_bound(void **state)
{
	size_t len;
	char *pb = fixture("podlist.pb", &len);
	struct got all = { .t = &kc_type_pod }, some = { .t = &kc_type_pod };
	int r;
	struct kc_list_decoder *d = list_pb(&kc_type_pod, pb, len, len, 0, &all, &r);

	(void)state;
	assert_int_equal(r, 0);
	kc_list_decoder_free(d);
	/* managedFields make one pod (variant-managed-fields, 2,141 bytes) far larger than the others. */
	for (size_t k = 0; k <= len; k += 97) {
		d = list_pb(&kc_type_pod, pb, len, k, 2000, &some, &r);
		assert_int_equal(r, 0);
		assert_int_equal(kc_list_decoder_skipped(d), 1);
		assert_int_equal(some.n, 12);
		assert_int_equal(all.n, 13);
		assert_string_equal(kc_list_decoder_continue(d), "token-abc");
		kc_list_decoder_free(d);
		got_free(&some);
	}
	got_free(&all);
	free(pb);
}

static void test_watch_hostile(void **state)
{
	struct kc_decode_ctx ctx = { intern, NULL };
	struct got g = { .t = &kc_type_pod };
	struct kc_watch_decoder *w;
	size_t len;
	char *pb = fixture("watch.pb", &len);
	uint32_t first = (uint32_t)(unsigned char)pb[0] << 24 | (uint32_t)(unsigned char)pb[1] << 16 |
			 (uint32_t)(unsigned char)pb[2] << 8 | (unsigned char)pb[3];

	(void)state;
	/* A frame over the bound: -EMSGSIZE before anything of it is held. */
	w = kc_watch_decoder_new(&kc_type_pod, &ctx, first - 1, on_event, &g);
	kc_watch_decoder_set_protobuf(w, true);
	assert_int_equal(kc_watch_decoder_feed(w, pb, 4), -EMSGSIZE);
	assert_non_null(strstr(kc_watch_decoder_error(w), "bytes"));
	/* ... and stays so, without allocating what the frame announced, until a reset. */
	assert_int_equal(kc_watch_decoder_feed(w, pb + 4, 1), -EMSGSIZE);
	kc_watch_decoder_reset(w);
	assert_int_equal(kc_watch_decoder_feed(w, "\x00\x00\x00\x06\x0a\x04" "ODD!", 10), 0);
	kc_watch_decoder_free(w);
	assert_int_equal(g.n, 0);

	/* A malformed event: -EBADMSG, nothing delivered. */
	w = kc_watch_decoder_new(&kc_type_pod, &ctx, 0, on_event, &g);
	kc_watch_decoder_set_protobuf(w, true);
	assert_int_equal(kc_watch_decoder_feed(w, "\x00\x00\x00\x02\x0a\x05", 6), -EBADMSG);
	assert_int_equal(g.n, 0);
	/* An event without an object; one of a type we do not know is skipped. */
	kc_watch_decoder_reset(w);
	assert_int_equal(kc_watch_decoder_feed(w, "\x00\x00\x00\x07\x0a\x05" "ADDED", 11), -EBADMSG);
	assert_non_null(strstr(kc_watch_decoder_error(w), "without"));
	kc_watch_decoder_reset(w);
	assert_int_equal(kc_watch_decoder_feed(w, "\x00\x00\x00\x06\x0a\x04" "ODD!", 10), 0);
	assert_int_equal(kc_watch_decoder_skipped(w), 1);
	/* An object without the "k8s\0" envelope. */
	kc_watch_decoder_reset(w);
	assert_int_equal(kc_watch_decoder_feed(w, "\x00\x00\x00\x0d\x0a\x05" "ADDED" "\x12\x04\x0a\x02{}", 17), -EBADMSG);
	assert_non_null(strstr(kc_watch_decoder_error(w), "k8s"));
	assert_int_equal(g.n, 0);
	kc_watch_decoder_free(w);
	free(pb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_same_as_json),
		cmocka_unit_test(test_watch_same_as_json),
		cmocka_unit_test(test_watch_switches_encoding),
		cmocka_unit_test(test_status_bodies),
		cmocka_unit_test(test_list_cut_short),
		cmocka_unit_test(test_list_item_bound),
		cmocka_unit_test(test_watch_hostile),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
