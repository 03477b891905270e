/*
 * Status bodies (kc_status.h), parsed with jansson since they are small.
 */
#include "kc_status.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "kc_util.h"

void kc_status_done(struct kc_status *s)
{
	if (!s)
		return;
	free(s->status);
	free(s->reason);
	free(s->message);
	for (size_t i = 0; i < s->n_causes; i++) {
		free(s->causes[i].reason);
		free(s->causes[i].message);
		free(s->causes[i].field);
	}
	free(s->causes);
	memset(s, 0, sizeof(*s));
}

static char *dup_field(json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));

	return kc_xstrdup(v ? v : "");
}

int kc_status_decode(const char *json, size_t len, struct kc_status *ret)
{
	json_t *root, *details, *causes;
	const char *kind;

	memset(ret, 0, sizeof(*ret));
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (!root)
		return -EBADMSG;
	kind = json_string_value(json_object_get(root, "kind"));
	if (!json_is_object(root) || !kind || strcmp(kind, "Status") != 0) {
		json_decref(root);
		return -EBADMSG;
	}
	if (json_is_integer(json_object_get(root, "code")))
		ret->code = (int)json_integer_value(json_object_get(root, "code"));
	ret->status = dup_field(root, "status");
	ret->reason = dup_field(root, "reason");
	ret->message = dup_field(root, "message");
	details = json_object_get(root, "details");
	if (json_is_integer(json_object_get(details, "retryAfterSeconds")))
		ret->retry_after_s = (int)json_integer_value(json_object_get(details, "retryAfterSeconds"));
	causes = json_object_get(details, "causes");
	if (json_is_array(causes) && json_array_size(causes) > 0) {
		size_t n = json_array_size(causes);

		if (n > 64)
			n = 64;
		ret->causes = kc_xcalloc(n, sizeof(*ret->causes));
		for (size_t i = 0; i < n; i++) {
			json_t *c = json_array_get(causes, i);

			ret->causes[i].reason = dup_field(c, "reason");
			ret->causes[i].message = dup_field(c, "message");
			ret->causes[i].field = dup_field(c, "field");
		}
		ret->n_causes = n;
	}
	json_decref(root);
	return 0;
}

int kc_status_has_cause(const struct kc_status *s, const char *reason)
{
	for (size_t i = 0; s && i < s->n_causes; i++)
		if (strcmp(s->causes[i].reason, reason) == 0)
			return 1;
	return 0;
}
