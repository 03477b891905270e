/*
 * The Prometheus registry (metrics.h).  Families are kept sorted by name and
 * series by their label values, both by insertion into sorted arrays, so
 * rendering is a straight walk and the output order never depends on the
 * order in which series appeared.  Lookups are linear or binary searches over
 * a few dozen entries: far below anything the loop would notice.
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 8

struct series {
	char **values;		 /* n_labels label values, owned */
	double value;		 /* counter or gauge */
	uint64_t *bucket_counts; /* histogram: per bucket (not cumulative), n_buckets + 1 with +Inf */
	double sum;
	uint64_t count;
};

struct family {
	char *name; /* short name, without METRICS_PREFIX */
	bool bare;  /* rendered without METRICS_PREFIX (metrics_register_unprefixed) */
	char *help;
	enum metrics_type type;
	char **label_names;
	size_t n_labels;
	double *buckets;
	size_t n_buckets;
	struct series **series; /* sorted by label values */
	size_t n_series;
	size_t cap_series;
};

struct metrics {
	struct family **families; /* sorted by name */
	size_t n_families;
	size_t cap_families;
};

static const double latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

static bool valid_name(const char *s, bool label)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');

		if (!alpha && !(p != s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static void series_free(struct series *s, size_t n_labels)
{
	if (!s)
		return;
	for (size_t i = 0; i < n_labels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->bucket_counts);
	free(s);
}

static void family_free(struct family *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_series; i++)
		series_free(f->series[i], f->n_labels);
	free(f->series);
	for (size_t i = 0; i < f->n_labels; i++)
		free(f->label_names[i]);
	free(f->label_names);
	free(f->buckets);
	free(f->help);
	free(f->name);
	free(f);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_families; i++)
		family_free(m->families[i]);
	free(m->families);
	free(m);
}

/* Compares a series' label values with a candidate tuple, for the sorted order. */
static int compare_values(char *const *a, const char *const *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int c = strcmp(a[i], b[i]);

		if (c)
			return c;
	}
	return 0;
}

