/*
 * Unit tests of kc_exec (the pure half of exec credential plugins): the
 * ExecCredential of v1 and v1beta1 decoded exactly (token, client
 * certificate, expiry), every refusal client-go makes with its message and
 * never a byte of the output in it, KUBERNETES_EXEC_INFO with and without
 * cluster info, and the first line of stderr made fit for a log line.
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

#include <cmocka.h>

#include "kc_exec.h"

#define V1 "client.authentication.k8s.io/v1"
#define V1B1 "client.authentication.k8s.io/v1beta1"
#define SECRET "tok-S3CRET-never-in-errors"

static void test_decode_ok(void **state)
{
	struct kc_exec_credential c;
	struct kc_error err = {{0}};
	static const char v1[] = "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":false},"
				 "\"status\":{\"token\":\"" SECRET "\",\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}}";
	static const char v1b1[] = "{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1B1 "\",\"status\":{"
				   "\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\nA\\n\","
				   "\"clientKeyData\":\"-----BEGIN EC PRIVATE KEY-----\\nB\\n\"}}";

	(void)state;
	assert_int_equal(kc_exec_credential_decode(v1, strlen(v1), V1, &c, &err), 0);
	assert_string_equal(c.token, SECRET);
	assert_null(c.client_cert_data);
	assert_int_equal(c.expires_ms, 1893553445000LL);
	kc_exec_credential_done(&c);
	assert_null(c.token);

	assert_int_equal(kc_exec_credential_decode(v1b1, strlen(v1b1), V1B1, &c, &err), 0);
	assert_null(c.token);
	assert_string_equal(c.client_cert_data, "-----BEGIN CERTIFICATE-----\nA\n");
	assert_int_equal(c.client_cert_data_len, strlen("-----BEGIN CERTIFICATE-----\nA\n"));
	assert_string_equal(c.client_key_data, "-----BEGIN EC PRIVATE KEY-----\nB\n");
	assert_int_equal(c.expires_ms, 0);
	kc_exec_credential_done(&c);
	kc_exec_credential_done(NULL);
}

static void test_decode_refused(void **state)
{
	static const struct {
		const char *out, *want;
	} cases[] = {
	    {SECRET "\n", "exec plugin: its output is not an ExecCredential (invalid JSON at line 1, column 3)"},
	    {"", "exec plugin: its output is not an ExecCredential (invalid JSON at line 1, column 0)"},
	    {"{\"kind\":\"Secret\",\"apiVersion\":\"" V1 "\",\"status\":{\"token\":\"" SECRET "\"}}",
	     "exec plugin: its output is not an ExecCredential (kind is not ExecCredential)"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1B1 "\",\"status\":{\"token\":\"" SECRET "\"}}",
	     "exec plugin is configured to use API version " V1 ", plugin returned version " V1B1},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" SECRET "\",\"status\":{}}",
	     "exec plugin is configured to use API version " V1 ", plugin returned version another"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\"}", "exec plugin didn't return a status field"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{\"token\":\"\"}}",
	     "exec plugin didn't return a token or cert/key pair"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{\"token\":7}}",
	     "exec plugin: status.token is not a string"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{\"clientKeyData\":\"k\"}}",
	     "exec plugin returned only clientKeyData, not both"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{\"token\":\"" SECRET
	     "\",\"expirationTimestamp\":\"" SECRET "\"}}",
	     "exec plugin: status.expirationTimestamp is not an RFC 3339 time"},
	    {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\"}",
	     "exec plugin: its output is not an ExecCredential (invalid JSON at line 1, column 78)"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kc_exec_credential c;
		struct kc_error err = {{0}};

		memset(&c, 0x5a, sizeof(c));
		assert_int_equal(kc_exec_credential_decode(cases[i].out, strlen(cases[i].out), V1, &c, &err), -EBADMSG);
		assert_string_equal(err.msg, cases[i].want);
		assert_null(strstr(err.msg, SECRET));
		assert_null(c.token);
		assert_null(c.client_key_data);
	}
}

static void test_exec_info(void **state)
{
	struct kc_exec_config e = {0};
	struct kc_config cfg = {0};
	char *info;

	(void)state;
	e.api_version = (char *)V1B1;
	cfg.exec = &e;
	cfg.server = (char *)"https://10.0.0.1:6443";
	cfg.tls_server_name = (char *)"kubernetes";
	info = kc_exec_info(&cfg, "PEM", 3);
	assert_string_equal(info, "{\"apiVersion\":\"" V1B1 "\",\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":false}}");
	free(info);
	e.provide_cluster_info = true;
	cfg.insecure_skip_tls_verify = true;
	info = kc_exec_info(&cfg, "PEM", 3);
	assert_string_equal(info, "{\"apiVersion\":\"" V1B1 "\",\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":false,"
				  "\"cluster\":{\"server\":\"https://10.0.0.1:6443\",\"tls-server-name\":\"kubernetes\","
				  "\"insecure-skip-tls-verify\":true,\"certificate-authority-data\":\"UEVN\"}}}");
	free(info);
}

static void test_first_line(void **state)
{
	char buf[256], small[8];
	char big[600];

	(void)state;
	kc_exec_first_line("\n  error: no credentials\nsecond line\n", 38, buf, sizeof(buf));
	assert_string_equal(buf, "error: no credentials");
	kc_exec_first_line("a\tb\x1b[31mc", 9, buf, sizeof(buf));
	assert_string_equal(buf, "a?b?[31mc");
	kc_exec_first_line("", 0, buf, sizeof(buf));
	assert_string_equal(buf, "");
	kc_exec_first_line("abcdefghij", 10, small, sizeof(small));
	assert_string_equal(small, "abcdefg");
	memset(big, 'x', sizeof(big));
	kc_exec_first_line(big, sizeof(big), buf, sizeof(buf));
	assert_int_equal(strlen(buf), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_ok),
	    cmocka_unit_test(test_decode_refused),
	    cmocka_unit_test(test_exec_info),
	    cmocka_unit_test(test_first_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
