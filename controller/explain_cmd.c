/*
 * The explain command (explain_cmd.h): flags, one LIST of each cache through
 * the same reflectors the daemon uses (stopped as soon as they have listed,
 * so no watch is ever opened), explain_pod(), and the text and JSON outputs.
 */
#include "explain_cmd.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "api_discovery.h"
#include "duration.h"
#include "kc_config.h"
#include "kc_http.h"
#include "kc_intern.h"
#include "kc_log.h"
#include "kc_reflector.h"
#include "kc_util.h"
#include "options.h"
#include "quarantine.h"

#define DEFAULT_TIMEOUT_MS 60000u

struct cmd {
	uv_loop_t loop;
	struct kc_client *client;
	struct kc_intern *intern;
	struct kc_decode_opts decode;
	/* pods, nodes, then claims and slices (with dra, once discovery chose), then the DeviceTaintRules of
	 * others where served */
	struct kc_reflector *rs[5];
	struct kc_reflector *rules; /* rs[4] once started; NULL again if it could not list them */
	size_t n_rs, n_listed;
	struct api_discovery *discovery; /* with dra: which resource.k8s.io versions to list, if any */
	bool dra_decided;		 /* discovery answered (rs[2], rs[3] started if served) */
	uv_timer_t timeout;
	bool timed_out;
};

/* ---- flags ---------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fputs("Usage: device-descheduler explain NAMESPACE/POD --policy-config-file FILE [flags]\n\n"
	      "Says what the controller would do with one pod, and why: each device it holds, each\n"
	      "signal's verdict, each filter, the circuit breaker, and the decision. Read-only: it\n"
	      "lists pods and nodes (and ResourceClaims, ResourceSlices and DeviceTaintRules with\n"
	      "devices.dra) once and needs only list permission. Exit status 0 when the pod was explained, 1 when it does\n"
	      "not exist or the API cannot be read, 2 for bad flags or a bad policy.\n\n"
	      "Flags:\n"
	      "  -o, --output string\n      Output format: text or json (default \"text\")\n"
	      "  --timeout duration\n      How long listing may take (default \"60s\")\n"
	      "  --policy-config-file string\n      File with the DeviceDeschedulerPolicy (YAML). Required.\n"
	      "  --kubeconfig string\n      Path to a kubeconfig. Empty: $KUBECONFIG, then in-cluster, then "
	      "~/.kube/config.\n"
	      "  --context string\n      The kubeconfig context to use. Empty: current-context.\n"
	      "  --dry-run\n      Explain as under dryRun: true.\n"
	      "  -v number\n      Log verbosity on stderr (default \"0\").\n"
	      "  --kube-api-qps number, --kube-api-burst number\n      Client-side rate limits (default 50, 100).\n",
	      out);
}

struct args {
	struct options opts;
	const char *ns, *name;
	bool json;
	bool help;
	uint64_t timeout_ms;
};

/* Takes -o/--output and --timeout out of argv; the rest is the daemon's flag set. */
static int parse_args(int argc, char **argv, struct args *a, char **rest, int *n_rest, struct kc_error *err)
{
	const char *target = NULL, *slash;
	int n = 0;

	a->timeout_ms = DEFAULT_TIMEOUT_MS;
	rest[n++] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		bool output = false, timeout = false;

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			a->help = true;
			continue;
		}
		if (strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0)
			output = true;
		else if (strncmp(arg, "-o", 2) == 0 && arg[2] != '-')
			output = true, value = arg[2] == '=' ? arg + 3 : arg + 2;
		else if (strncmp(arg, "--output=", 9) == 0)
			output = true, value = arg + 9;
		else if (strcmp(arg, "--timeout") == 0)
			timeout = true;
		else if (strncmp(arg, "--timeout=", 10) == 0)
			timeout = true, value = arg + 10;
		if (output || timeout) {
			if (!value) {
				if (i + 1 >= argc)
					return kc_error_set(err, -EINVAL, "flag needs an argument: %s", arg);
				value = argv[++i];
			}
			if (output && strcmp(value, "json") != 0 && strcmp(value, "text") != 0)
				return kc_error_set(err, -EINVAL, "--output: expected text or json, got \"%s\"", value);
			if (output)
				a->json = strcmp(value, "json") == 0;
			if (timeout && (duration_parse(value, &a->timeout_ms) < 0 || a->timeout_ms == 0))
				return kc_error_set(err, -EINVAL, "--timeout: expected a duration such as 30s, got \"%s\"",
						    value);
			continue;
		}
		if (arg[0] != '-' && i == 1) {
			target = arg;
			continue;
		}
		rest[n++] = argv[i];
	}
	*n_rest = n;
	if (a->help)
		return 0;
	if (!target)
		return kc_error_set(err, -EINVAL, "explain needs NAMESPACE/POD as its first argument (see --help)");
	slash = strchr(target, '/');
	if (!slash || slash == target || !slash[1] || strchr(slash + 1, '/'))
		return kc_error_set(err, -EINVAL, "expected NAMESPACE/POD, got \"%s\"", target);
	a->ns = kc_xstrndup(target, (size_t)(slash - target));
	a->name = slash + 1;
	return options_parse(n, rest, &a->opts, err);
}

