/*
 * The HTTP client (kc_http.h): libcurl's multi interface driven by libuv in
 * the pattern of curl's docs/examples/multi-uv.c.  Each socket curl opens gets
 * a uv_poll_t (CURLMOPT_SOCKETFUNCTION), curl's own timeout is one uv_timer_t
 * (CURLMOPT_TIMERFUNCTION), and completed transfers are read with
 * curl_multi_info_read after every curl_multi_socket_action.
 *
 * Everything that would otherwise call into curl_multi_* from inside a curl
 * callback or from inside a caller's function (starting a request, cancelling
 * one, delivering a callback, retrying after a backoff, waiting for the rate
 * limiter) goes through one scheduler timer: a request is "waiting" until its
 * due time, "running" while its easy handle is in the multi handle, and
 * "done" until its callback has been delivered from the scheduler.
 */
#include "kc_http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kc_backoff.h"
#include "kc_log.h"
#include "kc_ratelimit.h"
#include "kc_status.h"

#define TOKEN_FILE_MAX (64u * 1024u)
#define ERRMSG_MAX 512

/* An intrusive circular doubly-linked list. */
struct link {
	struct link *prev, *next;
};

static void list_init(struct link *h)
{
	h->prev = h->next = h;
}

static bool list_empty(const struct link *h)
{
	return h->next == h;
}

static void list_add_tail(struct link *h, struct link *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static void list_del(struct link *n)
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
	char *verb;
	char *resource;
	uint64_t timeout_ms;
	size_t max_body;
	bool retry;
	kc_data_cb on_data;
	kc_response_cb cb;
	void *userdata;

	uint64_t due_ms;
	bool rl_reserved;      /* holds a rate limiter token for its next start */
	bool cancel_requested; /* a running transfer to be removed by the scheduler */
	bool reauthed;	       /* the one retry after a 401 was used */
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
	struct link link; /* c->socks */
};

struct kc_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t curl_timer;
	uv_timer_t sched_timer;
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

	struct kc_ratelimit rl;
	uint64_t rng;

	kc_client_observer observer;
	void *observer_data;
	const char *last_protocol;

	bool closing;
	bool torn_down;
	unsigned open_handles; /* uv handles not yet closed */
	void (*close_done)(void *);
	void *close_data;
};

static void schedule(struct kc_client *c);
static void check_multi_info(struct kc_client *c);

/* --- small helpers ------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
	return s ? kc_xstrdup(s) : NULL;
}

static char *dup_mem(const char *s, size_t n)
{
	return s ? kc_xstrndup(s, n) : NULL;
}

static uint64_t now_ms(struct kc_client *c)
{
	uv_update_time(c->loop);
	return uv_now(c->loop);
}

static void copy_config(struct kc_config *dst, const struct kc_config *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->server = dup_or_null(src->server);
	dst->tls_server_name = dup_or_null(src->tls_server_name);
	dst->ca_file = dup_or_null(src->ca_file);
	dst->ca_data = dup_mem(src->ca_data, src->ca_data_len);
	dst->ca_data_len = src->ca_data_len;
	dst->client_cert_file = dup_or_null(src->client_cert_file);
	dst->client_key_file = dup_or_null(src->client_key_file);
	dst->client_cert_data = dup_mem(src->client_cert_data, src->client_cert_data_len);
	dst->client_cert_data_len = src->client_cert_data_len;
	dst->client_key_data = dup_mem(src->client_key_data, src->client_key_data_len);
	dst->client_key_data_len = src->client_key_data_len;
	dst->token = dup_or_null(src->token);
	dst->token_file = dup_or_null(src->token_file);
	dst->ns = dup_or_null(src->ns);
	dst->source = dup_or_null(src->source);
	dst->insecure_skip_tls_verify = src->insecure_skip_tls_verify;
}

/* Drops trailing whitespace (token files usually end with a newline). */
static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/*
 * Re-reads the token file when its identity, size or mtime changed (or when
 * forced after a 401), so rotated service-account tokens are picked up
 * without a restart.  An unreadable file keeps the previous token: a rotation
 * in progress should not turn into unauthenticated requests.
 */
