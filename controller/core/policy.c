/*
 * The DeviceDeschedulerPolicy loader declared in policy.h: the schema (the
 * tables of fields, the custom fields and the rules that span fields), the
 * defaults and the public API.  The generic part, the YAML tree and the walk
 * of a mapping against a table with its FILE:LINE:COL: FIELD.PATH messages,
 * is yamlschema.c.  The walk writes straight into a struct policy that starts
 * out with every default; a field given as an explicit null counts as absent
 * and keeps its default, as Kubernetes does for JSON nulls.
 *
 * A little over 800 lines because it is one schema: each section's table
 * sits next to the few custom fields and cross-field rules it needs.
 */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "yamlschema.h"

#define API_VERSION "device-descheduler/v1alpha1"
#define KIND "DeviceDeschedulerPolicy"

/* ---- custom fields ---- */

static int f_api_version(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	(void)base;
	return ys_check_const(c, v, API_VERSION);
}

static int f_kind(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	(void)base;
	return ys_check_const(c, v, KIND);
}

static int f_exit_codes(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy *p = base;
	size_t save = c->path_len;
	long long code;
	int r;

	if ((r = ys_expect_seq(c, v)) < 0)
		return r;
	free(p->exit_codes);
	p->exit_codes = v->n ? kc_xcalloc(v->n, sizeof(int32_t)) : NULL;
	p->n_exit_codes = 0;
	for (size_t i = 0; i < v->n; i++) {
		ys_path_push_index(c, i);
		if ((r = ys_get_int(c, v->kids[i], 0, 255, &code)) < 0)
			return r;
		p->exit_codes[p->n_exit_codes++] = (int32_t)code;
		ys_path_pop(c, save);
	}
	return 0;
}

static int f_taint_effects(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy *p = base;
	size_t save = c->path_len;
	char g[128];
	int r;

	if ((r = ys_get_strv(c, v, &p->dra_taint_effects, &p->n_dra_taint_effects)) < 0)
		return r;
	for (size_t i = 0; i < p->n_dra_taint_effects; i++) {
		const char *e = p->dra_taint_effects[i];

		if (strcmp(e, "None") != 0 && strcmp(e, "NoSchedule") != 0 && strcmp(e, "NoExecute") != 0) {
			ys_path_push_index(c, i);
			return ys_fail(c, v->kids[i],
				    "expected \"None\", \"NoSchedule\" or \"NoExecute\", got %s",
				    ys_got(v->kids[i], false, g, sizeof(g)));
		}
		ys_path_pop(c, save);
	}
	return 0;
}

static int f_device_id_pattern(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy_node_condition *nc = base;
	char *pattern = NULL, msg[200];
	int r;

	if ((r = ys_get_string(c, v, false, &pattern)) < 0)
		return r;
	r = regcomp(&nc->device_id_regex, pattern, REG_EXTENDED);
	if (r != 0) {
		regerror(r, &nc->device_id_regex, msg, sizeof(msg));
		free(pattern);
		return ys_fail(c, v, "invalid regular expression: %s", msg);
	}
	nc->device_id_pattern = pattern;
	return 0;
}

static const struct ys_field node_condition_fields[] = {
    {"type", YS_F_STRING, offsetof(struct policy_node_condition, type), 0, 0, 0, NULL, NULL},
    {"status", YS_F_STATUS, offsetof(struct policy_node_condition, status), 0, 0, 0, NULL, NULL},
    {"resources", YS_F_STRV, offsetof(struct policy_node_condition, resources),
     offsetof(struct policy_node_condition, n_resources), 0, 0, NULL, NULL},
    {"for", YS_F_DURATION, offsetof(struct policy_node_condition, for_ms), 0, 0, 0, NULL, NULL},
    {"deviceIDPattern", YS_F_CUSTOM, 0, 0, 0, 0, NULL, f_device_id_pattern},
};
static const struct ys_fieldset node_condition_set = {node_condition_fields,
						   KC_ARRAY_SIZE(node_condition_fields), NULL};

