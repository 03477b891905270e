/*
 * libFuzzer target for policy_parse (the strict DeviceDeschedulerPolicy YAML
 * parser).  A failed parse must leave *ret untouched, return -EINVAL and
 * give a terminated message that starts with the file name; a successful one
 * must have every counted array present, exit codes within 0..255, the
 * source copied, and survive policy_is_device_resource.  Short inputs are
 * also given to duration_parse.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "fuzz_check.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.yaml"

static void check_strv(char **v, size_t n)
{
	FUZZ_CHECK(n == 0 || v != NULL);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(v[i] != NULL);
		(void)strlen(v[i]);
	}
}

static void check_policy(const struct policy *p)
{
	static const char *const names[] = {
	    "nvidia.com/gpu", "claim:c/r", "cpu", "example.kubernetes.io/x", "a/b", "", "x",
	};

	FUZZ_CHECK(p->source != NULL && strcmp(p->source, NAME) == 0);
	check_strv(p->resources, p->n_resources);
	check_strv(p->exclude_resources, p->n_exclude_resources);
	check_strv(p->alloc_drop_resources, p->n_alloc_drop_resources);
	check_strv(p->dra_taint_effects, p->n_dra_taint_effects);
	check_strv(p->ns_include, p->n_ns_include);
	check_strv(p->ns_exclude, p->n_ns_exclude);
	FUZZ_CHECK(p->n_node_conditions == 0 || p->node_conditions != NULL);
	for (size_t i = 0; i < p->n_node_conditions; i++) {
		const struct policy_node_condition *c = &p->node_conditions[i];

		FUZZ_CHECK(c->type != NULL);
		check_strv(c->resources, c->n_resources);
		if (c->device_id_pattern)
			(void)regexec(&c->device_id_regex, "GPU-0000:3b:00.0", 0, NULL, 0);
	}
	FUZZ_CHECK(p->n_dra_conditions == 0 || p->dra_conditions != NULL);
	for (size_t i = 0; i < p->n_dra_conditions; i++)
		FUZZ_CHECK(p->dra_conditions[i].type != NULL);
	FUZZ_CHECK(p->n_exit_codes == 0 || p->exit_codes != NULL);
	for (size_t i = 0; i < p->n_exit_codes; i++)
		FUZZ_CHECK(p->exit_codes[i] >= 0 && p->exit_codes[i] <= 255);
	FUZZ_CHECK(p->selector.n_match_labels == 0 || p->selector.match_labels != NULL);
	for (size_t i = 0; i < p->selector.n_match_labels; i++)
		FUZZ_CHECK(p->selector.match_labels[i].key != NULL && p->selector.match_labels[i].value != NULL);
	FUZZ_CHECK(p->selector.n_exprs == 0 || p->selector.exprs != NULL);
	for (size_t i = 0; i < p->selector.n_exprs; i++) {
		FUZZ_CHECK(p->selector.exprs[i].key != NULL);
		check_strv(p->selector.exprs[i].values, p->selector.exprs[i].n_values);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)policy_is_device_resource(p, names[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = (struct policy *)(uintptr_t)0x1, *sentinel = p;
	struct kc_error err;
	int r;

	memset(&err, 0, sizeof(err));
	r = policy_parse(NAME, (const char *)data, size, &p, &err);
	if (r != 0) {
		FUZZ_CHECK(r == -EINVAL);
		FUZZ_CHECK(p == sentinel);
		FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
		FUZZ_CHECK(strncmp(err.msg, NAME, strlen(NAME)) == 0);
	} else {
		FUZZ_CHECK(p != NULL && p != sentinel);
		check_policy(p);
		FUZZ_CHECK(policy_free(p) == NULL);
	}
	if (size <= 40) {
		char s[41];
		uint64_t ms = 12345;

		memcpy(s, data, size);
		s[size] = '\0';
		r = duration_parse(s, &ms);
		FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
		if (r != 0)
			FUZZ_CHECK(ms == 12345);
	}
	return 0;
}
