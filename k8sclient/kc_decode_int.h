/*
 * Private to the decoders of kc_decode.h, which are four files, one job each:
 * kc_decode_schema.c (the static schema per kind and the SAX handler that
 * fills the scratch area), kc_decode_layout.c (the scratch area itself and the
 * copy of a finished object into one heap block), kc_decode.c (single
 * documents and the LIST and WATCH stream decoders, JSON) and kc_decode_pb.c
 * (the same streams in protobuf).  This header is what they share: the field
 * ids of the schemas, the scratch area, the stream decoders' state, and the
 * functions one file calls in another.  Nothing outside those files includes it.
 */
#ifndef KC_DECODE_INT_H
#define KC_DECODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kc_decode.h"
#include "kc_objects.h"
#include "kc_sax.h"

/* The field ids the schemas hand to the handler. */
enum {
	X_NONE = 0,
	/* metadata */
	M_META, M_NS, M_NAME, M_UID, M_RV, M_DEL, M_LABELS, M_ANNOT, M_OWNER,
	O_KIND, O_NAME, O_UID, O_CTRL,
	/* conditions and taints, shared */
	C_TYPE, C_STATUS, C_REASON, C_MESSAGE, C_LTT,
	T_KEY, T_VALUE, T_EFFECT, T_ADDED,
	X_SPEC, X_STATUS,
	/* pod */
	P_NODE, P_PRIO, P_CONT, P_INITCONT, PC_NAME, PC_RES, PC_REQ, PC_LIM,
	P_SCLAIM, PSC_NAME, PSC_CLAIM, P_PHASE, P_CSTAT, P_ICSTAT,
	CS_NAME, CS_RESTARTS, CS_STATE, CS_WAITING, CS_W_REASON, CS_RUNNING, CS_TERM,
	CS_T_EXIT, CS_T_REASON, CS_LAST, CS_LTERM, CS_L_EXIT,
	CS_ARS, RS_NAME, RS_RES, DH_ID, DH_HEALTH, DH_MSG, P_CLST, PCS_NAME, PCS_CLAIM,
	PC_CLAIMS, PCC_NAME, CS_READY,
	/* node */
	N_UNSCHED, N_TAINTS, N_CAP, N_ALLOC, N_CONDS,
	/* resource claim */
	RC_ALLOC, X_ADEV, RC_RESULT, RR_REQ, RR_DRIVER, RR_POOL, RR_DEVICE,
	RC_DEVSTAT, DS_DRIVER, DS_POOL, DS_DEVICE, DS_CONDS, RC_RESV, CO_RES, CO_NAME, CO_UID,
	RR_TOL, TL_KEY, TL_OP, TL_VALUE, TL_EFFECT, TL_SECS,
	/* resource slice */
	SL_DRIVER, SL_NODE, X_POOL, SL_POOL, SL_ALL, SL_DEV, SD_NAME, SD_TAINTS, X_BASIC,
	/* device taint rule */
	DR_SEL, DR_DRIVER, DR_POOL, DR_DEVICE, DR_TAINT,
	/* list and watch envelopes, and the Status of watch ERROR events */
	X_LMETA, L_RV, L_CONT, L_ITEM, W_TYPE, W_OBJ,
	ST_CODE, ST_STATUS, ST_REASON, ST_MESSAGE, X_DETAILS, ST_RETRY,
};

/* ---- the scratch area one object is built in ---------------------------------- */

struct vec {
	char *data;
	uint32_t n;
	uint32_t cap;
	uint32_t elsz;
};

struct chunk {
	struct chunk *next;
	size_t size;
	size_t used;
	char data[];
};

/* A device of allocatedResourcesStatus as decoded; the layout makes it an ID and, unless
 * it is plainly Healthy, a kc_device_note. */
struct dec_device {
	struct kc_devid id;
	const char *message;
	enum kc_health health;
};

enum kind { K_POD, K_NODE, K_CLAIM, K_SLICE, K_RULE };

struct kc_decoder_ops {
	enum kind kind;
	struct kc_sax_schema root;
	struct kc_sax_schema list_root;
	struct kc_sax_schema watch_root;
	/* Protobuf (kc_pb.h): whether the kind's schema has its field numbers, the
	 * list message's ListMeta, and the Status of a watch ERROR event. */
	bool pb;
	const struct kc_sax_schema *pb_list_meta;
	const struct kc_sax_schema *pb_status;
};

enum layer { LAYER_OBJECT, LAYER_LIST, LAYER_WATCH };

struct dec {
	const struct kc_type *t;
	struct kc_intern *in;
	const struct kc_decode_opts *opts; /* borrowed; read again as each object begins */
	const char *const *keep_labels;
	const char *const *keep_annotations;
	size_t max_message;
	bool (*is_device)(const char *resource, void *userdata);
	void *device_userdata;
	bool (*keep_condition)(const char *type, void *userdata);
	void *condition_userdata;
	enum layer layer;
	int err;
	char errmsg[256];
	/*
	 * The object is over one of the decoder's bounds (elements of one array, bytes of kept
	 * strings): its decoding goes on, so that the stream stays in step, and the object is
	 * dropped (kc_dec_finish returns NULL with err 0); overmsg says which bound.
	 */
	bool over;
	char overmsg[96];

	union {
		struct kc_meta meta;
		struct kc_pod pod;
		struct kc_node node;
		struct kc_resource_claim claim;
		struct kc_resource_slice slice;
		struct kc_device_taint_rule rule;
	} h;
	const char *rv;    /* metadata.resourceVersion (arena), for kc_watch_event */
	bool mirror;
	bool initial_events_end; /* annotation k8s.io/initial-events-end: "true" (WatchList bookmarks) */
	/* Only struct vec members: dec_vecs() walks them as an array. */
	struct {
		struct vec labels, annots, owners, conds, taints, qa, qb, containers, statuses, resstat,
			devhealth, sclaims, clst, results, devstat, consumers, sdevs, tols,
			cclaims;  /* per container: the claim name it uses (interned), "" if none */
	} v;

