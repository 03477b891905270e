/*
 * The schemas of the decoders (kc_decode.h) and the handler they drive.  A
 * static table per kind names the keys we keep (see kc_sax.h); kc_sax's walker
 * calls kc_dec_handler() for each kept value, which builds the object into
 * the scratch area of kc_decode_layout.c.  Envelope fields (list metadata and
 * items, watch type and object) go to the stream decoders of kc_decode.c.
 * The kc_type descriptors of kc_objects.h live here, next to their schemas.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kc_decode_int.h"

#define MAX_STATUS_MESSAGE 4096

#define STR KC_SAX_STR
#define INT KC_SAX_INT
#define BOOL KC_SAX_BOOL
#define OBJ KC_SAX_OBJ
#define ARR KC_SAX_ARR
#define MAP KC_SAX_MAP
#define F KC_SAX_F
#define P KC_SAX_P
#define PW KC_SAX_PW
#define QTY KC_SAX_PB_QUANTITY
#define TIME KC_SAX_PB_TIME
#define FIRST KC_SAX_PB_FIRST
#define SCHEMA KC_SAX_SCHEMA

/* ---- schemas --------------------------------------------------------------- */

static const struct kc_sax_schema empty_schema = { NULL, 0, NULL };

static const struct kc_sax_field owner_f[] = {
	P("kind", 1, STR, O_KIND, NULL), P("name", 3, STR, O_NAME, NULL),
	P("uid", 4, STR, O_UID, NULL), P("controller", 6, BOOL, O_CTRL, NULL),
};
static const struct kc_sax_schema owner_s = SCHEMA(owner_f);

static const struct kc_sax_field meta_f[] = {
	P("name", 1, STR, M_NAME, NULL), P("namespace", 3, STR, M_NS, NULL), P("uid", 5, STR, M_UID, NULL),
	P("resourceVersion", 6, STR, M_RV, NULL), P("labels", 11, MAP, M_LABELS, NULL),
	P("annotations", 12, MAP, M_ANNOT, NULL), P("ownerReferences", 13, ARR, M_OWNER, &owner_s),
	PW("deletionTimestamp", 9, TIME, STR, M_DEL, NULL),
};
static const struct kc_sax_schema meta_s = SCHEMA(meta_f);

static const struct kc_sax_field cond_f[] = {
	P("type", 1, STR, C_TYPE, NULL), P("status", 2, STR, C_STATUS, NULL), P("reason", 5, STR, C_REASON, NULL),
	P("message", 6, STR, C_MESSAGE, NULL), PW("lastTransitionTime", 4, TIME, STR, C_LTT, NULL),
};
static const struct kc_sax_schema cond_s = SCHEMA(cond_f);

static const struct kc_sax_field taint_f[] = {
	P("key", 1, STR, T_KEY, NULL), P("value", 2, STR, T_VALUE, NULL), P("effect", 3, STR, T_EFFECT, NULL),
	PW("timeAdded", 4, TIME, STR, T_ADDED, NULL),
};
static const struct kc_sax_schema taint_s = SCHEMA(taint_f);

