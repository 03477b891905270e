/*
 * API discovery in the shell (api_discovery.h): the requests and the timer
 * around kc_discovery's pure decoding and choice.  One read at a time: GET
 * /apis asking for aggregated discovery; when the server answers with a plain
 * APIGroupList instead, one GET /apis/resource.k8s.io/VERSION per DRA version
 * it lists, all in parallel.  The choice is made when every answer is in.
 */
#include "api_discovery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_log.h"

#define DEFAULT_INTERVAL_MS (5u * 60u * 1000u)
#define DEFAULT_MIN_REFRESH_MS 5000u
#define RETRY_MIN_MS 2000u
#define MAX_VERSIONS 8 /* DRA versions asked about in one read */

struct api_discovery {
	struct api_discovery_options o;
	uv_timer_t timer;
	struct kc_discovery *reading; /* the read in progress, or NULL */
	struct kc_request *reqs[1 + MAX_VERSIONS];
	unsigned pending; /* requests of the read still out */
	bool failed;      /* a request of the read failed */
	char failure[640];
	bool again;       /* a refresh was asked for while reading */
	bool known;
	bool stopped;
	bool free_when_done; /* freed once the cancelled requests have called back */
	bool warned;      /* the last read failed and was logged */
	uint64_t last_start_ms;
	uint64_t retry_ms;
	struct kc_dra_versions dra;
};

static void on_timer(uv_timer_t *t);

static void arm(struct api_discovery *d, uint64_t delay_ms)
{
	if (!d->stopped)
		uv_timer_start(&d->timer, on_timer, delay_ms, 0);
}

static void log_choice(const struct api_discovery *d)
{
	const struct kc_dra_versions *v = &d->dra;

	if (!v->claims || !v->slices)
		kc_log_info(0, "resource.k8s.io not served; DRA signals off until it is");
	else
		kc_log_info(0, "resource.k8s.io served: ResourceClaims %s, ResourceSlices %s, DeviceTaintRules %s",
			    v->claims, v->slices, v->taint_rules ? v->taint_rules : "not served");
}

/* Every answer of a read is in: choose, tell the owner if that changed, plan the next read. */
static void finish_read(struct api_discovery *d)
{
	struct kc_dra_versions v;
	uint64_t next = d->o.interval_ms;

	if (d->failed) {
		if (!d->warned)
			kc_log_warn("API discovery failed: %s; %s", d->failure,
				    d->known ? "keeping the versions found before" : "DRA signals stay off until it works");
		d->warned = true;
		d->retry_ms = d->retry_ms ? d->retry_ms * 2 : RETRY_MIN_MS;
		if (d->retry_ms > d->o.interval_ms)
			d->retry_ms = d->o.interval_ms;
		next = d->retry_ms;
	} else {
		kc_discovery_dra(d->reading, &v);
		if (d->warned)
			kc_log_info(0, "API discovery works again");
		d->warned = false;
		d->retry_ms = 0;
		if (!d->known || !kc_dra_versions_equal(&v, &d->dra)) {
			d->known = true;
			d->dra = v;
			log_choice(d);
			if (d->o.on_change)
				d->o.on_change(&d->dra, d->o.userdata);
		}
	}
	d->reading = kc_discovery_free(d->reading);
	if (d->again) {
		d->again = false;
		uint64_t since = uv_now(d->o.loop) - d->last_start_ms;

		next = since >= d->o.min_refresh_ms ? 0 : d->o.min_refresh_ms - since;
	}
	arm(d, next);
}

static void note_failure(struct api_discovery *d, const char *what, const struct kc_response *resp)
{
	if (d->failed)
		return;
	d->failed = true;
	if (resp->error)
		snprintf(d->failure, sizeof(d->failure), "GET %s: %s", what,
			 resp->error_message ? resp->error_message : strerror(-resp->error));
	else
		snprintf(d->failure, sizeof(d->failure), "GET %s: HTTP %ld%s%s", what, resp->http_status,
			 resp->status && resp->status->message ? ": " : "",
			 resp->status && resp->status->message ? resp->status->message : "");
}

static void decode_into(struct api_discovery *d, const char *what, const struct kc_response *resp)
{
	struct kc_error err = {{0}};

	if (kc_discovery_decode(d->reading, resp->body, resp->body_len, &err) < 0 && !d->failed) {
		d->failed = true;
		snprintf(d->failure, sizeof(d->failure), "GET %s: %s", what, err.msg);
	}
}

static void forget_request(struct api_discovery *d, struct kc_request *req)
{
	for (size_t i = 0; i < KC_ARRAY_SIZE(d->reqs); i++)
		if (d->reqs[i] == req)
			d->reqs[i] = NULL;
	d->pending--;
}

static void on_closed(uv_handle_t *h);

/* After api_discovery_stop: answers are dropped; the last one frees d if that was asked for. */
static bool after_stop(struct api_discovery *d)
{
	if (!d->stopped)
		return false;
	if (d->pending == 0 && d->free_when_done)
		uv_close((uv_handle_t *)&d->timer, on_closed);
	return true;
}