static int f_node_conditions(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy *p = base;
	size_t save = c->path_len;
	int r;

	if ((r = ys_expect_seq(c, v)) < 0)
		return r;
	p->node_conditions = v->n ? kc_xcalloc(v->n, sizeof(*p->node_conditions)) : NULL;
	for (size_t i = 0; i < v->n; i++) {
		struct policy_node_condition *nc = &p->node_conditions[i];

		p->n_node_conditions = i + 1;
		nc->status = KC_COND_TRUE;
		ys_path_push_index(c, i);
		if ((r = ys_walk_fields(c, v->kids[i], &node_condition_set, nc)) < 0)
			return r;
		if ((r = ys_require(c, v->kids[i], "type")) < 0)
			return r;
		ys_path_pop(c, save);
	}
	return 0;
}

static const struct ys_field condition_match_fields[] = {
    {"type", YS_F_STRING, offsetof(struct policy_condition_match, type), 0, 0, 0, NULL, NULL},
    {"status", YS_F_STATUS, offsetof(struct policy_condition_match, status), 0, 0, 0, NULL, NULL},
};
static const struct ys_fieldset condition_match_set = {condition_match_fields,
						    KC_ARRAY_SIZE(condition_match_fields), NULL};

static void free_condition_matches(struct policy_condition_match *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].type);
	free(m);
}

static int f_dra_conditions(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy *p = base;
	size_t save = c->path_len;
	int r;

	if ((r = ys_expect_seq(c, v)) < 0)
		return r;
	free_condition_matches(p->dra_conditions, p->n_dra_conditions);
	p->n_dra_conditions = 0;
	p->dra_conditions = v->n ? kc_xcalloc(v->n, sizeof(*p->dra_conditions)) : NULL;
	for (size_t i = 0; i < v->n; i++) {
		struct policy_condition_match *m = &p->dra_conditions[i];

		p->n_dra_conditions = i + 1;
		m->status = KC_COND_TRUE;
		ys_path_push_index(c, i);
		if ((r = ys_walk_fields(c, v->kids[i], &condition_match_set, m)) < 0)
			return r;
		if ((r = ys_require(c, v->kids[i], "type")) < 0)
			return r;
		ys_path_pop(c, save);
	}
	return 0;
}

static int f_match_labels(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy_selector *sel = &((struct policy *)base)->selector;
	size_t save = c->path_len, dup, first = 0;
	int r;

	if ((r = ys_expect_map(c, v)) < 0)
		return r;
	for (size_t i = 0; i < v->n; i += 2) {
		if ((r = ys_field_name(c, v->kids[i])) < 0)
			return r;
	}
	dup = ys_first_duplicate(v, &first);
	sel->match_labels = v->n ? kc_xcalloc(v->n / 2, sizeof(*sel->match_labels)) : NULL;
	for (size_t i = 0; i < v->n / 2; i++) {
		const struct ys_node *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
		char *value = NULL;

		ys_path_push_key(c, k->text);
		if (i == dup)
			return ys_fail(c, k, "duplicate label key (first given on line %zu)",
				    v->kids[2 * first]->line);
		if (k->len == 0)
			return ys_fail(c, k, "a label key must not be empty");
		if ((r = ys_get_string(c, val, true, &value)) < 0)
			return r;
		sel->match_labels[i].key = kc_xstrdup(k->text);
		sel->match_labels[i].value = value;
		sel->n_match_labels = i + 1;
		ys_path_pop(c, save);
	}
	return 0;
}

static int f_operator(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	static const char *const names[] = {
	    [POLICY_OP_IN] = "In",
	    [POLICY_OP_NOT_IN] = "NotIn",
	    [POLICY_OP_EXISTS] = "Exists",
	    [POLICY_OP_DOES_NOT_EXIST] = "DoesNotExist",
	};
	struct policy_label_expr *e = base;
	char g[128];

	for (size_t i = 0; i < KC_ARRAY_SIZE(names); i++) {
		if (v->kind == YS_SCALAR && strcmp(v->text, names[i]) == 0) {
			e->op = (enum policy_label_op)i;
			return 0;
		}
	}
	return ys_fail(c, v, "expected \"In\", \"NotIn\", \"Exists\" or \"DoesNotExist\", got %s",
		    ys_got(v, false, g, sizeof(g)));
}

