/*
 * Integration test helpers (ktest.h).
 */
#include "ktest.h"

#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kc_log.h"
#include "kc_util.h"

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "ktest: $%s is not set: run this test with test/run_with_apiserver.py\n",
			name);
		exit(2);
	}
	return v;
}

bool ktest_env_present(void)
{
	const char *v = getenv("KTEST_URL");

	return v && *v;
}

const char *ktest_env_dir(void)
{
	return need_env("KTEST_DIR");
}

const char *ktest_env_url(void)
{
	return need_env("KTEST_URL");
}

const char *ktest_env_admin_token(void)
{
	return need_env("KTEST_ADMIN_TOKEN");
}

char *ktest_path(const char *name)
{
	return kc_xasprintf("%s/%s", ktest_env_dir(), name);
}

static size_t collect(char *buf, size_t size, size_t n, void *userp)
{
	struct kc_buf *b = userp;

	return kc_buf_append(b, buf, size * n) < 0 ? 0 : size * n;
}

long ktest_admin(const char *method, const char *path, const char *json_body, char **ret_body)
{
	struct curl_slist *h = NULL;
	struct kc_buf b;
	char *url, *auth, *ca;
	long code = -1;
	CURL *e;

	e = curl_easy_init();
	if (!e)
		return -1;
	kc_buf_init(&b, 64u * 1024u * 1024u);
	url = kc_xasprintf("%s%s", ktest_env_url(), path);
	auth = kc_xasprintf("Authorization: Bearer %s", ktest_env_admin_token());
	ca = ktest_path("ca.crt");
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
	if (access(ca, R_OK) == 0)
		curl_easy_setopt(e, CURLOPT_CAINFO, ca);
	if (json_body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, json_body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json_body));
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (ret_body && code >= 0) {
		*ret_body = b.data ? b.data : kc_xstrdup("");
		b.data = NULL;
	}
	kc_buf_done(&b);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	free(ca);
	free(auth);
	free(url);
	return code;
}

static void wake_up(uv_timer_t *t)
{
	(void)t;
}

bool ktest_run_loop_until(uv_loop_t *loop, bool (*pred)(void *), void *ud, uint64_t timeout_ms)
{
	uint64_t deadline = kc_monotonic_ms() + timeout_ms;

	while (!pred(ud)) {
		if (kc_monotonic_ms() >= deadline)
			return pred(ud);
		/* UV_RUN_NOWAIT plus a short sleep would spin; RUN_ONCE blocks
		 * until something happens, so bound it with a wake-up timer. */
		uv_timer_t t;

		if (uv_timer_init(loop, &t) < 0)
			return false;
		if (uv_timer_start(&t, wake_up, 20, 0) < 0) {
			uv_close((uv_handle_t *)&t, NULL);
			return false;
		}
		uv_run(loop, UV_RUN_ONCE);
		uv_close((uv_handle_t *)&t, NULL);
		uv_run(loop, UV_RUN_NOWAIT);
	}
	return true;
}