	struct chunk *chunks;  /* the first chunk is kept between objects */
	struct chunk *cur;
	size_t arena_used;

	/* The Status fields of a watch event's object (arena strings). */
	int64_t st_code, st_retry;
	const char *st_status, *st_reason, *st_message;
};

static inline void *vec_at(const struct vec *v, uint32_t i)
{
	return v->data + (size_t)i * v->elsz;
}

static inline void *vec_last(const struct vec *v)
{
	return v->n ? vec_at(v, v->n - 1) : NULL;
}

/* kc_decode_layout.c: the scratch area. */
void kc_dec_init(struct dec *d, const struct kc_type *t, const struct kc_decode_ctx *ctx, enum layer layer);
/* Starts a new object in the scratch area. */
void kc_dec_reset(struct dec *d);
void kc_dec_done(struct dec *d);
/* Appends a copy of tmpl; NULL (and d->err) past the element bound. */
void *kc_dec_vec_push(struct dec *d, struct vec *v, const void *tmpl);
/* Copies a string into the arena; NULL (and d->err) past the arena bound. */
const char *kc_dec_arena_dup(struct dec *d, const char *s, size_t len);
/* Copies the finished object out of the scratch area into one new heap block
 * owned by the caller; NULL (and d->err) when it is over a bound. */
void *kc_dec_finish(struct dec *d);
/* An over-bound object (d->over) as only its metadata, all its arrays empty: what a watch
 * delivers as DELETED, so that the cache holds no stale copy of it.  NULL without a name. */
void *kc_dec_finish_meta_only(struct dec *d);

/* kc_decode_schema.c: the kc_sax handler; ud is the struct dec. */
int kc_dec_handler(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v);

/* kc_decode.c: the handler passes the envelope's fields (list metadata and
 * items, watch type and object) to the stream decoder that owns d. */
int kc_dec_layer_event(struct dec *d, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v);

/* ---- the stream decoders (kc_decode.c, and kc_decode_pb.c for protobuf) ------------- */

#define DEFAULT_MAX_LINE (16u * 1024 * 1024)

/* The state of a protobuf LIST body (struct pb_list). */
enum { PL_MAGIC, PL_HEADER, PL_SKIP, PL_GATHER };

/* A protobuf piece (a LIST item, a watch frame) a feed cut, gathered until whole. */
struct gather {
	uint8_t *buf;
	size_t cap, got;
};

/*
 * A protobuf LIST body, streamed: "k8s\0", then the fields of a runtime.Unknown
 * whose raw field (2) is the list message {1: ListMeta, 2: item, 2: item, ...}.
 * Only one item (or the ListMeta) is held at a time, gathered into buf when a
 * feed cuts it, read in place otherwise; everything else is stepped over.
 */
struct pb_list {
	bool on;
	bool in_list;      /* inside Unknown.raw, the list message */
	bool seen_list;
	uint8_t state;
	uint8_t hdr[24];   /* a field header (key and length varints) or the magic, so far */
	unsigned hlen;
	uint32_t num;      /* the field being skipped or gathered */
	uint64_t want;     /* its bytes still to come (PL_SKIP) or in all (PL_GATHER) */
	uint64_t list_left;  /* bytes of the list message not read yet */
	struct gather g;
	size_t max_item;
};

struct kc_list_decoder {
	struct dec d;  /* first: the handler's userdata */
	struct kc_sax sax;
	kc_list_item_cb cb;
	void *userdata;
	size_t items;
	size_t skipped;  /* items over a bound, not delivered */
	char *rv;
	char *cont;
	int error;  /* sticky */
	struct kc_error err;
	struct pb_list pb;
};

struct kc_watch_decoder {
	struct dec d;  /* first: the handler's userdata */
	struct kc_sax sax;
	kc_watch_event_cb cb;
	void *userdata;
	size_t max_line;
	size_t line_len;
	bool started;   /* the current line has non-blank bytes, fed to the parser */
	bool discard;   /* dropping bytes up to the next newline */
	bool obj_begun;
	bool obj_done;
	bool have_type;
	char type[16];
	uint64_t skipped;
	struct kc_error err;
	/* Protobuf: frames of a 4-byte big-endian length and a metav1.WatchEvent. */
	bool pb;
	int pb_error;  /* a frame over max_line: the stream is over (sticky until reset) */
	uint8_t fhdr[4];
	unsigned fhlen;
	uint32_t flen;
	struct gather fg;
};

/* kc_decode.c: an item of a LIST is complete in the scratch area: deliver it. */
int kc_dec_list_item_done(struct kc_list_decoder *l);
/* kc_decode.c: an event is decoded (type, and the object in the scratch area): deliver it. */
int kc_dec_watch_deliver(struct kc_watch_decoder *w);
/* kc_decode.c: the event type a watch event's "type" names, 0 if none. */
enum kc_watch_type kc_dec_watch_type(const char *s);
/* kc_decode_pb.c: protobuf bodies, fed as kc_list_decoder_feed and kc_watch_decoder_feed are. */
int kc_dec_pb_list_feed(struct kc_list_decoder *l, const uint8_t *p, const uint8_t *end);
int kc_dec_pb_list_finish(struct kc_list_decoder *l);
int kc_dec_pb_watch_feed(struct kc_watch_decoder *w, const uint8_t *p, const uint8_t *end);

#endif
