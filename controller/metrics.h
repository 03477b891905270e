/*
 * A small Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format 0.0.4 (# HELP / # TYPE lines,
 * escaped label values, families sorted by name and series sorted by label
 * values, so the output is stable and diffable).  Pure: no uv.h, no curl.h,
 * no clock; the HTTP server renders it from the loop thread.
 *
 * Every metric name gets the prefix "device_descheduler_".  Callers name a
 * family by its short name ("evictions_total") and pass the label values in
 * the order the family declares them, terminated by NULL:
 *
 *   metrics_counter_add(m, "evictions_total", 1, "success", "DeviceUnhealthy", NULL);
 *   metrics_gauge_set(m, "unhealthy_devices", 3, "nvidia.com/gpu", NULL);
 *   metrics_histogram_observe(m, "eviction_latency_seconds", 0.42, NULL);
 *
 * metrics_new() registers the standard families below; more can be added with
 * metrics_register().  A series is created on first use.  Families without
 * labels have their single series from the start (rendered as 0), families
 * with labels are omitted from the output until they have a series, as the
 * Go client does.
 *
 *   evictions_total{result,signal}        counter  result: success|blocked|error|dry_run|held_by_limit
 *   unhealthy_devices{resource}           gauge
 *   pods_bound_to_unhealthy_devices       gauge
 *   eviction_latency_seconds              histogram, health event to accepted eviction, once per pod
 *   api_requests_total{verb,resource,code} counter (see metrics_api_request_observer)
 *   api_request_duration_seconds{verb,resource} histogram, watches excluded
 *   watch_restarts_total{resource}        counter
 *   relists_total{resource}               counter
 *   circuit_breaker_open                  gauge (0/1)
 *   leader                                gauge (0/1)
 *   policy_reloads_total{result}          counter  result: success|failure
 *   build_info{version}                   gauge (set to 1)
 *   caches_synced                         gauge (0/1)
 *
 * Not thread-safe: use it from one thread (the loop).
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "kc_util.h"

#define METRICS_PREFIX "device_descheduler_"

/* The most series one family may hold; label values come from input (policy
 * signal names, API resources), so the registry refuses to grow past this. */
#define METRICS_MAX_SERIES 2000
/* The longest label value accepted. */
#define METRICS_MAX_LABEL_VALUE 256
/* A safe bound for the rendered text, for a kc_buf given to metrics_render(). */
#define METRICS_MAX_RENDER (16u << 20)

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics;

/* Returns a registry holding the standard families; free with metrics_free(). */
struct metrics *metrics_new(void);
/* Returns a registry with no family at all (tests, other programs). */
struct metrics *metrics_new_empty(void);
/* Frees the registry; accepts NULL. */
void metrics_free(struct metrics *m);

/*
 * Registers a family.  name is the short name (without METRICS_PREFIX), help
 * one line of text, label_names a NULL-terminated array (NULL for none);
 * buckets are the upper bounds of a histogram in increasing order (without
 * +Inf; ignored for other types).  Everything is copied.  Returns 0, -EEXIST
 * when the name is taken, or -EINVAL for a bad name, label name or buckets.
 */
int metrics_register(struct metrics *m, enum metrics_type type, const char *name, const char *help,
		     const char *const *label_names, const double *buckets, size_t n_buckets);

/* As metrics_register, for a family rendered under its bare name, without
 * METRICS_PREFIX (the standard process_* metrics, see procstat.h). */
int metrics_register_unprefixed(struct metrics *m, enum metrics_type type, const char *name, const char *help,
				const char *const *label_names, const double *buckets, size_t n_buckets);

/*
 * Updates a series; the label values follow v and end with NULL.  Return 0,
 * -ENOENT for an unknown family, -EINVAL for a wrong type, a wrong number of
 * label values, a value over METRICS_MAX_LABEL_VALUE or a negative counter
 * increment, -E2BIG past METRICS_MAX_SERIES.  Errors leave the registry as it was.
 */
int metrics_counter_add(struct metrics *m, const char *name, double v, ...) __attribute__((sentinel));
int metrics_gauge_set(struct metrics *m, const char *name, double v, ...) __attribute__((sentinel));
int metrics_gauge_add(struct metrics *m, const char *name, double v, ...) __attribute__((sentinel));
int metrics_histogram_observe(struct metrics *m, const char *name, double v, ...) __attribute__((sentinel));

/* Reads a series for tests and logs: the value of a counter or gauge, the
 * count of a histogram.  Returns 0, -ENOENT when the family or series does not exist. */
int metrics_get(const struct metrics *m, const char *name, double *ret, ...) __attribute__((sentinel));

/* Appends the exposition text to out.  Returns 0, or -EMSGSIZE past out's maximum. */
int metrics_render(const struct metrics *m, struct kc_buf *out);

/* A kc_client_observer (kc_http.h) counting api_requests_total{verb,resource,code}
 * and observing api_request_duration_seconds{verb,resource} (not for watches);
 * userdata is the struct metrics.  code is the HTTP status, or "<error>" when
 * no response arrived (as client-go's rest_client_requests_total). */
void metrics_api_request_observer(const char *verb, const char *resource, long http_status,
				  uint64_t duration_ms, void *userdata);

/* Writes v formatted as Prometheus does ("1", "0.005", "+Inf", "NaN"); buf >= 32. */
void metrics_format_value(double v, char *buf, size_t size);

#endif
