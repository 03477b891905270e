/*
 * The duration syntax shared by the policy file and the command-line flags
 * (declared in duration.h): Go's time.ParseDuration, since our users write
 * the same durations for the descheduler and for client-go flags, and the
 * inverse formatting for messages.
 */
#include "duration.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kc_util.h"

static uint64_t unit_ns(const char *u, size_t len)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
	    {"ns", 1ULL},
	    {"us", 1000ULL},
	    {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
	    {"\xce\xbcs", 1000ULL}, /* U+03BC Greek small letter mu */
	    {"ms", 1000000ULL},
	    {"s", 1000000000ULL},
	    {"m", 60ULL * 1000000000ULL},
	    {"h", 3600ULL * 1000000000ULL},
	};

	for (size_t i = 0; i < KC_ARRAY_SIZE(units); i++) {
		if (strlen(units[i].name) == len && memcmp(units[i].name, u, len) == 0)
			return units[i].ns;
	}
	return 0;
}

/* Follows Go's time.ParseDuration, computing in nanoseconds with its int64 range. */
int duration_parse(const char *s, uint64_t *ret_ms)
{
	const uint64_t max_ns = (uint64_t)INT64_MAX;
	uint64_t total = 0;
	bool neg = false, range = false;

	if (!s)
		return -EINVAL;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*ret_ms = 0;
		return 0;
	}
	if (*s == '\0')
		return -EINVAL;
	while (*s) {
		uint64_t v = 0, f = 0, unit;
		double scale = 1;
		bool pre = false, post = false;
		const char *u;

		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			return -EINVAL;
		for (; *s >= '0' && *s <= '9'; s++) {
			pre = true;
			if (v > (max_ns - 9) / 10)
				range = true;
			else
				v = v * 10 + (uint64_t)(*s - '0');
		}
		if (*s == '.') {
			s++;
			for (; *s >= '0' && *s <= '9'; s++) {
				post = true;
				if (f < 100000000000000000ULL) {
					f = f * 10 + (uint64_t)(*s - '0');
					scale *= 10;
				}
			}
		}
		if (!pre && !post)
			return -EINVAL;
		for (u = s; *s && *s != '.' && !(*s >= '0' && *s <= '9'); s++)
			;
		unit = unit_ns(u, (size_t)(s - u));
		if (unit == 0)
			return -EINVAL;
		if (range || v > max_ns / unit) {
			range = true;
			continue;
		}
		v *= unit;
		if (f > 0) {
			double frac = (double)f * ((double)unit / scale);

			if (frac >= (double)(max_ns - v))
				range = true;
			else
				v += (uint64_t)frac;
		}
		if (v > max_ns - total)
			range = true;
		else
			total += v;
	}
	if (range || (neg && total > 0))
		return -ERANGE;
	/* A sub-millisecond remainder rounds up, so a duration that is not zero never becomes 0 ms. */
	*ret_ms = total / 1000000 + (total % 1000000 != 0);
	return 0;
}

/* Formats milliseconds the way a policy writes them: "500ms", "5s", "1h30m". */
const char *duration_format(uint64_t ms, char *buf, size_t size)
{
	uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, rest = ms % 1000;
	size_t o = 0;

	buf[0] = '\0';
	if (h)
		o += (size_t)snprintf(buf + o, size - o, "%lluh", (unsigned long long)h);
	if (m && o < size)
		o += (size_t)snprintf(buf + o, size - o, "%llum", (unsigned long long)m);
	if (s && o < size)
		o += (size_t)snprintf(buf + o, size - o, "%llus", (unsigned long long)s);
	if ((rest || ms == 0) && o < size)
		snprintf(buf + o, size - o, "%llums", (unsigned long long)rest);
	return buf;
}
