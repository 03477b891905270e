/*
 * The reflector (kc_reflector.h): keeps a kc_store in step with one resource
 * on the API server, as client-go's reflector does.  A LIST runs page by
 * page, each page streamed into a kc_list_decoder so that no page is ever
 * buffered whole; when the last page is in, a sweep of the store's generation
 * turns the objects that vanished into deletions.  Then a WATCH streams
 * newline-delimited events into a kc_watch_decoder from the list's
 * resourceVersion, and is re-established from the last resourceVersion seen
 * whenever it ends: at once after a clean end (the server's timeout), after
 * a backoff with jitter when it broke, stalled or carried an error, and by a
 * new LIST when the server answers 410 Gone.
 *
 * At most one request is outstanding at a time.  Every next step goes
 * through the retry timer (with a zero delay when there is nothing to wait
 * for), so no request is ever started from inside another request's callback.
 *
 * Where the server supports it, the initial sync is a WatchList instead
 * (sendInitialEvents, ending at the bookmark annotated
 * k8s.io/initial-events-end) on the same stream that then carries on as the
 * watch, with a fallback to paged LIST when it is refused.
 *
 * Why one file of about 1,000 lines: it is one state machine (LIST, WatchList,
 * WATCH, retry) whose steps hand over to each other through one struct and
 * one timer; split along the steps, every half would need the other's
 * internals through a private header, and the transitions, which are what a
 * reader checks, would no longer be read in one place.
 */
#include "kc_reflector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kc_backoff.h"
#include "kc_log.h"
#include "kc_pb.h"
#include "kc_util.h"

#define DEFAULT_PAGE_SIZE 500u
#define DEFAULT_STALL_MS 120000u
#define DEFAULT_BACKOFF_INITIAL_MS 800u
#define DEFAULT_BACKOFF_MAX_MS 30000u
/* A watch that lasted this long is healthy even without events: the backoff starts over. */
#define HEALTHY_WATCH_MS 30000u
/* client-go's "very short watch": a clean end this soon, without events, is treated as a failure. */
#define SHORT_WATCH_MS 1000u
/* WatchList attempts that end without their initial-events-end bookmark before the reflector
 * takes the server for one that ignores sendInitialEvents and lists in pages instead. */
#define WATCH_LIST_MAX_FAILURES 3u
/* A server that serves WatchList streams the initial state and its bookmark without pause; one
 * that ignores sendInitialEvents goes quiet without the bookmark.  This much silence tells them
 * apart (it caps the stall timeout while the initial events are awaited). */
#define WATCH_LIST_SILENCE_MS 10000u

enum req_kind {
	REQ_NONE,
	REQ_LIST,
	REQ_WATCH,
};

/* What the retry timer does when it fires. */
enum next_step {
	NEXT_LIST_PAGE,    /* (re)request the current page: the continue token is kept */
	NEXT_LIST_RESTART, /* a new LIST from the first page, in a new store generation */
	NEXT_WATCH,
};

/* Why we ended a watch ourselves (the response callback then sees an error of our making). */
enum watch_end {
	END_NONE,
	END_GONE,   /* ERROR event with code 410 */
	END_ERROR,  /* another ERROR event */
	END_DECODE, /* a line that is not valid JSON, or too long */
	END_STALL,
};

struct kc_reflector {
	struct kc_client *client;
	uv_loop_t *loop;
	const struct kc_type *type;
	struct kc_decode_ctx dctx;
	char *path;      /* the collection path, without a query */
	char *sel_query; /* "&labelSelector=...&fieldSelector=..." (escaped) or "" */
	unsigned page_size;
	unsigned watch_timeout_s;
	uint64_t stall_ms;
	uint64_t backoff_initial_ms;
	uint64_t backoff_max_ms;
	size_t max_line;
	bool protobuf;      /* ask for protobuf (kc_reflector_options.protobuf) */
	bool format_known;  /* the current request's encoding is set in its decoder */
	bool last_pb;       /* the last response's encoding, for the log */
	kc_reflector_handler on_change;
	kc_reflector_synced_cb on_synced;
	kc_reflector_keep_cb keep;
	kc_reflector_error_cb on_error;
	void *userdata;

	struct kc_store *store;
	struct kc_list_decoder *ld;
	struct kc_watch_decoder *wd;
	char *rv;        /* last resourceVersion seen, "" before the first list */
	size_t rv_cap;
	char *list_rv;   /* resourceVersion of the LIST in progress */
	char *cont;      /* continue token of the next page, NULL on the first page */

	struct kc_request *req;
	enum req_kind req_kind;
	bool req_aborting;  /* cancelled, or aborted by on_data's return */
	enum watch_end end;
	uint64_t watch_start_ms;
	uint64_t watch_events;
	uint64_t list_ignored; /* objects keep() turned away in the LIST in progress */

