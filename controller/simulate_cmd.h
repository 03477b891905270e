/*
 * `device-descheduler simulate --policy-config-file F --from SNAPSHOT
 * [--timeline T]`: what a policy would do on a copy of a cluster, with no
 * network.  SNAPSHOT is what `kubectl get pods,nodes,resourceclaims,
 * resourceslices -A -o json` prints (a v1 List; single objects are accepted
 * too), or a directory of such files.  The timeline is JSON Lines of timed
 * changes, each {"at": "2s" | 2, "kind": K, "namespace": NS, "name": N, ...}
 * with one of:
 *   "patch": {...}                  a JSON merge patch of the object (pod status patches);
 *   "condition": {type, status, reason?, message?}   set a Node condition;
 *   "device": D, "taint": {key, value?, effect} | null  set or clear a ResourceSlice
 *                                                   device's taints;
 *   "delete": true                  the object is deleted.
 * The controller's core runs on a simulated clock that starts at 0 with the
 * snapshot synced and this replica leading: every eviction it asks for is
 * answered "evicted" (the pod disappears; no replacement is scheduled), every
 * fence "written".  It prints the evictions, quarantines, notices (breaker,
 * quarantine cap, loops) and pods held back, with their times, then the pods
 * still bound to unhealthy devices at the end and why.
 *
 * Exit status: 0, or 2 for bad flags, a bad policy or unreadable input.
 */
#ifndef SIMULATE_CMD_H
#define SIMULATE_CMD_H

#include <jansson.h>
#include <stdint.h>

/* argv[0] is "simulate". */
int simulate_cmd_main(int argc, char **argv);

/* RFC 7386 JSON merge patch of target (an object) by patch, in place. */
void simulate_merge_patch(json_t *target, const json_t *patch);

/* A timeline time: a duration string ("1m30s") or a number of seconds.  Returns 0 or -EINVAL. */
int simulate_parse_at(const json_t *at, uint64_t *ret_ms);

#endif
