/*
 * What gen writes and benchsrv reads: the layout of the cached cluster
 * (see gen.c) and the resourceVersions both sides agree on.
 */
#ifndef BENCH_E2E_H
#define BENCH_E2E_H

#include <stdint.h>

/* Written into DIR/DONE: a change of the layout below regenerates the cache. */
#define BENCH_FORMAT "bench-e2e-format-2"

/*
 * Every resourceVersion has 13 digits, so that the server can patch one into
 * a serialized object in place.  Pod i starts at BENCH_RV0 + i, node i at
 * BENCH_RV0 + BENCH_NODE_RV_OFFSET + i; the server's first LIST is at
 * BENCH_LIST_RV and every event it makes takes the next number.
 */
#define BENCH_RV0 UINT64_C(1000000000000)
#define BENCH_NODE_RV_OFFSET UINT64_C(10000000)
#define BENCH_LIST_RV (BENCH_RV0 + UINT64_C(20000000))
#define BENCH_RV_DIGITS 13

/* Pods are spread over this many namespaces, team-00 ... */
#define BENCH_NAMESPACES 50

/* Pod names end in 5 characters of kube's generateName alphabet that encode the pod's index. */
static const char bench_suffix_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
#define BENCH_SUFFIX_BASE 27u

/* One object in DIR/<kind>.json: its bytes are [off, off + len). */
struct bench_rec {
	uint64_t off;
	uint32_t len;
	uint32_t rv_rel;     /* offset of the 13 resourceVersion digits in the object */
	uint32_t health_rel; /* pods: offset of the first GPU's "Healthy" (without its quotes) */
	uint32_t pad;
};

/*
 * One pod in DIR/pods.pb: at off, the field key of a PodList's items (0x12)
 * and the pod's length (hdr bytes in all), then the Pod message (len bytes),
 * so that a run of consecutive pods is itself a run of PodList items.
 * Offsets below are from the start of the Pod message.  A health event makes
 * "Healthy" (7 bytes) "Unhealthy" (9): the lengths of the messages around it
 * grow by 2, and path[] says where they are (each a varint).
 */
enum { BENCH_PB_STATUS, BENCH_PB_CSTATUS, BENCH_PB_RSTATUS, BENCH_PB_RHEALTH, BENCH_PB_PATH };
struct bench_pbrec {
	uint64_t off;
	uint32_t hdr, len;
	uint32_t rv_rel;     /* the 13 resourceVersion digits */
	uint32_t health_rel; /* the 7 bytes of "Healthy" (its length byte is the one before) */
	/* The lengths of Pod.status, of its containerStatuses entry with the GPU, of that
	 * entry's allocatedResourcesStatus entry and of its resources entry. */
	uint32_t path[BENCH_PB_PATH];
};

#endif
