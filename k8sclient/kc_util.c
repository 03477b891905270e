/*
 * The allocation policy, error text, bounded buffers, time and file helpers
 * declared in kc_util.h.
 */
#include "kc_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Noreturn void out_of_memory(size_t n)
{
	fprintf(stderr, "F device-descheduler: out of memory allocating %zu bytes\n", n);
	abort();
}

void *kc_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		out_of_memory(n);
	return p;
}

void *kc_xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);

	if (!p)
		out_of_memory(count * size);
	return p;
}

void *kc_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		out_of_memory(n);
	return q;
}

char *kc_xstrdup(const char *s)
{
	return kc_xstrndup(s, strlen(s));
}

char *kc_xstrndup(const char *s, size_t n)
{
	char *p = kc_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *kc_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory(strlen(fmt));
	return s;
}

int kc_error_set(struct kc_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

void kc_buf_init(struct kc_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int kc_buf_append(struct kc_buf *b, const void *data, size_t len)
{
	size_t need;

	if (len > b->max || b->len > b->max - len)
		return -EMSGSIZE;
	need = b->len + len + 1;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < need)
			cap *= 2;
		if (cap > b->max + 1)
			cap = b->max + 1;
		b->data = kc_xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void kc_buf_reset(struct kc_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void kc_buf_done(struct kc_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

uint64_t kc_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t kc_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int digits(const char *s, size_t len, size_t at, size_t n, int *ret)
{
	int v = 0;

	if (at + n > len)
		return -EINVAL;
	for (size_t i = at; i < at + n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int kc_parse_time(const char *s, size_t len, int64_t *ret_unix_s)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0;
	size_t i = 19;
	int64_t t;

	if (len < 20 || digits(s, len, 0, 4, &y) || s[4] != '-' || digits(s, len, 5, 2, &mo) ||
	    s[7] != '-' || digits(s, len, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s, len, 11, 2, &h) || s[13] != ':' || digits(s, len, 14, 2, &mi) || s[16] != ':' ||
	    digits(s, len, 17, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	if (s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i >= len)
		return -EINVAL;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		int sign = s[i] == '-' ? -1 : 1;

		if (digits(s, len, i + 1, 2, &oh) || i + 3 >= len || s[i + 3] != ':' ||
		    digits(s, len, i + 4, 2, &om))
			return -EINVAL;
		oh *= sign;
		om *= sign;
		i += 6;
	} else {
		return -EINVAL;
	}
	if (i != len)
		return -EINVAL;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	*ret_unix_s = t - (oh * 3600 + om * 60);
	return 0;
}

void kc_format_time(int64_t unix_ms, char *buf, size_t size)
{
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;
	char date[24];

	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%06dZ", date, (int)(unix_ms % 1000) * 1000);
}

int kc_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0, cap;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto close_fd;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		goto close_fd;
	}
	cap = st.st_size > 0 && (size_t)st.st_size <= max ? (size_t)st.st_size + 1 : 4096;
	data = kc_xmalloc(cap);
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			if (cap > max + 1) {
				r = -EFBIG;
				goto free_data;
			}
			cap *= 2;
			data = kc_xrealloc(data, cap);
		}
		n = read(fd, data + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto free_data;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = -EFBIG;
			goto free_data;
		}
	}
	data[len] = '\0';
	*ret_data = data;
	if (ret_len)
		*ret_len = len;
	close(fd);
	return 0;

free_data:
	free(data);
close_fd:
	close(fd);
	return r;
}
