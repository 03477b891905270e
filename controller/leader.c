/*
 * Leader election on a Lease (leader.h), a port of client-go's
 * tools/leaderelection with the LeaseLock: the same record, the same
 * expiry rule (observed time on our own monotonic clock), the same
 * optimistic concurrency (PUT with resourceVersion) and the same release.
 *
 * One request is in flight at a time.  An attempt is GET, then POST (no
 * Lease yet) or PUT (ours, released or expired); a leader with a fresh
 * resourceVersion skips the GET and PUTs directly, falling back to GET on a
 * 409, as client-go has done since 1.27.  Two timers: `retry` schedules
 * the next attempt, `deadline` watches the renew deadline while leading and
 * fires even while a request hangs.
 */
#include "leader.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "kc_log.h"

#define JITTER_FACTOR 1.2

enum op {
	OP_NONE,
	OP_GET,
	OP_CREATE,
	OP_UPDATE,	/* after a GET */
	OP_UPDATE_FAST, /* a leader renewing without a GET first */
	OP_RELEASE,
};

/* The leader election record, as in client-go's LeaderElectionRecord. */
struct record {
	char *holder;
	int64_t lease_duration_s;
	char *acquire_time;
	char *renew_time;
	int64_t transitions;
};

struct leader {
	uv_loop_t *loop;
	struct kc_client *client;
	char *name;
	char *ns;
	char *identity;
	char *path;	       /* /apis/coordination.k8s.io/v1/namespaces/NS/leases/NAME */
	char *collection_path; /* .../namespaces/NS/leases */
	uint64_t lease_duration_ms;
	uint64_t renew_deadline_ms;
	uint64_t retry_period_ms;
	void (*on_started_leading)(void *userdata);
	void (*on_stopped_leading)(void *userdata);
	void (*on_new_leader)(const char *identity, void *userdata);
	void *userdata;

	uv_timer_t retry;
	uv_timer_t deadline;
	struct kc_request *req;
	enum op op;
	bool running;
	bool leading;
	bool stopping;
	bool release;
	bool release_reread; /* a release got 409 and we re-read the lease */

	struct record observed; /* the last record seen or written */
	bool have_observed;
	uint64_t observed_ms;	/* monotonic time we saw the record change */
	char *resource_version; /* of the Lease we last saw, NULL if none */
	uint64_t attempt_start_ms;
	uint64_t last_renew_ms; /* start of the last successful acquire or renew */

	unsigned pending_closes;
	void (*done)(void *userdata);
	void *done_userdata;
};

static void attempt(struct leader *l);

static void record_done(struct record *r)
{
	free(r->holder);
	free(r->acquire_time);
	free(r->renew_time);
	memset(r, 0, sizeof(*r));
}

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool record_equal(const struct record *a, const struct record *b)
{
	return str_eq(a->holder, b->holder) && a->lease_duration_s == b->lease_duration_s &&
	       str_eq(a->acquire_time, b->acquire_time) && str_eq(a->renew_time, b->renew_time) &&
	       a->transitions == b->transitions;
}

static char *dup_json_string(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return kc_xstrdup(s ? s : "");
}

/* Parses a Lease into its record and resourceVersion.  Returns 0 or -EBADMSG. */
static int lease_decode(const char *body, size_t len, struct record *ret, char **ret_rv)
{
	json_t *root, *spec, *rv;
	json_error_t jerr;

	root = json_loadb(body, len, 0, &jerr);
	if (!root)
		return -EBADMSG;
	rv = json_object_get(json_object_get(root, "metadata"), "resourceVersion");
	spec = json_object_get(root, "spec");
	if (!json_is_string(rv) || (spec && !json_is_object(spec))) {
		json_decref(root);
		return -EBADMSG;
	}
	ret->holder = dup_json_string(spec, "holderIdentity");
	ret->lease_duration_s = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
	ret->acquire_time = dup_json_string(spec, "acquireTime");
	ret->renew_time = dup_json_string(spec, "renewTime");
	ret->transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
	*ret_rv = kc_xstrdup(json_string_value(rv));
	json_decref(root);
	return 0;
}

