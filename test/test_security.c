/*
 * Security properties that cut across modules, checked without a server:
 *
 *  - the kubeconfig and in-cluster loaders never put a bearer token (or an
 *    embedded key) into an error message, whatever is broken in the file;
 *  - at the highest log verbosity, in both log formats, loading a config,
 *    logging its errors the way callers do, and creating, using and closing
 *    an HTTP client with it never writes the token to the log;
 *  - kc_read_file refuses a file above its limit with -EFBIG (also one whose
 *    size stat() cannot tell, like /dev/zero), and accepts one exactly at it;
 *  - policy_load_file refuses a directory and a file above 1 MiB.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "kc_config.h"
#include "kc_http.h"
#include "kc_log.h"
#include "kc_util.h"
#include "policy.h"

#define TOKEN "SECRET-TOKEN-123"
/* base64 of "-----BEGIN PRIVATE KEY-----\nSECRET-KEY-456\n-----END PRIVATE KEY-----\n" */
#define KEY_B64 "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tClNFQ1JFVC1LRVktNDU2Ci0tLS0tRU5EIFBSSVZBVEUgS0VZLS0tLS0K"
#define KEY_TEXT "SECRET-KEY-456"

static char tmp[] = "/tmp/test_security.XXXXXX";

static char *path_of(const char *name)
{
	return kc_xasprintf("%s/%s", tmp, name);
}

static char *write_file(const char *name, const char *text, size_t len)
{
	char *p = path_of(name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return p;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmp))
		return -1;
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	return 0;
}

static int teardown(void **state)
{
	char *cmd = kc_xasprintf("rm -rf '%s'", tmp);
	int r;

	(void)state;
	r = system(cmd);
	free(cmd);
	kc_log_setup(0, KC_LOG_TEXT, NULL);
	return r == 0 ? 0 : -1;
}

/* A valid kubeconfig with a token; the broken ones below are edits of it. */
#define GOOD                                                                                                 \
	"apiVersion: v1\n"                                                                                   \
	"kind: Config\n"                                                                                     \
	"clusters:\n"                                                                                        \
	"- name: c\n"                                                                                        \
	"  cluster:\n"                                                                                       \
	"    server: https://127.0.0.1:1\n"                                                                  \
	"    insecure-skip-tls-verify: true\n"                                                               \
	"contexts:\n"                                                                                        \
	"- name: x\n"                                                                                        \
	"  context: {cluster: c, user: u, namespace: ml}\n"                                                  \
	"current-context: x\n"                                                                               \
	"users:\n"                                                                                           \
	"- name: u\n"                                                                                        \
	"  user:\n"                                                                                          \
	"    token: " TOKEN "\n"

/* Clusters and contexts that resolve; the broken entries vary the rest. */
#define PREFIX                                                                                               \
	"clusters:\n- name: c\n  cluster: {server: https://h}\n"                                             \
	"contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
#define USERS(user) "users:\n- name: u\n  user: " user "\n"

static const struct {
	const char *what;
	const char *text;
} broken[] = {
    {"no current-context", PREFIX USERS("{token: " TOKEN "}")},
    {"unknown context", PREFIX "current-context: nope\n" USERS("{token: " TOKEN "}")},
    {"missing cluster",
     "contexts:\n- name: x\n  context: {cluster: nope, user: u}\ncurrent-context: x\n" USERS("{token: " TOKEN
											     "}")},
    {"missing user",
     "clusters:\n- name: c\n  cluster: {server: https://h}\n"
     "contexts:\n- name: x\n  context: {cluster: c, user: nobody}\ncurrent-context: x\n" USERS(
	 "{token: " TOKEN "}")},
    {"cluster without server",
     "clusters:\n- name: c\n  cluster: {}\n"
     "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n" USERS("{token: " TOKEN
											  "}")},
    {"token is a mapping", PREFIX "current-context: x\n" USERS("{token: {" TOKEN ": 1}}")},
    {"token is a list", PREFIX "current-context: x\n" USERS("{token: [" TOKEN "]}")},
    {"token with exec", PREFIX "current-context: x\n" USERS("{token: " TOKEN ", exec: {command: aws}}")},
    {"token with auth-provider",
     PREFIX "current-context: x\n" USERS("{token: " TOKEN
					 ", auth-provider: {name: gcp, config: {access-token: " TOKEN "}}}")},
    {"token with basic auth",
     PREFIX "current-context: x\n" USERS("{token: " TOKEN ", username: admin, password: " TOKEN "}")},
    {"token with a missing tokenFile",
     PREFIX "current-context: x\n" USERS("{token: " TOKEN ", tokenFile: /nonexistent/t}")},
    {"token with bad client-key-data",
     PREFIX "current-context: x\n" USERS("{token: " TOKEN ", client-key-data: \"" TOKEN "!!\"}")},
    {"key without certificate",
     PREFIX "current-context: x\n" USERS("{token: " TOKEN ", client-key-data: " KEY_B64 "}")},
    {"bad escape in the token", PREFIX "current-context: x\n" USERS("{token: \"" TOKEN "\\q\"}")},
    {"YAML error right after the token", GOOD "  : [\n" TOKEN "\n"},
    {"tab after the token", GOOD "\t" TOKEN ": {\n"},
    {"unterminated flow mapping", PREFIX "current-context: x\n"
					 "users: [{name: u, user: {token: " TOKEN "}\n"},
    {"JSON with a trailing comma", "{\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"" TOKEN "\"}}],}"},
    {"users is a scalar", PREFIX "current-context: x\nusers: " TOKEN "\n"},
    {"user is a scalar", PREFIX "current-context: x\n" USERS(TOKEN)},
    {"not a mapping", "- " TOKEN "\n"},
};