/* Binary search: returns true and the index when found, else false and the insertion index. */
static bool series_find(const struct family *f, const char *const *values, size_t *ret_index)
{
	size_t lo = 0, hi = f->n_series;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = compare_values(f->series[mid]->values, values, f->n_labels);

		if (c == 0) {
			*ret_index = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_index = lo;
	return false;
}

static struct series *series_insert(struct family *f, const char *const *values, size_t index)
{
	struct series *s = kc_xcalloc(1, sizeof(*s));

	s->values = kc_xcalloc(f->n_labels ? f->n_labels : 1, sizeof(char *));
	for (size_t i = 0; i < f->n_labels; i++)
		s->values[i] = kc_xstrdup(values[i]);
	if (f->type == METRICS_HISTOGRAM)
		s->bucket_counts = kc_xcalloc(f->n_buckets + 1, sizeof(uint64_t));
	if (f->n_series == f->cap_series) {
		f->cap_series = f->cap_series ? f->cap_series * 2 : 8;
		f->series = kc_xrealloc(f->series, f->cap_series * sizeof(*f->series));
	}
	memmove(f->series + index + 1, f->series + index, (f->n_series - index) * sizeof(*f->series));
	f->series[index] = s;
	f->n_series++;
	return s;
}

static struct family *family_find(const struct metrics *m, const char *name)
{
	size_t plen = strlen(METRICS_PREFIX);

	/* The full name is accepted too, so a caller may copy it from the output. */
	if (strncmp(name, METRICS_PREFIX, plen) == 0)
		name += plen;
	for (size_t i = 0; i < m->n_families; i++)
		if (strcmp(m->families[i]->name, name) == 0)
			return m->families[i];
	return NULL;
}

int metrics_register(struct metrics *m, enum metrics_type type, const char *name, const char *help,
		     const char *const *label_names, const double *buckets, size_t n_buckets)
{
	struct family *f;
	size_t n_labels = 0, index;

	if (!valid_name(name, false) || !help)
		return -EINVAL;
	if (family_find(m, name))
		return -EEXIST;
	for (; label_names && label_names[n_labels]; n_labels++) {
		if (n_labels == MAX_LABELS || !valid_name(label_names[n_labels], true) ||
		    strncmp(label_names[n_labels], "__", 2) == 0 ||
		    (type == METRICS_HISTOGRAM && strcmp(label_names[n_labels], "le") == 0))
			return -EINVAL;
	}
	if (type == METRICS_HISTOGRAM) {
		if (n_buckets == 0 || !buckets)
			return -EINVAL;
		for (size_t i = 0; i < n_buckets; i++)
			if (isnan(buckets[i]) || isinf(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
				return -EINVAL;
	} else {
		n_buckets = 0;
	}

	f = kc_xcalloc(1, sizeof(*f));
	f->name = kc_xstrdup(name);
	f->help = kc_xstrdup(help);
	f->type = type;
	f->n_labels = n_labels;
	f->label_names = kc_xcalloc(n_labels ? n_labels : 1, sizeof(char *));
	for (size_t i = 0; i < n_labels; i++)
		f->label_names[i] = kc_xstrdup(label_names[i]);
	f->n_buckets = n_buckets;
	if (n_buckets) {
		f->buckets = kc_xmalloc(n_buckets * sizeof(double));
		memcpy(f->buckets, buckets, n_buckets * sizeof(double));
	}
	/* A family without labels has exactly one series, shown from the start. */
	if (n_labels == 0)
		series_insert(f, NULL, 0);

	for (index = 0; index < m->n_families; index++)
		if (strcmp(m->families[index]->name, name) > 0)
			break;
	if (m->n_families == m->cap_families) {
		m->cap_families = m->cap_families ? m->cap_families * 2 : 16;
		m->families = kc_xrealloc(m->families, m->cap_families * sizeof(*m->families));
	}
	memmove(m->families + index + 1, m->families + index, (m->n_families - index) * sizeof(*m->families));
	m->families[index] = f;
	m->n_families++;
	return 0;
}

int metrics_register_unprefixed(struct metrics *m, enum metrics_type type, const char *name, const char *help,
				const char *const *label_names, const double *buckets, size_t n_buckets)
{
	int r = metrics_register(m, type, name, help, label_names, buckets, n_buckets);

	if (r == 0)
		family_find(m, name)->bare = true;
	return r;
}

static const char *family_prefix(const struct family *f)
{
	return f->bare ? "" : METRICS_PREFIX;
}

struct metrics *metrics_new_empty(void)
{
	return kc_xcalloc(1, sizeof(struct metrics));
}

struct metrics *metrics_new(void)
{
	static const char *const l_evictions[] = {"result", "signal", NULL};
	static const char *const l_resource[] = {"resource", NULL};
	static const char *const l_api[] = {"verb", "resource", "code", NULL};
	static const char *const l_api_duration[] = {"verb", "resource", NULL};
	static const char *const l_result[] = {"result", NULL};
	static const char *const l_version[] = {"version", NULL};
	static const char *const l_action[] = {"action", NULL};
	static const struct {
		enum metrics_type type;
		const char *name;
		const char *help;
		const char *const *labels;
	} std[] = {
	    {METRICS_COUNTER, "evictions_total",
	     "Number of pod evictions, by result and by the health signal that caused them.", l_evictions},
	    {METRICS_GAUGE, "unhealthy_devices", "Number of devices currently considered unhealthy.",
	     l_resource},
	    {METRICS_GAUGE, "pods_bound_to_unhealthy_devices",
	     "Number of pods currently bound to at least one unhealthy device.", NULL},
	    {METRICS_HISTOGRAM, "eviction_latency_seconds",
	     "Time from the health event to the accepted eviction, in seconds: one sample per pod rescued.",
	     NULL},
	    {METRICS_COUNTER, "api_requests_total",
	     "Number of requests to the API server, by verb, resource and HTTP status code.", l_api},
	    {METRICS_HISTOGRAM, "api_request_duration_seconds",
	     "Latency of requests to the API server (watches excluded), by verb and resource, in seconds.",
	     l_api_duration},
	    {METRICS_COUNTER, "watch_restarts_total", "Number of times a watch was restarted.", l_resource},
	    {METRICS_COUNTER, "relists_total", "Number of full relists after a watch expired.", l_resource},
	    {METRICS_GAUGE, "cached_objects", "Number of objects in the informer cache, by resource.", l_resource},
	    {METRICS_GAUGE, "ignored_objects",
	     "Number of objects on the server the cache does not keep (pods that hold no device under the policy), "
	     "by resource.",
	     l_resource},
	    {METRICS_COUNTER, "oversized_objects_total",
	     "Number of times an object was left out of the cache because it exceeds a decoder bound (more than "
	     "16384 elements in one array or 4 MiB of kept strings): once per LIST and per watch event of it, by "
	     "resource; each is also logged as a warning.",
	     l_resource},
	    {METRICS_GAUGE, "circuit_breaker_open",
	     "1 when the circuit breaker holds evictions because too much looks unhealthy, else 0.", NULL},
	    {METRICS_GAUGE, "leader", "1 when this replica holds the leader lease, else 0.", NULL},
	    {METRICS_COUNTER, "policy_reloads_total", "Number of policy reloads, by result.", l_result},
	    {METRICS_GAUGE, "build_info", "Build information; the value is always 1.", l_version},
	    {METRICS_GAUGE, "caches_synced", "1 once every informer cache has synced, else 0.", NULL},
	    {METRICS_GAUGE, "quarantine_cap_reached",
	     "1 while a fence was refused by the quarantine cap (remediation.maxQuarantinedNodes/Percent), else 0.",
	     NULL},
	    {METRICS_GAUGE, "quarantined_nodes", "Number of nodes this controller fenced (taint or cordon).", NULL},
	    {METRICS_GAUGE, "quarantined_devices", "Number of DRA devices this controller fenced by a DeviceTaintRule.",
	     NULL},
	    {METRICS_COUNTER, "quarantine_actions_total",
	     "Number of fences written (taint) and removed (untaint), nodes and devices alike.", l_action},
	    {METRICS_COUNTER, "eviction_loops_total",
	     "Number of pods not evicted because their owner's previous pod was evicted from the same node or "
	     "device within remediation.loopWindow.",
	     NULL},
	};
	struct metrics *m = metrics_new_empty();

	for (size_t i = 0; i < KC_ARRAY_SIZE(std); i++) {
		int r = metrics_register(m, std[i].type, std[i].name, std[i].help, std[i].labels,
					 latency_buckets, KC_ARRAY_SIZE(latency_buckets));

		/* The table above is ours: a failure here is a programming error. */
		if (r < 0)
			abort();
	}
	return m;
}

/*
 * Finds (or, when create, creates) the series named by the NULL-terminated
 * label values in ap.  Returns 0 and *ret, or a negative errno.
 */
static int lookup(const struct metrics *m, const char *name, bool create, int want_type, va_list ap,
		  struct family **ret_family, struct series **ret)
{
	const char *values[MAX_LABELS];
	struct family *f = family_find(m, name);
	size_t n = 0, index;
	const char *v;

	if (!f)
		return -ENOENT;
	if (want_type >= 0 && f->type != (enum metrics_type)want_type)
		return -EINVAL;
	while ((v = va_arg(ap, const char *)) != NULL) {
		if (n == f->n_labels || strlen(v) > METRICS_MAX_LABEL_VALUE)
			return -EINVAL;
		values[n++] = v;
	}
	if (n != f->n_labels)
		return -EINVAL;
	if (series_find(f, values, &index)) {
		*ret = f->series[index];
	} else {
		if (!create)
			return -ENOENT;
		if (f->n_series >= METRICS_MAX_SERIES)
			return -E2BIG;
		*ret = series_insert(f, values, index);
	}
	*ret_family = f;
	return 0;
}

int metrics_counter_add(struct metrics *m, const char *name, double v, ...)
{
	struct family *f;
	struct series *s;
	va_list ap;
	int r;

	if (!(v >= 0))
		return -EINVAL;
	va_start(ap, v);
	r = lookup(m, name, true, METRICS_COUNTER, ap, &f, &s);
	va_end(ap);
	if (r < 0)
		return r;
	s->value += v;
	return 0;
}

int metrics_gauge_set(struct metrics *m, const char *name, double v, ...)
{
	struct family *f;
	struct series *s;
	va_list ap;
	int r;

	va_start(ap, v);
	r = lookup(m, name, true, METRICS_GAUGE, ap, &f, &s);
	va_end(ap);
	if (r < 0)
		return r;
	s->value = v;
	return 0;
}

int metrics_gauge_add(struct metrics *m, const char *name, double v, ...)
{
	struct family *f;
	struct series *s;
	va_list ap;
	int r;

	va_start(ap, v);
	r = lookup(m, name, true, METRICS_GAUGE, ap, &f, &s);
	va_end(ap);
	if (r < 0)
		return r;
	s->value += v;
	return 0;
}

int metrics_histogram_observe(struct metrics *m, const char *name, double v, ...)
{
	struct family *f;
	struct series *s;
	va_list ap;
	size_t i;
	int r;

	if (isnan(v))
		return -EINVAL;
	va_start(ap, v);
	r = lookup(m, name, true, METRICS_HISTOGRAM, ap, &f, &s);
	va_end(ap);
	if (r < 0)
		return r;
	for (i = 0; i < f->n_buckets; i++)
		if (v <= f->buckets[i])
			break;
	s->bucket_counts[i]++;
	s->sum += v;
	s->count++;
	return 0;
}

int metrics_get(const struct metrics *m, const char *name, double *ret, ...)
{
	struct family *f;
	struct series *s;
	va_list ap;
	int r;

	va_start(ap, ret);
	r = lookup(m, name, false, -1, ap, &f, &s);
	va_end(ap);
	if (r < 0)
		return r;
	*ret = f->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
	return 0;
}

void metrics_format_value(double v, char *buf, size_t size)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
	} else if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, size, "%.0f", v == 0 ? 0.0 : v);
	} else {
		/* The shortest of %.15g..%.17g that reads back as the same double. */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, size, "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
}

