/*
 * Unit tests of the policy file watcher (controller/policy_watch.c): the
 * initial load, reloads that take effect or are rejected (and reported once),
 * --dry-run forcing dryRun, and a change noticed on the loop by itself.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "kc_log.h"
#include "policy_watch.h"

#define HEADER "apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicy\n"

struct ctx {
	char dir[64], path[96];
	unsigned reloads;
	bool last_dry_run;
	char last_why[32];
	struct metrics *metrics;
};

static void write_file(const struct ctx *c, const char *text)
{
	char tmp[128];
	FILE *f;

	/* Replace it atomically, as the kubelet does, so a poll never reads half a file. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, c->path), 0);
}

static void ctx_init(struct ctx *c, const char *text)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_policy_watch.XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->path, sizeof(c->path), "%s/policy.yaml", c->dir);
	if (text)
		write_file(c, text);
	c->metrics = metrics_new();
}

static void ctx_done(struct ctx *c)
{
	unlink(c->path);
	rmdir(c->dir);
	metrics_free(c->metrics);
}

static double reloads_total(const struct ctx *c, const char *result)
{
	double v = 0;

	if (metrics_get(c->metrics, "policy_reloads_total", &v, result, NULL) < 0)
		return 0;
	return v;
}

static void on_reload(const struct policy *p, const char *why, void *ud)
{
	struct ctx *c = ud;

	c->reloads++;
	c->last_dry_run = p->dry_run;
	snprintf(c->last_why, sizeof(c->last_why), "%s", why);
}

static void test_initial_load(void **state)
{
	struct kc_error err = {{0}};
	struct policy_watch *w = NULL;
	struct ctx c;

	(void)state;
	ctx_init(&c, NULL);
	assert_int_equal(policy_watch_new(c.path, false, &w, &err), -ENOENT);
	assert_null(w);
	assert_non_null(strstr(err.msg, "cannot read the policy"));
	write_file(&c, HEADER "bogus: 1\n");
	assert_int_equal(policy_watch_new(c.path, false, &w, &err), -EINVAL);
	write_file(&c, HEADER "dryRun: false\n");
	assert_int_equal(policy_watch_new(c.path, true, &w, &err), 0);
	assert_true(policy_watch_policy(w)->dry_run); /* --dry-run wins */
	/* Never started: stop and close do nothing, free frees. */
	policy_watch_stop(w);
	policy_watch_close(w);
	assert_null(policy_watch_free(w));
	ctx_done(&c);
}

static void test_reload(void **state)
{
	struct kc_error err = {{0}};
	struct policy_watch *w = NULL;
	const struct policy *before;
	uv_loop_t loop;
	struct ctx c;

	(void)state;
	ctx_init(&c, HEADER "dryRun: true\n");
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(policy_watch_new(c.path, false, &w, &err), 0);
	assert_int_equal(policy_watch_start(w, &loop, c.metrics, on_reload, &c), 0);
	before = policy_watch_policy(w);
	assert_true(before->dry_run);

	/* The same bytes: nothing happens. */
	policy_watch_reload(w, "SIGHUP");
	assert_int_equal(c.reloads, 0);
	assert_ptr_equal(policy_watch_policy(w), before);

	write_file(&c, HEADER "dryRun: false\n");
	policy_watch_reload(w, "SIGHUP");
	assert_int_equal(c.reloads, 1);
	assert_false(c.last_dry_run);
	assert_string_equal(c.last_why, "SIGHUP");
	assert_false(policy_watch_policy(w)->dry_run);
	assert_true(reloads_total(&c, "success") == 1);

	/* A bad file keeps the policy and is reported once per change; SIGHUP always reports. */
	write_file(&c, HEADER "dryRun: maybe\n");
	policy_watch_reload(w, "file changed");
	policy_watch_reload(w, "file changed");
	assert_true(reloads_total(&c, "failure") == 1);
	policy_watch_reload(w, "SIGHUP");
	assert_true(reloads_total(&c, "failure") == 2);
	assert_int_equal(c.reloads, 1);
	assert_false(policy_watch_policy(w)->dry_run);

	/* Unreadable counts as a change, and as a failure. */
	unlink(c.path);
	policy_watch_reload(w, "file changed");
	assert_true(reloads_total(&c, "failure") == 3);

	policy_watch_stop(w);
	policy_watch_close(w);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	policy_watch_free(w);
	assert_int_equal(uv_loop_close(&loop), 0);
	ctx_done(&c);
}

static void on_deadline(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static void on_check(uv_timer_t *t)
{
	struct ctx *c = t->data;

	if (c->reloads > 0)
		uv_stop(t->loop);
}

/* A change to the file is noticed on the loop, without SIGHUP (inotify or the poll). */
static void test_change_noticed(void **state)
{
	struct kc_error err = {{0}};
	struct policy_watch *w = NULL;
	uv_timer_t deadline, check;
	uv_loop_t loop;
	struct ctx c;

	(void)state;
	ctx_init(&c, HEADER "dryRun: true\n");
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(policy_watch_new(c.path, false, &w, &err), 0);
	assert_int_equal(policy_watch_start(w, &loop, c.metrics, on_reload, &c), 0);
	write_file(&c, HEADER "dryRun: false\n");
	uv_timer_init(&loop, &deadline);
	uv_timer_init(&loop, &check);
	check.data = &c;
	/* A generous deadline: only a broken watcher waits this long. */
	uv_timer_start(&deadline, on_deadline, 30000, 0);
	uv_timer_start(&check, on_check, 10, 10);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(c.reloads, 1);
	assert_string_equal(c.last_why, "file changed");
	assert_false(policy_watch_policy(w)->dry_run);

	uv_close((uv_handle_t *)&deadline, NULL);
	uv_close((uv_handle_t *)&check, NULL);
	policy_watch_stop(w);
	policy_watch_close(w);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	policy_watch_free(w);
	assert_int_equal(uv_loop_close(&loop), 0);
	ctx_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_initial_load),
	    cmocka_unit_test(test_reload),
	    cmocka_unit_test(test_change_noticed),
	};

	kc_log_setup(-1, KC_LOG_TEXT, stderr);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
