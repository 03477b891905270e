/*
 * Tests for the policy loader: the defaults field by field, a policy that sets
 * every field, the shipped manifests/policy.yaml, one exact message for each
 * kind of invalid input, Go-style durations, and which resource names count
 * as devices.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

#define HEADER "apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicy\n"

static struct policy *parse_ok(const char *yaml)
{
	struct kc_error err = {{0}};
	struct policy *p = NULL;
	int r = policy_parse("policy.yaml", yaml, strlen(yaml), &p, &err);

	if (r != 0)
		fail_msg("unexpected error: %s", err.msg);
	assert_non_null(p);
	return p;
}

static void assert_strv(char **v, size_t n, const char *const *want, size_t n_want)
{
	assert_int_equal(n, n_want);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i], want[i]);
}

static void assert_defaults(const struct policy *p)
{
	assert_int_equal(p->n_resources, 0);
	assert_int_equal(p->n_exclude_resources, 0);
	assert_true(p->dra);
	assert_true(p->pod_health_enabled);
	assert_int_equal(p->pod_health_for_ms, 0);
	assert_false(p->pod_health_unknown_enabled);
	assert_int_equal(p->pod_health_unknown_for_ms, 300000);
	assert_int_equal(p->n_node_conditions, 0);
	assert_null(p->node_conditions);
	assert_false(p->alloc_drop_enabled);
	assert_int_equal(p->alloc_drop_for_ms, 300000);
	assert_int_equal(p->n_alloc_drop_resources, 0);
	assert_false(p->exit_codes_enabled);
	assert_int_equal(p->n_exit_codes, 0);
	assert_int_equal(p->exit_min_restarts, 3);
	assert_int_equal(p->exit_for_ms, 0);
	assert_true(p->dra_taints_enabled);
	assert_int_equal(p->n_dra_taint_effects, 1);
	assert_string_equal(p->dra_taint_effects[0], "NoExecute");
	assert_int_equal(p->dra_taints_for_ms, 0);
	assert_true(p->dra_conditions_enabled);
	assert_int_equal(p->n_dra_conditions, 1);
	assert_string_equal(p->dra_conditions[0].type, "Ready");
	assert_int_equal(p->dra_conditions[0].status, KC_COND_FALSE);
	assert_int_equal(p->dra_conditions_for_ms, 0);
	assert_int_equal(p->n_ns_include, 0);
	assert_int_equal(p->n_ns_exclude, 0);
	assert_int_equal(p->selector.n_match_labels, 0);
	assert_int_equal(p->selector.n_exprs, 0);
	assert_false(p->has_priority_threshold);
	assert_false(p->evict_bare_pods);
	assert_int_equal(p->grace_period_s, -1);
	assert_int_equal(p->retry_initial_ms, 5000);
	assert_int_equal(p->retry_max_ms, 120000);
	assert_int_equal(p->delete_after_ms, 0);
	assert_int_equal(p->window_ms, 60000);
	assert_int_equal(p->max_per_node, 0);
	assert_int_equal(p->max_per_namespace, 0);
	assert_int_equal(p->max_total, 20);
	assert_int_equal(p->max_in_flight, 5);
	assert_true(p->breaker_enabled);
	assert_int_equal(p->breaker_max_nodes, 0);
	assert_int_equal(p->breaker_max_percent, 50);
	assert_int_equal(p->breaker_min_nodes, 4);
	assert_int_equal(p->breaker_close_after_ms, 30000);
	assert_int_equal(p->breaker_memory_ms, 600000);
	assert_true(p->remediation_enabled);
	assert_true(p->fence_taint);
	assert_false(p->fence_cordon);
	assert_string_equal(p->fence_key, "device-descheduler.io/unhealthy-device");
	assert_string_equal(p->fence_effect, "NoSchedule");
	assert_true(p->device_taint_rules);
	assert_int_equal(p->recover_after_ms, 600000);
	assert_int_equal(p->max_quarantined_nodes, 0);
	assert_int_equal(p->max_quarantined_percent, 25);
	assert_int_equal(p->loop_window_ms, 600000);
	assert_false(p->dry_run);
}

static void test_defaults(void **state)
{
	struct policy *p = policy_new_default();

	(void)state;
	assert_defaults(p);
	assert_null(p->source);
	assert_null(policy_free(p));
	assert_null(policy_free(NULL));
}

static void test_minimal(void **state)
{
	struct policy *p = parse_ok(HEADER);

	(void)state;
	assert_defaults(p);
	assert_string_equal(p->source, "policy.yaml");
	policy_free(p);
}

/* Which files enable a DRA signal themselves (a warning on clusters without DRA), and which
 * only inherit the defaults or turn them off. */
static void test_dra_explicit(void **state)
{
	static const struct {
		const char *yaml;
		bool explicit_;
	} cases[] = {
	    {"", false},
	    {"devices: {dra: false}\n", false},
	    {"devices: {dra: ~}\n", false},
	    {"devices: {dra: true}\n", true},
	    {"signals: {draDeviceTaints: {enabled: true}}\n", true},
	    {"signals: {draDeviceTaints: {for: 5s}}\n", false},
	    {"signals: {draDeviceConditions: {enabled: true}}\n", true},
	    {"signals: {draDeviceConditions: {enabled: false}, draDeviceTaints: {enabled: false}}\n", false},
	};

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		char *yaml = kc_xasprintf(HEADER "%s", cases[i].yaml);
		struct policy *p = parse_ok(yaml);

		if (p->dra_explicit != cases[i].explicit_)
			fail_msg("%s: dra_explicit %d", cases[i].yaml, p->dra_explicit);
		policy_free(p);
		free(yaml);
	}
}

/* Explicit nulls and empty mappings keep every default. */
static void test_nulls_keep_defaults(void **state)
{
	struct policy *p = parse_ok(HEADER "dryRun: ~\n"
					   "devices:\n"
					   "signals:\n"
					   "  podResourceHealth: {}\n"
					   "  exitCodes: null\n"
					   "podFilters: {namespaces: {include: null}}\n"
					   "eviction:\n"
					   "  gracePeriodSeconds:\n"
					   "  limits: {}\n");

	(void)state;
	assert_defaults(p);
	policy_free(p);
}

