/*
 * The Event recorder (see events.h).  Two bounded maps: the Events we
 * created, by what makes two occurrences "the same" (object, type, reason,
 * message), holding the Event's name and count; and a token bucket per
 * involved object.  A full map is emptied rather than grown: the worst case
 * is one more new Event, never unbounded memory.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "kc_log.h"
#include "kc_ratelimit.h"
#include "kc_util.h"
#include "strmap.h"

struct events {
	events_send_fn send;
	void *sender;
	uint64_t (*now_ms)(void *);
	void *clock_userdata;
	struct strmap created; /* aggregation key -> struct created */
	struct strmap buckets; /* object key -> struct kc_ratelimit */
};

struct created {
	char *name;
	int64_t count;
};

/* One Event being recorded: what to do with the answer. */
struct record {
	struct events *owner;
	char *key;
	char *ns;
	char *body;	/* the POST body, kept to create the Event anew when a PATCH finds it gone */
	int64_t count;	/* the count a PATCH sets */
	bool patching;
	kc_response_cb done;
	void *userdata;
};

static void created_free(void *v)
{
	struct created *c = v;

	free(c->name);
	free(c);
}

struct events *events_new(events_send_fn send, void *sender, uint64_t (*now_ms)(void *), void *clock_userdata)
{
	struct events *e = kc_xcalloc(1, sizeof(*e));

	e->send = send;
	e->sender = sender;
	e->now_ms = now_ms;
	e->clock_userdata = clock_userdata;
	strmap_init(&e->created, created_free);
	strmap_init(&e->buckets, free);
	return e;
}

struct events *events_free(struct events *e)
{
	if (!e)
		return NULL;
	strmap_done(&e->created);
	strmap_done(&e->buckets);
	free(e);
	return NULL;
}

static void record_free(struct record *r)
{
	free(r->key);
	free(r->ns);
	free(r->body);
	free(r);
}

/* Room for one more entry: a full map starts again empty (see the top of the file). */
static void make_room(struct strmap *m)
{
	if (m->count >= EVENTS_MAX_CACHED) {
		strmap_free_cb free_value = m->free_value;

		strmap_done(m);
		strmap_init(m, free_value);
	}
}

/* The spam filter: whether the object may have one more Event now. */
static bool spam_allows(struct events *e, const struct requests_event *ev)
{
	char *key = kc_xasprintf("%s/%s/%s", ev->ns, ev->name, ev->uid ? ev->uid : "");
	uint64_t now = e->now_ms(e->clock_userdata);
	struct kc_ratelimit *rl = strmap_get(&e->buckets, key);
	bool ok;

	if (!rl) {
		make_room(&e->buckets);
		rl = kc_xcalloc(1, sizeof(*rl));
		kc_ratelimit_init(rl, 1000.0 / EVENTS_SPAM_REFILL_MS, EVENTS_SPAM_BURST, now);
		strmap_put(&e->buckets, key, rl);
	}
	free(key);
	ok = kc_ratelimit_reserve(rl, now) == 0;
	if (!ok)
		kc_ratelimit_unreserve(rl, now);
	return ok;
}

static void on_answer(struct kc_request *req, const struct kc_response *resp, void *userdata);

static void send_or_answer(struct record *r, const struct kc_request_options *o)
{
	int rc = r->owner->send(r->owner->sender, o, on_answer, r);

	if (rc < 0) {
		struct kc_response resp = {.error = rc, .error_message = "request not sent"};

		on_answer(NULL, &resp, r);
	}
}

static void send_post(struct record *r)
{
	struct kc_request_options o = {0};
	char *path = requests_event_path(r->ns);

	r->patching = false;
	o.method = "POST";
	o.path = path;
	o.body = r->body;
	o.body_len = strlen(r->body);
	o.timeout_ms = 5000;
	o.verb = "create";
	o.resource = "events";
	send_or_answer(r, &o);
	free(path);
}

static void send_patch(struct record *r, const char *name, int64_t count)
{
	struct kc_request_options o = {0};
	char *path = kc_xasprintf("/api/v1/namespaces/%s/events/%s", r->ns, name);
	char *body = requests_event_patch_body(count, kc_wall_ms());

	r->patching = true;
	r->count = count;
	o.method = "PATCH";
	o.path = path;
	o.body = body;
	o.body_len = strlen(body);
	o.content_type = "application/strategic-merge-patch+json";
	o.timeout_ms = 5000;
	o.verb = "patch";
	o.resource = "events";
	send_or_answer(r, &o);
	free(path);
	free(body);
}

/* The name the API server gave the Event we created (it echoes the object). */
static char *created_name(const struct kc_response *resp)
{
	json_t *j = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	const char *name = json_string_value(json_object_get(json_object_get(j, "metadata"), "name"));
	char *ret = name && *name ? kc_xstrdup(name) : NULL;

	json_decref(j);
	return ret;
}

static void on_answer(struct kc_request *req, const struct kc_response *resp, void *userdata)
{
	struct record *r = userdata;
	struct events *e = r->owner;
	bool ok = !resp->error && resp->http_status >= 200 && resp->http_status < 300;

	if (r->patching && resp->http_status == 404) {
		/* Our Event expired or was deleted: create it anew, as client-go does. */
		strmap_remove(&e->created, r->key);
		send_post(r);
		return;
	}
	if (ok && r->patching) {
		struct created *c = strmap_get(&e->created, r->key);

		if (c)
			c->count = r->count;
	} else if (ok) {
		char *name = created_name(resp);

		if (name) {
			struct created *c = kc_xcalloc(1, sizeof(*c)), *old;

			c->name = name;
			c->count = 1;
			make_room(&e->created);
			old = strmap_put(&e->created, r->key, c);
			if (old)
				created_free(old);
		}
	}
	if (r->done)
		r->done(req, resp, r->userdata);
	record_free(r);
}

void events_record(struct events *e, const struct requests_event *ev, kc_response_cb done, void *userdata)
{
	struct record *r;
	struct created *c;

	if (!spam_allows(e, ev)) {
		struct kc_response resp = {.error = EVENTS_DROPPED, .error_message = "dropped by the spam filter"};

		kc_log_info(2, "Event %s on %s/%s dropped by the client-side spam filter", ev->reason, ev->ns,
			    ev->name);
		if (done)
			done(NULL, &resp, userdata);
		return;
	}
	r = kc_xcalloc(1, sizeof(*r));
	r->owner = e;
	r->key = kc_xasprintf("%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", ev->ns, ev->name, ev->uid ? ev->uid : "", ev->type,
			      ev->reason, ev->message);
	r->ns = kc_xstrdup(ev->ns);
	r->body = requests_event_body(ev);
	r->done = done;
	r->userdata = userdata;
	c = strmap_get(&e->created, r->key);
	if (c)
		send_patch(r, c->name, c->count + 1);
	else
		send_post(r);
}
