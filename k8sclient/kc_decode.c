/*
 * The incremental decoders of kc_decode.h.  A static schema per kind (tables
 * of the keys we keep, see kc_sax.h) drives kc_sax's walker; one handler
 * builds the object into a reusable scratch area (a typed head, growable
 * element vectors and a string arena), and finish_*() copies the result into
 * one heap block sized exactly: the struct, then its arrays, then its
 * non-interned strings.  The scratch area is reused from object to object, so
 * steady-state decoding allocates only the final block and new interned
 * strings.
 */
#include "kc_decode.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc_sax.h"

/* Every vector and the string arena are bounded: input cannot grow them
 * further.  etcd refuses objects over 1.5 MB, so real objects stay far below. */
#define MAX_ELEMS 16384
#define MAX_ARENA (4u * 1024 * 1024)
#define ARENA_CHUNK (16u * 1024)
#define MAX_STATUS_MESSAGE 4096
#define DEFAULT_MAX_MESSAGE 1024
#define DEFAULT_MAX_LINE (16u * 1024 * 1024)

/* ---- field ids ------------------------------------------------------------ */

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
	P_NODE, P_RESTART, P_PRIO, P_GRACE, P_CONT, P_INITCONT, PC_NAME, PC_RES, PC_REQ, PC_LIM,
	P_SCLAIM, PSC_NAME, PSC_CLAIM, P_PHASE, P_CONDS, P_CSTAT, P_ICSTAT,
	CS_NAME, CS_RESTARTS, CS_STATE, CS_WAITING, CS_W_REASON, CS_RUNNING, CS_TERM,
	CS_T_EXIT, CS_T_REASON, CS_T_FIN, CS_LAST, CS_LTERM, CS_L_EXIT, CS_L_REASON, CS_L_FIN,
	CS_ARS, RS_NAME, RS_RES, DH_ID, DH_HEALTH, DH_MSG, P_CLST, PCS_NAME, PCS_CLAIM,
	/* node */
	N_UNSCHED, N_TAINTS, N_CAP, N_ALLOC, N_CONDS,
	/* resource claim */
	RC_ALLOC, X_ADEV, RC_RESULT, RR_REQ, RR_DRIVER, RR_POOL, RR_DEVICE,
	RC_DEVSTAT, DS_DRIVER, DS_POOL, DS_DEVICE, DS_CONDS, RC_RESV, CO_RES, CO_NAME, CO_UID,
	/* resource slice */
	SL_DRIVER, SL_NODE, X_POOL, SL_POOL, SL_ALL, SL_DEV, SD_NAME, SD_TAINTS, X_BASIC,
	/* list and watch envelopes, and the Status of watch ERROR events */
	X_LMETA, L_RV, L_CONT, L_ITEM, W_TYPE, W_OBJ,
	ST_CODE, ST_STATUS, ST_REASON, ST_MESSAGE, X_DETAILS, ST_RETRY,
};

#define STR KC_SAX_STR
#define INT KC_SAX_INT
#define BOOL KC_SAX_BOOL
#define OBJ KC_SAX_OBJ
#define ARR KC_SAX_ARR
#define MAP KC_SAX_MAP
#define F KC_SAX_F
#define SCHEMA KC_SAX_SCHEMA

/* ---- schemas --------------------------------------------------------------- */

static const struct kc_sax_schema empty_schema = { NULL, 0, NULL };

static const struct kc_sax_field owner_f[] = {
	F("kind", STR, O_KIND, NULL), F("name", STR, O_NAME, NULL),
	F("uid", STR, O_UID, NULL), F("controller", BOOL, O_CTRL, NULL),
};
static const struct kc_sax_schema owner_s = SCHEMA(owner_f);

static const struct kc_sax_field meta_f[] = {
	F("name", STR, M_NAME, NULL), F("namespace", STR, M_NS, NULL), F("uid", STR, M_UID, NULL),
	F("resourceVersion", STR, M_RV, NULL), F("labels", MAP, M_LABELS, NULL),
	F("annotations", MAP, M_ANNOT, NULL), F("ownerReferences", ARR, M_OWNER, &owner_s),
	F("deletionTimestamp", STR, M_DEL, NULL),
};
static const struct kc_sax_schema meta_s = SCHEMA(meta_f);

static const struct kc_sax_field cond_f[] = {
	F("type", STR, C_TYPE, NULL), F("status", STR, C_STATUS, NULL), F("reason", STR, C_REASON, NULL),
	F("message", STR, C_MESSAGE, NULL), F("lastTransitionTime", STR, C_LTT, NULL),
};
static const struct kc_sax_schema cond_s = SCHEMA(cond_f);

static const struct kc_sax_field taint_f[] = {
	F("key", STR, T_KEY, NULL), F("value", STR, T_VALUE, NULL), F("effect", STR, T_EFFECT, NULL),
	F("timeAdded", STR, T_ADDED, NULL),
};
static const struct kc_sax_schema taint_s = SCHEMA(taint_f);

/* Pod */
static const struct kc_sax_field res_f[] = {
	F("requests", MAP, PC_REQ, NULL), F("limits", MAP, PC_LIM, NULL),
};
static const struct kc_sax_schema res_s = SCHEMA(res_f);
static const struct kc_sax_field cont_f[] = {
	F("name", STR, PC_NAME, NULL), F("resources", OBJ, PC_RES, &res_s),
};
static const struct kc_sax_schema cont_s = SCHEMA(cont_f);
static const struct kc_sax_field sclaim_f[] = {
	F("name", STR, PSC_NAME, NULL), F("resourceClaimName", STR, PSC_CLAIM, NULL),
};
static const struct kc_sax_schema sclaim_s = SCHEMA(sclaim_f);
static const struct kc_sax_field pod_spec_f[] = {
	F("nodeName", STR, P_NODE, NULL), F("containers", ARR, P_CONT, &cont_s),
	F("restartPolicy", STR, P_RESTART, NULL), F("priority", INT, P_PRIO, NULL),
	F("terminationGracePeriodSeconds", INT, P_GRACE, NULL),
	F("initContainers", ARR, P_INITCONT, &cont_s), F("resourceClaims", ARR, P_SCLAIM, &sclaim_s),
};
static const struct kc_sax_schema pod_spec_s = SCHEMA(pod_spec_f);
static const struct kc_sax_field waiting_f[] = { F("reason", STR, CS_W_REASON, NULL) };
static const struct kc_sax_schema waiting_s = SCHEMA(waiting_f);
static const struct kc_sax_field term_f[] = {
	F("exitCode", INT, CS_T_EXIT, NULL), F("reason", STR, CS_T_REASON, NULL),
	F("finishedAt", STR, CS_T_FIN, NULL),
};
static const struct kc_sax_schema term_s = SCHEMA(term_f);
static const struct kc_sax_field state_f[] = {
	F("waiting", OBJ, CS_WAITING, &waiting_s), F("running", OBJ, CS_RUNNING, &empty_schema),
	F("terminated", OBJ, CS_TERM, &term_s),
};
static const struct kc_sax_schema state_s = SCHEMA(state_f);
static const struct kc_sax_field lterm_f[] = {
	F("exitCode", INT, CS_L_EXIT, NULL), F("reason", STR, CS_L_REASON, NULL),
	F("finishedAt", STR, CS_L_FIN, NULL),
};
static const struct kc_sax_schema lterm_s = SCHEMA(lterm_f);
static const struct kc_sax_field last_f[] = { F("terminated", OBJ, CS_LTERM, &lterm_s) };
static const struct kc_sax_schema last_s = SCHEMA(last_f);
static const struct kc_sax_field devh_f[] = {
	F("resourceID", STR, DH_ID, NULL), F("health", STR, DH_HEALTH, NULL), F("message", STR, DH_MSG, NULL),
};
static const struct kc_sax_schema devh_s = SCHEMA(devh_f);
static const struct kc_sax_field ars_f[] = {
	F("name", STR, RS_NAME, NULL), F("resources", ARR, RS_RES, &devh_s),
};
static const struct kc_sax_schema ars_s = SCHEMA(ars_f);
static const struct kc_sax_field cstat_f[] = {
	F("name", STR, CS_NAME, NULL), F("restartCount", INT, CS_RESTARTS, NULL),
	F("state", OBJ, CS_STATE, &state_s), F("lastState", OBJ, CS_LAST, &last_s),
	F("allocatedResourcesStatus", ARR, CS_ARS, &ars_s),
};
static const struct kc_sax_schema cstat_s = SCHEMA(cstat_f);
static const struct kc_sax_field clst_f[] = {
	F("name", STR, PCS_NAME, NULL), F("resourceClaimName", STR, PCS_CLAIM, NULL),
};
static const struct kc_sax_schema clst_s = SCHEMA(clst_f);
static const struct kc_sax_field pod_status_f[] = {
	F("phase", STR, P_PHASE, NULL), F("conditions", ARR, P_CONDS, &cond_s),
	F("containerStatuses", ARR, P_CSTAT, &cstat_s), F("initContainerStatuses", ARR, P_ICSTAT, &cstat_s),
	F("resourceClaimStatuses", ARR, P_CLST, &clst_s),
};
static const struct kc_sax_schema pod_status_s = SCHEMA(pod_status_f);
static const struct kc_sax_field pod_f[] = {
	F("metadata", OBJ, M_META, &meta_s), F("spec", OBJ, X_SPEC, &pod_spec_s),
	F("status", OBJ, X_STATUS, &pod_status_s),
};
static const struct kc_sax_schema pod_s = SCHEMA(pod_f);