static const char full_policy[] =
    "# every field set to something other than its default\n"
    "apiVersion: device-descheduler/v1alpha1\n"
    "kind: DeviceDeschedulerPolicy\n"
    "dryRun: true\n"
    "devices:\n"
    "  resources: [nvidia.com/gpu, amd.com/gpu]\n"
    "  excludeResources: [\"nvidia.com/mig-1g.5gb\"]\n"
    "  dra: false\n"
    "signals:\n"
    "  podResourceHealth:\n"
    "    enabled: false\n"
    "    for: 1.5s\n"
    "    unknown: {enabled: true, for: 10m}\n"
    "  nodeConditions:\n"
    "    - {type: GPUXIDErrors, status: \"True\", resources: [nvidia.com/gpu], for: 30s,\n"
    "       deviceIDPattern: \"GPU-[0-9a-f-]+\"}\n"
    "    - type: AcceleratedHardwareReady\n"
    "      status: False\n"
    "  allocatableDrop: {enabled: true, for: 2m, resources: [nvidia.com/gpu]}\n"
    "  exitCodes: {enabled: true, codes: [79, 48, 0, 255], minRestarts: 0, for: 1h30m}\n"
    "  draDeviceTaints: {enabled: false, effects: [NoExecute, NoSchedule], for: 100ms}\n"
    "  draDeviceConditions:\n"
    "    enabled: false\n"
    "    conditions:\n"
    "      - {type: Ready, status: \"False\"}\n"
    "      - {type: Healthy, status: Unknown}\n"
    "      - {type: Degraded}\n"
    "    for: 7s\n"
    "podFilters:\n"
    "  namespaces: {include: [ml, training], exclude: [kube-system]}\n"
    "  labelSelector:\n"
    "    matchLabels: {team: ml, tier: \"\"}\n"
    "    matchExpressions:\n"
    "      - {key: k, operator: In, values: [a, b]}\n"
    "      - {key: j, operator: NotIn, values: [c]}\n"
    "      - {key: e, operator: Exists}\n"
    "      - {key: d, operator: DoesNotExist, values: []}\n"
    "  priorityThreshold: {value: -5}\n"
    "  evictBarePods: true\n"
    "eviction:\n"
    "  gracePeriodSeconds: 0\n"
    "  retry: {initialBackoff: 1s, maxBackoff: 1s}\n"
    "  deleteAfter: 10m\n"
    "  limits: {window: 30s, maxPerNode: 1, maxPerNamespace: 2, maxTotal: 0, maxInFlight: 4294967295}\n"
    "  circuitBreaker: {enabled: false, maxUnhealthyNodes: 3, maxUnhealthyNodePercent: 100, minNodes: 0,\n"
    "                   closeAfter: 0s, memory: 90s}\n";

static void test_full(void **state)
{
	static const char *const resources[] = {"nvidia.com/gpu", "amd.com/gpu"};
	static const char *const mig[] = {"nvidia.com/mig-1g.5gb"};
	static const char *const gpu[] = {"nvidia.com/gpu"};
	static const char *const effects[] = {"NoExecute", "NoSchedule"};
	static const char *const include[] = {"ml", "training"};
	static const char *const exclude[] = {"kube-system"};
	static const char *const ab[] = {"a", "b"};
	static const char *const cv[] = {"c"};
	struct policy *p = parse_ok(full_policy);
	regmatch_t m[1];

	(void)state;
	assert_true(p->dry_run);
	assert_strv(p->resources, p->n_resources, resources, 2);
	assert_strv(p->exclude_resources, p->n_exclude_resources, mig, 1);
	assert_false(p->dra);
	assert_false(p->pod_health_enabled);
	assert_int_equal(p->pod_health_for_ms, 1500);
	assert_true(p->pod_health_unknown_enabled);
	assert_int_equal(p->pod_health_unknown_for_ms, 600000);

	assert_int_equal(p->n_node_conditions, 2);
	assert_string_equal(p->node_conditions[0].type, "GPUXIDErrors");
	assert_int_equal(p->node_conditions[0].status, KC_COND_TRUE);
	assert_strv(p->node_conditions[0].resources, p->node_conditions[0].n_resources, gpu, 1);
	assert_int_equal(p->node_conditions[0].for_ms, 30000);
	assert_string_equal(p->node_conditions[0].device_id_pattern, "GPU-[0-9a-f-]+");
	assert_int_equal(
	    regexec(&p->node_conditions[0].device_id_regex, "XID 79 on GPU-7540a9b3 at", 1, m, 0), 0);
	assert_int_equal(m[0].rm_so, 10);
	assert_int_equal(m[0].rm_eo, 22);
	assert_string_equal(p->node_conditions[1].type, "AcceleratedHardwareReady");
	assert_int_equal(p->node_conditions[1].status, KC_COND_FALSE);
	assert_int_equal(p->node_conditions[1].n_resources, 0);
	assert_int_equal(p->node_conditions[1].for_ms, 0);
	assert_null(p->node_conditions[1].device_id_pattern);

	assert_true(p->alloc_drop_enabled);
	assert_int_equal(p->alloc_drop_for_ms, 120000);
	assert_strv(p->alloc_drop_resources, p->n_alloc_drop_resources, gpu, 1);

	assert_true(p->exit_codes_enabled);
	assert_int_equal(p->n_exit_codes, 4);
	assert_int_equal(p->exit_codes[0], 79);
	assert_int_equal(p->exit_codes[1], 48);
	assert_int_equal(p->exit_codes[2], 0);
	assert_int_equal(p->exit_codes[3], 255);
	assert_int_equal(p->exit_min_restarts, 0);
	assert_int_equal(p->exit_for_ms, 5400000);

	assert_false(p->dra_taints_enabled);
	assert_strv(p->dra_taint_effects, p->n_dra_taint_effects, effects, 2);
	assert_int_equal(p->dra_taints_for_ms, 100);

	assert_false(p->dra_conditions_enabled);
	assert_int_equal(p->n_dra_conditions, 3);
	assert_string_equal(p->dra_conditions[0].type, "Ready");
	assert_int_equal(p->dra_conditions[0].status, KC_COND_FALSE);
	assert_string_equal(p->dra_conditions[1].type, "Healthy");
	assert_int_equal(p->dra_conditions[1].status, KC_COND_UNKNOWN);
	assert_string_equal(p->dra_conditions[2].type, "Degraded");
	assert_int_equal(p->dra_conditions[2].status, KC_COND_TRUE);
	assert_int_equal(p->dra_conditions_for_ms, 7000);

	assert_strv(p->ns_include, p->n_ns_include, include, 2);
	assert_strv(p->ns_exclude, p->n_ns_exclude, exclude, 1);
	assert_int_equal(p->selector.n_match_labels, 2);
	assert_string_equal(p->selector.match_labels[0].key, "team");
	assert_string_equal(p->selector.match_labels[0].value, "ml");
	assert_string_equal(p->selector.match_labels[1].key, "tier");
	assert_string_equal(p->selector.match_labels[1].value, "");
	assert_int_equal(p->selector.n_exprs, 4);
	assert_string_equal(p->selector.exprs[0].key, "k");
	assert_int_equal(p->selector.exprs[0].op, POLICY_OP_IN);
	assert_strv(p->selector.exprs[0].values, p->selector.exprs[0].n_values, ab, 2);
	assert_string_equal(p->selector.exprs[1].key, "j");
	assert_int_equal(p->selector.exprs[1].op, POLICY_OP_NOT_IN);
	assert_strv(p->selector.exprs[1].values, p->selector.exprs[1].n_values, cv, 1);
	assert_string_equal(p->selector.exprs[2].key, "e");
	assert_int_equal(p->selector.exprs[2].op, POLICY_OP_EXISTS);
	assert_int_equal(p->selector.exprs[2].n_values, 0);
	assert_string_equal(p->selector.exprs[3].key, "d");
	assert_int_equal(p->selector.exprs[3].op, POLICY_OP_DOES_NOT_EXIST);
	assert_int_equal(p->selector.exprs[3].n_values, 0);
	assert_true(p->has_priority_threshold);
	assert_int_equal(p->priority_threshold, -5);
	assert_true(p->evict_bare_pods);

	assert_int_equal(p->grace_period_s, 0);
	assert_int_equal(p->retry_initial_ms, 1000);
	assert_int_equal(p->retry_max_ms, 1000);
	assert_int_equal(p->delete_after_ms, 600000);
	assert_int_equal(p->window_ms, 30000);
	assert_int_equal(p->max_per_node, 1);
	assert_int_equal(p->max_per_namespace, 2);
	assert_int_equal(p->max_total, 0);
	assert_int_equal(p->max_in_flight, UINT32_MAX);
	assert_false(p->breaker_enabled);
	assert_int_equal(p->breaker_max_nodes, 3);
	assert_int_equal(p->breaker_max_percent, 100);
	assert_int_equal(p->breaker_min_nodes, 0);
	assert_int_equal(p->breaker_close_after_ms, 0);
	assert_int_equal(p->breaker_memory_ms, 90000);
	policy_free(p);
}

