/*
 * The standard process metrics every Prometheus client exports and every
 * dashboard expects (process_resident_memory_bytes, process_cpu_seconds_total,
 * process_open_fds, process_max_fds, process_start_time_seconds,
 * process_virtual_memory_bytes), with the names, types and units of the Go
 * client's process collector.  They are read from Linux's /proc.
 *
 * The parsers take the text of a /proc file and are pure, so they are tested
 * on sample contents; procstat_read() does the reading, and
 * procstat_register() / procstat_update() put the values into a registry
 * under their bare names (no device_descheduler_ prefix).
 */
#ifndef PROCSTAT_H
#define PROCSTAT_H

#include <stdint.h>

#include "metrics.h"

struct procstat {
	double cpu_seconds;	   /* user + system CPU time */
	double resident_bytes;	   /* resident set size */
	double virtual_bytes;	   /* virtual memory size */
	double start_time_seconds; /* since the Unix epoch */
	double open_fds;
	double max_fds; /* the soft RLIMIT_NOFILE; +Inf when unlimited */
};

/*
 * Parses the text of /proc/<pid>/stat (the command name may hold spaces and
 * parentheses: fields are counted from the last ')').  ticks_per_second is
 * sysconf(_SC_CLK_TCK), page_size sysconf(_SC_PAGESIZE), boot_time_s the
 * btime of /proc/stat.  Sets cpu_seconds, resident_bytes, virtual_bytes and
 * start_time_seconds of *ret, leaving the rest.  Returns 0 or -EINVAL.
 */
int procstat_parse_stat(const char *text, long ticks_per_second, long page_size, uint64_t boot_time_s,
			struct procstat *ret);

/* Parses the "btime N" line of /proc/stat.  Returns 0 or -EINVAL. */
int procstat_parse_boot_time(const char *text, uint64_t *ret);

/* Parses the soft limit of the "Max open files" line of /proc/<pid>/limits
 * ("unlimited" gives +Inf).  Returns 0 or -EINVAL. */
int procstat_parse_max_fds(const char *text, double *ret);

/*
 * Reads every field of *ret for this process from proc_root (normally
 * "/proc"; a test may point it at a copy).  Returns 0, or the first negative
 * errno (a missing or malformed file); *ret is then left as it was.
 */
int procstat_read(const char *proc_root, struct procstat *ret);

/* Registers the process_* families in m.  Returns 0 or a negative errno
 * from metrics_register (-EEXIST when already registered). */
int procstat_register(struct metrics *m);

/* Sets the registered families to the values of ps (the CPU counter grows
 * by the difference: it never goes back). */
void procstat_update(struct metrics *m, const struct procstat *ps);

#endif
