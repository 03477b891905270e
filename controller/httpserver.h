/*
 * The metrics and health-probe HTTP servers, as controller-runtime's
 * --metrics-bind-address (default ":8080", serves /metrics) and
 * --health-probe-bind-address (default ":8081", serves /healthz and /readyz).
 *
 * libmicrohttpd runs inside the libuv loop, on the loop's thread: each server
 * is an MHD daemon in external-select mode with MHD_USE_EPOLL, its epoll fd
 * watched by a uv_poll_t (MHD_run on readiness) and a uv_timer_t armed from
 * MHD_get_timeout after every run.  So a scrape renders the live registry
 * with no lock and no snapshot, and /healthz answers only while the loop
 * turns, which is exactly what a liveness probe should measure.
 *
 *   /metrics  200, text/plain; version=0.0.4 (metrics_render)
 *   /healthz  200 "ok" when live() says so (and the loop turns), else 503 with its reason
 *   /readyz   200 "ok" when ready() says so, else 503 with ready()'s reason
 *   other     404 "404 page not found"; methods other than GET/HEAD get 405
 */
#ifndef HTTPSERVER_H
#define HTTPSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "kc_util.h"
#include "metrics.h"

#define HTTPSERVER_DEFAULT_METRICS_ADDRESS ":8080"
#define HTTPSERVER_DEFAULT_PROBE_ADDRESS ":8081"

struct httpserver;

/* Returns true when ready; otherwise writes the reason (one line, e.g.
 * "caches not synced") into reason[size] and returns false. */
typedef bool (*httpserver_ready_cb)(void *userdata, char *reason, size_t size);

struct httpserver_options {
	const char *metrics_address; /* NULL = ":8080"; "0" disables */
	const char *probe_address;   /* NULL = ":8081"; "0" disables */
	struct metrics *metrics;     /* borrowed; must outlive the server; NULL: /metrics is 404 */
	httpserver_ready_cb ready;   /* NULL = always ready */
	httpserver_ready_cb live;    /* NULL = live while the loop turns */
	void *userdata;		     /* for ready and live */
};

/*
 * Binds both listeners and starts serving on loop.  On failure nothing is left
 * open, err says which server and why ("metrics server: cannot bind :8080:
 * Address already in use") and the result is a negative errno (handles opened
 * on the way close asynchronously: run the loop before uv_loop_close).  The
 * server is owned by the caller until httpserver_close().
 */
int httpserver_new(uv_loop_t *loop, const struct httpserver_options *o, struct httpserver **ret,
		   struct kc_error *err);

/* The bound TCP port (useful with port 0), or 0 when that server is disabled. */
int httpserver_metrics_port(const struct httpserver *s);
int httpserver_probe_port(const struct httpserver *s);

/* Stops both servers (open connections are dropped), closes every handle and
 * frees s; done (may be NULL) runs from the loop once all is closed.  Accepts NULL. */
void httpserver_close(struct httpserver *s, void (*done)(void *userdata), void *userdata);

/*
 * Parses a bind address as controller-runtime does: ":8080" (every address),
 * "127.0.0.1:8080", "[::1]:8080", "localhost:0", or "0" (disabled: returns 0
 * with *ret_disabled true).  *ret_host is NULL for every address, else a new
 * string the caller frees.  Returns 0 or -EINVAL.
 */
int httpserver_parse_address(const char *addr, char **ret_host, unsigned *ret_port, bool *ret_disabled);

#endif
