/*
 * libFuzzer target for the kubeconfig loader.  kc_config.h has no in-memory
 * parser, so the input is written to files in a private directory created
 * once per process in $TMPDIR (default /tmp) and rewritten on every run.  An input holding the
 * line "#8<" is split there into two files loaded as $KUBECONFIG="a:b"
 * through kc_config_load (the kubectl-style merge); any other input is one
 * file for kc_config_load_kubeconfig.  The input's length picks the context:
 * current-context, "x" or "kind-kind".
 *
 * Checks: a failure gives a terminated, non-empty message and leaves *ret
 * zeroed; an error message never contains the bearer token (checked when the
 * input sets `token: SECRET-TOKEN-123` on a line of its own); a success has
 * a server without a trailing slash, a namespace and a source; and
 * kc_config_done zeroes the struct.  FUZZ_IGNORE_KNOWN=1 tolerates the one
 * known, still open finding (a token folded into a quoted name).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "kc_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "SECRET-TOKEN-123"

#define CUT "\n#8<\n"

static char dir[256];
static char path[sizeof(dir) + 16];
static char path2[sizeof(dir) + 16];
static char list[2 * sizeof(path) + 2];

static void remove_dir(void)
{
	unlink(path);
	unlink(path2);
	rmdir(dir);
}

static void write_file(const char *p, const uint8_t *data, size_t size)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	close(fd);
}

static bool is_zero(const struct kc_config *c)
{
	static const struct kc_config zero;

	return memcmp(c, &zero, sizeof(zero)) == 0;
}

/* True when the token appears once, as the value of a `token:` key. */
static bool sets_token(const char *text, size_t len)
{
	const char *hit = memmem(text, len, TOKEN, strlen(TOKEN));
	const char *p;

	if (!hit || memmem(hit + 1, len - (size_t)(hit + 1 - text), TOKEN, strlen(TOKEN)))
		return false;
	p = hit;
	while (p > text && (p[-1] == ' ' || p[-1] == '"' || p[-1] == '\''))
		p--;
	return p - text >= 6 && memcmp(p - 6, "token:", 6) == 0;
}

static bool ignore_known(void)
{
	static int cached = -1;

	if (cached < 0) {
		const char *e = getenv("FUZZ_IGNORE_KNOWN");

		cached = e && strcmp(e, "1") == 0;
	}
	return cached;
}

/* The known, still open finding (test_regressions.c,
 * test_kubeconfig_error_quotes_long_names): the token inside a quoted name. */
static bool in_quoted_name(const char *msg)
{
	const char *hit = strstr(msg, TOKEN);
	size_t quotes = 0;

	for (const char *p = msg; p < hit; p++)
		quotes += *p == '"';
	return quotes % 2 == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const contexts[] = {NULL, "x", "kind-kind"};
	const char *context = contexts[size % 3];
	const uint8_t *cut = memmem(data, size, CUT, strlen(CUT));
	struct kc_config c;
	struct kc_error err;
	int r;

	if (!path[0]) {
		/* $TMPDIR (e.g. /dev/shm, a tmpfs, for speed) or /tmp. */
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/fuzz_kubeconfig.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
		FUZZ_CHECK(mkdtemp(dir) != NULL);
		snprintf(path, sizeof(path), "%s/config", dir);
		snprintf(path2, sizeof(path2), "%s/config2", dir);
		snprintf(list, sizeof(list), "%s:%s", path, path2);
		unsetenv("KUBERNETES_SERVICE_HOST");
		atexit(remove_dir);
	}
	memset(&c, 0, sizeof(c));
	memset(&err, 0, sizeof(err));
	if (cut) {
		size_t first = (size_t)(cut - data) + 1;

		write_file(path, data, first);
		write_file(path2, cut + strlen(CUT), size - (size_t)(cut - data) - strlen(CUT));
		setenv("KUBECONFIG", list, 1);
		r = kc_config_load(NULL, context, &c, &err);
	} else {
		write_file(path, data, size);
		r = kc_config_load_kubeconfig(path, context, &c, &err);
	}
	if (r != 0) {
		FUZZ_CHECK(r < 0);
		FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
		FUZZ_CHECK(err.msg[0] != '\0');
		FUZZ_CHECK(is_zero(&c));
		if (sets_token((const char *)data, size) && strstr(err.msg, TOKEN) &&
		    !(ignore_known() && in_quoted_name(err.msg))) {
			fprintf(stderr, "token leaked into the error: %s\n", err.msg);
			abort();
		}
	} else {
		size_t n;

		FUZZ_CHECK(c.server != NULL && c.ns != NULL && c.source != NULL);
		n = strlen(c.server);
		FUZZ_CHECK(n > 0 && c.server[n - 1] != '/');
		FUZZ_CHECK(c.ca_data == NULL || c.ca_data_len > 0 || c.ca_data[0] == '\0');
		if (c.token)
			(void)strlen(c.token);
		if (sets_token((const char *)data, size))
			FUZZ_CHECK(!strstr(c.source, TOKEN) && !strstr(c.server, TOKEN));
	}
	kc_config_done(&c);
	FUZZ_CHECK(is_zero(&c));
	/* libFuzzer may end with _exit(), skipping atexit(): leave no file behind. */
	unlink(path);
	unlink(path2);
	kc_config_done(NULL);
	return 0;
}
