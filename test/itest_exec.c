/*
 * Integration tests of exec credential plugins (kc_http_exec.c) against the
 * test API server, with test/exec_plugin.py as the plugin: a token cached
 * across requests and renewed before it expires, the plugin run again after
 * a 401, a client certificate from the plugin, v1 and v1beta1,
 * KUBERNETES_EXEC_INFO and exec.env, and plugins that fail, hang, print
 * garbage or too much, die by a signal or are not installed, each with the
 * error a user can act on.  The whole suite logs at verbosity 10 into a file
 * that must not contain the token.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kc_config.h"
#include "kc_http.h"
#include "kc_log.h"
#include "ktest.h"

#define V1 "client.authentication.k8s.io/v1"
#define V1B1 "client.authentication.k8s.io/v1beta1"

static char *plugin; /* absolute path of test/exec_plugin.py */
static char *log_path;
static FILE *log_file;

struct result {
	bool done;
	long http_status;
	int error;
	char *body, *message;
};

static void on_response(struct kc_request *req, const struct kc_response *resp, void *ud)
{
	struct result *r = ud;

	(void)req;
	r->done = true;
	r->http_status = resp->http_status;
	r->error = resp->error;
	r->body = resp->body ? kc_xstrndup(resp->body, resp->body_len) : NULL;
	r->message = resp->error_message ? kc_xstrdup(resp->error_message) : NULL;
}

static bool is_done(void *ud)
{
	return ((struct result *)ud)->done;
}

static void result_done(struct result *r)
{
	free(r->body);
	free(r->message);
	memset(r, 0, sizeof(*r));
}

struct fixture {
	uv_loop_t loop;
	struct kc_client *client;
	bool closed;
};

static void on_closed(void *ud)
{
	((struct fixture *)ud)->closed = true;
}

static bool is_closed(void *ud)
{
	return ((struct fixture *)ud)->closed;
}

/* DIR/kc-exec-MODE: the test server, its CA, and an exec user running the plugin in MODE. */
static const char *command = "python3"; /* the exec command the next kubeconfig names */

static char *write_kubeconfig(const char *mode, const char *api, const char *extra)
{
	char *path = kc_xasprintf("%s/kc-exec-%s", ktest_env_dir(), mode);
	char *text = kc_xasprintf("apiVersion: v1\nkind: Config\ncurrent-context: t\n"
				  "clusters:\n- name: c\n  cluster:\n    server: %s\n    certificate-authority: ca.crt\n"
				  "contexts:\n- name: t\n  context: {cluster: c, user: u}\n"
				  "users:\n- name: u\n  user:\n    exec:\n      apiVersion: %s\n"
				  "      command: %s\n      args: [\"%s\", \"%s\", \"%s\", \"%s\"]\n%s",
				  ktest_env_url(), api, command, plugin, mode, ktest_env_dir(), api, extra ? extra : "");

	assert_int_equal(ktest_write_file(path, text), 0);
	free(text);
	return path;
}

