/*
 * Integration tests of kc_http against the test API server: round trips with
 * Status decoding, TLS trust and client certificates, token rotation,
 * retries with Retry-After, timeouts without head-of-line blocking,
 * cancellation, body bounds and client shutdown.  Run with
 * `python3 test/run_with_apiserver.py build/test/itest_http`.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kc_config.h"
#include "kc_http.h"
#include "kc_log.h"
#include "kc_status.h"
#include "ktest.h"

struct result {
	bool done;
	unsigned calls;
	long http_status;
	int error;
	char *body;
	char *message;
	char *reason;
	int status_code;
	unsigned attempts;
	uint64_t retry_after_ms;
	size_t streamed;
	unsigned chunks;
	int stream_error; /* returned by on_data when set */
	bool cancel_in_data;
};

static void result_done(struct result *r)
{
	free(r->body);
	free(r->message);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}

static void on_response(struct kc_request *req, const struct kc_response *resp, void *ud)
{
	struct result *r = ud;

	(void)req;
	r->calls++;
	r->done = true;
	r->http_status = resp->http_status;
	r->error = resp->error;
	r->attempts = resp->attempts;
	r->retry_after_ms = resp->retry_after_ms;
	free(r->body);
	r->body = resp->body ? kc_xstrndup(resp->body, resp->body_len) : NULL;
	free(r->message);
	r->message = resp->error_message ? kc_xstrdup(resp->error_message) : NULL;
	free(r->reason);
	r->reason = resp->status ? kc_xstrdup(resp->status->reason) : NULL;
	r->status_code = resp->status ? resp->status->code : 0;
}

static int on_data(struct kc_request *req, const char *buf, size_t len, void *ud)
{
	struct result *r = ud;

	(void)buf;
	r->streamed += len;
	r->chunks++;
	if (r->cancel_in_data) {
		kc_request_cancel(req);
		return 0;
	}
	return r->stream_error;
}

static bool is_done(void *ud)
{
	return ((struct result *)ud)->done;
}

struct fixture {
	uv_loop_t loop;
	struct kc_client *client;
	bool closed;
	unsigned observed;
};

static void on_closed(void *ud)
{
	((struct fixture *)ud)->closed = true;
}

static bool is_closed(void *ud)
{
	return ((struct fixture *)ud)->closed;
}

static void observer(const char *verb, const char *resource, long http_status, uint64_t duration_ms, void *ud)
{
	struct fixture *f = ud;

	(void)verb;
	(void)resource;
	(void)http_status;
	(void)duration_ms;
	f->observed++;
}