static void refresh_token(struct kc_client *c, bool force)
{
	struct stat st;
	char *data = NULL;
	int r;

	if (!c->cfg.token_file)
		return;
	if (stat(c->cfg.token_file, &st) < 0) {
		if (!c->token_warned)
			kc_log_warn("token file %s: %s; keeping the previous token", c->cfg.token_file,
				    strerror(errno));
		c->token_warned = true;
		return;
	}
	if (!force && c->token_st_valid && st.st_ino == c->token_st.st_ino &&
	    st.st_dev == c->token_st.st_dev && st.st_size == c->token_st.st_size &&
	    st.st_mtim.tv_sec == c->token_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_st.st_mtim.tv_nsec)
		return;
	r = kc_read_file(c->cfg.token_file, TOKEN_FILE_MAX, &data, NULL);
	if (r < 0) {
		if (!c->token_warned)
			kc_log_warn("token file %s: %s; keeping the previous token", c->cfg.token_file,
				    strerror(-r));
		c->token_warned = true;
		return;
	}
	c->token_warned = false;
	c->token_st = st;
	c->token_st_valid = true;
	rstrip(data);
	if (!c->token || strcmp(c->token, data) != 0) {
		free(c->token);
		c->token = data;
		c->token_gen++;
		kc_log_info(4, "token file %s: loaded a new token", c->cfg.token_file);
	} else {
		free(data);
	}
}

/* "list"/"get"/... and "pods" for metrics when the caller did not say. */
static char *derive_verb(const char *method, const char *path)
{
	char *v = kc_xstrdup(method);

	if (strstr(path, "watch=true") || strstr(path, "watch=1"))
		return free(v), kc_xstrdup("watch");
	for (char *p = v; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return v;
}

static char *derive_resource(const char *path)
{
	const char *seg[8];
	size_t len[8], n = 0, i = 0;
	const char *p = path;

	while (*p == '/' && n < KC_ARRAY_SIZE(seg)) {
		const char *s = ++p;

		while (*p && *p != '/' && *p != '?')
			p++;
		seg[n] = s;
		len[n++] = (size_t)(p - s);
		if (*p == '?')
			break;
	}
	if (n > 0 && len[0] == 3 && strncmp(seg[0], "api", 3) == 0)
		i = 2;
	else if (n > 0 && len[0] == 4 && strncmp(seg[0], "apis", 4) == 0)
		i = 3;
	if (i + 2 < n && len[i] == 10 && strncmp(seg[i], "namespaces", 10) == 0)
		i += 2;
	if (i < n && len[i] > 0)
		return kc_xstrndup(seg[i], len[i]);
	return kc_xstrdup("unknown");
}

/* --- curl <-> uv glue (multi-uv.c) --------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
	struct kc_client *c = h->data;

	if (h->type == UV_POLL)
		free(kc_container_of((uv_poll_t *)h, struct sock, poll));
	if (--c->open_handles == 0 && c->torn_down) {
		void (*done)(void *) = c->close_done;
		void *data = c->close_data;

		free(c);
		if (done)
			done(data);
	}
}

static void close_sock(struct sock *s)
{
	list_del(&s->link);
	uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct sock *s = kc_container_of(h, struct sock, poll);
	struct kc_client *c = s->client;
	int running, flags = 0;
	CURLMcode mc;

	/* A failed poll (the peer reset the socket, say) is reported to curl as
	 * an error on that socket, which then fails the transfer cleanly. */
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	mc = curl_multi_socket_action(c->multi, s->fd, flags, &running);
	if (mc != CURLM_OK)
		kc_log_error("curl_multi_socket_action: %s", curl_multi_strerror(mc));
	check_multi_info(c);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct kc_client *c = userp;
	struct sock *s = socketp;
	int events = 0, r;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			uv_poll_stop(&s->poll);
			close_sock(s);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = kc_xcalloc(1, sizeof(*s));
		s->client = c;
		s->fd = fd;
		r = uv_poll_init_socket(c->loop, &s->poll, fd);
		if (r < 0) {
			kc_log_error("uv_poll_init_socket(%d): %s", (int)fd, uv_strerror(r));
			free(s);
			return -1;
		}
		s->poll.data = c;
		c->open_handles++;
		list_add_tail(&c->socks, &s->link);
		curl_multi_assign(c->multi, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	r = uv_poll_start(&s->poll, events, on_poll);
	if (r < 0) {
		kc_log_error("uv_poll_start(%d): %s", (int)fd, uv_strerror(r));
		return -1;
	}
	return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
	struct kc_client *c = kc_container_of(t, struct kc_client, curl_timer);
	int running;
	CURLMcode mc;

	mc = curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	if (mc != CURLM_OK)
		kc_log_error("curl_multi_socket_action: %s", curl_multi_strerror(mc));
	check_multi_info(c);
}

/* curl asks for its timeout to be (re)armed; the uv timer calls back from
 * the loop, never from inside this callback. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct kc_client *c = userp;
	int r;

	(void)multi;
	if (timeout_ms < 0) {
		uv_timer_stop(&c->curl_timer);
		return 0;
	}
	r = uv_timer_start(&c->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
	if (r < 0) {
		kc_log_error("uv_timer_start: %s", uv_strerror(r));
		return -1;
	}
	return 0;
}

/* --- per-transfer callbacks --------------------------------------------- */

static bool is_2xx(long s)
{
	return s >= 200 && s < 300;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userp)
{
	struct kc_request *r = userp;
	size_t len = size * n;

	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue, say) starts over. */
		r->retry_after_ms = 0;
		r->http_status = 0;
	} else if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
		char tmp[32];
		size_t i = 12, k = 0;

		while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		while (i < len && k + 1 < sizeof(tmp) && isdigit((unsigned char)buf[i]))
			tmp[k++] = buf[i++];
		tmp[k] = '\0';
		/* Only delta-seconds: the API server never sends an HTTP date here. */
		if (k > 0 && k < 10)
			r->retry_after_ms = strtoull(tmp, NULL, 10) * 1000u;
	} else if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
		long code = 0;

		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200)
			r->http_status = code;
	}
	return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *userp)
{
	struct kc_request *r = userp;
	size_t len = size * n;
	int e;

	if (r->cancel_requested) {
		r->abort_error = -ECANCELED;
		return 0;
	}
	if (r->http_status == 0)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
	if (r->on_data && is_2xx(r->http_status)) {
		e = r->on_data(r, buf, len, r->userdata);
		if (e < 0) {
			r->abort_error = e;
			return 0;
		}
		/* The callback may have cancelled the request. */
		if (r->cancel_requested) {
			r->abort_error = -ECANCELED;
			return 0;
		}
		return len;
	}
	if (kc_buf_append(&r->resp, buf, len) < 0) {
		r->abort_error = -EMSGSIZE;
		return 0;
	}
	return len;
}