static void open_client(struct fixture *f, const char *mode, const char *api, const char *extra,
			uint64_t exec_timeout_ms)
{
	struct kc_client_options o = {0};
	struct kc_config cfg;
	struct kc_error err = {{0}};
	char *path = write_kubeconfig(mode, api, extra);

	memset(f, 0, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	if (kc_config_load_kubeconfig(path, NULL, &cfg, &err) < 0)
		fail_msg("%s", err.msg);
	o.exec_timeout_ms = exec_timeout_ms;
	if (kc_client_new(&f->loop, &cfg, &o, &f->client, &err) < 0)
		fail_msg("%s", err.msg);
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

static void run(struct fixture *f, const char *method, const char *path, const char *body, struct result *res)
{
	struct kc_request_options o = {.method = method, .path = path, .body = body, .body_len = body ? strlen(body) : 0};

	result_done(res);
	assert_int_equal(kc_client_request(f->client, &o, on_response, res, NULL), 0);
	assert_true(ktest_run_loop_until(&f->loop, is_done, res, 30000));
}

static char *read_dir_file(const char *name)
{
	char *path = ktest_path(name), *data = NULL;

	if (kc_read_file(path, 1 << 22, &data, NULL) < 0)
		data = NULL;
	free(path);
	return data;
}

static size_t runs_of(const char *mode)
{
	char *name = kc_xasprintf("exec-runs-%s", mode), *data = read_dir_file(name);
	size_t n = 0;

	for (const char *p = data; p && (p = strchr(p, '\n')); p++)
		n++;
	free(data);
	free(name);
	return n;
}

static void expect_error(const char *mode, const char *extra, uint64_t timeout_ms, const char *want,
			 const char *not_want)
{
	struct fixture f;
	struct result res = {0};

	open_client(&f, mode, V1, extra ? extra : "      interactiveMode: Never\n", timeout_ms);
	run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, &res);
	assert_int_equal(res.error, -EACCES);
	assert_int_equal(res.http_status, 0);
	assert_non_null(res.message);
	if (!strstr(res.message, want))
		fail_msg("error %s does not contain %s", res.message, want);
	if (not_want)
		assert_null(strstr(res.message, not_want));
	result_done(&res);
	close_client(&f);
}

/* One run serves every request; the plugin gets exec.env and the cluster's description. */
static void test_token_cached(void **state)
{
	struct fixture f;
	struct result res = {0};
	char *info, *env, *ca = read_dir_file("ca.crt");
	json_t *j;

	(void)state;
	open_client(&f, "ok", V1,
		    "      interactiveMode: Never\n      provideClusterInfo: true\n"
		    "      env:\n      - name: EXEC_TEST_ENV\n        value: from-kubeconfig\n",
		    0);
	for (int i = 0; i < 3; i++) {
		run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, &res);
		assert_int_equal(res.error, 0);
		assert_int_equal(res.http_status, 200);
	}
	assert_int_equal(runs_of("ok"), 1);
	assert_int_equal(kc_client_exec_runs(f.client), 1);
	env = read_dir_file("exec-env-ok");
	assert_string_equal(env, "from-kubeconfig");
	info = read_dir_file("exec-info-ok");
	j = json_loads(info, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "apiVersion")), V1);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "ExecCredential");
	assert_true(json_is_false(json_object_get(json_object_get(j, "spec"), "interactive")));
	{
		json_t *cl = json_object_get(json_object_get(j, "spec"), "cluster");

		assert_string_equal(json_string_value(json_object_get(cl, "server")), ktest_env_url());
		/* certificate-authority-data is the CA file's bytes, base64: check its start. */
		assert_non_null(json_string_value(json_object_get(cl, "certificate-authority-data")));
		assert_int_equal(strncmp(json_string_value(json_object_get(cl, "certificate-authority-data")),
					 "LS0tLS1CRUdJTi", 14), 0);
	}
	json_decref(j);
	free(info);
	free(env);
	free(ca);
	result_done(&res);
	close_client(&f);
}

static void test_v1beta1(void **state)
{
	struct fixture f;
	struct result res = {0};

	(void)state;
	/* v1beta1 needs no interactiveMode (IfAvailable). */
	open_client(&f, "ok", V1B1, NULL, 0);
	run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, &res);
	assert_int_equal(res.http_status, 200);
	result_done(&res);
	close_client(&f);
}

/* A credential that expires is renewed before it does, while requests go on with it. */
static void test_expiring_renewed(void **state)
{
	struct fixture f;
	struct result res = {0};
	unsigned requests = 0;
	uint64_t deadline = kc_monotonic_ms() + 20000;

	(void)state;
	open_client(&f, "expiring", V1,
		    "      interactiveMode: Never\n      env:\n      - name: EXEC_TEST_TTL\n        value: \"3\"\n", 0);
	while (runs_of("expiring") < 3 && kc_monotonic_ms() < deadline) {
		run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, &res);
		assert_int_equal(res.error, 0);
		assert_int_equal(res.http_status, 200);
		requests++;
		/* Let the loop run (the plugin, its timers) between requests. */
		uv_run(&f.loop, UV_RUN_NOWAIT);
	}
	assert_true(runs_of("expiring") >= 3);
	assert_true(requests > 3);
	/* The server never saw an expired credential: no 401 at all. */
	assert_int_equal(ktest_count_requests("list", "/api/v1/namespaces/default/configmaps", NULL, 401), 0);
	result_done(&res);
	close_client(&f);
}