static int check_label_expr(struct ys_ctx *c, const struct ys_node *map, void *base)
{
	struct policy_label_expr *e = base;
	int r;

	if ((r = ys_require(c, map, "key")) < 0 || (r = ys_require(c, map, "operator")) < 0)
		return r;
	if ((e->op == POLICY_OP_IN || e->op == POLICY_OP_NOT_IN) && e->n_values == 0)
		return ys_fail_field(c, map, "values", "must not be empty when operator is %s",
				  e->op == POLICY_OP_IN ? "In" : "NotIn");
	if ((e->op == POLICY_OP_EXISTS || e->op == POLICY_OP_DOES_NOT_EXIST) && e->n_values > 0)
		return ys_fail_field(c, map, "values", "must be empty when operator is %s",
				  e->op == POLICY_OP_EXISTS ? "Exists" : "DoesNotExist");
	return 0;
}

static const struct ys_field label_expr_fields[] = {
    {"key", YS_F_STRING, offsetof(struct policy_label_expr, key), 0, 0, 0, NULL, NULL},
    {"operator", YS_F_CUSTOM, 0, 0, 0, 0, NULL, f_operator},
    {"values", YS_F_STRV, offsetof(struct policy_label_expr, values),
     offsetof(struct policy_label_expr, n_values), 0, 0, NULL, NULL},
};
static const struct ys_fieldset label_expr_set = {label_expr_fields, KC_ARRAY_SIZE(label_expr_fields),
					       check_label_expr};

static int f_match_expressions(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy_selector *sel = &((struct policy *)base)->selector;
	size_t save = c->path_len;
	int r;

	if ((r = ys_expect_seq(c, v)) < 0)
		return r;
	sel->exprs = v->n ? kc_xcalloc(v->n, sizeof(*sel->exprs)) : NULL;
	for (size_t i = 0; i < v->n; i++) {
		sel->n_exprs = i + 1;
		ys_path_push_index(c, i);
		if ((r = ys_walk_fields(c, v->kids[i], &label_expr_set, &sel->exprs[i])) < 0)
			return r;
		ys_path_pop(c, save);
	}
	return 0;
}

static int f_priority_value(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy *p = base;
	long long i;
	int r;

	if ((r = ys_get_int(c, v, INT32_MIN, INT32_MAX, &i)) < 0)
		return r;
	p->priority_threshold = (int32_t)i;
	p->has_priority_threshold = true;
	return 0;
}

/* ---- rules that span fields ---- */

static int check_exit_codes(struct ys_ctx *c, const struct ys_node *map, void *base)
{
	struct policy *p = base;

	if (p->exit_codes_enabled && p->n_exit_codes == 0)
		return ys_fail_field(c, map, "codes",
				  "must list at least one exit code when exitCodes is enabled");
	return 0;
}

/* Notes a DRA switch the file sets to true (see dra_explicit). */
static void note_dra_explicit(struct policy *p, const struct ys_node *map, const char *key, bool value)
{
	if (value && ys_find_key(map, key, NULL))
		p->dra_explicit = true;
}

static int check_devices(struct ys_ctx *c, const struct ys_node *map, void *base)
{
	(void)c;
	note_dra_explicit(base, map, "dra", ((struct policy *)base)->dra);
	return 0;
}

static int check_dra_taints(struct ys_ctx *c, const struct ys_node *map, void *base)
{
	struct policy *p = base;

	note_dra_explicit(p, map, "enabled", p->dra_taints_enabled);
	if (p->dra_taints_enabled && p->n_dra_taint_effects == 0)
		return ys_fail_field(c, map, "effects",
				  "must list at least one effect when draDeviceTaints is enabled");
	return 0;
}

static int check_dra_conditions(struct ys_ctx *c, const struct ys_node *map, void *base)
{
	struct policy *p = base;

	note_dra_explicit(p, map, "enabled", p->dra_conditions_enabled);
	if (p->dra_conditions_enabled && p->n_dra_conditions == 0)
		return ys_fail_field(c, map, "conditions",
				  "must list at least one condition when draDeviceConditions is enabled");
	return 0;
}

static int check_retry(struct ys_ctx *c, const struct ys_node *map, void *base)
{
	struct policy *p = base;
	char buf[64];

	if (p->retry_initial_ms == 0)
		return ys_fail_field(c, map, "initialBackoff", "must be greater than 0");
	if (p->retry_max_ms < p->retry_initial_ms)
		return ys_fail_field(c, map, "maxBackoff", "must not be less than initialBackoff (%s)",
				  duration_format(p->retry_initial_ms, buf, sizeof(buf)));
	return 0;
}