/* Pod */
static const struct kc_sax_field cclaim_f[] = { P("name", 1, STR, PCC_NAME, NULL) };
static const struct kc_sax_schema cclaim_s = SCHEMA(cclaim_f);
static const struct kc_sax_field res_f[] = {
	PW("requests", 2, QTY, MAP, PC_REQ, NULL), PW("limits", 1, QTY, MAP, PC_LIM, NULL),
	P("claims", 3, ARR, PC_CLAIMS, &cclaim_s),
};
static const struct kc_sax_schema res_s = SCHEMA(res_f);
static const struct kc_sax_field cont_f[] = {
	P("name", 1, STR, PC_NAME, NULL), P("resources", 8, OBJ, PC_RES, &res_s),
};
static const struct kc_sax_schema cont_s = SCHEMA(cont_f);
static const struct kc_sax_field sclaim_f[] = {
	P("name", 1, STR, PSC_NAME, NULL), P("resourceClaimName", 3, STR, PSC_CLAIM, NULL),
};
static const struct kc_sax_schema sclaim_s = SCHEMA(sclaim_f);
static const struct kc_sax_field pod_spec_f[] = {
	P("nodeName", 10, STR, P_NODE, NULL), P("containers", 2, ARR, P_CONT, &cont_s),
	P("priority", 25, INT, P_PRIO, NULL), PW("initContainers", 20, FIRST, ARR, P_INITCONT, &cont_s),
	P("resourceClaims", 39, ARR, P_SCLAIM, &sclaim_s),
};
static const struct kc_sax_schema pod_spec_s = SCHEMA(pod_spec_f);
static const struct kc_sax_field waiting_f[] = { P("reason", 1, STR, CS_W_REASON, NULL) };
static const struct kc_sax_schema waiting_s = SCHEMA(waiting_f);
static const struct kc_sax_field term_f[] = {
	P("exitCode", 1, INT, CS_T_EXIT, NULL), P("reason", 3, STR, CS_T_REASON, NULL),
};
static const struct kc_sax_schema term_s = SCHEMA(term_f);
static const struct kc_sax_field state_f[] = {
	P("waiting", 1, OBJ, CS_WAITING, &waiting_s), P("running", 2, OBJ, CS_RUNNING, &empty_schema),
	P("terminated", 3, OBJ, CS_TERM, &term_s),
};
static const struct kc_sax_schema state_s = SCHEMA(state_f);
static const struct kc_sax_field lterm_f[] = { P("exitCode", 1, INT, CS_L_EXIT, NULL) };
static const struct kc_sax_schema lterm_s = SCHEMA(lterm_f);
static const struct kc_sax_field last_f[] = { P("terminated", 3, OBJ, CS_LTERM, &lterm_s) };
static const struct kc_sax_schema last_s = SCHEMA(last_f);
static const struct kc_sax_field devh_f[] = {
	P("resourceID", 1, STR, DH_ID, NULL), P("health", 2, STR, DH_HEALTH, NULL), P("message", 6, STR, DH_MSG, NULL),
};
static const struct kc_sax_schema devh_s = SCHEMA(devh_f);
static const struct kc_sax_field ars_f[] = {
	P("name", 1, STR, RS_NAME, NULL), P("resources", 2, ARR, RS_RES, &devh_s),
};
static const struct kc_sax_schema ars_s = SCHEMA(ars_f);
static const struct kc_sax_field cstat_f[] = {
	P("name", 1, STR, CS_NAME, NULL), P("restartCount", 5, INT, CS_RESTARTS, NULL),
	P("ready", 4, BOOL, CS_READY, NULL),
	P("state", 2, OBJ, CS_STATE, &state_s), P("lastState", 3, OBJ, CS_LAST, &last_s),
	P("allocatedResourcesStatus", 14, ARR, CS_ARS, &ars_s),
};
static const struct kc_sax_schema cstat_s = SCHEMA(cstat_f);
static const struct kc_sax_field clst_f[] = {
	P("name", 1, STR, PCS_NAME, NULL), P("resourceClaimName", 2, STR, PCS_CLAIM, NULL),
};
static const struct kc_sax_schema clst_s = SCHEMA(clst_f);
static const struct kc_sax_field pod_status_f[] = {
	P("phase", 1, STR, P_PHASE, NULL),
	P("containerStatuses", 8, ARR, P_CSTAT, &cstat_s), PW("initContainerStatuses", 10, FIRST, ARR, P_ICSTAT, &cstat_s),
	P("resourceClaimStatuses", 15, ARR, P_CLST, &clst_s),
};
static const struct kc_sax_schema pod_status_s = SCHEMA(pod_status_f);
static const struct kc_sax_field pod_f[] = {
	P("metadata", 1, OBJ, M_META, &meta_s), P("spec", 2, OBJ, X_SPEC, &pod_spec_s),
	P("status", 3, OBJ, X_STATUS, &pod_status_s),
};
static const struct kc_sax_schema pod_s = SCHEMA(pod_f);

/* Node */
static const struct kc_sax_field node_spec_f[] = {
	P("unschedulable", 4, BOOL, N_UNSCHED, NULL), P("taints", 5, ARR, N_TAINTS, &taint_s),
};
static const struct kc_sax_schema node_spec_s = SCHEMA(node_spec_f);
static const struct kc_sax_field node_status_f[] = {
	PW("capacity", 1, QTY, MAP, N_CAP, NULL), PW("allocatable", 2, QTY, MAP, N_ALLOC, NULL),
	P("conditions", 4, ARR, N_CONDS, &cond_s),
};
static const struct kc_sax_schema node_status_s = SCHEMA(node_status_f);
static const struct kc_sax_field node_f[] = {
	P("metadata", 1, OBJ, M_META, &meta_s), P("spec", 2, OBJ, X_SPEC, &node_spec_s),
	P("status", 3, OBJ, X_STATUS, &node_status_s),
};
static const struct kc_sax_schema node_s = SCHEMA(node_f);