/* --- request lifecycle -------------------------------------------------- */

static void finish(struct kc_request *r, int error)
{
	struct kc_client *c = r->client;

	r->error = error;
	r->state = REQ_DONE;
	list_add_tail(&c->done, &r->queue);
	schedule(c);
}

static void wait_until(struct kc_request *r, uint64_t due_ms)
{
	r->due_ms = due_ms;
	r->state = REQ_WAITING;
	list_add_tail(&r->client->waiting, &r->queue);
	schedule(r->client);
}

static void free_request(struct kc_request *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->url);
	free(r->body);
	free(r->method);
	free(r->content_type);
	free(r->verb);
	free(r->resource);
	kc_buf_done(&r->resp);
	free(r);
}

/* The headers of one attempt: the Authorization value may change between
 * attempts when the token file is rotated. */
static void build_headers(struct kc_request *r)
{
	struct kc_client *c = r->client;
	struct curl_slist *h = NULL;
	char *ct;

	curl_slist_free_all(r->headers);
	h = curl_slist_append(h, "Accept: application/json");
	/* No 100-continue round trip: the API server answers bodies directly. */
	h = curl_slist_append(h, "Expect:");
	if (r->body) {
		ct = kc_xasprintf("Content-Type: %s", r->content_type ? r->content_type : "application/json");
		h = curl_slist_append(h, ct);
		free(ct);
	}
	refresh_token(c, false);
	if (c->token && *c->token) {
		char *auth = kc_xasprintf("Authorization: Bearer %s", c->token);

		h = curl_slist_append(h, auth);
		/* The header held the token: wipe our copy before freeing it. */
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	if (!h)
		kc_log_fatal("out of memory building request headers");
	r->headers = h;
	r->token_gen = c->token_gen;
}

static void start_attempt(struct kc_request *r)
{
	struct kc_client *c = r->client;
	CURLMcode mc;

	r->attempts++;
	r->http_status = 0;
	r->retry_after_ms = 0;
	r->abort_error = 0;
	r->errbuf[0] = '\0';
	kc_buf_reset(&r->resp);
	build_headers(r);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	r->attempt_start_ms = now_ms(c);
	r->state = REQ_RUNNING;
	mc = curl_multi_add_handle(c->multi, r->easy);
	if (mc != CURLM_OK) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s %s: curl_multi_add_handle: %s", r->method, r->url,
			 curl_multi_strerror(mc));
		finish(r, -EIO);
	}
}