static void assert_clean(const char *what, int r, const struct kc_error *err)
{
	if (r >= 0)
		fail_msg("%s: loaded, expected an error", what);
	if (err->msg[0] == '\0')
		fail_msg("%s: empty error message", what);
	if (strstr(err->msg, TOKEN) || strstr(err->msg, KEY_TEXT) || strstr(err->msg, KEY_B64))
		fail_msg("%s: the error leaks a secret: %s", what, err->msg);
}

/* Every broken kubeconfig fails, through both entry points, without quoting the token. */
static void test_config_errors_never_contain_token(void **state)
{
	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(broken); i++) {
		struct kc_config c = {0};
		struct kc_error err = {{0}};
		char *p = write_file("broken", broken[i].text, strlen(broken[i].text));
		int r;

		r = kc_config_load_kubeconfig(p, NULL, &c, &err);
		kc_config_done(&c);
		assert_clean(broken[i].what, r, &err);

		/* A named context, and the $KUBECONFIG path. */
		memset(&err, 0, sizeof(err));
		r = kc_config_load_kubeconfig(p, "x", &c, &err);
		kc_config_done(&c);
		if (r < 0)
			assert_clean(broken[i].what, r, &err);

		memset(&err, 0, sizeof(err));
		setenv("KUBECONFIG", p, 1);
		r = kc_config_load(NULL, NULL, &c, &err);
		unsetenv("KUBECONFIG");
		kc_config_done(&c);
		assert_clean(broken[i].what, r, &err);
		free(p);
	}
}

/* The in-cluster loader: a token file but no KUBERNETES_SERVICE_HOST, or no CA. */
static void test_in_cluster_errors_never_contain_token(void **state)
{
	struct kc_config c = {0};
	struct kc_error err = {{0}};
	char *sa = path_of("sa");
	char *tok;
	int r;

	(void)state;
	assert_int_equal(mkdir(sa, 0700), 0);
	tok = write_file("sa/token", TOKEN "\n", strlen(TOKEN) + 1);
	r = kc_config_in_cluster(sa, &c, &err);
	kc_config_done(&c);
	assert_clean("in-cluster without KUBERNETES_SERVICE_HOST", r, &err);

	/* The service is there, but the CA file is missing. */
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	memset(&err, 0, sizeof(err));
	r = kc_config_in_cluster(sa, &c, &err);
	kc_config_done(&c);
	assert_clean("in-cluster without ca.crt", r, &err);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	free(tok);
	free(sa);
}

static int closed;

static void on_closed(void *userdata)
{
	(void)userdata;
	closed++;
}

static int responses;

static void on_response(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	(void)req;
	(void)userdata;
	/* Nothing listens on 127.0.0.1:1. */
	assert_int_not_equal(resp->error, 0);
	responses++;
}