/* Loads DIR/<kubeconfig> and opens a client on a fresh loop. */
static void open_client(struct fixture *f, const char *kubeconfig, const struct kc_client_options *opts)
{
	struct kc_config cfg;
	struct kc_error err = {{0}};
	char *path = ktest_path(kubeconfig);
	int r;

	memset(f, 0, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	r = kc_config_load_kubeconfig(path, NULL, &cfg, &err);
	if (r < 0)
		fail_msg("%s", err.msg);
	r = kc_client_new(&f->loop, &cfg, opts, &f->client, &err);
	if (r < 0)
		fail_msg("%s", err.msg);
	kc_client_set_observer(f->client, observer, f);
	kc_config_done(&cfg);
	free(path);
}

static void close_client(struct fixture *f)
{
	kc_client_close(f->client, on_closed, f);
	assert_true(ktest_run_loop_until(&f->loop, is_closed, f, 10000));
	assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* One request, run to completion. */
static void run(struct fixture *f, const char *method, const char *path, const char *body, const char *ctype,
		bool retry, struct result *res)
{
	struct kc_request_options o = {
	    .method = method,
	    .path = path,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .content_type = ctype,
	    .retry = retry,
	};

	result_done(res);
	assert_int_equal(kc_client_request(f->client, &o, on_response, res, NULL), 0);
	assert_true(ktest_run_loop_until(&f->loop, is_done, res, 30000));
	assert_int_equal(res->calls, 1);
}

static void reset_server(void)
{
	assert_int_equal(ktest_admin("POST", "/_test/reset", "{}", NULL), 200);
}

static void test_round_trips(void **state)
{
	struct fixture f;
	struct result res = {0};
	const char *cm =
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"rt\",\"namespace\":"
	    "\"default\"},\"data\":{\"a\":\"1\"}}";

	(void)state;
	reset_server();
	open_client(&f, "kubeconfig-admin", NULL);

	run(&f, "GET", "/api/v1/namespaces/default/configmaps/rt", NULL, NULL, true, &res);
	assert_int_equal(res.http_status, 404);
	assert_int_equal(res.error, 0);
	assert_non_null(res.reason);
	assert_string_equal(res.reason, "NotFound");
	assert_int_equal(res.status_code, 404);

	run(&f, "POST", "/api/v1/namespaces/default/configmaps", cm, NULL, false, &res);
	assert_int_equal(res.http_status, 201);
	assert_null(res.reason);
	assert_non_null(strstr(res.body, "\"name\":\"rt\""));

	run(&f, "POST", "/api/v1/namespaces/default/configmaps", cm, NULL, false, &res);
	assert_int_equal(res.http_status, 409);
	assert_string_equal(res.reason, "AlreadyExists");

	run(&f, "GET", "/api/v1/namespaces/default/configmaps/rt", NULL, NULL, true, &res);
	assert_int_equal(res.http_status, 200);
	assert_non_null(strstr(res.body, "\"a\":\"1\""));

	run(&f, "PATCH", "/api/v1/namespaces/default/configmaps/rt", "{\"data\":{\"b\":\"2\"}}",
	    "application/merge-patch+json", false, &res);
	assert_int_equal(res.http_status, 200);
	assert_non_null(strstr(res.body, "\"b\":\"2\""));

	run(&f, "PATCH", "/api/v1/namespaces/default/configmaps/rt",
	    "[{\"op\":\"replace\",\"path\":\"/data/a\",\"value\":\"9\"}]", "application/json-patch+json",
	    false, &res);
	assert_int_equal(res.http_status, 200);
	assert_non_null(strstr(res.body, "\"a\":\"9\""));

	/* A PUT with a stale resourceVersion conflicts. */
	run(&f, "PUT", "/api/v1/namespaces/default/configmaps/rt",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"rt\",\"namespace\":"
	    "\"default\","
	    "\"resourceVersion\":\"1\"},\"data\":{\"c\":\"3\"}}",
	    NULL, false, &res);
	assert_int_equal(res.http_status, 409);
	assert_string_equal(res.reason, "Conflict");

	run(&f, "PUT", "/api/v1/namespaces/default/configmaps/rt",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"rt\",\"namespace\":"
	    "\"default\"},"
	    "\"data\":{\"c\":\"3\"}}",
	    NULL, false, &res);
	assert_int_equal(res.http_status, 200);
	assert_non_null(strstr(res.body, "\"c\":\"3\""));

	run(&f, "DELETE", "/api/v1/namespaces/default/configmaps/rt", NULL, NULL, false, &res);
	assert_int_equal(res.http_status, 200);
	run(&f, "DELETE", "/api/v1/namespaces/default/configmaps/rt", NULL, NULL, false, &res);
	assert_int_equal(res.http_status, 404);
	assert_string_equal(res.reason, "NotFound");
	assert_int_equal(f.observed, 10);
	/* The test API server speaks HTTP/1.1; through nghttpx (make itest-h2) it is HTTP/2. */
	assert_string_equal(kc_client_last_protocol(f.client), getenv("KTEST_H2_URL") ? "HTTP/2" : "HTTP/1.1");

	result_done(&res);
	close_client(&f);
}

/* Writes DIR/name: a kubeconfig for the test server with the given CA path
 * (relative to DIR) and user fields (indented YAML lines). */
static char *write_kubeconfig(const char *name, const char *ca, const char *user_yaml)
{
	char *path = ktest_path(name);
	char *text = kc_xasprintf(
	    "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: %s\n"
	    "    certificate-authority: %s\ncontexts:\n- name: t\n  context: {cluster: t, user: u}\n"
	    "current-context: t\nusers:\n- name: u\n  user:\n%s",
	    ktest_env_url(), ca, user_yaml);

	assert_int_equal(ktest_write_file(path, text), 0);
	free(text);
	return path;
}

static char *admin_token_yaml(void)
{
	return kc_xasprintf("    token: %s\n", ktest_env_admin_token());
}

static void open_client_at(struct fixture *f, const char *path, const struct kc_client_options *opts)
{
	char *dir = ktest_path("");
	const char *name = path + strlen(dir);

	open_client(f, name, opts);
	free(dir);
}

static void test_wrong_ca_refused(void **state)
{
	struct fixture f;
	struct result res = {0};
	char *user = admin_token_yaml();
	char *path = write_kubeconfig("kubeconfig-wrong-ca", "wrong-ca.crt", user);

	(void)state;
	open_client_at(&f, path, NULL);
	run(&f, "GET", "/api/v1/namespaces", NULL, NULL, true, &res);
	assert_int_equal(res.error, -EPROTO);
	assert_int_equal(res.http_status, 0);
	assert_int_equal(res.attempts, 1); /* a TLS failure is not retried */
	assert_non_null(res.message);
	assert_non_null(strstr(res.message, "server certificate is not trusted by the configured CA"));
	assert_non_null(strstr(res.message, "wrong-ca.crt"));
	assert_null(strstr(res.message, ktest_env_admin_token()));
	if (getenv("KTEST_V"))
		fprintf(stderr, "TLS error: %s\n", res.message);
	result_done(&res);
	close_client(&f);
	free(path);
	free(user);
}

static void test_client_certificate(void **state)
{
	struct fixture f;
	struct result res = {0};

	(void)state;
	open_client(&f, "kubeconfig-cert", NULL);
	run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, NULL, true, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.http_status, 200);
	assert_non_null(strstr(res.body, "\"kind\":\"ConfigMapList\""));
	result_done(&res);
	close_client(&f);
}

static void set_server_token(const char *tok)
{
	char *body = kc_xasprintf(
	    "{\"tokens\":{\"%s\":\"system:serviceaccount:kube-system:device-descheduler\"}}", tok);

	assert_int_equal(ktest_admin("POST", "/_test/tokens", body, NULL), 200);
	free(body);
}

/* Rewrites the token file in place keeping size and mtime, so only a 401
 * can reveal that it changed. */
static void overwrite_keep_mtime(const char *path, const char *data)
{
	struct stat st;
	struct timespec ts[2];
	int fd;

	assert_int_equal(stat(path, &st), 0);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
}

static void test_token_rotation(void **state)
{
	struct fixture f;
	struct result res = {0};
	char *tok = ktest_path("rot-token");
	char *path = write_kubeconfig("kubeconfig-rot", "ca.crt", "    tokenFile: rot-token\n");
	const char *list = "/api/v1/namespaces/default/configmaps";

	(void)state;
	assert_int_equal(ktest_write_file(tok, "token-aaaa\n"), 0);
	set_server_token("token-aaaa");
	open_client_at(&f, path, NULL);
	run(&f, "GET", list, NULL, NULL, false, &res);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.attempts, 1);

	/* Rotation seen by the file's change: no 401 at all. */
	set_server_token("token-bbbb");
	assert_int_equal(ktest_write_file(tok, "token-bbbb\n"), 0);
	run(&f, "GET", list, NULL, NULL, false, &res);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.attempts, 1);

	/* Rotation the stat cannot see: one 401, a re-read, one retry. */
	set_server_token("token-cccc");
	overwrite_keep_mtime(tok, "token-cccc\n");
	run(&f, "GET", list, NULL, NULL, false, &res);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.attempts, 2);

	/* A token the server does not know: the 401 reaches the caller after one look at the file. */
	set_server_token("token-dddd");
	run(&f, "GET", list, NULL, NULL, false, &res);
	assert_int_equal(res.http_status, 401);
	assert_int_equal(res.attempts, 1);
	assert_string_equal(res.reason, "Unauthorized");

	result_done(&res);
	close_client(&f);
	/* Give the kubeconfig's service-account token back to later tests. */
	{
		char *sa_path = ktest_path("token"), *sa = NULL;

		assert_int_equal(kc_read_file(sa_path, 4096, &sa, NULL), 0);
		set_server_token(sa);
		free(sa);
		free(sa_path);
	}
	free(path);
	free(tok);
}