/* Every remediation field set to a value other than its default. */
static void test_remediation(void **state)
{
	struct policy *p = parse_ok(HEADER "remediation:\n"
					   "  enabled: false\n"
					   "  mode: both\n"
					   "  key: example.com/bad-gpu\n"
					   "  effect: NoExecute\n"
					   "  deviceTaintRules: false\n"
					   "  recoverAfter: 90s\n"
					   "  maxQuarantinedNodes: 3\n"
					   "  maxQuarantinedNodePercent: 0\n"
					   "  loopWindow: 0s\n");

	(void)state;
	assert_false(p->remediation_enabled);
	assert_true(p->fence_taint);
	assert_true(p->fence_cordon);
	assert_string_equal(p->fence_key, "example.com/bad-gpu");
	assert_string_equal(p->fence_effect, "NoExecute");
	assert_false(p->device_taint_rules);
	assert_int_equal(p->recover_after_ms, 90000);
	assert_int_equal(p->max_quarantined_nodes, 3);
	assert_int_equal(p->max_quarantined_percent, 0);
	assert_int_equal(p->loop_window_ms, 0);
	policy_free(p);
	p = parse_ok(HEADER "remediation: {mode: cordon, key: plain_key}\n");
	assert_false(p->fence_taint);
	assert_true(p->fence_cordon);
	assert_string_equal(p->fence_key, "plain_key");
	policy_free(p);
}

/* The schema as the design documents it, flow style and comments included. */
static void test_documented_example(void **state)
{
	struct policy *p = parse_ok(
	    "apiVersion: device-descheduler/v1alpha1     # required, exact\n"
	    "kind: DeviceDeschedulerPolicy                # required, exact\n"
	    "dryRun: false\n"
	    "devices:\n"
	    "  resources: []             # explicit names\n"
	    "  excludeResources: []\n"
	    "  dra: true\n"
	    "signals:\n"
	    "  podResourceHealth: {enabled: true, for: 0s, unknown: {enabled: false, for: 5m}}\n"
	    "  nodeConditions:\n"
	    "    - {type: GPUXIDErrors, status: \"True\", resources: [nvidia.com/gpu], for: 30s, "
	    "deviceIDPattern: "
	    "\"GPU-[0-9a-f-]+\"}\n"
	    "  allocatableDrop: {enabled: false, for: 5m, resources: []}\n"
	    "  exitCodes: {enabled: false, codes: [79, 48], minRestarts: 3, for: 0s}\n"
	    "  draDeviceTaints: {enabled: true, effects: [NoExecute], for: 0s}\n"
	    "  draDeviceConditions: {enabled: true, conditions: [{type: Ready, status: \"False\"}], for: "
	    "0s}\n"
	    "podFilters:\n"
	    "  namespaces: {include: [], exclude: []}\n"
	    "  labelSelector: {matchLabels: {}, matchExpressions: [{key: k, operator: In, values: [a]}]}\n"
	    "  priorityThreshold: {value: 2000000000}\n"
	    "  evictBarePods: false\n"
	    "eviction:\n"
	    "  gracePeriodSeconds: 30      # absent = the pod's own\n"
	    "  retry: {initialBackoff: 5s, maxBackoff: 2m}\n"
	    "  deleteAfter: 0s             # 0 = off\n"
	    "  limits: {window: 1m, maxPerNode: 0, maxPerNamespace: 0, maxTotal: 20, maxInFlight: 5}\n"
	    "  circuitBreaker: {enabled: true, maxUnhealthyNodes: 0, maxUnhealthyNodePercent: 50, minNodes: "
	    "4}\n");

	(void)state;
	assert_int_equal(p->n_node_conditions, 1);
	assert_int_equal(p->node_conditions[0].for_ms, 30000);
	assert_int_equal(p->n_exit_codes, 2);
	assert_int_equal(p->exit_codes[1], 48);
	assert_int_equal(p->selector.n_exprs, 1);
	assert_true(p->has_priority_threshold);
	assert_int_equal(p->priority_threshold, 2000000000);
	assert_int_equal(p->grace_period_s, 30);
	assert_int_equal(p->max_total, 20);
	policy_free(p);
}