static int check_limits(struct ys_ctx *c, const struct ys_node *map, void *base)
{
	struct policy *p = base;

	if (p->window_ms == 0)
		return ys_fail_field(c, map, "window", "must be greater than 0");
	return 0;
}

/* ---- the schema ---- */

/* The formatter would spread each of these one-line initializers over four lines. */
/* clang-format off */
#define P(f) offsetof(struct policy, f)
#define BOOL(name, f) {name, YS_F_BOOL, P(f), 0, 0, 0, NULL, NULL}
#define DUR(name, f) {name, YS_F_DURATION, P(f), 0, 0, 0, NULL, NULL}
#define U32(name, f, lo, hi) {name, YS_F_U32, P(f), 0, lo, hi, NULL, NULL}
#define STRV(name, f) {name, YS_F_STRV, P(f), P(n_##f), 0, 0, NULL, NULL}
#define MAP(name, set) {name, YS_F_MAP, 0, 0, 0, 0, &set, NULL}
#define CUSTOM(name, fn) {name, YS_F_CUSTOM, 0, 0, 0, 0, NULL, fn}
#define SET(fields, check) {fields, KC_ARRAY_SIZE(fields), check}
/* clang-format on */

static const struct ys_field devices_fields[] = {
    STRV("resources", resources),
    STRV("excludeResources", exclude_resources),
    BOOL("dra", dra),
};
static const struct ys_fieldset devices_set = SET(devices_fields, check_devices);

static const struct ys_field pod_health_unknown_fields[] = {
    BOOL("enabled", pod_health_unknown_enabled),
    DUR("for", pod_health_unknown_for_ms),
};
static const struct ys_fieldset pod_health_unknown_set = SET(pod_health_unknown_fields, NULL);

static const struct ys_field pod_health_fields[] = {
    BOOL("enabled", pod_health_enabled),
    DUR("for", pod_health_for_ms),
    MAP("unknown", pod_health_unknown_set),
};
static const struct ys_fieldset pod_health_set = SET(pod_health_fields, NULL);

static const struct ys_field alloc_drop_fields[] = {
    BOOL("enabled", alloc_drop_enabled),
    DUR("for", alloc_drop_for_ms),
    STRV("resources", alloc_drop_resources),
};
static const struct ys_fieldset alloc_drop_set = SET(alloc_drop_fields, NULL);

static const struct ys_field exit_codes_fields[] = {
    BOOL("enabled", exit_codes_enabled),
    CUSTOM("codes", f_exit_codes),
    {"minRestarts", YS_F_I32, P(exit_min_restarts), 0, 0, INT32_MAX, NULL, NULL},
    DUR("for", exit_for_ms),
};
static const struct ys_fieldset exit_codes_set = SET(exit_codes_fields, check_exit_codes);

static const struct ys_field dra_taints_fields[] = {
    BOOL("enabled", dra_taints_enabled),
    CUSTOM("effects", f_taint_effects),
    DUR("for", dra_taints_for_ms),
};
static const struct ys_fieldset dra_taints_set = SET(dra_taints_fields, check_dra_taints);

static const struct ys_field dra_conditions_fields[] = {
    BOOL("enabled", dra_conditions_enabled),
    CUSTOM("conditions", f_dra_conditions),
    DUR("for", dra_conditions_for_ms),
};
static const struct ys_fieldset dra_conditions_set = SET(dra_conditions_fields, check_dra_conditions);

static const struct ys_field signals_fields[] = {
    MAP("podResourceHealth", pod_health_set), CUSTOM("nodeConditions", f_node_conditions),
    MAP("allocatableDrop", alloc_drop_set),   MAP("exitCodes", exit_codes_set),
    MAP("draDeviceTaints", dra_taints_set),   MAP("draDeviceConditions", dra_conditions_set),
};
static const struct ys_fieldset signals_set = SET(signals_fields, NULL);

static const struct ys_field namespaces_fields[] = {
    STRV("include", ns_include),
    STRV("exclude", ns_exclude),
};
static const struct ys_fieldset namespaces_set = SET(namespaces_fields, NULL);

