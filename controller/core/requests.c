/*
 * Eviction and Event bodies and eviction answers (requests.h), with jansson:
 * the bodies are small and built rarely.
 */
#include "requests.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "kc_log.h"
#include "kc_status.h"
#include "kc_util.h"

static char *dump(json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	json_decref(obj);
	if (!s)
		kc_log_fatal("out of memory encoding a request body");
	return s;
}

/* DeleteOptions with a UID precondition, and gracePeriodSeconds when >= 0. */
static json_t *delete_options(const char *uid, int64_t grace_period_s)
{
	json_t *opts = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "DeleteOptions",
				 "preconditions", "uid", uid);

	if (grace_period_s >= 0)
		json_object_set_new(opts, "gracePeriodSeconds", json_integer(grace_period_s));
	return opts;
}

char *requests_eviction_body(const char *ns, const char *name, const char *uid, int64_t grace_period_s)
{
	return dump(json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", "policy/v1", "kind", "Eviction",
			      "metadata", "name", name, "namespace", ns, "deleteOptions",
			      delete_options(uid, grace_period_s)));
}

char *requests_eviction_path(const char *ns, const char *name)
{
	return kc_xasprintf("/api/v1/namespaces/%s/pods/%s/eviction", ns, name);
}

char *requests_delete_body(const char *uid, int64_t grace_period_s)
{
	return dump(delete_options(uid, grace_period_s));
}

/* Keeps Event names unique within one millisecond. */
static unsigned long long event_seq;

/* A core/v1 Event timestamp: RFC 3339 with second precision; ts has room for 40. */
static void event_time(int64_t now_ms, char *ts)
{
	char micro[40];

	kc_format_time(now_ms, micro, sizeof(micro));
	memcpy(ts, micro, 19);
	strcpy(ts + 19, "Z");
}

char *requests_event_body(const struct requests_event *e)
{
	char ts[40];
	char *name;
	json_t *ev;

	event_time(e->now_ms, ts);
	/* Unique like client-go's recorder: <involved name>.<hex nanoseconds>. */
	name = kc_xasprintf("%s.%llx", e->name, (unsigned long long)e->now_ms * 1000000ull + ++event_seq % 1000000);
	ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:s,"
		       " s:s, s:i, s:{s:s}, s:s, s:s}",
		       "apiVersion", "v1", "kind", "Event",
		       "metadata", "name", name, "namespace", e->ns,
		       "involvedObject", "apiVersion", e->api_version, "kind", e->kind, "namespace", e->ns,
		       "name", e->name, "uid", e->uid,
		       "type", e->type, "reason", e->reason, "message", e->message, "action", e->action,
		       "firstTimestamp", ts, "lastTimestamp", ts, "count", 1,
		       "source", "component", "device-descheduler",
		       "reportingComponent", "device-descheduler", "reportingInstance", e->instance);
	free(name);
	return dump(ev);
}

char *requests_event_patch_body(int64_t count, int64_t now_ms)
{
	char ts[40];

	event_time(now_ms, ts);
	return dump(json_pack("{s:I, s:s}", "count", (json_int_t)count, "lastTimestamp", ts));
}

char *requests_event_path(const char *ns)
{
	return kc_xasprintf("/api/v1/namespaces/%s/events", ns);
}

enum requests_outcome requests_classify(long http_status, int transport_error, const struct kc_status *status)
{
	if (transport_error || http_status == 0)
		return REQUESTS_FAILED;
	if (http_status >= 200 && http_status < 300)
		return REQUESTS_EVICTED;
	/* Only a PodDisruptionBudget makes a 429 "blocked" (and so, after deleteAfter, a
	 * delete); a 429 from the API server's own throttling is retried like any error. */
	if (http_status == 429)
		return status && kc_status_has_cause(status, "DisruptionBudget") ? REQUESTS_BLOCKED : REQUESTS_FAILED;
	if (http_status == 404)
		return REQUESTS_GONE;
	/*
	 * The eviction subresource answers 409 both for a failed UID precondition
	 * (the name now belongs to a new pod) and for a conflicting update of the
	 * PodDisruptionBudget's status: not necessarily gone.
	 */
	if (http_status == 409)
		return REQUESTS_CONFLICT;
	return REQUESTS_FAILED;
}

/* ---- fencing ---- */