static void add_fault(const char *json)
{
	assert_int_equal(ktest_admin("POST", "/_test/faults", json, NULL), 200);
}

static const struct kc_client_options fast_retries = {
    .backoff_initial_ms = 10,
    .backoff_max_ms = 50,
    .max_attempts = 5,
};

static void test_retries(void **state)
{
	struct fixture f;
	struct result res = {0};
	uint64_t t0;

	(void)state;
	reset_server();
	open_client(&f, "kubeconfig-admin", &fast_retries);

	/* 429 with Retry-After: 1 twice: the client waits the larger of its backoff and 1 s. */
	add_fault(
	    "{\"method\":\"GET\",\"path_regex\":\"^/api/v1/namespaces/default/configmaps$\",\"count\":2,"
	    "\"status\":429,\"retry_after\":1}");
	t0 = kc_monotonic_ms();
	run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, NULL, true, &res);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.attempts, 3);
	assert_true(kc_monotonic_ms() - t0 >= 1900);
	assert_true(kc_monotonic_ms() - t0 < 5000);

	/* 503, 503, 500, then success, with fast backoff. */
	add_fault(
	    "{\"method\":\"GET\",\"path_regex\":\"^/api/v1/namespaces/default/configmaps$\",\"count\":2,"
	    "\"status\":503}");
	add_fault(
	    "{\"method\":\"GET\",\"path_regex\":\"^/api/v1/namespaces/default/configmaps$\",\"count\":1,"
	    "\"status\":500}");
	t0 = kc_monotonic_ms();
	f.observed = 0;
	run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, NULL, true, &res);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.attempts, 4);
	assert_int_equal(f.observed, 4); /* the observer sees every attempt */
	assert_true(kc_monotonic_ms() - t0 < 2000);

	/* A POST is not retried: the 429 and its Status reach the caller. */
	add_fault("{\"method\":\"POST\",\"path_regex\":\"configmaps$\",\"count\":1,\"status\":429,"
		  "\"retry_after\":3}");
	run(&f, "POST", "/api/v1/namespaces/default/configmaps",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"p\"}}", NULL, false,
	    &res);
	assert_int_equal(res.http_status, 429);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(res.retry_after_ms, 3000);
	assert_string_equal(res.reason, "TooManyRequests");

	/* Attempts are bounded. */
	add_fault("{\"method\":\"GET\",\"path_regex\":\"^/api/v1/namespaces$\",\"count\":10,\"status\":503}");
	run(&f, "GET", "/api/v1/namespaces", NULL, NULL, true, &res);
	assert_int_equal(res.http_status, 503);
	assert_int_equal(res.attempts, 5);
	assert_string_equal(res.reason, "ServiceUnavailable");
	assert_int_equal(ktest_admin("DELETE", "/_test/faults", NULL, NULL), 200);

	result_done(&res);
	close_client(&f);
}