/* The Lease body for a POST (rv NULL) or a PUT. */
static char *lease_encode(const struct leader *l, const struct record *r, const char *rv)
{
	json_t *meta, *root;
	char *s;

	meta = json_pack("{s:s, s:s}", "name", l->name, "namespace", l->ns);
	if (rv)
		json_object_set_new(meta, "resourceVersion", json_string(rv));
	root =
	    json_pack("{s:s, s:s, s:o, s:{s:s, s:I, s:s, s:s, s:I}}", "apiVersion", "coordination.k8s.io/v1",
		      "kind", "Lease", "metadata", meta, "spec", "holderIdentity", r->holder,
		      "leaseDurationSeconds", (json_int_t)r->lease_duration_s, "acquireTime", r->acquire_time,
		      "renewTime", r->renew_time, "leaseTransitions", (json_int_t)r->transitions);
	if (!root)
		kc_log_fatal("leader election: cannot build the Lease body");
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		kc_log_fatal("leader election: out of memory");
	return s;
}

static uint64_t random_u64(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = kc_monotonic_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
	return v;
}

/* hostname_<random UUID>, as client-go's callers build it (id + "_" + uuid). */
static char *default_identity(void)
{
	char host[256] = "unknown";
	uint64_t a = random_u64(), b = random_u64();

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	/* UUID version 4, variant 1. */
	a = (a & ~0xF000ull) | 0x4000ull;
	b = (b & ~(3ull << 62)) | (2ull << 62);
	return kc_xasprintf("%s_%08x-%04x-%04x-%04x-%012llx", host, (unsigned)(a >> 32),
			    (unsigned)((a >> 16) & 0xFFFF), (unsigned)(a & 0xFFFF), (unsigned)(b >> 48),
			    (unsigned long long)(b & 0xFFFFFFFFFFFFull));
}

/* Notes a record seen on the server; the observed time moves only when it changed. */
static void observe(struct leader *l, struct record *r, char *rv, uint64_t now)
{
	bool holder_changed = !l->have_observed || !str_eq(l->observed.holder, r->holder);

	if (!l->have_observed || !record_equal(&l->observed, r)) {
		record_done(&l->observed);
		l->observed = *r;
		l->observed_ms = now;
		l->have_observed = true;
	} else {
		record_done(r);
	}
	memset(r, 0, sizeof(*r));
	free(l->resource_version);
	l->resource_version = rv;
	if (holder_changed) {
		if (l->observed.holder[0])
			kc_log_info(1, "leader election: lease %s/%s is held by %s", l->ns, l->name,
				    l->observed.holder);
		if (l->on_new_leader)
			l->on_new_leader(l->observed.holder, l->userdata);
	}
}

static void stop_leading(struct leader *l, const char *why)
{
	if (!l->leading)
		return;
	l->leading = false;
	uv_timer_stop(&l->deadline);
	kc_log_warn("leader election: %s lost lease %s/%s: %s", l->identity, l->ns, l->name, why);
	if (l->on_stopped_leading)
		l->on_stopped_leading(l->userdata);
}

static void on_deadline(uv_timer_t *t)
{
	struct leader *l = kc_container_of(t, struct leader, deadline);
	char why[96];

	snprintf(why, sizeof(why), "failed to renew it within the renew deadline (%llums)",
		 (unsigned long long)l->renew_deadline_ms);
	/* Stop first, then abandon the renewal in flight: its late success must not count. */
	stop_leading(l, why);
	/* on_stopped_leading may have called leader_stop(), which cancelled it already. */
	if (l->req && !l->stopping)
		kc_request_cancel(l->req);
}

static void on_retry(uv_timer_t *t)
{
	attempt(kc_container_of(t, struct leader, retry));
}

