/*
 * Unit tests of the Event recorder (controller/events.c) over a fake sender:
 * the same Event is counted by PATCH on the one created first (issue 14 #11),
 * an Event gone from the server is created anew, the per-object spam filter
 * drops past its burst and refills, and the caches stay bounded.
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

#include "events.h"
#include "kc_log.h"
#include "kc_util.h"

struct sent {
	char method[8];
	char path[160];
	char *body;
	kc_response_cb done;
	void *userdata;
};

struct fake {
	struct sent *sent;
	size_t n, cap;
	uint64_t now;
	unsigned answers, dropped;
	long last_status;
};

static int fake_send(void *sender, const struct kc_request_options *o, kc_response_cb done, void *userdata)
{
	struct fake *f = sender;
	struct sent *s;

	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 16;
		f->sent = realloc(f->sent, f->cap * sizeof(*f->sent));
		assert_non_null(f->sent);
	}
	s = &f->sent[f->n++];
	snprintf(s->method, sizeof(s->method), "%s", o->method);
	snprintf(s->path, sizeof(s->path), "%s", o->path);
	s->body = kc_xstrdup(o->body);
	s->done = done;
	s->userdata = userdata;
	return 0;
}

static uint64_t fake_now(void *ud)
{
	return ((struct fake *)ud)->now;
}

static void on_done(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct fake *f = userdata;

	(void)req;
	if (resp->error == EVENTS_DROPPED)
		f->dropped++;
	else
		f->answers++;
	f->last_status = resp->http_status;
}

/* Answers request i; a 201 to a POST echoes the Event, as the API server does. */
static void answer(struct fake *f, size_t i, long status)
{
	struct kc_response resp = {.http_status = status};

	if (status == 201) {
		resp.body = f->sent[i].body;
		resp.body_len = strlen(resp.body);
	}
	f->sent[i].done(NULL, &resp, f->sent[i].userdata);
}

static void fake_done(struct fake *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->sent[i].body);
	free(f->sent);
}

static struct requests_event event(const char *name, const char *message)
{
	struct requests_event ev = {.ns = "ml", .kind = "Pod", .api_version = "v1", .name = name, .uid = "u1",
				    .type = "Warning", .reason = "UnhealthyDevice", .action = "Evict",
				    .message = message, .instance = "host_1", .now_ms = 1764222609123};

	return ev;
}

/* A distinct message per call, from a small static pool. */
static const char *msg_n(int i)
{
	static char buf[64][32];

	snprintf(buf[i % 64], sizeof(buf[0]), "message %d", i);
	return buf[i % 64];
}

static void test_aggregation(void **state)
{
	struct fake f = {0};
	struct events *e = events_new(fake_send, &f, fake_now, &f);
	struct requests_event ev = event("trainer-x", "Evicting pod ml/trainer-x");
	char path[160];

	(void)state;
	events_record(e, &ev, on_done, &f);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.sent[0].method, "POST");
	assert_string_equal(f.sent[0].path, "/api/v1/namespaces/ml/events");
	answer(&f, 0, 201);
	assert_int_equal(f.answers, 1);

	/* The same again: a PATCH of count and lastTimestamp on that Event. */
	events_record(e, &ev, on_done, &f);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.sent[1].method, "PATCH");
	snprintf(path, sizeof(path), "/api/v1/namespaces/ml/events/%s", strstr(f.sent[0].body, "trainer-x."));
	*strchr(path + strlen("/api/v1/namespaces/ml/events/"), '"') = '\0';
	assert_string_equal(f.sent[1].path, path);
	assert_non_null(strstr(f.sent[1].body, "\"count\":2"));
	assert_non_null(strstr(f.sent[1].body, "\"lastTimestamp\":\""));
	answer(&f, 1, 200);
	events_record(e, &ev, on_done, &f);
	assert_non_null(strstr(f.sent[2].body, "\"count\":3"));

	/* Gone from the server (expired): created anew, and counted from there. */
	answer(&f, 2, 404);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.sent[3].method, "POST");
	answer(&f, 3, 201);
	assert_int_equal(f.answers, 3);
	events_record(e, &ev, on_done, &f);
	assert_string_equal(f.sent[4].method, "PATCH");
	assert_non_null(strstr(f.sent[4].body, "\"count\":2"));
	answer(&f, 4, 200);

	/* Another message is another Event. */
	ev = event("trainer-x", "Deleting pod ml/trainer-x");
	events_record(e, &ev, on_done, &f);
	assert_string_equal(f.sent[5].method, "POST");
	answer(&f, 5, 201);
	/* A failed POST caches nothing: the next one is a POST again. */
	ev = event("trainer-y", "Evicting pod ml/trainer-y");
	events_record(e, &ev, on_done, &f);
	answer(&f, 6, 500);
	assert_int_equal(f.last_status, 500);
	events_record(e, &ev, on_done, &f);
	assert_string_equal(f.sent[7].method, "POST");
	answer(&f, 7, 201);
	events_free(e);
	fake_done(&f);
}

/* client-go's spam filter: a burst of 25 per object, then one per 5 minutes. */
static void test_spam_filter(void **state)
{
	struct fake f = {0};
	struct events *e = events_new(fake_send, &f, fake_now, &f);
	struct requests_event ev;

	(void)state;
	f.now = 1000;
	for (int i = 0; i < EVENTS_SPAM_BURST + 5; i++) {
		ev = event("trainer-x", msg_n(i));
		events_record(e, &ev, on_done, &f);
	}
	assert_int_equal(f.n, EVENTS_SPAM_BURST);
	assert_int_equal(f.dropped, 5);
	/* Another object has its own bucket. */
	ev = event("trainer-z", "Evicting pod ml/trainer-z");
	events_record(e, &ev, on_done, &f);
	assert_int_equal(f.n, EVENTS_SPAM_BURST + 1);
	/* One more after 5 minutes, not two. */
	f.now += EVENTS_SPAM_REFILL_MS;
	ev = event("trainer-x", "later 1");
	events_record(e, &ev, on_done, &f);
	ev = event("trainer-x", "later 2");
	events_record(e, &ev, on_done, &f);
	assert_int_equal(f.n, EVENTS_SPAM_BURST + 2);
	assert_int_equal(f.dropped, 6);
	for (size_t i = 0; i < f.n; i++)
		answer(&f, i, 201);
	events_free(e);
	fake_done(&f);
}

/* More distinct Events than the cache holds: memory stays bounded, recording goes on. */
static void test_bounded(void **state)
{
	struct fake f = {0};
	struct events *e = events_new(fake_send, &f, fake_now, &f);
	char name[32];

	(void)state;
	for (int i = 0; i < EVENTS_MAX_CACHED + 10; i++) {
		struct requests_event ev;

		snprintf(name, sizeof(name), "pod-%d", i);
		ev = event(name, "Evicting");
		events_record(e, &ev, on_done, &f);
		answer(&f, f.n - 1, 201);
	}
	assert_int_equal(f.answers, EVENTS_MAX_CACHED + 10);
	events_free(e);
	fake_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aggregation),
	    cmocka_unit_test(test_spam_filter),
	    cmocka_unit_test(test_bounded),
	};

	kc_log_setup(-1, KC_LOG_TEXT, stderr);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
