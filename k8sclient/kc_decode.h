/*
 * Incremental JSON decoders for the hot path: LIST pages and WATCH streams of
 * pods, nodes, ResourceClaims and ResourceSlices.  They are callback-driven
 * (SAX, no document tree) and build the compact structs of kc_objects.h as the
 * bytes arrive, skipping every field they do not keep.  Pure: no uv.h, no curl.h.
 *
 * Malformed input, wrong types and missing fields never crash a decoder:
 * a wrong-typed field is ignored, malformed JSON is an error (-EBADMSG) with
 * a message, and every line and string has a bound (-EMSGSIZE).
 */
#ifndef KC_DECODE_H
#define KC_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "kc_intern.h"
#include "kc_objects.h"
#include "kc_util.h"

struct kc_decode_opts {
	/* NULL-terminated lists.  labels: NULL keeps all; annotations: NULL keeps none. */
	const char *const *keep_labels;
	const char *const *keep_annotations;
	size_t max_message;  /* condition and health messages are cut to this; 0 = 1024 */
	/*
	 * Pods: whether a resource name ("nvidia.com/gpu", or "claim:<claim>/<request>" in
	 * allocatedResourcesStatus) counts as a device; NULL counts every one and drops nothing.
	 * With it a pod keeps only what a device controller reads: the containers that hold a
	 * device (a request or limit above zero of a device resource, or a DRA claim) with only
	 * those requests and limits, the allocatedResourcesStatus entries of device resources
	 * that list devices, and the statuses of kept containers or with such an entry.  Called
	 * once a pod is complete (status may come before spec), with interned names.
	 */
	bool (*is_device)(const char *resource, void *userdata);
	void *device_userdata;
	/*
	 * Nodes: whether a condition type (interned) is kept; NULL keeps every one.  A node
	 * reports four or five conditions that a device controller never reads (MemoryPressure,
	 * Ready, ...): with 65,000 nodes they cost more than a MiB each.
	 */
	bool (*keep_condition)(const char *type, void *userdata);
	void *condition_userdata;
};

struct kc_decode_ctx {
	struct kc_intern *intern;
	/* NULL = defaults.  Borrowed: it must outlive the decoders, which read it again as each
	 * object begins, so its owner may change it between objects (and free the lists it replaced). */
	const struct kc_decode_opts *opts;
};

/*
 * The kc_meta.rv_key of a resourceVersion: a decimal number below 2^63
 * without leading zeros is itself; any other text (resourceVersions are
 * opaque) is a 64-bit hash with the top bit set, so two keys are equal iff
 * the texts are (for hashed ones: but for a 2^-63 chance).  "" is 0.
 */
uint64_t kc_decode_rv_key(const char *rv, size_t len);

/*
 * Decodes one whole object document.  On success *ret_obj is a new object
 * (one heap block, see kc_objects.h) owned by the caller.
 */
int kc_decode_object(const struct kc_type *t, const struct kc_decode_ctx *ctx,
		     const char *json, size_t len, void **ret_obj, struct kc_error *err);

/*
 * LIST decoder: feed the response body of one page in any number of chunks.
 * Errors are sticky: after one, feed and finish return it again.  A token
 * (one string) longer than 4 MiB is -EMSGSIZE rather than buffered.
 * Each element of "items" is passed to item_cb as soon as it is complete;
 * item_cb takes ownership of obj.  A non-zero return from item_cb aborts
 * decoding with that value.
 */
typedef int (*kc_list_item_cb)(void *obj, void *userdata);

struct kc_list_decoder;

/* Whether the kind is read from Kubernetes' protobuf encoding as well as JSON
 * (pods and nodes: the kinds whose watch events are many and large). */
bool kc_type_reads_protobuf(const struct kc_type *t);

struct kc_list_decoder *kc_list_decoder_new(const struct kc_type *t, const struct kc_decode_ctx *ctx,
					    kc_list_item_cb item_cb, void *userdata);
/*
 * The body is Kubernetes' protobuf encoding (kc_type_reads_protobuf(t) must hold):
 * call before the first feed, when the response's Content-Type says so.  One item
 * is held at a time; an item over max_item bytes (0 = 16 MiB) is left out and
 * counted in kc_list_decoder_skipped, as an object over a JSON bound is.
 */
void kc_list_decoder_set_protobuf(struct kc_list_decoder *d, size_t max_item);
int kc_list_decoder_feed(struct kc_list_decoder *d, const char *buf, size_t len);
/* Call after the last chunk; fails with -EBADMSG if the document is incomplete. */
int kc_list_decoder_finish(struct kc_list_decoder *d);
/* metadata.resourceVersion and metadata.continue of the list ("" if absent);
 * valid until the decoder is freed. */
