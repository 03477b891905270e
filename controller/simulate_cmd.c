/*
 * The simulate command (simulate_cmd.h): the snapshot goes into the same
 * stores the reflectors fill, the timeline's changes reach the core the way
 * watch events do, and the core's actions are answered as the API would
 * answer them, on a clock that only moves from one timeline change or core
 * wake-up to the next.
 */
#include "simulate_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core.h"
#include "duration.h"
#include "explain.h"
#include "kc_decode.h"
#include "kc_intern.h"
#include "kc_log.h"
#include "kc_store.h"
#include "kc_util.h"
#include "policy.h"
#include "strmap.h"

/* The largest snapshot or timeline file read (a 150,000-pod cluster is about 1 GB of JSON). */
#define SIM_MAX_INPUT (2048ull << 20)
/* After the last timeline change the simulation runs this much longer by default
 * (debounces, windows, backoffs and recoverAfter play out). */
#define DEFAULT_TAIL_MS (60ull * 60 * 1000)

enum { T_POD, T_NODE, T_CLAIM, T_SLICE, N_TYPES };

static const struct kc_type *const types[N_TYPES] = {&kc_type_pod, &kc_type_node, &kc_type_resource_claim,
						     &kc_type_resource_slice};

struct event {
	uint64_t at_ms;
	size_t seq;  /* file order, for ties */
	char *where; /* "FILE:LINE" */
	json_t *line;
};

struct sim {
	struct policy *p;
	struct kc_intern *intern;
	struct kc_decode_opts decode;
	struct kc_decode_ctx ctx;
	struct kc_store *stores[N_TYPES];
	struct strmap json;	/* "Kind/ns/name" -> json_t *: the objects as JSON, for patches */
	struct strmap reported; /* pod UID -> char *: the hold last reported */
	struct event *events;
	size_t n_events;
	struct core *core;
	uint64_t now;
	bool json_out;
	json_t *out;	      /* -o json: the events */
	unsigned counts[4];   /* evictions, would-evict (dry run), fences, lifted fences */
	unsigned skipped_kinds;
};

/* ---- pure helpers ------------------------------------------------------------------ */

void simulate_merge_patch(json_t *target, const json_t *patch)
{
	const char *key;
	json_t *value;

	json_object_foreach((json_t *)patch, key, value) {
		json_t *cur = json_object_get(target, key);

		if (json_is_null(value))
			json_object_del(target, key);
		else if (json_is_object(value) && json_is_object(cur))
			simulate_merge_patch(cur, value);
		else if (json_is_object(value)) {
			json_t *fresh = json_object();

			simulate_merge_patch(fresh, value);
			json_object_set_new(target, key, fresh);
		} else
			json_object_set_new(target, key, json_deep_copy(value));
	}
}

int simulate_parse_at(const json_t *at, uint64_t *ret_ms)
{
	if (json_is_string(at))
		return duration_parse(json_string_value(at), ret_ms) < 0 ? -EINVAL : 0;
	if (json_is_number(at) && json_number_value(at) >= 0 && json_number_value(at) < 1e12) {
		*ret_ms = (uint64_t)(json_number_value(at) * 1000.0 + 0.5);
		return 0;
	}
	return -EINVAL;
}

static int type_index(const char *kind)
{
	for (int i = 0; i < N_TYPES; i++)
		if (kind && strcmp(types[i]->kind, kind) == 0)
			return i;
	return -1;
}

static char *object_key(const char *kind, const char *ns, const char *name)
{
	return kc_xasprintf("%s/%s/%s", kind, ns ? ns : "", name ? name : "");
}

static const char *json_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* ---- output -------------------------------------------------------------------------- */

static void emit(struct sim *s, const char *type, const char *pod, const char *node, const char *message)
{
	if (s->json_out) {
		json_array_append_new(s->out, json_pack("{s:f, s:s, s:s, s:s, s:s}", "atSeconds", s->now / 1000.0,
							"type", type, "pod", pod ? pod : "", "node", node ? node : "",
							"message", message));
		return;
	}
	printf("%10.3fs  %-15s %s\n", s->now / 1000.0, type, message);
}

/* ---- the cluster --------------------------------------------------------------------- */

static void notify(struct sim *s, int t, enum kc_delta d, const void *obj, const void *old)
{
	switch (t) {
	case T_POD:
		core_pod_changed(s->core, d, obj, old, s->now);
		break;
	case T_NODE:
		core_node_changed(s->core, d, obj, old, s->now);
		break;
	case T_CLAIM:
		core_claim_changed(s->core, d, obj, old, s->now);
		break;
	case T_SLICE:
		core_slice_changed(s->core, d, obj, old, s->now);
		break;
	}
}