/* ---- listing ---------------------------------------------------------------------- */

static void on_listed(struct kc_reflector *r, void *ud)
{
	struct cmd *c = ud;

	/* Stopped here, the reflector never starts its watch: list permission is enough. */
	kc_reflector_stop(r);
	if (++c->n_listed == c->n_rs && (!c->discovery || c->dra_decided))
		uv_stop(&c->loop);
}

static void on_timeout(uv_timer_t *t)
{
	struct cmd *c = kc_container_of(t, struct cmd, timeout);

	c->timed_out = true;
	uv_stop(&c->loop);
}

/*
 * The DeviceTaintRules are read like the daemon reads them, but a role with
 * list permission on the other kinds only (what explain asks for) may be
 * refused them: then the pod is explained without them, and the output says
 * so on stderr, instead of waiting for --timeout.
 */
static void on_list_error(struct kc_reflector *r, long http_status, void *ud)
{
	struct cmd *c = ud;

	if (r != c->rules || (http_status != 401 && http_status != 403 && http_status != 404))
		return;
	kc_log_warn("explain: cannot list DeviceTaintRules (HTTP %ld): explained without them", http_status);
	kc_reflector_stop(r);
	c->rules = NULL;
	if (++c->n_listed == c->n_rs && (!c->discovery || c->dra_decided))
		uv_stop(&c->loop);
}

/* path: NULL for the type's own, or the DRA version discovery chose. */
static int start_list(struct cmd *c, const struct kc_type *type, const char *path)
{
	struct kc_reflector_options o = {0};
	struct kc_reflector **r = &c->rs[c->n_rs];
	int err;

	o.loop = &c->loop;
	o.type = type;
	o.path = path;
	o.decode = &c->decode;
	o.on_synced = on_listed;
	o.on_error = on_list_error;
	o.userdata = c;
	/* Our own fences are no signal (as in the daemon). */
	if (type == &kc_type_device_taint_rule)
		o.label_selector = QUARANTINE_FOREIGN_RULES;
	err = kc_reflector_new(c->client, c->intern, &o, r);
	if (err < 0)
		return err;
	c->n_rs++;
	return kc_reflector_start(*r);
}

/* The first answer of discovery: list claims and slices in the versions it chose, as the daemon
 * watches them, or not at all when resource.k8s.io is not served. */