static void schedule(struct leader *l)
{
	uint64_t delay = l->retry_period_ms;

	/* A callback may have stopped us: leader_stop() owns what happens next. */
	if (l->stopping)
		return;
	/* Candidates spread their attempts like client-go's JitterUntil(retryPeriod, 1.2). */
	if (!l->leading)
		delay += (uint64_t)((double)l->retry_period_ms * JITTER_FACTOR *
				    (double)(random_u64() >> 11) / (double)(1ull << 53));
	uv_timer_start(&l->retry, on_retry, delay, 0);
}

static void succeeded(struct leader *l, struct record *r, char *rv)
{
	uint64_t now = kc_monotonic_ms();

	observe(l, r, rv, now);
	l->last_renew_ms = l->attempt_start_ms;
	if (!l->leading) {
		l->leading = true;
		kc_log_info(0, "leader election: %s acquired lease %s/%s", l->identity, l->ns, l->name);
		if (l->on_started_leading)
			l->on_started_leading(l->userdata);
	}
	/* The deadline counts from the start of this renewal, not from its answer. */
	if (l->leading && l->running) {
		uint64_t elapsed = now - l->last_renew_ms;

		uv_timer_start(&l->deadline, on_deadline,
			       elapsed < l->renew_deadline_ms ? l->renew_deadline_ms - elapsed : 0, 0);
	}
}

static void close_handles(struct leader *l);

static void on_response(struct kc_request *req, const struct kc_response *resp, void *userdata);

static int send_request(struct leader *l, enum op op, const char *method, const char *path, char *body,
			const char *verb)
{
	struct kc_request_options o = {
	    .method = method,
	    .path = path,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .timeout_ms = l->renew_deadline_ms,
	    .max_body = 1 << 20,
	    .verb = verb,
	    .resource = "leases",
	    /* A renewal must not queue behind Events and evictions in the client-side
	     * rate limiter: a late renewal loses the lease. */
	    .priority = true,
	};
	int r;

	r = kc_client_request(l->client, &o, on_response, l, &l->req);
	free(body);
	if (r < 0) {
		l->req = NULL;
		return r;
	}
	l->op = op;
	return 0;
}

/* Builds our record from the observed one: a renewal keeps acquireTime and
 * leaseTransitions, a takeover counts one more transition. */
static char *build_update(struct leader *l)
{
	struct record r = {0};
	char now[40];
	char *body;

	kc_format_time(kc_wall_ms(), now, sizeof(now));
	r.holder = l->identity;
	r.lease_duration_s = (int64_t)((l->lease_duration_ms + 999) / 1000);
	r.renew_time = now;
	if (l->have_observed && str_eq(l->observed.holder, l->identity) && l->observed.acquire_time[0]) {
		r.acquire_time = l->observed.acquire_time;
		r.transitions = l->observed.transitions;
	} else {
		r.acquire_time = now;
		r.transitions = l->have_observed ? l->observed.transitions + 1 : 0;
	}
	body = lease_encode(l, &r, l->resource_version);
	return body;
}

static void attempt_failed(struct leader *l)
{
	if (l->leading && kc_monotonic_ms() - l->last_renew_ms >= l->renew_deadline_ms)
		stop_leading(l, "failed to renew it within the renew deadline");
	schedule(l);
}

static void attempt(struct leader *l)
{
	int r;

	l->attempt_start_ms = kc_monotonic_ms();
	if (l->leading && l->resource_version)
		r = send_request(l, OP_UPDATE_FAST, "PUT", l->path, build_update(l), "update");
	else
		r = send_request(l, OP_GET, "GET", l->path, NULL, "get");
	if (r < 0) {
		kc_log_warn("leader election: cannot send a request for lease %s/%s: %s", l->ns, l->name,
			    strerror(-r));
		attempt_failed(l);
	}
}

