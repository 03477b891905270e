/*
 * The metrics and probe servers (httpserver.h): two libmicrohttpd daemons in
 * external-select mode, driven from the libuv loop on its own thread.
 *
 * Why not MHD's internal thread: the loop owns every piece of state the
 * answers need (the metrics registry, readiness), so serving on the loop
 * needs no lock and no refreshed snapshot, and a wedged loop fails /healthz
 * as it should.  MHD with MHD_USE_EPOLL keeps all its sockets in one epoll fd;
 * that fd becomes readable when any of them has work, so one uv_poll_t per
 * daemon suffices, plus one uv_timer_t for MHD's own timeouts (connection
 * timeouts, and a zero timeout when MHD has ready work left over).
 *
 * We create, bind and listen on the socket ourselves and hand it to MHD
 * (MHD_OPTION_LISTEN_SOCKET): that gives exact bind errors, dual-stack ":port"
 * with an IPv4 fallback, and the bound port for ":0".
 */
#include "httpserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kc_log.h"

#define CONNECTION_LIMIT 64
#define CONNECTION_TIMEOUT_S 10

enum endpoint_kind {
	ENDPOINT_METRICS,
	ENDPOINT_PROBE,
};

struct endpoint {
	struct httpserver *srv;
	enum endpoint_kind kind;
	const char *what; /* "metrics server" */
	struct MHD_Daemon *daemon;
	uv_poll_t poll;
	uv_timer_t timer;
	bool handles_open;
	int port;
};

struct httpserver {
	uv_loop_t *loop;
	struct metrics *metrics;
	httpserver_ready_cb ready;
	httpserver_ready_cb live;
	void *userdata;
	struct endpoint ep[2];
	unsigned pending_closes;
	void (*done)(void *userdata);
	void *done_userdata;
};

int httpserver_parse_address(const char *addr, char **ret_host, unsigned *ret_port, bool *ret_disabled)
{
	const char *colon, *host_end, *host = addr;
	unsigned long port;
	char *end;

	if (!addr || !*addr)
		return -EINVAL;
	if (strcmp(addr, "0") == 0) {
		*ret_host = NULL;
		*ret_port = 0;
		*ret_disabled = true;
		return 0;
	}
	if (addr[0] == '[') {
		host = addr + 1;
		host_end = strchr(host, ']');
		if (!host_end || host_end == host || host_end[1] != ':')
			return -EINVAL;
		colon = host_end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL; /* no port, or a bare IPv6 address without brackets */
		host_end = colon;
	}
	if (colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		return -EINVAL;
	*ret_host = host_end > host ? kc_xstrndup(host, (size_t)(host_end - host)) : NULL;
	*ret_port = (unsigned)port;
	*ret_disabled = false;
	return 0;
}

static int listen_on(const struct sockaddr *sa, socklen_t len, int *ret_fd)
{
	int fd, one = 1, zero = 0, r;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* ":port" listens on IPv6 and IPv4 alike, as Go's net.Listen does. */
	if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
		goto fail;
	if (bind(fd, sa, len) < 0 || listen(fd, 64) < 0)
		goto fail;
	*ret_fd = fd;
	return 0;
fail:
	r = -errno;
	close(fd);
	return r;
}

/* Binds and listens; returns the socket or a negative errno. */
static int bind_address(const char *host, unsigned port, int *ret_fd)
{
	struct addrinfo hints = {0}, *res = NULL;
	char service[8];
	int r;

	if (!host) {
		struct sockaddr_in6 any6 = {.sin6_family = AF_INET6,
					    .sin6_port = htons((uint16_t)port),
					    .sin6_addr = IN6ADDR_ANY_INIT};
		struct sockaddr_in any4 = {.sin_family = AF_INET,
					   .sin_port = htons((uint16_t)port),
					   .sin_addr.s_addr = htonl(INADDR_ANY)};

		r = listen_on((struct sockaddr *)&any6, sizeof(any6), ret_fd);
		/* No IPv6 in this network namespace: IPv4 only. */
		if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL)
			r = listen_on((struct sockaddr *)&any4, sizeof(any4), ret_fd);
		return r;
	}
	snprintf(service, sizeof(service), "%u", port);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(host, service, &hints, &res);
	if (r != 0)
		return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	r = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		r = listen_on(ai->ai_addr, ai->ai_addrlen, ret_fd);
		if (r == 0)
			break;
	}
	freeaddrinfo(res);
	return r;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *content_type,
			     const char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	return reply(conn, status, "text/plain; charset=utf-8", text, strlen(text));
}

