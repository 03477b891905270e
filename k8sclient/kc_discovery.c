/*
 * Discovery documents (kc_discovery.h), decoded with kc_sax's walker as they
 * arrive: a real cluster's aggregated document is a few hundred kilobytes,
 * and the walker keeps only the names we need.  JSON keys come in any order
 * (a group's "versions" may precede its name, a list's "kind" may come last),
 * so the decoder collects what it sees with indices between the levels and
 * resolves names and kind only when the document is complete.
 */
#include "kc_discovery.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_sax.h"

/* Bounds on what one document may make us keep: a real cluster has a few
 * hundred resources in fewer than a hundred group versions. */
#define MAX_NAME 256
#define MAX_ITEMS 1024
#define MAX_VERSIONS 4096
#define MAX_RESOURCES 16384
#define NONE UINT32_MAX

struct version {
	char *group, *version;
	bool resolved; /* its resources are known */
};

struct resource {
	char *group, *version, *name;
};

struct kc_discovery {
	struct version *vers;
	size_t n_vers;
	struct resource *res;
	size_t n_res;
};

/* ---- what is known ---- */

struct kc_discovery *kc_discovery_new(void)
{
	return kc_xcalloc(1, sizeof(struct kc_discovery));
}

struct kc_discovery *kc_discovery_free(struct kc_discovery *d)
{
	if (!d)
		return NULL;
	for (size_t i = 0; i < d->n_vers; i++) {
		free(d->vers[i].group);
		free(d->vers[i].version);
	}
	for (size_t i = 0; i < d->n_res; i++) {
		free(d->res[i].group);
		free(d->res[i].version);
		free(d->res[i].name);
	}
	free(d->vers);
	free(d->res);
	free(d);
	return NULL;
}

static struct version *find_version(const struct kc_discovery *d, const char *group, const char *version)
{
	for (size_t i = 0; i < d->n_vers; i++)
		if (strcmp(d->vers[i].group, group) == 0 && strcmp(d->vers[i].version, version) == 0)
			return &d->vers[i];
	return NULL;
}

static void add_version(struct kc_discovery *d, const char *group, const char *version, bool resolved)
{
	struct version *v = find_version(d, group, version);

	if (v) {
		v->resolved = v->resolved || resolved;
		return;
	}
	d->vers = kc_xrealloc(d->vers, (d->n_vers + 1) * sizeof(*d->vers));
	v = &d->vers[d->n_vers++];
	v->group = kc_xstrdup(group);
	v->version = kc_xstrdup(version);
	v->resolved = resolved;
}

static void add_resource(struct kc_discovery *d, const char *group, const char *version, const char *name)
{
	struct resource *r;

	d->res = kc_xrealloc(d->res, (d->n_res + 1) * sizeof(*d->res));
	r = &d->res[d->n_res++];
	r->group = kc_xstrdup(group);
	r->version = kc_xstrdup(version);
	r->name = kc_xstrdup(name);
}

bool kc_discovery_has_group(const struct kc_discovery *d, const char *group)
{
	for (size_t i = 0; d && i < d->n_vers; i++)
		if (strcmp(d->vers[i].group, group) == 0)
			return true;
	return false;
}

size_t kc_discovery_unresolved(const struct kc_discovery *d, const char *group, const char **ret, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; d && i < d->n_vers; i++) {
		if (strcmp(d->vers[i].group, group) != 0 || d->vers[i].resolved)
			continue;
		if (n < max)
			ret[n] = d->vers[i].version;
		n++;
	}
	return n;
}

static bool serves(const struct kc_discovery *d, const char *group, const char *version, const char *resource)
{
	for (size_t i = 0; i < d->n_res; i++)
		if (strcmp(d->res[i].name, resource) == 0 && strcmp(d->res[i].version, version) == 0 &&
		    strcmp(d->res[i].group, group) == 0)
			return true;
	return false;
}

const char *kc_discovery_pick(const struct kc_discovery *d, const char *group, const char *resource,
			      const char *const *versions)
{
	for (size_t i = 0; d && versions[i]; i++)
		if (serves(d, group, versions[i], resource))
			return versions[i];
	return NULL;
}

