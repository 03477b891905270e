/*
 * The HTTP client: libcurl's multi interface driven by a libuv loop (a
 * uv_poll_t per socket, a uv_timer_t for curl's timeout, as in curl's
 * docs/examples/multi-uv.c).  HTTP/2 over TLS when the server offers it via
 * ALPN, HTTP/1.1 otherwise, connections reused and multiplexed.  Bearer
 * tokens (re-read from the token file when it changes, and once after a 401),
 * client certificates, a client-side rate limiter (QPS and burst), per-request
 * timeouts, cancellation, bounded response bodies, and retries with
 * exponential backoff and jitter honouring Retry-After for 429 and 5xx on
 * requests marked retryable.  Requests marked priority (leader election) have
 * a rate-limit lane of their own, so they never queue behind the others.
 * Health checks in the manner of client-go's HTTP/2 pings: a connection that
 * has read nothing for read_idle_ms is probed with a small request, and one
 * that then still reads nothing for ping_timeout_ms is closed, so that its
 * requests fail over to a new connection.  Nothing blocks the loop.
 */
#ifndef KC_HTTP_H
#define KC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kc_config.h"
#include "kc_objects.h"
#include "kc_util.h"

struct kc_client;
struct kc_request;

struct kc_client_options {
	double qps;                  /* 0 = 50 */
	unsigned burst;              /* 0 = 100 */
	uint64_t timeout_ms;         /* default per-request timeout; 0 = 30000 */
	size_t max_body;             /* default response body bound; 0 = 64 MiB */
	unsigned max_attempts;       /* for retryable requests; 0 = 5 */
	uint64_t backoff_initial_ms; /* 0 = 200 */
	uint64_t backoff_max_ms;     /* 0 = 10000 */
	const char *user_agent;      /* NULL = "device-descheduler" */
	uint64_t read_idle_ms;       /* probe a connection silent this long; 0 = 30000 */
	uint64_t ping_timeout_ms;    /* close it when the probe finds it still silent after this; 0 = 15000 */
	uint64_t exec_timeout_ms;    /* an exec credential plugin's time to answer; 0 = 30000 */
};

struct kc_response {
	long http_status;            /* 0 when no response was received */
	int error;                   /* 0 or negative errno: -ETIMEDOUT, -ECONNREFUSED, -ECANCELED,
	                                -EMSGSIZE (body over the bound), -EPROTO (TLS), -EIO,
	                                -EACCES (the exec credential plugin failed) */
	const char *error_message;   /* human-readable transport error, or NULL */
	const char *body;            /* NUL-terminated; NULL on a transport error and for the 2xx
	                                body of a streaming request (a non-2xx one is buffered) */
	size_t body_len;
	const struct kc_status *status;  /* decoded when the body is a Status, else NULL */
	uint64_t retry_after_ms;     /* from Retry-After, 0 if absent */
	unsigned attempts;
};

/* Called exactly once per request, never from inside kc_client_request() or
 * kc_request_cancel(); the request and the response are freed after it returns. */
typedef void (*kc_response_cb)(struct kc_request *req, const struct kc_response *resp, void *userdata);

/* Streaming bodies (watches): called with each chunk of a 2xx response as it
 * arrives.  Return 0 to go on, or a negative errno to abort the request with it. */
typedef int (*kc_data_cb)(struct kc_request *req, const char *buf, size_t len, void *userdata);

struct kc_request_options {
	const char *method;          /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *path;            /* "/api/v1/pods?limit=500": the caller escapes the query */
	const char *body;            /* copied; NULL for none */
	size_t body_len;
	const char *content_type;    /* NULL = "application/json" when there is a body */
	const char *accept;          /* NULL = "application/json" (discovery asks for more) */
	uint64_t timeout_ms;         /* 0 = the client's default; UINT64_MAX = none (watches) */
	size_t max_body;             /* 0 = the client's default */
	bool retry;                  /* safe to retry on 429, 5xx and connection errors */
	kc_data_cb on_data;          /* when set, the body is streamed, not buffered */
	/* Leader election: a client-side rate-limit lane of its own, so the request never
	 * waits behind the others (client-go gives its resource lock a client of its own). */
	bool priority;
	/* Open a new connection rather than reuse one (after a watch stalled: the old
	 * connection may be dead without either side having noticed). */
	bool fresh_connection;
	/* For metrics and logs ("list", "pods"); NULL = derived from method and path. */
	const char *verb;
	const char *resource;
};

int kc_client_new(uv_loop_t *loop, const struct kc_config *cfg, const struct kc_client_options *opts,
		  struct kc_client **ret, struct kc_error *err);
/* Cancels every request (their callbacks run with -ECANCELED), closes every
 * handle, and calls done (may be NULL) from the loop once all are closed and
 * the client is freed. */
void kc_client_close(struct kc_client *c, void (*done)(void *userdata), void *userdata);

/*
 * Queues a request (everything in o is copied).  Returns 0, -EINVAL for bad
 * options, or -ESHUTDOWN once kc_client_close() was called; the callback
 * runs only when 0 is returned.  *ret_req (may be NULL) stays valid until the
 * callback returns.  A 401 with a token file re-reads the file and, when the
 * token changed, retries once at once (also for requests not marked retry);
 * with an exec credential plugin, a request waits for the plugin's first
 * credential, and a 401 runs the plugin again and retries once.
 * Safe to call from any callback of this client, including on_data.
 */
int kc_client_request(struct kc_client *c, const struct kc_request_options *o, kc_response_cb cb,
		      void *userdata, struct kc_request **ret_req);
/* Aborts a pending request; its callback then runs with -ECANCELED, later
 * from the loop, exactly once (also when it had finished but its callback
 * had not run yet).  Safe from inside on_data. */
void kc_request_cancel(struct kc_request *r);
/* The HTTP status of a streaming request once headers arrived, else 0. */
long kc_request_http_status(const struct kc_request *r);
/* Its Content-Type once headers arrived (valid until the next call into the client), else NULL. */
const char *kc_request_content_type(const struct kc_request *r);

/* Observes every finished HTTP exchange (each attempt), for metrics. */
typedef void (*kc_client_observer)(const char *verb, const char *resource, long http_status,
				   uint64_t duration_ms, void *userdata);
void kc_client_set_observer(struct kc_client *c, kc_client_observer fn, void *userdata);

/*
 * The loop time (uv_now) when the API server last answered: a response below
 * 500, or data of a streamed one.  It is the client's creation time until the
 * first answer.  The health probes keep it fresh on a healthy connection even
 * when nothing else is asked, so a stale value means the server is out of reach
 * (for readiness and liveness probes).
 */
uint64_t kc_client_last_success_ms(const struct kc_client *c);
/* read_idle_ms + ping_timeout_ms (defaults applied): how long a dead connection can go
 * unnoticed, the unit of the controller's readiness and liveness bounds. */
uint64_t kc_client_health_window_ms(const struct kc_client *c);
/* How many connections the health checks found silent and closed. */
uint64_t kc_client_dead_connections(const struct kc_client *c);
/* How many times the exec credential plugin was started (for tests and logs). */
unsigned kc_client_exec_runs(const struct kc_client *c);

/* "HTTP/2" or "HTTP/1.1": the protocol of the most recent response (for logs and tests). */
const char *kc_client_last_protocol(const struct kc_client *c);

/* Percent-escapes a query value (selectors, continue tokens); the caller frees the result. */
char *kc_escape_query(const char *s);

#endif