static void on_discovery(const struct kc_dra_versions *v, void *ud)
{
	struct cmd *c = ud;
	int r = 0;

	if (c->dra_decided)
		return;
	c->dra_decided = true;
	api_discovery_stop(c->discovery);
	if (v->claims && v->slices) {
		char *claims = kc_xasprintf("/apis/%s/%s/resourceclaims", KC_DRA_GROUP, v->claims);
		char *slices = kc_xasprintf("/apis/%s/%s/resourceslices", KC_DRA_GROUP, v->slices);

		if ((r = start_list(c, &kc_type_resource_claim, claims)) < 0 ||
		    (r = start_list(c, &kc_type_resource_slice, slices)) < 0)
			kc_log_error("explain: cannot list ResourceClaims and ResourceSlices: %s", strerror(-r));
		free(claims);
		free(slices);
		if (r == 0 && v->taint_rules) {
			char *rules = kc_xasprintf("/apis/%s/%s/devicetaintrules", KC_DRA_GROUP, v->taint_rules);

			if ((r = start_list(c, &kc_type_device_taint_rule, rules)) < 0)
				kc_log_error("explain: cannot list DeviceTaintRules: %s", strerror(-r));
			else
				c->rules = c->rs[4];
			free(rules);
		}
	} else {
		kc_log_info(1, "explain: resource.k8s.io is not served: no DRA signals");
	}
	if (r < 0 || c->n_listed == c->n_rs)
		uv_stop(&c->loop);
}

static void on_client_closed(void *ud)
{
	struct cmd *c = ud;

	c->client = NULL;
	for (size_t i = 0; i < c->n_rs; i++)
		kc_reflector_free(c->rs[i]);
	c->n_rs = 0;
	uv_close((uv_handle_t *)&c->timeout, NULL);
}

/* ---- output ----------------------------------------------------------------------- */

/* The hit of signal s on device d: same resource, and the same device or a node-level hit. */
static const struct health_hit *device_hit(const struct explain *e, const struct explain_device *d,
					   enum health_signal s)
{
	for (size_t i = 0; i < e->n_hits; i++) {
		const struct health_hit *h = &e->hits[i];

		if (h->signal == s && strcmp(h->resource, d->resource) == 0 &&
		    (strcmp(h->device, d->device) == 0 || !*h->device))
			return h;
	}
	return NULL;
}

/* Whether a hit is shown under one of the devices (else it is listed on its own). */
static bool hit_shown(const struct explain *e, const struct health_hit *h)
{
	for (size_t i = 0; i < e->n_devices; i++)
		if (device_hit(e, &e->devices[i], h->signal) == h)
			return true;
	return false;
}

/* DRA signals concern claims only, allocatableDrop device-plugin resources only. */
static bool signal_applies(enum health_signal s, const struct explain_device *d)
{
	bool claim = strncmp(d->resource, "claim:", 6) == 0;

	if (s == HEALTH_DRA_TAINT || s == HEALTH_DRA_CONDITION)
		return claim;
	if (s == HEALTH_ALLOC_DROP)
		return !claim;
	return true;
}

static unsigned long long secs(uint64_t ms)
{
	return (unsigned long long)(ms / 1000 + (ms % 1000 != 0));
}

/* The API's time of a hit, as RFC 3339 in buf; false when the API gives none. */
static bool since_text(const struct explain *e, const struct health_hit *h, char *buf, size_t size)
{
	int64_t since = e->hit_since[h - e->hits];
	time_t t = (time_t)since;
	struct tm tm;

	if (since <= 0 || !gmtime_r(&t, &tm))
		return false;
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return true;
}

static void print_hit(FILE *out, const struct explain *e, const struct health_hit *h)
{
	char since[40];

	/* The core's clock starts at explain's "now": first_seen 0 is now. */
	fprintf(out, "unhealthy (%s: %s); debounce %llu s, %llu s left", h->state, h->detail, secs(h->for_ms),
		secs(health_hit_due(h)));
	if (since_text(e, h, since, sizeof(since)))
		fprintf(out, "; since %s (API), so %llu s left for a controller watching since then", since,
			secs(explain_left_since(h, e->hit_since[h - e->hits], e->now_s)));
	fputc('\n', out);
}