static const struct ys_field selector_fields[] = {
    CUSTOM("matchLabels", f_match_labels),
    CUSTOM("matchExpressions", f_match_expressions),
};
static const struct ys_fieldset selector_set = SET(selector_fields, NULL);

static const struct ys_field priority_fields[] = {
    CUSTOM("value", f_priority_value),
};
static const struct ys_fieldset priority_set = SET(priority_fields, NULL);

static const struct ys_field pod_filters_fields[] = {
    MAP("namespaces", namespaces_set),
    MAP("labelSelector", selector_set),
    MAP("priorityThreshold", priority_set),
    BOOL("evictBarePods", evict_bare_pods),
};
static const struct ys_fieldset pod_filters_set = SET(pod_filters_fields, NULL);

static const struct ys_field retry_fields[] = {
    DUR("initialBackoff", retry_initial_ms),
    DUR("maxBackoff", retry_max_ms),
};
static const struct ys_fieldset retry_set = SET(retry_fields, check_retry);

static const struct ys_field limits_fields[] = {
    DUR("window", window_ms),
    U32("maxPerNode", max_per_node, 0, UINT32_MAX),
    U32("maxPerNamespace", max_per_namespace, 0, UINT32_MAX),
    U32("maxTotal", max_total, 0, UINT32_MAX),
    U32("maxInFlight", max_in_flight, 0, UINT32_MAX),
};
static const struct ys_fieldset limits_set = SET(limits_fields, check_limits);

static const struct ys_field breaker_fields[] = {
    BOOL("enabled", breaker_enabled),
    U32("maxUnhealthyNodes", breaker_max_nodes, 0, UINT32_MAX),
    U32("maxUnhealthyNodePercent", breaker_max_percent, 0, 100),
    U32("minNodes", breaker_min_nodes, 0, UINT32_MAX),
    DUR("closeAfter", breaker_close_after_ms),
    DUR("memory", breaker_memory_ms),
};
static const struct ys_fieldset breaker_set = SET(breaker_fields, NULL);

static const struct ys_field eviction_fields[] = {
    {"gracePeriodSeconds", YS_F_I64, P(grace_period_s), 0, 0, INT64_MAX, NULL, NULL},
    MAP("retry", retry_set),
    DUR("deleteAfter", delete_after_ms),
    MAP("limits", limits_set),
    MAP("circuitBreaker", breaker_set),
};
static const struct ys_fieldset eviction_set = SET(eviction_fields, NULL);

/* remediation.mode: taint, cordon or both. */
static int f_fence_mode(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy *p = base;
	char *mode = NULL, g[128];
	int r;

	if ((r = ys_get_string(c, v, false, &mode)) < 0)
		return r;
	p->fence_taint = strcmp(mode, "taint") == 0 || strcmp(mode, "both") == 0;
	p->fence_cordon = strcmp(mode, "cordon") == 0 || strcmp(mode, "both") == 0;
	free(mode);
	if (!p->fence_taint && !p->fence_cordon)
		return ys_fail(c, v, "expected \"taint\", \"cordon\" or \"both\", got %s", ys_got(v, false, g, sizeof(g)));
	return 0;
}

/* remediation.effect: a taint that keeps new pods off (PreferNoSchedule would not fence). */
static int f_fence_effect(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy *p = base;
	char *e = NULL, g[128];
	int r;

	if ((r = ys_get_string(c, v, false, &e)) < 0)
		return r;
	if (strcmp(e, "NoSchedule") != 0 && strcmp(e, "NoExecute") != 0) {
		free(e);
		return ys_fail(c, v, "expected \"NoSchedule\" or \"NoExecute\", got %s", ys_got(v, false, g, sizeof(g)));
	}
	free(p->fence_effect);
	p->fence_effect = e;
	return 0;
}

