/*
 * Integration tests of leader election against the test API server, with
 * short timings (lease 2s, renew deadline 1s, retry 0.2s): two electors in one
 * loop elect exactly one leader; a leader that stops renewing is replaced
 * after the lease duration; a released lease is taken over at once; a leader
 * whose writes fail stops leading within the renew deadline, before anyone
 * else leads.  Every test checks that two electors never lead at once and
 * ends with every handle closed.  Run with
 * `python3 test/run_with_apiserver.py build/test/itest_leader`.
 */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kc_config.h"
#include "kc_http.h"
#include "kc_log.h"
#include "ktest.h"
#include "leader.h"

#define LEASE_MS 2000
#define RENEW_MS 1000
#define RETRY_MS 200

struct elector {
	struct world *w;
	struct leader *l;
	const char *id;
	int started;
	int stopped;
	uint64_t started_at;
	uint64_t stopped_at;
	bool closed;
	bool stop_on_start; /* call leader_stop(release) from on_started_leading */
	bool stop_on_stop;  /* call leader_stop() from on_stopped_leading */
};

struct world {
	uv_loop_t loop;
	struct kc_config cfg;
	struct kc_client *client;
	struct elector e[2];
	int leading;	 /* electors leading right now */
	int max_leading; /* the most ever leading at once */
	bool client_closed;
};

static void on_elector_closed(void *ud)
{
	struct elector *e = ud;

	e->closed = true;
	e->l = NULL;
}

static void on_started(void *ud)
{
	struct elector *e = ud;

	e->started++;
	e->started_at = kc_monotonic_ms();
	e->w->leading++;
	if (e->w->leading > e->w->max_leading)
		e->w->max_leading = e->w->leading;
	if (e->stop_on_start)
		leader_stop(e->l, true, on_elector_closed, e);
}

static void on_stopped(void *ud)
{
	struct elector *e = ud;

	e->stopped++;
	e->stopped_at = kc_monotonic_ms();
	e->w->leading--;
	if (e->stop_on_stop && e->l)
		leader_stop(e->l, false, on_elector_closed, e);
}

static void world_init(struct world *w, const char *lease)
{
	struct kc_client_options copts = {.qps = 1000, .burst = 1000};
	struct kc_error err = {{0}};
	static const char *const ids[] = {"replica-a", "replica-b"};

	memset(w, 0, sizeof(*w));
	assert_int_equal(uv_loop_init(&w->loop), 0);
	assert_int_equal(kc_config_load(NULL, NULL, &w->cfg, &err), 0);
	assert_int_equal(kc_client_new(&w->loop, &w->cfg, &copts, &w->client, &err), 0);
	for (int i = 0; i < 2; i++) {
		struct leader_options o = {
		    .name = lease,
		    .ns = "kube-system",
		    .identity = ids[i],
		    .lease_duration_ms = LEASE_MS,
		    .renew_deadline_ms = RENEW_MS,
		    .retry_period_ms = RETRY_MS,
		    .on_started_leading = on_started,
		    .on_stopped_leading = on_stopped,
		    .userdata = &w->e[i],
		};

		w->e[i].w = w;
		w->e[i].id = ids[i];
		assert_int_equal(leader_new(&w->loop, w->client, &o, &w->e[i].l, &err), 0);
	}
}

static void on_client_closed(void *ud)
{
	struct world *w = ud;

	w->client_closed = true;
}

static bool all_closed(void *ud)
{
	struct world *w = ud;

	return !w->e[0].l && !w->e[1].l;
}

static bool first_closed(void *ud)
{
	struct world *w = ud;

	return w->e[0].closed;
}

static void world_done(struct world *w)
{
	for (int i = 0; i < 2; i++)
		if (w->e[i].l)
			leader_stop(w->e[i].l, false, on_elector_closed, &w->e[i]);
	assert_true(ktest_run_loop_until(&w->loop, all_closed, w, 5000));
	kc_client_close(w->client, on_client_closed, w);
	assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
	assert_true(w->client_closed);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	kc_config_done(&w->cfg);
	assert_true(w->max_leading <= 1);
}

static bool someone_leads(void *ud)
{
	struct world *w = ud;

	return w->leading == 1;
}

static bool nobody_leads(void *ud)
{
	struct world *w = ud;

	return w->leading == 0;
}

/* The standby (e[1]) has read the lease and seen e[0] hold it. */
static bool standby_sees_first(void *ud)
{
	struct world *w = ud;

	return w->e[1].l && strcmp(leader_observed_holder(w->e[1].l), w->e[0].id) == 0;
}

static bool never(void *ud)
{
	(void)ud;
	return false;
}

static struct elector *the_leader(struct world *w)
{
	for (int i = 0; i < 2; i++)
		if (w->e[i].l && leader_is_leader(w->e[i].l))
			return &w->e[i];
	return NULL;
}

