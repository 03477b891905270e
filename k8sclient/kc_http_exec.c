/*
 * The exec credential plugin of a client (users[].user.exec in a kubeconfig,
 * as client-go runs it): the plugin is started with uv_spawn (never through a
 * shell) with stdin on /dev/null, our environment plus exec.env and
 * KUBERNETES_EXEC_INFO, and a timeout; its stdout (bounded) is decoded by
 * kc_exec.c.  The credential is cached until status.expirationTimestamp: the
 * plugin is run again in the background a little before that, at once after a
 * 401, and whenever there is none.  Requests that need a credential wait (in
 * the scheduler's waiting list, due never) for the run, and fail with its
 * error when it fails.  One run at a time; after a failure the next waits a
 * backoff, so a broken plugin is not spawned in a loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc_exec.h"
#include "kc_http_int.h"
#include "kc_log.h"

#define STDERR_KEEP 4096
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
/* A credential is renewed this long before it expires (or with a quarter of its life left, when shorter). */
#define REFRESH_AHEAD_MS 60000

extern char **environ;

struct kc_exec_run {
	struct kc_client *client;
	uv_process_t proc;
	uv_pipe_t out, err;
	uv_timer_t timer;
	unsigned open; /* handles not yet closed */
	bool exited, out_eof, err_eof, done;
	bool timed_out, overflow;
	int64_t exit_status;
	int term_signal;
	struct kc_buf stdout_buf;
	char stderr_buf[STDERR_KEEP];
	size_t stderr_len;
	char scratch[16384];
};

static void set_msg(char *dst, size_t size, const char *fmt, ...) KC_PRINTF(3, 4);

/* snprintf, for messages that may be cut (vsnprintf: the compiler does not guess at lengths). */
static void set_msg(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, size, fmt, ap);
	va_end(ap);
}

static const char *cmd_name(const struct kc_client *c)
{
	return c->cfg.exec->command;
}

static void wipe_buf(struct kc_buf *b)
{
	if (b->data)
		memset(b->data, 0, b->cap);
	kc_buf_done(b);
}

static void on_run_closed(uv_handle_t *h)
{
	struct kc_exec_run *run = h->data;
	struct kc_client *c = run->client;

	if (--run->open > 0)
		return;
	wipe_buf(&run->stdout_buf);
	memset(run->scratch, 0, sizeof(run->scratch));
	free(run);
	kc_http_handle_released(c);
}

static void close_run(struct kc_exec_run *run)
{
	uv_handle_t *hs[] = {(uv_handle_t *)&run->proc, (uv_handle_t *)&run->out, (uv_handle_t *)&run->err,
			     (uv_handle_t *)&run->timer};

	for (size_t i = 0; i < KC_ARRAY_SIZE(hs); i++)
		if (!uv_is_closing(hs[i]))
			uv_close(hs[i], on_run_closed);
}

/* The requests that wait for a credential may go now (or fail with error). */
static void release_waiters(struct kc_client *c, int error)
{
	struct link *l, *next;
	uint64_t now = now_ms(c);

	for (l = c->waiting.next; l != &c->waiting; l = next) {
		struct kc_request *r = kc_container_of(l, struct kc_request, queue);

		next = l->next;
		if (!r->exec_wait)
			continue;
		r->exec_wait = false;
		if (error) {
			list_del(&r->queue);
			if (r->rl_reserved)
				kc_ratelimit_unreserve(&c->rl, now);
			r->rl_reserved = false;
			set_msg(r->errmsg, sizeof(r->errmsg), "%s %s: %s", r->method, r->url, c->exec_error);
			kc_http_finish(r, error);
		} else {
			r->due_ms = now;
		}
	}
	kc_http_schedule(c);
}

static void run_failed(struct kc_client *c)
{
	uint64_t now = now_ms(c);

	c->exec_backoff_ms = c->exec_backoff_ms ? c->exec_backoff_ms * 2 : BACKOFF_MIN_MS;
	if (c->exec_backoff_ms > BACKOFF_MAX_MS)
		c->exec_backoff_ms = BACKOFF_MAX_MS;
	c->exec_retry_at_ms = now + c->exec_backoff_ms;
	kc_log_warn("%s%s", c->exec_error,
		    kc_http_exec_usable(c) ? "; keeping the current credential until it expires" : "");
	release_waiters(c, -EACCES);
}

