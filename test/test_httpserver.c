/*
 * Tests of the metrics and probe servers: address parsing, exact answers on
 * /metrics, /healthz and /readyz fetched with libcurl from a second thread
 * while the loop serves, bind errors, and clean closing (every handle closed,
 * uv_loop_close() == 0).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "httpserver.h"

static void test_parse_address(void **state)
{
	static const struct {
		const char *in;
		int r;
		const char *host;
		unsigned port;
		bool disabled;
	} cases[] = {
	    {":8080", 0, NULL, 8080, false},
	    {"127.0.0.1:8081", 0, "127.0.0.1", 8081, false},
	    {"[::1]:0", 0, "::1", 0, false},
	    {"localhost:65535", 0, "localhost", 65535, false},
	    {"0", 0, NULL, 0, true},
	    {"", -EINVAL, NULL, 0, false},
	    {"8080", -EINVAL, NULL, 0, false},
	    {":", -EINVAL, NULL, 0, false},
	    {":65536", -EINVAL, NULL, 0, false},
	    {":-1", -EINVAL, NULL, 0, false},
	    {":80x", -EINVAL, NULL, 0, false},
	    {"::1:80", -EINVAL, NULL, 0, false},
	    {"[::1]80", -EINVAL, NULL, 0, false},
	    {"[]:80", -EINVAL, NULL, 0, false},
	};

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		char *host = (char *)"unset";
		unsigned port = 99;
		bool disabled = false;
		int r = httpserver_parse_address(cases[i].in, &host, &port, &disabled);

		assert_int_equal(r, cases[i].r);
		if (r < 0)
			continue;
		if (cases[i].host)
			assert_string_equal(host, cases[i].host);
		else
			assert_null(host);
		assert_int_equal(port, cases[i].port);
		assert_int_equal(disabled, cases[i].disabled);
		free(host);
	}
}

struct fetch {
	const char *method;
	int port_index; /* 0 metrics, 1 probe */
	const char *path;
	long status;
	char *body;
	char *content_type;
};

struct fixture {
	uv_loop_t loop;
	uv_async_t async;
	struct httpserver *srv;
	int ports[2];
	struct fetch *fetches;
	size_t n_fetches;
	int ready_calls;
	int live_calls;
	int done_calls;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct kc_buf *b = ud;

	return kc_buf_append(b, data, size * n) == 0 ? size * n : 0;
}

/* The client side, on its own thread: blocking libcurl easy requests. */
static void *client_thread(void *arg)
{
	struct fixture *f = arg;

	for (size_t i = 0; i < f->n_fetches; i++) {
		struct fetch *x = &f->fetches[i];
		CURL *c = curl_easy_init();
		struct kc_buf b;
		char url[128];
		char *ct = NULL;

		kc_buf_init(&b, 1 << 20);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", f->ports[x->port_index], x->path);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
		if (strcmp(x->method, "HEAD") == 0)
			curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		if (curl_easy_perform(c) == CURLE_OK) {
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
			curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
			x->content_type = kc_xstrdup(ct ? ct : "");
		}
		x->body = kc_xstrdup(b.data ? b.data : "");
		kc_buf_done(&b);
		curl_easy_cleanup(c);
	}
	uv_async_send(&f->async);
	return NULL;
}

static void on_closed_done(void *ud)
{
	struct fixture *f = ud;

	f->done_calls++;
}

static void on_async(uv_async_t *a)
{
	struct fixture *f = a->data;

	httpserver_close(f->srv, on_closed_done, f);
	f->srv = NULL;
	uv_close((uv_handle_t *)a, NULL);
}

/* Not ready on the first call, ready afterwards. */
static bool ready(void *ud, char *reason, size_t size)
{
	struct fixture *f = ud;

	if (f->ready_calls++ == 0) {
		snprintf(reason, size, "caches not synced");
		return false;
	}
	return true;
}

/* Live twice, then not (the API server stopped answering). */
static bool live(void *ud, char *reason, size_t size)
{
	struct fixture *f = ud;

	if (f->live_calls++ < 2)
		return true;
	snprintf(reason, size, "no answer from the API server for 200 s");
	return false;
}

