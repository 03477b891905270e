/*
 * Command-line flag parsing (options.h).  Accepts "--flag=value" and
 * "--flag value", booleans as "--flag", "--flag=true" or "--flag=false", and
 * klog's "-v N" / "-v=N" / "--v=N".
 */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

enum flag_kind {
	FLAG_STRING,
	FLAG_BOOL,
	FLAG_INT,
	FLAG_DOUBLE,
	FLAG_DURATION,
	FLAG_LOG_FORMAT,
	FLAG_CONTENT_TYPE,
};

struct flag {
	const char *name;
	enum flag_kind kind;
	size_t offset;
	const char *def;  /* the default, as shown in --help */
	const char *help;
};

#define OPT(field) offsetof(struct options, field)

static const struct flag flags[] = {
	{"policy-config-file", FLAG_STRING, OPT(policy_file), "",
	 "File with the DeviceDeschedulerPolicy (YAML). Required."},
	{"kubeconfig", FLAG_STRING, OPT(kubeconfig), "",
	 "Path to a kubeconfig. Empty: $KUBECONFIG, then in-cluster, then ~/.kube/config."},
	{"context", FLAG_STRING, OPT(context), "", "The kubeconfig context to use. Empty: current-context."},
	{"dry-run", FLAG_BOOL, OPT(dry_run), "false",
	 "Evict nothing: log and emit Normal Events saying what would be evicted."},
	{"v", FLAG_INT, OPT(verbosity), "0",
	 "Log verbosity (klog levels). 2: decisions; 4: why each affected pod was or was not evicted."},
	{"logging-format", FLAG_LOG_FORMAT, OPT(log_format), "text", "Log format: text (klog) or json."},
	{"log-format", FLAG_LOG_FORMAT, OPT(log_format), "text", "Alias of --logging-format."},
	{"leader-elect", FLAG_BOOL, OPT(leader_elect), "false",
	 "Take a coordination.k8s.io/v1 Lease before evicting (use with more than one replica)."},
	{"leader-elect-resource-name", FLAG_STRING, OPT(lease_name), "device-descheduler", "Name of the Lease."},
	{"leader-elect-resource-namespace", FLAG_STRING, OPT(lease_namespace), "kube-system",
	 "Namespace of the Lease."},
	{"leader-elect-lease-duration", FLAG_DURATION, OPT(lease_duration_ms), "15s",
	 "How long non-leaders wait after the last renewal before taking over."},
	{"leader-elect-renew-deadline", FLAG_DURATION, OPT(renew_deadline_ms), "10s",
	 "How long the leader retries renewing before it stops leading."},
	{"leader-elect-retry-period", FLAG_DURATION, OPT(retry_period_ms), "2s",
	 "Interval between attempts to acquire or renew the Lease."},
	{"metrics-bind-address", FLAG_STRING, OPT(metrics_addr), ":8080",
	 "Address of the Prometheus /metrics endpoint; \"0\" disables it."},
	{"health-probe-bind-address", FLAG_STRING, OPT(probe_addr), ":8081",
	 "Address of the /healthz and /readyz probes; \"0\" disables them."},
	{"kube-api-qps", FLAG_DOUBLE, OPT(qps), "50", "Client-side QPS limit for API requests."},
	{"kube-api-burst", FLAG_INT, OPT(burst), "100", "Client-side burst for API requests."},
	{"kube-api-content-type", FLAG_CONTENT_TYPE, OPT(protobuf), "application/vnd.kubernetes.protobuf",
	 "Encoding asked for pods and nodes (LIST and WATCH): application/vnd.kubernetes.protobuf (JSON still "
	 "read from a server that answers JSON) or application/json. Other requests use JSON."},
	{"http2-read-idle-timeout", FLAG_DURATION, OPT(read_idle_ms), "30s",
	 "Probe the API server connection when it read nothing for this long (as client-go's HTTP/2 "
	 "ReadIdleTimeout)."},
	{"http2-ping-timeout", FLAG_DURATION, OPT(ping_timeout_ms), "15s",
	 "Close the connection when it still reads nothing this long after the probe; requests move to a new "
	 "one. /readyz fails after 2x (read idle + ping timeout) without an answer from the API server, "
	 "/healthz after 4x."},
	{"watch-stall-timeout", FLAG_DURATION, OPT(stall_timeout_ms), "2m",
	 "Re-establish a watch that delivered no bytes (not even bookmarks) for this long."},
	{"discovery-interval", FLAG_DURATION, OPT(discovery_interval_ms), "5m",
	 "How often API discovery is read again (also after a 404 from a DRA LIST or WATCH)."},
	{"shutdown-timeout", FLAG_DURATION, OPT(shutdown_timeout_ms), "10s",
	 "On SIGTERM, how long in-flight requests may take before the process exits."},
	{"help", FLAG_BOOL, OPT(help), "false", "Print this help and exit."},
	{"version", FLAG_BOOL, OPT(version), "false", "Print the version and the git commit it was built from, and exit."},
};

static const struct flag *find_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < KC_ARRAY_SIZE(flags); i++)
		if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
			return &flags[i];
	return NULL;
}

