/*
 * Logging, klog-like by default and JSON with --log-format json.
 *
 * Text:  I1127 05:50:09.123456   12345 controller] message
 * JSON:  {"ts":1764222609123.456,"caller":"controller","v":2,"msg":"message"}
 *        ("ts" in milliseconds since the epoch, like klog's JSON format; "err" for errors)
 *
 * Verbosity follows klog: kc_log_info(v, ...) prints when v <= the -v level.
 * Secrets (bearer tokens, client keys) are never passed to these functions.
 */
#ifndef KC_LOG_H
#define KC_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "kc_util.h"

enum kc_log_format {
	KC_LOG_TEXT,
	KC_LOG_JSON,
};

/* Sets the verbosity, the format and the stream (stderr when NULL). */
void kc_log_setup(int verbosity, enum kc_log_format format, FILE *out);
int kc_log_verbosity(void);
bool kc_log_enabled(int v);

void kc_log_info(int v, const char *fmt, ...) KC_PRINTF(2, 3);
void kc_log_warn(const char *fmt, ...) KC_PRINTF(1, 2);
void kc_log_error(const char *fmt, ...) KC_PRINTF(1, 2);
_Noreturn void kc_log_fatal(const char *fmt, ...) KC_PRINTF(1, 2);

#endif
