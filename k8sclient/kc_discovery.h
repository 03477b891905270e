/*
 * API discovery: which versions of which API groups a server serves and which
 * resources each version has, decoded from the documents a server answers
 * discovery with, and the choice of one version of a resource from a list of
 * preferences.  Pure: no uv.h, no curl.h; the shell does the requests.
 *
 * Three documents are understood, each fed in any number of chunks:
 *   - APIGroupDiscoveryList (aggregated discovery, apidiscovery.k8s.io v2 and
 *     v2beta1: GET /apis with that Accept header, Kubernetes 1.26+): every
 *     group, version and resource in one answer;
 *   - APIGroupList (plain GET /apis): groups and versions only, so the
 *     resources of a version stay unknown ("unresolved") until
 *   - APIResourceList (GET /apis/GROUP/VERSION) is fed for it.
 *
 * Why the versions matter: DRA went resource.k8s.io/v1beta1 (1.32), v1beta2
 * (1.33), v1 (1.34), and a cluster may serve any subset of them, or none.
 */
#ifndef KC_DISCOVERY_H
#define KC_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "kc_util.h"

/* The Accept header that asks for aggregated discovery and takes a plain
 * APIGroupList from servers that have none (what client-go sends). */
#define KC_DISCOVERY_ACCEPT                                                                     \
	"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"                 \
	"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"            \
	"application/json;q=0.9"

/* What is known of a server; built by the decoders below. */
struct kc_discovery;

struct kc_discovery *kc_discovery_new(void);
/* Accepts NULL; returns NULL. */
struct kc_discovery *kc_discovery_free(struct kc_discovery *d);

/* One discovery document being decoded into d (borrowed, must outlive the decoder). */
struct kc_discovery_decoder;

struct kc_discovery_decoder *kc_discovery_decoder_new(struct kc_discovery *d);
/* Feeds bytes: 0, or -EBADMSG (invalid JSON) or -EMSGSIZE (past a bound); sticky. */
int kc_discovery_decoder_feed(struct kc_discovery_decoder *dec, const char *buf, size_t len);
/* After the last chunk: adds what the document says to d (nothing on an
 * error).  Returns 0, -EBADMSG for an incomplete document or one that is not
 * a discovery document (a Status, say), or -EMSGSIZE past a bound. */
int kc_discovery_decoder_finish(struct kc_discovery_decoder *dec);
/* The reason for the last error ("" when none); valid until the decoder is freed. */
const char *kc_discovery_decoder_error(const struct kc_discovery_decoder *dec);
/* Accepts NULL; returns NULL. */
struct kc_discovery_decoder *kc_discovery_decoder_free(struct kc_discovery_decoder *dec);

/* A whole document at once (feed and finish); err says what was wrong. */
int kc_discovery_decode(struct kc_discovery *d, const char *json, size_t len, struct kc_error *err);

/* Whether group is served in any version. */
bool kc_discovery_has_group(const struct kc_discovery *d, const char *group);
/*
 * The versions of group whose resources are not known yet (listed by an
 * APIGroupList, no APIResourceList fed for them): up to max of them in ret
 * (borrowed from d), in the server's order.  Returns how many there are.
 */
size_t kc_discovery_unresolved(const struct kc_discovery *d, const char *group, const char **ret, size_t max);
/*
 * The first of versions (a NULL-terminated preference list) in which group
 * serves resource, or NULL when none does.  The result is an element of
 * versions (so static lists give static results).
 */
const char *kc_discovery_pick(const struct kc_discovery *d, const char *group, const char *resource,
			      const char *const *versions);

/* ---- DRA ---- */

#define KC_DRA_GROUP "resource.k8s.io"

/* The version used for each DRA resource, or NULL when the server serves none we know. */
struct kc_dra_versions {
	const char *claims;      /* v1, v1beta2 or v1beta1 */
	const char *slices;      /* v1, v1beta2 or v1beta1 */
	const char *taint_rules; /* DeviceTaintRules: v1, v1beta2 or v1alpha3 */
};

/* Chooses the best served version of each (the results are static strings). */
void kc_discovery_dra(const struct kc_discovery *d, struct kc_dra_versions *ret);
bool kc_dra_versions_equal(const struct kc_dra_versions *a, const struct kc_dra_versions *b);

#endif