/* Whether s is a Kubernetes qualified name part: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63. */
static bool qualified_name_part(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* remediation.key: a taint key, "[prefix/]name" as the API server validates it. */
static int f_fence_key(struct ys_ctx *c, const struct ys_node *v, void *base)
{
	struct policy *p = base;
	char *k = NULL, g[128];
	const char *slash;
	bool ok;
	int r;

	if ((r = ys_get_string(c, v, false, &k)) < 0)
		return r;
	slash = strchr(k, '/');
	if (slash) {
		size_t pn = (size_t)(slash - k);

		ok = pn > 0 && pn <= 253 && qualified_name_part(slash + 1, strlen(slash + 1));
		for (size_t i = 0; ok && i < pn; i++)
			ok = islower((unsigned char)k[i]) || isdigit((unsigned char)k[i]) || k[i] == '-' ||
			     k[i] == '.';
	} else {
		ok = qualified_name_part(k, strlen(k));
	}
	if (!ok) {
		free(k);
		return ys_fail(c, v, "expected a taint key ([DNS-subdomain/]name), got %s", ys_got(v, false, g, sizeof(g)));
	}
	free(p->fence_key);
	p->fence_key = k;
	return 0;
}

static const struct ys_field remediation_fields[] = {
    BOOL("enabled", remediation_enabled),
    CUSTOM("mode", f_fence_mode),
    CUSTOM("key", f_fence_key),
    CUSTOM("effect", f_fence_effect),
    BOOL("deviceTaintRules", device_taint_rules),
    DUR("recoverAfter", recover_after_ms),
    U32("maxQuarantinedNodes", max_quarantined_nodes, 0, UINT32_MAX),
    U32("maxQuarantinedNodePercent", max_quarantined_percent, 0, 100),
    DUR("loopWindow", loop_window_ms),
};
static const struct ys_fieldset remediation_set = SET(remediation_fields, NULL);

static const struct ys_field root_fields[] = {
    CUSTOM("apiVersion", f_api_version), CUSTOM("kind", f_kind),      BOOL("dryRun", dry_run),
    MAP("devices", devices_set),	 MAP("signals", signals_set), MAP("podFilters", pod_filters_set),
    MAP("eviction", eviction_set),	 MAP("remediation", remediation_set),
};
static const struct ys_fieldset root_set = SET(root_fields, NULL);

/* ---- public API ---- */

struct policy *policy_new_default(void)
{
	struct policy *p = kc_xcalloc(1, sizeof(*p));

	p->dra = true;
	p->pod_health_enabled = true;
	p->pod_health_for_ms = 0;
	p->pod_health_unknown_enabled = false;
	p->pod_health_unknown_for_ms = 5 * 60 * 1000;
	p->alloc_drop_enabled = false;
	p->alloc_drop_for_ms = 5 * 60 * 1000;
	p->exit_codes_enabled = false;
	p->exit_min_restarts = 3;
	p->exit_for_ms = 0;
	p->dra_taints_enabled = true;
	p->dra_taint_effects = kc_xcalloc(1, sizeof(char *));
	p->dra_taint_effects[0] = kc_xstrdup("NoExecute");
	p->n_dra_taint_effects = 1;
	p->dra_taints_for_ms = 0;
	p->dra_conditions_enabled = true;
	p->dra_conditions = kc_xcalloc(1, sizeof(*p->dra_conditions));
	p->dra_conditions[0].type = kc_xstrdup("Ready");
	p->dra_conditions[0].status = KC_COND_FALSE;
	p->n_dra_conditions = 1;
	p->dra_conditions_for_ms = 0;
	p->has_priority_threshold = false;
	p->evict_bare_pods = false;
	p->grace_period_s = -1;
	p->retry_initial_ms = 5 * 1000;
	p->retry_max_ms = 2 * 60 * 1000;
	p->delete_after_ms = 0;
	p->window_ms = 60 * 1000;
	p->max_per_node = 0;
	p->max_per_namespace = 0;
	p->max_total = 20;
	p->max_in_flight = 5;
	p->breaker_enabled = true;
	p->breaker_max_nodes = 0;
	p->breaker_max_percent = 50;
	p->breaker_min_nodes = 4;
	p->breaker_close_after_ms = 30 * 1000;
	p->breaker_memory_ms = 10 * 60 * 1000;
	p->remediation_enabled = true;
	p->fence_taint = true;
	p->fence_cordon = false;
	p->fence_key = kc_xstrdup(POLICY_FENCE_KEY);
	p->fence_effect = kc_xstrdup("NoSchedule");
	p->device_taint_rules = true;
	p->recover_after_ms = 10 * 60 * 1000;
	p->max_quarantined_nodes = 0;
	p->max_quarantined_percent = 25;
	p->loop_window_ms = 10 * 60 * 1000;
	p->dry_run = false;
	return p;
}

struct policy *policy_free(struct policy *p)
{
	if (!p)
		return NULL;
	free(p->source);
	ys_strv_free(p->resources, p->n_resources);
	ys_strv_free(p->exclude_resources, p->n_exclude_resources);
	for (size_t i = 0; i < p->n_node_conditions; i++) {
		struct policy_node_condition *nc = &p->node_conditions[i];

		free(nc->type);
		ys_strv_free(nc->resources, nc->n_resources);
		if (nc->device_id_pattern) {
			regfree(&nc->device_id_regex);
			free(nc->device_id_pattern);
		}
	}
	free(p->node_conditions);
	ys_strv_free(p->alloc_drop_resources, p->n_alloc_drop_resources);
	free(p->exit_codes);
	ys_strv_free(p->dra_taint_effects, p->n_dra_taint_effects);
	free_condition_matches(p->dra_conditions, p->n_dra_conditions);
	ys_strv_free(p->ns_include, p->n_ns_include);
	ys_strv_free(p->ns_exclude, p->n_ns_exclude);
	for (size_t i = 0; i < p->selector.n_match_labels; i++) {
		free((char *)p->selector.match_labels[i].key);
		free((char *)p->selector.match_labels[i].value);
	}
	free(p->selector.match_labels);
	for (size_t i = 0; i < p->selector.n_exprs; i++) {
		free(p->selector.exprs[i].key);
		ys_strv_free(p->selector.exprs[i].values, p->selector.exprs[i].n_values);
	}
	free(p->selector.exprs);
	free(p->fence_key);
	free(p->fence_effect);
	free(p);
	return NULL;
}

/*
 * apiVersion and kind are checked before anything else: when someone passes
 * the wrong kind of document, that is the one message worth reading.
 */
static int check_header(struct ys_ctx *c, const struct ys_node *root)
{
	static const struct {
		const char *name, *want;
	} header[] = {{"apiVersion", API_VERSION}, {"kind", KIND}};
	size_t save = c->path_len;
	int r;

	for (size_t i = 0; i < KC_ARRAY_SIZE(header); i++) {
		const struct ys_node *v = ys_find_key(root, header[i].name, NULL);

		ys_path_push_key(c, header[i].name);
		if (!v)
			return ys_fail(c, root, "required field is missing (expected \"%s\")", header[i].want);
		if ((r = ys_check_const(c, v, header[i].want)) < 0)
			return r;
		ys_path_pop(c, save);
	}
	return 0;
}

int policy_parse(const char *name, const char *text, size_t len, struct policy **ret, struct kc_error *err)
{
	struct ys_ctx c = {.name = name ? name : "policy", .err = err};
	struct ys_node *root = NULL;
	struct policy *p;
	char g[128];
	int r;

	if (len > POLICY_MAX_SIZE)
		return kc_error_set(err, -EINVAL, "%s: the policy is larger than 1 MiB", c.name);
	if ((r = ys_build_tree(&c, text ? text : "", text ? len : 0, &root)) < 0)
		return r;
	if (!root || ys_is_null(root)) {
		r = ys_fail_at(&c, 1, 1, "the policy is empty");
		goto free_root;
	}
	if (root->kind != YS_MAPPING) {
		r = ys_fail(&c, root, "expected a mapping with apiVersion, kind and the policy fields, got %s",
			 ys_got(root, false, g, sizeof(g)));
		goto free_root;
	}
	p = policy_new_default();
	if ((r = check_header(&c, root)) < 0 || (r = ys_walk_fields(&c, root, &root_set, p)) < 0) {
		policy_free(p);
		goto free_root;
	}
	p->source = kc_xstrdup(c.name);
	*ret = p;
free_root:
	ys_node_free(root);
	return r;
}

int policy_load_file(const char *path, struct policy **ret, struct kc_error *err)
{
	char *data = NULL;
	size_t len = 0;
	int r;

	r = kc_read_file(path, POLICY_MAX_SIZE, &data, &len);
	if (r == -EFBIG)
		return kc_error_set(err, -EINVAL, "%s: the policy file is larger than 1 MiB", path);
	if (r < 0)
		return kc_error_set(err, r, "%s: cannot read the policy file: %s", path, strerror(-r));
	r = policy_parse(path, data, len, ret, err);
	free(data);
	return r;
}

static bool in_list(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i], s) == 0)
			return true;
	}
	return false;
}

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/*
 * An extended resource as the device plugin API names it: "domain/name" where
 * the domain is not Kubernetes' own.  cpu, memory, ephemeral-storage and
 * hugepages-* have no domain, so they never count.
 */