/* Loads GOOD, logs what a caller logs, and drives a client against a closed port. */
static void exercise_logging(const char *good_path)
{
	struct kc_config c = {0};
	struct kc_error err = {{0}};
	struct kc_client *client = NULL;
	struct kc_client_options copts = {.max_attempts = 1};
	struct kc_request_options ro = {
	    .method = "GET",
	    .path = "/api/v1/pods?limit=1",
	    .timeout_ms = 5000,
	};
	uv_loop_t loop;

	/* Broken configs: callers log the error once. */
	for (size_t i = 0; i < KC_ARRAY_SIZE(broken); i++) {
		char *p = write_file("broken", broken[i].text, strlen(broken[i].text));

		if (kc_config_load_kubeconfig(p, NULL, &c, &err) < 0)
			kc_log_error("%s", err.msg);
		kc_config_done(&c);
		free(p);
	}

	assert_int_equal(kc_config_load_kubeconfig(good_path, NULL, &c, &err), 0);
	assert_string_equal(c.token, TOKEN);
	kc_log_info(0, "using %s, server %s", c.source, c.server);

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(kc_client_new(&loop, &c, &copts, &client, &err), 0);
	responses = closed = 0;
	assert_int_equal(kc_client_request(client, &ro, on_response, NULL, NULL), 0);
	for (int i = 0; i < 100000 && responses == 0; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(responses, 1);
	kc_client_close(client, on_closed, NULL);
	for (int i = 0; i < 100000 && closed == 0; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(closed, 1);
	assert_int_equal(uv_loop_close(&loop), 0);
	kc_config_done(&c);
}

static void check_log(FILE *f)
{
	char buf[4096];
	size_t lines = 0;

	rewind(f);
	while (fgets(buf, sizeof(buf), f)) {
		lines++;
		if (strstr(buf, TOKEN) || strstr(buf, KEY_TEXT))
			fail_msg("the log leaks a secret: %s", buf);
	}
	/* The test must have logged something to be meaningful. */
	assert_true(lines > KC_ARRAY_SIZE(broken) / 2);
}

static void test_log_never_prints_token(void **state)
{
	char *good = write_file("good", GOOD, strlen(GOOD));
	enum kc_log_format formats[] = {KC_LOG_TEXT, KC_LOG_JSON};

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(formats); i++) {
		FILE *f = tmpfile();

		assert_non_null(f);
		kc_log_setup(100, formats[i], f);
		assert_true(kc_log_enabled(10));
		exercise_logging(good);
		kc_log_setup(0, KC_LOG_TEXT, NULL);
		check_log(f);
		fclose(f);
	}
	free(good);
}

static void test_read_file_limit(void **state)
{
	char big[4097];
	char *data = NULL;
	size_t len = 0;
	char *p;

	(void)state;
	memset(big, 'a', sizeof(big));
	p = write_file("big", big, sizeof(big));
	assert_int_equal(kc_read_file(p, 4096, &data, &len), -EFBIG);
	free(p);

	/* Exactly at the limit is accepted and NUL-terminated. */
	p = write_file("exact", big, 4096);
	assert_int_equal(kc_read_file(p, 4096, &data, &len), 0);
	assert_int_equal(len, 4096);
	assert_int_equal(data[4096], '\0');
	free(data);
	free(p);

	/* stat() says 0 bytes, the stream never ends: the bound still holds. */
	assert_int_equal(kc_read_file("/dev/zero", 1000, &data, &len), -EFBIG);
}

static void test_policy_load_file_refuses(void **state)
{
	struct policy *p = (struct policy *)(uintptr_t)0x1, *sentinel = p;
	struct kc_error err = {{0}};
	const char head[] = "apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicy\n";
	size_t n = POLICY_MAX_SIZE;
	char *text, *path;
	int r;

	(void)state;
	r = policy_load_file(tmp, &p, &err);
	assert_int_equal(r, -EISDIR);
	assert_ptr_equal(p, sentinel);
	assert_non_null(strstr(err.msg, tmp));

	/* A valid policy padded with a comment to exactly 1 MiB loads ... */
	text = kc_xmalloc(n + 2);
	memcpy(text, head, sizeof(head) - 1);
	memset(text + sizeof(head) - 1, ' ', n - (sizeof(head) - 1));
	text[sizeof(head) - 1] = '#';
	text[n - 1] = '\n';
	path = write_file("policy-exact.yaml", text, n);
	r = policy_load_file(path, &p, &err);
	if (r != 0)
		fail_msg("a 1 MiB policy was refused: %s", err.msg);
	p = policy_free(p);
	free(path);

	/* ... and one byte more does not. */
	text[n] = '\n';
	path = write_file("policy-big.yaml", text, n + 1);
	p = sentinel;
	memset(&err, 0, sizeof(err));
	r = policy_load_file(path, &p, &err);
	assert_int_equal(r, -EINVAL);
	assert_ptr_equal(p, sentinel);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "1 MiB"));
	free(path);
	free(text);

	/* policy_parse applies the same bound to text already in memory. */
	text = kc_xcalloc(1, n + 1);
	assert_int_equal(policy_parse("mem.yaml", text, n + 1, &p, &err), -EINVAL);
	assert_ptr_equal(p, sentinel);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_errors_never_contain_token),
	    cmocka_unit_test(test_in_cluster_errors_never_contain_token),
	    cmocka_unit_test(test_log_never_prints_token),
	    cmocka_unit_test(test_read_file_limit),
	    cmocka_unit_test(test_policy_load_file_refuses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