static void log_failure(const struct leader *l, const char *what, const struct kc_response *resp)
{
	if (resp->http_status)
		kc_log_info(1, "leader election: %s lease %s/%s: HTTP %ld%s%s", what, l->ns, l->name,
			    resp->http_status, resp->status && resp->status->message ? ": " : "",
			    resp->status && resp->status->message ? resp->status->message : "");
	else
		kc_log_info(1, "leader election: %s lease %s/%s: %s", what, l->ns, l->name,
			    resp->error_message ? resp->error_message : strerror(-resp->error));
}

/* After a GET: may we take or keep the lease? */
static void after_get(struct leader *l, const struct kc_response *resp)
{
	struct record rec = {0};
	uint64_t now = kc_monotonic_ms(), duration_ms;
	char *rv = NULL;
	int r;

	if (resp->http_status == 404) {
		struct record mine = {0};
		char ts[40];

		kc_format_time(kc_wall_ms(), ts, sizeof(ts));
		mine.holder = l->identity;
		mine.lease_duration_s = (int64_t)((l->lease_duration_ms + 999) / 1000);
		mine.acquire_time = ts;
		mine.renew_time = ts;
		r = send_request(l, OP_CREATE, "POST", l->collection_path, lease_encode(l, &mine, NULL),
				 "create");
		if (r < 0)
			attempt_failed(l);
		return;
	}
	if (resp->http_status != 200) {
		log_failure(l, "cannot get", resp);
		attempt_failed(l);
		return;
	}
	if (lease_decode(resp->body, resp->body_len, &rec, &rv) < 0) {
		kc_log_warn("leader election: lease %s/%s: the answer is not a Lease", l->ns, l->name);
		attempt_failed(l);
		return;
	}
	observe(l, &rec, rv, now);
	/* Another holder: ours is gone. */
	if (l->leading && !str_eq(l->observed.holder, l->identity))
		stop_leading(l, "another replica holds it");
	if (l->stopping)
		return; /* a callback called leader_stop() */
	duration_ms = l->observed.lease_duration_s > 0 ? (uint64_t)l->observed.lease_duration_s * 1000
						       : l->lease_duration_ms;
	if (l->observed.holder[0] && !str_eq(l->observed.holder, l->identity) &&
	    now < l->observed_ms + duration_ms) {
		kc_log_info(4, "leader election: lease %s/%s is held by %s and has not expired", l->ns,
			    l->name, l->observed.holder);
		schedule(l);
		return;
	}
	r = send_request(l, OP_UPDATE, "PUT", l->path, build_update(l), "update");
	if (r < 0)
		attempt_failed(l);
}

static void after_write(struct leader *l, const struct kc_response *resp)
{
	struct record rec = {0};
	char *rv = NULL;

	if (resp->http_status == 200 || resp->http_status == 201) {
		if (lease_decode(resp->body, resp->body_len, &rec, &rv) == 0) {
			succeeded(l, &rec, rv);
			schedule(l);
			return;
		}
		kc_log_warn("leader election: lease %s/%s: the answer is not a Lease", l->ns, l->name);
	} else if (resp->http_status == 409 && l->op == OP_UPDATE_FAST) {
		/* Our cached copy is stale: read and try again within this attempt. */
		if (send_request(l, OP_GET, "GET", l->path, NULL, "get") == 0)
			return;
	} else {
		log_failure(l, l->op == OP_CREATE ? "cannot create" : "cannot update", resp);
	}
	attempt_failed(l);
}

static void on_closed(uv_handle_t *h)
{
	struct leader *l = h->data;

	if (--l->pending_closes > 0)
		return;
	if (l->done)
		l->done(l->done_userdata);
	record_done(&l->observed);
	free(l->resource_version);
	free(l->collection_path);
	free(l->path);
	free(l->identity);
	free(l->ns);
	free(l->name);
	free(l);
}