/* ResourceClaim (v1, v1beta2 and v1beta1 nest the allocation the same way).  The tolerations
 * come from the allocation result, not from spec.devices.requests: the result holds a copy of
 * the tolerations of the (sub)request the device was allocated for, in the same place in
 * every version, and it is what kube-controller-manager's device taint eviction reads. */
static const struct kc_sax_field tol_f[] = {
	F("key", STR, TL_KEY, NULL), F("operator", STR, TL_OP, NULL), F("value", STR, TL_VALUE, NULL),
	F("effect", STR, TL_EFFECT, NULL), F("tolerationSeconds", INT, TL_SECS, NULL),
};
static const struct kc_sax_schema tol_s = SCHEMA(tol_f);
static const struct kc_sax_field result_f[] = {
	F("request", STR, RR_REQ, NULL), F("driver", STR, RR_DRIVER, NULL),
	F("pool", STR, RR_POOL, NULL), F("device", STR, RR_DEVICE, NULL),
	F("tolerations", ARR, RR_TOL, &tol_s),
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

/* DeviceTaintRule: v1, v1beta2 and v1alpha3 have the same spec */
static const struct kc_sax_field rsel_f[] = {
	F("driver", STR, DR_DRIVER, NULL), F("pool", STR, DR_POOL, NULL), F("device", STR, DR_DEVICE, NULL),
};
static const struct kc_sax_schema rsel_s = SCHEMA(rsel_f);
static const struct kc_sax_field rule_spec_f[] = {
	F("deviceSelector", OBJ, DR_SEL, &rsel_s), F("taint", OBJ, DR_TAINT, &taint_s),
};
static const struct kc_sax_schema rule_spec_s = SCHEMA(rule_spec_f);
static const struct kc_sax_field rule_f[] = {
	F("metadata", OBJ, M_META, &meta_s), F("spec", OBJ, X_SPEC, &rule_spec_s),
};
static const struct kc_sax_schema rule_s = SCHEMA(rule_f);

/* Envelopes.  A watch event's "object" is looked up as a Status first (for
 * ERROR events) and then as the kind; a key such as "status" picks the
 * field whose JSON type matches. */
static const struct kc_sax_field lmeta_f[] = {
	P("resourceVersion", 2, STR, L_RV, NULL), P("continue", 3, STR, L_CONT, NULL),
};
static const struct kc_sax_schema lmeta_s = SCHEMA(lmeta_f);
static const struct kc_sax_field details_f[] = { P("retryAfterSeconds", 5, INT, ST_RETRY, NULL) };
static const struct kc_sax_schema details_s = SCHEMA(details_f);
static const struct kc_sax_field status_f[] = {
	P("code", 6, INT, ST_CODE, NULL), P("status", 2, STR, ST_STATUS, NULL), P("reason", 4, STR, ST_REASON, NULL),
	P("message", 3, STR, ST_MESSAGE, NULL), P("details", 5, OBJ, X_DETAILS, &details_s),
};

#define ENVELOPES(name, root)                                                                   \
	static const struct kc_sax_field name##_list_f[] = {                                     \
		F("metadata", OBJ, X_LMETA, &lmeta_s), F("items", ARR, L_ITEM, &root),          \
	};                                                                                       \
	static const struct kc_sax_schema name##_wobj_s = { status_f, KC_ARRAY_SIZE(status_f), &root }; \
	static const struct kc_sax_field name##_watch_f[] = {                                    \
		F("type", STR, W_TYPE, NULL), F("object", OBJ, W_OBJ, &name##_wobj_s),          \
	};

static const struct kc_sax_schema status_s = SCHEMA(status_f);

ENVELOPES(pod, pod_s)
ENVELOPES(node, node_s)
ENVELOPES(claim, claim_s)
ENVELOPES(slice, slice_s)
ENVELOPES(rule, rule_s)

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
	return kc_dec_arena_dup(d, v->s, v->len);
}

