/*
 * A reflector keeps a store in step with the API server the way client-go's
 * does: LIST in pages (limit/continue, optional label and field selectors),
 * then WATCH from the list's resourceVersion with allowWatchBookmarks=true and
 * a server-side timeout.  A dropped stream, a stalled one (no bytes, not even
 * bookmarks, for stall_timeout_ms) or a decode error is re-watched from the
 * last resourceVersion with backoff (after a stall on a new connection, since
 * the old one may be dead); 410 Gone (as an HTTP status or an ERROR
 * event) leads to a relist, after which objects deleted meanwhile are
 * delivered as deletions.  has_synced turns true after the first complete list.
 */
#ifndef KC_REFLECTOR_H
#define KC_REFLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kc_decode.h"
#include "kc_delta.h"
#include "kc_http.h"
#include "kc_store.h"

struct kc_reflector;

/*
 * Called after the store has been updated.  ADDED: obj is the new object,
 * old NULL.  MODIFIED: obj new, old the previous state.  DELETED: obj is the
 * last known state, old NULL.  All pointers are borrowed: obj (for ADDED and
 * MODIFIED) stays valid while it is in the store; old and deleted objects are
 * freed when the handler returns.  An update with an unchanged
 * resourceVersion is not delivered.
 */
typedef void (*kc_reflector_handler)(struct kc_reflector *r, enum kc_delta delta, const void *obj,
				     const void *old, void *userdata);
/* Called after every complete LIST (the first one sets has_synced). */
typedef void (*kc_reflector_synced_cb)(struct kc_reflector *r, void *userdata);
/*
 * Whether the store keeps a decoded object (obj is borrowed; userdata is the
 * options' userdata).  It must not start requests or touch the store.
 */
typedef bool (*kc_reflector_keep_cb)(const void *obj, void *userdata);
/*
 * Called when a LIST or WATCH is answered with an HTTP error status other
 * than 410 (which the reflector handles by relisting), after the reflector
 * has scheduled its retry: a 404, say, can mean that the API version is no
 * longer served, which the owner may want to re-check.  May stop the reflector.
 */
typedef void (*kc_reflector_error_cb)(struct kc_reflector *r, long http_status, void *userdata);

/*
 * The options are copied by kc_reflector_new(), except type and decode, which
 * are borrowed and must outlive the reflector.
 */
struct kc_reflector_options {
	/* Required: the loop the client runs on, for the backoff and stall timers
	 * (kc_http.h has no accessor for the client's loop). */
	uv_loop_t *loop;
	const struct kc_type *type;
	const char *path;            /* NULL = type->list_path */
	const char *label_selector;  /* NULL = none */
	const char *field_selector;
	unsigned page_size;          /* 0 = 500 */
	unsigned watch_timeout_s;    /* server-side timeoutSeconds; 0 = random in [300, 600) */
	uint64_t stall_timeout_ms;   /* 0 = 120000 */
	uint64_t backoff_initial_ms; /* 0 = 800 */
	uint64_t backoff_max_ms;     /* 0 = 30000 */
	size_t max_line;             /* 0 = 16 MiB */
	const struct kc_decode_opts *decode;
	kc_reflector_handler on_change;
	kc_reflector_synced_cb on_synced;
	/*
	 * Optional: only objects for which keep() is true are stored and
	 * delivered; the others are counted (stats.ignored) and freed at once.
	 * A stored object that an update makes fail keep() leaves the store as
	 * a DELETED change; an ignored one that an update makes pass it enters
	 * as ADDED.  When the caller widens what keep() accepts, objects it
	 * ignored before are only seen again after kc_reflector_relist().
	 */
	kc_reflector_keep_cb keep;
	/*
	 * Sync through a WatchList (sendInitialEvents=true&resourceVersionMatch=
	 * NotOlderThan&allowWatchBookmarks=true: the state streamed as ADDED
	 * events up to the bookmark annotated k8s.io/initial-events-end, then
	 * the same stream goes on as the watch) instead of paged LISTs.  When the
	 * server refuses it (an HTTP 4xx other than 401, 403, 404, 408, 410 and
	 * 429), or three attempts in a row end before the bookmark, the
	 * reflector lists in pages from then on.  Either way one watch line or
	 * one LIST page chunk at a time is held, never a whole response.
	 */
	bool watch_list;
	/*
	 * Ask for Kubernetes' protobuf encoding (Accept: application/vnd.kubernetes.protobuf,
	 * application/json) where the type reads it (kc_type_reads_protobuf): a pod's
	 * watch event is about a third smaller and decodes in a fraction of the CPU, since
	 * what is not kept is stepped over unread.  Each response is decoded by its own
	 * Content-Type, so a server that answers JSON is read as before.
	 */
	bool protobuf;
	kc_reflector_error_cb on_error; /* may be NULL */
	void *userdata;
};

struct kc_reflector_stats {
	uint64_t lists;           /* complete LISTs */
	uint64_t relists;         /* LISTs after the first */
	uint64_t pages;
	uint64_t watches;         /* WATCH requests started */
	uint64_t watch_restarts;  /* watches re-established after a drop, stall, error or timeout */
	uint64_t gone;            /* 410s seen */
	uint64_t stalls;
	uint64_t decode_errors;
	uint64_t events;          /* watch events applied */
	uint64_t ignored;         /* objects on the server that keep() turned away, as of now (a gauge) */
	uint64_t watch_lists;     /* of the complete LISTs, those streamed by WatchList */
	uint64_t watch_list_fallbacks; /* 1 once the server refused WatchList (paged LIST since) */
	uint64_t oversized;       /* objects left out of the cache, over a decoder bound (LIST items and watch events) */
};

/*
 * Creates a stopped reflector with an empty store.  The client and the intern
 * table are borrowed and must outlive it.  Returns 0 or -EINVAL (bad options:
 * no loop, no type, or a path that does not start with '/' or has a query).
 */
int kc_reflector_new(struct kc_client *c, struct kc_intern *intern, const struct kc_reflector_options *o,
		     struct kc_reflector **ret);
/* Starts the first LIST.  Returns 0, -EALREADY if started, or a request error. */
int kc_reflector_start(struct kc_reflector *r);
/*
 * Starts a new LIST at once (ending the watch or LIST in progress), for a
 * caller that widened its keep() predicate or its decode options: objects it
 * ignored are stored from the new list on, and every cached object listed
 * again is delivered as MODIFIED, even at the same resourceVersion (the new
 * copy may keep what the old one dropped).  A no-op before
 * kc_reflector_start() or after stop.
 */
void kc_reflector_relist(struct kc_reflector *r);
/* Cancels its requests and timers; no handler runs afterwards.  May be called
 * from a handler.  The reflector may be freed from the loop afterwards
 * (kc_reflector_free waits for handle close callbacks by itself). */
void kc_reflector_stop(struct kc_reflector *r);
/*
 * Stops the reflector, frees the store and its objects at once, and releases
 * the rest once its timers are closed and its request callback has run (the
 * loop must run for that, before uv_loop_close()).  Accepts NULL.  Not to be
 * called from a handler.
 */
void kc_reflector_free(struct kc_reflector *r);

bool kc_reflector_has_synced(const struct kc_reflector *r);
/* Borrowed; objects in it follow the handler rules above. */
const struct kc_store *kc_reflector_store(const struct kc_reflector *r);
/* The last resourceVersion seen (list, object or bookmark); "" before the first list. */
const char *kc_reflector_resource_version(const struct kc_reflector *r);
const struct kc_reflector_stats *kc_reflector_stats(const struct kc_reflector *r);
const struct kc_type *kc_reflector_type(const struct kc_reflector *r);

#endif