/* A 401 runs the plugin again and retries the request once with the new token. */
static void test_unauthorized_reruns(void **state)
{
	struct fixture f;
	struct result res = {0};

	(void)state;
	open_client(&f, "wrong1st", V1, "      interactiveMode: IfAvailable\n", 0);
	run(&f, "GET", "/api/v1/namespaces/default/configmaps", NULL, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(runs_of("wrong1st"), 2);
	result_done(&res);
	close_client(&f);
}

static void test_client_certificate(void **state)
{
	struct fixture f;
	struct result res = {0};

	(void)state;
	open_client(&f, "cert", V1, "      interactiveMode: Never\n", 0);
	run(&f, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
	    "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"SelfSubjectReview\"}", &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.http_status, 201);
	assert_non_null(strstr(res.body, "\"username\":\"client-cert-user\""));
	result_done(&res);
	close_client(&f);
}

static void test_failures(void **state)
{
	char *token = read_dir_file("token"), *extra;

	(void)state;
	token[strcspn(token, "\n")] = '\0';
	expect_error("fail", NULL, 0,
		     "exec plugin python3 failed with exit status 3: error: the credentials of profile prod expired",
		     "login");
	expect_error("slow", NULL, 300, "exec plugin python3: no credential within 300 ms (killed)", NULL);
	expect_error("garbage", NULL, 0,
		     "exec plugin: its output is not an ExecCredential (invalid JSON at line 1, column ", token);
	expect_error("big", NULL, 0, "exec plugin python3: more than 1048576 bytes of output (killed)", NULL);
	expect_error("signal", NULL, 0, "exec plugin python3: killed by signal 15", NULL);
	command = "/nonexistent/aws-iam-authenticator";
	expect_error("ok", NULL, 0,
		     "exec plugin: executable /nonexistent/aws-iam-authenticator not found (it looks like", NULL);
	command = "no-such-plugin-on-path";
	extra = kc_xasprintf("      interactiveMode: Never\n"
			     "      installHint: \"install it: apt-get install no-such-plugin\"\n");
	expect_error("ok", extra, 0,
		     "exec plugin: executable no-such-plugin-on-path not found; install it: apt-get install "
		     "no-such-plugin",
		     NULL);
	command = "python3";
	free(extra);
	free(token);
}

/* After a failure the plugin is not run again at once: the next run waits for a backoff. */
static void test_failure_backoff(void **state)
{
	struct fixture f;
	struct result a = {0}, b = {0};
	size_t before = runs_of("fail");

	(void)state;
	open_client(&f, "fail", V1, "      interactiveMode: Never\n", 0);
	run(&f, "GET", "/api/v1/namespaces", NULL, &a);
	assert_int_equal(a.error, -EACCES);
	run(&f, "GET", "/api/v1/namespaces", NULL, &b);
	assert_int_equal(b.error, -EACCES);
	/* Two requests, two runs: the second waited for the backoff rather than failing without one. */
	assert_int_equal(runs_of("fail"), before + 2);
	result_done(&a);
	result_done(&b);
	close_client(&f);
}

/* Everything above logged at verbosity 10: no token anywhere. */
static void test_token_never_logged(void **state)
{
	char *token = read_dir_file("token"), *logged = NULL;

	(void)state;
	token[strcspn(token, "\n")] = '\0';
	fflush(log_file);
	assert_int_equal(kc_read_file(log_path, 64u << 20, &logged, NULL), 0);
	assert_non_null(strstr(logged, "exec plugin python3: new credential (token)"));
	assert_null(strstr(logged, token));
	assert_null(strstr(logged, "BEGIN EC PRIVATE KEY"));
	free(logged);
	free(token);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_cached),	 cmocka_unit_test(test_v1beta1),
	    cmocka_unit_test(test_expiring_renewed),	 cmocka_unit_test(test_unauthorized_reruns),
	    cmocka_unit_test(test_client_certificate), cmocka_unit_test(test_failures),
	    cmocka_unit_test(test_failure_backoff),	 cmocka_unit_test(test_token_never_logged),
	};
	char cwd[4096];
	int r;

	if (!getcwd(cwd, sizeof(cwd)))
		return 1;
	plugin = kc_xasprintf("%s/test/exec_plugin.py", cwd);
	if (access(plugin, R_OK) < 0) {
		fprintf(stderr, "itest_exec: run from the repository root (%s not found)\n", plugin);
		return 1;
	}
	log_path = ktest_path("itest-exec.log");
	log_file = fopen(log_path, "w");
	if (!log_file)
		return 1;
	kc_log_setup(10, KC_LOG_TEXT, log_file);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	fclose(log_file);
	free(log_path);
	free(plugin);
	return r;
}