static struct elector *the_other(struct world *w, struct elector *e)
{
	return e == &w->e[0] ? &w->e[1] : &w->e[0];
}

/* Reads the Lease with the admin client: its spec as a jansson object (caller decrefs). */
static json_t *get_lease(const char *name)
{
	char *path = kc_xasprintf("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/%s", name);
	char *body = NULL;
	json_t *root, *spec;

	assert_int_equal(ktest_admin("GET", path, NULL, &body), 200);
	root = json_loads(body, 0, NULL);
	assert_non_null(root);
	spec = json_incref(json_object_get(root, "spec"));
	json_decref(root);
	free(body);
	free(path);
	assert_non_null(spec);
	return spec;
}

static const char *spec_str(json_t *spec, const char *key)
{
	const char *s = json_string_value(json_object_get(spec, key));

	return s ? s : "";
}

static json_int_t spec_int(json_t *spec, const char *key)
{
	return json_integer_value(json_object_get(spec, key));
}

static void test_one_leader(void **state)
{
	struct world w;
	struct elector *e;
	json_t *spec;
	int64_t t;

	(void)state;
	world_init(&w, "itest-one");
	assert_int_equal(leader_start(w.e[0].l), 0);
	assert_int_equal(leader_start(w.e[1].l), 0);
	assert_int_equal(leader_start(w.e[1].l), -EALREADY);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	/* Several renewals later it still leads, alone. */
	ktest_run_loop_until(&w.loop, never, NULL, 1500);
	e = the_leader(&w);
	assert_non_null(e);
	assert_int_equal(e->started, 1);
	assert_int_equal(e->stopped, 0);
	assert_int_equal(the_other(&w, e)->started, 0);
	assert_string_equal(leader_observed_holder(the_other(&w, e)->l), e->id);

	spec = get_lease("itest-one");
	assert_string_equal(spec_str(spec, "holderIdentity"), e->id);
	assert_int_equal(spec_int(spec, "leaseDurationSeconds"), 2);
	assert_int_equal(spec_int(spec, "leaseTransitions"), 0);
	/* RFC 3339 with microseconds, renewed within the last second. */
	assert_int_equal(strlen(spec_str(spec, "renewTime")), strlen("2026-11-27T01:02:03.000000Z"));
	assert_int_equal(kc_parse_time(spec_str(spec, "renewTime"), strlen(spec_str(spec, "renewTime")), &t),
			 0);
	assert_true(t >= kc_wall_ms() / 1000 - 2);
	assert_int_equal(
	    kc_parse_time(spec_str(spec, "acquireTime"), strlen(spec_str(spec, "acquireTime")), &t), 0);
	json_decref(spec);
	world_done(&w);
}