/* Node */
static const struct kc_sax_field node_spec_f[] = {
	F("unschedulable", BOOL, N_UNSCHED, NULL), F("taints", ARR, N_TAINTS, &taint_s),
};
static const struct kc_sax_schema node_spec_s = SCHEMA(node_spec_f);
static const struct kc_sax_field node_status_f[] = {
	F("capacity", MAP, N_CAP, NULL), F("allocatable", MAP, N_ALLOC, NULL),
	F("conditions", ARR, N_CONDS, &cond_s),
};
static const struct kc_sax_schema node_status_s = SCHEMA(node_status_f);
static const struct kc_sax_field node_f[] = {
	F("metadata", OBJ, M_META, &meta_s), F("spec", OBJ, X_SPEC, &node_spec_s),
	F("status", OBJ, X_STATUS, &node_status_s),
};
static const struct kc_sax_schema node_s = SCHEMA(node_f);

/* ResourceClaim (v1 and v1beta1 nest the allocation the same way) */
static const struct kc_sax_field result_f[] = {
	F("request", STR, RR_REQ, NULL), F("driver", STR, RR_DRIVER, NULL),
	F("pool", STR, RR_POOL, NULL), F("device", STR, RR_DEVICE, NULL),
};
static const struct kc_sax_schema result_s = SCHEMA(result_f);
static const struct kc_sax_field adev_f[] = { F("results", ARR, RC_RESULT, &result_s) };
static const struct kc_sax_schema adev_s = SCHEMA(adev_f);
static const struct kc_sax_field alloc_f[] = { F("devices", OBJ, X_ADEV, &adev_s) };
static const struct kc_sax_schema alloc_s = SCHEMA(alloc_f);
static const struct kc_sax_field devstat_f[] = {
	F("driver", STR, DS_DRIVER, NULL), F("pool", STR, DS_POOL, NULL), F("device", STR, DS_DEVICE, NULL),
	F("conditions", ARR, DS_CONDS, &cond_s),
};
static const struct kc_sax_schema devstat_s = SCHEMA(devstat_f);
static const struct kc_sax_field consumer_f[] = {
	F("resource", STR, CO_RES, NULL), F("name", STR, CO_NAME, NULL), F("uid", STR, CO_UID, NULL),
};
static const struct kc_sax_schema consumer_s = SCHEMA(consumer_f);
static const struct kc_sax_field claim_status_f[] = {
	F("allocation", OBJ, RC_ALLOC, &alloc_s), F("devices", ARR, RC_DEVSTAT, &devstat_s),
	F("reservedFor", ARR, RC_RESV, &consumer_s),
};
static const struct kc_sax_schema claim_status_s = SCHEMA(claim_status_f);
static const struct kc_sax_field claim_f[] = {
	F("metadata", OBJ, M_META, &meta_s), F("status", OBJ, X_STATUS, &claim_status_s),
};
static const struct kc_sax_schema claim_s = SCHEMA(claim_f);

/* ResourceSlice: v1 devices[].taints, v1beta1 devices[].basic.taints */
static const struct kc_sax_field basic_f[] = { F("taints", ARR, SD_TAINTS, &taint_s) };
static const struct kc_sax_schema basic_s = SCHEMA(basic_f);
static const struct kc_sax_field sdev_f[] = {
	F("name", STR, SD_NAME, NULL), F("taints", ARR, SD_TAINTS, &taint_s),
	F("basic", OBJ, X_BASIC, &basic_s),
};
static const struct kc_sax_schema sdev_s = SCHEMA(sdev_f);
static const struct kc_sax_field spool_f[] = { F("name", STR, SL_POOL, NULL) };
static const struct kc_sax_schema spool_s = SCHEMA(spool_f);
static const struct kc_sax_field slice_spec_f[] = {
	F("driver", STR, SL_DRIVER, NULL), F("nodeName", STR, SL_NODE, NULL), F("pool", OBJ, X_POOL, &spool_s),
	F("allNodes", BOOL, SL_ALL, NULL), F("devices", ARR, SL_DEV, &sdev_s),
};
static const struct kc_sax_schema slice_spec_s = SCHEMA(slice_spec_f);
static const struct kc_sax_field slice_f[] = {
	F("metadata", OBJ, M_META, &meta_s), F("spec", OBJ, X_SPEC, &slice_spec_s),
};
static const struct kc_sax_schema slice_s = SCHEMA(slice_f);

/* Envelopes.  A watch event's "object" is looked up as a Status first (for
 * ERROR events) and then as the kind; a key such as "status" picks the
 * field whose JSON type matches. */
static const struct kc_sax_field lmeta_f[] = {
	F("resourceVersion", STR, L_RV, NULL), F("continue", STR, L_CONT, NULL),
};
static const struct kc_sax_schema lmeta_s = SCHEMA(lmeta_f);
static const struct kc_sax_field details_f[] = { F("retryAfterSeconds", INT, ST_RETRY, NULL) };
static const struct kc_sax_schema details_s = SCHEMA(details_f);
static const struct kc_sax_field status_f[] = {
	F("code", INT, ST_CODE, NULL), F("status", STR, ST_STATUS, NULL), F("reason", STR, ST_REASON, NULL),
	F("message", STR, ST_MESSAGE, NULL), F("details", OBJ, X_DETAILS, &details_s),
};

#define ENVELOPES(name, root)                                                                   \
	static const struct kc_sax_field name##_list_f[] = {                                     \
		F("metadata", OBJ, X_LMETA, &lmeta_s), F("items", ARR, L_ITEM, &root),          \
	};                                                                                       \
	static const struct kc_sax_schema name##_wobj_s = { status_f, KC_ARRAY_SIZE(status_f), &root }; \
	static const struct kc_sax_field name##_watch_f[] = {                                    \
		F("type", STR, W_TYPE, NULL), F("object", OBJ, W_OBJ, &name##_wobj_s),          \
	};

ENVELOPES(pod, pod_s)
ENVELOPES(node, node_s)
ENVELOPES(claim, claim_s)
ENVELOPES(slice, slice_s)

/* ---- scratch area ----------------------------------------------------------- */

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

enum kind { K_POD, K_NODE, K_CLAIM, K_SLICE };

struct dec;
typedef void *(*finish_fn)(struct dec *d);

struct kc_decoder_ops {
	enum kind kind;
	struct kc_sax_schema root;
	struct kc_sax_schema list_root;
	struct kc_sax_schema watch_root;
	finish_fn finish;
};

enum layer { LAYER_OBJECT, LAYER_LIST, LAYER_WATCH };

struct dec {
	const struct kc_type *t;
	struct kc_intern *in;
	const char *const *keep_labels;
	const char *const *keep_annotations;
	const char *const *keep_conds;
	size_t max_message;
	enum layer layer;
	int err;
	char errmsg[256];

	union {
		struct kc_meta meta;
		struct kc_pod pod;
		struct kc_node node;
		struct kc_resource_claim claim;
		struct kc_resource_slice slice;
	} h;
	bool mirror;
	/* Only struct vec members: dec_vecs() walks them as an array. */
	struct {
		struct vec labels, annots, owners, conds, taints, qa, qb, containers, statuses, resstat,
			devhealth, sclaims, clst, results, devstat, consumers, sdevs;
	} v;

