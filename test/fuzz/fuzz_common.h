/*
 * Helpers shared by the decoder fuzz targets (fuzz_object, fuzz_list,
 * fuzz_watch): how the first input bytes choose the kind, the decode options
 * and the chunking, and a canonical dump of a decoded object that checks the
 * invariants of kc_objects.h on the way (no NULL string, arrays present when
 * counted, interned strings really interned, kept strings inside the object's
 * one heap block, messages within max_message).  The dump doubles as the
 * value compared by the differential checks (whole buffer against chunks).
 *
 * Header-only so that each target stays one .c file for the Makefile's
 * fuzz_%.c rule; everything here is static.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "kc_decode.h"
#include "kc_intern.h"
#include "kc_objects.h"

#define FUZZ_UNUSED __attribute__((unused))

static const struct kc_type *const fuzz_types[5] = {
    &kc_type_pod,
    &kc_type_node,
    &kc_type_resource_claim,
    &kc_type_resource_slice,
    &kc_type_device_taint_rule,
};

/* The kind a selector byte picks (the byte's other bits pick options). */
#define FUZZ_TYPE(sel) (fuzz_types[(unsigned)(sel) % 5])

static const char *const fuzz_keep_labels[] = {"app", "nvidia.com/gpu.present", NULL};
static const char *const fuzz_keep_annotations[] = {"kubernetes.io/config.mirror", "device-descheduler.io/evict",
						    NULL};
static const char *const fuzz_keep_none[] = {NULL};

/* The same lists with room after each string, for FUZZ_IGNORE_KNOWN=1: the
 * known over-read of kc_decode_schema.c's in_list() (test_regressions.c,
 * test_keep_list_key_with_nul) then stays inside the buffers. */
static char pad_app[64] = "app", pad_gpu[64] = "nvidia.com/gpu.present";
static char pad_mirror[64] = "kubernetes.io/config.mirror", pad_evict[64] = "device-descheduler.io/evict";
static const char *const fuzz_pad_labels[] = {pad_app, pad_gpu, NULL};
static const char *const fuzz_pad_annotations[] = {pad_mirror, pad_evict, NULL};

/* FUZZ_IGNORE_KNOWN=1: tolerate the known, still open findings, so that a
 * run can look for new ones. */
static FUZZ_UNUSED bool fuzz_ignore_known(void)
{
	static int cached = -1;

	if (cached < 0) {
		const char *e = getenv("FUZZ_IGNORE_KNOWN");

		cached = e && strcmp(e, "1") == 0;
	}
	return cached;
}

/* Decode options chosen by two bits of a byte: the defaults (NULL), a
 * filtering set with a tiny max_message (exercises the UTF-8 cut), a keep-
 * nothing set, and explicit defaults with a larger message bound. */
static FUZZ_UNUSED const struct kc_decode_opts *fuzz_opts(uint8_t sel)
{
	static const struct kc_decode_opts opts[3] = {
	    {.keep_labels = fuzz_keep_labels, .keep_annotations = fuzz_keep_annotations, .max_message = 7},
	    {.keep_labels = fuzz_keep_none, .keep_annotations = fuzz_keep_none, .max_message = 1},
	    {.keep_annotations = fuzz_keep_annotations, .max_message = 4096},
	};
	static const struct kc_decode_opts padded[3] = {
	    {.keep_labels = fuzz_pad_labels, .keep_annotations = fuzz_pad_annotations, .max_message = 7},
	    {.keep_labels = fuzz_keep_none, .keep_annotations = fuzz_keep_none, .max_message = 1},
	    {.keep_annotations = fuzz_pad_annotations, .max_message = 4096},
	};

	if ((sel & 3) == 0)
		return NULL;
	return fuzz_ignore_known() ? &padded[(sel & 3) - 1] : &opts[(sel & 3) - 1];
}

static FUZZ_UNUSED size_t fuzz_max_message(const struct kc_decode_opts *o)
{
	return o && o->max_message ? o->max_message : 1024;
}

