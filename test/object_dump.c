/*
 * The canonical dump of decoded objects (object_dump.h).
 */
#include "object_dump.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kc_uid.h"

/* A decimal resourceVersion's key is the number: printed so, it reads as the text did. */
static void dump_meta(FILE *f, const struct kc_meta *m)
{
	char rv[32] = "", mub[KC_UID_BUF];

	if (m->rv_key >> 63)
		snprintf(rv, sizeof(rv), "#%llx", (unsigned long long)m->rv_key);
	else if (m->rv_key)
		snprintf(rv, sizeof(rv), "%llu", (unsigned long long)m->rv_key);
	fprintf(f, "meta %s/%s uid=%s rv=%s del=%d\n", m->ns, m->name, kc_uid_str(&m->uid, mub), rv,
		m->deleting);
	for (uint32_t i = 0; i < m->n_labels; i++)
		fprintf(f, " label %s=%s\n", m->labels[i].key, m->labels[i].value);
	for (uint32_t i = 0; i < m->n_annotations; i++)
		fprintf(f, " annot %s=%s\n", kc_meta_annotations(m)[i].key, kc_meta_annotations(m)[i].value);
	for (uint32_t i = 0; i < m->n_owners; i++) {
		char ub[KC_UID_BUF];
		size_t len;
		const char *name = kc_owner_name(m, &m->owners[i], &len);

		fprintf(f, " owner %s %.*s %s ctl=%d\n", m->owners[i].kind, (int)len, name,
			kc_uid_str(&m->owners[i].uid, ub), kc_meta_controller(m) == &m->owners[i]);
	}
}

static void dump_conds(FILE *f, const struct kc_condition *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, " cond %s=%d reason=%s msg=%s t=%lld\n", c[i].type, c[i].status, c[i].reason,
			c[i].message, (long long)c[i].last_transition);
}

static void dump_quants(FILE *f, const char *what, const struct kc_quantity *q, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "  %s %s=%lld\n", what, q[i].name, (long long)q[i].value);
}

static void dump_taints(FILE *f, const struct kc_taint *t, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "  taint %s=%s:%s t=%lld\n", t[i].key, t[i].value, t[i].effect, (long long)t[i].time_added);
}

static void dump_pod(FILE *f, const struct kc_pod *p)
{
	dump_meta(f, &p->meta);
	fprintf(f, "pod node=%s phase=%d prio=%d/%d mirror=%d\n", p->node_name, p->phase, p->has_priority,
		p->priority, p->is_mirror);
	for (uint32_t i = 0; i < p->n_containers; i++) {
		const struct kc_container *c = &p->containers[i];

		fprintf(f, " container %s init=%d claim=%s\n", c->name, c->init, kc_container_claim(p, c));
		dump_quants(f, "req", c->requests, c->n_requests);
	}
	for (uint32_t i = 0; i < p->n_statuses; i++) {
		const struct kc_container_status *s = &p->statuses[i];

		fprintf(f, " status %s init=%d ready=%d restarts=%d state=%d crashloop=%d exit=%d/%d", s->name,
			s->init, s->ready, s->restart_count, s->state, s->crash_loop_backoff, s->has_exit_code,
			s->exit_code);
		fprintf(f, " last exit=%d/%d\n", s->has_last_exit_code, s->last_exit_code);
		for (uint32_t j = 0; j < s->n_resources; j++) {
			fprintf(f, "  resource %s\n", s->resources[j].name);
			for (uint32_t k = 0; k < s->resources[j].n_devices; k++) {
				const char *msg;
				enum kc_health h = kc_device_health(&s->resources[j], k, &msg);
				char buf[KC_DEVID_BUF];

				fprintf(f, "   device %s health=%d msg=%s\n", kc_devid_str(&s->resources[j].ids[k], buf),
					h, msg);
			}
		}
	}
	for (uint32_t i = 0; i < p->n_claims; i++)
		fprintf(f, " claim %s -> %s\n", kc_pod_claims(p)[i].name, kc_pod_claims(p)[i].claim_name);
}

static void dump_node(FILE *f, const struct kc_node *n)
{
	dump_meta(f, &n->meta);
	fprintf(f, "node unschedulable=%d\n", n->unschedulable);
	dump_taints(f, n->taints, n->n_taints);
	dump_quants(f, "capacity", n->capacity, n->n_capacity);
	dump_quants(f, "allocatable", n->allocatable, n->n_allocatable);
	dump_conds(f, n->conditions, n->n_conditions);
}

static void dump_claim(FILE *f, const struct kc_resource_claim *c)
{
	dump_meta(f, &c->meta);
	fprintf(f, "claim allocated=%d\n", c->allocated);
	for (uint32_t i = 0; i < c->n_results; i++) {
		fprintf(f, " result %s %s/%s/%s\n", c->results[i].request, c->results[i].driver, c->results[i].pool,
			c->results[i].device);
		for (uint32_t k = 0; k < c->results[i].n_tolerations; k++) {
			const struct kc_toleration *t = &c->results[i].tolerations[k];

			fprintf(f, "  toleration key=%s op=%d value=%s effect=%s seconds=%d/%lld\n", t->key, t->op,
				t->value, t->effect, t->has_seconds, (long long)t->seconds);
		}
	}
	for (uint32_t i = 0; i < c->n_device_statuses; i++) {
		const struct kc_device_status *d = &c->device_statuses[i];

		fprintf(f, " devstatus %s/%s/%s\n", d->driver, d->pool, d->device);
		dump_conds(f, d->conditions, d->n_conditions);
	}
	for (uint32_t i = 0; i < c->n_consumers; i++)
		fprintf(f, " consumer %s %s %s\n", c->consumers[i].resource, c->consumers[i].name, c->consumers[i].uid);
}

static void dump_slice(FILE *f, const struct kc_resource_slice *s)
{
	dump_meta(f, &s->meta);
	fprintf(f, "slice driver=%s pool=%s node=%s all=%d\n", s->driver, s->pool, s->node_name, s->all_nodes);
	for (uint32_t i = 0; i < s->n_devices; i++) {
		fprintf(f, " device %s\n", s->devices[i].name);
		dump_taints(f, s->devices[i].taints, s->devices[i].n_taints);
	}
}

static void dump_rule(FILE *f, const struct kc_device_taint_rule *r)
{
	dump_meta(f, &r->meta);
	fprintf(f, "rule selector=%d driver=%s pool=%s device=%s\n", r->has_selector, r->driver, r->pool, r->device);
	dump_taints(f, &r->taint, 1);
}

/* Returns a newly allocated canonical text of obj. */
char *object_dump(const struct kc_type *t, const void *obj)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (t == &kc_type_pod)
		dump_pod(f, obj);
	else if (t == &kc_type_node)
		dump_node(f, obj);
	else if (t == &kc_type_resource_claim)
		dump_claim(f, obj);
	else if (t == &kc_type_device_taint_rule)
		dump_rule(f, obj);
	else
		dump_slice(f, obj);
	fclose(f);
	return buf;
}

