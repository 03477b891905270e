/*
 * `device-descheduler explain NAMESPACE/POD`: a one-shot, read-only command
 * that says what the controller would do with one pod and why.  It resolves
 * the client configuration and reads the policy file as the daemon does,
 * LISTs pods, nodes (and, with devices.dra, ResourceClaims and
 * ResourceSlices) once with no watch, so it needs only list RBAC, runs the
 * controller's decision code on them (explain.h), and prints the result as
 * text or, with -o json, as one JSON object.
 *
 * Exit status: 0 when the pod was explained, 1 when it does not exist or the
 * API could not be read, 2 for bad flags or a bad policy.
 */
#ifndef EXPLAIN_CMD_H
#define EXPLAIN_CMD_H

#include <stdio.h>

#include "explain.h"

/* argv[0] is "explain". */
int explain_cmd_main(int argc, char **argv);

/* The outputs, exposed for the unit test.  policy_source may be NULL. */
void explain_cmd_print_text(FILE *out, const struct explain *e, const char *policy_source);
/* Returns 0, or -ENOMEM when jansson cannot build or write the object. */
int explain_cmd_print_json(FILE *out, const struct explain *e, const char *policy_source);

#endif