void kc_discovery_dra(const struct kc_discovery *d, struct kc_dra_versions *ret)
{
	static const char *const dra[] = {"v1", "v1beta2", "v1beta1", NULL};
	static const char *const rules[] = {"v1", "v1beta2", "v1alpha3", NULL};

	ret->claims = kc_discovery_pick(d, KC_DRA_GROUP, "resourceclaims", dra);
	ret->slices = kc_discovery_pick(d, KC_DRA_GROUP, "resourceslices", dra);
	ret->taint_rules = kc_discovery_pick(d, KC_DRA_GROUP, "devicetaintrules", rules);
}

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool kc_dra_versions_equal(const struct kc_dra_versions *a, const struct kc_dra_versions *b)
{
	return same(a->claims, b->claims) && same(a->slices, b->slices) && same(a->taint_rules, b->taint_rules);
}

/* ---- the decoder ---- */

enum {
	D_KIND = 1,
	D_ITEM,   /* an element of "items" (aggregated) or "groups" (APIGroupList) */
	D_META,   /* its metadata (aggregated) */
	D_GNAME,  /* its name or metadata.name */
	D_VER,    /* an element of its "versions" */
	D_VNAME,  /* version */
	D_VRES,   /* an element of an aggregated version's "resources" */
	D_VRNAME, /* resource */
	D_GV,     /* APIResourceList: groupVersion */
	D_RES,    /* APIResourceList: an element of "resources" */
	D_RNAME,  /* name */
};

#define F KC_SAX_F
static const struct kc_sax_field vres_f[] = {F("resource", KC_SAX_STR, D_VRNAME, NULL)};
static const struct kc_sax_schema vres_s = KC_SAX_SCHEMA(vres_f);
static const struct kc_sax_field ver_f[] = {
    F("version", KC_SAX_STR, D_VNAME, NULL),
    F("resources", KC_SAX_ARR, D_VRES, &vres_s),
};
static const struct kc_sax_schema ver_s = KC_SAX_SCHEMA(ver_f);
static const struct kc_sax_field meta_f[] = {F("name", KC_SAX_STR, D_GNAME, NULL)};
static const struct kc_sax_schema meta_s = KC_SAX_SCHEMA(meta_f);
static const struct kc_sax_field group_f[] = {
    F("name", KC_SAX_STR, D_GNAME, NULL),
    F("metadata", KC_SAX_OBJ, D_META, &meta_s),
    F("versions", KC_SAX_ARR, D_VER, &ver_s),
};
static const struct kc_sax_schema group_s = KC_SAX_SCHEMA(group_f);
static const struct kc_sax_field res_f[] = {F("name", KC_SAX_STR, D_RNAME, NULL)};
static const struct kc_sax_schema res_s = KC_SAX_SCHEMA(res_f);
static const struct kc_sax_field root_f[] = {
    F("kind", KC_SAX_STR, D_KIND, NULL),       F("items", KC_SAX_ARR, D_ITEM, &group_s),
    F("groups", KC_SAX_ARR, D_ITEM, &group_s), F("groupVersion", KC_SAX_STR, D_GV, NULL),
    F("resources", KC_SAX_ARR, D_RES, &res_s),
};
static const struct kc_sax_schema root_s = KC_SAX_SCHEMA(root_f);
#undef F

/* A version seen in the document: its group is known by the item's index. */
struct pver {
	uint32_t item;
	char *name;
};

/* A resource seen: its version by index (NONE: the APIResourceList's groupVersion). */
struct pres {
	uint32_t ver;
	char *name;
};

struct kc_discovery_decoder {
	struct kc_discovery *d;
	struct kc_sax sax;
	char *kind, *gv;
	char **items; /* group names by item index (NULL until seen) */
	size_t n_items;
	struct pver *vers;
	size_t n_vers;
	struct pres *res;
	size_t n_res;
	uint32_t cur_item, cur_ver;
	int error; /* sticky */
	char errmsg[256];
};