static bool is_extended_resource(const char *r)
{
	const char *slash = strchr(r, '/');
	size_t dlen;

	if (!slash || slash == r || slash[1] == '\0')
		return false;
	if (strncmp(r, "hugepages-", 10) == 0)
		return false;
	dlen = (size_t)(slash - r);
	if ((dlen == 13 && memcmp(r, "kubernetes.io", 13) == 0) || (dlen == 6 && memcmp(r, "k8s.io", 6) == 0))
		return false;
	return !has_suffix(r, dlen, ".kubernetes.io") && !has_suffix(r, dlen, ".k8s.io");
}

bool policy_is_device_resource(const struct policy *p, const char *resource)
{
	if (!p || !resource || resource[0] == '\0')
		return false;
	if (in_list(p->exclude_resources, p->n_exclude_resources, resource))
		return false;
	if (strncmp(resource, "claim:", 6) == 0)
		return p->dra && resource[6] != '\0';
	if (p->n_resources > 0)
		return in_list(p->resources, p->n_resources, resource);
	return is_extended_resource(resource);
}

/* Whether a name listed in next counts under next but not under prev. */
static bool any_new_device(const struct policy *prev, const struct policy *next, char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (policy_is_device_resource(next, list[i]) && !policy_is_device_resource(prev, list[i]))
			return true;
	return false;
}