	struct chunk *chunks;  /* the first chunk is kept between objects */
	struct chunk *cur;
	size_t arena_used;

	/* The Status fields of a watch event's object (arena strings). */
	int64_t st_code, st_retry;
	const char *st_status, *st_reason, *st_message;
};

static void vec_init(struct vec *v, size_t elsz)
{
	memset(v, 0, sizeof(*v));
	v->elsz = (uint32_t)elsz;
}

static void *vec_at(const struct vec *v, uint32_t i)
{
	return v->data + (size_t)i * v->elsz;
}

static void *vec_last(const struct vec *v)
{
	return v->n ? vec_at(v, v->n - 1) : NULL;
}

/* Appends a copy of tmpl; NULL (and d->err) past MAX_ELEMS. */
static void *vec_push(struct dec *d, struct vec *v, const void *tmpl)
{
	void *p;

	if (v->n >= MAX_ELEMS) {
		snprintf(d->errmsg, sizeof(d->errmsg), "more than %u elements in one array", MAX_ELEMS);
		d->err = -EMSGSIZE;
		return NULL;
	}
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->data = kc_xrealloc(v->data, (size_t)v->cap * v->elsz);
	}
	p = vec_at(v, v->n++);
	memcpy(p, tmpl, v->elsz);
	return p;
}

/* Copies a string into the arena; NULL (and d->err) past MAX_ARENA. */
static const char *arena_dup(struct dec *d, const char *s, size_t len)
{
	struct chunk *c = d->cur;
	char *p;

	if (len == 0)
		return "";
	if (d->arena_used + len + 1 > MAX_ARENA) {
		snprintf(d->errmsg, sizeof(d->errmsg), "object keeps more than %u bytes of strings", MAX_ARENA);
		d->err = -EMSGSIZE;
		return NULL;
	}
	while (c && c->size - c->used < len + 1)
		c = c->next;
	if (!c) {
		size_t size = len + 1 > ARENA_CHUNK ? len + 1 : ARENA_CHUNK;

		c = kc_xmalloc(sizeof(*c) + size);
		c->size = size;
		c->used = 0;
		c->next = d->chunks ? d->chunks->next : NULL;
		if (d->chunks)
			d->chunks->next = c;
		else
			d->chunks = c;
	}
	d->cur = c;
	p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	d->arena_used += len + 1;
	return p;
}

static void arena_reset(struct dec *d)
{
	struct chunk *first = d->chunks;

	/* Keep one chunk for the next object; a rare huge object gives its
	 * extra chunks back at once. */
	if (first) {
		for (struct chunk *c = first->next, *next; c; c = next) {
			next = c->next;
			free(c);
		}
		first->next = NULL;
		first->used = 0;
	}
	d->cur = first;
	d->arena_used = 0;
}

static const char *const default_pod_conditions[] = { "Ready", "DisruptionTarget", NULL };

static void dec_init(struct dec *d, const struct kc_type *t, const struct kc_decode_ctx *ctx, enum layer layer)
{
	const struct kc_decode_opts *o = ctx ? ctx->opts : NULL;

	memset(d, 0, sizeof(*d));
	d->t = t;
	d->in = ctx ? ctx->intern : NULL;
	d->layer = layer;
	d->keep_labels = o ? o->keep_labels : NULL;
	d->keep_annotations = o ? o->keep_annotations : NULL;
	d->keep_conds = o && o->keep_pod_conditions ? o->keep_pod_conditions : default_pod_conditions;
	d->max_message = o && o->max_message ? o->max_message : DEFAULT_MAX_MESSAGE;
	vec_init(&d->v.labels, sizeof(struct kc_kv));
	vec_init(&d->v.annots, sizeof(struct kc_kv));
	vec_init(&d->v.owners, sizeof(struct kc_owner_ref));
	vec_init(&d->v.conds, sizeof(struct kc_condition));
	vec_init(&d->v.taints, sizeof(struct kc_taint));
	vec_init(&d->v.qa, sizeof(struct kc_quantity));
	vec_init(&d->v.qb, sizeof(struct kc_quantity));
	vec_init(&d->v.containers, sizeof(struct kc_container));
	vec_init(&d->v.statuses, sizeof(struct kc_container_status));
	vec_init(&d->v.resstat, sizeof(struct kc_resource_status));
	vec_init(&d->v.devhealth, sizeof(struct kc_device_health));
	vec_init(&d->v.sclaims, sizeof(struct kc_claim_ref));
	vec_init(&d->v.clst, sizeof(struct kc_claim_ref));
	vec_init(&d->v.results, sizeof(struct kc_device_result));
	vec_init(&d->v.devstat, sizeof(struct kc_device_status));
	vec_init(&d->v.consumers, sizeof(struct kc_consumer));
	vec_init(&d->v.sdevs, sizeof(struct kc_slice_device));
}

static struct vec *dec_vecs(struct dec *d, size_t *n)
{
	*n = sizeof(d->v) / sizeof(struct vec);
	return (struct vec *)(void *)&d->v;
}

static void dec_done(struct dec *d)
{
	size_t n;
	struct vec *v = dec_vecs(d, &n);

	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	arena_reset(d);
	free(d->chunks);
	d->chunks = d->cur = NULL;
}

/* Starts a new object in the scratch area. */
static void dec_reset(struct dec *d)
{
	size_t n;
	struct vec *v = dec_vecs(d, &n);

	for (size_t i = 0; i < n; i++)
		v[i].n = 0;
	arena_reset(d);
	memset(&d->h, 0, sizeof(d->h));
	d->h.meta.ns = d->h.meta.name = d->h.meta.uid = d->h.meta.resource_version = "";
	switch (d->t->ops->kind) {
	case K_POD:
		d->h.pod.node_name = "";
		d->h.pod.grace_period_s = -1;
		break;
	case K_SLICE:
		d->h.slice.driver = d->h.slice.pool = d->h.slice.node_name = "";
		break;
	case K_NODE:
	case K_CLAIM:
		break;
	}
	d->mirror = false;
	d->err = 0;
	d->st_code = d->st_retry = 0;
	d->st_status = d->st_reason = d->st_message = "";
}

/* ---- value helpers ------------------------------------------------------------ */

static bool eq(const struct kc_sax_value *v, const char *lit)
{
	size_t n = strlen(lit);

	return v->len == n && memcmp(v->s, lit, n) == 0;
}

static bool in_list(const char *const *list, const char *s, size_t len)
{
	for (; *list; list++)
		if (strlen(*list) == len && memcmp(*list, s, len) == 0)
			return true;
	return false;
}

/* Cuts a message to max bytes without splitting a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

static int64_t time_of(const struct kc_sax_value *v)
{
	int64_t t = 0;

	return kc_parse_time(v->s, v->len, &t) == 0 ? t : 0;
}

/* Device counts: an integer with an optional decimal (k, M, G, T, P, E) or
 * binary (Ki ... Ei) suffix.  Anything else (fractions, milli-units,
 * exponents, overflow) is refused and the entry dropped. */
static bool parse_quantity(const char *s, size_t len, int64_t *ret)
{
	static const char dec_sfx[] = "kMGTPE";
	int64_t v = 0, mul = 1;
	size_t i = 0;

	if (i < len && s[i] == '+')
		i++;
	if (i == len || s[i] < '0' || s[i] > '9')
		return false;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
			return false;
	if (i < len) {
		/* Binary suffixes are Ki, Mi, Gi...: capital K, unlike decimal k. */
		const char *p = memchr(dec_sfx, s[i] == 'K' ? 'k' : s[i], sizeof(dec_sfx) - 1);
		int exp;

		if (!p)
			return false;
		exp = (int)(p - dec_sfx) + 1;
		if (i + 2 == len && s[i + 1] == 'i' && s[i] != 'k') {
			mul = (int64_t)1 << (10 * exp);
		} else if (i + 1 == len && s[i] != 'K') {
			for (int k = 0; k < exp; k++)
				mul *= 1000;
		} else {
			return false;
		}
	}
	return !__builtin_mul_overflow(v, mul, ret);
}

/* ---- the handler -------------------------------------------------------------- */

