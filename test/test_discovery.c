/*
 * Unit tests of kc_discovery: the three discovery documents (aggregated,
 * APIGroupList, APIResourceList) as real servers write them, keys in any
 * order, each fed whole and split at every byte offset with the same result;
 * the choice of the DRA versions on servers of every age; and documents that
 * are not discovery documents, truncated or over a bound, refused with a
 * reason and without changing what was known.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kc_discovery.h"
#include "kc_util.h"

/* Aggregated discovery of a 1.36-like server: DRA v1 and v1beta2 (DeviceTaintRules only in
 * v1beta2), plus subresources and fields we skip.  In the second group "versions" comes
 * before "metadata", as JSON allows. */
static const char aggregated[] =
    "{\"kind\":\"APIGroupDiscoveryList\",\"apiVersion\":\"apidiscovery.k8s.io/v2\",\"metadata\":{},"
    "\"items\":[{\"metadata\":{\"name\":\"apps\",\"creationTimestamp\":null},\"versions\":[{\"version\":\"v1\","
    "\"resources\":[{\"resource\":\"deployments\",\"responseKind\":{\"group\":\"apps\",\"version\":\"v1\","
    "\"kind\":\"Deployment\"},\"scope\":\"Namespaced\",\"verbs\":[\"get\",\"list\"],\"subresources\":[{"
    "\"subresource\":\"status\",\"verbs\":[\"get\"]}]}],\"freshness\":\"Current\"}]},"
    "{\"versions\":[{\"resources\":[{\"resource\":\"resourceclaims\",\"scope\":\"Namespaced\"},"
    "{\"resource\":\"resourceslices\",\"scope\":\"Cluster\"}],\"version\":\"v1\"},"
    "{\"version\":\"v1beta2\",\"resources\":[{\"resource\":\"devicetaintrules\"},{\"resource\":"
    "\"resourceclaims\"},{\"resource\":\"resourceslices\"}]}],\"metadata\":{\"name\":\"resource.k8s.io\"}}]}";

/* Plain discovery of the same kind of server: /apis, then /apis/resource.k8s.io/VERSION. */
static const char group_list[] =
    "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[{\"name\":\"apps\",\"versions\":[{"
    "\"groupVersion\":\"apps/v1\",\"version\":\"v1\"}],\"preferredVersion\":{\"groupVersion\":\"apps/v1\","
    "\"version\":\"v1\"}},{\"name\":\"resource.k8s.io\",\"versions\":[{\"groupVersion\":\"resource.k8s.io/"
    "v1beta1\",\"version\":\"v1beta1\"},{\"groupVersion\":\"resource.k8s.io/v1alpha3\",\"version\":"
    "\"v1alpha3\"}],\"preferredVersion\":{\"groupVersion\":\"resource.k8s.io/v1beta1\",\"version\":"
    "\"v1beta1\"}}]}";
static const char res_v1beta1[] =
    "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"resource.k8s.io/v1beta1\","
    "\"resources\":[{\"name\":\"resourceclaims\",\"singularName\":\"resourceclaim\",\"namespaced\":true,"
    "\"kind\":\"ResourceClaim\",\"verbs\":[\"get\"]},{\"name\":\"resourceclaims/status\",\"singularName\":"
    "\"\",\"namespaced\":true,\"kind\":\"ResourceClaim\",\"verbs\":[\"get\"]},{\"name\":\"resourceslices\","
    "\"namespaced\":false,\"kind\":\"ResourceSlice\",\"verbs\":[\"list\"]}]}";
/* groupVersion after the resources. */
static const char res_v1alpha3[] =
    "{\"resources\":[{\"name\":\"devicetaintrules\",\"kind\":\"DeviceTaintRule\"},{\"name\":"
    "\"devicetaintrules/status\"}],\"groupVersion\":\"resource.k8s.io/v1alpha3\",\"kind\":\"APIResourceList\"}";
static const char no_dra[] =
    "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[{\"name\":\"apps\",\"versions\":[{"
    "\"groupVersion\":\"apps/v1\",\"version\":\"v1\"}]}]}";