	uv_timer_t retry_timer;
	uv_timer_t stall_timer;
	enum next_step next;
	unsigned attempt;     /* failures since the last success, for the backoff */
	uint64_t rng;
	unsigned pending;     /* open timers plus the outstanding request */

	bool started;
	bool stopped;
	bool freeing;
	bool in_data;
	bool synced;
	bool listed_once;
	bool list_restarted;  /* a 410 on a continue token already restarted this LIST at once */
	bool fresh_connection; /* a watch stalled: the next request opens a new connection */
	bool relist_wanted;   /* kc_reflector_relist() while a request ran: LIST again once it ends */
	/* kc_reflector_relist() until the next sync completes: the caller keeps more of each object
	 * now, so an object listed again at the same resourceVersion differs from the cached copy. */
	bool widened;
	bool watch_list;      /* try the streaming initial sync (options.watch_list) */
	bool initial;         /* the watch in progress is a WatchList before its initial-events-end bookmark */
	unsigned wl_failures; /* WatchLists in a row that ended before their initial events did */

	struct kc_reflector_stats stats;
};

static void list_page(struct kc_reflector *r);
static void list_begin(struct kc_reflector *r);
static void watch_begin(struct kc_reflector *r);

static const struct kc_meta *meta_of(const void *obj)
{
	return (const struct kc_meta *)obj;
}

/*
 * The next backoff delay (kc_backoff.h: exponential, full jitter, so that
 * reflectors that failed together do not retry together).  A Retry-After from
 * the server is a floor.
 */
static uint64_t next_backoff(struct kc_reflector *r, uint64_t retry_after_ms)
{
	uint64_t d;

	if (r->attempt < UINT32_MAX)
		r->attempt++;
	d = kc_backoff_delay(r->backoff_initial_ms, r->backoff_max_ms, r->attempt, &r->rng);
	return kc_backoff_with_retry_after(d, retry_after_ms);
}

static void maybe_release(struct kc_reflector *r)
{
	if (!r->freeing || r->pending > 0)
		return;
	kc_list_decoder_free(r->ld);
	kc_watch_decoder_free(r->wd);
	free(r->path);
	free(r->sel_query);
	free(r->rv);
	free(r->list_rv);
	free(r->cont);
	free(r);
}

static void on_retry(uv_timer_t *t);

/* Runs the next step from the retry timer (uv_timer_start cannot fail on an initialised timer). */
static void schedule(struct kc_reflector *r, enum next_step next, uint64_t delay_ms)
{
	if (r->stopped)
		return;
	r->next = next;
	uv_timer_start(&r->retry_timer, on_retry, delay_ms, 0);
}

static void set_rv(struct kc_reflector *r, const char *rv)
{
	size_t n;

	if (!rv || !*rv || strcmp(rv, r->rv) == 0)
		return;
	n = strlen(rv) + 1;
	if (n > r->rv_cap) {
		r->rv = kc_xrealloc(r->rv, n);
		r->rv_cap = n;
	}
	memcpy(r->rv, rv, n);
}

static void deliver(struct kc_reflector *r, enum kc_delta delta, const void *obj, const void *old)
{
	if (r->stopped || !r->on_change)
		return;
	r->on_change(r, delta, obj, old, r->userdata);
}

/*
 * Puts an object from a LIST page or an ADDED/MODIFIED event into the store
 * (taking ownership) and tells the handler, unless its resourceVersion did
 * not change.  An ADDED for a known object is a modification, as in
 * client-go's informers.
 */
/*
 * An object without a name (or, for namespaced kinds, a namespace or a uid)
 * cannot be addressed by any request; it is dropped rather than cached under a
 * bogus key.  Real API servers never send one; a broken proxy or a bug might.
 */
static bool addressable(const struct kc_reflector *r, const struct kc_meta *m)
{
	return m->name[0] && !kc_uid_is_empty(&m->uid) && (!r->type->namespaced || m->ns[0]);
}

/* Where an object handed to apply() comes from: it decides how the ignored gauge moves. */
enum source {
	SRC_LIST,
	SRC_ADDED,
	SRC_MODIFIED,
};

/*
 * An object keep() turns away: counted, not stored.  If the store held it (an
 * update took away what made it interesting), it leaves as a deletion.  The
 * gauge counts a LIST's ignored objects when it completes, and then moves
 * with the watch: +1 for an ADDED or a stored object leaving, -1 for an
 * ignored object deleted or, in apply(), one entering the store.
 */
static void ignore(struct kc_reflector *r, void *obj, enum source src)
{
	const struct kc_meta *m = meta_of(obj);
	void *old = kc_store_take(r->store, m->ns, m->name);

	if (src == SRC_LIST)
		r->list_ignored++;
	else if (old || src == SRC_ADDED)
		r->stats.ignored++;
	if (old) {
		kc_log_info(4, "reflector %s: %s/%s no longer kept", r->type->resource, m->ns, m->name);
		deliver(r, KC_DELTA_DELETED, obj, NULL);
		kc_object_free(old);
	}
	kc_object_free(obj);
}