static const char *dup_v(struct dec *d, const struct kc_sax_value *v)
{
	return arena_dup(d, v->s, v->len);
}

static const char *msg_v(struct dec *d, const struct kc_sax_value *v)
{
	return arena_dup(d, v->s, cut_utf8(v->s, v->len, d->max_message));
}

static const char *intern_v(struct dec *d, const struct kc_sax_value *v)
{
	return kc_intern(d->in, v->s, v->len);
}

static int push_kv(struct dec *d, struct vec *vec, const struct kc_sax_value *v)
{
	struct kc_kv kv = { kc_intern(d->in, v->key, v->klen), dup_v(d, v) };

	if (!kv.value || !vec_push(d, vec, &kv))
		return d->err;
	return 0;
}

static int on_map_entry(struct dec *d, unsigned id, const struct kc_sax_value *v)
{
	struct kc_quantity q;
	struct vec *qv;

	switch (id) {
	case M_LABELS:
		if (d->keep_labels && !in_list(d->keep_labels, v->key, v->klen))
			return 0;
		return push_kv(d, &d->v.labels, v);
	case M_ANNOT:
		if (v->klen == strlen("kubernetes.io/config.mirror")
		    && memcmp(v->key, "kubernetes.io/config.mirror", v->klen) == 0)
			d->mirror = true;
		if (!d->keep_annotations || !in_list(d->keep_annotations, v->key, v->klen))
			return 0;
		return push_kv(d, &d->v.annots, v);
	case PC_REQ:
	case PC_LIM:
	case N_CAP:
	case N_ALLOC:
		if (!memchr(v->key, '/', v->klen) || !parse_quantity(v->s, v->len, &q.value))
			return 0;
		q.name = kc_intern(d->in, v->key, v->klen);
		qv = id == PC_REQ || id == N_CAP ? &d->v.qa : &d->v.qb;
		if (!vec_push(d, qv, &q))
			return d->err;
		if (id == PC_REQ || id == PC_LIM) {
			struct kc_container *c = vec_last(&d->v.containers);

			if (id == PC_REQ)
				c->n_requests++;
			else
				c->n_limits++;
		}
		return 0;
	}
	return 0;
}

static int on_begin(struct dec *d, unsigned id)
{
	switch (id) {
	case M_OWNER:
		return vec_push(d, &d->v.owners, &(struct kc_owner_ref){ "", "", "", false }) ? 0 : d->err;
	case P_CONDS:
	case N_CONDS:
	case DS_CONDS:
		if (!vec_push(d, &d->v.conds, &(struct kc_condition){ "", "", "", 0, KC_COND_UNKNOWN }))
			return d->err;
		if (id == DS_CONDS)
			((struct kc_device_status *)vec_last(&d->v.devstat))->n_conditions++;
		return 0;
	case N_TAINTS:
	case SD_TAINTS:
		if (!vec_push(d, &d->v.taints, &(struct kc_taint){ "", "", "", 0 }))
			return d->err;
		if (id == SD_TAINTS)
			((struct kc_slice_device *)vec_last(&d->v.sdevs))->n_taints++;
		return 0;
	case P_CONT:
	case P_INITCONT:
		return vec_push(d, &d->v.containers, &(struct kc_container){ .name = "", .init = id == P_INITCONT })
			       ? 0 : d->err;
	case P_SCLAIM:
		return vec_push(d, &d->v.sclaims, &(struct kc_claim_ref){ "", "" }) ? 0 : d->err;
	case P_CLST:
		return vec_push(d, &d->v.clst, &(struct kc_claim_ref){ "", "" }) ? 0 : d->err;
	case P_CSTAT:
	case P_ICSTAT:
		return vec_push(d, &d->v.statuses,
				&(struct kc_container_status){ .name = "", .state_reason = "", .last_reason = "",
							       .init = id == P_ICSTAT })
			       ? 0 : d->err;
	case CS_WAITING:
	case CS_RUNNING:
	case CS_TERM: {
		struct kc_container_status *cs = vec_last(&d->v.statuses);

		cs->state = id == CS_WAITING ? KC_STATE_WAITING
			    : id == CS_RUNNING ? KC_STATE_RUNNING : KC_STATE_TERMINATED;
		return 0;
	}
	case CS_ARS:
		if (!vec_push(d, &d->v.resstat, &(struct kc_resource_status){ "", NULL, 0 }))
			return d->err;
		((struct kc_container_status *)vec_last(&d->v.statuses))->n_resources++;
		return 0;
	case RS_RES:
		if (!vec_push(d, &d->v.devhealth, &(struct kc_device_health){ "", "", KC_HEALTH_UNSET }))
			return d->err;
		((struct kc_resource_status *)vec_last(&d->v.resstat))->n_devices++;
		return 0;
	case RC_ALLOC:
		d->h.claim.allocated = true;
		return 0;
	case RC_RESULT:
		return vec_push(d, &d->v.results, &(struct kc_device_result){ "", "", "", "" }) ? 0 : d->err;
	case RC_DEVSTAT:
		return vec_push(d, &d->v.devstat, &(struct kc_device_status){ "", "", "", NULL, 0 }) ? 0 : d->err;
	case RC_RESV:
		return vec_push(d, &d->v.consumers, &(struct kc_consumer){ "", "", "" }) ? 0 : d->err;
	case SL_DEV:
		return vec_push(d, &d->v.sdevs, &(struct kc_slice_device){ "", NULL, 0 }) ? 0 : d->err;
	}
	return 0;
}

static int on_end(struct dec *d, unsigned id)
{
	/* Pod conditions are filtered once the element is complete, since
	 * "type" may come after the fields we copied. */
	if (id == P_CONDS) {
		const struct kc_condition *c = vec_last(&d->v.conds);

		if (!in_list(d->keep_conds, c->type, strlen(c->type)))
			d->v.conds.n--;
	}
	return 0;
}

static enum kc_cond_status cond_status(const struct kc_sax_value *v)
{
	return eq(v, "True") ? KC_COND_TRUE : eq(v, "False") ? KC_COND_FALSE : KC_COND_UNKNOWN;
}

/* Sets *dst to s; a NULL s means the arena bound was hit (d->err is set). */
#define SET(dst, s)                           \
	do {                                  \
		const char *s_ = (s);         \
		if (!s_)                      \
			return d->err;        \
		(dst) = s_;                   \
	} while (0)