/* What the checks need to know about the object being dumped. */
struct fuzz_dump {
	FILE *f;
	struct kc_intern *intern;
	const char *block; /* the object's heap block */
	size_t block_size;
	size_t max_message;
};

static FUZZ_UNUSED void fuzz_str(struct fuzz_dump *d, const char *tag, const char *s)
{
	FUZZ_CHECK(s != NULL);
	/* strlen runs under ASan: an unterminated string is reported here. */
	size_t n = strlen(s);

	/* "" may be a shared literal; anything else lives in the object's block. */
	if (n != 0 && (s < d->block || s + n >= d->block + d->block_size)) {
		fprintf(stderr, "%s=\"%s\" is outside the object's block\n", tag, s);
		abort();
	}
	fprintf(d->f, " %s=%s", tag, s);
}

/*
 * Set by a target when its input holds "\u0000": a decoded string may then
 * contain a NUL, and the check below, which must find the length with
 * strlen, cannot look the string up.
 */
static bool fuzz_input_has_nul;

static FUZZ_UNUSED void fuzz_set_input(const uint8_t *data, size_t size)
{
	fuzz_input_has_nul = memmem(data, size, "\\u0000", 6) != NULL;
}

static FUZZ_UNUSED void fuzz_interned(struct fuzz_dump *d, const char *tag, const char *s)
{
	FUZZ_CHECK(s != NULL);
	/* Interning an interned string returns the very same pointer.  An
	 * absent field is a shared "" that need not come from the table. */
	if (s[0] != '\0' && !fuzz_input_has_nul && kc_intern_str(d->intern, s) != s) {
		fprintf(stderr, "%s=\"%s\" is not interned\n", tag, s);
		abort();
	}
	fprintf(d->f, " %s=%s", tag, s);
}

static FUZZ_UNUSED void fuzz_array(struct fuzz_dump *d, const void *a, size_t n, size_t elem)
{
	if (n == 0)
		return;
	FUZZ_CHECK(a != NULL);
	FUZZ_CHECK((const char *)a >= d->block && (const char *)a + n * elem <= d->block + d->block_size);
}

static FUZZ_UNUSED void fuzz_message(struct fuzz_dump *d, const char *s)
{
	fuzz_str(d, "msg", s);
	FUZZ_CHECK(strlen(s) <= d->max_message);
}

/* An unpacked UID's text is in the object's block; a packed one is all in its 16 bytes. */
static FUZZ_UNUSED void fuzz_uid(struct fuzz_dump *d, const struct kc_uid *u)
{
	const char *text = kc_uid_text(u);
	char ub[KC_UID_BUF];

	if (text)
		fuzz_str(d, "uid", text);
	else
		fprintf(d->f, " uid=%s", kc_uid_str(u, ub));
}

static FUZZ_UNUSED void fuzz_meta(struct fuzz_dump *d, const struct kc_meta *m)
{
	fprintf(d->f, "meta");
	fuzz_interned(d, "ns", m->ns);
	fuzz_str(d, "name", m->name);
	fuzz_uid(d, &m->uid);
	FUZZ_CHECK(m->controller <= m->n_owners);
	fprintf(d->f, " rv=%llu del=%d\n", (unsigned long long)m->rv_key, m->deleting);
	fuzz_array(d, m->labels, m->n_labels, sizeof(*m->labels));
	for (uint32_t i = 0; i < m->n_labels; i++) {
		fuzz_interned(d, "label", m->labels[i].key);
		fuzz_str(d, "value", m->labels[i].value);
	}
	fuzz_array(d, kc_meta_annotations(m), m->n_annotations, sizeof(struct kc_kv));
	for (uint32_t i = 0; i < m->n_annotations; i++) {
		fuzz_interned(d, "annot", kc_meta_annotations(m)[i].key);
		fuzz_str(d, "value", kc_meta_annotations(m)[i].value);
	}
	fuzz_array(d, m->owners, m->n_owners, sizeof(*m->owners));
	for (uint32_t i = 0; i < m->n_owners; i++) {
		const struct kc_owner_ref *o = &m->owners[i];

		fuzz_interned(d, "owner", o->kind);
		if (o->name) {
			fuzz_str(d, "name", o->name);
		} else {
			/* The object's own name up to its last '-'. */
			size_t len;
			const char *name = kc_owner_name(m, o, &len);

			FUZZ_CHECK(len > 0 && name[len] == '-');
			fprintf(d->f, " name=%.*s", (int)len, name);
		}
		fuzz_uid(d, &o->uid);
		fprintf(d->f, " ctl=%d\n", kc_meta_controller(m) == o);
	}
}