static void apply(struct kc_reflector *r, void *obj, enum source src)
{
	void *old = NULL;

	if (!addressable(r, meta_of(obj))) {
		/* The key of a decimal resourceVersion is the number itself (kc_decode_rv_key). */
		const struct kc_meta *m = meta_of(obj);

		kc_log_warn("reflector %s: dropping an object without %s (resourceVersion key %llu)",
			    r->type->resource, !m->name[0] ? "a name" : kc_uid_is_empty(&m->uid) ? "a uid" : "a namespace",
			    (unsigned long long)m->rv_key);
		r->stats.decode_errors++;
		kc_object_free(obj);
		return;
	}
	if (r->keep && !r->keep(obj, r->userdata)) {
		ignore(r, obj, src);
		return;
	}
	kc_store_put(r->store, obj, &old);
	if (!old) {
		/* A MODIFIED object new to the store was ignored until this update. */
		if (src == SRC_MODIFIED && r->keep && r->stats.ignored > 0)
			r->stats.ignored--;
		deliver(r, KC_DELTA_ADDED, obj, NULL);
		return;
	}
	if (meta_of(old)->rv_key != meta_of(obj)->rv_key || (src == SRC_LIST && r->widened))
		deliver(r, KC_DELTA_MODIFIED, obj, old);
	kc_object_free(old);
}

/* ---------------------------------------------------------------- requests */

static int on_data(struct kc_request *req, const char *buf, size_t len, void *userdata);
static void on_response(struct kc_request *req, const struct kc_response *resp, void *userdata);

/* Starts a GET of path (which it does not keep); on failure schedules a retry. */
static void issue(struct kc_reflector *r, enum req_kind kind, const char *path)
{
	struct kc_request_options ro;
	int rc;

	memset(&ro, 0, sizeof(ro));
	ro.method = "GET";
	ro.path = path;
	ro.on_data = on_data;
	ro.verb = kind == REQ_LIST ? "list" : "watch";
	ro.resource = r->type->resource;
	/* client-go's order: protobuf first, JSON for a server (or proxy) without it. */
	if (r->protobuf)
		ro.accept = KC_PB_CONTENT_TYPE ", application/json";
	r->format_known = false;
	if (kind == REQ_WATCH) {
		/* A watch lasts until the server's timeoutSeconds; the stall timer guards it. */
		ro.timeout_ms = UINT64_MAX;
	}
	/* After a stall the old connection may be dead without anyone knowing: not on it again. */
	ro.fresh_connection = r->fresh_connection;
	r->fresh_connection = false;
	kc_log_info(4, "reflector %s: GET %s", r->type->resource, path);
	r->req_kind = kind;
	r->req_aborting = false;
	r->end = END_NONE;
	rc = kc_client_request(r->client, &ro, on_response, r, &r->req);
	if (rc < 0) {
		r->req = NULL;
		r->req_kind = REQ_NONE;
		if (rc == -ECANCELED || rc == -ESHUTDOWN) {
			/* The client is closing: there is nothing left to do. */
			r->stopped = true;
			return;
		}
		kc_log_warn("reflector %s: cannot start %s request: %s", r->type->resource, ro.verb,
			    strerror(-rc));
		schedule(r, kind == REQ_LIST ? NEXT_LIST_PAGE : NEXT_WATCH, next_backoff(r, 0));
		return;
	}
	r->pending++;
}

/* ------------------------------------------------------------------ LIST */

static int on_list_item(void *obj, void *userdata)
{
	struct kc_reflector *r = userdata;

	if (r->stopped) {
		kc_object_free(obj);
		return -ECANCELED;
	}
	apply(r, obj, SRC_LIST);
	return r->stopped ? -ECANCELED : 0;
}

/* Requests the current page (the first when r->cont is NULL). */
static void list_page(struct kc_reflector *r)
{
	char *path, *cont = NULL;

	kc_list_decoder_free(r->ld);
	r->ld = kc_list_decoder_new(r->type, &r->dctx, on_list_item, r);
	if (r->cont)
		cont = kc_escape_query(r->cont);
	path = kc_xasprintf("%s?limit=%u%s%s%s", r->path, r->page_size, r->sel_query,
			    cont ? "&continue=" : "", cont ? cont : "");
	free(cont);
	issue(r, REQ_LIST, path);
	free(path);
}

static void watch_start(struct kc_reflector *r, bool initial);

/*
 * Starts a full sync in a new store generation: a WatchList when it is on and
 * the server has not refused it, else a LIST from its first page.
 */