/* Feeds doc into d in two chunks split at offset `at` (at == len: one chunk). */
static int feed_split(struct kc_discovery *d, const char *doc, size_t at)
{
	struct kc_discovery_decoder *dec = kc_discovery_decoder_new(d);
	size_t len = strlen(doc);
	int r;

	r = kc_discovery_decoder_feed(dec, doc, at);
	if (r == 0)
		r = kc_discovery_decoder_feed(dec, doc + at, len - at);
	if (r == 0)
		r = kc_discovery_decoder_finish(dec);
	kc_discovery_decoder_free(dec);
	return r;
}

static void assert_dra(const struct kc_discovery *d, const char *claims, const char *slices, const char *rules)
{
	struct kc_dra_versions v;

	kc_discovery_dra(d, &v);
	if (claims)
		assert_string_equal(v.claims, claims);
	else
		assert_null(v.claims);
	if (slices)
		assert_string_equal(v.slices, slices);
	else
		assert_null(v.slices);
	if (rules)
		assert_string_equal(v.taint_rules, rules);
	else
		assert_null(v.taint_rules);
}

static void test_aggregated(void **state)
{
	(void)state;
	for (size_t at = 0; at <= strlen(aggregated); at++) {
		struct kc_discovery *d = kc_discovery_new();
		const char *un[4];

		assert_int_equal(feed_split(d, aggregated, at), 0);
		assert_dra(d, "v1", "v1", "v1beta2");
		assert_true(kc_discovery_has_group(d, "apps"));
		assert_true(kc_discovery_has_group(d, KC_DRA_GROUP));
		/* Aggregated discovery leaves nothing to ask for. */
		assert_int_equal(kc_discovery_unresolved(d, KC_DRA_GROUP, un, 4), 0);
		kc_discovery_free(d);
	}
}

static void test_group_list_then_resources(void **state)
{
	struct kc_discovery *d;
	const char *un[4] = {NULL};

	(void)state;
	for (size_t at = 0; at <= strlen(group_list); at++) {
		d = kc_discovery_new();
		assert_int_equal(feed_split(d, group_list, at), 0);
		/* Versions are listed but their resources are unknown: nothing chosen yet. */
		assert_int_equal(kc_discovery_unresolved(d, KC_DRA_GROUP, un, 4), 2);
		assert_string_equal(un[0], "v1beta1");
		assert_string_equal(un[1], "v1alpha3");
		assert_dra(d, NULL, NULL, NULL);
		kc_discovery_free(d);
	}
	for (size_t at = 0; at <= strlen(res_v1beta1); at++) {
		d = kc_discovery_new();
		assert_int_equal(feed_split(d, group_list, strlen(group_list)), 0);
		assert_int_equal(feed_split(d, res_v1beta1, at), 0);
		assert_int_equal(feed_split(d, res_v1alpha3, at < strlen(res_v1alpha3) ? at : 0), 0);
		assert_int_equal(kc_discovery_unresolved(d, KC_DRA_GROUP, un, 4), 0);
		assert_dra(d, "v1beta1", "v1beta1", "v1alpha3");
		/* A subresource is not a resource. */
		assert_null(kc_discovery_pick(d, KC_DRA_GROUP, "resourceclaims/status",
					      (const char *const[]){"v1beta1", NULL}));
		kc_discovery_free(d);
	}
}

static void test_no_dra(void **state)
{
	struct kc_discovery *d = kc_discovery_new();
	const char *un[1];

	(void)state;
	assert_int_equal(feed_split(d, no_dra, 7), 0);
	assert_false(kc_discovery_has_group(d, KC_DRA_GROUP));
	assert_int_equal(kc_discovery_unresolved(d, KC_DRA_GROUP, un, 1), 0);
	assert_dra(d, NULL, NULL, NULL);
	kc_discovery_free(d);
	/* An empty discovery (nothing decoded yet) chooses nothing either. */
	d = kc_discovery_new();
	assert_dra(d, NULL, NULL, NULL);
	kc_discovery_free(d);
}