static FUZZ_UNUSED void fuzz_conds(struct fuzz_dump *d, const struct kc_condition *c, uint32_t n)
{
	fuzz_array(d, c, n, sizeof(*c));
	for (uint32_t i = 0; i < n; i++) {
		fuzz_interned(d, "cond", c[i].type);
		fuzz_interned(d, "reason", c[i].reason);
		fuzz_message(d, c[i].message);
		FUZZ_CHECK(c[i].status <= KC_COND_FALSE);
		fprintf(d->f, " st=%d t=%lld\n", c[i].status, (long long)c[i].last_transition);
	}
}

static FUZZ_UNUSED void fuzz_quants(struct fuzz_dump *d, const struct kc_quantity *q, uint32_t n,
				    bool extended)
{
	fuzz_array(d, q, n, sizeof(*q));
	for (uint32_t i = 0; i < n; i++) {
		fuzz_interned(d, "q", q[i].name);
		/* Only extended resources ("domain/name") are kept. */
		if (extended && !fuzz_input_has_nul)
			FUZZ_CHECK(strchr(q[i].name, '/') != NULL);
		fprintf(d->f, "=%lld", (long long)q[i].value);
	}
	fprintf(d->f, "\n");
}

static FUZZ_UNUSED void fuzz_taints(struct fuzz_dump *d, const struct kc_taint *t, uint32_t n)
{
	fuzz_array(d, t, n, sizeof(*t));
	for (uint32_t i = 0; i < n; i++) {
		fuzz_interned(d, "taint", t[i].key);
		fuzz_str(d, "value", t[i].value);
		fuzz_interned(d, "effect", t[i].effect);
		fprintf(d->f, " t=%lld\n", (long long)t[i].time_added);
	}
}