static const char *msg_v(struct dec *d, const struct kc_sax_value *v)
{
	return kc_dec_arena_dup(d, v->s, cut_utf8(v->s, v->len, d->max_message));
}

/*
 * A UID packed in *ret when it is a UUID; else its text in the arena, which the layout copies
 * into the block (uid_text_copy).  False when the arena bound was hit (d->err is set).
 */
static bool uid_v(struct dec *d, const struct kc_sax_value *v, struct kc_uid *ret)
{
	const char *text;

	if (kc_uid_pack(v->s, v->len, ret))
		return true;
	text = dup_v(d, v);
	if (!text)
		return false;
	kc_uid_set_text(ret, text);
	return true;
}

static const char *intern_v(struct dec *d, const struct kc_sax_value *v)
{
	return kc_intern(d->in, v->s, v->len);
}

static int push_kv(struct dec *d, struct vec *vec, const struct kc_sax_value *v)
{
	struct kc_kv kv = { kc_intern(d->in, v->key, v->klen), dup_v(d, v) };

	if (!kv.value || !kc_dec_vec_push(d, vec, &kv))
		return d->err;
	return 0;
}

/* A container's request or limit: one list, where a request wins over a limit of the same
 * name (kc_objects.h).  The container's quantities are the last n_requests of d->v.qa. */
static int container_quantity(struct dec *d, unsigned id, const struct kc_quantity *q)
{
	struct kc_container *c = vec_last(&d->v.containers);

	for (uint32_t i = d->v.qa.n - c->n_requests; i < d->v.qa.n; i++) {
		struct kc_quantity *x = vec_at(&d->v.qa, i);

		if (x->name == q->name) {
			if (id == PC_REQ)
				x->value = q->value;
			return 0;
		}
	}
	if (!kc_dec_vec_push(d, &d->v.qa, q))
		return d->err;
	c->n_requests++;
	return 0;
}

static int on_map_entry(struct dec *d, unsigned id, const struct kc_sax_value *v)
{
	struct kc_quantity q;

	switch (id) {
	case M_LABELS:
		if (d->keep_labels && !in_list(d->keep_labels, v->key, v->klen))
			return 0;
		return push_kv(d, &d->v.labels, v);
	case M_ANNOT:
		if (v->klen == strlen("kubernetes.io/config.mirror")
		    && memcmp(v->key, "kubernetes.io/config.mirror", v->klen) == 0)
			d->mirror = true;
		if (v->klen == strlen(KC_INITIAL_EVENTS_END) && memcmp(v->key, KC_INITIAL_EVENTS_END, v->klen) == 0 &&
		    v->len == 4 && memcmp(v->s, "true", 4) == 0)
			d->initial_events_end = true;
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
		if (id == PC_REQ || id == PC_LIM)
			return container_quantity(d, id, &q);
		return kc_dec_vec_push(d, id == N_CAP ? &d->v.qa : &d->v.qb, &q) ? 0 : d->err;
	}
	return 0;
}