static bool retryable_status(long s)
{
	return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static bool tls_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return true;
	default:
		return false;
	}
}

/* curl's result in one place: errno values as kc_http.h lists them. */
static int map_curl_error(CURLcode rc, bool *ret_connection_error)
{
	*ret_connection_error = false;
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return -EMSGSIZE;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		*ret_connection_error = true;
		return -ECONNREFUSED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		*ret_connection_error = true;
		return -EIO;
	default:
		return tls_error(rc) ? -EPROTO : -EIO;
	}
}

static void maybe_retry_or_finish(struct kc_request *r, int error, bool retryable)
{
	struct kc_client *c = r->client;

	if (retryable && r->retry && !c->closing && r->attempts < c->opts.max_attempts) {
		uint64_t d = kc_backoff_delay(c->opts.backoff_initial_ms, c->opts.backoff_max_ms, r->attempts,
					      &c->rng);

		d = kc_backoff_with_retry_after(d, r->retry_after_ms);
		kc_log_info(3, "%s %s: attempt %u got %ld%s%s; retrying in %llu ms", r->method, r->url,
			    r->attempts, r->http_status, r->errbuf[0] ? ": " : "", r->errbuf,
			    (unsigned long long)d);
		wait_until(r, now_ms(c) + d);
		return;
	}
	finish(r, error);
}

/* One attempt ended (its easy handle was already removed from the multi). */
static void attempt_done(struct kc_request *r, CURLcode rc)
{
	struct kc_client *c = r->client;
	uint64_t dur = now_ms(c) - r->attempt_start_ms;
	bool conn_err;
	long ver = 0;
	int error;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
	if (curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver) == CURLE_OK && ver != 0)
		c->last_protocol = ver == CURL_HTTP_VERSION_2_0	  ? "HTTP/2"
				   : ver == CURL_HTTP_VERSION_3	  ? "HTTP/3"
				   : ver == CURL_HTTP_VERSION_1_0 ? "HTTP/1.0"
								  : "HTTP/1.1";
	/* What curl negotiated, per answer: how a test (or a user) tells HTTP/2 from HTTP/1.1. */
	kc_log_info(6, "%s %s: %ld in %llu ms (%s)", r->method, r->url, rc == CURLE_OK ? r->http_status : 0L,
		    (unsigned long long)dur, ver != 0 ? c->last_protocol : "no answer");
	if (c->observer)
		c->observer(r->verb, r->resource, rc == CURLE_OK ? r->http_status : 0, dur, c->observer_data);

	if (r->cancel_requested) {
		r->cancel_requested = false;
		c->n_cancel--;
		finish(r, -ECANCELED);
		return;
	}
	if (rc == CURLE_WRITE_ERROR && r->abort_error) {
		if (r->abort_error == -EMSGSIZE)
			snprintf(r->errmsg, sizeof(r->errmsg),
				 "%s %s: response body over the bound of %zu bytes", r->method, r->url,
				 r->max_body);
		finish(r, r->abort_error);
		return;
	}
	error = map_curl_error(rc, &conn_err);
	if (error == -EPROTO) {
		if (rc == CURLE_PEER_FAILED_VERIFICATION)
			snprintf(
			    r->errmsg, sizeof(r->errmsg),
			    "%s %s: TLS: the server certificate is not trusted by the configured CA (%s): %s",
			    r->method, r->url, c->ca_source,
			    r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
		else
			snprintf(r->errmsg, sizeof(r->errmsg),
				 "%s %s: TLS handshake failed (trusted CA: %s; client certificate: %s): %s",
				 r->method, r->url, c->ca_source,
				 c->cfg.client_cert_file   ? c->cfg.client_cert_file
				 : c->cfg.client_cert_data ? "client-certificate-data"
							   : "none",
				 r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
		finish(r, error);
		return;
	}
	if (error == -EMSGSIZE) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s %s: response body over the bound of %zu bytes",
			 r->method, r->url, r->max_body);
		finish(r, error);
		return;
	}
	if (error < 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s %s: %s", r->method, r->url,
			 r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
		r->http_status = 0;
		maybe_retry_or_finish(r, error, conn_err);
		return;
	}
	if (r->http_status == 401 && c->cfg.token_file && !r->reauthed) {
		/* The token may have been rotated since we last looked: re-read it
		 * and, if it changed, retry this request once with the new one. */
		r->reauthed = true;
		refresh_token(c, true);
		if (c->token_gen != r->token_gen && !c->closing) {
			kc_log_info(2, "%s %s: 401 Unauthorized; retrying once with the re-read token",
				    r->method, r->url);
			wait_until(r, now_ms(c));
			return;
		}
	}
	maybe_retry_or_finish(r, 0, retryable_status(r->http_status));
}