/* Decodes obj (kept as JSON, owned by the call) into its store, telling the core when it runs. */
static int put_object(struct sim *s, json_t *obj, const char *where)
{
	const char *kind = json_str(obj, "kind");
	const json_t *md = json_object_get(obj, "metadata");
	int t = type_index(kind);
	struct kc_error err = {{0}};
	char *text, *key;
	void *o = NULL, *old = NULL;
	int r;

	if (t < 0) {
		s->skipped_kinds++;
		json_decref(obj);
		return 0;
	}
	text = json_dumps(obj, JSON_COMPACT);
	r = text ? kc_decode_object(types[t], &s->ctx, text, strlen(text), &o, &err) : -ENOMEM;
	free(text);
	if (r < 0) {
		fprintf(stderr, "device-descheduler simulate: %s: %s %s: %s\n", where, kind, json_str(md, "name"),
			err.msg);
		json_decref(obj);
		return r;
	}
	key = object_key(kind, json_str(md, "namespace"), json_str(md, "name"));
	json_decref(strmap_put(&s->json, key, obj));
	free(key);
	kc_store_put(s->stores[t], o, &old);
	if (s->core)
		notify(s, t, old ? KC_DELTA_MODIFIED : KC_DELTA_ADDED, o, old);
	kc_object_free(old);
	return 0;
}

static void delete_object(struct sim *s, int t, const char *ns, const char *name)
{
	void *o = kc_store_take(s->stores[t], types[t]->namespaced ? ns : "", name);
	char *key = object_key(types[t]->kind, types[t]->namespaced ? ns : "", name);

	json_decref(strmap_del(&s->json, key));
	free(key);
	if (!o)
		return;
	notify(s, t, KC_DELTA_DELETED, o, NULL);
	kc_object_free(o);
}

/* ---- input --------------------------------------------------------------------------- */

