/*
 * Private to the HTTP client of kc_http.h, which is several files, one job
 * each: kc_http.c (the public API: creating and closing a client, queueing and
 * cancelling requests), kc_http_sched.c (the request lifecycle: the scheduler,
 * the client-side rate limiter, attempts and their retries), kc_http_glue.c
 * (libcurl's multi interface driven by libuv, the per-transfer callbacks and
 * the easy handle's options), kc_http_token.c (the bearer token and its
 * refresh), kc_http_exec.c (exec credential plugins) and kc_http_health.c
 * (probes that find and close dead connections).  This header is what they
 * share; nothing else includes it.
 */
#ifndef KC_HTTP_INT_H
#define KC_HTTP_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "kc_exec.h"
#include "kc_http.h"
#include "kc_ratelimit.h"

#define ERRMSG_MAX 512

/* An intrusive circular doubly-linked list. */
struct link {
	struct link *prev, *next;
};

static inline void list_init(struct link *h)
{
	h->prev = h->next = h;
}

static inline bool list_empty(const struct link *h)
{
	return h->next == h;
}

static inline void list_add_tail(struct link *h, struct link *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void list_del(struct link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

enum req_state {
	REQ_WAITING, /* in c->waiting until due_ms: rate limiter or retry backoff */
	REQ_RUNNING, /* its easy handle is in the multi handle */
	REQ_DONE,    /* in c->done, callback not yet delivered */
};

struct kc_request {
	struct kc_client *client;
	struct link all;   /* c->requests */
	struct link queue; /* c->waiting or c->done */
	enum req_state state;

	CURL *easy;
	struct curl_slist *headers; /* rebuilt for each attempt (Authorization) */
	char *url;
	char *body;
	size_t body_len;
	char *method;
	char *content_type;
	char *accept;
	char *verb;
	char *resource;
	uint64_t timeout_ms;
	size_t max_body;
	bool retry;
	bool priority; /* takes its tokens from c->rl_priority */
	kc_data_cb on_data;
	kc_response_cb cb;
	void *userdata;

	uint64_t due_ms;
	bool rl_reserved;      /* holds a rate limiter token for its next start */
	bool cancel_requested; /* a running transfer to be removed by the scheduler */
	bool reauthed;	       /* the one retry after a 401 was used */
	bool exec_wait;	       /* waits for the exec plugin's credential */
	uint64_t token_gen;    /* token generation sent with the current attempt */
	unsigned attempts;
	uint64_t attempt_start_ms;

	long http_status;
	uint64_t retry_after_ms;
	int error;	 /* final transport error */
	int abort_error; /* why our write callback stopped the transfer */
	struct kc_buf resp;
	char errbuf[CURL_ERROR_SIZE];
	char errmsg[ERRMSG_MAX];
};

/* The uv_poll_t of one socket, assigned to it with curl_multi_assign. */
struct sock {
	uv_poll_t poll;
	struct kc_client *client;
	curl_socket_t fd;
	struct link link;      /* c->socks */
	uint64_t last_read_ms; /* loop time of the last readable event (or of its creation) */
	bool closed_dead;      /* shut down by the health checks */
};

struct kc_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t curl_timer;
	uv_timer_t sched_timer;
	uv_timer_t health_timer;
	struct link requests;
	struct link waiting;
	struct link done;
	struct link socks;
	unsigned n_cancel; /* running requests with cancel_requested */

	struct kc_config cfg; /* deep copy */
	char *ca_source;      /* for error messages: where trusted CAs come from */
	char *connect_to;     /* "name:port:host:port" when tls-server-name is set */
	char *url_base;	      /* server, or https://tls-server-name:port with connect_to */
	struct curl_slist *connect_to_list;
	struct kc_client_options opts;
	char *user_agent;

	char *token; /* current bearer token (never logged) */
	uint64_t token_gen;
	struct stat token_st; /* of the token file when last read */
	bool token_st_valid;
	bool token_warned;

	/* The exec credential plugin (kc_http_exec.c). */
	struct kc_exec_run *exec_run;	     /* the run in progress, or NULL */
	struct kc_exec_credential exec_cred; /* the cached credential (never logged) */
	bool exec_have;			     /* exec_cred holds one */
	bool exec_stale;		     /* a 401 refused it */
	int64_t exec_got_ms;		     /* wall clock when it came */
	uint64_t exec_retry_at_ms;	     /* after a failed run, no new one before this */
	uint64_t exec_backoff_ms;
	unsigned exec_runs;
	char exec_error[ERRMSG_MAX]; /* why the last run failed */

	struct kc_ratelimit rl;
	struct kc_ratelimit rl_priority;
	uint64_t rng;

	uint64_t last_success_ms;  /* see kc_client_last_success_ms() */
	bool multiplexed;          /* the server answered over HTTP/2: its connections are checked */
	struct kc_request *probe;  /* the health probe in flight, or NULL */
	uint64_t probe_sent_ms;    /* 0 = never */
	uint64_t dead_connections;

	kc_client_observer observer;
	void *observer_data;
	const char *last_protocol;

	bool closing;
	bool torn_down;
	unsigned open_handles; /* uv handles not yet closed */
	void (*close_done)(void *);
	void *close_data;
};

static inline uint64_t now_ms(struct kc_client *c)
{
	uv_update_time(c->loop);
	return uv_now(c->loop);
}

/* The client-side rate limiter r takes its tokens from. */
static inline struct kc_ratelimit *req_limiter(struct kc_request *r)
{
	return r->priority ? &r->client->rl_priority : &r->client->rl;
}

static inline bool is_2xx(long s)
{
	return s >= 200 && s < 300;
}

/* kc_http.c: frees what kc_client_new() copied or derived from the configuration. */
void kc_http_free_settings(struct kc_client *c);

/* kc_http_glue.c: curl <-> uv. */
void kc_http_curl_global(void);
int kc_http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp);
int kc_http_timer_cb(CURLM *multi, long timeout_ms, void *userp);
/* The close callback of every uv handle of a client; frees the client after
 * the last one once it is torn down. */