/* Reads every finished transfer; called after each curl_multi_socket_action. */
static void check_multi_info(struct kc_client *c)
{
	struct kc_request *r;
	CURLMsg *msg;
	char *priv;
	int pending;

	while ((msg = curl_multi_info_read(c->multi, &pending))) {
		CURL *easy;
		CURLcode rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		rc = msg->data.result;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		r = (struct kc_request *)(void *)priv;
		curl_multi_remove_handle(c->multi, easy);
		attempt_done(r, rc);
	}
}

/* --- the scheduler ------------------------------------------------------ */

static void teardown(struct kc_client *c);

static void deliver(struct kc_request *r)
{
	struct kc_response resp;
	struct kc_status st;
	bool have_status = false;

	memset(&resp, 0, sizeof(resp));
	resp.error = r->error;
	resp.http_status = r->error ? 0 : r->http_status;
	if (r->error == -ECANCELED && !r->errmsg[0])
		snprintf(r->errmsg, sizeof(r->errmsg), "%s %s: cancelled", r->method, r->url);
	resp.error_message = r->errmsg[0] ? r->errmsg : NULL;
	if (!r->error && (!r->on_data || !is_2xx(r->http_status))) {
		resp.body = r->resp.data ? r->resp.data : "";
		resp.body_len = r->resp.len;
	}
	if (!r->error && !is_2xx(r->http_status) && r->resp.len > 0 &&
	    kc_status_decode(r->resp.data, r->resp.len, &st) == 0) {
		have_status = true;
		resp.status = &st;
	}
	resp.retry_after_ms = r->retry_after_ms;
	resp.attempts = r->attempts;
	r->cb(r, &resp, r->userdata);
	if (have_status)
		kc_status_done(&st);
}

/* Runs from sched_timer: cancellations, due starts, then callbacks. */
static void run_pending(uv_timer_t *t)
{
	struct kc_client *c = kc_container_of(t, struct kc_client, sched_timer);
	struct link *l, *next;
	uint64_t now = now_ms(c);

	if (c->n_cancel > 0) {
		for (l = c->requests.next; l != &c->requests; l = next) {
			struct kc_request *r = kc_container_of(l, struct kc_request, all);

			next = l->next;
			if (r->state == REQ_RUNNING && r->cancel_requested) {
				curl_multi_remove_handle(c->multi, r->easy);
				if (c->observer)
					c->observer(r->verb, r->resource, 0, now - r->attempt_start_ms,
						    c->observer_data);
				c->n_cancel--;
				r->cancel_requested = false;
				finish(r, -ECANCELED);
			}
		}
	}
	for (l = c->waiting.next; l != &c->waiting; l = next) {
		struct kc_request *r = kc_container_of(l, struct kc_request, queue);

		next = l->next;
		if (r->due_ms > now)
			continue;
		list_del(&r->queue);
		if (!r->rl_reserved) {
			uint64_t wait = kc_ratelimit_reserve(&c->rl, now);

			r->rl_reserved = true;
			if (wait > 0) {
				kc_log_info(5, "%s %s: client-side rate limiter: waiting %llu ms", r->method,
					    r->url, (unsigned long long)wait);
				wait_until(r, now + wait);
				continue;
			}
		}
		r->rl_reserved = false;
		start_attempt(r);
	}
	/* Callbacks last: they may start, cancel or close anything. */
	while (!list_empty(&c->done)) {
		struct kc_request *r = kc_container_of(c->done.next, struct kc_request, queue);

		list_del(&r->queue);
		list_del(&r->all);
		deliver(r);
		free_request(r);
	}
	if (c->closing && list_empty(&c->requests))
		teardown(c);
	else
		schedule(c);
}

