/*
 * Status bodies (kc_status.h), parsed with jansson since they are small, or
 * from protobuf (kc_pb.h) when a request asked for it and the server answered
 * an error in it.
 */
#include "kc_status.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "kc_pb.h"
#include "kc_util.h"

#define MAX_CAUSES 64

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

static char *dup_pb(const struct kc_pb_field *f)
{
	/* A NUL would cut the text short: it is kept up to there, as a C string can hold it. */
	return kc_xstrndup((const char *)f->data, f->len);
}

static void set_pb(char **dst, const struct kc_pb_field *f)
{
	free(*dst);
	*dst = dup_pb(f);
}

/* StatusDetails {4: causes {1: reason, 2: message, 3: field}, 5: retryAfterSeconds}. */
static int pb_details(const uint8_t *m, size_t len, struct kc_status *ret)
{
	struct kc_pb_reader r, c;
	struct kc_pb_field f, g;
	int n, k;

	kc_pb_reader_init(&r, m, len);
	while ((n = kc_pb_next(&r, &f)) == 1) {
		struct kc_status_cause *cause;

		if (f.num == 5 && f.wire == KC_PB_VARINT) {
			ret->retry_after_s = (int)(int32_t)f.v;
			continue;
		}
		if (f.num != 4 || f.wire != KC_PB_LEN || ret->n_causes == MAX_CAUSES)
			continue;
		ret->causes = kc_xrealloc(ret->causes, (ret->n_causes + 1) * sizeof(*ret->causes));
		cause = &ret->causes[ret->n_causes++];
		cause->reason = kc_xstrdup("");
		cause->message = kc_xstrdup("");
		cause->field = kc_xstrdup("");
		kc_pb_reader_init(&c, f.data, f.len);
		while ((k = kc_pb_next(&c, &g)) == 1) {
			if (g.wire != KC_PB_LEN)
				continue;
			if (g.num == 1)
				set_pb(&cause->reason, &g);
			else if (g.num == 2)
				set_pb(&cause->message, &g);
			else if (g.num == 3)
				set_pb(&cause->field, &g);
		}
		if (k < 0)
			return k;
	}
	return n;
}

/* "k8s\0" + Unknown{kind "Status", raw: Status {2: status, 3: message, 4: reason, 5: details, 6: code}}. */
static int decode_pb(const char *body, size_t len, struct kc_status *ret)
{
	const uint8_t *kind, *raw;
	size_t kind_len, raw_len;
	struct kc_pb_reader r;
	struct kc_pb_field f;
	char err[128];
	int n;

	if (kc_pb_unwrap(body, len, &kind, &kind_len, &raw, &raw_len, err, sizeof(err)) < 0 || kind_len != 6 ||
	    memcmp(kind, "Status", 6) != 0)
		return -EBADMSG;
	ret->status = kc_xstrdup("");
	ret->reason = kc_xstrdup("");
	ret->message = kc_xstrdup("");
	kc_pb_reader_init(&r, raw, raw_len);
	while ((n = kc_pb_next(&r, &f)) == 1) {
		if (f.num == 6 && f.wire == KC_PB_VARINT)
			ret->code = (int)(int32_t)f.v;
		else if (f.wire != KC_PB_LEN)
			continue;
		else if (f.num == 2)
			set_pb(&ret->status, &f);
		else if (f.num == 3)
			set_pb(&ret->message, &f);
		else if (f.num == 4)
			set_pb(&ret->reason, &f);
		else if (f.num == 5 && (n = pb_details(f.data, f.len, ret)) < 0)
			break;
	}
	if (n < 0) {
		kc_status_done(ret);
		return -EBADMSG;
	}
	return 0;
}

int kc_status_decode(const char *json, size_t len, struct kc_status *ret)
{
	json_t *root, *details, *causes;
	const char *kind;

	memset(ret, 0, sizeof(*ret));
	if (len >= KC_PB_MAGIC_LEN && memcmp(json, KC_PB_MAGIC, KC_PB_MAGIC_LEN) == 0)
		return decode_pb(json, len, ret);
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

		if (n > MAX_CAUSES)
			n = MAX_CAUSES;
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