char *requests_label_value(const char *s)
{
	size_t n = strlen(s), a = 0, b;
	char *out;

	while (a < n && !isalnum((unsigned char)s[a]))
		a++;
	b = n;
	while (b > a && !isalnum((unsigned char)s[b - 1]))
		b--;
	if (b - a > 63)
		b = a + 63;
	out = kc_xstrndup(s + a, b - a);
	for (char *p = out; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			*p = '_';
	/* Cut at 63 may leave a trailing separator. */
	for (size_t m = strlen(out); m > 0 && !isalnum((unsigned char)out[m - 1]); m--)
		out[m - 1] = '\0';
	return out;
}

static void rfc3339_s(int64_t ms, char *buf, size_t size)
{
	char micro[40];

	/* Taint timeAdded and our record: second precision, as the API server writes them. */
	kc_format_time(ms, micro, sizeof(micro));
	snprintf(buf, size, "%.19sZ", micro);
}

static json_t *fence_record(const struct requests_fence *f, bool tainted, bool cordoned)
{
	char since[40];

	rfc3339_s(f->since_ms, since, sizeof(since));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "since", since, "signal", f->signal,
			 "resource", f->resource, "message", f->message, "key", f->key, "effect", f->effect,
			 "tainted", tainted, "cordoned", cordoned);
}

static json_t *our_taint(const struct requests_fence *f)
{
	char since[40];
	char *value = requests_label_value(f->resource);
	json_t *t;

	rfc3339_s(f->since_ms, since, sizeof(since));
	t = json_pack("{s:s, s:s, s:s, s:s}", "key", f->key, "value", value, "effect", f->effect, "timeAdded",
		      since);
	free(value);
	return t;
}

static bool taint_is(json_t *t, const char *key, const char *effect)
{
	const char *k = json_string_value(json_object_get(t, "key"));
	const char *e = json_string_value(json_object_get(t, "effect"));

	return k && e && strcmp(k, key) == 0 && strcmp(e, effect) == 0;
}

int requests_node_fence_patch(const char *node_json, size_t len, const struct requests_fence *f, bool add,
			      char **ret_patch)
{
	json_t *node = json_loadb(node_json, len, 0, NULL);
	json_t *md, *spec, *taints, *annotations, *record = NULL, *patch = NULL, *new_taints = NULL;
	const char *rv, *ann, *key = f->key, *effect = f->effect;
	char *record_text = NULL;
	bool cordoned_now, ours_present = false, change_taints = false, rec_cordoned = false;
	int r = -EINVAL;

	md = json_object_get(node, "metadata");
	rv = json_string_value(json_object_get(md, "resourceVersion"));
	if (!json_is_object(node) || !rv || !*rv)
		goto out;
	spec = json_object_get(node, "spec");
	taints = json_object_get(spec, "taints");
	cordoned_now = json_is_true(json_object_get(spec, "unschedulable"));
	annotations = json_object_get(md, "annotations");
	ann = json_string_value(json_object_get(annotations, "device-descheduler.io/quarantine"));
	if (ann) {
		record = json_loads(ann, 0, NULL);
		/* Remove what the record says we added, whatever the policy says now. */
		if (!add && json_string_value(json_object_get(record, "key")))
			key = json_string_value(json_object_get(record, "key"));
		if (!add && json_string_value(json_object_get(record, "effect")))
			effect = json_string_value(json_object_get(record, "effect"));
		rec_cordoned = json_is_true(json_object_get(record, "cordoned"));
	}
	new_taints = json_array();
	for (size_t i = 0; i < json_array_size(taints); i++) {
		json_t *t = json_array_get(taints, i);

		if (taint_is(t, key, effect)) {
			ours_present = true;
			if (!add)
				continue;
		}
		json_array_append(new_taints, t);
	}
	patch = json_pack("{s:{s:s}}", "metadata", "resourceVersion", rv);
	if (add) {
		bool cordon_now = f->cordon && !cordoned_now;

		if (ann && (!f->taint || ours_present) && (!f->cordon || cordoned_now)) {
			r = -EALREADY;
			goto out;
		}
		if (f->taint && !ours_present) {
			json_array_append_new(new_taints, our_taint(f));
			change_taints = true;
		}
		json_object_set_new(json_object_get(patch, "metadata"), "annotations",
				    json_pack("{s:s}", "device-descheduler.io/quarantine", record_text = dump(
						  fence_record(f, f->taint, cordon_now || rec_cordoned))));
		if (change_taints || cordon_now) {
			json_t *ps = json_object();

			if (change_taints)
				json_object_set(ps, "taints", new_taints);
			if (cordon_now)
				json_object_set_new(ps, "unschedulable", json_true());
			json_object_set_new(patch, "spec", ps);
		}
	} else {
		bool uncordon = rec_cordoned && cordoned_now;

		if (!ann && !ours_present) {
			r = -EALREADY;
			goto out;
		}
		if (ann)
			json_object_set_new(json_object_get(patch, "metadata"), "annotations",
					    json_pack("{s:n}", "device-descheduler.io/quarantine"));
		if (ours_present || uncordon) {
			json_t *ps = json_object();

			if (ours_present)
				json_object_set(ps, "taints", json_array_size(new_taints) ? new_taints : json_null());
			if (uncordon)
				json_object_set_new(ps, "unschedulable", json_false());
			json_object_set_new(patch, "spec", ps);
		}
	}
	*ret_patch = dump(patch);
	patch = NULL;
	r = 0;
out:
	free(record_text);
	json_decref(patch);
	json_decref(new_taints);
	json_decref(record);
	json_decref(node);
	return r;
}