static void test_connection_refused_retried(void **state)
{
	struct fixture f;
	struct result res = {0};
	struct kc_config cfg = {.server = (char *)"https://127.0.0.1:1", .source = (char *)"test"};
	struct kc_error err;

	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(uv_loop_init(&f.loop), 0);
	assert_int_equal(kc_client_new(&f.loop, &cfg, &fast_retries, &f.client, &err), 0);
	run(&f, "GET", "/api/v1/namespaces", NULL, NULL, true, &res);
	assert_int_equal(res.error, -ECONNREFUSED);
	assert_int_equal(res.attempts, 5);
	assert_non_null(res.message);
	run(&f, "GET", "/api/v1/namespaces", NULL, NULL, false, &res);
	assert_int_equal(res.error, -ECONNREFUSED);
	assert_int_equal(res.attempts, 1);
	result_done(&res);
	close_client(&f);
}

struct pair {
	struct result *a, *b;
};

static bool either_done(void *ud)
{
	struct pair *p = ud;

	return p->a->done || p->b->done;
}

static void test_timeout_no_head_of_line_blocking(void **state)
{
	struct fixture f;
	struct result slow = {0}, fast = {0};
	struct pair p = {&slow, &fast};
	struct kc_request_options so = {
	    .method = "GET", .path = "/api/v1/namespaces/default/configmaps/slow", .timeout_ms = 700};
	struct kc_request_options fo = {.method = "GET", .path = "/api/v1/namespaces"};
	uint64_t t0;

	(void)state;
	reset_server();
	add_fault("{\"method\":\"GET\",\"path_regex\":\"/configmaps/slow$\",\"count\":1,\"delay_ms\":3000}");
	open_client(&f, "kubeconfig-admin", NULL);
	t0 = kc_monotonic_ms();
	assert_int_equal(kc_client_request(f.client, &so, on_response, &slow, NULL), 0);
	/* Let the slow request reach the server first. */
	ktest_run_loop_until(&f.loop, is_done, &slow, 200);
	assert_int_equal(kc_client_request(f.client, &fo, on_response, &fast, NULL), 0);
	assert_true(ktest_run_loop_until(&f.loop, either_done, &p, 10000));
	assert_true(fast.done);
	assert_false(slow.done);
	assert_int_equal(fast.http_status, 200);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &slow, 10000));
	assert_int_equal(slow.error, -ETIMEDOUT);
	assert_int_equal(slow.http_status, 0);
	assert_true(kc_monotonic_ms() - t0 < 2000);
	result_done(&slow);
	result_done(&fast);
	close_client(&f);
}