static int fail(struct kc_discovery_decoder *dec, int error, const char *fmt, ...) KC_PRINTF(3, 4);

/* Records the first error (the others follow from it) and returns it. */
static int fail(struct kc_discovery_decoder *dec, int error, const char *fmt, ...)
{
	va_list ap;

	if (!dec->error) {
		dec->error = error;
		va_start(ap, fmt);
		vsnprintf(dec->errmsg, sizeof(dec->errmsg), fmt, ap);
		va_end(ap);
	}
	return dec->error;
}

/* Grows an array by one element (zeroed), within max elements. */
static int grow(struct kc_discovery_decoder *dec, void **arr, size_t *n, size_t elsz, size_t max,
		const char *what)
{
	if (*n >= max)
		return fail(dec, -EMSGSIZE, "more than the bound of %zu %s in one document", max, what);
	*arr = kc_xrealloc(*arr, (*n + 1) * elsz);
	memset((char *)*arr + *n * elsz, 0, elsz);
	(*n)++;
	return 0;
}

static int set_name(struct kc_discovery_decoder *dec, char **dst, const struct kc_sax_value *v)
{
	if (v->len == 0 || v->len > MAX_NAME || memchr(v->s, '\0', v->len))
		return fail(dec, -EBADMSG, "a name that is empty, longer than %d bytes or has a NUL byte",
			    MAX_NAME);
	free(*dst);
	*dst = kc_xstrndup(v->s, v->len);
	return 0;
}

static int handler(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v)
{
	struct kc_discovery_decoder *dec = ud;
	int r;

	switch (id) {
	case D_KIND:
		return set_name(dec, &dec->kind, v);
	case D_GV:
		return set_name(dec, &dec->gv, v);
	case D_ITEM:
		if (ev != KC_SAX_EV_BEGIN)
			return 0;
		r = grow(dec, (void **)&dec->items, &dec->n_items, sizeof(*dec->items), MAX_ITEMS, "groups");
		dec->cur_item = (uint32_t)dec->n_items - 1;
		return r;
	case D_GNAME:
		return set_name(dec, &dec->items[dec->cur_item], v);
	case D_VER:
		if (ev != KC_SAX_EV_BEGIN)
			return 0;
		r = grow(dec, (void **)&dec->vers, &dec->n_vers, sizeof(*dec->vers), MAX_VERSIONS, "versions");
		if (r < 0)
			return r;
		dec->cur_ver = (uint32_t)dec->n_vers - 1;
		dec->vers[dec->cur_ver].item = dec->cur_item;
		return 0;
	case D_VNAME:
		return set_name(dec, &dec->vers[dec->cur_ver].name, v);
	case D_VRES:
	case D_RES:
		if (ev != KC_SAX_EV_BEGIN)
			return 0;
		r = grow(dec, (void **)&dec->res, &dec->n_res, sizeof(*dec->res), MAX_RESOURCES, "resources");
		if (r < 0)
			return r;
		dec->res[dec->n_res - 1].ver = id == D_VRES ? dec->cur_ver : NONE;
		return 0;
	case D_VRNAME:
	case D_RNAME:
		return set_name(dec, &dec->res[dec->n_res - 1].name, v);
	default:
		return 0;
	}
}

struct kc_discovery_decoder *kc_discovery_decoder_new(struct kc_discovery *d)
{
	struct kc_discovery_decoder *dec = kc_xcalloc(1, sizeof(*dec));

	dec->d = d;
	kc_sax_init(&dec->sax, &root_s, handler, dec);
	kc_sax_begin(&dec->sax);
	return dec;
}

struct kc_discovery_decoder *kc_discovery_decoder_free(struct kc_discovery_decoder *dec)
{
	if (!dec)
		return NULL;
	kc_sax_done(&dec->sax);
	for (size_t i = 0; i < dec->n_items; i++)
		free(dec->items[i]);
	for (size_t i = 0; i < dec->n_vers; i++)
		free(dec->vers[i].name);
	for (size_t i = 0; i < dec->n_res; i++)
		free(dec->res[i].name);
	free(dec->items);
	free(dec->vers);
	free(dec->res);
	free(dec->kind);
	free(dec->gv);
	free(dec);
	return NULL;
}

