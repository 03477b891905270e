/*
 * Health checks of the client's connections, in the manner of client-go's
 * HTTP/2 transport (ReadIdleTimeout 30 s, PingTimeout 15 s).  A multiplexed
 * connection carries every watch and request; when a middlebox stops
 * forwarding but keeps the sockets open, neither TCP nor curl notices, and
 * every stream on it hangs for good.  libcurl 7.88 cannot send an HTTP/2 PING
 * on a connection of a multi handle (curl_easy_upkeep only serves easy
 * handles that run their own transfers), so the ping is a small request
 * instead: GET /livez, which every identity may read (system:public-info-viewer),
 * which API Priority and Fairness never queues (the exempt "probes"
 * FlowSchema), and which the connection that most needs it carries, since
 * curl multiplexes new requests onto the connection it already has.
 *
 * A tick checks every socket of a client whose server speaks HTTP/2: when one
 * has read nothing for read_idle_ms (or the server has not answered anything
 * for that long), a probe is sent; a socket that still reads nothing for
 * ping_timeout_ms after the probe went out is shut down.  curl then sees the
 * connection end, the requests on it fail (and retry, if marked so), and the
 * next ones open a new connection.  Every answer also records when the
 * server last answered, for the controller's readiness and liveness probes.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "kc_http_int.h"
#include "kc_log.h"

#define PROBE_PATH "/livez"

void kc_http_health_answered(struct kc_request *r, bool headers)
{
	struct kc_client *c = r->client;
	long ver = 0;

	c->last_success_ms = uv_now(c->loop);
	/* Which socket a transfer runs on is not known while it runs (curl 7.88 tells
	 * CURLINFO_ACTIVESOCKET only after it), so the checks apply to every connection of a
	 * client whose server speaks HTTP/2; an HTTP/1.1 connection carries one request and
	 * ends with it, so its request's own timeout or a watch's stall ends it. */
	if (headers && !c->multiplexed && curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver) == CURLE_OK &&
	    ver == CURL_HTTP_VERSION_2_0)
		c->multiplexed = true;
}

static void on_probe_done(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct kc_client *c = userdata;

	(void)req;
	c->probe = NULL;
	if (resp->error && resp->error != -ECANCELED)
		kc_log_info(2, "health probe GET %s: %s", PROBE_PATH,
			    resp->error_message ? resp->error_message : strerror(-resp->error));
}

static void send_probe(struct kc_client *c, uint64_t now)
{
	/* No timeout of its own: the tick gives up on it after the ping timeout.  Its own
	 * rate-limit lane, so that a queue of requests does not delay it. */
	const struct kc_request_options o = {.method = "GET", .path = PROBE_PATH, .timeout_ms = UINT64_MAX,
					     .max_body = 64 * 1024, .priority = true, .verb = "get",
					     .resource = "livez"};
	int r = kc_client_request(c, &o, on_probe_done, c, &c->probe);

	if (r < 0) {
		c->probe = NULL;
		return;
	}
	c->probe_sent_ms = now;
	kc_log_info(4, "health probe GET %s sent", PROBE_PATH);
}

/* Shuts the socket down under curl, which then fails every transfer on it and
 * drops the connection (it closes the descriptor itself). */
static void close_dead(struct kc_client *c, struct sock *s, uint64_t silent_ms)
{
	s->closed_dead = true;
	c->dead_connections++;
	kc_log_warn("the connection to the API server read nothing for %llu ms, nor answered a health probe "
		    "within %llu ms: closing it, its requests move to a new connection",
		    (unsigned long long)silent_ms, (unsigned long long)c->opts.ping_timeout_ms);
	if (shutdown(s->fd, SHUT_RDWR) < 0)
		kc_log_warn("shutdown(%d): %s", (int)s->fd, strerror(errno));
}

static void on_health_tick(uv_timer_t *t)
{
	struct kc_client *c = kc_container_of(t, struct kc_client, health_timer);
	uint64_t now = uv_now(c->loop), idle_ms = c->opts.read_idle_ms, ping_ms = c->opts.ping_timeout_ms;
	bool want_probe = now - c->last_success_ms >= idle_ms;

	if (c->closing)
		return;
	for (struct link *l = c->socks.next; c->multiplexed && l != &c->socks; l = l->next) {
		struct sock *s = kc_container_of(l, struct sock, link);
		uint64_t silent = now - s->last_read_ms;

		if (s->closed_dead)
			continue;
		if (silent >= idle_ms)
			want_probe = true;
		/* Silent since before the probe went out, and ping_timeout after it: the probe
		 * went unanswered on this connection (curl put it on the one it had). */
		if (c->probe_sent_ms && c->probe_sent_ms > s->last_read_ms && now - c->probe_sent_ms >= ping_ms &&
		    silent >= idle_ms + ping_ms)
			close_dead(c, s, silent);
	}
	if (c->probe && now - c->probe_sent_ms >= ping_ms) {
		kc_request_cancel(c->probe);
		return;
	}
	if (want_probe && !c->probe && (!c->probe_sent_ms || now - c->probe_sent_ms >= idle_ms))
		send_probe(c, now);
}

int kc_http_health_start(struct kc_client *c)
{
	uint64_t tick = (c->opts.read_idle_ms < c->opts.ping_timeout_ms ? c->opts.read_idle_ms
									  : c->opts.ping_timeout_ms) / 4;
	int r;

	if (tick < 50)
		tick = 50;
	c->last_success_ms = uv_now(c->loop);
	r = uv_timer_start(&c->health_timer, on_health_tick, tick, tick);
	if (r < 0)
		return r;
	/* The checks alone do not keep the loop running. */
	uv_unref((uv_handle_t *)&c->health_timer);
	return 0;
}

uint64_t kc_client_last_success_ms(const struct kc_client *c)
{
	return c->last_success_ms;
}

uint64_t kc_client_health_window_ms(const struct kc_client *c)
{
	return c->opts.read_idle_ms + c->opts.ping_timeout_ms;
}

uint64_t kc_client_dead_connections(const struct kc_client *c)
{
	return c->dead_connections;
}