static void test_cancel(void **state)
{
	struct fixture f;
	struct result waiting = {0}, running = {0}, other = {0};
	struct kc_request_options so = {.method = "GET",
					.path = "/api/v1/namespaces/default/configmaps/slow"};
	struct kc_request_options fo = {.method = "GET", .path = "/api/v1/namespaces"};
	struct kc_request *req;

	(void)state;
	reset_server();
	add_fault("{\"method\":\"GET\",\"path_regex\":\"/configmaps/slow$\",\"count\":5,\"delay_ms\":2000}");
	open_client(&f, "kubeconfig-admin", NULL);

	/* Cancelled before it started: the callback comes later, from the loop. */
	assert_int_equal(kc_client_request(f.client, &so, on_response, &waiting, &req), 0);
	kc_request_cancel(req);
	assert_int_equal(waiting.calls, 0);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &waiting, 5000));
	assert_int_equal(waiting.error, -ECANCELED);

	/* Cancelled while the server sits on it; another request goes on. */
	assert_int_equal(kc_client_request(f.client, &so, on_response, &running, &req), 0);
	assert_int_equal(kc_client_request(f.client, &fo, on_response, &other, NULL), 0);
	ktest_run_loop_until(&f.loop, is_done, &running, 300);
	kc_request_cancel(req);
	kc_request_cancel(req); /* twice is harmless */
	assert_int_equal(running.calls, 0);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &running, 1000));
	assert_int_equal(running.error, -ECANCELED);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &other, 5000));
	assert_int_equal(other.http_status, 200);
	ktest_run_loop_until(&f.loop, is_done, &(struct result){0}, 100);
	assert_int_equal(running.calls, 1);
	assert_int_equal(waiting.calls, 1);

	/* Closing the client cancels what is pending. */
	result_done(&running);
	assert_int_equal(kc_client_request(f.client, &so, on_response, &running, NULL), 0);
	ktest_run_loop_until(&f.loop, is_done, &running, 200);
	close_client(&f);
	assert_int_equal(running.calls, 1);
	assert_int_equal(running.error, -ECANCELED);
	result_done(&waiting);
	result_done(&running);
	result_done(&other);
	assert_int_equal(ktest_admin("DELETE", "/_test/faults", NULL, NULL), 200);
}