void explain_cmd_print_text(FILE *out, const struct explain *e, const char *policy_source)
{
	fprintf(out, "Pod:       %s/%s (uid %s)\n", e->ns, e->name, e->uid);
	fprintf(out, "Node:      %s\n", *e->node ? e->node : "(not scheduled)");
	fprintf(out, "Phase:     %s\n", e->phase);
	if (*e->owner_kind)
		fprintf(out, "Owner:     %s/%s\n", e->owner_kind, e->owner_name);
	else
		fprintf(out, "Owner:     none (bare pod)\n");
	fprintf(out, "Policy:    %s%s\n", policy_source ? policy_source : "(defaults)", e->dry_run ? " (dry run)" : "");
	fprintf(out, "\nDevices:\n");
	if (!e->n_devices)
		fprintf(out, "  none: the pod holds no device resource under this policy\n");
	for (size_t i = 0; i < e->n_devices; i++) {
		const struct explain_device *d = &e->devices[i];

		fprintf(out, "  %s %s", d->resource, *d->device ? d->device : "(device ID not reported)");
		if (*d->health)
			fprintf(out, " (kubelet: %s)", d->health);
		fputc('\n', out);
		for (int s = 0; s < HEALTH_SIGNAL_COUNT; s++) {
			const struct health_hit *h = device_hit(e, d, (enum health_signal)s);

			if (!signal_applies((enum health_signal)s, d))
				continue;
			fprintf(out, "    %-20s ", health_signal_name((enum health_signal)s));
			if (h)
				print_hit(out, e, h);
			else
				fprintf(out, "%s\n", e->signal_enabled[s] ? "healthy" : "off");
		}
	}
	for (size_t i = 0; i < e->n_hits; i++) {
		if (hit_shown(e, &e->hits[i]))
			continue;
		fprintf(out, "  %s %s\n    %-20s ", e->hits[i].resource, *e->hits[i].device ? e->hits[i].device : "",
			health_signal_name(e->hits[i].signal));
		print_hit(out, e, &e->hits[i]);
	}
	fprintf(out, "\nFilters:\n");
	for (size_t i = 1; i <= EXPLAIN_LAST_FILTER; i++)
		fprintf(out, "  %-14s %s%s\n", planner_skip_name((enum planner_skip)i),
			e->filter_fails[i] ? "keeps it: " : "passes",
			e->filter_fails[i] ? planner_skip_message((enum planner_skip)i) : "");
	fprintf(out, "\nCircuit breaker: %s (%s)\n", e->breaker_open ? "open" : "closed", e->breaker_reason);
	fprintf(out, "Quarantine:      node %s %s\n", *e->node ? e->node : "-",
		e->node_quarantined ? "is quarantined by device-descheduler" : "is not quarantined");
	if (e->fence_message)
		fprintf(out, "                 first: %s\n", e->fence_message);
	fprintf(out, "\nDecision:  %s\n", e->decision_text);
	if (e->action_message)
		fprintf(out, "           %s\n", e->action_message);
	fprintf(out, "\nDebounces and limits count from now, as for a controller that starts now; a running\n"
		     "controller counts from when it first saw each signal, and knows the evictions it made\n"
		     "in the current window.\n");
}

static json_t *hit_json(const struct explain *e, const struct health_hit *h)
{
	char since[40];
	bool known = since_text(e, h, since, sizeof(since));

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o}", "signal", health_signal_name(h->signal),
			 "resource", h->resource, "device", h->device, "state", h->state, "detail", h->detail,
			 "forSeconds", (json_int_t)secs(h->for_ms), "debounceLeftSeconds",
			 (json_int_t)secs(health_hit_due(h)), "since", known ? json_string(since) : json_null(),
			 "debounceLeftSecondsSinceThen",
			 known ? json_integer((json_int_t)secs(explain_left_since(h, e->hit_since[h - e->hits], e->now_s)))
			       : json_null());
}