/* Every prefix of a valid policy either parses or fails with a positioned message, never crashes or leaks. */
static void test_every_prefix(void **state)
{
	size_t len = strlen(full_policy), prefix = strlen("policy.yaml:");

	(void)state;
	for (size_t i = 0; i <= len; i++) {
		struct kc_error err = {{0}};
		struct policy *p = NULL;
		int r = policy_parse("policy.yaml", full_policy, i, &p, &err);

		if (r == 0) {
			assert_non_null(p);
			policy_free(p);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_null(p);
			assert_memory_equal(err.msg, "policy.yaml:", prefix);
		}
	}
}

/* A Windows editor's BOM and CRLF line endings change nothing, positions included. */
static void test_bom_crlf(void **state)
{
	static const char ok[] = "\xef\xbb\xbf"
				 "apiVersion: device-descheduler/v1alpha1\r\n"
				 "kind: DeviceDeschedulerPolicy\r\n"
				 "eviction:\r\n"
				 "  limits: {maxTotal: 7}\r\n";
	static const char bad[] = "\xef\xbb\xbf"
				  "apiVersion: device-descheduler/v1alpha1\r\n"
				  "kind: DeviceDeschedulerPolicy\r\n"
				  "eviction:\r\n"
				  "  limits:\r\n"
				  "    maxPerNode: two\r\n";
	struct kc_error err = {{0}};
	struct policy *p = parse_ok(ok);

	(void)state;
	assert_int_equal(p->max_total, 7);
	policy_free(p);
	p = NULL;
	assert_int_equal(policy_parse("policy.yaml", bad, strlen(bad), &p, &err), -EINVAL);
	assert_null(p);
	assert_string_equal(
	    err.msg,
	    "policy.yaml:5:17: eviction.limits.maxPerNode: expected a non-negative integer, got \"two\"");
}