static void create_configmaps(unsigned n)
{
	struct kc_buf b;
	char item[256];

	kc_buf_init(&b, 1u << 20);
	assert_int_equal(kc_buf_append(&b, "{\"items\":[", 10), 0);
	for (unsigned i = 0; i < n; i++) {
		int len = snprintf(
		    item, sizeof(item),
		    "%s{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm-%u\","
		    "\"namespace\":\"default\"},\"data\":{\"k\":\"v\"}}",
		    i ? "," : "", i);

		assert_int_equal(kc_buf_append(&b, item, (size_t)len), 0);
	}
	assert_int_equal(kc_buf_append(&b, "]}", 2), 0);
	assert_int_equal(ktest_admin("POST", "/_test/objects", b.data, NULL), 200);
	kc_buf_done(&b);
}

static void test_body_bound(void **state)
{
	struct fixture f;
	struct result res = {0};
	struct kc_request_options o = {.method = "GET",
				       .path = "/api/v1/namespaces/default/configmaps",
				       .max_body = 1000,
				       .retry = true};

	(void)state;
	reset_server();
	create_configmaps(20);
	open_client(&f, "kubeconfig-admin", NULL);
	assert_int_equal(kc_client_request(f.client, &o, on_response, &res, NULL), 0);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &res, 10000));
	assert_int_equal(res.error, -EMSGSIZE);
	assert_int_equal(res.attempts, 1);
	assert_null(res.body);
	assert_non_null(strstr(res.message, "bound"));
	/* The same list fits the default bound. */
	run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, NULL, true, &res);
	assert_int_equal(res.http_status, 200);
	result_done(&res);
	close_client(&f);
}

static void test_streaming(void **state)
{
	struct fixture f;
	struct result res = {0};
	struct kc_request_options o = {.method = "GET",
				       .path = "/api/v1/namespaces/default/configmaps?watch=true",
				       .timeout_ms = UINT64_MAX,
				       .on_data = on_data};
	struct kc_request *req;

	(void)state;
	reset_server();
	create_configmaps(3);
	open_client(&f, "kubeconfig-admin", NULL);

	/* A watch streams: chunks arrive while the response is still open. */
	assert_int_equal(kc_client_request(f.client, &o, on_response, &res, &req), 0);
	ktest_run_loop_until(&f.loop, is_done, &res, 1000);
	assert_false(res.done);
	assert_true(res.streamed > 0);
	assert_int_equal(kc_request_http_status(req), 200);
	kc_request_cancel(req);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &res, 2000));
	assert_int_equal(res.error, -ECANCELED);
	assert_null(res.body);

	/* on_data can stop the stream with an error of its own... */
	result_done(&res);
	res.stream_error = -EBADMSG;
	assert_int_equal(kc_client_request(f.client, &o, on_response, &res, NULL), 0);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &res, 5000));
	assert_int_equal(res.error, -EBADMSG);
	assert_int_equal(res.chunks, 1);

	/* ...or cancel from inside the callback. */
	result_done(&res);
	res.cancel_in_data = true;
	assert_int_equal(kc_client_request(f.client, &o, on_response, &res, NULL), 0);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &res, 5000));
	assert_int_equal(res.error, -ECANCELED);
	assert_int_equal(res.calls, 1);

	/* A non-2xx answer to a streaming request is buffered and decoded. */
	result_done(&res);
	o.path = "/api/v1/namespaces/default/nosuchthings?watch=true";
	assert_int_equal(kc_client_request(f.client, &o, on_response, &res, NULL), 0);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &res, 5000));
	assert_int_equal(res.http_status, 404);
	assert_int_equal(res.streamed, 0);
	assert_non_null(res.reason);
	result_done(&res);
	close_client(&f);
}

struct many {
	struct result res[6];
};

static bool all_done(void *ud)
{
	struct many *m = ud;

	for (size_t i = 0; i < KC_ARRAY_SIZE(m->res); i++)
		if (!m->res[i].done)
			return false;
	return true;
}