bool policy_devices_widened(const struct policy *prev, const struct policy *next)
{
	if (!prev)
		return true;
	if (next->dra && !prev->dra)
		return true;
	/* An empty devices.resources means every extended resource: wider than any list. */
	if (next->n_resources == 0 && prev->n_resources > 0)
		return true;
	return any_new_device(prev, next, next->resources, next->n_resources) ||
	       any_new_device(prev, next, prev->exclude_resources, prev->n_exclude_resources);
}

bool policy_reads_node_condition(const struct policy *p, const char *type)
{
	for (size_t i = 0; i < p->n_node_conditions; i++)
		if (strcmp(p->node_conditions[i].type, type) == 0)
			return true;
	return false;
}

bool policy_node_conditions_widened(const struct policy *prev, const struct policy *next)
{
	if (!prev)
		return true;
	for (size_t i = 0; i < next->n_node_conditions; i++)
		if (!policy_reads_node_condition(prev, next->node_conditions[i].type))
			return true;
	return false;
}

/* Whether the selector reads the label key. */
static bool has_key(const struct policy *p, const char *key)
{
	for (size_t i = 0; i < p->selector.n_match_labels; i++)
		if (strcmp(p->selector.match_labels[i].key, key) == 0)
			return true;
	for (size_t i = 0; i < p->selector.n_exprs; i++)
		if (strcmp(p->selector.exprs[i].key, key) == 0)
			return true;
	return false;
}

const char **policy_label_keys_new(const struct policy *p)
{
	size_t max = p->selector.n_match_labels + p->selector.n_exprs, n = 0;
	const char **keys = kc_xcalloc(max + 1, sizeof(*keys));
	const char *k;

	for (size_t i = 0; i < max; i++) {
		bool seen = false;

		k = i < p->selector.n_match_labels ? p->selector.match_labels[i].key
						   : p->selector.exprs[i - p->selector.n_match_labels].key;
		for (size_t j = 0; j < n && !seen; j++)
			seen = strcmp(keys[j], k) == 0;
		if (!seen)
			keys[n++] = k;
	}
	return keys;
}

bool policy_label_keys_widened(const struct policy *prev, const struct policy *next)
{
	if (!prev)
		return true;
	for (size_t i = 0; i < next->selector.n_match_labels; i++)
		if (!has_key(prev, next->selector.match_labels[i].key))
			return true;
	for (size_t i = 0; i < next->selector.n_exprs; i++)
		if (!has_key(prev, next->selector.exprs[i].key))
			return true;
	return false;
}