struct bad_case {
	const char *yaml;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
    /* The document as a whole. */
    {"", "policy.yaml:1:1: the policy is empty"},
    {"# only a comment\n", "policy.yaml:1:1: the policy is empty"},
    {"---\n", "policy.yaml:1:1: the policy is empty"},
    {HEADER "---\n" HEADER, "policy.yaml:3:1: a policy file holds one YAML document, found a second one"},
    {"- a\n- b\n",
     "policy.yaml:1:1: expected a mapping with apiVersion, kind and the policy fields, got a list"},
    {"hello\n",
     "policy.yaml:1:1: expected a mapping with apiVersion, kind and the policy fields, got \"hello\""},
    {HEADER "dryRun: [\n", "policy.yaml:4:1: invalid YAML: did not find expected node content (while parsing "
			   "a flow node at line 4)"},
    {HEADER "dryRun: false\n\tdevices: {}\n",
     "policy.yaml:4:1: invalid YAML: found a tab character that violates indentation (while scanning a plain "
     "scalar at line 3)"},
    {HEADER "dryRun: \xff\n", "policy.yaml:3:9: invalid YAML: invalid leading UTF-8 octet"},
    {HEADER "devices: &d {dra: true}\n", "policy.yaml:3:10: YAML anchors and aliases are not supported"},
    {HEADER "devices: {dra: true}\npodFilters: *d\n",
     "policy.yaml:4:13: YAML anchors and aliases are not supported"},
    {HEADER "dryRun: !!bool true\n", "policy.yaml:3:9: YAML tags are not supported"},
    /* apiVersion and kind come first. */
    {"kind: DeviceDeschedulerPolicy\n",
     "policy.yaml:1:1: apiVersion: required field is missing (expected \"device-descheduler/v1alpha1\")"},
    {"apiVersion: device-descheduler/v1alpha1\n",
     "policy.yaml:1:1: kind: required field is missing (expected \"DeviceDeschedulerPolicy\")"},
    {"foo: 1\napiVersion: apps/v1\nkind: Deployment\n",
     "policy.yaml:2:13: apiVersion: expected \"device-descheduler/v1alpha1\", got \"apps/v1\""},
    {"apiVersion: device-descheduler/v1alpha1\nkind: DeviceDeschedulerPolicies\n",
     "policy.yaml:2:7: kind: expected \"DeviceDeschedulerPolicy\", got \"DeviceDeschedulerPolicies\""},
    /* Unknown and duplicate fields. */
    {HEADER "signals:\n  podResourceHealth:\n    forr: 1s\n",
     "policy.yaml:5:5: signals.podResourceHealth.forr: unknown field (expected one of: enabled, for, "
     "unknown)"},
    {HEADER "spec: {}\n",
     "policy.yaml:3:1: spec: unknown field (expected one of: apiVersion, kind, dryRun, devices, signals, "
     "podFilters, eviction, remediation)"},
    /* remediation */
    {HEADER "remediation: {mode: drain}\n",
     "policy.yaml:3:21: remediation.mode: expected \"taint\", \"cordon\" or \"both\", got \"drain\""},
    {HEADER "remediation: {effect: PreferNoSchedule}\n",
     "policy.yaml:3:23: remediation.effect: expected \"NoSchedule\" or \"NoExecute\", got \"PreferNoSchedule\""},
    {HEADER "remediation: {key: \"Example.com/x\"}\n",
     "policy.yaml:3:20: remediation.key: expected a taint key ([DNS-subdomain/]name), got \"Example.com/x\""},
    {HEADER "remediation: {key: \"a/-x\"}\n",
     "policy.yaml:3:20: remediation.key: expected a taint key ([DNS-subdomain/]name), got \"a/-x\""},
    {HEADER "remediation: {maxQuarantinedNodePercent: 101}\n",
     "policy.yaml:3:42: remediation.maxQuarantinedNodePercent: expected an integer from 0 to 100, got \"101\""},
    {HEADER "remediation: {recoverAfter: soon}\n",
     "policy.yaml:3:29: remediation.recoverAfter: expected a duration such as \"30s\", \"5m\" or \"1h30m\", got "
     "\"soon\""},
    {HEADER "remediation: {loopWindows: 1m}\n",
     "policy.yaml:3:15: remediation.loopWindows: unknown field (expected one of: enabled, mode, key, effect, "
     "deviceTaintRules, recoverAfter, maxQuarantinedNodes, maxQuarantinedNodePercent, loopWindow)"},
    {HEADER "dryRun: false\ndryRun: true\n",
     "policy.yaml:4:1: dryRun: duplicate field (first given on line 3)"},
    {HEADER "podFilters: {labelSelector: {matchLabels: {a: b, c: d, a: e}}}\n",
     "policy.yaml:3:56: podFilters.labelSelector.matchLabels.a: duplicate label key (first given on line 3)"},
    {HEADER "devices: {[a]: 1}\n", "policy.yaml:3:11: devices: expected a field name, got a list"},
    /* Types. */
    {HEADER "devices: [nvidia.com/gpu]\n", "policy.yaml:3:10: devices: expected a mapping, got a list"},
    {HEADER "devices: {resources: nvidia.com/gpu}\n",
     "policy.yaml:3:22: devices.resources: expected a list, got \"nvidia.com/gpu\""},
    {HEADER "devices: {resources: [nvidia.com/gpu, {a: b}]}\n",
     "policy.yaml:3:39: devices.resources[1]: expected a string, got a mapping"},
    {HEADER "devices: {resources: [~]}\n",
     "policy.yaml:3:23: devices.resources[0]: expected a string, got null"},
    {HEADER "devices: {resources: [\"\"]}\n", "policy.yaml:3:23: devices.resources[0]: must not be empty"},
    {HEADER "devices: {resources: [\"a\\0b\"]}\n",
     "policy.yaml:3:23: devices.resources[0]: a string must not contain NUL characters"},
    {HEADER "dryRun: yes\n", "policy.yaml:3:9: dryRun: expected true or false, got \"yes\""},
    {HEADER "dryRun: \"true\"\n",
     "policy.yaml:3:9: dryRun: expected true or false, got the quoted string \"true\""},
    {HEADER "eviction:\n  limits:\n    maxPerNode: two\n",
     "policy.yaml:5:17: eviction.limits.maxPerNode: expected a non-negative integer, got \"two\""},
    {HEADER "eviction: {gracePeriodSeconds: \"5\"}\n",
     "policy.yaml:3:32: eviction.gracePeriodSeconds: expected a non-negative integer, got the quoted string "
     "\"5\""},
    {HEADER "eviction: {gracePeriodSeconds: 1.5}\n",
     "policy.yaml:3:32: eviction.gracePeriodSeconds: expected a non-negative integer, got \"1.5\""},
    {HEADER "eviction: {limits: {maxTotal: {}}}\n",
     "policy.yaml:3:31: eviction.limits.maxTotal: expected a non-negative integer, got a mapping"},
    /* Ranges. */
    {HEADER "eviction: {gracePeriodSeconds: -5}\n",
     "policy.yaml:3:32: eviction.gracePeriodSeconds: expected a non-negative integer, got \"-5\""},
    {HEADER "eviction: {limits: {maxInFlight: 4294967296}}\n",
     "policy.yaml:3:34: eviction.limits.maxInFlight: expected a non-negative integer no larger than "
     "4294967295, "
     "got \"4294967296\""},
    {HEADER "eviction: {circuitBreaker: {maxUnhealthyNodePercent: 101}}\n",
     "policy.yaml:3:54: eviction.circuitBreaker.maxUnhealthyNodePercent: expected an integer from 0 to 100, "
     "got "
     "\"101\""},
    {HEADER "signals: {exitCodes: {codes: [1, 256]}}\n",
     "policy.yaml:3:34: signals.exitCodes.codes[1]: expected an integer from 0 to 255, got \"256\""},
    {HEADER "signals: {exitCodes: {codes: [-1]}}\n",
     "policy.yaml:3:31: signals.exitCodes.codes[0]: expected a non-negative integer, got \"-1\""},
    {HEADER "signals: {exitCodes: {minRestarts: -1}}\n",
     "policy.yaml:3:36: signals.exitCodes.minRestarts: expected a non-negative integer, got \"-1\""},
    {HEADER "podFilters: {priorityThreshold: {value: 2147483648}}\n",
     "policy.yaml:3:41: podFilters.priorityThreshold.value: expected an integer from -2147483648 to "
     "2147483647, "
     "got \"2147483648\""},
    /* Durations. */
    {HEADER "signals: {podResourceHealth: {for: 30}}\n",
     "policy.yaml:3:36: signals.podResourceHealth.for: expected a duration such as \"30s\", \"5m\" or "
     "\"1h30m\", "
     "got \"30\""},
    {HEADER "eviction: {retry: {maxBackoff: 1x}}\n", "policy.yaml:3:32: eviction.retry.maxBackoff: expected "
						     "a duration such as \"30s\", \"5m\" or \"1h30m\", got "
						     "\"1x\""},
    {HEADER "eviction: {deleteAfter: -5s}\n",
     "policy.yaml:3:25: eviction.deleteAfter: expected a non-negative duration, got \"-5s\""},
    {HEADER "eviction: {deleteAfter: 9999999h}\n",
     "policy.yaml:3:25: eviction.deleteAfter: duration \"9999999h\" is too large"},
    /* Enumerations, patterns and rules across fields. */
    {HEADER "signals: {nodeConditions: [{type: A}, {type: B, status: true}]}\n",
     "policy.yaml:3:57: signals.nodeConditions[1].status: expected \"True\", \"False\" or \"Unknown\", got "
     "\"true\""},
    {HEADER "signals: {nodeConditions: [{type: A}, {status: \"False\"}]}\n",
     "policy.yaml:3:39: signals.nodeConditions[1].type: required field is missing"},
    {HEADER "signals: {nodeConditions: [{type: A, deviceIDPattern: \"GPU-(\"}]}\n",
     "policy.yaml:3:55: signals.nodeConditions[0].deviceIDPattern: invalid regular expression: Unmatched ( "
     "or "
     "\\("},
    {HEADER "signals: {nodeConditions: {type: A}}\n",
     "policy.yaml:3:27: signals.nodeConditions: expected a list, got a mapping"},
    {HEADER "signals: {draDeviceTaints: {effects: [NoExecute, Evict]}}\n",
     "policy.yaml:3:50: signals.draDeviceTaints.effects[1]: expected \"None\", \"NoSchedule\" or "
     "\"NoExecute\", "
     "got \"Evict\""},
    {HEADER "signals: {draDeviceTaints: {effects: []}}\n",
     "policy.yaml:3:29: signals.draDeviceTaints.effects: must list at least one effect when draDeviceTaints "
     "is "
     "enabled"},
    {HEADER "signals: {draDeviceConditions: {conditions: [{status: \"False\"}]}}\n",
     "policy.yaml:3:46: signals.draDeviceConditions.conditions[0].type: required field is missing"},
    {HEADER "signals:\n  exitCodes:\n    enabled: true\n",
     "policy.yaml:5:5: signals.exitCodes.codes: must list at least one exit code when exitCodes is enabled"},
    {HEADER "podFilters: {labelSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}}\n",
     "policy.yaml:3:76: podFilters.labelSelector.matchExpressions[0].values: must be empty when operator is "
     "Exists"},
    {HEADER "podFilters: {labelSelector: {matchExpressions: [{key: a, operator: In}]}}\n",
     "policy.yaml:3:49: podFilters.labelSelector.matchExpressions[0].values: must not be empty when operator "
     "is "
     "In"},
    {HEADER "podFilters: {labelSelector: {matchExpressions: [{key: a, operator: Equals, values: [x]}]}}\n",
     "policy.yaml:3:68: podFilters.labelSelector.matchExpressions[0].operator: expected \"In\", \"NotIn\", "
     "\"Exists\" or \"DoesNotExist\", got \"Equals\""},
    {HEADER "podFilters: {labelSelector: {matchExpressions: [{operator: Exists}]}}\n",
     "policy.yaml:3:49: podFilters.labelSelector.matchExpressions[0].key: required field is missing"},
    {HEADER "podFilters: {priorityThreshold: {name: system-cluster-critical}}\n",
     "policy.yaml:3:34: podFilters.priorityThreshold.name: unknown field (expected one of: value)"},
    {HEADER "eviction: {retry: {maxBackoff: 1s}}\n",
     "policy.yaml:3:20: eviction.retry.maxBackoff: must not be less than initialBackoff (5s)"},
    {HEADER "eviction: {retry: {initialBackoff: 0s}}\n",
     "policy.yaml:3:20: eviction.retry.initialBackoff: must be greater than 0"},
    {HEADER "eviction:\n  limits:\n    window: 0\n",
     "policy.yaml:5:5: eviction.limits.window: must be greater than 0"},
};

