/*
 * Durations as Kubernetes users write them: Go's syntax ("500ms", "30s",
 * "5m", "1h30m"), held as milliseconds, which is the one time unit of the
 * controller.  Used by the policy file and the command-line flags alike.
 * Pure: no uv.h, no curl.h.
 */
#ifndef DURATION_H
#define DURATION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Go-style duration "1h2m3.5s" → ms, following time.ParseDuration (units ns,
 * us, µs, ms, s, m, h; fractions; "0" alone).  A sub-millisecond remainder
 * rounds up, so only a zero duration gives 0.  Returns -EINVAL when
 * malformed, -ERANGE when negative (other than "-0") or beyond Go's range
 * (about 2562047h); *ret_ms is set only on success.
 */
int duration_parse(const char *s, uint64_t *ret_ms);
/*
 * Writes ms the way a policy would: "500ms", "5s", "1h30m", "0ms"; returns
 * buf.  32 bytes always suffice.
 */
const char *duration_format(uint64_t ms, char *buf, size_t size);

#endif
