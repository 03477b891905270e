/*
 * libcurl's multi interface driven by libuv, in the pattern of curl's
 * docs/examples/multi-uv.c: each socket curl opens gets a uv_poll_t
 * (CURLMOPT_SOCKETFUNCTION), curl's own timeout is one uv_timer_t
 * (CURLMOPT_TIMERFUNCTION), and completed transfers are read with
 * curl_multi_info_read after every curl_multi_socket_action.  Also the
 * per-transfer callbacks (headers, body), the options of an easy handle, and
 * the translation of curl's errors, each in one place.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kc_http_int.h"
#include "kc_log.h"

/* --- curl <-> uv glue (multi-uv.c) --------------------------------------- */

void kc_http_on_handle_closed(uv_handle_t *h)
{
	struct kc_client *c = h->data;

	if (h->type == UV_POLL)
		free(kc_container_of((uv_poll_t *)h, struct sock, poll));
	kc_http_handle_released(c);
}

void kc_http_handle_released(struct kc_client *c)
{
	if (--c->open_handles == 0 && c->torn_down) {
		void (*done)(void *) = c->close_done;
		void *data = c->close_data;

		free(c);
		if (done)
			done(data);
	}
}

void kc_http_close_sock(struct sock *s)
{
	list_del(&s->link);
	uv_close((uv_handle_t *)&s->poll, kc_http_on_handle_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct sock *s = kc_container_of(h, struct sock, poll);
	struct kc_client *c = s->client;
	int running, flags = 0;
	CURLMcode mc;

	/* A failed poll (the peer reset the socket, say) is reported to curl as
	 * an error on that socket, which then fails the transfer cleanly. */
	if (status < 0 || (events & UV_READABLE))
		s->last_read_ms = uv_now(c->loop);
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
	kc_http_check_multi_info(c);
}

int kc_http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct kc_client *c = userp;
	struct sock *s = socketp;
	int events = 0, r;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			uv_poll_stop(&s->poll);
			kc_http_close_sock(s);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = kc_xcalloc(1, sizeof(*s));
		s->client = c;
		s->fd = fd;
		s->last_read_ms = uv_now(c->loop);
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
	kc_http_check_multi_info(c);
}

/* curl asks for its timeout to be (re)armed; the uv timer calls back from
 * the loop, never from inside this callback. */
int kc_http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
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
		/* An answer from the API server itself (a 5xx may come from a proxy in front of it). */
		if (code >= 200 && code < 500)
			kc_http_health_answered(r, true);
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
		kc_http_health_answered(r, false);
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
int kc_http_map_curl_error(CURLcode rc, bool *ret_connection_error)
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

/* --- the easy handle ---------------------------------------------------- */

void kc_http_curl_global(void)
{
	static bool done;

	/* Once per process; the loop is single-threaded, so no race here. */
	if (!done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			kc_log_fatal("curl_global_init failed");
		done = true;
	}
}

/* The client certificate or its key: PEM, from a file or from the kubeconfig's inline data
 * (which the client owns for its lifetime, so curl need not copy it). */
static void set_pem(CURL *e, CURLoption file_opt, CURLoption blob_opt, CURLoption type_opt, const char *file,
		    char *data, size_t len)
{
	if (file) {
		curl_easy_setopt(e, file_opt, file);
	} else if (data) {
		struct curl_blob blob = {data, len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(e, blob_opt, &blob);
	}
	curl_easy_setopt(e, type_opt, "PEM");
}

void kc_http_setup_easy(struct kc_request *r)
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
	/* gzip for bodies, not for watch streams: curl 7.88's decoder fails a
	 * gzip-compressed watch from kube-apiserver 1.37 at the first event after
	 * a WatchList's initial-events-end bookmark (CURLE_WRITE_ERROR, no
	 * message), which ended every WatchList stream and delayed the first
	 * change by a re-watch.  Watch events are small and sent one by one, so
	 * compression gains little there. */
	if (strcmp(r->verb, "watch") != 0)
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
	set_pem(e, CURLOPT_SSLCERT, CURLOPT_SSLCERT_BLOB, CURLOPT_SSLCERTTYPE, cfg->client_cert_file,
		cfg->client_cert_data, cfg->client_cert_data_len);
	set_pem(e, CURLOPT_SSLKEY, CURLOPT_SSLKEY_BLOB, CURLOPT_SSLKEYTYPE, cfg->client_key_file,
		cfg->client_key_data, cfg->client_key_data_len);
}