static int on_string(struct dec *d, unsigned id, const struct kc_sax_value *v)
{
	struct kc_pod *p = &d->h.pod;

	switch (id) {
	case M_NS: SET(d->h.meta.ns, intern_v(d, v)); break;
	case M_NAME: SET(d->h.meta.name, dup_v(d, v)); break;
	case M_UID: SET(d->h.meta.uid, dup_v(d, v)); break;
	case M_RV: SET(d->h.meta.resource_version, dup_v(d, v)); break;
	case M_DEL: d->h.meta.deletion_timestamp = time_of(v); break;
	case O_KIND: SET(((struct kc_owner_ref *)vec_last(&d->v.owners))->kind, intern_v(d, v)); break;
	case O_NAME: SET(((struct kc_owner_ref *)vec_last(&d->v.owners))->name, dup_v(d, v)); break;
	case O_UID: SET(((struct kc_owner_ref *)vec_last(&d->v.owners))->uid, dup_v(d, v)); break;
	case C_TYPE: SET(((struct kc_condition *)vec_last(&d->v.conds))->type, intern_v(d, v)); break;
	case C_STATUS: ((struct kc_condition *)vec_last(&d->v.conds))->status = cond_status(v); break;
	case C_REASON: SET(((struct kc_condition *)vec_last(&d->v.conds))->reason, intern_v(d, v)); break;
	case C_MESSAGE: SET(((struct kc_condition *)vec_last(&d->v.conds))->message, msg_v(d, v)); break;
	case C_LTT: ((struct kc_condition *)vec_last(&d->v.conds))->last_transition = time_of(v); break;
	case T_KEY: SET(((struct kc_taint *)vec_last(&d->v.taints))->key, intern_v(d, v)); break;
	case T_VALUE: SET(((struct kc_taint *)vec_last(&d->v.taints))->value, dup_v(d, v)); break;
	case T_EFFECT: SET(((struct kc_taint *)vec_last(&d->v.taints))->effect, intern_v(d, v)); break;
	case T_ADDED: ((struct kc_taint *)vec_last(&d->v.taints))->time_added = time_of(v); break;
	case P_NODE: SET(p->node_name, intern_v(d, v)); break;
	case P_RESTART:
		p->restart_policy = eq(v, "Always") ? KC_RESTART_ALWAYS
				    : eq(v, "OnFailure") ? KC_RESTART_ON_FAILURE
				    : eq(v, "Never") ? KC_RESTART_NEVER : KC_RESTART_UNSET;
		break;
	case PC_NAME: SET(((struct kc_container *)vec_last(&d->v.containers))->name, dup_v(d, v)); break;
	case PSC_NAME: SET(((struct kc_claim_ref *)vec_last(&d->v.sclaims))->name, dup_v(d, v)); break;
	case PSC_CLAIM: SET(((struct kc_claim_ref *)vec_last(&d->v.sclaims))->claim_name, dup_v(d, v)); break;
	case PCS_NAME: SET(((struct kc_claim_ref *)vec_last(&d->v.clst))->name, dup_v(d, v)); break;
	case PCS_CLAIM: SET(((struct kc_claim_ref *)vec_last(&d->v.clst))->claim_name, dup_v(d, v)); break;
	case P_PHASE:
		p->phase = eq(v, "Pending") ? KC_POD_PENDING
			   : eq(v, "Running") ? KC_POD_RUNNING
			   : eq(v, "Succeeded") ? KC_POD_SUCCEEDED
			   : eq(v, "Failed") ? KC_POD_FAILED : KC_POD_PHASE_UNKNOWN;
		break;
	case CS_NAME: SET(((struct kc_container_status *)vec_last(&d->v.statuses))->name, dup_v(d, v)); break;
	case CS_W_REASON:
	case CS_T_REASON:
		SET(((struct kc_container_status *)vec_last(&d->v.statuses))->state_reason, intern_v(d, v));
		break;
	case CS_T_FIN: ((struct kc_container_status *)vec_last(&d->v.statuses))->state_finished_at = time_of(v); break;
	case CS_L_REASON:
		SET(((struct kc_container_status *)vec_last(&d->v.statuses))->last_reason, intern_v(d, v));
		break;
	case CS_L_FIN: ((struct kc_container_status *)vec_last(&d->v.statuses))->last_finished_at = time_of(v); break;
	case RS_NAME: SET(((struct kc_resource_status *)vec_last(&d->v.resstat))->name, intern_v(d, v)); break;
	case DH_ID:
		/* Device IDs belong to the hardware (a few per node), not to the
		 * pod, so interning them is bounded and saves ~40 B per device. */
		SET(((struct kc_device_health *)vec_last(&d->v.devhealth))->resource_id, intern_v(d, v));
		break;
	case DH_MSG: SET(((struct kc_device_health *)vec_last(&d->v.devhealth))->message, msg_v(d, v)); break;
	case DH_HEALTH:
		((struct kc_device_health *)vec_last(&d->v.devhealth))->health =
			eq(v, "Healthy") ? KC_HEALTH_HEALTHY
			: eq(v, "Unhealthy") ? KC_HEALTH_UNHEALTHY
			: eq(v, "Unknown") ? KC_HEALTH_UNKNOWN : KC_HEALTH_UNSET;
		break;
	case RR_REQ: SET(((struct kc_device_result *)vec_last(&d->v.results))->request, dup_v(d, v)); break;
	case RR_DRIVER: SET(((struct kc_device_result *)vec_last(&d->v.results))->driver, intern_v(d, v)); break;
	case RR_POOL: SET(((struct kc_device_result *)vec_last(&d->v.results))->pool, intern_v(d, v)); break;
	case RR_DEVICE: SET(((struct kc_device_result *)vec_last(&d->v.results))->device, dup_v(d, v)); break;
	case DS_DRIVER: SET(((struct kc_device_status *)vec_last(&d->v.devstat))->driver, intern_v(d, v)); break;
	case DS_POOL: SET(((struct kc_device_status *)vec_last(&d->v.devstat))->pool, intern_v(d, v)); break;
	case DS_DEVICE: SET(((struct kc_device_status *)vec_last(&d->v.devstat))->device, dup_v(d, v)); break;
	case CO_RES: SET(((struct kc_consumer *)vec_last(&d->v.consumers))->resource, intern_v(d, v)); break;
	case CO_NAME: SET(((struct kc_consumer *)vec_last(&d->v.consumers))->name, dup_v(d, v)); break;
	case CO_UID: SET(((struct kc_consumer *)vec_last(&d->v.consumers))->uid, dup_v(d, v)); break;
	case SL_DRIVER: SET(d->h.slice.driver, intern_v(d, v)); break;
	case SL_NODE: SET(d->h.slice.node_name, intern_v(d, v)); break;
	case SL_POOL: SET(d->h.slice.pool, intern_v(d, v)); break;
	case SD_NAME: SET(((struct kc_slice_device *)vec_last(&d->v.sdevs))->name, dup_v(d, v)); break;
	case ST_STATUS: SET(d->st_status, arena_dup(d, v->s, cut_utf8(v->s, v->len, 64))); break;
	case ST_REASON: SET(d->st_reason, arena_dup(d, v->s, cut_utf8(v->s, v->len, 256))); break;
	case ST_MESSAGE:
		SET(d->st_message, arena_dup(d, v->s, cut_utf8(v->s, v->len, MAX_STATUS_MESSAGE)));
		break;
	}
	return 0;
}

