/*
 * The decoders of kc_decode.h as their callers see them: one whole document,
 * a LIST page fed in chunks, and a WATCH stream of newline-delimited events.
 * Each wraps kc_sax's walker around the handler of kc_decode_schema.c and
 * takes finished objects from kc_decode_layout.c; this file owns only the
 * envelopes (list metadata, the items, watch lines and their type).  The same
 * LIST and WATCH in Kubernetes' protobuf encoding are read by kc_decode_pb.c,
 * which hands its items and events to the delivery here.
 */
#include "kc_decode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_decode_int.h"
#include "kc_log.h"


/* ---- single documents ------------------------------------------------------------- */

int kc_decode_object(const struct kc_type *t, const struct kc_decode_ctx *ctx, const char *json, size_t len,
		     void **ret_obj, struct kc_error *err)
{
	struct dec d;
	struct kc_sax sax;
	char msg[256] = "";
	void *obj = NULL;
	int r;

	kc_dec_init(&d, t, ctx, LAYER_OBJECT);
	kc_dec_reset(&d);
	kc_sax_init(&sax, &t->ops->root, kc_dec_handler, &d);
	kc_sax_begin(&sax);
	r = kc_sax_feed(&sax, json, len, msg, sizeof(msg));
	if (r == 0)
		r = kc_sax_complete(&sax, msg, sizeof(msg));
	if (r == 0)
		obj = kc_dec_finish(&d);
	if (r == 0 && !obj)
		r = d.err ? d.err : -EMSGSIZE;
	if (r != 0)
		kc_error_set(err, r, "%s: %s", t->kind, d.err ? d.errmsg : d.over ? d.overmsg : msg);
	kc_sax_done(&sax);
	kc_dec_done(&d);
	if (r == 0)
		*ret_obj = obj;
	return r;
}

/* An object over a decoder bound is not cached: say which, and why. */
static void warn_over(const struct dec *d)
{
	kc_log_warn("%s %s%s%s: not cached: %s", d->t->kind, d->h.meta.ns, *d->h.meta.ns ? "/" : "",
		    d->h.meta.name, d->overmsg);
}

/* ---- LIST ------------------------------------------------------------------------------ */

#define MAX_LIST_TOKEN 8192  /* resourceVersion and continue tokens */

static char *dup_token(const struct kc_sax_value *v)
{
	return kc_xstrndup(v->s, v->len < MAX_LIST_TOKEN ? v->len : MAX_LIST_TOKEN);
}

/* An item of a LIST is complete in the scratch area: deliver it. */
int kc_dec_list_item_done(struct kc_list_decoder *l)
{
	struct dec *d = &l->d;
	void *obj = kc_dec_finish(d);
	int r;

	if (!obj && d->over) {
		/* Over a bound: not cached, the rest of the LIST goes on. */
		l->skipped++;
		warn_over(d);
		return 0;
	}
	if (!obj)
		return d->err;
	l->items++;
	r = l->cb(obj, l->userdata);
	if (r)
		snprintf(d->errmsg, sizeof(d->errmsg), "item callback failed (%d)", r);
	return r;
}

int kc_dec_layer_event(struct dec *d, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v)
{
	if (d->layer == LAYER_LIST) {
		struct kc_list_decoder *l = (struct kc_list_decoder *)(void *)d;

		switch (id) {
		case L_RV:
			free(l->rv);
			l->rv = dup_token(v);
			break;
		case L_CONT:
			free(l->cont);
			l->cont = dup_token(v);
			break;
		case L_ITEM:
			if (ev == KC_SAX_EV_BEGIN) {
				kc_dec_reset(d);
				break;
			}
			if (ev != KC_SAX_EV_END)
				break;
			return kc_dec_list_item_done(l);
		}
		return 0;
	}
	if (d->layer == LAYER_WATCH) {
		struct kc_watch_decoder *w = (struct kc_watch_decoder *)(void *)d;

		switch (id) {
		case W_TYPE:
			w->have_type = true;
			if (v->len < sizeof(w->type)) {
				memcpy(w->type, v->s, v->len);
				w->type[v->len] = '\0';
			} else {
				strcpy(w->type, "?");
			}
			break;
		case W_OBJ:
			if (ev == KC_SAX_EV_BEGIN) {
				kc_dec_reset(d);
				w->obj_begun = true;
				w->obj_done = false;
			} else if (ev == KC_SAX_EV_END) {
				w->obj_done = true;
			}
			break;
		}
	}
	return 0;
}

struct kc_list_decoder *kc_list_decoder_new(const struct kc_type *t, const struct kc_decode_ctx *ctx,
					    kc_list_item_cb item_cb, void *userdata)
{
	struct kc_list_decoder *l = kc_xcalloc(1, sizeof(*l));

	kc_dec_init(&l->d, t, ctx, LAYER_LIST);
	kc_dec_reset(&l->d);
	kc_sax_init(&l->sax, &t->ops->list_root, kc_dec_handler, &l->d);
	kc_sax_begin(&l->sax);
	l->cb = item_cb;
	l->userdata = userdata;
	return l;
}