static void test_rate_limited(void **state)
{
	struct fixture f;
	struct many m;
	struct kc_client_options opts = {.qps = 20, .burst = 2};
	struct kc_request_options o = {.method = "GET", .path = "/api/v1/namespaces"};
	uint64_t t0;

	(void)state;
	memset(&m, 0, sizeof(m));
	open_client(&f, "kubeconfig-admin", &opts);
	t0 = kc_monotonic_ms();
	for (size_t i = 0; i < KC_ARRAY_SIZE(m.res); i++)
		assert_int_equal(kc_client_request(f.client, &o, on_response, &m.res[i], NULL), 0);
	assert_true(ktest_run_loop_until(&f.loop, all_done, &m, 10000));
	/* Two pass at once, the other four wait 50 ms each. */
	assert_true(kc_monotonic_ms() - t0 >= 190);
	for (size_t i = 0; i < KC_ARRAY_SIZE(m.res); i++) {
		assert_int_equal(m.res[i].http_status, 200);
		result_done(&m.res[i]);
	}
	close_client(&f);
}

/* Requests of a saturated rate limiter, and a priority one queued after them. */
struct lanes {
	struct result normal[12];
	struct kc_request *normal_req[12];
	struct result prio;
	unsigned normal_done_before_prio;
};

static void on_normal(struct kc_request *req, const struct kc_response *resp, void *ud)
{
	on_response(req, resp, ud);
}

static void on_prio(struct kc_request *req, const struct kc_response *resp, void *ud)
{
	struct lanes *l = ud;

	on_response(req, resp, &l->prio);
	for (size_t i = 0; i < KC_ARRAY_SIZE(l->normal); i++)
		if (l->normal[i].done)
			l->normal_done_before_prio++;
}

static bool lanes_done(void *ud)
{
	struct lanes *l = ud;

	for (size_t i = 0; i < KC_ARRAY_SIZE(l->normal); i++)
		if (!l->normal[i].done)
			return false;
	return l->prio.done;
}

/* Twelve requests drain a one-token bucket at 1 QPS (the queue is 11 s long); a priority
 * request queued after them is answered before all but the first: it has a lane of its
 * own.  The rest are then cancelled. */
static void test_priority_lane(void **state)
{
	struct fixture f;
	struct lanes *l = kc_xcalloc(1, sizeof(*l));
	struct kc_client_options opts = {.qps = 1, .burst = 1};
	struct kc_request_options o = {.method = "GET", .path = "/api/v1/namespaces"};
	struct kc_request_options po = {.method = "GET", .path = "/api/v1/namespaces/default", .priority = true};

	(void)state;
	open_client(&f, "kubeconfig-admin", &opts);
	for (size_t i = 0; i < KC_ARRAY_SIZE(l->normal); i++)
		assert_int_equal(kc_client_request(f.client, &o, on_normal, &l->normal[i], &l->normal_req[i]), 0);
	assert_int_equal(kc_client_request(f.client, &po, on_prio, l, NULL), 0);
	assert_true(ktest_run_loop_until(&f.loop, is_done, &l->prio, 10000));
	assert_int_equal(l->prio.error, 0);
	assert_int_equal(l->prio.http_status, 200);
	/* Only the first, which took the one token, may have been answered before it. */
	assert_true(l->normal_done_before_prio <= 1);
	/* The first one had its token and runs: it may still be on its way. */
	for (size_t i = 1; i < KC_ARRAY_SIZE(l->normal); i++)
		if (!l->normal[i].done)
			kc_request_cancel(l->normal_req[i]);
	assert_true(ktest_run_loop_until(&f.loop, lanes_done, l, 10000));
	assert_int_equal(l->normal[0].http_status, 200);
	assert_int_equal(l->normal[11].error, -ECANCELED);
	for (size_t i = 0; i < KC_ARRAY_SIZE(l->normal); i++)
		result_done(&l->normal[i]);
	result_done(&l->prio);
	free(l);
	close_client(&f);
}

struct closer {
	struct fixture *f;
	struct result res;
	int request_after_close;
};

static void close_in_callback(struct kc_request *req, const struct kc_response *resp, void *ud)
{
	struct closer *cl = ud;
	struct kc_request_options o = {.method = "GET", .path = "/api/v1/namespaces"};

	on_response(req, resp, &cl->res);
	kc_client_close(cl->f->client, on_closed, cl->f);
	cl->request_after_close = kc_client_request(cl->f->client, &o, on_response, &cl->res, NULL);
}