static int32_t clamp32(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static int on_int(struct dec *d, unsigned id, int64_t i)
{
	struct kc_container_status *cs;

	switch (id) {
	case P_PRIO:
		d->h.pod.priority = clamp32(i);
		d->h.pod.has_priority = true;
		break;
	case P_GRACE:
		d->h.pod.grace_period_s = i;
		break;
	case CS_RESTARTS:
	case CS_T_EXIT:
	case CS_L_EXIT:
		cs = vec_last(&d->v.statuses);
		if (id == CS_RESTARTS) {
			cs->restart_count = clamp32(i);
		} else if (id == CS_T_EXIT) {
			cs->exit_code = clamp32(i);
			cs->has_exit_code = true;
		} else {
			cs->last_exit_code = clamp32(i);
			cs->has_last_exit_code = true;
		}
		break;
	case ST_CODE:
		d->st_code = i;
		break;
	case ST_RETRY:
		d->st_retry = i;
		break;
	}
	return 0;
}

static int on_bool(struct dec *d, unsigned id, bool b)
{
	switch (id) {
	case O_CTRL: ((struct kc_owner_ref *)vec_last(&d->v.owners))->controller = b; break;
	case N_UNSCHED: d->h.node.unschedulable = b; break;
	case SL_ALL: d->h.slice.all_nodes = b; break;
	}
	return 0;
}

static int layer_event(struct dec *d, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v);

static int handler(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v)
{
	struct dec *d = ud;

	if (id >= X_LMETA && id != ST_CODE && id != ST_STATUS && id != ST_REASON && id != ST_MESSAGE
	    && id != ST_RETRY && id != X_DETAILS)
		return layer_event(d, id, ev, v);
	switch (ev) {
	case KC_SAX_EV_STR:
		return on_string(d, id, v);
	case KC_SAX_EV_INT:
		return on_int(d, id, v->i);
	case KC_SAX_EV_BOOL:
		return on_bool(d, id, v->b);
	case KC_SAX_EV_BEGIN:
		return on_begin(d, id);
	case KC_SAX_EV_END:
		return on_end(d, id);
	case KC_SAX_EV_ENTRY:
		return on_map_entry(d, id, v);
	}
	return 0;
}

/* ---- building the one-block object ---------------------------------------------- */

/*
 * Layout runs twice: once to size the block (base == NULL, arrays NULL, the
 * head a dummy), once to fill it.  Arrays go first (8-byte aligned), strings after them, so both passes
 * advance the cursors identically.
 */
struct blk {
	char *base;
	size_t a;  /* next array offset */
	size_t s;  /* next string offset */
};

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

static void *blk_arr(struct blk *b, const struct vec *v, uint32_t from, uint32_t n)
{
	size_t sz = (size_t)n * v->elsz;
	void *p = NULL;

	if (n == 0)
		return NULL;
	b->a = ALIGN8(b->a);
	if (b->base) {
		p = b->base + b->a;
		memcpy(p, vec_at(v, from), sz);
	}
	b->a += sz;
	return p;
}

static const char *blk_str(struct blk *b, const char *s)
{
	size_t len;
	char *p = NULL;

	if (!*s)
		return "";
	len = strlen(s) + 1;
	if (b->base) {
		p = b->base + b->s;
		memcpy(p, s, len);
	}
	b->s += len;
	return p;
}

/* Assigns only in the filling pass. */
#define PUT(dst, val)                             \
	do {                                      \
		const char *v_ = (val);           \
		if (b->base)                      \
			(dst) = v_;               \
	} while (0)

static void layout_meta(struct dec *d, struct blk *b, struct kc_meta *m)
{
	struct kc_kv *kv;
	struct kc_owner_ref *o;

	PUT(m->name, blk_str(b, d->h.meta.name));
	PUT(m->uid, blk_str(b, d->h.meta.uid));
	PUT(m->resource_version, blk_str(b, d->h.meta.resource_version));
	kv = blk_arr(b, &d->v.labels, 0, d->v.labels.n);
	for (uint32_t i = 0; i < d->v.labels.n; i++)
		PUT(kv[i].value, blk_str(b, ((struct kc_kv *)vec_at(&d->v.labels, i))->value));
	if (b->base) {
		m->labels = kv;
		m->n_labels = d->v.labels.n;
	}
	kv = blk_arr(b, &d->v.annots, 0, d->v.annots.n);
	for (uint32_t i = 0; i < d->v.annots.n; i++)
		PUT(kv[i].value, blk_str(b, ((struct kc_kv *)vec_at(&d->v.annots, i))->value));
	if (b->base) {
		m->annotations = kv;
		m->n_annotations = d->v.annots.n;
	}
	o = blk_arr(b, &d->v.owners, 0, d->v.owners.n);
	for (uint32_t i = 0; i < d->v.owners.n; i++) {
		const struct kc_owner_ref *so = vec_at(&d->v.owners, i);

		PUT(o[i].name, blk_str(b, so->name));
		PUT(o[i].uid, blk_str(b, so->uid));
	}
	if (b->base) {
		m->owners = o;
		m->n_owners = d->v.owners.n;
	}
}

static struct kc_condition *layout_conds(struct dec *d, struct blk *b, uint32_t from, uint32_t n)
{
	struct kc_condition *c = blk_arr(b, &d->v.conds, from, n);

	for (uint32_t i = 0; i < n; i++)
		PUT(c[i].message, blk_str(b, ((struct kc_condition *)vec_at(&d->v.conds, from + i))->message));
	return c;
}

static struct kc_taint *layout_taints(struct dec *d, struct blk *b, uint32_t from, uint32_t n)
{
	struct kc_taint *t = blk_arr(b, &d->v.taints, from, n);

	for (uint32_t i = 0; i < n; i++)
		PUT(t[i].value, blk_str(b, ((struct kc_taint *)vec_at(&d->v.taints, from + i))->value));
	return t;
}

/* Claims from the spec, completed by the status (generated claim names). */
static void merge_claims(struct dec *d)
{
	for (uint32_t i = 0; i < d->v.clst.n; i++) {
		const struct kc_claim_ref *st = vec_at(&d->v.clst, i);
		uint32_t j;

		for (j = 0; j < d->v.sclaims.n; j++) {
			struct kc_claim_ref *sp = vec_at(&d->v.sclaims, j);

			if (strcmp(sp->name, st->name) == 0) {
				if (!*sp->claim_name)
					sp->claim_name = st->claim_name;
				break;
			}
		}
		if (j == d->v.sclaims.n && !vec_push(d, &d->v.sclaims, st))
			return;
	}
}

static void layout_pod(struct dec *d, struct blk *b, struct kc_pod *p)
{
	struct kc_container *c;
	struct kc_container_status *cs;
	struct kc_claim_ref *cl;
	uint32_t qa = 0, qb = 0, rs = 0, dh = 0;

	layout_meta(d, b, &p->meta);
	c = blk_arr(b, &d->v.containers, 0, d->v.containers.n);
	for (uint32_t i = 0; i < d->v.containers.n; i++) {
		const struct kc_container *sc = vec_at(&d->v.containers, i);
		struct kc_quantity *rq, *lq;

		PUT(c[i].name, blk_str(b, sc->name));
		rq = blk_arr(b, &d->v.qa, qa, sc->n_requests);
		lq = blk_arr(b, &d->v.qb, qb, sc->n_limits);
		qa += sc->n_requests;
		qb += sc->n_limits;
		if (b->base) {
			c[i].requests = rq;
			c[i].limits = lq;
		}
	}
	cs = blk_arr(b, &d->v.statuses, 0, d->v.statuses.n);
	for (uint32_t i = 0; i < d->v.statuses.n; i++) {
		const struct kc_container_status *ss = vec_at(&d->v.statuses, i);
		struct kc_resource_status *r;
		uint32_t j;

		/* A status usually names a container: share that string. */
		for (j = 0; j < d->v.containers.n; j++)
			if (strcmp(((struct kc_container *)vec_at(&d->v.containers, j))->name, ss->name) == 0)
				break;
		if (j < d->v.containers.n)
			PUT(cs[i].name, b->base ? c[j].name : NULL);
		else
			PUT(cs[i].name, blk_str(b, ss->name));
		r = blk_arr(b, &d->v.resstat, rs, ss->n_resources);
		for (uint32_t k = 0; k < ss->n_resources; k++) {
			const struct kc_resource_status *sr = vec_at(&d->v.resstat, rs + k);
			struct kc_device_health *h = blk_arr(b, &d->v.devhealth, dh, sr->n_devices);

			for (uint32_t m = 0; m < sr->n_devices; m++) {
				const struct kc_device_health *sh = vec_at(&d->v.devhealth, dh + m);

				PUT(h[m].message, blk_str(b, sh->message));
			}
			dh += sr->n_devices;
			if (b->base)
				r[k].devices = h;
		}
		rs += ss->n_resources;
		if (b->base)
			cs[i].resources = r;
	}
	cl = blk_arr(b, &d->v.sclaims, 0, d->v.sclaims.n);
	for (uint32_t i = 0; i < d->v.sclaims.n; i++) {
		const struct kc_claim_ref *sc = vec_at(&d->v.sclaims, i);

		PUT(cl[i].name, blk_str(b, sc->name));
		PUT(cl[i].claim_name, blk_str(b, sc->claim_name));
	}
	if (b->base) {
		p->containers = c;
		p->n_containers = d->v.containers.n;
		p->statuses = cs;
		p->n_statuses = d->v.statuses.n;
		p->claims = cl;
		p->n_claims = d->v.sclaims.n;
		p->is_mirror = d->mirror;
	}
	p->conditions = layout_conds(d, b, 0, d->v.conds.n);
	if (b->base)
		p->n_conditions = d->v.conds.n;
}

static void layout_node(struct dec *d, struct blk *b, struct kc_node *n)
{
	struct kc_quantity *cap, *alloc;

	layout_meta(d, b, &n->meta);
	cap = blk_arr(b, &d->v.qa, 0, d->v.qa.n);
	alloc = blk_arr(b, &d->v.qb, 0, d->v.qb.n);
	if (b->base) {
		n->taints = layout_taints(d, b, 0, d->v.taints.n);
		n->n_taints = d->v.taints.n;
		n->conditions = layout_conds(d, b, 0, d->v.conds.n);
		n->n_conditions = d->v.conds.n;
		n->capacity = cap;
		n->n_capacity = d->v.qa.n;
		n->allocatable = alloc;
		n->n_allocatable = d->v.qb.n;
	} else {
		layout_taints(d, b, 0, d->v.taints.n);
		layout_conds(d, b, 0, d->v.conds.n);
	}
}

static void layout_claim(struct dec *d, struct blk *b, struct kc_resource_claim *c)
{
	struct kc_device_result *r;
	struct kc_device_status *ds;
	struct kc_consumer *co;
	uint32_t cd = 0;

	layout_meta(d, b, &c->meta);
	r = blk_arr(b, &d->v.results, 0, d->v.results.n);
	for (uint32_t i = 0; i < d->v.results.n; i++) {
		const struct kc_device_result *s = vec_at(&d->v.results, i);

		PUT(r[i].request, blk_str(b, s->request));
		PUT(r[i].device, blk_str(b, s->device));
	}
	ds = blk_arr(b, &d->v.devstat, 0, d->v.devstat.n);
	for (uint32_t i = 0; i < d->v.devstat.n; i++) {
		const struct kc_device_status *s = vec_at(&d->v.devstat, i);
		struct kc_condition *conds;

		PUT(ds[i].device, blk_str(b, s->device));
		conds = layout_conds(d, b, cd, s->n_conditions);
		cd += s->n_conditions;
		if (b->base)
			ds[i].conditions = conds;
	}
	co = blk_arr(b, &d->v.consumers, 0, d->v.consumers.n);
	for (uint32_t i = 0; i < d->v.consumers.n; i++) {
		const struct kc_consumer *s = vec_at(&d->v.consumers, i);

		PUT(co[i].name, blk_str(b, s->name));
		PUT(co[i].uid, blk_str(b, s->uid));
	}
	if (b->base) {
		c->results = r;
		c->n_results = d->v.results.n;
		c->device_statuses = ds;
		c->n_device_statuses = d->v.devstat.n;
		c->consumers = co;
		c->n_consumers = d->v.consumers.n;
	}
}

static void layout_slice(struct dec *d, struct blk *b, struct kc_resource_slice *sl)
{
	struct kc_slice_device *dv;
	uint32_t t = 0;

	layout_meta(d, b, &sl->meta);
	dv = blk_arr(b, &d->v.sdevs, 0, d->v.sdevs.n);
	for (uint32_t i = 0; i < d->v.sdevs.n; i++) {
		const struct kc_slice_device *s = vec_at(&d->v.sdevs, i);
		struct kc_taint *taints;

		PUT(dv[i].name, blk_str(b, s->name));
		taints = layout_taints(d, b, t, s->n_taints);
		t += s->n_taints;
		if (b->base)
			dv[i].taints = taints;
	}
	if (b->base) {
		sl->devices = dv;
		sl->n_devices = d->v.sdevs.n;
	}
}

/* Sizes, allocates and fills the block; the head is copied from the scratch. */
#define FINISH(name, type, field)                                                  \
	static void *finish_##name(struct dec *d)                                  \
	{                                                                          \
		struct blk b = { NULL, 0, 0 };                                     \
		size_t head = ALIGN8(sizeof(type)), arrays;                        \
		type *o;                                                           \
                                                                                   \
		type sizing;  /* written to, never read, by the sizing pass */     \
                                                                                   \
		layout_##name(d, &b, &sizing);                                     \
		arrays = ALIGN8(b.a);                                              \
		b.base = kc_xmalloc(head + arrays + b.s);                          \
		o = (type *)(void *)b.base;                                        \
		*o = d->h.field;                                                   \
		b.a = head;                                                        \
		b.s = head + arrays;                                               \
		layout_##name(d, &b, o);                                           \
		return o;                                                          \
	}

FINISH(node, struct kc_node, node)
FINISH(claim, struct kc_resource_claim, claim)
FINISH(slice, struct kc_resource_slice, slice)

FINISH(pod, struct kc_pod, pod)

static void *finish_pod_merged(struct dec *d)
{
	merge_claims(d);
	if (d->err)
		return NULL;
	return finish_pod(d);
}

/* ---- types -------------------------------------------------------------------------- */

#define OPS(name, k, fin)                                                                           \
	static const struct kc_decoder_ops name##_ops = {                                          \
		.kind = k,                                                                          \
		.root = SCHEMA(name##_f),                                                           \
		.list_root = SCHEMA(name##_list_f),                                                 \
		.watch_root = SCHEMA(name##_watch_f),                                               \
		.finish = fin,                                                                      \
	};

OPS(pod, K_POD, finish_pod_merged)
OPS(node, K_NODE, finish_node)
OPS(claim, K_CLAIM, finish_claim)
OPS(slice, K_SLICE, finish_slice)

static const char *pod_node(const void *obj)
{
	const struct kc_pod *p = obj;

	return *p->node_name ? p->node_name : NULL;
}

static const char *slice_node(const void *obj)
{
	const struct kc_resource_slice *s = obj;

	return *s->node_name ? s->node_name : NULL;
}

const struct kc_type kc_type_pod = {
	"Pod", "pods", "/api/v1/pods", true, pod_node, &pod_ops,
};
const struct kc_type kc_type_node = {
	"Node", "nodes", "/api/v1/nodes", false, NULL, &node_ops,
};
const struct kc_type kc_type_resource_claim = {
	"ResourceClaim", "resourceclaims", "/apis/resource.k8s.io/v1/resourceclaims", true, NULL, &claim_ops,
};
const struct kc_type kc_type_resource_slice = {
	"ResourceSlice", "resourceslices", "/apis/resource.k8s.io/v1/resourceslices", false, slice_node,
	&slice_ops,
};

/* ---- single documents ------------------------------------------------------------- */

int kc_decode_object(const struct kc_type *t, const struct kc_decode_ctx *ctx, const char *json, size_t len,
		     void **ret_obj, struct kc_error *err)
{
	struct dec d;
	struct kc_sax sax;
	char msg[256] = "";
	void *obj = NULL;
	int r;

	dec_init(&d, t, ctx, LAYER_OBJECT);
	dec_reset(&d);
	kc_sax_init(&sax, &t->ops->root, handler, &d);
	kc_sax_begin(&sax);
	r = kc_sax_feed(&sax, json, len, msg, sizeof(msg));
	if (r == 0)
		r = kc_sax_complete(&sax, msg, sizeof(msg));
	if (r == 0)
		obj = t->ops->finish(&d);
	if (r == 0 && !obj)
		r = d.err;
	if (r != 0)
		kc_error_set(err, r, "%s: %s", t->kind, d.err ? d.errmsg : msg);
	kc_sax_done(&sax);
	dec_done(&d);
	if (r == 0)
		*ret_obj = obj;
	return r;
}

/* ---- LIST ------------------------------------------------------------------------------ */

#define MAX_LIST_TOKEN 8192  /* resourceVersion and continue tokens */

struct kc_list_decoder {
	struct dec d;  /* first: the handler's userdata */
	struct kc_sax sax;
	kc_list_item_cb cb;
	void *userdata;
	size_t items;
	char *rv;
	char *cont;
	int error;  /* sticky */
	struct kc_error err;
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
};

static char *dup_token(const struct kc_sax_value *v)
{
	return kc_xstrndup(v->s, v->len < MAX_LIST_TOKEN ? v->len : MAX_LIST_TOKEN);
}

static int layer_event(struct dec *d, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v)
{
	if (d->layer == LAYER_LIST) {
		struct kc_list_decoder *l = (struct kc_list_decoder *)(void *)d;
		void *obj;
		int r;

		switch (id) {
		case L_RV:
			free(l->rv);
			l->rv = dup_token(v);
			break;
		case L_CONT:
			free(l->cont);
			l->cont = dup_token(v);
			break;
		case L_ITEM:
			if (ev == KC_SAX_EV_BEGIN) {
				dec_reset(d);
				break;
			}
			if (ev != KC_SAX_EV_END)
				break;
			obj = d->t->ops->finish(d);
			if (!obj)
				return d->err;
			l->items++;
			r = l->cb(obj, l->userdata);
			if (r)
				snprintf(d->errmsg, sizeof(d->errmsg), "item callback failed (%d)", r);
			return r;
		}
		return 0;
	}
	if (d->layer == LAYER_WATCH) {
		struct kc_watch_decoder *w = (struct kc_watch_decoder *)(void *)d;

		switch (id) {
		case W_TYPE:
			w->have_type = true;
			if (v->len < sizeof(w->type)) {
				memcpy(w->type, v->s, v->len);
				w->type[v->len] = '\0';
			} else {
				strcpy(w->type, "?");
			}
			break;
		case W_OBJ:
			if (ev == KC_SAX_EV_BEGIN) {
				dec_reset(d);
				w->obj_begun = true;
				w->obj_done = false;
			} else if (ev == KC_SAX_EV_END) {
				w->obj_done = true;
			}
			break;
		}
	}
	return 0;
}

struct kc_list_decoder *kc_list_decoder_new(const struct kc_type *t, const struct kc_decode_ctx *ctx,
					    kc_list_item_cb item_cb, void *userdata)
{
	struct kc_list_decoder *l = kc_xcalloc(1, sizeof(*l));

	dec_init(&l->d, t, ctx, LAYER_LIST);
	dec_reset(&l->d);
	kc_sax_init(&l->sax, &t->ops->list_root, handler, &l->d);
	kc_sax_begin(&l->sax);
	l->cb = item_cb;
	l->userdata = userdata;
	return l;
}

static int list_failed(struct kc_list_decoder *l, int r)
{
	if (l->d.err || r > 0 || (r != -EBADMSG && l->d.errmsg[0]))
		snprintf(l->err.msg, sizeof(l->err.msg), "%s list: %s", l->d.t->kind, l->d.errmsg);
	l->error = r;
	return r;
}

int kc_list_decoder_feed(struct kc_list_decoder *l, const char *buf, size_t len)
{
	int r;

	if (l->error)
		return l->error;
	r = kc_sax_feed(&l->sax, buf, len, l->err.msg, sizeof(l->err.msg));
	return r ? list_failed(l, r) : 0;
}

int kc_list_decoder_finish(struct kc_list_decoder *l)
{
	int r;

	if (l->error)
		return l->error;
	r = kc_sax_complete(&l->sax, l->err.msg, sizeof(l->err.msg));
	return r ? list_failed(l, r) : 0;
}

const char *kc_list_decoder_resource_version(const struct kc_list_decoder *l)
{
	return l->rv ? l->rv : "";
}

const char *kc_list_decoder_continue(const struct kc_list_decoder *l)
{
	return l->cont ? l->cont : "";
}

size_t kc_list_decoder_items(const struct kc_list_decoder *l)
{
	return l->items;
}

const char *kc_list_decoder_error(const struct kc_list_decoder *l)
{
	return l->err.msg;
}

struct kc_list_decoder *kc_list_decoder_free(struct kc_list_decoder *l)
{
	if (!l)
		return NULL;
	kc_sax_done(&l->sax);
	dec_done(&l->d);
	free(l->rv);
	free(l->cont);
	free(l);
	return NULL;
}

/* ---- WATCH ------------------------------------------------------------------------------ */

struct kc_watch_decoder *kc_watch_decoder_new(const struct kc_type *t, const struct kc_decode_ctx *ctx,
					      size_t max_line, kc_watch_event_cb cb, void *userdata)
{
	struct kc_watch_decoder *w = kc_xcalloc(1, sizeof(*w));

	dec_init(&w->d, t, ctx, LAYER_WATCH);
	dec_reset(&w->d);
	kc_sax_init(&w->sax, &t->ops->watch_root, handler, &w->d);
	w->cb = cb;
	w->userdata = userdata;
	w->max_line = max_line ? max_line : DEFAULT_MAX_LINE;
	return w;
}

static void start_line(struct kc_watch_decoder *w)
{
	kc_sax_begin(&w->sax);
	w->started = true;
	w->obj_begun = w->obj_done = w->have_type = false;
	w->type[0] = '\0';
	w->d.err = 0;
}

static enum kc_watch_type watch_type(const char *s)
{
	if (strcmp(s, "ADDED") == 0)
		return KC_WATCH_ADDED;
	if (strcmp(s, "MODIFIED") == 0)
		return KC_WATCH_MODIFIED;
	if (strcmp(s, "DELETED") == 0)
		return KC_WATCH_DELETED;
	if (strcmp(s, "BOOKMARK") == 0)
		return KC_WATCH_BOOKMARK;
	if (strcmp(s, "ERROR") == 0)
		return KC_WATCH_ERROR;
	return 0;
}

/* A line is complete: finish parsing it and deliver its event. */
static int end_line(struct kc_watch_decoder *w)
{
	struct kc_watch_event ev = { 0 };
	char msg[256] = "";
	int r;

	w->started = false;
	r = kc_sax_complete(&w->sax, msg, sizeof(msg));
	if (r)
		return kc_error_set(&w->err, r, "%s watch: %s", w->d.t->kind,
				    w->d.err ? w->d.errmsg : msg);
	if (!w->have_type)
		return kc_error_set(&w->err, -EBADMSG,
				    "%s watch: event without \"type\"", w->d.t->kind);
	ev.type = watch_type(w->type);
	if (ev.type == 0) {
		w->skipped++;
		return 0;
	}
	if (!w->obj_done)
		return kc_error_set(&w->err, -EBADMSG,
				    "%s watch: %s event without \"object\"", w->d.t->kind, w->type);
	switch (ev.type) {
	case KC_WATCH_ADDED:
	case KC_WATCH_MODIFIED:
	case KC_WATCH_DELETED:
		ev.object = w->d.t->ops->finish(&w->d);
		if (!ev.object)
			return kc_error_set(&w->err, w->d.err, "%s watch: %s",
					    w->d.t->kind, w->d.errmsg);
		ev.resource_version = ((struct kc_meta *)ev.object)->resource_version;
		break;
	case KC_WATCH_BOOKMARK:
		ev.resource_version = w->d.h.meta.resource_version;
		break;
	case KC_WATCH_ERROR:
		ev.resource_version = "";
		ev.status.code = (int)(w->d.st_code > 999 || w->d.st_code < 0 ? 0 : w->d.st_code);
		ev.status.status = kc_xstrdup(w->d.st_status);
		ev.status.reason = kc_xstrdup(w->d.st_reason);
		ev.status.message = kc_xstrdup(w->d.st_message);
		ev.status.retry_after_s = (int)(w->d.st_retry > 86400 || w->d.st_retry < 0 ? 0 : w->d.st_retry);
		break;
	}
	r = w->cb(&ev, w->userdata);
	free(ev.object);
	kc_status_done(&ev.status);
	return r;
}

/* Drops the rest of the current line and, if bytes of this buffer remain
 * unprocessed, everything up to the next newline: after an error or a stop
 * the stream resynchronizes at a line boundary. */
static int stop_feed(struct kc_watch_decoder *w, int r, bool line_ended, size_t left)
{
	w->started = false;
	w->line_len = 0;
	w->discard = !line_ended || left > 0;
	return r;
}

int kc_watch_decoder_feed(struct kc_watch_decoder *w, const char *buf, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;
		size_t adv = nl ? n + 1 : n;
		int r;

		if (w->discard) {
			if (nl) {
				w->discard = false;
				w->line_len = 0;
			}
			buf += adv;
			len -= adv;
			continue;
		}
		/* The bound is checked before feeding: an over-long line is
		 * never buffered, its remainder is discarded as it arrives. */
		if (n > w->max_line - w->line_len) {
			snprintf(w->err.msg, sizeof(w->err.msg), "%s watch: line longer than %zu bytes",
				 w->d.t->kind, w->max_line);
			return stop_feed(w, -EMSGSIZE, nl != NULL, len - adv);
		}
		w->line_len += n;
		if (!w->started) {
			size_t ws = 0;

			while (ws < n && (buf[ws] == ' ' || buf[ws] == '\t' || buf[ws] == '\r'))
				ws++;
			if (ws < n)
				start_line(w);
		}
		if (w->started && n > 0) {
			char m[256] = "";

			r = kc_sax_feed(&w->sax, buf, n, m, sizeof(m));
			if (r) {
				snprintf(w->err.msg, sizeof(w->err.msg), "%s watch: %s", w->d.t->kind,
					 w->d.err ? w->d.errmsg : m);
				return stop_feed(w, r, nl != NULL, len - adv);
			}
		}
		buf += adv;
		len -= adv;
		if (nl) {
			w->line_len = 0;
			if (w->started) {
				r = end_line(w);
				if (r)
					return stop_feed(w, r, true, len);
			}
		}
	}
	return 0;
}

const char *kc_watch_decoder_error(const struct kc_watch_decoder *w)
{
	return w->err.msg;
}

uint64_t kc_watch_decoder_skipped(const struct kc_watch_decoder *w)
{
	return w->skipped;
}

void kc_watch_decoder_reset(struct kc_watch_decoder *w)
{
	w->started = false;
	w->discard = false;
	w->line_len = 0;
}

struct kc_watch_decoder *kc_watch_decoder_free(struct kc_watch_decoder *w)
{
	if (!w)
		return NULL;
	kc_sax_done(&w->sax);
	dec_done(&w->d);
	free(w);
	return NULL;
}