static int list_failed(struct kc_list_decoder *l, int r)
{
	if (l->d.err || r > 0 || (r != -EBADMSG && l->d.errmsg[0]))
		snprintf(l->err.msg, sizeof(l->err.msg), "%s list: %s", l->d.t->kind, l->d.errmsg);
	l->error = r;
	return r;
}

int kc_list_decoder_feed(struct kc_list_decoder *l, const char *buf, size_t len)
{
	int r;

	if (l->error)
		return l->error;
	if (l->pb.on)
		return kc_dec_pb_list_feed(l, (const uint8_t *)buf, (const uint8_t *)buf + len);
	r = kc_sax_feed(&l->sax, buf, len, l->err.msg, sizeof(l->err.msg));
	return r ? list_failed(l, r) : 0;
}

int kc_list_decoder_finish(struct kc_list_decoder *l)
{
	int r;

	if (l->error)
		return l->error;
	if (l->pb.on)
		return kc_dec_pb_list_finish(l);
	r = kc_sax_complete(&l->sax, l->err.msg, sizeof(l->err.msg));
	return r ? list_failed(l, r) : 0;
}

const char *kc_list_decoder_resource_version(const struct kc_list_decoder *l)
{
	return l->rv ? l->rv : "";
}

const char *kc_list_decoder_continue(const struct kc_list_decoder *l)
{
	return l->cont ? l->cont : "";
}

size_t kc_list_decoder_skipped(const struct kc_list_decoder *l)
{
	return l->skipped;
}

size_t kc_list_decoder_items(const struct kc_list_decoder *l)
{
	return l->items;
}

const char *kc_list_decoder_error(const struct kc_list_decoder *l)
{
	return l->err.msg;
}

struct kc_list_decoder *kc_list_decoder_free(struct kc_list_decoder *l)
{
	if (!l)
		return NULL;
	kc_sax_done(&l->sax);
	kc_dec_done(&l->d);
	free(l->pb.g.buf);
	free(l->rv);
	free(l->cont);
	free(l);
	return NULL;
}

/* ---- WATCH ------------------------------------------------------------------------------ */

struct kc_watch_decoder *kc_watch_decoder_new(const struct kc_type *t, const struct kc_decode_ctx *ctx,
					      size_t max_line, kc_watch_event_cb cb, void *userdata)
{
	struct kc_watch_decoder *w = kc_xcalloc(1, sizeof(*w));

	kc_dec_init(&w->d, t, ctx, LAYER_WATCH);
	kc_dec_reset(&w->d);
	kc_sax_init(&w->sax, &t->ops->watch_root, kc_dec_handler, &w->d);
	w->cb = cb;
	w->userdata = userdata;
	w->max_line = max_line ? max_line : DEFAULT_MAX_LINE;
	return w;
}

static void start_line(struct kc_watch_decoder *w)
{
	kc_sax_begin(&w->sax);
	w->started = true;
	w->obj_begun = w->obj_done = w->have_type = false;
	w->type[0] = '\0';
	w->d.err = 0;
}

enum kc_watch_type kc_dec_watch_type(const char *s)
{
	if (strcmp(s, "ADDED") == 0)
		return KC_WATCH_ADDED;
	if (strcmp(s, "MODIFIED") == 0)
		return KC_WATCH_MODIFIED;
	if (strcmp(s, "DELETED") == 0)
		return KC_WATCH_DELETED;
	if (strcmp(s, "BOOKMARK") == 0)
		return KC_WATCH_BOOKMARK;
	if (strcmp(s, "ERROR") == 0)
		return KC_WATCH_ERROR;
	return 0;
}

/* A line is complete: finish parsing it and deliver its event. */
static int end_line(struct kc_watch_decoder *w)
{
	char msg[256] = "";
	int r;

	w->started = false;
	r = kc_sax_complete(&w->sax, msg, sizeof(msg));
	if (r)
		return kc_error_set(&w->err, r, "%s watch: %s", w->d.t->kind,
				    w->d.err ? w->d.errmsg : msg);
	return kc_dec_watch_deliver(w);
}