/* Each preference order on servers that serve one DRA version only. */
static void test_preference(void **state)
{
	static const struct {
		const char *doc, *claims, *rules;
	} cases[] = {
	    {"{\"kind\":\"APIResourceList\",\"groupVersion\":\"resource.k8s.io/v1\",\"resources\":[{\"name\":"
	     "\"resourceclaims\"},{\"name\":\"resourceslices\"},{\"name\":\"devicetaintrules\"}]}",
	     "v1", "v1"},
	    {"{\"kind\":\"APIResourceList\",\"groupVersion\":\"resource.k8s.io/v1beta2\",\"resources\":[{\"name\":"
	     "\"resourceclaims\"},{\"name\":\"resourceslices\"},{\"name\":\"devicetaintrules\"}]}",
	     "v1beta2", "v1beta2"},
	    {"{\"kind\":\"APIResourceList\",\"groupVersion\":\"resource.k8s.io/v1beta1\",\"resources\":[{\"name\":"
	     "\"resourceclaims\"},{\"name\":\"resourceslices\"},{\"name\":\"devicetaintrules\"}]}",
	     "v1beta1", NULL},
	    {"{\"kind\":\"APIResourceList\",\"groupVersion\":\"resource.k8s.io/v1alpha3\",\"resources\":[{\"name\":"
	     "\"resourceclaims\"},{\"name\":\"devicetaintrules\"}]}",
	     NULL, "v1alpha3"},
	};

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		struct kc_discovery *d = kc_discovery_new();
		struct kc_error err = {{0}};

		assert_int_equal(kc_discovery_decode(d, cases[i].doc, strlen(cases[i].doc), &err), 0);
		assert_dra(d, cases[i].claims, cases[i].claims, cases[i].rules);
		kc_discovery_free(d);
	}
	/* Every version served: the newest wins, for each resource on its own. */
	{
		struct kc_discovery *d = kc_discovery_new();
		struct kc_dra_versions a, b = {"v1", "v1", "v1"};

		for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++)
			assert_int_equal(kc_discovery_decode(d, cases[i].doc, strlen(cases[i].doc), NULL), 0);
		kc_discovery_dra(d, &a);
		assert_true(kc_dra_versions_equal(&a, &b));
		b.taint_rules = NULL;
		assert_false(kc_dra_versions_equal(&a, &b));
		kc_discovery_free(d);
	}
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"code\":404}",
	    "{\"groups\":[]}",
	    "<html>not found</html>",
	    "{\"kind\":\"APIGroupList\",\"groups\":[{\"name\":\"a\"",
	    "{\"kind\":\"APIResourceList\",\"resources\":[]}",
	    "{\"kind\":\"APIResourceList\",\"groupVersion\":\"resource.k8s.io/\",\"resources\":[]}",
	    "{\"kind\":\"APIGroupList\",\"groups\":[{\"name\":\"\"}]}",
	    "",
	};
	static const char *const why[] = {
	    "kind Status", "no kind", "", "", "without groupVersion", "names no version", "empty", "",
	};

	(void)state;
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		struct kc_discovery *d = kc_discovery_new();
		struct kc_error err = {{0}};

		/* What was known stays known. */
		assert_int_equal(kc_discovery_decode(d, aggregated, strlen(aggregated), NULL), 0);
		assert_int_equal(kc_discovery_decode(d, bad[i], strlen(bad[i]), &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "discovery: "));
		assert_non_null(strstr(err.msg, why[i]));
		assert_dra(d, "v1", "v1", "v1beta2");
		kc_discovery_free(d);
	}
}

static void test_bounds(void **state)
{
	struct kc_discovery *d = kc_discovery_new();
	struct kc_error err = {{0}};
	size_t n = 20000, len = 0;
	char *doc = kc_xmalloc(n * 24 + 128), name[300];

	(void)state;
	/* More resources than the bound: refused, not kept. */
	len += (size_t)sprintf(doc, "{\"kind\":\"APIResourceList\",\"groupVersion\":\"x/v1\",\"resources\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(doc + len, "%s{\"name\":\"r%zu\"}", i ? "," : "", i);
	len += (size_t)sprintf(doc + len, "]}");
	assert_int_equal(kc_discovery_decode(d, doc, len, &err), -EMSGSIZE);
	assert_non_null(strstr(err.msg, "16384 resources"));
	assert_false(kc_discovery_has_group(d, "x"));
	/* A name longer than any real one. */
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	len = (size_t)sprintf(doc, "{\"kind\":\"APIGroupList\",\"groups\":[{\"name\":\"%s\"}]}", name);
	assert_int_equal(kc_discovery_decode(d, doc, len, &err), -EBADMSG);
	free(doc);
	kc_discovery_free(d);
	kc_discovery_decoder_free(NULL);
	assert_null(kc_discovery_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aggregated), cmocka_unit_test(test_group_list_then_resources),
	    cmocka_unit_test(test_no_dra),     cmocka_unit_test(test_preference),
	    cmocka_unit_test(test_refused),    cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