static void list_begin(struct kc_reflector *r)
{
	free(r->cont);
	r->cont = NULL;
	free(r->list_rv);
	r->list_rv = NULL;
	r->list_ignored = 0;
	kc_store_begin_generation(r->store);
	if (r->listed_once)
		kc_log_info(2, "reflector %s: relisting %s", r->type->resource, r->path);
	if (r->watch_list) {
		watch_start(r, true);
		return;
	}
	list_page(r);
}

struct swept {
	void **objs;
	size_t n, cap;
};

static void on_swept(void *obj, void *userdata)
{
	struct swept *s = userdata;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->objs = kc_xrealloc(s->objs, s->cap * sizeof(*s->objs));
	}
	s->objs[s->n++] = obj;
}

/*
 * The last page (or a WatchList's initial events) is in: objects not seen
 * since the sync began were deleted meanwhile.  They are collected first and
 * delivered after the sweep, so a handler can read the store while it runs.
 */
static void sync_complete(struct kc_reflector *r, const char *how)
{
	struct swept s = {0};

	kc_store_sweep(r->store, on_swept, &s);
	for (size_t i = 0; i < s.n; i++) {
		deliver(r, KC_DELTA_DELETED, s.objs[i], NULL);
		kc_object_free(s.objs[i]);
	}
	free(s.objs);
	set_rv(r, r->list_rv);
	r->stats.ignored = r->list_ignored;
	r->stats.lists++;
	if (r->listed_once)
		r->stats.relists++;
	r->listed_once = true;
	r->synced = true;
	r->widened = false;
	r->attempt = 0;
	kc_log_info(2, "reflector %s: %s %zu objects at resourceVersion %s (%zu deleted meanwhile, %llu not kept)",
		    r->type->resource, how, kc_store_count(r->store), r->rv, s.n, (unsigned long long)r->list_ignored);
	if (!r->stopped && r->on_synced)
		r->on_synced(r, r->userdata);
}

static void list_complete(struct kc_reflector *r)
{
	sync_complete(r, "listed");
	schedule(r, NEXT_WATCH, 0);
}

/* Tells the owner about an HTTP error status (after the retry is scheduled: it may stop us). */
static void report_error(struct kc_reflector *r, const struct kc_response *resp)
{
	if (r->on_error && !r->stopped && resp->error == 0 && resp->http_status >= 400)
		r->on_error(r, resp->http_status, r->userdata);
}

static void list_done(struct kc_reflector *r, const struct kc_response *resp)
{
	bool ok = resp->error == 0 && resp->http_status >= 200 && resp->http_status < 300;
	const char *why = NULL;
	int rc;

	if (ok) {
		rc = kc_list_decoder_finish(r->ld);
		if (rc < 0) {
			r->stats.decode_errors++;
			kc_log_warn("reflector %s: bad LIST page: %s", r->type->resource,
				    kc_list_decoder_error(r->ld));
			schedule(r, NEXT_LIST_PAGE, next_backoff(r, 0));
			return;
		}
		r->stats.pages++;
		r->stats.oversized += kc_list_decoder_skipped(r->ld);
		r->attempt = 0;
		free(r->list_rv);
		r->list_rv = kc_xstrdup(kc_list_decoder_resource_version(r->ld));
		free(r->cont);
		r->cont = NULL;
		if (*kc_list_decoder_continue(r->ld))
			r->cont = kc_xstrdup(kc_list_decoder_continue(r->ld));
		r->ld = kc_list_decoder_free(r->ld);
		if (r->cont) {
			schedule(r, NEXT_LIST_PAGE, 0);
			return;
		}
		r->list_restarted = false;
		list_complete(r);
		return;
	}
	if (resp->error == -ECANCELED && !r->req_aborting) {
		/* Cancelled by the client (kc_client_close): stop quietly. */
		r->stopped = true;
		return;
	}
	if (resp->http_status == 410 && r->cont) {
		/* The continue token expired: client-go lists again from the start. */
		r->stats.gone++;
		kc_log_info(2, "reflector %s: continue token expired, restarting the LIST", r->type->resource);
		schedule(r, NEXT_LIST_RESTART, r->list_restarted ? next_backoff(r, 0) : 0);
		r->list_restarted = true;
		return;
	}
	if (resp->error < 0)
		why = resp->error_message ? resp->error_message : strerror(-resp->error);
	else if (resp->status && resp->status->message && *resp->status->message)
		why = resp->status->message;
	else
		why = "unexpected status";
	if (resp->error == -EBADMSG || resp->error == -EMSGSIZE)
		r->stats.decode_errors++;
	{
		uint64_t delay = next_backoff(r, resp->retry_after_ms);

		kc_log_warn("reflector %s: LIST failed (HTTP %ld: %s), retrying in %llu ms", r->type->resource,
			    resp->http_status, why, (unsigned long long)delay);
		schedule(r, NEXT_LIST_PAGE, delay);
	}
	report_error(r, resp);
}

/* ----------------------------------------------------------------- WATCH */