const char *kc_list_decoder_resource_version(const struct kc_list_decoder *d);
const char *kc_list_decoder_continue(const struct kc_list_decoder *d);
size_t kc_list_decoder_items(const struct kc_list_decoder *d);
/*
 * Items over one of the decoder's bounds (more than 16,384 elements in one array, or more
 * than 4 MiB of kept strings): each is logged as a warning with its name and left out,
 * and the LIST goes on.  (A watch event of such an object is delivered as its DELETED.)
 */
size_t kc_list_decoder_skipped(const struct kc_list_decoder *d);
const char *kc_list_decoder_error(const struct kc_list_decoder *d);
/* Accepts NULL; returns NULL. */
struct kc_list_decoder *kc_list_decoder_free(struct kc_list_decoder *d);

/*
 * WATCH decoder: splits newline-delimited JSON across any chunk boundary and
 * decodes each line {"type": ..., "object": {...}} (keys in either order).
 */
enum kc_watch_type {
	KC_WATCH_ADDED = 1,
	KC_WATCH_MODIFIED,
	KC_WATCH_DELETED,
	KC_WATCH_BOOKMARK,
	KC_WATCH_ERROR,
};

struct kc_watch_event {
	enum kc_watch_type type;
	/* ADDED, MODIFIED, DELETED: the object; the callback takes ownership
	 * (set ev->object = NULL after taking it, or leave it and the decoder frees it). */
	void *object;
	/* The object's (or bookmark's) metadata.resourceVersion; valid during the callback
	 * (the object keeps only kc_meta.rv_key). */
	const char *resource_version;
	/* ERROR: the Status carried in "object" (code 410 = Gone/Expired). */
	struct kc_status status;
	/* BOOKMARK: annotated KC_INITIAL_EVENTS_END "true": the initial state of
	 * a sendInitialEvents watch (WatchList) is complete. */
	bool initial_events_end;
	/* DELETED: the object is over a decoder bound (see kc_list_decoder_skipped), so
	 * the event stands for its deletion from the cache, whatever the server sent. */
	bool oversized;
};

#define KC_INITIAL_EVENTS_END "k8s.io/initial-events-end"


/* Returns 0 to go on, non-zero to stop feeding (kc_watch_decoder_feed returns it). */
typedef int (*kc_watch_event_cb)(struct kc_watch_event *ev, void *userdata);

struct kc_watch_decoder;

/* max_line: longest accepted line in bytes (0 = 16 MiB). */
struct kc_watch_decoder *kc_watch_decoder_new(const struct kc_type *t, const struct kc_decode_ctx *ctx,
					      size_t max_line, kc_watch_event_cb cb, void *userdata);
/*
 * Feeds bytes.  Returns 0, a callback's non-zero value, -EMSGSIZE when a line
 * exceeds max_line (the rest of that line is then discarded), or -EBADMSG for a
 * line that is not valid JSON.  After an error the decoder stays usable (the
 * bad line is dropped), but a watch should be restarted.  Lines with an
 * unknown "type" are skipped and counted.
 *
 * On an error or a callback's stop, the bytes of buf after that line are not
 * processed (so no event after a lost one is ever delivered), and the decoder
 * resynchronizes at the next newline it is fed.  Blank lines and a trailing
 * "\r" are ignored.  An ADDED/MODIFIED/DELETED/ERROR line without "object",
 * or a line without "type", is -EBADMSG.  BOOKMARK events carry no object.
 * ERROR events fill code, status, reason, message and retry_after_s (not
 * causes); the decoder frees ev->status after the callback, so a callback
 * that keeps it copies the struct and zeroes ev->status.
 */
int kc_watch_decoder_feed(struct kc_watch_decoder *d, const char *buf, size_t len);
const char *kc_watch_decoder_error(const struct kc_watch_decoder *d);
uint64_t kc_watch_decoder_skipped(const struct kc_watch_decoder *d);
/* Drops any partial line or frame (for a new stream); the encoding stays as set. */
void kc_watch_decoder_reset(struct kc_watch_decoder *d);
/*
 * The stream is Kubernetes' protobuf encoding (on) or JSON lines: set it for each
 * stream from the response's Content-Type (kc_type_reads_protobuf(t) must hold for
 * on).  Protobuf frames are a 4-byte big-endian length and an event; a frame over
 * max_line is -EMSGSIZE.  After an error or a stop the stream cannot resynchronize:
 * the caller ends it.
 */
void kc_watch_decoder_set_protobuf(struct kc_watch_decoder *d, bool on);
struct kc_watch_decoder *kc_watch_decoder_free(struct kc_watch_decoder *d);

#endif