static void test_close_from_callback(void **state)
{
	struct fixture f;
	struct closer cl = {.f = &f};
	struct result slow = {0};
	struct kc_request_options so = {.method = "GET",
					.path = "/api/v1/namespaces/default/configmaps/slow"};
	struct kc_request_options fo = {.method = "GET", .path = "/api/v1/namespaces"};

	(void)state;
	reset_server();
	add_fault("{\"method\":\"GET\",\"path_regex\":\"/configmaps/slow$\",\"count\":1,\"delay_ms\":2000}");
	open_client(&f, "kubeconfig-admin", NULL);
	cl.f = &f;
	assert_int_equal(kc_client_request(f.client, &so, on_response, &slow, NULL), 0);
	assert_int_equal(kc_client_request(f.client, &fo, close_in_callback, &cl, NULL), 0);
	assert_true(ktest_run_loop_until(&f.loop, is_closed, &f, 10000));
	assert_int_equal(cl.res.http_status, 200);
	assert_int_equal(cl.request_after_close, -ESHUTDOWN);
	assert_int_equal(slow.calls, 1);
	assert_int_equal(slow.error, -ECANCELED);
	assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 0);
	assert_int_equal(uv_loop_close(&f.loop), 0);
	result_done(&cl.res);
	result_done(&slow);
	assert_int_equal(ktest_admin("DELETE", "/_test/faults", NULL, NULL), 200);
}

/* The test server's listener is closed (its admin API gets no answer). */
static bool server_down(void *ud)
{
	(void)ud;
	return ktest_admin("GET", "/healthz", NULL, NULL) < 0;
}

static void test_server_restart_retried(void **state)
{
	struct fixture f;
	struct result res = {0};
	/* Enough attempts for a slow restart on a loaded machine (through nghttpx each
	 * attempt is a quick 502 until the backend is back): the bound is a deadline, not
	 * a timing. */
	struct kc_client_options opts = {
	    .backoff_initial_ms = 100, .backoff_max_ms = 400, .max_attempts = 100};

	(void)state;
	open_client(&f, "kubeconfig-admin", &opts);
	run(&f, "GET", "/api/v1/namespaces", NULL, NULL, true, &res);
	assert_int_equal(res.http_status, 200);
	/* The cached connection dies and the port refuses connections for a while: the request
	 * is sent once the server is seen down, so its first attempt fails.  The window is long
	 * (4 s) because the request must go out inside it: with 1.5 s, a loaded machine once
	 * sent it after the server was back, and one attempt was enough. */
	assert_int_equal(ktest_admin("POST", "/_test/restart", "{\"down_ms\":4000}", NULL), 200);
	assert_true(ktest_run_loop_until(&f.loop, server_down, NULL, 10000));
	run(&f, "GET", "/api/v1/namespaces", NULL, NULL, true, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.http_status, 200);
	assert_true(res.attempts > 1);
	result_done(&res);
	close_client(&f);
}

static void test_escape_query(void **state)
{
	char *s = kc_escape_query("app in (a,b),tier!=x y/z~_.-");

	(void)state;
	assert_string_equal(s, "app%20in%20%28a%2Cb%29%2Ctier%21%3Dx%20y%2Fz~_.-");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_wrong_ca_refused),
	    cmocka_unit_test(test_client_certificate),
	    cmocka_unit_test(test_token_rotation),
	    cmocka_unit_test(test_retries),
	    cmocka_unit_test(test_connection_refused_retried),
	    cmocka_unit_test(test_timeout_no_head_of_line_blocking),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_body_bound),
	    cmocka_unit_test(test_streaming),
	    cmocka_unit_test(test_rate_limited),
	    cmocka_unit_test(test_priority_lane),
	    cmocka_unit_test(test_close_from_callback),
	    cmocka_unit_test(test_server_restart_retried),
	    cmocka_unit_test(test_escape_query),
	};

	kc_log_setup(getenv("KTEST_V") ? atoi(getenv("KTEST_V")) : 0, KC_LOG_TEXT, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