/* How long a watch may stay silent before it is taken for stalled. */
static uint64_t stall_after(const struct kc_reflector *r)
{
	return r->initial && r->stall_ms > WATCH_LIST_SILENCE_MS ? WATCH_LIST_SILENCE_MS : r->stall_ms;
}

static void on_stall(uv_timer_t *t)
{
	struct kc_reflector *r = kc_container_of(t, struct kc_reflector, stall_timer);

	if (!r->req || r->req_kind != REQ_WATCH || r->req_aborting)
		return;
	r->stats.stalls++;
	r->end = END_STALL;
	r->fresh_connection = true;
	r->req_aborting = true;
	kc_log_info(2, "reflector %s: watch stalled (no data for %llu ms), cancelling it", r->type->resource,
		    (unsigned long long)stall_after(r));
	kc_request_cancel(r->req);
}

static int on_watch_event(struct kc_watch_event *ev, void *userdata)
{
	struct kc_reflector *r = userdata;
	void *obj;

	if (r->stopped)
		return 1;
	switch (ev->type) {
	case KC_WATCH_ADDED:
	case KC_WATCH_MODIFIED:
		/* ev->resource_version lives as long as the callback: copy it first. */
		set_rv(r, ev->resource_version);
		obj = ev->object;
		ev->object = NULL;
		if (!obj)
			break;
		r->watch_events++;
		if (r->initial) {
			/* A WatchList's initial state: list items, stamped with the new generation. */
			apply(r, obj, SRC_LIST);
			break;
		}
		apply(r, obj, ev->type == KC_WATCH_ADDED ? SRC_ADDED : SRC_MODIFIED);
		r->stats.events++;
		break;
	case KC_WATCH_DELETED: {
		const struct kc_meta *m;
		void *old;

		set_rv(r, ev->resource_version);
		obj = ev->object;
		ev->object = NULL;
		if (!obj)
			break;
		m = meta_of(obj);
		old = kc_store_take(r->store, m->ns, m->name);
		/* An object over a decoder bound leaves the cache; whether the ignored gauge
		 * counted it before is unknown, so that gauge stays as it is. */
		if (ev->oversized)
			r->stats.oversized++;
		if (old) {
			deliver(r, KC_DELTA_DELETED, obj, NULL);
			kc_object_free(old);
		} else if (r->keep && !ev->oversized && r->stats.ignored > 0) {
			r->stats.ignored--;
		}
		kc_object_free(obj);
		r->stats.events++;
		r->watch_events++;
		break;
	}
	case KC_WATCH_BOOKMARK:
		if (r->initial) {
			if (!ev->initial_events_end)
				break;
			/* The initial state is complete: synced, and the same stream goes on as the watch. */
			r->initial = false;
			r->wl_failures = 0;
			free(r->list_rv);
			r->list_rv = kc_xstrdup(ev->resource_version);
			r->stats.watch_lists++;
			sync_complete(r, "streamed (WatchList)");
			break;
		}
		set_rv(r, ev->resource_version);
		break;
	case KC_WATCH_ERROR:
		if (ev->status.code == 410 ||
		    (ev->status.code == 0 && ev->status.reason &&
		     (strcmp(ev->status.reason, "Expired") == 0 || strcmp(ev->status.reason, "Gone") == 0))) {
			r->stats.gone++;
			r->end = END_GONE;
		} else {
			r->end = END_ERROR;
			kc_log_info(2, "reflector %s: watch ERROR event: %d %s: %s", r->type->resource,
				    ev->status.code, ev->status.reason ? ev->status.reason : "",
				    ev->status.message ? ev->status.message : "");
		}
		return 1;
	}
	return r->stopped ? 1 : 0;
}

static void watch_begin(struct kc_reflector *r)
{
	watch_start(r, false);
}

/*
 * Starts a WATCH from the last resourceVersion or, when initial, a WatchList:
 * the server first streams the current state as ADDED events, ends it with a
 * bookmark annotated k8s.io/initial-events-end, then goes on as a watch, so
 * that a full sync holds one watch line at a time instead of LIST pages.
 */
static void watch_start(struct kc_reflector *r, bool initial)
{
	unsigned timeout_s = r->watch_timeout_s;
	char *path, *rv;

	if (timeout_s == 0)
		timeout_s = 300 + (unsigned)(kc_backoff_rand(&r->rng) % 300);
	if (!r->wd)
		r->wd = kc_watch_decoder_new(r->type, &r->dctx, r->max_line, on_watch_event, r);
	else
		kc_watch_decoder_reset(r->wd);
	r->initial = initial;
	if (initial) {
		/* No resourceVersion: the most recent state, read consistently, as client-go asks. */
		path = kc_xasprintf("%s?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
				    "&allowWatchBookmarks=true&timeoutSeconds=%u%s",
				    r->path, timeout_s, r->sel_query);
	} else {
		rv = kc_escape_query(r->rv);
		path = kc_xasprintf("%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u%s",
				    r->path, rv, timeout_s, r->sel_query);
		free(rv);
	}
	r->watch_start_ms = kc_monotonic_ms();
	r->watch_events = 0;
	r->stats.watches++;
	issue(r, REQ_WATCH, path);
	free(path);
	if (r->req)
		uv_timer_start(&r->stall_timer, on_stall, stall_after(r), 0);
}