static FUZZ_UNUSED void fuzz_pod(struct fuzz_dump *d, const struct kc_pod *p)
{
	fuzz_meta(d, &p->meta);
	fprintf(d->f, "pod");
	fuzz_interned(d, "node", p->node_name);
	FUZZ_CHECK(p->phase <= KC_POD_FAILED);
	fprintf(d->f, " phase=%d prio=%d/%d mirror=%d\n", p->phase, p->has_priority, p->priority, p->is_mirror);
	fuzz_array(d, p->containers, p->n_containers, sizeof(*p->containers));
	for (uint32_t i = 0; i < p->n_containers; i++) {
		const struct kc_container *c = &p->containers[i];

		fuzz_interned(d, "container", c->name);
		fprintf(d->f, " init=%d\n", c->init);
		fuzz_quants(d, c->requests, c->n_requests, true);
	}
	fuzz_array(d, p->statuses, p->n_statuses, sizeof(*p->statuses));
	for (uint32_t i = 0; i < p->n_statuses; i++) {
		const struct kc_container_status *s = &p->statuses[i];

		fuzz_interned(d, "status", s->name);
		FUZZ_CHECK(s->state <= KC_STATE_TERMINATED);
		fprintf(d->f, " init=%d restarts=%d state=%d crashloop=%d exit=%d/%d last=%d/%d\n", s->init,
			s->restart_count, s->state, s->crash_loop_backoff, s->has_exit_code, s->exit_code,
			s->has_last_exit_code, s->last_exit_code);
		fuzz_array(d, s->resources, s->n_resources, sizeof(*s->resources));
		for (uint32_t j = 0; j < s->n_resources; j++) {
			const struct kc_resource_status *r = &s->resources[j];

			fuzz_interned(d, "resource", r->name);
			fuzz_array(d, r->ids, r->n_devices, sizeof(*r->ids));
			const struct kc_device_note *notes = kc_rs_notes(r);

			fuzz_array(d, notes, r->n_notes, sizeof(*notes));
			/* Notes are of distinct devices, in the order of their index, never plainly Healthy. */
			for (uint32_t k = 0; k < r->n_notes; k++) {
				FUZZ_CHECK(notes[k].index < r->n_devices);
				FUZZ_CHECK(k == 0 || notes[k - 1].index < notes[k].index);
				FUZZ_CHECK(notes[k].health != KC_HEALTH_HEALTHY || *notes[k].message);
			}
			for (uint32_t k = 0; k < r->n_devices; k++) {
				const char *msg;
				enum kc_health h = kc_device_health(r, k, &msg);
				const char *text = kc_devid_text(&r->ids[k]);
				char ib[KC_DEVID_BUF];

				/* A packed ID is in the block (fuzz_array); a text one is
				 * interned, and never one the decoder could have packed. */
				if (text) {
					struct kc_devid packed;

					FUZZ_CHECK(fuzz_input_has_nul || !kc_devid_pack(text, strlen(text), &packed));
					fuzz_interned(d, "dev", text);
				} else
					fprintf(d->f, " dev=%s", kc_devid_str(&r->ids[k], ib));
				fuzz_message(d, msg);
				FUZZ_CHECK(h <= KC_HEALTH_UNKNOWN);
				fprintf(d->f, " health=%d\n", h);
			}
		}
	}
	fuzz_array(d, kc_pod_claims(p), p->n_claims, sizeof(struct kc_claim_ref));
	for (uint32_t i = 0; i < p->n_claims; i++) {
		fuzz_str(d, "claim", kc_pod_claims(p)[i].name);
		fuzz_str(d, "claim_name", kc_pod_claims(p)[i].claim_name);
		fprintf(d->f, "\n");
	}
}

static FUZZ_UNUSED void fuzz_node(struct fuzz_dump *d, const struct kc_node *n)
{
	fuzz_meta(d, &n->meta);
	fprintf(d->f, "node unsched=%d\n", n->unschedulable);
	fuzz_taints(d, n->taints, n->n_taints);
	fuzz_conds(d, n->conditions, n->n_conditions);
	fuzz_quants(d, n->capacity, n->n_capacity, true);
	fuzz_quants(d, n->allocatable, n->n_allocatable, true);
}

static FUZZ_UNUSED void fuzz_claim(struct fuzz_dump *d, const struct kc_resource_claim *c)
{
	fuzz_meta(d, &c->meta);
	fprintf(d->f, "claim allocated=%d\n", c->allocated);
	fuzz_array(d, c->results, c->n_results, sizeof(*c->results));
	for (uint32_t i = 0; i < c->n_results; i++) {
		fuzz_str(d, "request", c->results[i].request);
		fuzz_interned(d, "driver", c->results[i].driver);
		fuzz_interned(d, "pool", c->results[i].pool);
		fuzz_str(d, "device", c->results[i].device);
		fprintf(d->f, "\n");
	}
	fuzz_array(d, c->device_statuses, c->n_device_statuses, sizeof(*c->device_statuses));
	for (uint32_t i = 0; i < c->n_device_statuses; i++) {
		const struct kc_device_status *s = &c->device_statuses[i];

		fuzz_interned(d, "driver", s->driver);
		fuzz_interned(d, "pool", s->pool);
		fuzz_str(d, "device", s->device);
		fprintf(d->f, "\n");
		fuzz_conds(d, s->conditions, s->n_conditions);
	}
	fuzz_array(d, c->consumers, c->n_consumers, sizeof(*c->consumers));
	for (uint32_t i = 0; i < c->n_consumers; i++) {
		fuzz_interned(d, "consumer", c->consumers[i].resource);
		fuzz_str(d, "name", c->consumers[i].name);
		fuzz_str(d, "uid", c->consumers[i].uid);
		fprintf(d->f, "\n");
	}
}

