/*
 * The request lifecycle of the HTTP client (kc_http.h).  Everything that would
 * otherwise call into curl_multi_* from inside a curl callback or from inside
 * a caller's function (starting a request, cancelling one, delivering a
 * callback, retrying after a backoff, waiting for the rate limiter) goes
 * through one scheduler timer: a request is "waiting" until its due time,
 * "running" while its easy handle is in the multi handle, and "done" until its
 * callback has been delivered from the scheduler.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_backoff.h"
#include "kc_config.h"
#include "kc_http_int.h"
#include "kc_log.h"
#include "kc_status.h"

/* --- request lifecycle -------------------------------------------------- */

void kc_http_finish(struct kc_request *r, int error)
{
	struct kc_client *c = r->client;

	r->error = error;
	r->state = REQ_DONE;
	list_add_tail(&c->done, &r->queue);
	kc_http_schedule(c);
}

void kc_http_wait_until(struct kc_request *r, uint64_t due_ms)
{
	r->due_ms = due_ms;
	r->state = REQ_WAITING;
	list_add_tail(&r->client->waiting, &r->queue);
	kc_http_schedule(r->client);
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
	free(r->accept);
	free(r->verb);
	free(r->resource);
	kc_buf_done(&r->resp);
	free(r);
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
	kc_http_build_headers(r);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	r->attempt_start_ms = now_ms(c);
	r->state = REQ_RUNNING;
	mc = curl_multi_add_handle(c->multi, r->easy);
	if (mc != CURLM_OK) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s %s: curl_multi_add_handle: %s", r->method, r->url,
			 curl_multi_strerror(mc));
		kc_http_finish(r, -EIO);
	}
}

static bool retryable_status(long s)
{
	return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
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
		kc_http_wait_until(r, now_ms(c) + d);
		return;
	}
	kc_http_finish(r, error);
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
		kc_http_finish(r, -ECANCELED);
		return;
	}
	if (rc == CURLE_WRITE_ERROR && r->abort_error) {
		if (r->abort_error == -EMSGSIZE)
			snprintf(r->errmsg, sizeof(r->errmsg),
				 "%s %s: response body over the bound of %zu bytes", r->method, r->url,
				 r->max_body);
		kc_http_finish(r, r->abort_error);
		return;
	}
	error = kc_http_map_curl_error(rc, &conn_err);
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
		kc_http_finish(r, error);
		return;
	}
	if (error == -EMSGSIZE) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s %s: response body over the bound of %zu bytes",
			 r->method, r->url, r->max_body);
		kc_http_finish(r, error);
		return;
	}
	if (error < 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s %s: %s", r->method, r->url,
			 r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
		r->http_status = 0;
		maybe_retry_or_finish(r, error, conn_err);
		return;
	}
	if (r->http_status == 401 && c->cfg.exec && !r->reauthed && !c->closing) {
		/* As client-go: the plugin runs again and the request is retried once. */
		r->reauthed = true;
		kc_http_exec_unauthorized(c, r->token_gen);
		kc_log_info(2, "%s %s: 401 Unauthorized; retrying once with a new credential from the exec plugin",
			    r->method, r->url);
		kc_http_wait_until(r, now_ms(c));
		return;
	}
	if (r->http_status == 401 && c->cfg.token_file && !r->reauthed) {
		/* The token may have been rotated since we last looked: re-read it
		 * and, if it changed, retry this request once with the new one. */
		r->reauthed = true;
		kc_http_refresh_token(c, true);
		if (c->token_gen != r->token_gen && !c->closing) {
			kc_log_info(2, "%s %s: 401 Unauthorized; retrying once with the re-read token",
				    r->method, r->url);
			kc_http_wait_until(r, now_ms(c));
			return;
		}
	}
	maybe_retry_or_finish(r, 0, retryable_status(r->http_status));
}

/* Reads every finished transfer; called after each curl_multi_socket_action. */
void kc_http_check_multi_info(struct kc_client *c)
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
				kc_http_finish(r, -ECANCELED);
			}
		}
	}
	for (l = c->waiting.next; l != &c->waiting; l = next) {
		struct kc_request *r = kc_container_of(l, struct kc_request, queue);

		next = l->next;
		if (r->due_ms > now)
			continue;
		list_del(&r->queue);
		switch (kc_http_exec_ready(r, now)) {
		case 1:
			break;
		case 0: /* waits for the credential; due_ms says until when */
			list_add_tail(&c->waiting, &r->queue);
			continue;
		default:
			if (r->rl_reserved)
				kc_ratelimit_unreserve(&c->rl, now);
			r->rl_reserved = false;
			kc_http_finish(r, -EACCES);
			continue;
		}
		if (!r->rl_reserved) {
			uint64_t wait = kc_ratelimit_reserve(req_limiter(r), now);

			r->rl_reserved = true;
			if (wait > 0) {
				kc_log_info(5, "%s %s: client-side rate limiter: waiting %llu ms", r->method,
					    r->url, (unsigned long long)wait);
				kc_http_wait_until(r, now + wait);
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
		kc_http_schedule(c);
}

/* Arms sched_timer for the earliest thing the scheduler has to do. */
void kc_http_schedule(struct kc_client *c)
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
	kc_http_exec_teardown(c);
	/* curl_multi_cleanup closes the cached connections and tells kc_http_socket_cb
	 * to drop their polls; any poll it did not mention is closed after. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	while (!list_empty(&c->socks)) {
		l = c->socks.next;
		kc_http_close_sock(kc_container_of(l, struct sock, link));
	}
	uv_close((uv_handle_t *)&c->curl_timer, kc_http_on_handle_closed);
	uv_close((uv_handle_t *)&c->sched_timer, kc_http_on_handle_closed);
	uv_close((uv_handle_t *)&c->health_timer, kc_http_on_handle_closed);
	kc_http_free_settings(c);
}