static enum MHD_Result serve_metrics(struct httpserver *s, struct MHD_Connection *conn)
{
	struct kc_buf b;
	enum MHD_Result r;
	int err;

	kc_buf_init(&b, METRICS_MAX_RENDER);
	err = metrics_render(s->metrics, &b);
	if (err < 0) {
		kc_log_error("metrics server: cannot render metrics: %s", strerror(-err));
		r = reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n");
	} else {
		r = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
			  b.len);
	}
	kc_buf_done(&b);
	return r;
}

static enum MHD_Result serve_check(struct httpserver *s, struct MHD_Connection *conn, httpserver_ready_cb check)
{
	char reason[256] = "not ready";

	if (!check || check(s->userdata, reason, sizeof(reason)))
		return reply_text(conn, MHD_HTTP_OK, "ok");
	reason[sizeof(reason) - 1] = '\0';
	return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, reason);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct endpoint *ep = cls;
	struct httpserver *s = ep->srv;

	(void)version;
	(void)upload_data;
	/* A request body is never wanted: drop it and answer at once. */
	*upload_data_size = 0;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (ep->kind == ENDPOINT_METRICS && s->metrics && strcmp(url, "/metrics") == 0)
		return serve_metrics(s, conn);
	if (ep->kind == ENDPOINT_PROBE && strcmp(url, "/healthz") == 0)
		return serve_check(s, conn, s->live);
	if (ep->kind == ENDPOINT_PROBE && strcmp(url, "/readyz") == 0)
		return serve_check(s, conn, s->ready);
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct endpoint *ep = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	kc_log_info(2, "%s: %s", ep->what, msg);
}

static void drive(struct endpoint *ep);

static void on_timer(uv_timer_t *t)
{
	drive(kc_container_of(t, struct endpoint, timer));
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	/* Even on a poll error MHD_run is the right call: it finds out what failed. */
	drive(kc_container_of(p, struct endpoint, poll));
}

/* Runs MHD once and re-arms the timer with its next timeout. */
static void drive(struct endpoint *ep)
{
	MHD_UNSIGNED_LONG_LONG timeout;

	if (MHD_run(ep->daemon) != MHD_YES)
		kc_log_warn("%s: MHD_run failed", ep->what);
	if (MHD_get_timeout(ep->daemon, &timeout) == MHD_YES)
		uv_timer_start(&ep->timer, on_timer, (uint64_t)timeout, 0);
	else
		uv_timer_stop(&ep->timer);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct httpserver *s = h->data;

	if (--s->pending_closes > 0)
		return;
	if (s->done)
		s->done(s->done_userdata);
	free(s);
}