static FUZZ_UNUSED void fuzz_slice(struct fuzz_dump *d, const struct kc_resource_slice *s)
{
	fuzz_meta(d, &s->meta);
	fprintf(d->f, "slice");
	fuzz_interned(d, "driver", s->driver);
	fuzz_interned(d, "pool", s->pool);
	fuzz_interned(d, "node", s->node_name);
	fprintf(d->f, " all=%d\n", s->all_nodes);
	fuzz_array(d, s->devices, s->n_devices, sizeof(*s->devices));
	for (uint32_t i = 0; i < s->n_devices; i++) {
		fuzz_str(d, "device", s->devices[i].name);
		fprintf(d->f, "\n");
		fuzz_taints(d, s->devices[i].taints, s->devices[i].n_taints);
	}
}

static FUZZ_UNUSED void fuzz_rule(struct fuzz_dump *d, const struct kc_device_taint_rule *r)
{
	fuzz_meta(d, &r->meta);
	fprintf(d->f, "rule");
	fuzz_interned(d, "driver", r->driver);
	fuzz_interned(d, "pool", r->pool);
	fuzz_str(d, "device", r->device);
	fprintf(d->f, " selector=%d\n", r->has_selector);
	fuzz_taints(d, &r->taint, 1);
}

/* Writes the canonical form of obj (of kind t) to f, checking invariants. */
static FUZZ_UNUSED void fuzz_dump_object(FILE *f, const struct kc_type *t, struct kc_intern *in,
					 const struct kc_decode_opts *o, const void *obj)
{
	struct fuzz_dump d = {
	    .f = f,
	    .intern = in,
	    .block = obj,
	    .block_size = malloc_usable_size((void *)obj),
	    .max_message = fuzz_max_message(o),
	};

	FUZZ_CHECK(obj != NULL);
	if (t == &kc_type_pod)
		fuzz_pod(&d, obj);
	else if (t == &kc_type_node)
		fuzz_node(&d, obj);
	else if (t == &kc_type_resource_claim)
		fuzz_claim(&d, obj);
	else if (t == &kc_type_resource_slice)
		fuzz_slice(&d, obj);
	else
		fuzz_rule(&d, obj);
	/* node_of must be safe on any decoded object. */
	if (t->node_of) {
		const char *node = t->node_of(obj);

		if (node)
			(void)strlen(node);
	}
}

/*
 * Chunking: the header byte `n` (0..15) is followed by n bytes of chunk
 * lengths (each 1..256); the lengths are used in turn, cycling, until the
 * payload is consumed.  n == 0 feeds everything in one chunk.  A chunk is
 * at least 1/128 of the payload, so that a large input costs at most about
 * 128 feeds: byte-sized splits are exercised on small inputs, where the
 * fuzzer finds them fastest, without slowing every run of a large one.
 */
struct fuzz_chunks {
	const uint8_t *lens;
	size_t n;
	size_t next;
	size_t min;
};

/* Reads the chunking header from *data; returns false if the input is too short. */
static FUZZ_UNUSED bool fuzz_chunks_init(struct fuzz_chunks *c, const uint8_t **data, size_t *size)
{
	if (*size < 1)
		return false;
	c->n = (*data)[0] & 15;
	if (*size < 1 + c->n)
		return false;
	c->lens = *data + 1;
	c->next = 0;
	*data += 1 + c->n;
	*size -= 1 + c->n;
	c->min = *size / 128;
	return true;
}

static FUZZ_UNUSED size_t fuzz_chunks_next(struct fuzz_chunks *c, size_t left)
{
	size_t len;

	if (c->n == 0)
		return left;
	len = (size_t)c->lens[c->next] + 1;
	if (len < c->min)
		len = c->min;
	c->next = (c->next + 1) % c->n;
	return len < left ? len : left;
}

#endif