static int on_begin(struct dec *d, unsigned id)
{
	switch (id) {
	case M_OWNER:
		return kc_dec_vec_push(d, &d->v.owners, &(struct kc_owner_ref){ .kind = "", .name = "" }) ? 0 : d->err;
	case N_CONDS:
	case DS_CONDS:
		if (!kc_dec_vec_push(d, &d->v.conds, &(struct kc_condition){ "", "", "", 0, KC_COND_UNKNOWN }))
			return d->err;
		if (id == DS_CONDS)
			((struct kc_device_status *)vec_last(&d->v.devstat))->n_conditions++;
		return 0;
	case N_TAINTS:
	case SD_TAINTS:
	case DR_TAINT:
		/* A rule has one taint object; a repeated "taint" key keeps the last, as JSON does. */
		if (id == DR_TAINT)
			d->v.taints.n = 0;
		if (!kc_dec_vec_push(d, &d->v.taints, &(struct kc_taint){ "", "", "", 0 }))
			return d->err;
		if (id == SD_TAINTS)
			((struct kc_slice_device *)vec_last(&d->v.sdevs))->n_taints++;
		return 0;
	case P_CONT:
	case P_INITCONT:
		if (!kc_dec_vec_push(d, &d->v.containers, &(struct kc_container){ .name = "", .init = id == P_INITCONT }))
			return d->err;
		return kc_dec_vec_push(d, &d->v.cclaims, &(const char *){ "" }) ? 0 : d->err;
	case P_SCLAIM:
		return kc_dec_vec_push(d, &d->v.sclaims, &(struct kc_claim_ref){ "", "" }) ? 0 : d->err;
	case P_CLST:
		return kc_dec_vec_push(d, &d->v.clst, &(struct kc_claim_ref){ "", "" }) ? 0 : d->err;
	case P_CSTAT:
	case P_ICSTAT:
		return kc_dec_vec_push(d, &d->v.statuses,
				&(struct kc_container_status){ .name = "", .init = id == P_ICSTAT })
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
		if (!kc_dec_vec_push(d, &d->v.resstat, &(struct kc_resource_status){ .name = "" }))
			return d->err;
		((struct kc_container_status *)vec_last(&d->v.statuses))->n_resources++;
		return 0;
	case RS_RES:
		if (!kc_dec_vec_push(d, &d->v.devhealth, &(struct dec_device){ .message = "", .health = KC_HEALTH_UNSET }))
			return d->err;
		((struct kc_resource_status *)vec_last(&d->v.resstat))->n_devices++;
		return 0;
	case RC_ALLOC:
		d->h.claim.allocated = true;
		return 0;
	case RC_RESULT:
		return kc_dec_vec_push(d, &d->v.results,
				       &(struct kc_device_result){ .request = "", .driver = "", .pool = "", .device = "" })
			       ? 0 : d->err;
	case RR_TOL:
		if (!kc_dec_vec_push(d, &d->v.tols,
				     &(struct kc_toleration){ .key = "", .value = "", .effect = "" }))
			return d->err;
		((struct kc_device_result *)vec_last(&d->v.results))->n_tolerations++;
		return 0;
	case DR_SEL:
		d->h.rule.has_selector = true;
		return 0;
	case RC_DEVSTAT:
		return kc_dec_vec_push(d, &d->v.devstat, &(struct kc_device_status){ "", "", "", NULL, 0 }) ? 0 : d->err;
	case RC_RESV:
		return kc_dec_vec_push(d, &d->v.consumers, &(struct kc_consumer){ "", "", "" }) ? 0 : d->err;
	case SL_DEV:
		return kc_dec_vec_push(d, &d->v.sdevs, &(struct kc_slice_device){ "", NULL, 0 }) ? 0 : d->err;
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
	case M_UID:
		if (!uid_v(d, v, &d->h.meta.uid))
			return d->err;
		break;
	case M_RV:
		SET(d->rv, dup_v(d, v));
		d->h.meta.rv_key = kc_decode_rv_key(v->s, v->len);
		break;
	case M_DEL: d->h.meta.deleting = time_of(v) != 0; break;
	case O_KIND: SET(((struct kc_owner_ref *)vec_last(&d->v.owners))->kind, intern_v(d, v)); break;
	case O_NAME: SET(((struct kc_owner_ref *)vec_last(&d->v.owners))->name, dup_v(d, v)); break;
	case O_UID:
		if (!uid_v(d, v, &((struct kc_owner_ref *)vec_last(&d->v.owners))->uid))
			return d->err;
		break;
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
	case PC_NAME: SET(((struct kc_container *)vec_last(&d->v.containers))->name, intern_v(d, v)); break;
	case PCC_NAME: {
		/* The first claim is enough to know the container holds a DRA device; claim names are few. */
		const char **claim = vec_last(&d->v.cclaims);

		if (!**claim)
			SET(*claim, intern_v(d, v));
		break;
	}
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
	case CS_NAME: SET(((struct kc_container_status *)vec_last(&d->v.statuses))->name, intern_v(d, v)); break;
	case CS_W_REASON:
	case CS_T_REASON:
		((struct kc_container_status *)vec_last(&d->v.statuses))->crash_loop_backoff = eq(v, "CrashLoopBackOff");
		break;
	case RS_NAME: SET(((struct kc_resource_status *)vec_last(&d->v.resstat))->name, intern_v(d, v)); break;
	case DH_ID: {
		/* Packed when UUID-shaped (unique to a device: interning would
		 * share nothing); else interned, as such IDs belong to the
		 * hardware (a few per node) and repeat as pods come and go. */
		struct dec_device *dv = vec_last(&d->v.devhealth);

		if (!kc_devid_pack(v->s, v->len, &dv->id)) {
			const char *text = intern_v(d, v);

			if (!text)
				return d->err;
			kc_devid_set_text(&dv->id, text);
		}
		break;
	}
	case DH_MSG: SET(((struct dec_device *)vec_last(&d->v.devhealth))->message, msg_v(d, v)); break;
	case DH_HEALTH:
		((struct dec_device *)vec_last(&d->v.devhealth))->health =
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
	case TL_KEY: SET(((struct kc_toleration *)vec_last(&d->v.tols))->key, intern_v(d, v)); break;
	case TL_VALUE: SET(((struct kc_toleration *)vec_last(&d->v.tols))->value, dup_v(d, v)); break;
	case TL_EFFECT: SET(((struct kc_toleration *)vec_last(&d->v.tols))->effect, intern_v(d, v)); break;
	case TL_OP:
		((struct kc_toleration *)vec_last(&d->v.tols))->op =
			v->len == 0 || eq(v, "Equal") ? KC_TOLERATION_EQUAL
			: eq(v, "Exists") ? KC_TOLERATION_EXISTS : KC_TOLERATION_OTHER;
		break;
	case DR_DRIVER: SET(d->h.rule.driver, intern_v(d, v)); break;
	case DR_POOL: SET(d->h.rule.pool, intern_v(d, v)); break;
	case DR_DEVICE: SET(d->h.rule.device, dup_v(d, v)); break;
	case ST_STATUS: SET(d->st_status, kc_dec_arena_dup(d, v->s, cut_utf8(v->s, v->len, 64))); break;
	case ST_REASON: SET(d->st_reason, kc_dec_arena_dup(d, v->s, cut_utf8(v->s, v->len, 256))); break;
	case ST_MESSAGE:
		SET(d->st_message, kc_dec_arena_dup(d, v->s, cut_utf8(v->s, v->len, MAX_STATUS_MESSAGE)));
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
	case TL_SECS: {
		struct kc_toleration *t = vec_last(&d->v.tols);

		t->seconds = i;
		t->has_seconds = true;
		break;
	}
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
	case O_CTRL:
		/* 1-based: the owner being decoded (kc_dec_finish keeps the first 255). */
		if (b && !d->h.meta.controller && d->v.owners.n <= UINT8_MAX)
			d->h.meta.controller = (uint8_t)d->v.owners.n;
		break;
	case N_UNSCHED: d->h.node.unschedulable = b; break;
	case SL_ALL: d->h.slice.all_nodes = b; break;
	case CS_READY: ((struct kc_container_status *)vec_last(&d->v.statuses))->ready = b; break;
	}
	return 0;
}

