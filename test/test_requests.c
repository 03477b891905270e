/* Unit tests of the Eviction/Event bodies and answer classification (controller/core/requests.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "requests.h"

static void test_eviction_body(void **state)
{
	char *b = requests_eviction_body("ml", "trainer-0", "uid-1", 30);
	char *p = requests_eviction_path("ml", "trainer-0");

	(void)state;
	assert_string_equal(b, "{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{\"name\":\"trainer-0\","
			       "\"namespace\":\"ml\"},\"deleteOptions\":{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\","
			       "\"preconditions\":{\"uid\":\"uid-1\"},\"gracePeriodSeconds\":30}}");
	assert_string_equal(p, "/api/v1/namespaces/ml/pods/trainer-0/eviction");
	free(b);
	free(p);
	b = requests_eviction_body("ml", "t", "u", -1);
	assert_null(strstr(b, "gracePeriodSeconds"));
	free(b);
	b = requests_delete_body("u", 0);
	assert_string_equal(b, "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"preconditions\":{\"uid\":\"u\"},"
			       "\"gracePeriodSeconds\":0}");
	free(b);
}

static void test_event_body(void **state)
{
	struct requests_event e = {.ns = "ml", .kind = "Pod", .api_version = "v1", .name = "trainer-0", .uid = "u1",
				   .type = "Warning", .reason = "UnhealthyDevice", .action = "Evict",
				   .message = "Evicting pod ml/trainer-0", .instance = "host_1", .now_ms = 1764222609123};
	char *b = requests_event_body(&e);
	json_t *j = json_loads(b, 0, NULL);

	(void)state;
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "Warning");
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "UnhealthyDevice");
	assert_string_equal(json_string_value(json_object_get(j, "firstTimestamp")), "2025-11-27T05:50:09Z");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "involvedObject"), "uid")), "u1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "metadata"), "namespace")), "ml");
	assert_int_equal(strncmp(json_string_value(json_object_get(json_object_get(j, "metadata"), "name")),
				 "trainer-0.", 10), 0);
	json_decref(j);
	free(b);
}

static void test_classify(void **state)
{
	struct kc_status_cause cause = {.reason = "DisruptionBudget", .message = "needs 2 healthy pods", .field = ""};
	struct kc_status pdb = {.code = 429, .reason = "TooManyRequests", .causes = &cause, .n_causes = 1};
	struct kc_status throttled = {.code = 429, .reason = "TooManyRequests"};

	(void)state;
	assert_int_equal(requests_classify(201, 0, NULL), REQUESTS_EVICTED);
	assert_int_equal(requests_classify(200, 0, NULL), REQUESTS_EVICTED);
	assert_int_equal(requests_classify(429, 0, &pdb), REQUESTS_BLOCKED);
	assert_int_equal(requests_classify(429, 0, &throttled), REQUESTS_FAILED);
	assert_int_equal(requests_classify(429, 0, NULL), REQUESTS_FAILED);
	assert_int_equal(requests_classify(404, 0, NULL), REQUESTS_GONE);
	assert_int_equal(requests_classify(409, 0, NULL), REQUESTS_CONFLICT);
	assert_int_equal(requests_classify(500, 0, NULL), REQUESTS_FAILED);
	assert_int_equal(requests_classify(403, 0, NULL), REQUESTS_FAILED);
	assert_int_equal(requests_classify(0, -110, NULL), REQUESTS_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eviction_body),
		cmocka_unit_test(test_event_body),
		cmocka_unit_test(test_classify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