char *requests_taint_rule_name(const char *driver, const char *pool, const char *device)
{
	uint64_t h = 1469598103934665603ULL;
	const char *parts[] = {driver, "/", pool, "/", device};

	/* FNV-1a over driver/pool/device: a stable, valid name for the same device after a restart. */
	for (size_t i = 0; i < KC_ARRAY_SIZE(parts); i++)
		for (const char *s = parts[i]; *s; s++) {
			h ^= (unsigned char)*s;
			h *= 1099511628211ULL;
		}
	return kc_xasprintf("device-descheduler-%016llx", (unsigned long long)h);
}

char *requests_taint_rule_path(const char *version, const char *name)
{
	return name ? kc_xasprintf("/apis/resource.k8s.io/%s/devicetaintrules/%s", version, name)
		    : kc_xasprintf("/apis/resource.k8s.io/%s/devicetaintrules", version);
}

char *requests_taint_rule_body(const char *version, const struct requests_fence *f, const char *driver,
			       const char *pool, const char *device)
{
	char *name = requests_taint_rule_name(driver, pool, device);
	char *av = kc_xasprintf("resource.k8s.io/%s", version);
	char *text = dump(fence_record(f, true, false));
	json_t *body;

	body = json_pack("{s:s, s:s, s:{s:s, s:{s:s}, s:{s:s}}, s:{s:{s:s, s:s, s:s}, s:o}}", "apiVersion", av,
			 "kind", "DeviceTaintRule", "metadata", "name", name, "labels", "app.kubernetes.io/managed-by",
			 "device-descheduler", "annotations", "device-descheduler.io/quarantine", text, "spec",
			 "deviceSelector", "driver", driver, "pool", pool, "device", device, "taint", our_taint(f));
	free(text);
	free(av);
	free(name);
	return dump(body);
}

int requests_taint_rules_parse(const char *json, size_t len, struct requests_rule **ret, size_t *ret_n)
{
	json_t *list = json_loadb(json, len, 0, NULL);
	json_t *items = json_object_get(list, "items");
	struct requests_rule *out = NULL;
	size_t n = 0;

	if (!json_is_array(items)) {
		json_decref(list);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_array_size(items); i++) {
		json_t *it = json_array_get(items, i);
		json_t *md = json_object_get(it, "metadata");
		json_t *sel = json_object_get(json_object_get(it, "spec"), "deviceSelector");
		const char *label = json_string_value(
		    json_object_get(json_object_get(md, "labels"), "app.kubernetes.io/managed-by"));
		const char *name = json_string_value(json_object_get(md, "name"));
		const char *d = json_string_value(json_object_get(sel, "driver"));
		const char *p = json_string_value(json_object_get(sel, "pool"));
		const char *v = json_string_value(json_object_get(sel, "device"));

		if (!label || strcmp(label, "device-descheduler") != 0 || !name || !d || !p || !v)
			continue;
		out = kc_xrealloc(out, (n + 1) * sizeof(*out));
		out[n].name = kc_xstrdup(name);
		out[n].driver = kc_xstrdup(d);
		out[n].pool = kc_xstrdup(p);
		out[n].device = kc_xstrdup(v);
		n++;
	}
	json_decref(list);
	*ret = out;
	*ret_n = n;
	return 0;
}

void requests_rules_free(struct requests_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].name);
		free(r[i].driver);
		free(r[i].pool);
		free(r[i].device);
	}
	free(r);
}
