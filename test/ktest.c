/*
 * Integration test helpers (ktest.h).
 */
#include "ktest.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