/*
 * Whether an HTTP status refuses the WatchList request itself: a server
 * without the WatchList feature answers 422 (sendInitialEvents forbidden),
 * an older one 400 or 422 (resourceVersionMatch on a watch).  401, 403, 404,
 * 408, 410 and 429 say nothing about WatchList.
 */
static bool refuses_watch_list(long status)
{
	return status >= 400 && status < 500 && status != 401 && status != 403 && status != 404 && status != 408 &&
	       status != 410 && status != 429;
}

/*
 * A WatchList ended before its initial-events-end bookmark.  Refused, or
 * ended that way WATCH_LIST_MAX_FAILURES times in a row (a server that
 * ignores sendInitialEvents never sends the bookmark): paged LISTs from now
 * on.  Otherwise the sync starts over, after a backoff unless it was a 410.
 */
static void watch_list_failed(struct kc_reflector *r, const struct kc_response *resp, enum watch_end end)
{
	bool gone = end == END_GONE || resp->http_status == 410;
	const char *why = resp->status && resp->status->message && *resp->status->message ? resp->status->message
			  : resp->error < 0 && resp->error_message                            ? resp->error_message
			  : resp->error < 0                                                  ? strerror(-resp->error)
											     : "ended early";

	r->initial = false;
	if (gone) {
		if (end != END_GONE)
			r->stats.gone++;
		schedule(r, NEXT_LIST_RESTART, 0);
		return;
	}
	if ((resp->error == 0 && refuses_watch_list(resp->http_status)) || end == END_STALL ||
	    ++r->wl_failures >= WATCH_LIST_MAX_FAILURES) {
		r->watch_list = false;
		r->stats.watch_list_fallbacks++;
		/* Servers before WatchList are a normal sight, not a fault: one Info line. */
		kc_log_info(0, "reflector %s: streaming initial sync (WatchList) unavailable (HTTP %ld: %s); "
			       "falling back to paged LIST",
			    r->type->resource, resp->http_status, why);
		schedule(r, NEXT_LIST_RESTART, 0);
		return;
	}
	{
		uint64_t delay = next_backoff(r, resp->retry_after_ms);

		kc_log_info(2, "reflector %s: WatchList ended before its initial events did (HTTP %ld: %s), "
			       "starting over in %llu ms",
			    r->type->resource, resp->http_status, why, (unsigned long long)delay);
		schedule(r, NEXT_LIST_RESTART, delay);
	}
	report_error(r, resp);
}

static void watch_done(struct kc_reflector *r, const struct kc_response *resp)
{
	uint64_t lasted = kc_monotonic_ms() - r->watch_start_ms;
	bool clean = resp->error == 0 && resp->http_status >= 200 && resp->http_status < 300;
	enum watch_end end = r->end;
	const char *why;
	uint64_t delay;

	uv_timer_stop(&r->stall_timer);
	r->end = END_NONE;
	if (end == END_NONE && resp->error == -ECANCELED && !r->req_aborting) {
		r->stopped = true;
		return;
	}
	if (r->initial) {
		watch_list_failed(r, resp, end);
		return;
	}
	if (end == END_GONE || resp->http_status == 410) {
		if (end != END_GONE)
			r->stats.gone++;
		kc_log_info(2, "reflector %s: resourceVersion %s is too old (410), relisting", r->type->resource,
			    r->rv);
		schedule(r, NEXT_LIST_RESTART, 0);
		return;
	}
	if (r->watch_events > 0 || lasted >= HEALTHY_WATCH_MS)
		r->attempt = 0;
	r->stats.watch_restarts++;
	if (end == END_NONE && clean && (r->watch_events > 0 || lasted >= SHORT_WATCH_MS)) {
		kc_log_info(4, "reflector %s: watch ended after %llu ms, re-watching from %s", r->type->resource,
			    (unsigned long long)lasted, r->rv);
		schedule(r, NEXT_WATCH, 0);
		return;
	}
	switch (end) {
	case END_STALL:
		why = "stalled";
		break;
	case END_ERROR:
		why = "ERROR event";
		break;
	case END_DECODE:
		why = r->wd ? kc_watch_decoder_error(r->wd) : "decode error";
		break;
	default:
		if (clean)
			why = "very short watch";
		else if (resp->error < 0)
			why = resp->error_message ? resp->error_message : strerror(-resp->error);
		else if (resp->status && resp->status->message && *resp->status->message)
			why = resp->status->message;
		else
			why = "unexpected status";
		break;
	}
	delay = next_backoff(r, resp->retry_after_ms);
	kc_log_info(2, "reflector %s: watch ended (HTTP %ld: %s) after %llu ms, re-watching from %s in %llu ms",
		    r->type->resource, resp->http_status, why ? why : "", (unsigned long long)lasted, r->rv,
		    (unsigned long long)delay);
	schedule(r, NEXT_WATCH, delay);
	report_error(r, resp);
}

