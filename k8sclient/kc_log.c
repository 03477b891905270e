/*
 * klog-like text and JSON log lines (kc_log.h).  One line per call, written
 * with a single fwrite so lines from one process never interleave.
 */
#include "kc_log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_verbosity;
static enum kc_log_format log_format = KC_LOG_TEXT;
static FILE *log_out;

void kc_log_setup(int verbosity, enum kc_log_format format, FILE *out)
{
	log_verbosity = verbosity;
	log_format = format;
	log_out = out;
}

int kc_log_verbosity(void)
{
	return log_verbosity;
}

bool kc_log_enabled(int v)
{
	return v <= log_verbosity;
}

/* Appends s to out as a JSON string body (without quotes). */
static size_t json_escape(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return n;
}

static KC_PRINTF(3, 0) void emit(char sev, int v, const char *fmt, va_list ap)
{
	char msg[4096], line[8800];
	struct timeval tv;
	struct tm tm;
	FILE *out = log_out ? log_out : stderr;
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One record, one line: a newline inside a message (say, from a parser's
	 * error text) would start a line without a header. */
	for (char *c = msg; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	gettimeofday(&tv, NULL);
	if (log_format == KC_LOG_JSON) {
		char esc[8200];

		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line), "{\"ts\":%.3f,\"caller\":\"device-descheduler\",\"v\":%d,\"msg\":\"%s\"%s}\n",
			     (double)tv.tv_sec * 1000.0 + (double)tv.tv_usec / 1000.0,
			     sev == 'I' ? v : 0, esc,
			     sev == 'E' || sev == 'F' ? ",\"level\":\"error\"" : sev == 'W' ? ",\"level\":\"warning\"" : "");
	} else {
		gmtime_r(&tv.tv_sec, &tm);
		n = snprintf(line, sizeof(line), "%c%02d%02d %02d:%02d:%02d.%06ld %7d device-descheduler] %s\n", sev,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec,
			     (int)getpid(), msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	fwrite(line, 1, (size_t)n, out);
	fflush(out);
}

void kc_log_info(int v, const char *fmt, ...)
{
	va_list ap;

	if (v > log_verbosity)
		return;
	va_start(ap, fmt);
	emit('I', v, fmt, ap);
	va_end(ap);
}

void kc_log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit('W', 0, fmt, ap);
	va_end(ap);
}

void kc_log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit('E', 0, fmt, ap);
	va_end(ap);
}

void kc_log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit('F', 0, fmt, ap);
	va_end(ap);
	exit(255);
}