static void test_bad(void **state)
{
	int failures = 0;

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad_cases); i++) {
		struct kc_error err = {{0}};
		struct policy *p = NULL;
		int r = policy_parse("policy.yaml", bad_cases[i].yaml, strlen(bad_cases[i].yaml), &p, &err);

		if (r != -EINVAL || strcmp(err.msg, bad_cases[i].msg) != 0) {
			print_error("case %zu (%s): r=%d\n got  %s\n want %s\n", i, bad_cases[i].yaml, r,
				    err.msg, bad_cases[i].msg);
			failures++;
		}
		assert_null(p);
	}
	assert_int_equal(failures, 0);
}

/* A message stays one line and bounded whatever the offending value holds. */
static void test_long_value_message(void **state)
{
	char yaml[2048], value[1001];
	struct kc_error err = {{0}};
	struct policy *p = NULL;

	(void)state;
	memset(value, 'x', 1000);
	value[1000] = '\0';
	snprintf(yaml, sizeof(yaml), HEADER "dryRun: \"%s\\n\"\n", value);
	assert_int_equal(policy_parse("policy.yaml", yaml, strlen(yaml), &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "got the quoted string \"xxxx"));
	assert_non_null(strstr(err.msg, "xxx...\""));
	assert_null(strchr(err.msg, '\n'));
	assert_true(strlen(err.msg) < 200);
}

/* A long unknown key truncates the path; deep nesting stops early. */
static void test_hostile_shapes(void **state)
{
	char yaml[4096];
	struct kc_error err = {{0}};
	struct policy *p = NULL;
	size_t o;

	(void)state;
	o = (size_t)snprintf(yaml, sizeof(yaml), HEADER "signals:\n  ");
	memset(yaml + o, 'k', 1000);
	o += 1000;
	o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, ": 1\n");
	assert_int_equal(policy_parse("policy.yaml", yaml, o, &p, &err), -EINVAL);
	assert_memory_equal(err.msg, "policy.yaml:4:3: signals.kkkk", 29);
	assert_non_null(
	    strstr(err.msg, "kkk: unknown field (expected one of: podResourceHealth, nodeConditions, "));

	o = (size_t)snprintf(yaml, sizeof(yaml), HEADER "devices: ");
	for (int i = 0; i < 100; i++)
		yaml[o++] = '[';
	for (int i = 0; i < 100; i++)
		yaml[o++] = ']';
	yaml[o++] = '\n';
	assert_int_equal(policy_parse("policy.yaml", yaml, o, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "policy.yaml:3:41: nested too deeply (at most 32 levels)");
	assert_null(p);
}