/* -------------------------------------------------------------- plumbing */

static int on_data(struct kc_request *req, const char *buf, size_t len, void *userdata)
{
	struct kc_reflector *r = userdata;
	int rc;

	(void)req;
	if (r->stopped || r->req_aborting || r->relist_wanted)
		return -ECANCELED;
	r->in_data = true;
	if (!r->format_known) {
		/* The first bytes of a 2xx body: its headers say how it is encoded. */
		bool pb = r->protobuf && kc_pb_is_content_type(kc_request_content_type(req));

		r->format_known = true;
		if (r->req_kind == REQ_LIST && pb)
			kc_list_decoder_set_protobuf(r->ld, r->max_line);
		else if (r->req_kind != REQ_LIST)
			kc_watch_decoder_set_protobuf(r->wd, pb);
		if (pb != r->last_pb)
			kc_log_info(2, "reflector %s: reading %s", r->type->resource, pb ? "protobuf" : "JSON");
		r->last_pb = pb;
	}
	if (r->req_kind == REQ_LIST) {
		rc = kc_list_decoder_feed(r->ld, buf, len);
		if (rc < 0 && rc != -ECANCELED && !r->stopped)
			kc_log_warn("reflector %s: bad LIST page: %s", r->type->resource,
				    kc_list_decoder_error(r->ld));
	} else {
		uv_timer_start(&r->stall_timer, on_stall, stall_after(r), 0);
		rc = kc_watch_decoder_feed(r->wd, buf, len);
		if (rc < 0 && !r->stopped) {
			r->stats.decode_errors++;
			r->end = END_DECODE;
		}
	}
	r->in_data = false;
	if (r->stopped || r->relist_wanted)
		rc = -ECANCELED;
	if (rc == 0)
		return 0;
	r->req_aborting = true;
	return rc < 0 ? rc : -ECONNABORTED;
}

static void on_response(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct kc_reflector *r = userdata;
	enum req_kind kind = r->req_kind;

	(void)req;
	r->req = NULL;
	r->req_kind = REQ_NONE;
	r->pending--;
	if (r->freeing) {
		maybe_release(r);
		return;
	}
	if (r->stopped)
		return;
	if (r->relist_wanted) {
		/* Ended by kc_reflector_relist(): whatever it was, a new LIST follows. */
		uv_timer_stop(&r->stall_timer);
		r->relist_wanted = false;
		r->req_aborting = false;
		r->end = END_NONE;
		schedule(r, NEXT_LIST_RESTART, 0);
		return;
	}
	kc_log_info(4, "reflector %s: %s ended: HTTP %ld, error %d", r->type->resource,
		    kind == REQ_LIST ? "LIST" : "WATCH", resp->http_status, resp->error);
	if (kind == REQ_LIST)
		list_done(r, resp);
	else
		watch_done(r, resp);
	r->req_aborting = false;
}

static void on_retry(uv_timer_t *t)
{
	struct kc_reflector *r = kc_container_of(t, struct kc_reflector, retry_timer);

	if (r->stopped || r->req)
		return;
	switch (r->next) {
	case NEXT_LIST_PAGE:
		list_page(r);
		break;
	case NEXT_LIST_RESTART:
		list_begin(r);
		break;
	case NEXT_WATCH:
		watch_begin(r);
		break;
	}
}

static void on_timer_closed(uv_handle_t *h)
{
	struct kc_reflector *r = h->data;

	r->pending--;
	maybe_release(r);
}

/* ------------------------------------------------------------------ API */

static int add_selector(char **q, const char *name, const char *value)
{
	char *esc, *n;

	if (!value || !*value)
		return 0;
	esc = kc_escape_query(value);
	if (!esc)
		return -ENOMEM;
	n = kc_xasprintf("%s&%s=%s", *q, name, esc);
	free(esc);
	free(*q);
	*q = n;
	return 0;
}

int kc_reflector_new(struct kc_client *c, struct kc_intern *intern, const struct kc_reflector_options *o,
		     struct kc_reflector **ret)
{
	struct kc_reflector *r;
	const char *path;
	int rc;

	if (!c || !intern || !o || !o->type || !ret)
		return -EINVAL;
	if (!o->loop) {
		kc_log_error("reflector %s: kc_reflector_options.loop is required (the client's loop)",
			     o->type->resource);
		return -EINVAL;
	}
	path = o->path ? o->path : o->type->list_path;
	if (!path || path[0] != '/' || strchr(path, '?'))
		return -EINVAL;