int explain_cmd_print_json(FILE *out, const struct explain *e, const char *policy_source)
{
	json_t *root, *devices = json_array(), *filters = json_array(), *other = json_array(), *decision;
	int r;

	for (size_t i = 0; i < e->n_devices; i++) {
		const struct explain_device *d = &e->devices[i];
		json_t *signals = json_array();

		for (int s = 0; s < HEALTH_SIGNAL_COUNT; s++) {
			const struct health_hit *h = device_hit(e, d, (enum health_signal)s);

			if (!signal_applies((enum health_signal)s, d))
				continue;
			if (h) {
				json_t *j = hit_json(e, h);

				json_object_set_new(j, "verdict", json_string("unhealthy"));
				json_array_append_new(signals, j);
			} else {
				json_array_append_new(signals,
						      json_pack("{s:s, s:s}", "signal",
								health_signal_name((enum health_signal)s), "verdict",
								e->signal_enabled[s] ? "healthy" : "off"));
			}
		}
		json_array_append_new(devices, json_pack("{s:s, s:s, s:s, s:o}", "resource", d->resource, "device",
							 d->device, "kubeletHealth", d->health, "signals", signals));
	}
	for (size_t i = 0; i < e->n_hits; i++)
		if (!hit_shown(e, &e->hits[i]))
			json_array_append_new(other, hit_json(e, &e->hits[i]));
	for (size_t i = 1; i <= EXPLAIN_LAST_FILTER; i++) {
		json_t *f = json_pack("{s:s, s:b}", "name", planner_skip_name((enum planner_skip)i), "passed",
				      !e->filter_fails[i]);

		if (e->filter_fails[i])
			json_object_set_new(f, "message", json_string(planner_skip_message((enum planner_skip)i)));
		json_array_append_new(filters, f);
	}
	decision = json_pack("{s:s, s:s}", "kind", explain_decision_name(e->decision), "text", e->decision_text);
	if (e->decision == CORE_DECISION_WAITING || e->decision == CORE_DECISION_HELD)
		json_object_set_new(decision, "inSeconds",
				    e->due_in_ms == UINT64_MAX ? json_null() : json_integer((json_int_t)secs(e->due_in_ms)));
	if (e->decision == CORE_DECISION_DUE)
		json_object_set_new(decision, "inSeconds", json_integer(0));
	if (e->decision == CORE_DECISION_NEVER)
		json_object_set_new(decision, "filter", json_string(planner_skip_name(e->skip)));
	if (e->decision == CORE_DECISION_HELD)
		json_object_set_new(decision, "heldBy", json_string(limits_hold_name(e->hold)));
	if (e->action_message)
		json_object_set_new(decision, "action", json_string(e->action_message));
	if (e->quarantine_capped)
		json_object_set_new(decision, "heldBy", json_string("quarantineCap"));
	root = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}, s:o, s:b, s:o, s:o, s:o, "
			 "s:{s:b, s:I, s:I, s:s}, s:o}",
			 "pod", "namespace", e->ns, "name", e->name, "uid", e->uid, "node", e->node, "phase", e->phase,
			 "owner", "kind", e->owner_kind, "name", e->owner_name, "policy",
			 policy_source ? json_string(policy_source) : json_null(), "dryRun", e->dry_run, "devices",
			 devices, "otherSignals", other, "filters", filters, "circuitBreaker", "open", e->breaker_open,
			 "deviceNodes", (json_int_t)e->device_nodes, "unhealthyNodes", (json_int_t)e->unhealthy_nodes,
			 "reason", e->breaker_reason, "decision", decision);
	if (root)
		json_object_set_new(root, "quarantine",
				    json_pack("{s:b, s:o}", "nodeQuarantined", e->node_quarantined, "fenceFirst",
					      e->fence_message ? json_string(e->fence_message) : json_null()));
	if (!root)
		return -ENOMEM;
	r = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ? -ENOMEM : 0;
	fputc('\n', out);
	json_decref(root);
	return r;
}

/* ---- the command ------------------------------------------------------------------ */

