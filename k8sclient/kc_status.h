/*
 * Decoding of API Status bodies (errors, eviction answers) with jansson:
 * they are small, so a tree is fine here.  struct kc_status is declared in
 * kc_objects.h because the watch decoder fills it too.
 */
#ifndef KC_STATUS_H
#define KC_STATUS_H

#include <stddef.h>

#include "kc_objects.h"

/* Returns 0 and fills *ret (free with kc_status_done) when json is a Status
 * object, in JSON or in Kubernetes' protobuf encoding ("k8s\0" first: kc_pb.h);
 * -EBADMSG when it is neither or not kind Status. */
int kc_status_decode(const char *json, size_t len, struct kc_status *ret);
/* True when any cause has this reason (e.g. "DisruptionBudget"). */
int kc_status_has_cause(const struct kc_status *s, const char *reason);

#endif