static int load_snapshot_file(struct sim *s, const char *path)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	const char *kind;
	int r = 0;

	if (!doc) {
		fprintf(stderr, "device-descheduler simulate: %s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	kind = json_str(doc, "kind");
	if (json_is_array(json_object_get(doc, "items")) && strlen(kind) >= 4 &&
	    strcmp(kind + strlen(kind) - 4, "List") == 0) {
		size_t i;
		json_t *item;

		json_array_foreach(json_object_get(doc, "items"), i, item) {
			char *where = kc_xasprintf("%s: items[%zu]", path, i);

			/* A typed list (PodList) leaves out each item's kind. */
			if (!json_object_get(item, "kind") && strcmp(kind, "List") != 0)
				json_object_set_new(item, "kind", json_stringn(kind, strlen(kind) - 4));
			r = put_object(s, json_incref(item), where);
			free(where);
			if (r < 0)
				break;
		}
	} else {
		r = put_object(s, json_incref(doc), path);
	}
	json_decref(doc);
	return r;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or every *.json file of a directory in name order. */
static int load_snapshot(struct sim *s, const char *path)
{
	struct stat st;
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	DIR *d;
	int r = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "device-descheduler simulate: --from %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode))
		return load_snapshot_file(s, path);
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "device-descheduler simulate: --from %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);

		if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) {
			names = kc_xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = kc_xasprintf("%s/%s", path, e->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = load_snapshot_file(s, names[i]);
		free(names[i]);
	}
	free(names);
	if (n == 0 && r == 0) {
		fprintf(stderr, "device-descheduler simulate: --from %s: no *.json file in the directory\n", path);
		r = -ENOENT;
	}
	return r;
}

static int compare_events(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Checks one timeline line; returns NULL or what is wrong with it (static storage). */
static const char *check_event(const json_t *line)
{
	const char *kind = json_str(line, "kind");
	int t = type_index(kind);
	int n = !!json_object_get(line, "patch") + !!json_object_get(line, "condition") +
		!!json_object_get(line, "taint") + !!json_object_get(line, "delete");

	if (!json_is_object(line))
		return "expected a JSON object";
	if (t < 0)
		return "\"kind\" must be Pod, Node, ResourceClaim or ResourceSlice";
	if (!*json_str(line, "name"))
		return "\"name\" is required";
	if (types[t]->namespaced && !*json_str(line, "namespace"))
		return "\"namespace\" is required for this kind";
	if (n != 1)
		return "exactly one of \"patch\", \"condition\", \"taint\" or \"delete\" is required";
	if (json_object_get(line, "patch") && !json_is_object(json_object_get(line, "patch")))
		return "\"patch\" must be an object (a JSON merge patch)";
	if (json_object_get(line, "condition") &&
	    (t != T_NODE || !*json_str(json_object_get(line, "condition"), "type")))
		return "\"condition\" applies to a Node and needs a \"type\"";
	if (json_object_get(line, "taint") && (t != T_SLICE || !*json_str(line, "device")))
		return "\"taint\" applies to a ResourceSlice and needs a \"device\"";
	return NULL;
}

static int load_timeline(struct sim *s, const char *path)
{
	char *data = NULL, *line, *save = NULL;
	size_t len, lineno = 0;
	int r = kc_read_file(path, SIM_MAX_INPUT, &data, &len);

	if (r < 0) {
		fprintf(stderr, "device-descheduler simulate: --timeline %s: %s\n", path, strerror(-r));
		return r;
	}
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t jerr;
		json_t *j;
		const char *bad;
		uint64_t at;

		lineno++;
		while (*line == ' ' || *line == '\t' || *line == '\r')
			line++;
		if (!*line || *line == '#')
			continue;
		j = json_loads(line, 0, &jerr);
		bad = !j ? jerr.text : check_event(j);
		if (!bad && simulate_parse_at(json_object_get(j, "at"), &at) < 0)
			bad = "\"at\" must be a duration (\"90s\", \"1m30s\") or a number of seconds";
		if (bad) {
			fprintf(stderr, "device-descheduler simulate: %s:%zu: %s\n", path, lineno, bad);
			json_decref(j);
			r = -EINVAL;
			break;
		}
		s->events = kc_xrealloc(s->events, (s->n_events + 1) * sizeof(*s->events));
		s->events[s->n_events] = (struct event){at, s->n_events, kc_xasprintf("%s:%zu", path, lineno), j};
		s->n_events++;
	}
	free(data);
	if (r == 0)
		qsort(s->events, s->n_events, sizeof(*s->events), compare_events);
	return r;
}

/* ---- the timeline's changes ------------------------------------------------------------ */

static void set_condition(json_t *obj, const json_t *cond)
{
	json_t *status = json_object_get(obj, "status"), *list, *c;
	size_t i;

	if (!json_is_object(status))
		json_object_set_new(obj, "status", status = json_object());
	list = json_object_get(status, "conditions");
	if (!json_is_array(list))
		json_object_set_new(status, "conditions", list = json_array());
	json_array_foreach(list, i, c) {
		if (strcmp(json_str(c, "type"), json_str(cond, "type")) == 0) {
			json_array_remove(list, i);
			break;
		}
	}
	c = json_deep_copy(cond);
	if (!json_object_get(c, "status"))
		json_object_set_new(c, "status", json_string("True"));
	json_array_append_new(list, c);
}

static bool set_taint(json_t *obj, const char *device, const json_t *taint)
{
	json_t *devs = json_object_get(json_object_get(obj, "spec"), "devices"), *d;
	size_t i;

	json_array_foreach(devs, i, d) {
		json_t *where = json_is_object(json_object_get(d, "basic")) ? json_object_get(d, "basic") : d;

		if (strcmp(json_str(d, "name"), device) != 0)
			continue;
		if (json_is_null(taint))
			json_object_del(where, "taints");
		else
			json_object_set_new(where, "taints", json_pack("[O]", taint));
		return true;
	}
	return false;
}

static void apply_event(struct sim *s, const struct event *ev)
{
	const json_t *l = ev->line;
	const char *kind = json_str(l, "kind"), *ns = json_str(l, "namespace"), *name = json_str(l, "name");
	int t = type_index(kind);
	char *key = object_key(kind, types[t]->namespaced ? ns : "", name);
	json_t *cur = strmap_get(&s->json, key), *obj;

	free(key);
	if (json_object_get(l, "delete")) {
		delete_object(s, t, ns, name);
		return;
	}
	if (!cur) {
		fprintf(stderr, "device-descheduler simulate: %s: no %s %s%s%s in the cluster (ignored)\n", ev->where,
			kind, types[t]->namespaced ? ns : "", types[t]->namespaced ? "/" : "", name);
		return;
	}
	obj = json_deep_copy(cur);
	if (json_object_get(l, "patch"))
		simulate_merge_patch(obj, json_object_get(l, "patch"));
	else if (json_object_get(l, "condition"))
		set_condition(obj, json_object_get(l, "condition"));
	else if (!set_taint(obj, json_str(l, "device"), json_object_get(l, "taint")))
		fprintf(stderr, "device-descheduler simulate: %s: ResourceSlice %s has no device %s (ignored)\n",
			ev->where, name, json_str(l, "device"));
	/* The change is a new version of the object, as a watch would deliver it. */
	json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion",
			    json_sprintf("sim-%zu", ev->seq));
	put_object(s, obj, ev->where);
}

/* ---- the run --------------------------------------------------------------------------- */

/* Carries out every action due now, as the API would answer it. */
static void draw(struct sim *s)
{
	struct core_action a;
	struct core_notice n;

	while (core_next_action(s->core, s->now, &a) == 0) {
		char *pod = a.kind == CORE_FENCE ? NULL : kc_xasprintf("%s/%s", a.ns, a.name);
		char *ns = pod ? kc_xstrdup(a.ns) : NULL, *name = pod ? kc_xstrdup(a.name) : NULL;

		if (a.kind == CORE_FENCE) {
			bool add = a.fence.op == QUARANTINE_ADD;

			emit(s, add ? "quarantine" : "lift-quarantine", NULL, a.node, a.message);
			s->counts[add ? 2 : 3]++;
			core_fence_done(s->core, a.fence.kind, a.fence.unit, QUARANTINE_OK, s->now);
		} else if (a.dry_run) {
			emit(s, "would-evict", pod, a.node, a.message);
			s->counts[1]++;
		} else {
			char *uid = kc_xstrdup(a.uid);

			emit(s, a.kind == CORE_DELETE ? "delete" : "evict", pod, a.node, a.message);
			s->counts[0]++;
			core_action_done(s->core, uid, CORE_RESULT_EVICTED, 0, s->now);
			/* The API deletes the pod; no replacement is scheduled in a simulation. */
			delete_object(s, T_POD, ns, name);
			free(uid);
		}
		free(pod);
		free(ns);
		free(name);
	}
	while (core_next_notice(s->core, &n) == 0) {
		char *msg = kc_xasprintf("%s %s: %s", n.type, n.reason, n.message);
		char *pod = n.cluster_wide ? NULL : kc_xasprintf("%s/%s", n.ns, n.name);

		emit(s, "notice", pod, NULL, msg);
		free(msg);
		free(pod);
	}
}

struct scan {
	struct sim *s;
	bool final;
	json_t *pending; /* final: -o json */
	unsigned n_pending;
};

/* Reports each pod held back (a limit, the breaker, the cap) or kept by a filter, once per reason. */
static int scan_pod(const void *obj, void *userdata)
{
	struct scan *sc = userdata;
	struct sim *s = sc->s;
	const struct kc_pod *pod = obj;
	struct core_pod_view v;
	char *text, *name;
	const char *last;
	char ub[KC_UID_BUF];
	const char *uid = kc_uid_str(&pod->meta.uid, ub);

	core_pod_view(s->core, uid, s->now, &v);
	if (v.decision == CORE_DECISION_HEALTHY || v.decision == CORE_DECISION_DONE) {
		free(strmap_del(&s->reported, uid));
		return 0;
	}
	text = explain_view_text(&v, s->p->dry_run, s->now);
	name = kc_xasprintf("%s/%s", pod->meta.ns, pod->meta.name);
	if (sc->final) {
		sc->n_pending++;
		if (s->json_out)
			json_array_append_new(sc->pending, json_pack("{s:s, s:s, s:s, s:s}", "pod", name, "node",
								     pod->node_name, "decision",
								     explain_decision_name(v.decision), "text", text));
		else
			printf("  %s on %s: %s\n", name, *pod->node_name ? pod->node_name : "-", text);
	} else if (v.decision == CORE_DECISION_HELD || v.decision == CORE_DECISION_NEVER) {
		last = strmap_get(&s->reported, uid);
		if (!last || strcmp(last, text) != 0) {
			char *msg = kc_xasprintf("%s on %s: %s", name, pod->node_name, text);

			emit(s, v.decision == CORE_DECISION_HELD ? "held" : "not-evicted", name, pod->node_name, msg);
			free(msg);
			free(strmap_put(&s->reported, uid, kc_xstrdup(text)));
		}
	}
	free(name);
	free(text);
	return 0;
}

static void run(struct sim *s, uint64_t until_ms)
{
	struct scan sc = {.s = s};
	size_t next = 0;

	s->core = core_new(s->p, s->stores[T_POD], s->stores[T_NODE], s->p->dra ? s->stores[T_CLAIM] : NULL,
			   s->p->dra ? s->stores[T_SLICE] : NULL);
	core_set_synced(s->core, true, 0);
	core_set_active(s->core, true, 0);
	for (;;) {
		uint64_t wake;

		while (next < s->n_events && s->events[next].at_ms <= s->now)
			apply_event(s, &s->events[next++]);
		draw(s);
		kc_store_foreach(s->stores[T_POD], scan_pod, &sc);
		wake = core_next_wakeup(s->core, s->now);
		if (next < s->n_events && s->events[next].at_ms < wake)
			wake = s->events[next].at_ms;
		if (wake == UINT64_MAX || wake > until_ms)
			break;
		/* Time moves forward: a wake-up already due was just drawn. */
		s->now = wake > s->now ? wake : s->now + 1;
	}
	if (s->now < until_ms && next >= s->n_events)
		until_ms = s->now;
	s->now = until_ms > s->now ? until_ms : s->now;
	sc.final = true;
	sc.pending = json_array();
	if (!s->json_out)
		printf("\nAt %.3fs: %u evictions%s, %u quarantines, %u lifted; pods still bound to unhealthy devices:\n",
		       s->now / 1000.0, s->counts[0] + s->counts[1], s->p->dry_run ? " (dry run)" : "", s->counts[2],
		       s->counts[3]);
	kc_store_foreach(s->stores[T_POD], scan_pod, &sc);
	if (!s->json_out && !sc.n_pending)
		printf("  none\n");
	if (s->json_out) {
		json_t *root = json_pack("{s:o, s:{s:f, s:i, s:i, s:i, s:b, s:o}}", "events", json_incref(s->out),
					 "end", "atSeconds", s->now / 1000.0, "evictions",
					 (int)(s->counts[0] + s->counts[1]), "quarantines", (int)s->counts[2], "lifted",
					 (int)s->counts[3], "dryRun", s->p->dry_run, "pending", sc.pending);

		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(root);
	} else {
		json_decref(sc.pending);
	}
}

/* ---- flags and main ---------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fputs("Usage: device-descheduler simulate --policy-config-file FILE --from SNAPSHOT [--timeline FILE] [flags]\n\n"
	      "Runs the controller's decisions on a copy of a cluster, without any network: the\n"
	      "evictions and quarantines the policy would make, in order and with their times (limits,\n"
	      "circuit breaker and quarantine cap applied), and the pods held back, with the reason.\n"
	      "SNAPSHOT is the output of `kubectl get pods,nodes,resourceclaims,resourceslices -A -o json`,\n"
	      "or a directory of such files. The timeline is JSON Lines of timed changes:\n"
	      "  {\"at\": \"10s\", \"kind\": \"Pod\", \"namespace\": \"ml\", \"name\": \"p\", \"patch\": {\"status\": ...}}\n"
	      "  {\"at\": \"20s\", \"kind\": \"Node\", \"name\": \"n\", \"condition\": {\"type\": \"GPUXIDErrors\", "
	      "\"status\": \"True\"}}\n"
	      "  {\"at\": 30, \"kind\": \"ResourceSlice\", \"name\": \"s\", \"device\": \"gpu-0\", "
	      "\"taint\": {\"key\": \"k\", \"effect\": \"NoExecute\"}}\n"
	      "  {\"at\": \"40s\", \"kind\": \"Pod\", \"namespace\": \"ml\", \"name\": \"p\", \"delete\": true}\n"
	      "Evictions succeed (the pod is deleted, nothing replaces it) and fences are written.\n"
	      "Exit status 0, or 2 for bad flags, a bad policy or unreadable input.\n\n"
	      "Flags:\n"
	      "  --policy-config-file string\n      File with the DeviceDeschedulerPolicy (YAML). Required.\n"
	      "  --from string\n      The snapshot: a kubectl List JSON file or a directory of them. Required.\n"
	      "  --timeline string\n      JSON Lines of timed changes (optional).\n"
	      "  --until duration\n      Simulated time to stop at (default: the last change plus 1h).\n"
	      "  --dry-run\n      Simulate under dryRun: true.\n"
	      "  -o, --output string\n      Output format: text or json (default \"text\")\n"
	      "  -v number\n      Log verbosity of the core on stderr (default \"0\").\n",
	      out);
}

struct args {
	const char *policy, *from, *timeline;
	uint64_t until_ms;
	bool has_until, dry_run, json, help;
	int verbosity;
};

static int parse_args(int argc, char **argv, struct args *a, struct kc_error *err)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq, *name, *value = NULL;
		size_t len;

		if (arg[0] != '-')
			return kc_error_set(err, -EINVAL, "unexpected argument \"%s\" (see --help)", arg);
		name = arg + (arg[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
#define IS(flag) (len == strlen(flag) && strncmp(name, flag, len) == 0)
		if (IS("h") || IS("help")) {
			a->help = true;
			continue;
		}
		if (IS("dry-run")) {
			a->dry_run = !eq || strcmp(eq + 1, "true") == 0;
			continue;
		}
		if (!IS("policy-config-file") && !IS("from") && !IS("timeline") && !IS("until") && !IS("o") &&
		    !IS("output") && !IS("v"))
			return kc_error_set(err, -EINVAL, "unknown flag: %s (see --help)", arg);
		if (eq)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else
			return kc_error_set(err, -EINVAL, "flag needs an argument: %s", arg);
		if (IS("policy-config-file"))
			a->policy = value;
		else if (IS("from"))
			a->from = value;
		else if (IS("timeline"))
			a->timeline = value;
		else if (IS("until")) {
			if (duration_parse(value, &a->until_ms) < 0)
				return kc_error_set(err, -EINVAL, "--until: expected a duration such as 10m, got \"%s\"",
						    value);
			a->has_until = true;
		} else if (IS("v"))
			a->verbosity = atoi(value);
		else if (strcmp(value, "json") == 0 || strcmp(value, "text") == 0)
			a->json = strcmp(value, "json") == 0;
		else
			return kc_error_set(err, -EINVAL, "--output: expected text or json, got \"%s\"", value);
#undef IS
	}
	if (!a->help && (!a->policy || !a->from))
		return kc_error_set(err, -EINVAL, "--policy-config-file and --from are required (see --help)");
	return 0;
}

static void sim_done(struct sim *s)
{
	core_free(s->core);
	for (int i = 0; i < N_TYPES; i++)
		kc_store_free(s->stores[i]);
	for (size_t i = 0; i < s->n_events; i++) {
		free(s->events[i].where);
		json_decref(s->events[i].line);
	}
	free(s->events);
	strmap_done(&s->json);
	strmap_done(&s->reported);
	json_decref(s->out);
	kc_intern_free(s->intern);
	policy_free(s->p);
}

static void json_value_free(void *v)
{
	json_decref(v);
}

int simulate_cmd_main(int argc, char **argv)
{
	struct args a = {0};
	struct kc_error err = {{0}};
	struct sim s;
	int r = 0;

	memset(&s, 0, sizeof(s));
	if (parse_args(argc, argv, &a, &err) < 0) {
		fprintf(stderr, "device-descheduler simulate: %s\n", err.msg);
		return 2;
	}
	if (a.help) {
		usage(stdout);
		return 0;
	}
	kc_log_setup(a.verbosity, KC_LOG_TEXT, stderr);
	if (policy_load_file(a.policy, &s.p, &err) < 0) {
		fprintf(stderr, "device-descheduler simulate: invalid policy: %s\n", err.msg);
		return 2;
	}
	if (a.dry_run)
		s.p->dry_run = true;
	s.json_out = a.json;
	s.out = json_array();
	s.intern = kc_intern_new();
	s.decode.keep_annotations = core_keep_annotations;
	s.decode.max_message = 1024;
	s.ctx.intern = s.intern;
	s.ctx.opts = &s.decode;
	strmap_init(&s.json, json_value_free);
	strmap_init(&s.reported, free);
	for (int i = 0; i < N_TYPES; i++)
		s.stores[i] = kc_store_new(types[i]);
	if (load_snapshot(&s, a.from) < 0 || (a.timeline && load_timeline(&s, a.timeline) < 0)) {
		r = 2;
		goto done;
	}
	if (!a.has_until)
		a.until_ms = (s.n_events ? s.events[s.n_events - 1].at_ms : 0) + DEFAULT_TAIL_MS;
	if (!s.json_out)
		printf("Simulating %zu pods, %zu nodes, %zu claims, %zu slices; %zu timeline changes; policy %s%s\n\n",
		       kc_store_count(s.stores[T_POD]), kc_store_count(s.stores[T_NODE]),
		       kc_store_count(s.stores[T_CLAIM]), kc_store_count(s.stores[T_SLICE]), s.n_events, a.policy,
		       s.p->dry_run ? " (dry run)" : "");
	run(&s, a.until_ms);
done:
	sim_done(&s);
	return r;
}
