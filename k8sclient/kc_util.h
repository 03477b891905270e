/*
 * Small utilities shared by every module: the allocation policy, error text,
 * bounded growable buffers and container_of.
 *
 * Allocation policy (written down once): an allocation failure logs one line
 * and aborts the process.  A controller that cannot allocate cannot do useful
 * work, and the Deployment restarts it.  Every buffer that input can grow is
 * bounded separately (struct kc_buf has a hard maximum), so input cannot drive
 * us into that path.
 */
#ifndef KC_UTIL_H
#define KC_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define KC_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define kc_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define KC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *kc_xmalloc(size_t n);
void *kc_xcalloc(size_t count, size_t size);
void *kc_xrealloc(void *p, size_t n);
char *kc_xstrdup(const char *s);
char *kc_xstrndup(const char *s, size_t n);
/* Returns a newly allocated string formatted like printf; the caller frees it. */
char *kc_xasprintf(const char *fmt, ...) KC_PRINTF(1, 2);

/*
 * A human-readable error, filled by the function that failed and logged once
 * by the caller.  Messages name the file, the field and what was wrong.
 */
struct kc_error {
	char msg[512];
};

/* Sets err->msg (err may be NULL).  Always returns `code` for `return kc_error_set(...)`. */
int kc_error_set(struct kc_error *err, int code, const char *fmt, ...) KC_PRINTF(3, 4);

/*
 * A growable byte buffer with a hard maximum.  Always NUL-terminated when
 * len > 0 so text can be used directly.
 */
struct kc_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void kc_buf_init(struct kc_buf *b, size_t max);
/* Appends; returns -EMSGSIZE (and leaves the buffer unchanged) past the maximum. */
int kc_buf_append(struct kc_buf *b, const void *data, size_t len);
void kc_buf_reset(struct kc_buf *b);
void kc_buf_done(struct kc_buf *b);

/* Monotonic and wall-clock time in milliseconds.  The pure core never calls these. */
uint64_t kc_monotonic_ms(void);
int64_t kc_wall_ms(void);

/*
 * Parses an RFC 3339 timestamp as the API server writes it
 * ("2026-11-27T01:02:03Z", optionally with fractional seconds or an offset)
 * into Unix seconds.  Returns 0 on success, -EINVAL otherwise.
 */
int kc_parse_time(const char *s, size_t len, int64_t *ret_unix_s);
/* Formats Unix milliseconds as RFC 3339 with microseconds ("...T01:02:03.000000Z"); buf >= 32. */
void kc_format_time(int64_t unix_ms, char *buf, size_t size);

/* Reads a whole file of at most max bytes; *ret_data is NUL-terminated and owned by the caller. */
int kc_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len);

#endif