	r = kc_xcalloc(1, sizeof(*r));
	r->client = c;
	r->loop = o->loop;
	r->type = o->type;
	r->dctx.intern = intern;
	r->dctx.opts = o->decode;
	r->path = kc_xstrdup(path);
	r->sel_query = kc_xstrdup("");
	rc = add_selector(&r->sel_query, "labelSelector", o->label_selector);
	if (rc == 0)
		rc = add_selector(&r->sel_query, "fieldSelector", o->field_selector);
	if (rc < 0)
		goto err_free;
	r->page_size = o->page_size ? o->page_size : DEFAULT_PAGE_SIZE;
	r->watch_timeout_s = o->watch_timeout_s;
	r->stall_ms = o->stall_timeout_ms ? o->stall_timeout_ms : DEFAULT_STALL_MS;
	r->backoff_initial_ms = o->backoff_initial_ms ? o->backoff_initial_ms : DEFAULT_BACKOFF_INITIAL_MS;
	r->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
	if (r->backoff_max_ms < r->backoff_initial_ms)
		r->backoff_max_ms = r->backoff_initial_ms;
	r->max_line = o->max_line;
	r->on_change = o->on_change;
	r->on_synced = o->on_synced;
	r->keep = o->keep;
	r->on_error = o->on_error;
	r->watch_list = o->watch_list;
	r->protobuf = o->protobuf && kc_type_reads_protobuf(o->type);
	r->userdata = o->userdata;
	r->rv = kc_xstrdup("");
	r->rv_cap = 1;
	r->rng = (uint64_t)(uintptr_t)r ^ (kc_monotonic_ms() << 20);
	r->store = kc_store_new(r->type);

	rc = uv_timer_init(r->loop, &r->retry_timer);
	if (rc < 0)
		goto err_store;
	r->retry_timer.data = r;
	r->pending++;
	rc = uv_timer_init(r->loop, &r->stall_timer);
	if (rc < 0) {
		/* The first timer is open: release through its close callback. */
		r->stopped = true;
		r->freeing = true;
		r->store = kc_store_free(r->store);
		uv_close((uv_handle_t *)&r->retry_timer, on_timer_closed);
		return rc;
	}
	r->stall_timer.data = r;
	r->pending++;
	*ret = r;
	return 0;

err_store:
	kc_store_free(r->store);
err_free:
	free(r->path);
	free(r->sel_query);
	free(r->rv);
	free(r);
	return rc;
}

int kc_reflector_start(struct kc_reflector *r)
{
	if (r->started)
		return -EALREADY;
	if (r->stopped)
		return -ECANCELED;
	r->started = true;
	kc_log_info(2, "reflector %s: starting list+watch of %s%s%s", r->type->resource, r->path,
		    *r->sel_query ? "?" : "", *r->sel_query ? r->sel_query + 1 : "");
	kc_store_begin_generation(r->store);
	schedule(r, NEXT_LIST_RESTART, 0);
	return 0;
}

void kc_reflector_relist(struct kc_reflector *r)
{
	if (!r || !r->started || r->stopped)
		return;
	kc_log_info(2, "reflector %s: relisting %s: the caller widened what it keeps", r->type->resource, r->path);
	r->widened = true;
	if (!r->req) {
		schedule(r, NEXT_LIST_RESTART, 0);
		return;
	}
	r->relist_wanted = true;
	/* Inside on_data the request is aborted by its return value instead. */
	if (!r->req_aborting && !r->in_data) {
		r->req_aborting = true;
		kc_request_cancel(r->req);
	}
}

void kc_reflector_stop(struct kc_reflector *r)
{
	if (!r || r->stopped)
		return;
	r->stopped = true;
	uv_timer_stop(&r->retry_timer);
	uv_timer_stop(&r->stall_timer);
	/* Inside on_data the request is aborted by its return value instead. */
	if (r->req && !r->req_aborting && !r->in_data) {
		r->req_aborting = true;
		kc_request_cancel(r->req);
	}
}

void kc_reflector_free(struct kc_reflector *r)
{
	if (!r)
		return;
	kc_reflector_stop(r);
	r->freeing = true;
	r->store = kc_store_free(r->store);
	uv_close((uv_handle_t *)&r->retry_timer, on_timer_closed);
	uv_close((uv_handle_t *)&r->stall_timer, on_timer_closed);
}

bool kc_reflector_has_synced(const struct kc_reflector *r)
{
	return r->synced;
}

const struct kc_store *kc_reflector_store(const struct kc_reflector *r)
{
	return r->store;
}

const char *kc_reflector_resource_version(const struct kc_reflector *r)
{
	return r->rv;
}

const struct kc_reflector_stats *kc_reflector_stats(const struct kc_reflector *r)
{
	return &r->stats;
}

const struct kc_type *kc_reflector_type(const struct kc_reflector *r)
{
	return r->type;
}
