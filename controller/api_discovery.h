/*
 * API discovery for the shell: reads what the API server serves (GET /apis,
 * aggregated discovery where the server has it, else the plain group list and
 * then /apis/resource.k8s.io/VERSION for each DRA version) at start, every
 * interval, and soon after api_discovery_refresh() (a 404 on a DRA LIST or
 * WATCH), and chooses the DRA versions with kc_discovery.  The owner is told
 * when the choice changes, so DRA reflectors start when the API appears, move
 * to a newer version, and stop when it goes.  A failed read keeps the last
 * choice and is retried with backoff.
 */
#ifndef API_DISCOVERY_H
#define API_DISCOVERY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "kc_discovery.h"
#include "kc_http.h"

struct api_discovery;

/* The choice changed (or was made for the first time); v is borrowed. */
typedef void (*api_discovery_cb)(const struct kc_dra_versions *v, void *userdata);

struct api_discovery_options {
	uv_loop_t *loop;
	struct kc_client *client;  /* borrowed; must outlive the discovery */
	uint64_t interval_ms;      /* 0 = 5 minutes */
	uint64_t min_refresh_ms;   /* the least time between two reads after 404s; 0 = 5 s */
	api_discovery_cb on_change;
	void *userdata;
};

/* Returns 0 or a uv error; reads nothing until started. */
int api_discovery_new(const struct api_discovery_options *o, struct api_discovery **ret);
/* The first read, now; then every interval. */
void api_discovery_start(struct api_discovery *d);
/* Reads again soon (at most once per min_refresh_ms); why is logged at -v 2. */
void api_discovery_refresh(struct api_discovery *d, const char *why);
/* Whether a read has succeeded yet (before that, nothing is served as far as we know). */
bool api_discovery_known(const struct api_discovery *d);
/* The current choice (all NULL before the first read); borrowed, valid until the next change.
 * Its taint_rules is the DeviceTaintRule version for fencing. */
const struct kc_dra_versions *api_discovery_dra(const struct api_discovery *d);
/* Cancels its requests and its timer; no callback runs afterwards. */
void api_discovery_stop(struct api_discovery *d);
/* Stops and frees (the timer's memory goes in its close callback); accepts NULL; returns NULL. */
struct api_discovery *api_discovery_free(struct api_discovery *d);

#endif