/* Appends s escaped for a label value (quote) or for HELP text (!quote). */
static int append_escaped(struct kc_buf *out, const char *s, bool quote)
{
	int r = 0;

	for (const char *p = s; *p && r == 0; p++) {
		if (*p == '\\')
			r = kc_buf_append(out, "\\\\", 2);
		else if (*p == '\n')
			r = kc_buf_append(out, "\\n", 2);
		else if (*p == '"' && quote)
			r = kc_buf_append(out, "\\\"", 2);
		else
			r = kc_buf_append(out, p, 1);
	}
	return r;
}

static int append_str(struct kc_buf *out, const char *s)
{
	return kc_buf_append(out, s, strlen(s));
}

/* Appends name{labels,le="x"} value\n, where suffix goes after the family name. */
static int append_sample(struct kc_buf *out, const struct family *f, const struct series *s,
			 const char *suffix, const char *le, double value)
{
	char num[40];
	int r;

	r = append_str(out, family_prefix(f));
	r = r ?: append_str(out, f->name);
	r = r ?: append_str(out, suffix);
	if (r == 0 && (f->n_labels || le)) {
		r = kc_buf_append(out, "{", 1);
		for (size_t i = 0; i < f->n_labels && r == 0; i++) {
			r = i ? kc_buf_append(out, ",", 1) : 0;
			r = r ?: append_str(out, f->label_names[i]);
			r = r ?: kc_buf_append(out, "=\"", 2);
			r = r ?: append_escaped(out, s->values[i], true);
			r = r ?: kc_buf_append(out, "\"", 1);
		}
		if (r == 0 && le) {
			r = f->n_labels ? kc_buf_append(out, ",", 1) : 0;
			r = r ?: append_str(out, "le=\"");
			r = r ?: append_str(out, le);
			r = r ?: kc_buf_append(out, "\"", 1);
		}
		r = r ?: kc_buf_append(out, "}", 1);
	}
	metrics_format_value(value, num, sizeof(num));
	r = r ?: kc_buf_append(out, " ", 1);
	r = r ?: append_str(out, num);
	r = r ?: kc_buf_append(out, "\n", 1);
	return r;
}

