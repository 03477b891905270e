/*
 * The HTTP client: libcurl's multi interface driven by a libuv loop (a
 * uv_poll_t per socket, a uv_timer_t for curl's timeout, as in curl's
 * docs/examples/multi-uv.c).  HTTP/2 over TLS when the server offers it via
 * ALPN, HTTP/1.1 otherwise, connections reused and multiplexed.  Bearer
 * tokens (re-read from the token file when it changes, and once after a 401),
 * client certificates, a client-side rate limiter (QPS and burst), per-request
 * timeouts, cancellation, bounded response bodies, and retries with
 * exponential backoff and jitter honouring Retry-After for 429 and 5xx on
 * requests marked retryable.  Nothing blocks the loop.
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

/* Observes every finished HTTP exchange (each attempt), for metrics. */
typedef void (*kc_client_observer)(const char *verb, const char *resource, long http_status,
				   uint64_t duration_ms, void *userdata);
void kc_client_set_observer(struct kc_client *c, kc_client_observer fn, void *userdata);

/* How many times the exec credential plugin was started (for tests and logs). */
unsigned kc_client_exec_runs(const struct kc_client *c);

/* "HTTP/2" or "HTTP/1.1": the protocol of the most recent response (for logs and tests). */
const char *kc_client_last_protocol(const struct kc_client *c);

/* Percent-escapes a query value (selectors, continue tokens); the caller frees the result. */
char *kc_escape_query(const char *s);

#endif