static int list_and_explain(struct cmd *c, const struct args *a, const struct policy *p, struct kc_config *cfg)
{
	struct kc_client_options copts = {0};
	struct kc_error err = {{0}};
	struct explain e;
	int r = 0;

	copts.qps = a->opts.qps;
	copts.burst = a->opts.burst;
	copts.user_agent = "device-descheduler/explain";
	if (kc_client_new(&c->loop, cfg, &copts, &c->client, &err) < 0) {
		fprintf(stderr, "device-descheduler explain: %s\n", err.msg);
		return 1;
	}
	c->intern = kc_intern_new();
	c->decode.keep_annotations = core_keep_annotations;
	c->decode.max_message = 1024;
	uv_timer_init(&c->loop, &c->timeout);
	uv_timer_start(&c->timeout, on_timeout, a->timeout_ms, 0);
	if (p->dra) {
		struct api_discovery_options dopts = {0};

		dopts.loop = &c->loop;
		dopts.client = c->client;
		dopts.on_change = on_discovery;
		dopts.userdata = c;
		if (api_discovery_new(&dopts, &c->discovery) < 0)
			c->discovery = NULL;
		else
			api_discovery_start(c->discovery);
	}
	if ((p->dra && !c->discovery) || (r = start_list(c, &kc_type_pod, NULL)) < 0 ||
	    (r = start_list(c, &kc_type_node, NULL)) < 0) {
		fprintf(stderr, "device-descheduler explain: cannot list: %s\n", strerror(r < 0 ? -r : ENOMEM));
		r = 1;
	} else {
		uv_run(&c->loop, UV_RUN_DEFAULT);
		r = 0;
	}
	if (r == 0 && c->timed_out) {
		fprintf(stderr, "device-descheduler explain: listing took longer than --timeout (see the warnings "
				"above, or run with -v 2)\n");
		r = 1;
	}
	if (r == 0) {
		const struct kc_store *claims = c->n_rs >= 4 ? kc_reflector_store(c->rs[2]) : NULL;
		const struct kc_store *slices = c->n_rs >= 4 ? kc_reflector_store(c->rs[3]) : NULL;
		const struct kc_store *rules = c->rules ? kc_reflector_store(c->rules) : NULL;

		if (explain_pod(p, kc_reflector_store(c->rs[0]), kc_reflector_store(c->rs[1]), claims, slices, rules, a->ns,
				a->name, kc_wall_ms() / 1000, &e) < 0) {
			fprintf(stderr, "device-descheduler explain: pod %s/%s not found\n", a->ns, a->name);
			r = 1;
		} else {
			if (a->json)
				r = explain_cmd_print_json(stdout, &e, p->source) < 0 ? 1 : 0;
			else
				explain_cmd_print_text(stdout, &e, p->source);
			explain_done(&e);
		}
	}
	uv_timer_stop(&c->timeout);
	c->discovery = api_discovery_free(c->discovery);
	kc_client_close(c->client, on_client_closed, c);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	c->intern = kc_intern_free(c->intern);
	return r;
}

int explain_cmd_main(int argc, char **argv)
{
	struct args a = {0};
	struct kc_error err = {{0}};
	struct kc_config cfg = {0};
	struct policy *p = NULL;
	struct cmd c;
	char **rest = kc_xcalloc((size_t)argc + 1, sizeof(char *));
	int n_rest = 0, r;

	memset(&c, 0, sizeof(c));
	if (parse_args(argc, argv, &a, rest, &n_rest, &err) < 0) {
		fprintf(stderr, "device-descheduler explain: %s\n", err.msg);
		r = 2;
		goto free_args;
	}
	if (a.help) {
		usage(stdout);
		r = 0;
		goto free_args;
	}
	kc_log_setup(a.opts.verbosity, a.opts.log_format, stderr);
	if (policy_load_file(a.opts.policy_file, &p, &err) < 0) {
		fprintf(stderr, "device-descheduler explain: invalid policy: %s\n", err.msg);
		r = 2;
		goto free_args;
	}
	if (a.opts.dry_run)
		p->dry_run = true;
	if (kc_config_load(a.opts.kubeconfig, a.opts.context, &cfg, &err) < 0) {
		fprintf(stderr, "device-descheduler explain: %s\n", err.msg);
		r = 1;
		goto free_policy;
	}
	r = uv_loop_init(&c.loop);
	if (r < 0) {
		fprintf(stderr, "device-descheduler explain: uv_loop_init: %s\n", uv_strerror(r));
		r = 1;
		goto free_config;
	}
	r = list_and_explain(&c, &a, p, &cfg);
	if (uv_loop_close(&c.loop) != 0)
		kc_log_warn("explain: event loop closed with handles still open");
free_config:
	kc_config_done(&cfg);
free_policy:
	policy_free(p);
free_args:
	free((char *)a.ns);
	free(rest);
	return r;
}