/* Arms sched_timer for the earliest thing the scheduler has to do. */
static void schedule(struct kc_client *c)
{
	uint64_t due = UINT64_MAX, now;
	struct link *l;
	int r;

	if (c->torn_down)
		return;
	if (!list_empty(&c->done) || c->n_cancel > 0 || (c->closing && list_empty(&c->requests))) {
		due = 0;
	} else {
		for (l = c->waiting.next; l != &c->waiting; l = l->next) {
			struct kc_request *q = kc_container_of(l, struct kc_request, queue);

			if (q->due_ms < due)
				due = q->due_ms;
		}
	}
	if (due == UINT64_MAX) {
		uv_timer_stop(&c->sched_timer);
		return;
	}
	now = uv_now(c->loop);
	r = uv_timer_start(&c->sched_timer, run_pending, due > now ? due - now : 0, 0);
	if (r < 0)
		kc_log_fatal("uv_timer_start: %s", uv_strerror(r));
}

static void teardown(struct kc_client *c)
{
	struct link *l;

	c->torn_down = true;
	/* curl_multi_cleanup closes the cached connections and tells socket_cb
	 * to drop their polls; any poll it did not mention is closed after. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	while (!list_empty(&c->socks)) {
		l = c->socks.next;
		close_sock(kc_container_of(l, struct sock, link));
	}
	uv_close((uv_handle_t *)&c->curl_timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->sched_timer, on_handle_closed);
	curl_slist_free_all(c->connect_to_list);
	free(c->ca_source);
	free(c->connect_to);
	free(c->url_base);
	free(c->user_agent);
	if (c->token)
		memset(c->token, 0, strlen(c->token));
	free(c->token);
	kc_config_done(&c->cfg);
}

/* --- public API --------------------------------------------------------- */

static void curl_global(void)
{
	static bool done;

	/* Once per process; the loop is single-threaded, so no race here. */
	if (!done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			kc_log_fatal("curl_global_init failed");
		done = true;
	}
}

/*
 * Splits "https://host:port/..." for tls-server-name: curl 7.88 has no
 * option to verify against another name than the URL's host, so the URL
 * names tls-server-name and CURLOPT_CONNECT_TO sends it to the real host.
 */
static int setup_server_name(struct kc_client *c, struct kc_error *err)
{
	const char *s = c->cfg.server, *host, *end, *port = NULL;
	char *h;

	if (!c->cfg.tls_server_name || !*c->cfg.tls_server_name) {
		c->url_base = kc_xstrdup(s);
		return 0;
	}
	host = strstr(s, "://");
	if (!host)
		return kc_error_set(err, -EINVAL, "%s: server %s: not a URL", c->cfg.source, s);
	host += 3;
	if (*host == '[') {
		end = strchr(host, ']');
		if (!end)
			return kc_error_set(err, -EINVAL, "%s: server %s: bad IPv6 address", c->cfg.source,
					    s);
		end++;
	} else {
		end = host + strcspn(host, ":/");
	}
	if (*end == ':')
		port = end + 1;
	h = kc_xstrndup(host, (size_t)(end - host));
	if (port) {
		size_t pl = strcspn(port, "/");
		char *p = kc_xstrndup(port, pl);

		c->connect_to = kc_xasprintf("%s:%s:%s:%s", c->cfg.tls_server_name, p, h, p);
		c->url_base = kc_xasprintf("https://%s:%s", c->cfg.tls_server_name, p);
		free(p);
	} else {
		c->connect_to = kc_xasprintf("%s:443:%s:443", c->cfg.tls_server_name, h);
		c->url_base = kc_xasprintf("https://%s", c->cfg.tls_server_name);
	}
	free(h);
	c->connect_to_list = curl_slist_append(NULL, c->connect_to);
	if (!c->connect_to_list)
		kc_log_fatal("out of memory");
	return 0;
}

int kc_client_new(uv_loop_t *loop, const struct kc_config *cfg, const struct kc_client_options *opts,
		  struct kc_client **ret, struct kc_error *err)
{
	struct kc_client *c;
	int r;

	if (!cfg || !cfg->server || !*cfg->server)
		return kc_error_set(err, -EINVAL, "no API server URL configured");
	curl_global();
	c = kc_xcalloc(1, sizeof(*c));
	c->loop = loop;
	list_init(&c->requests);
	list_init(&c->waiting);
	list_init(&c->done);
	list_init(&c->socks);
	copy_config(&c->cfg, cfg);
	if (!c->cfg.source)
		c->cfg.source = kc_xstrdup("configuration");
	if (opts)
		c->opts = *opts;
	if (c->opts.qps == 0)
		c->opts.qps = 50;
	if (c->opts.burst == 0)
		c->opts.burst = 100;
	if (c->opts.timeout_ms == 0)
		c->opts.timeout_ms = 30000;
	if (c->opts.max_body == 0)
		c->opts.max_body = 64u * 1024u * 1024u;
	if (c->opts.max_attempts == 0)
		c->opts.max_attempts = 5;
	if (c->opts.backoff_initial_ms == 0)
		c->opts.backoff_initial_ms = 200;
	if (c->opts.backoff_max_ms == 0)
		c->opts.backoff_max_ms = 10000;
	c->user_agent = kc_xstrdup(c->opts.user_agent ? c->opts.user_agent : "device-descheduler");
	c->opts.user_agent = c->user_agent;
	c->last_protocol = "";
	c->rng = kc_monotonic_ms() ^ ((uint64_t)(uintptr_t)c << 16);

	if (c->cfg.ca_file)
		c->ca_source = kc_xasprintf("CA file %s", c->cfg.ca_file);
	else if (c->cfg.ca_data)
		c->ca_source = kc_xasprintf("certificate-authority-data of %s", c->cfg.source);
	else
		c->ca_source = kc_xstrdup("the system CA bundle");
	if (c->cfg.insecure_skip_tls_verify)
		kc_log_warn(
		    "%s: insecure-skip-tls-verify is set: the API server's certificate is NOT verified",
		    c->cfg.source);

	r = setup_server_name(c, err);
	if (r < 0)
		goto free_config;
	if (!c->cfg.token_file && c->cfg.token)
		c->token = kc_xstrdup(c->cfg.token);
	refresh_token(c, true);
	if (!c->token && c->cfg.token) /* the file was unreadable: fall back to the static token */
		c->token = kc_xstrdup(c->cfg.token);

	c->multi = curl_multi_init();
	if (!c->multi) {
		r = kc_error_set(err, -ENOMEM, "curl_multi_init failed");
		goto free_config;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	/* Watches are long-lived streams: allow many on one HTTP/2 connection. */
	curl_multi_setopt(c->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);

	r = uv_timer_init(loop, &c->curl_timer);
	if (r < 0) {
		kc_error_set(err, r, "uv_timer_init: %s", uv_strerror(r));
		goto cleanup_multi;
	}
	c->curl_timer.data = c;
	c->open_handles++;
	r = uv_timer_init(loop, &c->sched_timer);
	if (r < 0) {
		kc_error_set(err, r, "uv_timer_init: %s", uv_strerror(r));
		goto close_curl_timer;
	}
	c->sched_timer.data = c;
	c->open_handles++;
	kc_ratelimit_init(&c->rl, c->opts.qps, c->opts.burst, now_ms(c));
	*ret = c;
	return 0;

close_curl_timer:
	/* The handle is closed on the loop; the client is freed by its close
	 * callback once torn_down says nothing else is pending. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	c->torn_down = true;
	c->close_done = NULL;
	uv_close((uv_handle_t *)&c->curl_timer, on_handle_closed);
	free(c->ca_source);
	free(c->connect_to);
	free(c->url_base);
	curl_slist_free_all(c->connect_to_list);
	free(c->user_agent);
	free(c->token);
	kc_config_done(&c->cfg);
	return r;
cleanup_multi:
	curl_multi_cleanup(c->multi);
free_config:
	curl_slist_free_all(c->connect_to_list);
	free(c->ca_source);
	free(c->connect_to);
	free(c->url_base);
	free(c->user_agent);
	free(c->token);
	kc_config_done(&c->cfg);
	free(c);
	return r;
}

void kc_client_close(struct kc_client *c, void (*done)(void *userdata), void *userdata)
{
	struct link *l;

	if (!c || c->closing)
		return;
	c->closing = true;
	c->close_done = done;
	c->close_data = userdata;
	for (l = c->requests.next; l != &c->requests; l = l->next)
		kc_request_cancel(kc_container_of(l, struct kc_request, all));
	schedule(c);
}

static void setup_easy(struct kc_request *r)
{
	struct kc_client *c = r->client;
	CURL *e = r->easy;
	const struct kc_config *cfg = &c->cfg;

	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* Wait for a connection that may multiplex rather than opening a second one. */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	if (r->timeout_ms != UINT64_MAX)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	if (!r->on_data)
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
	if (c->connect_to_list)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, c->connect_to_list);

	if (strcmp(r->method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
		if (r->body || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
		    strcmp(r->method, "PATCH") == 0) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		}
	}

	if (cfg->insecure_skip_tls_verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	if (cfg->ca_file || cfg->ca_data) {
		/* Only the configured CA: not also the system store. */
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		if (cfg->ca_file) {
			curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
		} else {
			struct curl_blob blob = {cfg->ca_data, cfg->ca_data_len, CURL_BLOB_NOCOPY};

			curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
			curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
		}
	}
	if (cfg->client_cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->client_cert_file);
	} else if (cfg->client_cert_data) {
		struct curl_blob blob = {cfg->client_cert_data, cfg->client_cert_data_len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
	}
	curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	if (cfg->client_key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->client_key_file);
	} else if (cfg->client_key_data) {
		struct curl_blob blob = {cfg->client_key_data, cfg->client_key_data_len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
	}
	curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
}

int kc_client_request(struct kc_client *c, const struct kc_request_options *o, kc_response_cb cb,
		      void *userdata, struct kc_request **ret_req)
{
	struct kc_request *r;

	if (!c || !o || !o->method || !o->path || o->path[0] != '/' || !cb)
		return -EINVAL;
	if (c->closing)
		return -ESHUTDOWN;
	r = kc_xcalloc(1, sizeof(*r));
	r->client = c;
	r->easy = curl_easy_init();
	if (!r->easy) {
		free(r);
		return -ENOMEM;
	}
	r->url = kc_xasprintf("%s%s", c->url_base, o->path);
	r->method = kc_xstrdup(o->method);
	if (o->body) {
		r->body = kc_xstrndup(o->body, o->body_len);
		r->body_len = o->body_len;
	}
	r->content_type = dup_or_null(o->content_type);
	r->verb = o->verb ? kc_xstrdup(o->verb) : derive_verb(o->method, o->path);
	r->resource = o->resource ? kc_xstrdup(o->resource) : derive_resource(o->path);
	r->timeout_ms = o->timeout_ms ? o->timeout_ms : c->opts.timeout_ms;
	/* curl takes a long: very long timeouts mean "none". */
	if (r->timeout_ms != UINT64_MAX && r->timeout_ms > (uint64_t)LONG_MAX)
		r->timeout_ms = UINT64_MAX;
	r->max_body = o->max_body ? o->max_body : c->opts.max_body;
	r->retry = o->retry;
	r->on_data = o->on_data;
	r->cb = cb;
	r->userdata = userdata;
	kc_buf_init(&r->resp, r->max_body);
	list_init(&r->queue);
	setup_easy(r);
	list_add_tail(&c->requests, &r->all);
	wait_until(r, now_ms(c));
	if (ret_req)
		*ret_req = r;
	return 0;
}

void kc_request_cancel(struct kc_request *r)
{
	struct kc_client *c;

	if (!r)
		return;
	c = r->client;
	switch (r->state) {
	case REQ_WAITING:
		list_del(&r->queue);
		if (r->rl_reserved)
			kc_ratelimit_unreserve(&c->rl, now_ms(c));
		r->rl_reserved = false;
		finish(r, -ECANCELED);
		break;
	case REQ_RUNNING:
		/* Removed from the multi handle by the scheduler: this may be
		 * called from inside a curl callback (an on_data callback). */
		if (!r->cancel_requested) {
			r->cancel_requested = true;
			c->n_cancel++;
			schedule(c);
		}
		break;
	case REQ_DONE:
		/* Finished but not yet delivered: the caller asked for a cancel,
		 * so the callback reports one. */
		if (r->error == 0)
			r->errmsg[0] = '\0';
		r->error = -ECANCELED;
		break;
	}
}

long kc_request_http_status(const struct kc_request *r)
{
	return r ? r->http_status : 0;
}

void kc_client_set_observer(struct kc_client *c, kc_client_observer fn, void *userdata)
{
	c->observer = fn;
	c->observer_data = userdata;
}

const char *kc_client_last_protocol(const struct kc_client *c)
{
	return c->last_protocol;
}

char *kc_escape_query(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = kc_xmalloc(n * 3 + 1), *p = out;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		/* RFC 3986 unreserved characters pass; everything else is escaped. */
		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return out;
}