static int endpoint_start(struct httpserver *s, struct endpoint *ep, const char *addr, struct kc_error *err)
{
	const union MHD_DaemonInfo *info;
	char *host = NULL;
	unsigned port;
	bool disabled;
	int fd = -1, r;

	r = httpserver_parse_address(addr, &host, &port, &disabled);
	if (r < 0)
		return kc_error_set(err, r, "%s: invalid bind address \"%s\" (want [host]:port or \"0\")",
				    ep->what, addr);
	if (disabled)
		return 0;
	r = bind_address(host, port, &fd);
	free(host);
	if (r < 0)
		return kc_error_set(err, r, "%s: cannot bind %s: %s", ep->what, addr, strerror(-r));
	ep->port = bound_port(fd);

	ep->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, ep,
				      /* The logger first: libmicrohttpd warns on stderr about
				       * any option given before it. */
				      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, ep, MHD_OPTION_LISTEN_SOCKET,
				      (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
				      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
	if (!ep->daemon) {
		close(fd);
		return kc_error_set(err, -EIO, "%s: cannot start libmicrohttpd on %s", ep->what, addr);
	}
	/* From here on MHD owns the listening socket and closes it in MHD_stop_daemon. */
	info = MHD_get_daemon_info(ep->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		r = kc_error_set(err, -EIO, "%s: libmicrohttpd has no epoll fd", ep->what);
		goto stop_daemon;
	}
	r = uv_timer_init(s->loop, &ep->timer);
	if (r < 0) {
		kc_error_set(err, r, "%s: uv_timer_init: %s", ep->what, uv_strerror(r));
		goto stop_daemon;
	}
	r = uv_poll_init(s->loop, &ep->poll, info->epoll_fd);
	if (r < 0) {
		kc_error_set(err, r, "%s: uv_poll_init: %s", ep->what, uv_strerror(r));
		ep->timer.data = s;
		s->pending_closes++;
		uv_close((uv_handle_t *)&ep->timer, on_handle_closed);
		goto stop_daemon;
	}
	ep->handles_open = true;
	r = uv_poll_start(&ep->poll, UV_READABLE, on_poll);
	if (r < 0)
		return kc_error_set(err, r, "%s: uv_poll_start: %s", ep->what, uv_strerror(r));
	kc_log_info(1, "%s: serving on %s (port %d)", ep->what, addr, ep->port);
	return 0;

stop_daemon:
	MHD_stop_daemon(ep->daemon);
	ep->daemon = NULL;
	return r;
}

static void endpoint_stop(struct endpoint *ep)
{
	struct httpserver *s = ep->srv;

	if (ep->handles_open) {
		/* uv_close stops polling at once (epoll_ctl DEL), before MHD closes the fd. */
		ep->poll.data = s;
		ep->timer.data = s;
		s->pending_closes += 2;
		uv_close((uv_handle_t *)&ep->poll, on_handle_closed);
		uv_close((uv_handle_t *)&ep->timer, on_handle_closed);
		ep->handles_open = false;
	}
	if (ep->daemon) {
		MHD_stop_daemon(ep->daemon);
		ep->daemon = NULL;
	}
}

void httpserver_close(struct httpserver *s, void (*done)(void *userdata), void *userdata)
{
	if (!s)
		return;
	s->done = done;
	s->done_userdata = userdata;
	/* Held so that the callbacks cannot free s before both endpoints are stopped. */
	s->pending_closes++;
	endpoint_stop(&s->ep[0]);
	endpoint_stop(&s->ep[1]);
	if (--s->pending_closes == 0) {
		if (done)
			done(userdata);
		free(s);
	}
}

int httpserver_new(uv_loop_t *loop, const struct httpserver_options *o, struct httpserver **ret,
		   struct kc_error *err)
{
	struct httpserver *s = kc_xcalloc(1, sizeof(*s));
	int r;

	s->loop = loop;
	s->metrics = o->metrics;
	s->ready = o->ready;
	s->live = o->live;
	s->userdata = o->userdata;
	s->ep[0] = (struct endpoint){.srv = s, .kind = ENDPOINT_METRICS, .what = "metrics server"};
	s->ep[1] = (struct endpoint){.srv = s, .kind = ENDPOINT_PROBE, .what = "health probe server"};
	r = endpoint_start(s, &s->ep[0],
			   o->metrics_address ? o->metrics_address : HTTPSERVER_DEFAULT_METRICS_ADDRESS, err);
	if (r == 0)
		r = endpoint_start(s, &s->ep[1],
				   o->probe_address ? o->probe_address : HTTPSERVER_DEFAULT_PROBE_ADDRESS,
				   err);
	if (r < 0) {
		/* Closing handles is asynchronous: the struct is freed from their callbacks. */
		httpserver_close(s, NULL, NULL);
		return r;
	}
	*ret = s;
	return 0;
}

int httpserver_metrics_port(const struct httpserver *s)
{
	return s->ep[0].daemon ? s->ep[0].port : 0;
}

int httpserver_probe_port(const struct httpserver *s)
{
	return s->ep[1].daemon ? s->ep[1].port : 0;
}