int kc_discovery_decoder_feed(struct kc_discovery_decoder *dec, const char *buf, size_t len)
{
	char msg[200];
	int r;

	if (dec->error)
		return dec->error;
	r = kc_sax_feed(&dec->sax, buf, len, msg, sizeof(msg));
	if (r < 0)
		fail(dec, r, "%s", msg);
	return dec->error;
}

/* Adds a group list (versions only) or an aggregated list (versions and resources). */
static void commit_groups(struct kc_discovery_decoder *dec, bool aggregated)
{
	for (size_t i = 0; i < dec->n_vers; i++) {
		const char *g = dec->items[dec->vers[i].item];

		if (g && dec->vers[i].name)
			add_version(dec->d, g, dec->vers[i].name, aggregated);
	}
	for (size_t i = 0; aggregated && i < dec->n_res; i++) {
		const struct pres *p = &dec->res[i];
		const char *g, *v;

		if (p->ver == NONE || !p->name)
			continue;
		g = dec->items[dec->vers[p->ver].item];
		v = dec->vers[p->ver].name;
		if (g && v)
			add_resource(dec->d, g, v, p->name);
	}
}

/* Adds an APIResourceList: "resource.k8s.io/v1" (or "v1" for the core group). */
static int commit_resources(struct kc_discovery_decoder *dec)
{
	const char *slash;
	char *group;
	const char *version;

	if (!dec->gv)
		return fail(dec, -EBADMSG, "an APIResourceList without %s", "groupVersion");
	slash = strrchr(dec->gv, '/');
	group = slash ? kc_xstrndup(dec->gv, (size_t)(slash - dec->gv)) : kc_xstrdup("");
	version = slash ? slash + 1 : dec->gv;
	if (!*version) {
		free(group);
		return fail(dec, -EBADMSG, "an APIResourceList for \"%s\", which names no version", dec->gv);
	}
	add_version(dec->d, group, version, true);
	for (size_t i = 0; i < dec->n_res; i++) {
		const struct pres *p = &dec->res[i];

		/* "pods/status" and the like are subresources, not resources. */
		if (p->ver == NONE && p->name && !strchr(p->name, '/'))
			add_resource(dec->d, group, version, p->name);
	}
	free(group);
	return 0;
}

int kc_discovery_decoder_finish(struct kc_discovery_decoder *dec)
{
	char msg[200];
	int r;

	if (dec->error)
		return dec->error;
	r = kc_sax_complete(&dec->sax, msg, sizeof(msg));
	if (r < 0)
		return fail(dec, r, "%s", msg);
	if (!dec->kind)
		return fail(dec, -EBADMSG, "not a discovery document (no %s)", "kind");
	if (strcmp(dec->kind, "APIGroupDiscoveryList") == 0)
		commit_groups(dec, true);
	else if (strcmp(dec->kind, "APIGroupList") == 0)
		commit_groups(dec, false);
	else if (strcmp(dec->kind, "APIResourceList") == 0)
		return commit_resources(dec);
	else
		return fail(dec, -EBADMSG, "not a discovery document (kind %s)", dec->kind);
	return 0;
}

const char *kc_discovery_decoder_error(const struct kc_discovery_decoder *dec)
{
	return dec->errmsg;
}

int kc_discovery_decode(struct kc_discovery *d, const char *json, size_t len, struct kc_error *err)
{
	struct kc_discovery_decoder *dec = kc_discovery_decoder_new(d);
	int r;

	r = kc_discovery_decoder_feed(dec, json, len);
	if (r == 0)
		r = kc_discovery_decoder_finish(dec);
	if (r < 0)
		kc_error_set(err, r, "discovery: %s", kc_discovery_decoder_error(dec));
	kc_discovery_decoder_free(dec);
	return r;
}