int kc_dec_handler(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v)
{
	struct dec *d = ud;

	if (id >= X_LMETA && id != ST_CODE && id != ST_STATUS && id != ST_REASON && id != ST_MESSAGE
	    && id != ST_RETRY && id != X_DETAILS)
		return kc_dec_layer_event(d, id, ev, v);
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
		return 0;
	case KC_SAX_EV_ENTRY:
		return on_map_entry(d, id, v);
	}
	return 0;
}

/* ---- types -------------------------------------------------------------------------- */

/* protobuf: the schema has the kind's field numbers (kc_pb.h); DRA kinds are read from JSON. */
#define OPS(name, k, protobuf)                                                                      \
	static const struct kc_decoder_ops name##_ops = {                                          \
		.kind = k,                                                                          \
		.root = SCHEMA(name##_f),                                                           \
		.list_root = SCHEMA(name##_list_f),                                                 \
		.watch_root = SCHEMA(name##_watch_f),                                               \
		.pb = protobuf,                                                                     \
		.pb_list_meta = &lmeta_s,                                                           \
		.pb_status = &status_s,                                                             \
	};

OPS(pod, K_POD, true)
OPS(node, K_NODE, true)
OPS(claim, K_CLAIM, false)
OPS(slice, K_SLICE, false)
OPS(rule, K_RULE, false)

bool kc_type_reads_protobuf(const struct kc_type *t)
{
	return t->ops->pb;
}

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
const struct kc_type kc_type_device_taint_rule = {
	"DeviceTaintRule", "devicetaintrules", "/apis/resource.k8s.io/v1/devicetaintrules", false, NULL,
	&rule_ops,
};