void kc_http_on_handle_closed(uv_handle_t *h);
/* One handle the client counted in open_handles is closed (the same as above, for
 * handles whose data is not the client). */
void kc_http_handle_released(struct kc_client *c);
void kc_http_close_sock(struct sock *s);
/* Sets the options of r's easy handle that stay the same for every attempt. */
void kc_http_setup_easy(struct kc_request *r);
/* curl's result as kc_http.h's errno values; *ret_connection_error says
 * whether the connection failed (worth a retry). */
int kc_http_map_curl_error(CURLcode rc, bool *ret_connection_error);

/* kc_http_sched.c: the request lifecycle. */
/* Arms the scheduler timer for the earliest thing it has to do. */
void kc_http_schedule(struct kc_client *c);
/* Reads every finished transfer; called after each curl_multi_socket_action. */
void kc_http_check_multi_info(struct kc_client *c);
/* r is done; its callback is delivered from the scheduler. */
void kc_http_finish(struct kc_request *r, int error);
/* r waits (rate limiter, backoff) until due_ms, then starts an attempt. */
void kc_http_wait_until(struct kc_request *r, uint64_t due_ms);

/* kc_http_health.c: the health checks. */
int kc_http_health_start(struct kc_client *c);
/* The server answered r (headers of a response, or data of a stream): a sign of life
 * for the readiness checks; an HTTP/2 answer turns the connection checks on. */
void kc_http_health_answered(struct kc_request *r, bool headers);

/* kc_http_token.c: the bearer token. */
void kc_http_refresh_token(struct kc_client *c, bool force);
void kc_http_build_headers(struct kc_request *r);

/* kc_http_exec.c: the exec credential plugin. */
/* Whether r may start now: 1; 0 when it waits for a credential (r->due_ms set,
 * r back in the waiting list by the caller); -EACCES when the plugin cannot run
 * (r->errmsg set). */
int kc_http_exec_ready(struct kc_request *r, uint64_t now);
/* The credential with this generation got a 401: run the plugin again before the next attempt. */
void kc_http_exec_unauthorized(struct kc_client *c, uint64_t token_gen);
/* Sets the plugin's client certificate, if it gave one, on r's easy handle. */
void kc_http_exec_apply(struct kc_request *r);
/* Whether the cached credential may be used (there is one, not refused, not expired). */
bool kc_http_exec_usable(const struct kc_client *c);
/* Kills a running plugin, closes its handles and wipes the credential. */
void kc_http_exec_teardown(struct kc_client *c);

#endif