static int set_flag(struct options *o, const struct flag *f, const char *value, struct kc_error *err)
{
	void *field = (char *)o + f->offset;
	char *end;

	switch (f->kind) {
	case FLAG_STRING:
		*(const char **)field = value;
		return 0;
	case FLAG_BOOL:
		if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
			*(bool *)field = false;
		else
			return kc_error_set(err, -EINVAL, "--%s: expected true or false, got \"%s\"", f->name, value);
		return 0;
	case FLAG_INT: {
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < 0 || v > 1000000)
			return kc_error_set(err, -EINVAL, "--%s: expected a non-negative integer, got \"%s\"",
					    f->name, value);
		if (f->offset == OPT(burst))
			*(unsigned *)field = (unsigned)v;
		else
			*(int *)field = (int)v;
		return 0;
	}
	case FLAG_DOUBLE: {
		double v;

		errno = 0;
		v = strtod(value, &end);
		if (errno || end == value || *end || !(v > 0))
			return kc_error_set(err, -EINVAL, "--%s: expected a positive number, got \"%s\"", f->name,
					    value);
		*(double *)field = v;
		return 0;
	}
	case FLAG_DURATION:
		if (duration_parse(value, (uint64_t *)field) < 0)
			return kc_error_set(err, -EINVAL, "--%s: expected a duration such as 15s or 1m30s, got \"%s\"",
					    f->name, value);
		return 0;
	case FLAG_LOG_FORMAT:
		if (strcmp(value, "text") == 0)
			*(enum kc_log_format *)field = KC_LOG_TEXT;
		else if (strcmp(value, "json") == 0)
			*(enum kc_log_format *)field = KC_LOG_JSON;
		else
			return kc_error_set(err, -EINVAL, "--%s: expected text or json, got \"%s\"", f->name, value);
		return 0;
	case FLAG_CONTENT_TYPE:
		if (strcmp(value, "application/vnd.kubernetes.protobuf") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "application/json") == 0)
			*(bool *)field = false;
		else
			return kc_error_set(err, -EINVAL,
					    "--%s: expected application/vnd.kubernetes.protobuf or application/json, "
					    "got \"%s\"", f->name, value);
		return 0;
	}
	return -EINVAL;
}

int options_parse(int argc, char **argv, struct options *ret, struct kc_error *err)
{
	struct options o;
	int r;

	memset(&o, 0, sizeof(o));
	for (size_t i = 0; i < KC_ARRAY_SIZE(flags); i++)
		if (flags[i].kind != FLAG_BOOL && (r = set_flag(&o, &flags[i], flags[i].def, err)) < 0)
			return r;
	o.policy_file = NULL;
	o.kubeconfig = NULL;
	o.context = NULL;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *name, *eq, *value;
		const struct flag *f;
		size_t len;

		if (arg[0] != '-' || arg[1] == '\0')
			return kc_error_set(err, -EINVAL, "unexpected argument \"%s\" (flags start with --)", arg);
		name = arg + (arg[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		if (len == 1 && name[0] == 'h')
			f = find_flag("help", 4);
		else
			f = find_flag(name, len);
		if (!f)
			return kc_error_set(err, -EINVAL, "unknown flag: %.*s (see --help)", (int)(len + (size_t)(name - arg)),
					    arg);
		if (eq) {
			value = eq + 1;
		} else if (f->kind == FLAG_BOOL) {
			value = "true";
		} else {
			if (i + 1 >= argc)
				return kc_error_set(err, -EINVAL, "flag needs an argument: --%s", f->name);
			value = argv[++i];
		}
		if ((r = set_flag(&o, f, value, err)) < 0)
			return r;
	}
	if (!o.help && !o.version && (!o.policy_file || !*o.policy_file))
		return kc_error_set(err, -EINVAL, "--policy-config-file is required (see --help)");
	if (o.leader_elect && !(o.lease_duration_ms > o.renew_deadline_ms && o.renew_deadline_ms > o.retry_period_ms))
		return kc_error_set(err, -EINVAL,
				    "leader election timings: need lease-duration > renew-deadline > retry-period");
	*ret = o;
	return 0;
}

void options_usage(FILE *out)
{
	fputs("Usage: device-descheduler --policy-config-file FILE [flags]\n"
	      "       device-descheduler explain NAMESPACE/POD --policy-config-file FILE [-o json] [flags]\n"
	      "       device-descheduler simulate --policy-config-file FILE --from SNAPSHOT [--timeline FILE]\n\n"
	      "Evicts pods bound to unhealthy GPUs and other devices so that their owners\n"
	      "recreate them on healthy devices.  `explain` says, read-only, what it would do\n"
	      "with one pod and why; `simulate` runs a policy on a snapshot of a cluster, offline\n"
	      "(see `device-descheduler explain --help`, `device-descheduler simulate --help`).\n\nFlags:\n",
	      out);
	for (size_t i = 0; i < KC_ARRAY_SIZE(flags); i++) {
		const struct flag *f = &flags[i];
		const char *type = f->kind == FLAG_BOOL ? "" : f->kind == FLAG_DURATION ? " duration"
			: f->kind == FLAG_INT || f->kind == FLAG_DOUBLE ? " number" : " string";

		fprintf(out, "  %s%s%s\n      %s", strlen(f->name) == 1 ? "-" : "--", f->name, type, f->help);
		if (f->def[0] && f->kind != FLAG_BOOL)
			fprintf(out, " (default \"%s\")", f->def);
		else if (f->kind == FLAG_BOOL)
			fprintf(out, " (default %s)", f->def);
		fputc('\n', out);
	}
}
