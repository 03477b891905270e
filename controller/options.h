/*
 * Command-line flags.  Names follow the descheduler's and client-go's
 * (component-base) flags where they exist: --policy-config-file, --kubeconfig,
 * --dry-run, -v, --logging-format, --leader-elect-*, --kube-api-qps/burst,
 * --metrics-bind-address, --health-probe-bind-address.  Pure: parsing only.
 */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kc_log.h"
#include "kc_util.h"

struct options {
	const char *policy_file;
	const char *kubeconfig;
	const char *context;
	bool dry_run;
	int verbosity;
	enum kc_log_format log_format;
	bool leader_elect;
	const char *lease_name;
	const char *lease_namespace;
	uint64_t lease_duration_ms;
	uint64_t renew_deadline_ms;
	uint64_t retry_period_ms;
	const char *metrics_addr;
	const char *probe_addr;
	double qps;
	unsigned burst;
	bool protobuf;  /* --kube-api-content-type */
	uint64_t stall_timeout_ms;
	uint64_t discovery_interval_ms;
	uint64_t read_idle_ms;    /* --http2-read-idle-timeout */
	uint64_t ping_timeout_ms; /* --http2-ping-timeout */
	uint64_t shutdown_timeout_ms;
	bool help;
	bool version;
};

/* Parses argv.  Returns 0, or -EINVAL with err naming the flag and what is wrong. */
int options_parse(int argc, char **argv, struct options *ret, struct kc_error *err);
/* Prints --help: every flag with its default. */
void options_usage(FILE *out);

#endif