static void close_handles(struct leader *l)
{
	l->retry.data = l;
	l->deadline.data = l;
	l->pending_closes = 2;
	uv_close((uv_handle_t *)&l->retry, on_closed);
	uv_close((uv_handle_t *)&l->deadline, on_closed);
}

/* Gives the lease up: empty holder, leaseDurationSeconds 1, as client-go's release(). */
static void release(struct leader *l)
{
	struct record r = {0};
	char now[40];

	kc_format_time(kc_wall_ms(), now, sizeof(now));
	r.holder = "";
	r.lease_duration_s = 1;
	r.acquire_time = now;
	r.renew_time = now;
	r.transitions = l->observed.transitions;
	if (send_request(l, OP_RELEASE, "PUT", l->path, lease_encode(l, &r, l->resource_version), "update") <
	    0) {
		kc_log_warn("leader election: cannot release lease %s/%s", l->ns, l->name);
		close_handles(l);
	}
}

/*
 * While stopping: the request cancelled by leader_stop() is answered, then
 * the release goes out.  A 409 on the release means a renewal we had
 * abandoned reached the server after all: re-read once, and release again
 * if the lease is still ours.
 */
static void on_stopping_response(struct leader *l, enum op op, const struct kc_response *resp)
{
	if (op == OP_RELEASE && resp->http_status == 200) {
		kc_log_info(0, "leader election: %s released lease %s/%s", l->identity, l->ns, l->name);
	} else if (op == OP_RELEASE && resp->http_status == 409 && !l->release_reread) {
		l->release_reread = true;
		kc_log_info(1, "leader election: releasing lease %s/%s conflicted; re-reading it", l->ns,
			    l->name);
		if (send_request(l, OP_GET, "GET", l->path, NULL, "get") == 0)
			return;
	} else if (op == OP_RELEASE) {
		log_failure(l, "cannot release", resp);
	} else if (op == OP_GET && l->release_reread) {
		struct record rec = {0};
		char *rv = NULL;

		if (resp->http_status == 200 && lease_decode(resp->body, resp->body_len, &rec, &rv) == 0) {
			observe(l, &rec, rv, kc_monotonic_ms());
			if (str_eq(l->observed.holder, l->identity)) {
				release(l);
				return;
			}
		}
	} else if (l->release && l->resource_version) {
		release(l);
		return;
	}
	close_handles(l);
}

static void on_response(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct leader *l = userdata;
	enum op op = l->op;

	(void)req;
	l->req = NULL;
	l->op = OP_NONE;
	if (l->stopping) {
		on_stopping_response(l, op, resp);
		return;
	}
	if (resp->error == -ECANCELED) {
		/* The renew deadline abandoned this request; go on as a candidate. */
		schedule(l);
		return;
	}
	l->op = op;
	if (op == OP_GET)
		after_get(l, resp);
	else
		after_write(l, resp);
	if (!l->req)
		l->op = OP_NONE;
}

int leader_new(uv_loop_t *loop, struct kc_client *c, const struct leader_options *o, struct leader **ret,
	       struct kc_error *err)
{
	struct leader *l;
	uint64_t lease = o->lease_duration_ms ? o->lease_duration_ms : LEADER_DEFAULT_LEASE_DURATION_MS;
	uint64_t renew = o->renew_deadline_ms ? o->renew_deadline_ms : LEADER_DEFAULT_RENEW_DEADLINE_MS;
	uint64_t retry = o->retry_period_ms ? o->retry_period_ms : LEADER_DEFAULT_RETRY_PERIOD_MS;
	const char *name = o->name ? o->name : LEADER_DEFAULT_NAME;
	const char *ns = o->ns ? o->ns : LEADER_DEFAULT_NAMESPACE;
	int r;

