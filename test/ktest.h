/*
 * Helpers for C integration tests run by test/run_with_apiserver.py: the
 * environment it sets, a blocking admin client for the test API server's
 * /_test/ API (libcurl easy: fine in tests, never in the product), a way
 * to run a uv loop until a condition holds, and the fixture the reflector
 * suites share (a loop, a client and an intern table; waits on a reflector).
 * Linked into every test binary.
 */
#ifndef KTEST_H
#define KTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kc_config.h"
#include "kc_http.h"
#include "kc_intern.h"
#include "kc_reflector.h"

/* $KTEST_DIR, $KTEST_URL, $KTEST_ADMIN_TOKEN; abort the test with a message when unset. */
const char *ktest_env_dir(void);
const char *ktest_env_url(void);
const char *ktest_env_admin_token(void);
/* DIR/name, newly allocated; the caller frees it. */
char *ktest_path(const char *name);
/* True when run by run_with_apiserver.py (KTEST_URL is set). */
bool ktest_env_present(void);

/*
 * One blocking request with the admin token to the test server:
 * ktest_admin("POST", "/_test/faults", "{...}", &body).  Returns the HTTP
 * status, or -1 when no response came.  *ret_body (when ret_body is not NULL)
 * is set to the NUL-terminated body, owned by the caller.
 */
long ktest_admin(const char *method, const char *path, const char *json_body, char **ret_body);

/* Runs the loop (UV_RUN_ONCE steps) until pred(ud) is true or timeout_ms passed;
 * returns pred's last value. */
bool ktest_run_loop_until(uv_loop_t *loop, bool (*pred)(void *), void *ud, uint64_t timeout_ms);

/* Writes data to path atomically (temp file + rename); returns 0 or -errno. */
int ktest_write_file(const char *path, const char *data);

/*
 * The checked forms of ktest_admin() for cmocka tests: they fail the test
 * unless the answer is 2xx.  ktest_admin_json returns the parsed body (the
 * caller decrefs it).
 */
long ktest_admin_ok(const char *method, const char *path, const char *json_body);
json_t *ktest_admin_json(const char *method, const char *path, const char *json_body);
/* The server's current resourceVersion; the caller frees it. */
char *ktest_server_rv(void);
/*
 * How many requests the server logged with this verb ("list", "watch",
 * "create"), on path (NULL: any), whose query contains needle (NULL: any),
 * that ended with status (negative: any; 0: no answer was sent).
 */
size_t ktest_count_requests(const char *verb, const char *path, const char *needle, long status);

/*
 * The fixture of the suites that run reflectors against the server: a loop,
 * the kubeconfig run_with_apiserver.py wrote, one client with a rate limit
 * high enough not to matter (1000 QPS) and an intern table.
 */
struct ktest_env {
	uv_loop_t loop;
	struct kc_config cfg;
	struct kc_client *client;
	struct kc_intern *intern;
};

/* For cmocka's group setup: 0, or -1 with a message naming the suite. */
int ktest_env_setup(struct ktest_env *e, const char *suite);
/* For cmocka's group teardown: closes the client; -1 when a handle is left on the loop. */
int ktest_env_teardown(struct ktest_env *e, const char *suite);

/* Fails the test unless the reflector reaches the server's current
 * resourceVersion within timeout_ms (bookmarks bring it there within a
 * second when the last change was to another resource). */
void ktest_wait_caught_up(uv_loop_t *loop, struct kc_reflector *r, uint64_t timeout_ms);
/* Fails the test unless the uint64_t counter at offset in the reflector's
 * kc_reflector_stats reaches at_least within timeout_ms; use KTEST_WAIT_STAT. */
void ktest_wait_stat(uv_loop_t *loop, struct kc_reflector *r, size_t offset, const char *field,
		     uint64_t at_least, uint64_t timeout_ms);
#define KTEST_WAIT_STAT(loop, r, field, value, timeout_ms)                                                \
	ktest_wait_stat((loop), (r), offsetof(struct kc_reflector_stats, field), #field, (value), (timeout_ms))

#endif