/* A very wide matchLabels mapping stays cheap (duplicates are found by sorting). */
static void test_many_labels(void **state)
{
	size_t n = 20000, cap = n * 24 + 256, o;
	char *yaml = malloc(cap);
	struct kc_error err = {{0}};
	struct policy *p = NULL;

	(void)state;
	assert_non_null(yaml);
	o = (size_t)snprintf(yaml, cap, HEADER "podFilters:\n  labelSelector:\n    matchLabels:\n");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(yaml + o, cap - o, "      k%zu: v\n", i);
	p = parse_ok(yaml);
	assert_int_equal(p->selector.n_match_labels, n);
	policy_free(p);
	p = NULL;
	o += (size_t)snprintf(yaml + o, cap - o, "      k7: w\n");
	assert_int_equal(policy_parse("policy.yaml", yaml, o, &p, &err), -EINVAL);
	assert_string_equal(
	    err.msg, "policy.yaml:20006:7: podFilters.labelSelector.matchLabels.k7: duplicate label key "
		     "(first given on line 13)");
	free(yaml);
}

static void test_too_large(void **state)
{
	size_t len = 1024 * 1024 + 1;
	char *big = malloc(len);
	struct kc_error err = {{0}};
	struct policy *p = NULL;

	(void)state;
	assert_non_null(big);
	memset(big, '#', len);
	assert_int_equal(policy_parse("policy.yaml", big, len, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "policy.yaml: the policy is larger than 1 MiB");
	free(big);
}

static void test_load_file_errors(void **state)
{
	char dir[] = "/tmp/test_policy.XXXXXX", path[256];
	struct kc_error err = {{0}};
	struct policy *p = NULL;
	FILE *f;
	int r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(policy_load_file(dir, &p, &err), -EISDIR);
	snprintf(path, sizeof(path), "%s: cannot read the policy file: Is a directory", dir);
	assert_string_equal(err.msg, path);

	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	assert_int_equal(policy_load_file(path, &p, &err), -ENOENT);
	assert_non_null(
	    strstr(err.msg, "/missing.yaml: cannot read the policy file: No such file or directory"));

	snprintf(path, sizeof(path), "%s/big.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 80000; i++)
		fputs("# padding....\n", f);
	fclose(f);
	assert_int_equal(policy_load_file(path, &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/big.yaml: the policy file is larger than 1 MiB"));
	unlink(path);

	snprintf(path, sizeof(path), "%s/bad.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(HEADER "dryRun: 1\n", f);
	fclose(f);
	r = policy_load_file(path, &p, &err);
	assert_int_equal(r, -EINVAL);
	assert_null(p);
	assert_non_null(strstr(err.msg, "/bad.yaml:3:9: dryRun: expected true or false, got \"1\""));
	unlink(path);
	rmdir(dir);
}

/* manifests/policy.yaml documents every field and must stay equal to the built-in defaults. */
static void test_manifest_is_default(void **state)
{
	const char *fixtures = getenv("FIXTURES");
	struct kc_error err = {{0}};
	struct policy *p = NULL;
	char path[4096];

	(void)state;
	snprintf(path, sizeof(path), "%s/../../manifests/policy.yaml", fixtures ? fixtures : "test/fixtures");
	if (policy_load_file(path, &p, &err) != 0)
		fail_msg("%s", err.msg);
	assert_defaults(p);
	assert_string_equal(p->source, path);
	policy_free(p);
}

struct resource_case {
	const char *name;
	bool by_default, explicit_list, no_dra;
};

static const struct resource_case resources[] = {
    /* name                                  default explicit no-dra */
    {"nvidia.com/gpu", true, true, true},
    {"amd.com/gpu", true, false, true},
    {"nvidia.com/mig-1g.5gb", false, false, false}, /* excluded */
    {"example.org/fpga", true, false, true},
    {"cpu", false, false, false},
    {"memory", false, false, false},
    {"ephemeral-storage", false, false, false},
    {"hugepages-2Mi", false, false, false},
    {"hugepages-1Gi", false, false, false},
    {"kubernetes.io/batch", false, false, false},
    {"k8s.io/thing", false, false, false},
    {"requests.kubernetes.io/foo", false, false, false},
    {"node.k8s.io/foo", false, false, false},
    {"notkubernetes.io/gpu", true, false, true},
    {"example.k8s.io.evil.com/gpu", true, false, true},
    {"/gpu", false, false, false},
    {"nvidia.com/", false, false, false},
    {"claim:my-claim/gpu", true, true, false},
    {"claim:my-claim", true, true, false},
    {"claim:", false, false, false},
    {"", false, false, false},
};

static void test_device_resources(void **state)
{
	static const char yaml_explicit[] = HEADER "devices:\n"
						   "  resources: [nvidia.com/gpu, nvidia.com/mig-1g.5gb]\n"
						   "  excludeResources: [nvidia.com/mig-1g.5gb]\n";
	static const char yaml_no_dra[] =
	    HEADER "devices: {excludeResources: [nvidia.com/mig-1g.5gb], dra: false}\n";
	static const char yaml_default[] = HEADER "devices: {excludeResources: [nvidia.com/mig-1g.5gb]}\n";
	struct policy *def = parse_ok(yaml_default), *exp = parse_ok(yaml_explicit),
		      *nodra = parse_ok(yaml_no_dra);
	struct policy *plain = policy_new_default();

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(resources); i++) {
		const struct resource_case *rc = &resources[i];

		if (policy_is_device_resource(def, rc->name) != rc->by_default ||
		    policy_is_device_resource(exp, rc->name) != rc->explicit_list ||
		    policy_is_device_resource(nodra, rc->name) != rc->no_dra)
			fail_msg("resource \"%s\": got %d/%d/%d", rc->name,
				 policy_is_device_resource(def, rc->name),
				 policy_is_device_resource(exp, rc->name),
				 policy_is_device_resource(nodra, rc->name));
	}
	assert_true(policy_is_device_resource(plain, "nvidia.com/mig-1g.5gb"));
	assert_false(policy_is_device_resource(plain, NULL));
	assert_false(policy_is_device_resource(NULL, "nvidia.com/gpu"));
	policy_free(def);
	policy_free(exp);
	policy_free(nodra);
	policy_free(plain);
}

/* Which reloads widen the device set (the pod cache then relists) and which do not. */
static void test_devices_widened(void **state)
{
	static const char *const yamls[] = {
	    /* 0 */ HEADER "devices: {excludeResources: [nvidia.com/mig-1g.5gb]}\n",
	    /* 1 */ HEADER "devices:\n  resources: [nvidia.com/gpu]\n",
	    /* 2 */ HEADER "devices:\n  resources: [nvidia.com/gpu, amd.com/gpu]\n",
	    /* 3 */ HEADER "devices: {dra: false}\n",
	    /* 4 */ HEADER "devices:\n  resources: [nvidia.com/gpu]\n  excludeResources: [nvidia.com/gpu]\n",
	    /* 5 */ HEADER "devices: {}\n",
	};
	/* want[prev][next]: whether going from prev to next widens. */
	static const bool want[6][6] = {
	    /* to:  0      1      2      3      4      5 */
	    {false, false, false, true, false, true},   /* from 0: 3 and 5 drop the exclusion */
	    {true, false, true, true, false, true},     /* from 1: anything beyond nvidia.com/gpu; 3 turns dra off
							   but makes every extended resource count */
	    {true, false, false, true, false, true},
	    {true, true, true, false, true, true},      /* from 3: dra turns on */
	    {true, true, true, true, false, true},      /* from 4: nothing counts but claims */
	    {false, false, false, false, false, false}, /* from 5: the widest */
	};
	struct policy *p[6];

	(void)state;
	for (size_t i = 0; i < 6; i++)
		p[i] = parse_ok(yamls[i]);
	for (size_t i = 0; i < 6; i++)
		for (size_t j = 0; j < 6; j++)
			if (policy_devices_widened(p[i], p[j]) != want[i][j])
				fail_msg("from %zu to %zu: got %d", i, j, policy_devices_widened(p[i], p[j]));
	assert_true(policy_devices_widened(NULL, p[0]));
	for (size_t i = 0; i < 6; i++)
		policy_free(p[i]);
}

/* The node condition types a policy reads, and which reloads read new ones (the node cache relists). */
static void test_node_conditions_widened(void **state)
{
	static const char *const yamls[] = {
	    /* 0 */ HEADER "signals: {nodeConditions: []}\n",
	    /* 1 */ HEADER "signals: {nodeConditions: [{type: GPUXIDErrors}]}\n",
	    /* 2 */ HEADER "signals: {nodeConditions: [{type: GPUXIDErrors, status: \"False\"}, {type: NVLinkDown}]}\n",
	    /* 3 */ HEADER "signals: {nodeConditions: [{type: NVLinkDown, for: 1m}]}\n",
	};
	/* want[prev][next]: whether going from prev to next reads a new type. */
	static const bool want[4][4] = {
	    {false, true, true, true},
	    {false, false, true, true},
	    {false, false, false, false},  /* the same types with other statuses or debounce: no */
	    {false, true, true, false},
	};
	struct policy *p[4];

	(void)state;
	for (size_t i = 0; i < 4; i++)
		p[i] = parse_ok(yamls[i]);
	for (size_t i = 0; i < 4; i++)
		for (size_t j = 0; j < 4; j++)
			if (policy_node_conditions_widened(p[i], p[j]) != want[i][j])
				fail_msg("from %zu to %zu: got %d", i, j, policy_node_conditions_widened(p[i], p[j]));
	assert_true(policy_node_conditions_widened(NULL, p[0]));
	assert_true(policy_reads_node_condition(p[2], "NVLinkDown"));
	assert_true(policy_reads_node_condition(p[2], "GPUXIDErrors"));
	assert_false(policy_reads_node_condition(p[2], "Ready"));
	assert_false(policy_reads_node_condition(p[0], "GPUXIDErrors"));
	for (size_t i = 0; i < 4; i++)
		policy_free(p[i]);
}

/* The pod label keys a policy reads, each once; and which reloads read new ones. */
static void test_label_keys(void **state)
{
	static const char yaml_none[] = HEADER "podFilters: {}\n";
	static const char yaml_some[] = HEADER "podFilters:\n  labelSelector:\n    matchLabels: {team: ml, tier: gpu}\n"
					       "    matchExpressions:\n    - {key: team, operator: Exists}\n"
					       "    - {key: stage, operator: NotIn, values: [dev]}\n";
	static const char yaml_team[] = HEADER "podFilters:\n  labelSelector:\n    matchLabels: {team: other}\n";
	struct policy *none = parse_ok(yaml_none), *some = parse_ok(yaml_some), *team = parse_ok(yaml_team);
	const char **k;

	(void)state;
	k = policy_label_keys_new(none);
	assert_null(k[0]);
	free(k);
	k = policy_label_keys_new(some);
	assert_string_equal(k[0], "team");
	assert_string_equal(k[1], "tier");
	assert_string_equal(k[2], "stage");
	assert_null(k[3]);
	free(k);
	assert_true(policy_label_keys_widened(none, some));
	assert_true(policy_label_keys_widened(none, team));
	assert_true(policy_label_keys_widened(team, some));
	assert_false(policy_label_keys_widened(some, team));
	assert_false(policy_label_keys_widened(some, none));
	assert_false(policy_label_keys_widened(team, team));
	assert_true(policy_label_keys_widened(NULL, none));
	policy_free(none);
	policy_free(some);
	policy_free(team);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_minimal),
	    cmocka_unit_test(test_dra_explicit),
	    cmocka_unit_test(test_nulls_keep_defaults),
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_documented_example),
	    cmocka_unit_test(test_remediation),
	    cmocka_unit_test(test_every_prefix),
	    cmocka_unit_test(test_bom_crlf),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_long_value_message),
	    cmocka_unit_test(test_hostile_shapes),
	    cmocka_unit_test(test_many_labels),
	    cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_load_file_errors),
	    cmocka_unit_test(test_manifest_is_default),
	    cmocka_unit_test(test_device_resources),
	    cmocka_unit_test(test_devices_widened),
	    cmocka_unit_test(test_node_conditions_widened),
	    cmocka_unit_test(test_label_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
