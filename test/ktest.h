/*
 * Helpers for C integration tests run by test/run_with_apiserver.py: the
 * environment it sets, a blocking admin client for the test API server's
 * /_test/ API (libcurl easy: fine in tests, never in the product), and a way
 * to run a uv loop until a condition holds.  Linked into every test binary.
 */
#ifndef KTEST_H
#define KTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

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

#endif