static void on_version(struct kc_request *req, const struct kc_response *resp, void *ud)
{
	struct api_discovery *d = ud;

	forget_request(d, req);
	if (after_stop(d))
		return;
	/* A version listed a moment ago may be gone already: then it serves nothing. */
	if (resp->error == 0 && resp->http_status == 404)
		;
	else if (resp->error || resp->http_status != 200)
		note_failure(d, "/apis/" KC_DRA_GROUP "/VERSION", resp);
	else
		decode_into(d, "/apis/" KC_DRA_GROUP "/VERSION", resp);
	if (d->pending == 0)
		finish_read(d);
}

static int get(struct api_discovery *d, const char *path, kc_response_cb cb, struct kc_request **ret)
{
	struct kc_request_options ro = {0};

	ro.method = "GET";
	ro.path = path;
	ro.accept = KC_DISCOVERY_ACCEPT;
	ro.retry = true;
	ro.verb = "get";
	ro.resource = "discovery";
	return kc_client_request(d->o.client, &ro, cb, d, ret);
}

static void on_apis(struct kc_request *req, const struct kc_response *resp, void *ud)
{
	struct api_discovery *d = ud;
	const char *un[MAX_VERSIONS];
	size_t n;

	forget_request(d, req);
	if (after_stop(d))
		return;
	if (resp->error || resp->http_status != 200)
		note_failure(d, "/apis", resp);
	else
		decode_into(d, "/apis", resp);
	if (!d->failed) {
		/* A plain APIGroupList: ask each DRA version for its resources. */
		n = kc_discovery_unresolved(d->reading, KC_DRA_GROUP, un, MAX_VERSIONS);
		for (size_t i = 0; i < n && i < MAX_VERSIONS; i++) {
			char *path = kc_xasprintf("/apis/%s/%s", KC_DRA_GROUP, un[i]);
			int r = get(d, path, on_version, &d->reqs[1 + i]);

			free(path);
			if (r < 0) {
				snprintf(d->failure, sizeof(d->failure), "GET /apis/%s/%s: %s", KC_DRA_GROUP, un[i],
					 strerror(-r));
				d->failed = true;
				break;
			}
			d->pending++;
		}
	}
	if (d->pending == 0)
		finish_read(d);
}

static void start_read(struct api_discovery *d)
{
	int r;

	if (d->stopped)
		return;
	if (d->reading) {
		d->again = true;
		return;
	}
	uv_timer_stop(&d->timer);
	d->reading = kc_discovery_new();
	d->failed = false;
	d->failure[0] = '\0';
	d->last_start_ms = uv_now(d->o.loop);
	r = get(d, "/apis", on_apis, &d->reqs[0]);
	if (r < 0) {
		d->reading = kc_discovery_free(d->reading);
		if (r != -ESHUTDOWN)
			kc_log_warn("API discovery: cannot send GET /apis: %s", strerror(-r));
		arm(d, RETRY_MIN_MS);
		return;
	}
	d->pending = 1;
}

static void on_timer(uv_timer_t *t)
{
	start_read(t->data);
}

int api_discovery_new(const struct api_discovery_options *o, struct api_discovery **ret)
{
	struct api_discovery *d = kc_xcalloc(1, sizeof(*d));
	int r;

	d->o = *o;
	if (!d->o.interval_ms)
		d->o.interval_ms = DEFAULT_INTERVAL_MS;
	if (!d->o.min_refresh_ms)
		d->o.min_refresh_ms = DEFAULT_MIN_REFRESH_MS;
	r = uv_timer_init(o->loop, &d->timer);
	if (r < 0) {
		free(d);
		return r;
	}
	d->timer.data = d;
	*ret = d;
	return 0;
}

void api_discovery_start(struct api_discovery *d)
{
	start_read(d);
}

void api_discovery_refresh(struct api_discovery *d, const char *why)
{
	uint64_t since;

	if (!d || d->stopped)
		return;
	if (d->reading) {
		d->again = true;
		return;
	}
	since = uv_now(d->o.loop) - d->last_start_ms;
	kc_log_info(2, "API discovery: reading it again (%s)", why);
	arm(d, d->last_start_ms && since < d->o.min_refresh_ms ? d->o.min_refresh_ms - since : 0);
}

bool api_discovery_known(const struct api_discovery *d)
{
	return d && d->known;
}

const struct kc_dra_versions *api_discovery_dra(const struct api_discovery *d)
{
	return &d->dra;
}

void api_discovery_stop(struct api_discovery *d)
{
	if (!d || d->stopped)
		return;
	d->stopped = true;
	uv_timer_stop(&d->timer);
	for (size_t i = 0; i < KC_ARRAY_SIZE(d->reqs); i++)
		if (d->reqs[i])
			kc_request_cancel(d->reqs[i]);
}

static void on_closed(uv_handle_t *h)
{
	struct api_discovery *d = h->data;

	kc_discovery_free(d->reading);
	free(d);
}

struct api_discovery *api_discovery_free(struct api_discovery *d)
{
	if (!d)
		return NULL;
	api_discovery_stop(d);
	/* Cancelled requests still call back (with d->stopped set): free only when none is out. */
	if (d->pending == 0)
		uv_close((uv_handle_t *)&d->timer, on_closed);
	else
		d->free_when_done = true;
	return NULL;
}
