/*
 * Unit tests of the kubeconfig and in-cluster loader (kc_config): files
 * written by the real kubectl at test time (tokens, client certificates as
 * files and embedded, namespaces, use-context), hand-written YAML and JSON,
 * relative paths, the $KUBECONFIG merge, the resolution order, and every
 * error with its exact message, none of which may contain the token.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kc_config.h"
#include "kc_util.h"

#define TOKEN "s3cr3t-T0KEN-never-in-messages"

static char tmp[256];
static char *ca_pem, *cert_pem, *key_pem;
static size_t ca_len, cert_len, key_len;
static bool have_kubectl;

static char *path_of(const char *name)
{
	return kc_xasprintf("%s/%s", tmp, name);
}

static void write_file(const char *name, const char *text)
{
	char *p = path_of(name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	free(p);
}

static int sh(const char *fmt, ...) KC_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int r;

	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	r = system(cmd);
	free(cmd);
	return r;
}

/* kubectl config ... on DIR/name, run from DIR so relative paths match the file's directory. */
static void kubectl(const char *name, const char *args)
{
	assert_int_equal(sh("cd %s && kubectl config --kubeconfig %s %s >/dev/null 2>&1", tmp, name, args),
			 0);
}

static char *b64(const char *data, size_t len)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = kc_xmalloc(len / 3 * 4 + 5), *p = out;
	const unsigned char *s = (const unsigned char *)data;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*p++ = tbl[s[i] >> 2];
		*p++ = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*p++ = tbl[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		*p++ = tbl[s[i + 2] & 63];
	}
	if (len - i == 1) {
		*p++ = tbl[s[i] >> 2];
		*p++ = tbl[(s[i] & 3) << 4];
		*p++ = '=';
		*p++ = '=';
	} else if (len - i == 2) {
		*p++ = tbl[s[i] >> 2];
		*p++ = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*p++ = tbl[(s[i + 1] & 15) << 2];
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

static int setup(void **state)
{
	char *p;

	(void)state;
	snprintf(tmp, sizeof(tmp), "%s/kc-config-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp))
		return -1;
	if (sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	       "-keyout ca.key -out ca.crt -subj /CN=test-ca -days 1 >/dev/null 2>&1 && "
	       "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	       "-keyout client.key -out client.crt -subj /CN=client -days 1 >/dev/null 2>&1 && mkdir sub",
	       tmp) != 0)
		return -1;
	p = path_of("ca.crt");
	kc_read_file(p, 1 << 20, &ca_pem, &ca_len);
	free(p);
	p = path_of("client.crt");
	kc_read_file(p, 1 << 20, &cert_pem, &cert_len);
	free(p);
	p = path_of("client.key");
	kc_read_file(p, 1 << 20, &key_pem, &key_len);
	free(p);
	have_kubectl = system("kubectl version --client >/dev/null 2>&1") == 0;
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	return ca_pem && cert_pem && key_pem ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", tmp);
	free(ca_pem);
	free(cert_pem);
	free(key_pem);
	return 0;
}

static void load_ok(const char *name, const char *context, struct kc_config *c)
{
	struct kc_error err = {{0}};
	char *p = path_of(name);

	if (kc_config_load_kubeconfig(p, context, c, &err) < 0)
		fail_msg("unexpected error: %s", err.msg);
	free(p);
}

/* Loads name and checks the exact error; "%F" in want stands for the file's path
 * and "%D" for the temp dir. */
static void expect_error(const char *name, const char *context, int code, const char *want)
{
	struct kc_config c;
	struct kc_error err = {{0}};
	char *p = path_of(name);
	struct kc_buf exp;

	kc_buf_init(&exp, 4096);
	for (const char *s = want; *s; s++) {
		if (s[0] == '%' && s[1] == 'F') {
			assert_int_equal(kc_buf_append(&exp, p, strlen(p)), 0);
			s++;
		} else if (s[0] == '%' && s[1] == 'D') {
			assert_int_equal(kc_buf_append(&exp, tmp, strlen(tmp)), 0);
			s++;
		} else {
			assert_int_equal(kc_buf_append(&exp, s, 1), 0);
		}
	}
	assert_int_equal(kc_config_load_kubeconfig(p, context, &c, &err), code);
	assert_string_equal(err.msg, exp.data);
	assert_null(strstr(err.msg, TOKEN));
	kc_buf_done(&exp);
	free(p);
}

static void test_kubectl_token_and_namespace(void **state)
{
	struct kc_config c;
	char *ca = path_of("ca.crt");

	(void)state;
	if (!have_kubectl)
		skip();
	kubectl("kc1", "set-cluster c1 --server=https://127.0.0.1:6443/ --certificate-authority=ca.crt");
	kubectl("kc1", "set-credentials u1 --token=" TOKEN);
	kubectl("kc1", "set-context dev --cluster=c1 --user=u1 --namespace=team-a");
	kubectl("kc1", "set-context other --cluster=c1 --user=u1");
	kubectl("kc1", "use-context dev");
	load_ok("kc1", NULL, &c);
	assert_string_equal(c.server, "https://127.0.0.1:6443");
	assert_string_equal(c.ca_file, ca);
	assert_null(c.ca_data);
	assert_string_equal(c.token, TOKEN);
	assert_null(c.token_file);
	assert_string_equal(c.ns, "team-a");
	assert_false(c.insecure_skip_tls_verify);
	assert_null(c.client_cert_file);
	assert_null(c.client_key_data);
	assert_non_null(strstr(c.source, "context dev"));
	kc_config_done(&c);
	kc_config_done(&c); /* idempotent */

	/* An explicit context wins over current-context; no namespace means "default". */
	load_ok("kc1", "other", &c);
	assert_string_equal(c.ns, "default");
	kc_config_done(&c);
	kc_config_done(NULL);
	free(ca);
}

static void test_kubectl_client_certificates(void **state)
{
	struct kc_config c;
	char *crt = path_of("client.crt"), *key = path_of("client.key");

	(void)state;
	if (!have_kubectl)
		skip();
	/* Files. */
	kubectl("kc2", "set-cluster c --server=https://10.1.2.3 --certificate-authority=ca.crt");
	kubectl("kc2", "set-credentials u --client-certificate=client.crt --client-key=client.key");
	kubectl("kc2", "set-context x --cluster=c --user=u");
	kubectl("kc2", "use-context x");
	load_ok("kc2", NULL, &c);
	assert_string_equal(c.client_cert_file, crt);
	assert_string_equal(c.client_key_file, key);
	assert_null(c.client_cert_data);
	assert_null(c.token);
	kc_config_done(&c);

	/* Embedded (base64 in the file). */
	kubectl("kc3",
		"set-cluster c --server=https://10.1.2.3 --certificate-authority=ca.crt --embed-certs");
	kubectl("kc3",
		"set-credentials u --client-certificate=client.crt --client-key=client.key --embed-certs");
	kubectl("kc3", "set-context x --cluster=c --user=u --namespace=ns3");
	kubectl("kc3", "use-context x");
	load_ok("kc3", NULL, &c);
	assert_null(c.ca_file);
	assert_int_equal(c.ca_data_len, ca_len);
	assert_memory_equal(c.ca_data, ca_pem, ca_len);
	assert_int_equal(c.client_cert_data_len, cert_len);
	assert_memory_equal(c.client_cert_data, cert_pem, cert_len);
	assert_int_equal(c.client_key_data_len, key_len);
	assert_memory_equal(c.client_key_data, key_pem, key_len);
	assert_null(c.client_cert_file);
	assert_string_equal(c.ns, "ns3");
	kc_config_done(&c);
	free(crt);
	free(key);
}

/* An exec plugin as kubectl writes it; a relative command path is relative to the file. */
static void test_kubectl_exec(void **state)
{
	struct kc_config c;
	const struct kc_exec_config *e;
	char *want;

	(void)state;
	if (!have_kubectl)
		skip();
	kubectl("x1", "set-cluster c --server=https://h:6443 --certificate-authority=ca.crt");
	kubectl("x1", "set-credentials u --exec-command=./bin/get-token --exec-api-version=client.authentication.k8s.io/v1 "
		      "--exec-arg=--cluster --exec-arg='two words' --exec-env=REGION=eu-1 --exec-env=EMPTY= "
		      "--exec-interactive-mode=Never --exec-provide-cluster-info=true");
	kubectl("x1", "set-context x --cluster=c --user=u");
	load_ok("x1", "x", &c);
	e = c.exec;
	assert_non_null(e);
	assert_string_equal(e->api_version, "client.authentication.k8s.io/v1");
	want = kc_xasprintf("%s/bin/get-token", tmp);
	assert_string_equal(e->command, want);
	free(want);
	assert_string_equal(e->args[0], e->command);
	assert_string_equal(e->args[1], "--cluster");
	assert_string_equal(e->args[2], "two words");
	assert_null(e->args[3]);
	/* kubectl keeps --exec-env in a map, so it writes the two in either order. */
	assert_non_null(e->env[0]);
	assert_non_null(e->env[1]);
	assert_true((strcmp(e->env[0], "REGION=eu-1") == 0 && strcmp(e->env[1], "EMPTY=") == 0) ||
		    (strcmp(e->env[0], "EMPTY=") == 0 && strcmp(e->env[1], "REGION=eu-1") == 0));
	assert_null(e->env[2]);
	assert_true(e->provide_cluster_info);
	assert_int_equal(e->interactive, KC_EXEC_NEVER);
	assert_null(e->install_hint);
	assert_null(c.token);
	{
		/* The HTTP client keeps a deep copy. */
		struct kc_exec_config *d = kc_exec_config_dup(e);

		assert_string_equal(d->args[2], "two words");
		assert_string_equal(d->env[1], e->env[1]);
		assert_null(kc_exec_config_free(d));
	}
	kc_config_done(&c);

	/* v1beta1 defaults to IfAvailable; a bare command is kept for the $PATH lookup. */
	write_file("x2", "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
		   "contexts:\n- name: dev\n  context:\n    cluster: c\n    user: u\n" "users:\n- name: u\n  user:\n    exec:\n"
						  "      apiVersion: client.authentication.k8s.io/v1beta1\n"
						  "      command: aws\n      args: [eks, get-token]\n"
						  "      installHint: install the AWS CLI\n");
	load_ok("x2", "dev", &c);
	assert_string_equal(c.exec->command, "aws");
	assert_string_equal(c.exec->args[0], "aws");
	assert_string_equal(c.exec->args[2], "get-token");
	assert_non_null(c.exec->env);
	assert_null(c.exec->env[0]);
	assert_int_equal(c.exec->interactive, KC_EXEC_IF_AVAILABLE);
	assert_false(c.exec->provide_cluster_info);
	assert_string_equal(c.exec->install_hint, "install the AWS CLI");
	kc_config_done(&c);
	assert_null(kc_exec_config_dup(NULL));
}

static void test_relative_paths_json_and_flags(void **state)
{
	struct kc_config c;
	char *want_ca = kc_xasprintf("%s/sub/../ca.crt", tmp), *want_tok = kc_xasprintf("%s/sub/tok", tmp);

	(void)state;
	write_file("sub/tok", TOKEN "\n");
	write_file("sub/config",
		   "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
		   "clusters:\n- name: c\n  cluster:\n    server: https://api.example:443\n"
		   "    certificate-authority: ../ca.crt\n    tls-server-name: kubernetes.default\n"
		   "contexts:\n- name: a\n  context:\n    cluster: c\n    user: u\n    namespace: ~\n"
		   "users:\n- name: u\n  user:\n    tokenFile: tok\n");
	load_ok("sub/config", NULL, &c);
	assert_string_equal(c.ca_file, want_ca);
	assert_string_equal(c.token_file, want_tok);
	assert_null(c.token);
	assert_string_equal(c.tls_server_name, "kubernetes.default");
	assert_string_equal(c.ns, "default");
	kc_config_done(&c);

	/* JSON is YAML too. */
	write_file("kc.json",
		   "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"j\",\"clusters\":[{"
		   "\"name\":\"c\","
		   "\"cluster\":{\"server\":\"http://127.0.0.1:8080\",\"insecure-skip-tls-verify\":true}}],"
		   "\"contexts\":[{\"name\":\"j\",\"context\":{\"cluster\":\"c\",\"user\":\"u\","
		   "\"namespace\":\"js\"}}],"
		   "\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"" TOKEN "\"}}]}");
	load_ok("kc.json", NULL, &c);
	assert_string_equal(c.server, "http://127.0.0.1:8080");
	assert_true(c.insecure_skip_tls_verify);
	assert_string_equal(c.ns, "js");
	assert_string_equal(c.token, TOKEN);
	kc_config_done(&c);

	/* A context without a user is anonymous. */
	write_file("anon", "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
			   "contexts:\n- name: a\n  context: {cluster: c}\ncurrent-context: a\n");
	load_ok("anon", NULL, &c);
	assert_null(c.token);
	assert_null(c.token_file);
	kc_config_done(&c);
	free(want_ca);
	free(want_tok);
}

/* Hand-written inline data: base64 wrapped over several lines (folded into
 * spaces by YAML) must decode to the same bytes. */
static void test_inline_data_wrapped(void **state)
{
	struct kc_config c;
	char *ca = b64(ca_pem, ca_len), *crt = b64(cert_pem, cert_len), *key = b64(key_pem, key_len);
	struct kc_buf wrapped;
	char *text;

	(void)state;
	kc_buf_init(&wrapped, 1 << 20);
	for (size_t i = 0; ca[i]; i++) {
		assert_int_equal(kc_buf_append(&wrapped, &ca[i], 1), 0);
		if (i % 64 == 63)
			assert_int_equal(kc_buf_append(&wrapped, "\n      ", 7), 0);
	}
	text = kc_xasprintf(
	    "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
	    "    certificate-authority-data: %s\n"
	    "contexts:\n- name: a\n  context: {cluster: c, user: u}\ncurrent-context: a\n"
	    "users:\n- name: u\n  user:\n    client-certificate-data: \"%s\"\n    client-key-data: '%s'\n",
	    wrapped.data, crt, key);
	write_file("inline", text);
	load_ok("inline", NULL, &c);
	assert_int_equal(c.ca_data_len, ca_len);
	assert_memory_equal(c.ca_data, ca_pem, ca_len);
	assert_int_equal(c.client_cert_data_len, cert_len);
	assert_memory_equal(c.client_cert_data, cert_pem, cert_len);
	assert_int_equal(c.client_key_data_len, key_len);
	assert_memory_equal(c.client_key_data, key_pem, key_len);
	kc_config_done(&c);
	kc_buf_done(&wrapped);
	free(text);
	free(ca);
	free(crt);
	free(key);
}

static void test_kubeconfig_env_list_merges(void **state)
{
	struct kc_config c;
	struct kc_error err;
	char *a = path_of("merge-a"), *b = path_of("merge-b"), *missing = path_of("merge-missing");
	char *list = kc_xasprintf("%s:%s:%s", missing, a, b);

	(void)state;
	/* a: sets current-context and context "one" (whose cluster lives in b). */
	write_file("merge-a", "current-context: one\n"
			      "contexts:\n- name: one\n  context: {cluster: cb, user: ua}\n"
			      "users:\n- name: ua\n  user: {token: tok-a}\n");
	/* b: another current-context and a shadowed context "one" (first file wins). */
	write_file(
	    "merge-b",
	    "current-context: two\n"
	    "clusters:\n- name: cb\n  cluster: {server: 'https://b:6443', certificate-authority: ca.crt}\n"
	    "contexts:\n- name: one\n  context: {cluster: nope, user: nope}\n"
	    "- name: two\n  context: {cluster: cb, user: ub, namespace: nb}\n"
	    "users:\n- name: ub\n  user: {token: tok-b}\n");
	setenv("KUBECONFIG", list, 1);
	assert_int_equal(kc_config_load(NULL, NULL, &c, &err), 0);
	assert_string_equal(c.server, "https://b:6443");
	assert_string_equal(c.token, "tok-a");
	assert_string_equal(c.ns, "default");
	kc_config_done(&c);
	assert_int_equal(kc_config_load(NULL, "two", &c, &err), 0);
	assert_string_equal(c.token, "tok-b");
	assert_string_equal(c.ns, "nb");
	kc_config_done(&c);
	assert_int_equal(kc_config_load(NULL, "three", &c, &err), -ENOENT);
	{
		char *want = kc_xasprintf(
		    "$KUBECONFIG=%s: context \"three\" not found (contexts: one, one, two)", list);

		assert_string_equal(err.msg, want);
		free(want);
	}
	/* The --kubeconfig flag wins over $KUBECONFIG. */
	assert_int_equal(kc_config_load(b, NULL, &c, &err), 0);
	assert_string_equal(c.token, "tok-b");
	kc_config_done(&c);
	setenv("KUBECONFIG", missing, 1);
	assert_int_equal(kc_config_load(NULL, NULL, &c, &err), -ENOENT);
	{
		char *want = kc_xasprintf("$KUBECONFIG=%s: none of its files exists", missing);

		assert_string_equal(err.msg, want);
		free(want);
	}
	unsetenv("KUBECONFIG");
	free(a);
	free(b);
	free(missing);
	free(list);
}

#define GOOD_CLUSTER "clusters:\n- name: c\n  cluster:\n    server: https://h:6443\n"
#define GOOD_CONTEXT                                                                                         \
	"contexts:\n- name: kind\n  context: {cluster: c, user: u}\n- name: dev\n  context: {cluster: c, "   \
	"user: u}\n"
#define TOKEN_USER "users:\n- name: u\n  user:\n    token: " TOKEN "\n"

static void test_errors_exact(void **state)
{
	char *big;

	(void)state;
	write_file("e1", "current-context: prod\n" GOOD_CLUSTER GOOD_CONTEXT TOKEN_USER);
	expect_error("e1", NULL, -ENOENT, "%F: context \"prod\" not found (contexts: kind, dev)");
	expect_error("e1", "x", -ENOENT, "%F: context \"x\" not found (contexts: kind, dev)");

	write_file("e2", GOOD_CLUSTER GOOD_CONTEXT TOKEN_USER);
	expect_error("e2", NULL, -ENOENT, "%F: no current-context is set and no context was given");

	write_file("e3",
		   "contexts:\n- name: a\n  context: {cluster: gone, user: u}\n" GOOD_CLUSTER TOKEN_USER);
	expect_error("e3", "a", -ENOENT, "%F: context \"a\": cluster \"gone\" not found (clusters: c)");

	write_file("e4",
		   "contexts:\n- name: a\n  context: {cluster: c, user: gone}\n" GOOD_CLUSTER TOKEN_USER);
	expect_error("e4", "a", -ENOENT, "%F: context \"a\": user \"gone\" not found (users: u)");

	write_file("e5", GOOD_CLUSTER GOOD_CONTEXT
		   "users:\n- name: u\n  user:\n    token: " TOKEN
		   "\n    client-key-data: not*base64\n    client-certificate-data: "
		   "LS0tLS1CRUdJTiBY\n");
	expect_error("e5", "kind", -EINVAL, "%F: users[0].user.client-key-data: invalid base64");

	write_file("e6", GOOD_CONTEXT TOKEN_USER "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
						 "    certificate-authority-data: aGVsbG8=\n");
	expect_error("e6", "kind", -EINVAL,
		     "%F: clusters[0].cluster.certificate-authority-data: not PEM data (no -----BEGIN line)");

	write_file("e7", GOOD_CONTEXT TOKEN_USER
		   "clusters:\n- name: c\n  cluster:\n    insecure-skip-tls-verify: true\n");
	expect_error("e7", "kind", -EINVAL, "%F: clusters[0].cluster.server: missing");

	write_file("e8", GOOD_CONTEXT TOKEN_USER "clusters:\n- name: c\n  cluster:\n    server: h:6443\n");
	expect_error("e8", "kind", -EINVAL,
		     "%F: clusters[0].cluster.server: expected an https:// or http:// URL");

	write_file("e9", GOOD_CONTEXT TOKEN_USER "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
						 "    certificate-authority: nope.crt\n");
	expect_error("e9", "kind", -ENOENT,
		     "%F: clusters[0].cluster.certificate-authority: %D/nope.crt: No such file or directory");

	write_file("e10",
		   GOOD_CLUSTER GOOD_CONTEXT "users:\n- name: u\n  user:\n    exec:\n      command: aws\n");
	expect_error("e10", "dev", -EINVAL,
		     "%F: users[0].user.exec.apiVersion: missing (client.authentication.k8s.io/v1 or "
		     "client.authentication.k8s.io/v1beta1)");
	write_file("e10a", GOOD_CLUSTER GOOD_CONTEXT "users:\n- name: u\n  user:\n    exec:\n      command: aws\n"
						  "      apiVersion: client.authentication.k8s.io/v1alpha1\n");
	expect_error("e10a", "dev", -ENOTSUP,
		     "%F: users[0].user.exec.apiVersion: client.authentication.k8s.io/v1alpha1 is not supported "
		     "(use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)");
	write_file("e10b", GOOD_CLUSTER GOOD_CONTEXT "users:\n- name: u\n  user:\n    exec:\n      command: aws\n"
						  "      apiVersion: client.authentication.k8s.io/v1\n");
	expect_error("e10b", "dev", -EINVAL,
		     "%F: users[0].user.exec.interactiveMode: required by client.authentication.k8s.io/v1 (use "
		     "Never)");
	write_file("e10c", GOOD_CLUSTER GOOD_CONTEXT "users:\n- name: u\n  user:\n    exec:\n      command: aws\n"
						  "      apiVersion: client.authentication.k8s.io/v1\n"
						  "      interactiveMode: Always\n");
	expect_error("e10c", "dev", -ENOTSUP,
		     "%F: users[0].user.exec.interactiveMode: Always needs a terminal, and device-descheduler has "
		     "none; use a plugin that works with Never or IfAvailable");
	write_file("e10d", GOOD_CLUSTER GOOD_CONTEXT "users:\n- name: u\n  user:\n    exec:\n"
						  "      apiVersion: client.authentication.k8s.io/v1beta1\n");
	expect_error("e10d", "dev", -EINVAL, "%F: users[0].user.exec.command: missing");
	write_file("e10e", GOOD_CLUSTER GOOD_CONTEXT "users:\n- name: u\n  user:\n    exec:\n      command: aws\n"
						  "      apiVersion: client.authentication.k8s.io/v1beta1\n"
						  "      env:\n      - name: A=B\n        value: " TOKEN "\n");
	expect_error("e10e", "dev", -EINVAL, "%F: users[0].user.exec.env[0].name: missing, empty or contains '='");
	write_file("e10f", GOOD_CLUSTER GOOD_CONTEXT "users:\n- name: u\n  user:\n    exec:\n      command: aws\n"
						  "      apiVersion: client.authentication.k8s.io/v1beta1\n"
						  "      args: [a, {b: c}]\n");
	expect_error("e10f", "dev", -EINVAL, "%F: users[0].user.exec.args[1]: expected a string");

	write_file("e11", GOOD_CLUSTER GOOD_CONTEXT
		   "users:\n- name: u\n  user:\n    auth-provider:\n      name: gcp\n");
	expect_error("e11", "dev", -ENOTSUP,
		     "%F: users[0].user.auth-provider: auth-provider plugins are not supported; use a token, "
		     "tokenFile or client certificate");

	write_file("e12", GOOD_CLUSTER GOOD_CONTEXT
		   "users:\n- name: u\n  user:\n    username: a\n    password: " TOKEN "\n");
	expect_error("e12", "dev", -ENOTSUP,
		     "%F: users[0].user: basic authentication (username/password) is not supported");

	write_file("e13", "clusters:\n- name: c\n  cluster:\n    server: [https://h\n");
	expect_error("e13", NULL, -EINVAL,
		     "%F:5:1: invalid YAML: did not find expected ',' or ']' while parsing a flow sequence");

	write_file("e14", "- just\n- a list\n");
	expect_error("e14", "a", -EINVAL, "%F: expected a mapping at the top level (a Config)");

	write_file("e15", "clusters: {c: 1}\n" GOOD_CONTEXT TOKEN_USER);
	expect_error("e15", "kind", -EINVAL, "%F: clusters: expected a list (line 1)");

	write_file("e16", GOOD_CONTEXT TOKEN_USER
		   "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
		   "    certificate-authority: ca.crt\n    insecure-skip-tls-verify: true\n");
	expect_error(
	    "e16", "kind", -EINVAL,
	    "%F: clusters[0].cluster: insecure-skip-tls-verify together with a certificate authority is not "
	    "allowed");

	write_file("e17", GOOD_CLUSTER GOOD_CONTEXT
		   "users:\n- name: u\n  user:\n    client-certificate: client.crt\n");
	expect_error("e17", "kind", -EINVAL, "%F: users[0].user: client-certificate without client-key");

	write_file("e18", GOOD_CONTEXT TOKEN_USER "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
						  "    insecure-skip-tls-verify: maybe\n");
	expect_error("e18", "kind", -EINVAL,
		     "%F: clusters[0].cluster.insecure-skip-tls-verify: expected true or false");

	write_file("e19", GOOD_CLUSTER GOOD_CONTEXT
		   "users:\n- name: u\n  user:\n    token:\n      nested: " TOKEN "\n");
	expect_error("e19", "kind", -EINVAL, "%F: users[0].user.token: expected a string (line 14)");

	write_file("e20",
		   GOOD_CLUSTER GOOD_CONTEXT "users:\n- name: u\n  user:\n    tokenFile: no-such-token\n");
	expect_error("e20", "kind", -ENOENT,
		     "%F: users[0].user.tokenFile: %D/no-such-token: No such file or directory");

	write_file("e21", GOOD_CLUSTER "contexts:\n- just-a-string\n" TOKEN_USER);
	expect_error("e21", "kind", -EINVAL, "%F: contexts[0]: expected a mapping");

	expect_error("no-such-file", NULL, -ENOENT, "%F: No such file or directory");

	/* The size bound on the kubeconfig itself (a sparse file, so this is cheap). */
	big = path_of("big");
	assert_int_equal(truncate(big, 0) == 0 || errno == ENOENT, 1);
	assert_int_equal(sh("truncate -s 17M %s", big), 0);
	expect_error("big", NULL, -EFBIG, "%F: larger than the limit of 16777216 bytes");
	free(big);
}

static void test_in_cluster(void **state)
{
	struct kc_config c;
	struct kc_error err;
	char *sa = path_of("sa"), *want;

	(void)state;
	assert_int_equal(sh("mkdir -p %s/sa && printf '" TOKEN "\\n' > %s/sa/token && cp %s/ca.crt %s/sa/ && "
			    "printf 'kube-system\\n' > %s/sa/namespace",
			    tmp, tmp, tmp, tmp, tmp),
			 0);
	assert_int_equal(kc_config_in_cluster(sa, &c, &err), -ENOENT);
	assert_string_equal(err.msg,
			    "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kc_config_in_cluster(sa, &c, &err), 0);
	assert_string_equal(c.server, "https://10.96.0.1:443");
	want = kc_xasprintf("%s/token", sa);
	assert_string_equal(c.token_file, want);
	free(want);
	want = kc_xasprintf("%s/ca.crt", sa);
	assert_string_equal(c.ca_file, want);
	free(want);
	assert_string_equal(c.token, TOKEN);
	assert_string_equal(c.ns, "kube-system");
	assert_string_equal(c.source, "in-cluster");
	kc_config_done(&c);

	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(sh("rm %s/sa/namespace", tmp), 0);
	assert_int_equal(kc_config_in_cluster(sa, &c, &err), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	assert_string_equal(c.ns, "default");
	kc_config_done(&c);

	assert_int_equal(sh("rm %s/sa/token", tmp), 0);
	assert_int_equal(kc_config_in_cluster(sa, &c, &err), -ENOENT);
	want = kc_xasprintf("in-cluster: %s/token: No such file or directory", sa);
	assert_string_equal(err.msg, want);
	free(want);

	/* Resolution order: in-cluster comes before ~/.kube/config but after $KUBECONFIG. */
	setenv("HOME", tmp, 1);
	assert_int_equal(kc_config_load(NULL, NULL, &c, &err), -ENOENT);
	assert_string_equal(err.msg,
			    "in-cluster: /var/run/secrets/kubernetes.io/serviceaccount/token: No such file "
			    "or directory");
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kc_config_load(NULL, NULL, &c, &err), -ENOENT);
	want = kc_xasprintf("no configuration: no --kubeconfig, $KUBECONFIG is not set, not in a cluster "
			    "(KUBERNETES_SERVICE_HOST is not set), and %s/.kube/config does not exist",
			    tmp);
	assert_string_equal(err.msg, want);
	free(want);
	assert_int_equal(
	    sh("mkdir -p %s/.kube && printf 'clusters: [{name: c, cluster: {server: \"https://home\"}}]\\n"
	       "contexts: [{name: h, context: {cluster: c}}]\\ncurrent-context: h\\n' > %s/.kube/config",
	       tmp, tmp),
	    0);
	assert_int_equal(kc_config_load(NULL, NULL, &c, &err), 0);
	assert_string_equal(c.server, "https://home");
	kc_config_done(&c);
	unsetenv("KUBERNETES_SERVICE_PORT");
	free(sa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kubectl_token_and_namespace),
	    cmocka_unit_test(test_kubectl_client_certificates),
	    cmocka_unit_test(test_kubectl_exec),
	    cmocka_unit_test(test_relative_paths_json_and_flags),
	    cmocka_unit_test(test_inline_data_wrapped),
	    cmocka_unit_test(test_kubeconfig_env_list_merges),
	    cmocka_unit_test(test_errors_exact),
	    cmocka_unit_test(test_in_cluster),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