static int render_family(const struct family *f, struct kc_buf *out)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};
	char le[40];
	int r;

	if (f->n_series == 0)
		return 0;
	r = append_str(out, "# HELP ");
	r = r ?: append_str(out, family_prefix(f));
	r = r ?: append_str(out, f->name);
	r = r ?: kc_buf_append(out, " ", 1);
	r = r ?: append_escaped(out, f->help, false);
	r = r ?: append_str(out, "\n# TYPE ");
	r = r ?: append_str(out, family_prefix(f));
	r = r ?: append_str(out, f->name);
	r = r ?: kc_buf_append(out, " ", 1);
	r = r ?: append_str(out, type_names[f->type]);
	r = r ?: kc_buf_append(out, "\n", 1);
	for (size_t i = 0; i < f->n_series && r == 0; i++) {
		const struct series *s = f->series[i];
		uint64_t cumulative = 0;

		if (f->type != METRICS_HISTOGRAM) {
			r = append_sample(out, f, s, "", NULL, s->value);
			continue;
		}
		for (size_t b = 0; b <= f->n_buckets && r == 0; b++) {
			cumulative += s->bucket_counts[b];
			if (b < f->n_buckets)
				metrics_format_value(f->buckets[b], le, sizeof(le));
			else
				snprintf(le, sizeof(le), "+Inf");
			r = append_sample(out, f, s, "_bucket", le, (double)cumulative);
		}
		r = r ?: append_sample(out, f, s, "_sum", NULL, s->sum);
		r = r ?: append_sample(out, f, s, "_count", NULL, (double)s->count);
	}
	return r;
}

int metrics_render(const struct metrics *m, struct kc_buf *out)
{
	size_t start = out->len;

	for (size_t i = 0; i < m->n_families; i++) {
		int r = render_family(m->families[i], out);

		if (r < 0) {
			/* Never leave half a family behind: the scrape would misparse it. */
			out->len = start;
			if (out->data)
				out->data[start] = '\0';
			return r;
		}
	}
	return 0;
}

void metrics_api_request_observer(const char *verb, const char *resource, long http_status,
				  uint64_t duration_ms, void *userdata)
{
	char code[24];

	if (http_status > 0)
		snprintf(code, sizeof(code), "%ld", http_status);
	else
		snprintf(code, sizeof(code), "<error>");
	/* Too many distinct series is the only possible error; the request itself went fine. */
	(void)metrics_counter_add(userdata, "api_requests_total", 1, verb ? verb : "",
				  resource ? resource : "", code, NULL);
	/* A watch lasts until its timeout: its duration says nothing about latency. */
	if (!verb || strcmp(verb, "watch") != 0)
		(void)metrics_histogram_observe(userdata, "api_request_duration_seconds",
						(double)duration_ms / 1000.0, verb ? verb : "",
						resource ? resource : "", NULL);
}
