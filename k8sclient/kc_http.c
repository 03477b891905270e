/*
 * The HTTP client (kc_http.h): libcurl's multi interface driven by libuv in
 * the pattern of curl's docs/examples/multi-uv.c.  Each socket curl opens gets
 * a uv_poll_t (CURLMOPT_SOCKETFUNCTION), curl's own timeout is one uv_timer_t
 * (CURLMOPT_TIMERFUNCTION), and completed transfers are read with
 * curl_multi_info_read after every curl_multi_socket_action.
 *
 * This file is the public API: creating and closing a client, queueing and
 * cancelling requests.  The scheduler and retries are in kc_http_sched.c, the
 * curl and uv glue in kc_http_glue.c, the bearer token in kc_http_token.c.
 */
#include "kc_http.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kc_http_int.h"
#include "kc_log.h"

/* --- small helpers ------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
	return s ? kc_xstrdup(s) : NULL;
}

static char *dup_mem(const char *s, size_t n)
{
	return s ? kc_xstrndup(s, n) : NULL;
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
	dst->exec = kc_exec_config_dup(src->exec);
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

/* --- public API --------------------------------------------------------- */

void kc_http_free_settings(struct kc_client *c)
{
	curl_slist_free_all(c->connect_to_list);
	free(c->ca_source);
	free(c->connect_to);
	free(c->url_base);
	free(c->user_agent);
	/* The token is a secret: wipe it before the memory goes back. */
	if (c->token)
		memset(c->token, 0, strlen(c->token));
	free(c->token);
	kc_config_done(&c->cfg);
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
	kc_http_curl_global();
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
	if (c->opts.read_idle_ms == 0)
		c->opts.read_idle_ms = 30000;
	if (c->opts.ping_timeout_ms == 0)
		c->opts.ping_timeout_ms = 15000;
	if (c->opts.exec_timeout_ms == 0)
		c->opts.exec_timeout_ms = 30000;
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
	kc_http_refresh_token(c, true);
	if (!c->token && c->cfg.token) /* the file was unreadable: fall back to the static token */
		c->token = kc_xstrdup(c->cfg.token);

	c->multi = curl_multi_init();
	if (!c->multi) {
		r = kc_error_set(err, -ENOMEM, "curl_multi_init failed");
		goto free_config;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, kc_http_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, kc_http_timer_cb);
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
	r = uv_timer_init(loop, &c->health_timer);
	if (r < 0) {
		kc_error_set(err, r, "uv_timer_init: %s", uv_strerror(r));
		uv_close((uv_handle_t *)&c->sched_timer, kc_http_on_handle_closed);
		goto close_curl_timer;
	}
	c->health_timer.data = c;
	c->open_handles++;
	kc_ratelimit_init(&c->rl, c->opts.qps, c->opts.burst, now_ms(c));
	kc_ratelimit_init(&c->rl_priority, c->opts.qps, c->opts.burst, now_ms(c));
	r = kc_http_health_start(c);
	if (r < 0) {
		kc_error_set(err, r, "uv_timer_start: %s", uv_strerror(r));
		uv_close((uv_handle_t *)&c->health_timer, kc_http_on_handle_closed);
		uv_close((uv_handle_t *)&c->sched_timer, kc_http_on_handle_closed);
		goto close_curl_timer;
	}
	*ret = c;
	return 0;

close_curl_timer:
	/* The handle is closed on the loop; the client is freed by its close
	 * callback once torn_down says nothing else is pending. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	c->torn_down = true;
	c->close_done = NULL;
	uv_close((uv_handle_t *)&c->curl_timer, kc_http_on_handle_closed);
	kc_http_free_settings(c);
	return r;
cleanup_multi:
	curl_multi_cleanup(c->multi);
free_config:
	kc_http_free_settings(c);
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
	kc_http_schedule(c);
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
	r->accept = dup_or_null(o->accept);
	r->verb = o->verb ? kc_xstrdup(o->verb) : derive_verb(o->method, o->path);
	r->resource = o->resource ? kc_xstrdup(o->resource) : derive_resource(o->path);
	r->timeout_ms = o->timeout_ms ? o->timeout_ms : c->opts.timeout_ms;
	/* curl takes a long: very long timeouts mean "none". */
	if (r->timeout_ms != UINT64_MAX && r->timeout_ms > (uint64_t)LONG_MAX)
		r->timeout_ms = UINT64_MAX;
	r->max_body = o->max_body ? o->max_body : c->opts.max_body;
	r->retry = o->retry;
	r->priority = o->priority;
	r->on_data = o->on_data;
	r->cb = cb;
	r->userdata = userdata;
	kc_buf_init(&r->resp, r->max_body);
	list_init(&r->queue);
	kc_http_setup_easy(r);
	if (o->fresh_connection)
		curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L);
	list_add_tail(&c->requests, &r->all);
	kc_http_wait_until(r, now_ms(c));
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
			kc_ratelimit_unreserve(req_limiter(r), now_ms(c));
		r->rl_reserved = false;
		kc_http_finish(r, -ECANCELED);
		break;
	case REQ_RUNNING:
		/* Removed from the multi handle by the scheduler: this may be
		 * called from inside a curl callback (an on_data callback). */
		if (!r->cancel_requested) {
			r->cancel_requested = true;
			c->n_cancel++;
			kc_http_schedule(c);
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

const char *kc_request_content_type(const struct kc_request *r)
{
	char *ct = NULL;

	if (!r || !r->easy || curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK)
		return NULL;
	return ct;
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