	if (lease <= renew)
		return kc_error_set(err, -EINVAL,
				    "leader election: lease duration (%llums) must be greater than the renew "
				    "deadline (%llums)",
				    (unsigned long long)lease, (unsigned long long)renew);
	if ((double)renew <= JITTER_FACTOR * (double)retry)
		return kc_error_set(err, -EINVAL,
				    "leader election: renew deadline (%llums) must be greater than 1.2 x the "
				    "retry period (%llums)",
				    (unsigned long long)renew, (unsigned long long)retry);
	if (!*name || strchr(name, '/') || !*ns || strchr(ns, '/'))
		return kc_error_set(err, -EINVAL, "leader election: invalid lease name \"%s/%s\"", ns, name);
	if (o->identity && !*o->identity)
		return kc_error_set(err, -EINVAL, "leader election: the identity must not be empty");

	l = kc_xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->client = c;
	l->name = kc_xstrdup(name);
	l->ns = kc_xstrdup(ns);
	l->identity = o->identity ? kc_xstrdup(o->identity) : default_identity();
	l->collection_path = kc_xasprintf("/apis/coordination.k8s.io/v1/namespaces/%s/leases", ns);
	l->path = kc_xasprintf("%s/%s", l->collection_path, name);
	l->lease_duration_ms = lease;
	l->renew_deadline_ms = renew;
	l->retry_period_ms = retry;
	l->on_started_leading = o->on_started_leading;
	l->on_stopped_leading = o->on_stopped_leading;
	l->on_new_leader = o->on_new_leader;
	l->userdata = o->userdata;
	r = uv_timer_init(loop, &l->retry);
	if (r == 0) {
		r = uv_timer_init(loop, &l->deadline);
		if (r < 0) {
			/* Freed from the close callback, which the loop runs later. */
			l->retry.data = l;
			l->pending_closes = 1;
			uv_close((uv_handle_t *)&l->retry, on_closed);
			return kc_error_set(err, r, "leader election: uv_timer_init: %s", uv_strerror(r));
		}
	} else {
		free(l->path);
		free(l->collection_path);
		free(l->identity);
		free(l->ns);
		free(l->name);
		free(l);
		return kc_error_set(err, r, "leader election: uv_timer_init: %s", uv_strerror(r));
	}
	*ret = l;
	return 0;
}

int leader_start(struct leader *l)
{
	if (l->running || l->stopping)
		return -EALREADY;
	l->running = true;
	kc_log_info(0, "leader election: %s campaigning for lease %s/%s", l->identity, l->ns, l->name);
	attempt(l);
	return 0;
}

/* Leading, and the last renewal is younger than the renew deadline by the clock
 * now: after a pause, overdue timers may run before the deadline timer, and
 * they must not act on a lease that another replica may already hold. */
bool leader_is_leader(const struct leader *l)
{
	return l->leading && kc_monotonic_ms() - l->last_renew_ms < l->renew_deadline_ms;
}

const char *leader_identity(const struct leader *l)
{
	return l->identity;
}

const char *leader_observed_holder(const struct leader *l)
{
	return l->have_observed ? l->observed.holder : "";
}

void leader_stop(struct leader *l, bool release_lease, void (*done)(void *userdata), void *userdata)
{
	bool was_leading;

	if (!l || l->stopping)
		return;
	l->stopping = true;
	l->done = done;
	l->done_userdata = userdata;
	was_leading = l->leading;
	l->leading = false;
	l->running = false;
	uv_timer_stop(&l->retry);
	uv_timer_stop(&l->deadline);
	/* Release only a lease the server still shows as ours. */
	l->release =
	    release_lease && was_leading && l->have_observed && str_eq(l->observed.holder, l->identity);
	if (was_leading) {
		kc_log_info(0, "leader election: %s stops leading (shutdown)", l->identity);
		if (l->on_stopped_leading)
			l->on_stopped_leading(l->userdata);
	}
	if (l->req) {
		/* Continues in on_response, with -ECANCELED. */
		kc_request_cancel(l->req);
		return;
	}
	if (l->release && l->resource_version)
		release(l);
	else
		close_handles(l);
}
