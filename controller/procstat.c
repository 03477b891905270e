/*
 * The process metrics (procstat.h): pure parsers of /proc text, one function
 * that reads the files, and the registry glue.
 */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc_util.h"

/* /proc/<pid>/stat, /proc/stat and /proc/<pid>/limits are a few KB at most. */
#define PROC_FILE_MAX (64u << 10)

/*
 * Field numbers of proc(5) for /proc/<pid>/stat, counted from 1 as the manual
 * does; field 2 is "(comm)", so after the last ')' the next field is 3.
 */
enum {
	STAT_UTIME = 14,
	STAT_STIME = 15,
	STAT_STARTTIME = 22,
	STAT_VSIZE = 23,
	STAT_RSS = 24,
};

int procstat_parse_stat(const char *text, long ticks_per_second, long page_size, uint64_t boot_time_s,
			struct procstat *ret)
{
	unsigned long long f[STAT_RSS + 1] = {0};
	const char *p = text ? strrchr(text, ')') : NULL;

	if (!p || ticks_per_second <= 0 || page_size <= 0)
		return -EINVAL;
	p++;
	for (int field = 3; field <= STAT_RSS; field++) {
		char *end;

		while (*p == ' ')
			p++;
		if (field == 3) {
			/* The state is a letter, not a number. */
			if (*p < 'A' || *p > 'z')
				return -EINVAL;
			p++;
			continue;
		}
		errno = 0;
		/* rss can be negative in theory (it is a long); clamp it below. */
		if (*p == '-') {
			strtoll(p, &end, 10);
			f[field] = 0;
		} else {
			f[field] = strtoull(p, &end, 10);
		}
		if (end == p || errno || (*end != ' ' && *end != '\n' && *end != '\0'))
			return -EINVAL;
		p = end;
	}
	ret->cpu_seconds = (double)(f[STAT_UTIME] + f[STAT_STIME]) / (double)ticks_per_second;
	ret->resident_bytes = (double)f[STAT_RSS] * (double)page_size;
	ret->virtual_bytes = (double)f[STAT_VSIZE];
	ret->start_time_seconds = (double)boot_time_s + (double)f[STAT_STARTTIME] / (double)ticks_per_second;
	return 0;
}

int procstat_parse_boot_time(const char *text, uint64_t *ret)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char *end;
		unsigned long long v;

		if (strncmp(p, "btime ", 6) != 0)
			continue;
		errno = 0;
		v = strtoull(p + 6, &end, 10);
		if (end == p + 6 || errno || (*end != '\n' && *end != '\0'))
			return -EINVAL;
		*ret = v;
		return 0;
	}
	return -EINVAL;
}

int procstat_parse_max_fds(const char *text, double *ret)
{
	static const char key[] = "Max open files";

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char *end;
		unsigned long long v;

		if (strncmp(p, key, sizeof(key) - 1) != 0)
			continue;
		p += sizeof(key) - 1;
		while (*p == ' ')
			p++;
		if (strncmp(p, "unlimited", 9) == 0) {
			*ret = INFINITY;
			return 0;
		}
		errno = 0;
		v = strtoull(p, &end, 10);
		if (end == p || errno || *end != ' ')
			return -EINVAL;
		*ret = (double)v;
		return 0;
	}
	return -EINVAL;
}

static int read_text(const char *root, const char *name, char **ret)
{
	char *path = kc_xasprintf("%s/%s", root, name);
	size_t len;
	int r = kc_read_file(path, PROC_FILE_MAX, ret, &len);

	free(path);
	return r;
}

/* Counts the entries of <root>/self/fd (the directory's own descriptor
 * included, as the Go client counts it). */
static int count_fds(const char *root, double *ret)
{
	char *path = kc_xasprintf("%s/self/fd", root);
	DIR *d = opendir(path);
	struct dirent *e;
	double n = 0;

	free(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	*ret = n;
	return 0;
}

int procstat_read(const char *proc_root, struct procstat *ret)
{
	char *stat = NULL, *sys = NULL, *limits = NULL;
	struct procstat ps = {0};
	uint64_t btime = 0;
	int r;

	r = read_text(proc_root, "self/stat", &stat);
	r = r ?: read_text(proc_root, "stat", &sys);
	r = r ?: read_text(proc_root, "self/limits", &limits);
	r = r ?: procstat_parse_boot_time(sys, &btime);
	r = r ?: procstat_parse_stat(stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), btime, &ps);
	r = r ?: procstat_parse_max_fds(limits, &ps.max_fds);
	r = r ?: count_fds(proc_root, &ps.open_fds);
	if (r == 0)
		*ret = ps;
	free(stat);
	free(sys);
	free(limits);
	return r;
}

static const struct {
	enum metrics_type type;
	const char *name;
	const char *help;
} families[] = {
    {METRICS_COUNTER, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds."},
    {METRICS_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes."},
    {METRICS_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes."},
    {METRICS_GAUGE, "process_start_time_seconds", "Start time of the process since unix epoch in seconds."},
    {METRICS_GAUGE, "process_open_fds", "Number of open file descriptors."},
    {METRICS_GAUGE, "process_max_fds", "Maximum number of open file descriptors."},
};

int procstat_register(struct metrics *m)
{
	for (size_t i = 0; i < KC_ARRAY_SIZE(families); i++) {
		int r = metrics_register_unprefixed(m, families[i].type, families[i].name, families[i].help, NULL,
						    NULL, 0);

		if (r < 0)
			return r;
	}
	return 0;
}

void procstat_update(struct metrics *m, const struct procstat *ps)
{
	double cpu = 0;

	if (metrics_get(m, "process_cpu_seconds_total", &cpu, NULL) == 0 && ps->cpu_seconds > cpu)
		metrics_counter_add(m, "process_cpu_seconds_total", ps->cpu_seconds - cpu, NULL);
	metrics_gauge_set(m, "process_resident_memory_bytes", ps->resident_bytes, NULL);
	metrics_gauge_set(m, "process_virtual_memory_bytes", ps->virtual_bytes, NULL);
	metrics_gauge_set(m, "process_start_time_seconds", ps->start_time_seconds, NULL);
	metrics_gauge_set(m, "process_open_fds", ps->open_fds, NULL);
	metrics_gauge_set(m, "process_max_fds", ps->max_fds, NULL);
}