static void use_credential(struct kc_client *c, struct kc_exec_credential *cred)
{
	char when[40] = "never";

	kc_exec_credential_done(&c->exec_cred);
	c->exec_cred = *cred;
	memset(cred, 0, sizeof(*cred));
	c->exec_have = true;
	c->exec_stale = false;
	c->exec_got_ms = kc_wall_ms();
	c->exec_backoff_ms = 0;
	c->exec_retry_at_ms = 0;
	if (c->token) {
		memset(c->token, 0, strlen(c->token));
		free(c->token);
		c->token = NULL;
	}
	if (c->exec_cred.token)
		c->token = kc_xstrdup(c->exec_cred.token);
	c->token_gen++;
	if (c->exec_cred.expires_ms)
		kc_format_time(c->exec_cred.expires_ms, when, sizeof(when));
	kc_log_info(2, "exec plugin %s: new credential (%s%s%s), expires %s", cmd_name(c),
		    c->exec_cred.token ? "token" : "", c->exec_cred.token && c->exec_cred.client_cert_data ? " and " : "",
		    c->exec_cred.client_cert_data ? "client certificate" : "", when);
	release_waiters(c, 0);
}

/* The plugin exited and both pipes are at their end (or the timeout forced it). */
static void complete(struct kc_exec_run *run)
{
	struct kc_client *c = run->client;
	struct kc_exec_credential cred;
	struct kc_error err = {{0}};
	char line[256];

	if (run->done)
		return;
	run->done = true;
	c->exec_run = NULL;
	close_run(run);
	kc_exec_first_line(run->stderr_buf, run->stderr_len, line, sizeof(line));
	if (run->timed_out) {
		snprintf(c->exec_error, sizeof(c->exec_error), "exec plugin %s: no credential within %llu ms (killed)",
			 cmd_name(c), (unsigned long long)c->opts.exec_timeout_ms);
	} else if (run->overflow) {
		snprintf(c->exec_error, sizeof(c->exec_error),
			 "exec plugin %s: more than %u bytes of output (killed)", cmd_name(c), KC_EXEC_MAX_OUTPUT);
	} else if (run->term_signal) {
		snprintf(c->exec_error, sizeof(c->exec_error), "exec plugin %s: killed by signal %d%s%s", cmd_name(c),
			 run->term_signal, line[0] ? ": " : "", line);
	} else if (run->exit_status != 0) {
		snprintf(c->exec_error, sizeof(c->exec_error), "exec plugin %s failed with exit status %lld%s%s",
			 cmd_name(c), (long long)run->exit_status, line[0] ? ": " : "", line);
	} else if (kc_exec_credential_decode(run->stdout_buf.data ? run->stdout_buf.data : "", run->stdout_buf.len,
					     c->cfg.exec->api_version, &cred, &err) < 0) {
		set_msg(c->exec_error, sizeof(c->exec_error), "%s (command %s)", err.msg, cmd_name(c));
	} else {
		c->exec_error[0] = '\0';
		use_credential(c, &cred);
		return;
	}
	run_failed(c);
}

static void maybe_complete(struct kc_exec_run *run)
{
	if (run->exited && run->out_eof && run->err_eof)
		complete(run);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct kc_exec_run *run = kc_container_of(p, struct kc_exec_run, proc);

	run->exited = true;
	run->exit_status = exit_status;
	run->term_signal = term_signal;
	maybe_complete(run);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct kc_exec_run *run = h->data;

	(void)suggested;
	*buf = uv_buf_init(run->scratch, sizeof(run->scratch));
}