/* An event is decoded (type, and the object in the scratch area): deliver it. */
int kc_dec_watch_deliver(struct kc_watch_decoder *w)
{
	struct kc_watch_event ev = { 0 };
	int r;

	if (!w->have_type)
		return kc_error_set(&w->err, -EBADMSG,
				    "%s watch: event without \"type\"", w->d.t->kind);
	ev.type = kc_dec_watch_type(w->type);
	if (ev.type == 0) {
		w->skipped++;
		return 0;
	}
	if (!w->obj_done)
		return kc_error_set(&w->err, -EBADMSG,
				    "%s watch: %s event without \"object\"", w->d.t->kind, w->type);
	switch (ev.type) {
	case KC_WATCH_ADDED:
	case KC_WATCH_MODIFIED:
	case KC_WATCH_DELETED:
		ev.object = kc_dec_finish(&w->d);
		if (!ev.object && w->d.over) {
			/*
			 * Over a bound: the object is not cached, as a LIST would skip it, so
			 * the event becomes the deletion of any copy the cache holds.
			 */
			warn_over(&w->d);
			ev.object = kc_dec_finish_meta_only(&w->d);
			if (!ev.object)
				return 0;
			ev.type = KC_WATCH_DELETED;
			ev.oversized = true;
		}
		if (!ev.object)
			return kc_error_set(&w->err, w->d.err, "%s watch: %s",
					    w->d.t->kind, w->d.errmsg);
		ev.resource_version = w->d.rv;
		break;
	case KC_WATCH_BOOKMARK:
		ev.resource_version = w->d.rv;
		ev.initial_events_end = w->d.initial_events_end;
		break;
	case KC_WATCH_ERROR:
		ev.resource_version = "";
		ev.status.code = (int)(w->d.st_code > 999 || w->d.st_code < 0 ? 0 : w->d.st_code);
		ev.status.status = kc_xstrdup(w->d.st_status);
		ev.status.reason = kc_xstrdup(w->d.st_reason);
		ev.status.message = kc_xstrdup(w->d.st_message);
		ev.status.retry_after_s = (int)(w->d.st_retry > 86400 || w->d.st_retry < 0 ? 0 : w->d.st_retry);
		break;
	}
	r = w->cb(&ev, w->userdata);
	free(ev.object);
	kc_status_done(&ev.status);
	return r;
}

/* Drops the rest of the current line and, if bytes of this buffer remain
 * unprocessed, everything up to the next newline: after an error or a stop
 * the stream resynchronizes at a line boundary. */
static int stop_feed(struct kc_watch_decoder *w, int r, bool line_ended, size_t left)
{
	w->started = false;
	w->line_len = 0;
	w->discard = !line_ended || left > 0;
	return r;
}

int kc_watch_decoder_feed(struct kc_watch_decoder *w, const char *buf, size_t len)
{
	if (w->pb)
		return kc_dec_pb_watch_feed(w, (const uint8_t *)buf, (const uint8_t *)buf + len);
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;
		size_t adv = nl ? n + 1 : n;
		int r;

		if (w->discard) {
			if (nl) {
				w->discard = false;
				w->line_len = 0;
			}
			buf += adv;
			len -= adv;
			continue;
		}
		/* The bound is checked before feeding: an over-long line is
		 * never buffered, its remainder is discarded as it arrives. */
		if (n > w->max_line - w->line_len) {
			snprintf(w->err.msg, sizeof(w->err.msg), "%s watch: line longer than %zu bytes",
				 w->d.t->kind, w->max_line);
			return stop_feed(w, -EMSGSIZE, nl != NULL, len - adv);
		}
		w->line_len += n;
		if (!w->started) {
			size_t ws = 0;

			while (ws < n && (buf[ws] == ' ' || buf[ws] == '\t' || buf[ws] == '\r'))
				ws++;
			if (ws < n)
				start_line(w);
		}
		if (w->started && n > 0) {
			char m[256] = "";

			r = kc_sax_feed(&w->sax, buf, n, m, sizeof(m));
			if (r) {
				snprintf(w->err.msg, sizeof(w->err.msg), "%s watch: %s", w->d.t->kind,
					 w->d.err ? w->d.errmsg : m);
				return stop_feed(w, r, nl != NULL, len - adv);
			}
		}
		buf += adv;
		len -= adv;
		if (nl) {
			w->line_len = 0;
			if (w->started) {
				r = end_line(w);
				if (r)
					return stop_feed(w, r, true, len);
			}
		}
	}
	return 0;
}

const char *kc_watch_decoder_error(const struct kc_watch_decoder *w)
{
	return w->err.msg;
}

uint64_t kc_watch_decoder_skipped(const struct kc_watch_decoder *w)
{
	return w->skipped;
}

void kc_watch_decoder_reset(struct kc_watch_decoder *w)
{
	w->started = false;
	w->discard = false;
	w->line_len = 0;
	w->pb_error = 0;
	w->fhlen = 0;
	w->fg.got = 0;
	/* A big frame's buffer goes back; a small one is reused. */
	if (w->fg.cap > 64 * 1024) {
		free(w->fg.buf);
		w->fg.buf = NULL;
		w->fg.cap = 0;
	}
}

struct kc_watch_decoder *kc_watch_decoder_free(struct kc_watch_decoder *w)
{
	if (!w)
		return NULL;
	kc_sax_done(&w->sax);
	kc_dec_done(&w->d);
	free(w->fg.buf);
	free(w);
	return NULL;
}