static void test_serve(void **state)
{
	struct fetch fetches[] = {
	    {"GET", 0, "/metrics", 0, NULL, NULL},  {"GET", 1, "/healthz", 0, NULL, NULL},
	    {"GET", 1, "/readyz", 0, NULL, NULL},   {"GET", 1, "/readyz", 0, NULL, NULL},
	    {"GET", 1, "/metrics", 0, NULL, NULL},  {"GET", 0, "/healthz", 0, NULL, NULL},
	    {"POST", 1, "/healthz", 0, NULL, NULL}, {"HEAD", 1, "/healthz", 0, NULL, NULL},
	    {"GET", 0, "/metrics", 0, NULL, NULL},  {"GET", 1, "/healthz", 0, NULL, NULL},
	};
	static const char *const labels[] = {"resource", NULL};
	struct fixture f = {.fetches = fetches, .n_fetches = KC_ARRAY_SIZE(fetches)};
	struct metrics *m = metrics_new_empty();
	struct httpserver_options o = {
	    .metrics_address = "127.0.0.1:0",
	    .probe_address = "127.0.0.1:0",
	    .metrics = m,
	    .ready = ready,
	    .live = live,
	    .userdata = &f,
	};
	struct kc_error err = {{0}};
	pthread_t th;
	const char *want_metrics = "# HELP device_descheduler_unhealthy_devices Unhealthy devices.\n"
				   "# TYPE device_descheduler_unhealthy_devices gauge\n"
				   "device_descheduler_unhealthy_devices{resource=\"nvidia.com/gpu\"} 2\n";

	(void)state;
	assert_int_equal(
	    metrics_register(m, METRICS_GAUGE, "unhealthy_devices", "Unhealthy devices.", labels, NULL, 0),
	    0);
	assert_int_equal(metrics_gauge_set(m, "unhealthy_devices", 2, "nvidia.com/gpu", NULL), 0);
	assert_int_equal(uv_loop_init(&f.loop), 0);
	assert_int_equal(httpserver_new(&f.loop, &o, &f.srv, &err), 0);
	f.ports[0] = httpserver_metrics_port(f.srv);
	f.ports[1] = httpserver_probe_port(f.srv);
	assert_true(f.ports[0] > 0 && f.ports[1] > 0 && f.ports[0] != f.ports[1]);
	print_message("metrics on 127.0.0.1:%d, probes on 127.0.0.1:%d\n", f.ports[0], f.ports[1]);
	assert_int_equal(uv_async_init(&f.loop, &f.async, on_async), 0);
	f.async.data = &f;
	assert_int_equal(pthread_create(&th, NULL, client_thread, &f), 0);
	assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(f.done_calls, 1);
	assert_int_equal(uv_loop_close(&f.loop), 0);

	assert_int_equal(fetches[0].status, 200);
	assert_string_equal(fetches[0].content_type, "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(fetches[0].body, want_metrics);
	assert_int_equal(fetches[1].status, 200);
	assert_string_equal(fetches[1].body, "ok");
	assert_string_equal(fetches[1].content_type, "text/plain; charset=utf-8");
	assert_int_equal(fetches[2].status, 503);
	assert_string_equal(fetches[2].body, "caches not synced");
	assert_int_equal(fetches[3].status, 200);
	assert_string_equal(fetches[3].body, "ok");
	assert_int_equal(fetches[4].status, 404);
	assert_string_equal(fetches[4].body, "404 page not found\n");
	assert_int_equal(fetches[5].status, 404);
	assert_int_equal(fetches[6].status, 405);
	assert_string_equal(fetches[6].body, "method not allowed\n");
	assert_int_equal(fetches[7].status, 200);
	assert_string_equal(fetches[7].body, "");
	assert_int_equal(fetches[8].status, 200);
	assert_string_equal(fetches[8].body, want_metrics);
	assert_int_equal(f.ready_calls, 2);
	assert_int_equal(fetches[9].status, 503);
	assert_string_equal(fetches[9].body, "no answer from the API server for 200 s");
	assert_int_equal(f.live_calls, 3);
	for (size_t i = 0; i < KC_ARRAY_SIZE(fetches); i++) {
		free(fetches[i].body);
		free(fetches[i].content_type);
	}
	metrics_free(m);
}

static void count_done(void *ud)
{
	(*(int *)ud)++;
}

static void test_bind_errors(void **state)
{
	uv_loop_t loop;
	struct httpserver *a = NULL, *b = NULL;
	struct httpserver_options o = {.metrics_address = "127.0.0.1:0", .probe_address = "0"};
	struct kc_error err = {{0}};
	char addr[64], want[160];
	int done_calls = 0;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(httpserver_new(&loop, &o, &a, &err), 0);
	assert_int_equal(httpserver_probe_port(a), 0);

	/* The probe server on the port the metrics server holds. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", httpserver_metrics_port(a));
	o.probe_address = addr;
	assert_int_equal(httpserver_new(&loop, &o, &b, &err), -EADDRINUSE);
	snprintf(want, sizeof(want), "health probe server: cannot bind %s: Address already in use", addr);
	assert_string_equal(err.msg, want);
	assert_null(b);

	o.metrics_address = addr;
	o.probe_address = "0";
	assert_int_equal(httpserver_new(&loop, &o, &b, &err), -EADDRINUSE);
	snprintf(want, sizeof(want), "metrics server: cannot bind %s: Address already in use", addr);
	assert_string_equal(err.msg, want);

	o.metrics_address = "localhost";
	assert_int_equal(httpserver_new(&loop, &o, &b, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "metrics server: invalid bind address \"localhost\" (want [host]:port or \"0\")");

	/* Every address (dual-stack, or IPv4 where IPv6 is missing). */
	o.metrics_address = ":0";
	assert_int_equal(httpserver_new(&loop, &o, &b, &err), 0);
	assert_true(httpserver_metrics_port(b) > 0);
	httpserver_close(b, count_done, &done_calls);
	b = NULL;

	/* Both disabled: nothing to close, done still runs. */
	o.metrics_address = "0";
	assert_int_equal(httpserver_new(&loop, &o, &b, &err), 0);
	assert_int_equal(httpserver_metrics_port(b), 0);
	httpserver_close(b, count_done, &done_calls);
	assert_int_equal(done_calls, 1); /* nothing was open: at once */
	httpserver_close(NULL, NULL, NULL);

	httpserver_close(a, count_done, &done_calls);
	assert_int_equal(done_calls, 1);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(done_calls, 3);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_address),
	    cmocka_unit_test(test_serve),
	    cmocka_unit_test(test_bind_errors),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