static void kill_run(struct kc_exec_run *run)
{
	if (!run->exited)
		uv_process_kill(&run->proc, SIGKILL);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct kc_exec_run *run = s->data;
	bool is_out = s == (uv_stream_t *)&run->out;

	if (n < 0) {
		/* UV_EOF, or a read error: this pipe is done either way. */
		uv_read_stop(s);
		if (is_out)
			run->out_eof = true;
		else
			run->err_eof = true;
		maybe_complete(run);
		return;
	}
	if (is_out) {
		if (!run->overflow && kc_buf_append(&run->stdout_buf, buf->base, (size_t)n) < 0) {
			run->overflow = true;
			kill_run(run);
		}
	} else {
		size_t room = sizeof(run->stderr_buf) - run->stderr_len;
		size_t k = (size_t)n < room ? (size_t)n : room;

		memcpy(run->stderr_buf + run->stderr_len, buf->base, k);
		run->stderr_len += k;
	}
	memset(buf->base, 0, (size_t)n);
}

static void on_timeout(uv_timer_t *t)
{
	struct kc_exec_run *run = t->data;

	if (!run->exited) {
		run->timed_out = true;
		kill_run(run);
		return;
	}
	/* It exited but something it started still holds a pipe open: do not wait for that. */
	complete(run);
}

/* Our environment, without the names the plugin's env sets, then those and KUBERNETES_EXEC_INFO. */
static char **build_env(const struct kc_exec_config *e, char *info)
{
	size_t n = 0, m = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	while (e->env && e->env[m])
		m++;
	env = kc_xcalloc(n + m + 2, sizeof(*env));
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool overridden = nl == strlen("KUBERNETES_EXEC_INFO") &&
				  strncmp(environ[i], "KUBERNETES_EXEC_INFO", nl) == 0;

		for (size_t j = 0; j < m && !overridden; j++)
			overridden = strncmp(e->env[j], environ[i], nl + 1) == 0;
		if (!overridden)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		env[k++] = e->env[j];
	env[k++] = info;
	return env;
}

/* The CA the plugin is told about: inline data, or the file's contents. */
static char *exec_info(struct kc_client *c)
{
	char *ca = NULL, *info;
	size_t len = 0;

	if (c->cfg.ca_data) {
		ca = kc_xstrndup(c->cfg.ca_data, c->cfg.ca_data_len);
		len = c->cfg.ca_data_len;
	} else if (c->cfg.ca_file && c->cfg.exec->provide_cluster_info &&
		   kc_read_file(c->cfg.ca_file, 1024u * 1024u, &ca, &len) < 0) {
		ca = NULL;
		len = 0;
	}
	info = kc_exec_info(&c->cfg, ca, len);
	free(ca);
	return info;
}

/* Starts the plugin; on a failure to start, the error is in c->exec_error and waiters fail. */
static int start_run(struct kc_client *c)
{
	const struct kc_exec_config *e = c->cfg.exec;
	struct kc_exec_run *run;
	uv_process_options_t po;
	uv_stdio_container_t stdio[3];
	char *info, *var, **env;
	int r;

	run = kc_xcalloc(1, sizeof(*run));
	run->client = c;
	kc_buf_init(&run->stdout_buf, KC_EXEC_MAX_OUTPUT);
	uv_pipe_init(c->loop, &run->out, 0);
	uv_pipe_init(c->loop, &run->err, 0);
	uv_timer_init(c->loop, &run->timer);
	run->out.data = run->err.data = run->timer.data = run->proc.data = run;
	run->open = 4;
	c->open_handles++;

	info = exec_info(c);
	var = kc_xasprintf("KUBERNETES_EXEC_INFO=%s", info);
	free(info);
	env = build_env(e, var);
	memset(&po, 0, sizeof(po));
	memset(stdio, 0, sizeof(stdio));
	/* No stdin: interactiveMode Never and IfAvailable both run without one. */
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&run->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&run->err;
	po.file = e->command;
	po.args = e->args;
	po.env = env;
	po.stdio = stdio;
	po.stdio_count = 3;
	po.exit_cb = on_exit_cb;
	c->exec_runs++;
	kc_log_info(3, "exec plugin %s: running it for a credential", e->command);
	r = uv_spawn(c->loop, &run->proc, &po);
	free(env);
	free(var);
	if (r < 0) {
		run->done = true;
		close_run(run);
		if (r == UV_ENOENT)
			snprintf(c->exec_error, sizeof(c->exec_error),
				 "exec plugin: executable %s not found%s%s", e->command,
				 e->install_hint ? "; " : " (it looks like a client-go credential plugin that is not "
							  "installed)",
				 e->install_hint ? e->install_hint : "");
		else
			snprintf(c->exec_error, sizeof(c->exec_error), "exec plugin %s: cannot start it: %s",
				 e->command, uv_strerror(r));
		return -EACCES;
	}
	c->exec_run = run;
	uv_read_start((uv_stream_t *)&run->out, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&run->err, on_alloc, on_read);
	uv_timer_start(&run->timer, on_timeout, c->opts.exec_timeout_ms, 0);
	return 0;
}