int ktest_write_file(const char *path, const char *data)
{
	char *tmp = kc_xasprintf("%s.tmp.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	int r = 0;

	if (!f) {
		r = -errno;
		free(tmp);
		return r;
	}
	if (fputs(data, f) < 0)
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

long ktest_admin_ok(const char *method, const char *path, const char *json_body)
{
	char *out = NULL;
	long code = ktest_admin(method, path, json_body, &out);

	if (code < 200 || code >= 300)
		fail_msg("%s %s: HTTP %ld: %s", method, path, code, out ? out : "");
	free(out);
	return code;
}

json_t *ktest_admin_json(const char *method, const char *path, const char *json_body)
{
	char *out = NULL;
	long code = ktest_admin(method, path, json_body, &out);
	json_error_t jerr;
	json_t *j;

	if (code < 200 || code >= 300)
		fail_msg("%s %s: HTTP %ld: %s", method, path, code, out ? out : "");
	j = json_loads(out, 0, &jerr);
	free(out);
	assert_non_null(j);
	return j;
}

char *ktest_server_rv(void)
{
	json_t *j = ktest_admin_json("GET", "/_test/state", NULL);
	char *rv = kc_xstrdup(json_string_value(json_object_get(j, "resourceVersion")));

	json_decref(j);
	return rv;
}

size_t ktest_count_requests(const char *verb, const char *path, const char *needle, long status)
{
	json_t *j = ktest_admin_json("GET", "/_test/requests", NULL);
	json_t *items = json_object_get(j, "items");
	size_t i, n = 0;
	json_t *it;

	json_array_foreach(items, i, it) {
		const char *v = json_string_value(json_object_get(it, "verb"));
		const char *p = json_string_value(json_object_get(it, "path"));
		const char *q = json_string_value(json_object_get(it, "query"));

		if (!v || strcmp(v, verb) != 0 || !p || (path && strcmp(p, path) != 0))
			continue;
		if (needle && (!q || !strstr(q, needle)))
			continue;
		if (status >= 0 && json_integer_value(json_object_get(it, "status")) != status)
			continue;
		n++;
	}
	json_decref(j);
	return n;
}

int ktest_env_setup(struct ktest_env *e, const char *suite)
{
	struct kc_client_options co;
	struct kc_error err;
	const char *v = getenv("KTEST_V");

	memset(e, 0, sizeof(*e));
	kc_log_setup(v ? atoi(v) : 0, KC_LOG_TEXT, NULL);
	if (!ktest_env_present()) {
		fprintf(stderr, "%s: run me with test/run_with_apiserver.py\n", suite);
		return -1;
	}
	if (uv_loop_init(&e->loop) < 0)
		return -1;
	if (kc_config_load(NULL, NULL, &e->cfg, &err) < 0) {
		fprintf(stderr, "%s: %s\n", suite, err.msg);
		return -1;
	}
	memset(&co, 0, sizeof(co));
	co.qps = 1000;
	co.burst = 1000;
	if (kc_client_new(&e->loop, &e->cfg, &co, &e->client, &err) < 0) {
		fprintf(stderr, "%s: %s\n", suite, err.msg);
		return -1;
	}
	e->intern = kc_intern_new();
	return 0;
}

static void client_closed(void *ud)
{
	*(bool *)ud = true;
}

static bool flag_set(void *ud)
{
	return *(bool *)ud;
}

int ktest_env_teardown(struct ktest_env *e, const char *suite)
{
	bool closed = false;

	kc_client_close(e->client, client_closed, &closed);
	if (!ktest_run_loop_until(&e->loop, flag_set, &closed, 10000))
		return -1;
	uv_run(&e->loop, UV_RUN_DEFAULT);
	kc_intern_free(e->intern);
	kc_config_done(&e->cfg);
	if (uv_loop_close(&e->loop) != 0) {
		fprintf(stderr, "%s: handles left open on the loop\n", suite);
		return -1;
	}
	return 0;
}

struct wait_rv {
	struct kc_reflector *r;
	uint64_t rv;
};

static bool rv_reached(void *ud)
{
	struct wait_rv *w = ud;

	return strtoull(kc_reflector_resource_version(w->r), NULL, 10) >= w->rv;
}

void ktest_wait_caught_up(uv_loop_t *loop, struct kc_reflector *r, uint64_t timeout_ms)
{
	char *rv = ktest_server_rv();
	struct wait_rv w = {r, strtoull(rv, NULL, 10)};

	if (!ktest_run_loop_until(loop, rv_reached, &w, timeout_ms))
		fail_msg("%s reflector at resourceVersion %s, server at %s", kc_reflector_type(r)->resource,
			 kc_reflector_resource_version(r), rv);
	free(rv);
}

struct wait_stat {
	struct kc_reflector *r;
	size_t offset;
	uint64_t at_least;
};

static bool stat_reached(void *ud)
{
	struct wait_stat *w = ud;
	const uint64_t *v = (const uint64_t *)(const void *)((const char *)kc_reflector_stats(w->r) + w->offset);

	return *v >= w->at_least;
}

void ktest_wait_stat(uv_loop_t *loop, struct kc_reflector *r, size_t offset, const char *field,
		     uint64_t at_least, uint64_t timeout_ms)
{
	struct wait_stat w = {r, offset, at_least};

	if (!ktest_run_loop_until(loop, stat_reached, &w, timeout_ms)) {
		const uint64_t *v =
		    (const uint64_t *)(const void *)((const char *)kc_reflector_stats(r) + offset);

		fail_msg("%s reflector: stats.%s = %llu, want >= %llu", kc_reflector_type(r)->resource, field,
			 (unsigned long long)*v, (unsigned long long)at_least);
	}
}