static void test_takeover_after_expiry(void **state)
{
	struct world w;
	struct elector *a, *b;
	uint64_t stopped;
	json_t *spec;

	(void)state;
	world_init(&w, "itest-expiry");
	assert_int_equal(leader_start(w.e[0].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	assert_int_equal(leader_start(w.e[1].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, standby_sees_first, &w, 5000));
	a = the_leader(&w);
	assert_ptr_equal(a, &w.e[0]);
	b = the_other(&w, a);

	/* The leader dies without releasing: no more renewals. */
	stopped = kc_monotonic_ms();
	leader_stop(a->l, false, on_elector_closed, a);
	assert_int_equal(a->stopped, 1);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	assert_int_equal(b->started, 1);
	/* Not before the lease expired as b observed it (b saw the last renewal at most
	 * a retry period plus jitter before a died), and not much later. */
	print_message("takeover %llums after the leader died\n",
		      (unsigned long long)(b->started_at - stopped));
	assert_true(b->started_at - stopped >= LEASE_MS - 3 * RETRY_MS);
	assert_true(b->started_at - stopped <= LEASE_MS + 5 * RETRY_MS + 1000);

	spec = get_lease("itest-expiry");
	assert_string_equal(spec_str(spec, "holderIdentity"), "replica-b");
	assert_int_equal(spec_int(spec, "leaseTransitions"), 1);
	json_decref(spec);
	world_done(&w);
}

static void test_release_hands_over(void **state)
{
	struct world w;
	struct elector *a, *b;
	uint64_t released;
	json_t *spec;

	(void)state;
	world_init(&w, "itest-release");
	assert_int_equal(leader_start(w.e[0].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	assert_int_equal(leader_start(w.e[1].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, standby_sees_first, &w, 5000));
	a = &w.e[0];
	b = &w.e[1];
	assert_true(leader_is_leader(a->l));

	released = kc_monotonic_ms();
	leader_stop(a->l, true, on_elector_closed, a);
	assert_int_equal(a->stopped, 1); /* synchronously, before the release is sent */
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	assert_true(a->closed);
	print_message("takeover %llums after the release\n", (unsigned long long)(b->started_at - released));
	/* At b's next attempt: at most a retry period with 1.2 jitter. */
	assert_true(b->started_at - released <= (uint64_t)(RETRY_MS * 2.2) + 600);
	assert_true(b->started_at - released < LEASE_MS);

	spec = get_lease("itest-release");
	assert_string_equal(spec_str(spec, "holderIdentity"), "replica-b");
	assert_int_equal(spec_int(spec, "leaseTransitions"), 1);
	json_decref(spec);
	world_done(&w);
}

/* A release answered with 409 re-reads the lease and releases again. */
static void test_release_after_conflict(void **state)
{
	struct world w;
	char *resp = NULL;
	json_t *spec;

	(void)state;
	world_init(&w, "itest-release409");
	assert_int_equal(leader_start(w.e[0].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	/* The loop does not run between the two: the next PUT is the release. */
	assert_int_equal(
	    ktest_admin("POST", "/_test/faults",
			"{\"method\":\"PUT\",\"path_regex\":\"leases/itest-release409\",\"count\":1,"
			"\"status\":409}",
			&resp),
	    200);
	free(resp);
	leader_stop(w.e[0].l, true, on_elector_closed, &w.e[0]);
	assert_true(ktest_run_loop_until(&w.loop, first_closed, &w, 5000));
	spec = get_lease("itest-release409");
	assert_string_equal(spec_str(spec, "holderIdentity"), "");
	assert_int_equal(spec_int(spec, "leaseDurationSeconds"), 1);
	json_decref(spec);
	world_done(&w);
}

/* Callbacks may stop the elector: on_started_leading with a release, and
 * on_stopped_leading when the renew deadline passes. */
static void test_stop_from_callbacks(void **state)
{
	struct world w;
	char *resp = NULL;
	json_t *spec;

	(void)state;
	world_init(&w, "itest-callbacks");
	w.e[0].stop_on_start = true;
	assert_int_equal(leader_start(w.e[0].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, first_closed, &w, 5000));
	assert_int_equal(w.e[0].started, 1);
	assert_int_equal(w.e[0].stopped, 1);
	spec = get_lease("itest-callbacks");
	assert_string_equal(spec_str(spec, "holderIdentity"), "");
	json_decref(spec);

	w.e[1].stop_on_stop = true;
	assert_int_equal(leader_start(w.e[1].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	assert_int_equal(
	    ktest_admin("POST", "/_test/faults",
			"{\"method\":\"PUT\",\"path_regex\":\"leases/itest-callbacks\",\"count\":1000,"
			"\"status\":500}",
			&resp),
	    200);
	free(resp);
	assert_true(ktest_run_loop_until(&w.loop, all_closed, &w, 3000));
	assert_int_equal(w.e[1].stopped, 1);
	assert_int_equal(ktest_admin("DELETE", "/_test/faults", NULL, NULL), 200);
	world_done(&w);
}

static void test_release_without_leading(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, "itest-noop");
	/* Never started: stopping with release sends nothing and closes cleanly. */
	leader_stop(w.e[0].l, true, on_elector_closed, &w.e[0]);
	assert_int_equal(w.e[0].stopped, 0);
	world_done(&w);
	assert_true(w.e[0].closed);
}

static void test_renew_failures_stop_leading(void **state)
{
	struct world w;
	struct elector *a, *b;
	uint64_t injected;
	char *resp = NULL;
	json_t *spec;

	(void)state;
	world_init(&w, "itest-faults");
	assert_int_equal(leader_start(w.e[0].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	assert_int_equal(leader_start(w.e[1].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, standby_sees_first, &w, 5000));
	a = &w.e[0];
	b = &w.e[1];
	assert_true(leader_is_leader(a->l));

	/* Every write to this lease fails from now on. */
	injected = kc_monotonic_ms();
	assert_int_equal(
	    ktest_admin("POST", "/_test/faults",
			"{\"method\":\"PUT\",\"path_regex\":\"leases/itest-faults\",\"count\":1000,"
			"\"status\":503}",
			&resp),
	    200);
	free(resp);
	assert_true(ktest_run_loop_until(&w.loop, nobody_leads, &w, 3000));
	print_message("stopped leading %llums after the faults began\n",
		      (unsigned long long)(a->stopped_at - injected));
	/* It stopped on its own clock, before its lease could expire for anyone else:
	 * nobody else took it, and the server still names a.  (How soon is measured
	 * above, not asserted: a loaded machine may run the deadline timer late.) */
	assert_int_equal(a->stopped, 1);
	assert_int_equal(b->started, 0);
	spec = get_lease("itest-faults");
	assert_string_equal(spec_str(spec, "holderIdentity"), "replica-a");
	json_decref(spec);

	/* Writes work again: someone leads again, alone. */
	assert_int_equal(ktest_admin("DELETE", "/_test/faults", NULL, NULL), 200);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	world_done(&w);
}

/* A renewal that hangs: the deadline fires while the request is in flight. */
static void test_hung_renewal_stops_leading(void **state)
{
	struct world w;
	struct elector *a;
	uint64_t injected;
	char *resp = NULL;

	(void)state;
	world_init(&w, "itest-hang");
	assert_int_equal(leader_start(w.e[0].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	a = &w.e[0];
	assert_true(leader_is_leader(a->l));

	injected = kc_monotonic_ms();
	assert_int_equal(ktest_admin("POST", "/_test/faults",
				     "{\"method\":\"PUT\",\"path_regex\":\"leases/itest-hang\",\"count\":1,"
				     "\"delay_ms\":4000}",
				     &resp),
			 200);
	free(resp);
	assert_true(ktest_run_loop_until(&w.loop, nobody_leads, &w, 3000));
	print_message("stopped leading %llums after the renewals began to hang\n",
		      (unsigned long long)(a->stopped_at - injected));
	/* It stopped while the renewal still hung (the server holds it 4 s): the
	 * deadline, not an answer, ended its leadership.  How soon is printed above. */
	assert_int_equal(a->stopped, 1);
	/* The lease still names a: a leads again once its writes go through. */
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	assert_true(leader_is_leader(a->l));
	world_done(&w);
}

/*
 * Issue 14 #17: after a pause longer than the renew deadline (the process
 * frozen, the loop not running), leader_is_leader() says no at once, before
 * any timer of the loop had a chance to run: whatever runs first on resume
 * must not act on a lease that another replica may hold by now.
 */
static void test_stale_lease_is_not_leadership(void **state)
{
	struct timespec pause = {.tv_sec = (RENEW_MS + 200) / 1000, .tv_nsec = ((RENEW_MS + 200) % 1000) * 1000000L};
	struct world w;
	struct elector *a;

	(void)state;
	world_init(&w, "itest-pause");
	assert_int_equal(leader_start(w.e[0].l), 0);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	a = &w.e[0];
	assert_true(leader_is_leader(a->l));
	/* The loop does not run while we sleep: no renewal, no deadline timer. */
	nanosleep(&pause, NULL);
	assert_false(leader_is_leader(a->l));
	assert_int_equal(a->stopped, 0); /* the deadline timer has not run yet */
	/* On resume the deadline timer ends the leadership; the elector campaigns again. */
	assert_true(ktest_run_loop_until(&w.loop, nobody_leads, &w, 3000));
	assert_int_equal(a->stopped, 1);
	assert_true(ktest_run_loop_until(&w.loop, someone_leads, &w, 5000));
	assert_true(leader_is_leader(a->l));
	world_done(&w);
}

static void test_invalid_options(void **state)
{
	struct leader_options o = {.lease_duration_ms = 1000, .renew_deadline_ms = 1000};
	struct kc_error err = {{0}};
	struct leader *l = NULL;
	uv_loop_t loop;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(leader_new(&loop, NULL, &o, &l, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "leader election: lease duration (1000ms) must be greater than the renew "
			    "deadline (1000ms)");
	o.lease_duration_ms = 0;
	o.retry_period_ms = 900;
	assert_int_equal(leader_new(&loop, NULL, &o, &l, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "leader election: renew deadline (1000ms) must be greater than 1.2 x the "
			    "retry period (900ms)");
	o = (struct leader_options){.name = "a/b"};
	assert_int_equal(leader_new(&loop, NULL, &o, &l, &err), -EINVAL);
	assert_null(l);

	/* Defaults: hostname_uuid identity. */
	o = (struct leader_options){0};
	assert_int_equal(leader_new(&loop, NULL, &o, &l, &err), 0);
	assert_non_null(strchr(leader_identity(l), '_'));
	assert_int_equal(strlen(strrchr(leader_identity(l), '_') + 1), 36);
	leader_stop(l, true, NULL, NULL);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_invalid_options),
	    cmocka_unit_test(test_one_leader),
	    cmocka_unit_test(test_takeover_after_expiry),
	    cmocka_unit_test(test_release_hands_over),
	    cmocka_unit_test(test_release_after_conflict),
	    cmocka_unit_test(test_stop_from_callbacks),
	    cmocka_unit_test(test_release_without_leading),
	    cmocka_unit_test(test_renew_failures_stop_leading),
	    cmocka_unit_test(test_hung_renewal_stops_leading),
	    cmocka_unit_test(test_stale_lease_is_not_leadership),
	};

	kc_log_setup(getenv("KTEST_V") ? atoi(getenv("KTEST_V")) : 0, KC_LOG_TEXT, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