bool kc_http_exec_usable(const struct kc_client *c)
{
	return c->exec_have && !c->exec_stale &&
	       (c->exec_cred.expires_ms == 0 || kc_wall_ms() < c->exec_cred.expires_ms);
}

/* Whether to renew the cached credential now: a minute before it expires, or with a
 * quarter of its life left when it lives less than four minutes. */
static bool due_for_renewal(struct kc_client *c)
{
	int64_t left;

	if (!c->exec_cred.expires_ms)
		return false;
	left = c->exec_cred.expires_ms - kc_wall_ms();
	return left <= REFRESH_AHEAD_MS && left <= (c->exec_cred.expires_ms - c->exec_got_ms) / 4;
}

int kc_http_exec_ready(struct kc_request *r, uint64_t now)
{
	struct kc_client *c = r->client;

	if (!c->cfg.exec)
		return 1;
	if (kc_http_exec_usable(c)) {
		/* Renew in the background; requests go on with the current one meanwhile. */
		if (!c->exec_run && now >= c->exec_retry_at_ms && due_for_renewal(c) && start_run(c) < 0)
			run_failed(c);
		return 1;
	}
	if (!c->exec_run) {
		if (now < c->exec_retry_at_ms) {
			/* The last run failed: wait for the backoff, then try again. */
			r->due_ms = c->exec_retry_at_ms;
			return 0;
		}
		if (start_run(c) < 0) {
			run_failed(c);
			set_msg(r->errmsg, sizeof(r->errmsg), "%s %s: %s", r->method, r->url, c->exec_error);
			return -EACCES;
		}
	}
	r->exec_wait = true;
	r->due_ms = UINT64_MAX;
	return 0;
}

void kc_http_exec_unauthorized(struct kc_client *c, uint64_t token_gen)
{
	/* Only the credential that was refused is dropped: a newer one may work. */
	if (c->cfg.exec && c->token_gen == token_gen)
		c->exec_stale = true;
}

void kc_http_exec_apply(struct kc_request *r)
{
	struct kc_client *c = r->client;
	struct curl_blob cert, key;

	if (!c->cfg.exec || !c->exec_have || !c->exec_cred.client_cert_data)
		return;
	/* Copied by curl: the credential may be replaced while this transfer runs. */
	cert = (struct curl_blob){c->exec_cred.client_cert_data, c->exec_cred.client_cert_data_len, CURL_BLOB_COPY};
	key = (struct curl_blob){c->exec_cred.client_key_data, c->exec_cred.client_key_data_len, CURL_BLOB_COPY};
	curl_easy_setopt(r->easy, CURLOPT_SSLCERT_BLOB, &cert);
	curl_easy_setopt(r->easy, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(r->easy, CURLOPT_SSLKEY_BLOB, &key);
	curl_easy_setopt(r->easy, CURLOPT_SSLKEYTYPE, "PEM");
}

void kc_http_exec_teardown(struct kc_client *c)
{
	struct kc_exec_run *run = c->exec_run;

	if (run) {
		c->exec_run = NULL;
		run->done = true;
		kill_run(run);
		close_run(run);
	}
	kc_exec_credential_done(&c->exec_cred);
	c->exec_have = false;
}

unsigned kc_client_exec_runs(const struct kc_client *c)
{
	return c->exec_runs;
}
