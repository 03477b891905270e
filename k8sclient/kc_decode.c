/*
 * The decoders of kc_decode.h as their callers see them: one whole document,
 * a LIST page fed in chunks, and a WATCH stream of newline-delimited events,
 * in JSON or (LIST and WATCH) in Kubernetes' protobuf encoding.  Each wraps
 * kc_sax's or kc_pb's walker around the handler of kc_decode_schema.c and
 * takes finished objects from kc_decode_layout.c; this file owns only the
 * envelopes (list metadata, the items, watch lines or frames and their type).
 */
#include "kc_decode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_decode_int.h"
#include "kc_log.h"
#include "kc_pb.h"

#define DEFAULT_MAX_LINE (16u * 1024 * 1024)

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
#define MAX_PB_LIST_META (64u * 1024)  /* a protobuf LIST's ListMeta */

/*
 * A protobuf LIST body, streamed: "k8s\0", then the fields of a runtime.Unknown
 * whose raw field (2) is the list message {1: ListMeta, 2: item, 2: item, ...}.
 * Only one item (or the ListMeta) is held at a time, gathered into buf when a
 * feed cuts it, read in place otherwise; everything else is stepped over.
 */
enum { PL_MAGIC, PL_HEADER, PL_SKIP, PL_GATHER };

/* A protobuf piece (a LIST item, a watch frame) a feed cut, gathered until whole. */
struct gather {
	uint8_t *buf;
	size_t cap, got;
};

/*
 * Takes what [p, lim) holds of a piece of want bytes into g, and returns how
 * many bytes it took.  The buffer grows as the piece begins (got is 0 then),
 * so nothing gathered is lost.
 */
static size_t gather(struct gather *g, size_t want, const uint8_t *p, const uint8_t *lim)
{
	size_t n = (size_t)(lim - p) < want - g->got ? (size_t)(lim - p) : want - g->got;

	if (g->cap < want) {
		g->cap = want;
		free(g->buf);
		g->buf = kc_xmalloc(want);
	}
	memcpy(g->buf + g->got, p, n);
	g->got += n;
	return n;
}

struct pb_list {
	bool on;
	bool in_list;      /* inside Unknown.raw, the list message */
	bool seen_list;
	uint8_t state;
	uint8_t hdr[24];   /* a field header (key and length varints) or the magic, so far */
	unsigned hlen;
	uint32_t num;      /* the field being skipped or gathered */
	uint64_t want;     /* its bytes still to come (PL_SKIP) or in all (PL_GATHER) */
	uint64_t list_left;  /* bytes of the list message not read yet */
	struct gather g;
	size_t max_item;
};

struct kc_list_decoder {
	struct dec d;  /* first: the handler's userdata */
	struct kc_sax sax;
	kc_list_item_cb cb;
	void *userdata;
	size_t items;
	size_t skipped;  /* items over a bound, not delivered */
	char *rv;
	char *cont;
	int error;  /* sticky */
	struct kc_error err;
	struct pb_list pb;
};

struct kc_watch_decoder {
	struct dec d;  /* first: the handler's userdata */
	struct kc_sax sax;
	kc_watch_event_cb cb;
	void *userdata;
	size_t max_line;
	size_t line_len;
	bool started;   /* the current line has non-blank bytes, fed to the parser */
	bool discard;   /* dropping bytes up to the next newline */
	bool obj_begun;
	bool obj_done;
	bool have_type;
	char type[16];
	uint64_t skipped;
	struct kc_error err;
	/* Protobuf: frames of a 4-byte big-endian length and a metav1.WatchEvent. */
	bool pb;
	int pb_error;  /* a frame over max_line: the stream is over (sticky until reset) */
	uint8_t fhdr[4];
	unsigned fhlen;
	uint32_t flen;
	struct gather fg;
};

static char *dup_token(const struct kc_sax_value *v)
{
	return kc_xstrndup(v->s, v->len < MAX_LIST_TOKEN ? v->len : MAX_LIST_TOKEN);
}

/* An item of a LIST is complete in the scratch area: deliver it. */
static int list_item_done(struct kc_list_decoder *l)
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
			return list_item_done(l);
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

void kc_list_decoder_set_protobuf(struct kc_list_decoder *l, size_t max_item)
{
	l->pb.on = true;
	l->pb.max_item = max_item ? max_item : DEFAULT_MAX_LINE;
}

static int pb_list_error(struct kc_list_decoder *l, int r, const char *why)
{
	snprintf(l->err.msg, sizeof(l->err.msg), "%s list: %s", l->d.t->kind, why);
	l->error = r;
	return r;
}

/* A complete field of the list message: its ListMeta or an item. */
static int pb_list_field(struct kc_list_decoder *l, const uint8_t *m, size_t len)
{
	char msg[200];
	int r;

	kc_dec_reset(&l->d);
	l->d.errmsg[0] = '\0';
	r = kc_pb_walk(l->pb.num == 1 ? l->d.t->ops->pb_list_meta : &l->d.t->ops->root, m, len, kc_dec_handler,
		       &l->d, msg, sizeof(msg));
	if (r == 0 && l->pb.num == 2)
		r = list_item_done(l);
	return r ? pb_list_error(l, r, l->d.errmsg[0] ? l->d.errmsg : msg) : 0;
}

/*
 * A field header (key, and length or value) in hdr so far: 1 when complete
 * (num, want set: the bytes that follow it), 0 if more bytes are needed,
 * -EBADMSG if it is malformed.
 */
static int pb_header(struct pb_list *s, uint8_t *wire)
{
	const uint8_t *p = s->hdr, *end = s->hdr + s->hlen;
	uint64_t key, v;
	int r;

	if ((r = kc_pb_varint(&p, end, &key)) != 1)
		return r;
	if (key >> 3 == 0 || key >> 3 > UINT32_MAX)
		return -EBADMSG;
	s->num = (uint32_t)(key >> 3);
	*wire = key & 7;
	switch (*wire) {
	case KC_PB_VARINT:
		s->want = 0;
		return kc_pb_varint(&p, end, &v);
	case KC_PB_I64:
		s->want = 8;
		return 1;
	case KC_PB_I32:
		s->want = 4;
		return 1;
	case KC_PB_LEN:
		return kc_pb_varint(&p, end, &s->want);
	}
	return -EBADMSG;
}

static int pb_list_feed(struct kc_list_decoder *l, const uint8_t *p, const uint8_t *end)
{
	struct pb_list *s = &l->pb;

	while (p < end) {
		bool was_in = s->in_list;
		const uint8_t *start = p;
		const uint8_t *lim = was_in && (uint64_t)(end - p) > s->list_left ? p + s->list_left : end;
		uint8_t wire = 0;
		size_t n;
		int r;

		switch (s->state) {
		case PL_MAGIC:
			while (p < lim && s->hlen < KC_PB_MAGIC_LEN)
				s->hdr[s->hlen++] = *p++;
			if (s->hlen < KC_PB_MAGIC_LEN)
				break;
			if (memcmp(s->hdr, KC_PB_MAGIC, KC_PB_MAGIC_LEN) != 0)
				return pb_list_error(l, -EBADMSG, "protobuf body without the \"k8s\\0\" prefix");
			s->hlen = 0;
			s->state = PL_HEADER;
			break;
		case PL_HEADER:
			r = 0;
			while (p < lim && r == 0 && s->hlen < sizeof(s->hdr)) {
				s->hdr[s->hlen++] = *p++;
				r = pb_header(s, &wire);
			}
			if (r < 0 || (r == 0 && s->hlen == sizeof(s->hdr)))
				return pb_list_error(l, -EBADMSG, "malformed protobuf field header");
			if (r == 0)
				break;
			s->hlen = 0;
			if (!was_in && s->num == 2 && wire == KC_PB_LEN) {
				/* Unknown.raw: the list message itself. */
				s->in_list = s->seen_list = true;
				s->list_left = s->want;
				/* An empty list ends here; the header's bytes were the outer level's. */
				s->in_list = s->list_left > 0;
				start = p;
				was_in = false;
				break;
			}
			if (!was_in && s->num == 3 && wire == KC_PB_LEN && s->want > 0)
				return pb_list_error(l, -EBADMSG, "protobuf body with a contentEncoding");
			if (was_in && wire == KC_PB_LEN && (s->num == 1 || s->num == 2)) {
				size_t bound = s->num == 1 ? MAX_PB_LIST_META : s->max_item;

				if (s->want > s->list_left - (uint64_t)(p - start))
					return pb_list_error(l, -EBADMSG, "protobuf field longer than its list");
				if (s->want > bound) {
					if (s->num == 1)
						return pb_list_error(l, -EMSGSIZE, "ListMeta over 64 KiB");
					/* Not cached, as JSON's bounds leave an item out; the LIST goes on. */
					l->skipped++;
					kc_log_warn("%s list: an item of %llu bytes, over the bound of %zu: not cached",
						    l->d.t->kind, (unsigned long long)s->want, s->max_item);
					s->state = PL_SKIP;
					break;
				}
				s->g.got = 0;
				s->state = PL_GATHER;
				if (s->want == 0) {
					s->state = PL_HEADER;
					r = pb_list_field(l, p, 0);
					if (r)
						return r;
				}
				break;
			}
			s->state = s->want ? PL_SKIP : PL_HEADER;
			break;
		case PL_SKIP:
			n = (size_t)((uint64_t)(lim - p) < s->want ? (uint64_t)(lim - p) : s->want);
			p += n;
			s->want -= n;
			if (s->want == 0)
				s->state = PL_HEADER;
			break;
		case PL_GATHER:
			if (s->g.got == 0 && (uint64_t)(lim - p) >= s->want) {
				/* Whole in this feed: read in place. */
				n = (size_t)s->want;
				p += n;
				s->state = PL_HEADER;
				r = pb_list_field(l, p - n, n);
			} else {
				p += gather(&s->g, (size_t)s->want, p, lim);
				r = 0;
				if (s->g.got == s->want) {
					s->state = PL_HEADER;
					r = pb_list_field(l, s->g.buf, s->g.got);
				}
			}
			if (r)
				return r;
			break;
		}
		if (was_in) {
			s->list_left -= (uint64_t)(p - start);
			if (s->list_left == 0) {
				if (s->state != PL_HEADER || s->hlen)
					return pb_list_error(l, -EBADMSG, "a field cut by the end of the list message");
				s->in_list = false;
			}
		}
	}
	return 0;
}

int kc_list_decoder_feed(struct kc_list_decoder *l, const char *buf, size_t len)
{
	int r;

	if (l->error)
		return l->error;
	if (l->pb.on)
		return pb_list_feed(l, (const uint8_t *)buf, (const uint8_t *)buf + len);
	r = kc_sax_feed(&l->sax, buf, len, l->err.msg, sizeof(l->err.msg));
	return r ? list_failed(l, r) : 0;
}

int kc_list_decoder_finish(struct kc_list_decoder *l)
{
	int r;

	if (l->error)
		return l->error;
	if (l->pb.on) {
		if (l->pb.state != PL_HEADER || l->pb.hlen || l->pb.in_list || !l->pb.seen_list)
			return pb_list_error(l, -EBADMSG, "protobuf LIST body cut short");
		return 0;
	}
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

static enum kc_watch_type watch_type(const char *s)
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

static int deliver(struct kc_watch_decoder *w);

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
	return deliver(w);
}

/* An event is decoded (type, and the object in the scratch area): deliver it. */
static int deliver(struct kc_watch_decoder *w)
{
	struct kc_watch_event ev = { 0 };
	int r;

	if (!w->have_type)
		return kc_error_set(&w->err, -EBADMSG,
				    "%s watch: event without \"type\"", w->d.t->kind);
	ev.type = watch_type(w->type);
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

void kc_watch_decoder_set_protobuf(struct kc_watch_decoder *w, bool on)
{
	w->pb = on;
	w->pb_error = 0;
	w->fhlen = 0;
	w->fg.got = 0;
}

/*
 * One protobuf frame: a metav1.WatchEvent {1: type, 2: {1: raw}} whose raw
 * object has the "k8s\0" envelope; an ERROR event's object is a Status.
 */
static int pb_frame(struct kc_watch_decoder *w, const uint8_t *m, size_t len)
{
	struct kc_pb_reader rd, ext;
	struct kc_pb_field f, g;
	const uint8_t *raw = NULL, *kind, *obj;
	size_t raw_len = 0, kind_len, obj_len;
	char msg[200] = "";
	int n, r;

	w->have_type = w->obj_done = false;
	w->type[0] = '\0';
	kc_pb_reader_init(&rd, m, len);
	while ((n = kc_pb_next(&rd, &f)) == 1) {
		if (f.wire != KC_PB_LEN)
			continue;
		if (f.num == 1) {
			w->have_type = true;
			if (f.len < sizeof(w->type) && !memchr(f.data, '\0', f.len)) {
				memcpy(w->type, f.data, f.len);
				w->type[f.len] = '\0';
			} else {
				strcpy(w->type, "?");
			}
		} else if (f.num == 2) {
			kc_pb_reader_init(&ext, f.data, f.len);
			while ((n = kc_pb_next(&ext, &g)) == 1)
				if (g.num == 1 && g.wire == KC_PB_LEN) {
					raw = g.data;
					raw_len = g.len;
				}
			if (n < 0)
				break;
		}
	}
	if (n < 0)
		return kc_error_set(&w->err, -EBADMSG, "%s watch: malformed protobuf event", w->d.t->kind);
	if (!w->have_type || watch_type(w->type) == 0 || !raw)
		return deliver(w);  /* says what is missing, or skips an unknown type */
	r = kc_pb_unwrap(raw, raw_len, &kind, &kind_len, &obj, &obj_len, msg, sizeof(msg));
	if (r)
		return kc_error_set(&w->err, r, "%s watch: %s", w->d.t->kind, msg);
	kc_dec_reset(&w->d);
	w->d.errmsg[0] = '\0';
	r = kc_pb_walk(watch_type(w->type) == KC_WATCH_ERROR ? w->d.t->ops->pb_status : &w->d.t->ops->root, obj,
		       obj_len, kc_dec_handler, &w->d, msg, sizeof(msg));
	if (r)
		return kc_error_set(&w->err, r, "%s watch: %s", w->d.t->kind, w->d.errmsg[0] ? w->d.errmsg : msg);
	w->obj_done = true;
	return deliver(w);
}

/* Protobuf frames across any chunk boundary: a frame whole in this feed is read in place. */
static int pb_watch_feed(struct kc_watch_decoder *w, const uint8_t *p, const uint8_t *end)
{
	if (w->pb_error)
		return w->pb_error;
	while (p < end) {
		size_t n;
		int r;

		if (w->fhlen < sizeof(w->fhdr)) {
			while (p < end && w->fhlen < sizeof(w->fhdr))
				w->fhdr[w->fhlen++] = *p++;
			if (w->fhlen < sizeof(w->fhdr))
				break;
			w->flen = (uint32_t)w->fhdr[0] << 24 | (uint32_t)w->fhdr[1] << 16 | (uint32_t)w->fhdr[2] << 8 |
				  w->fhdr[3];
			w->fg.got = 0;
			if (w->flen > w->max_line)
				return w->pb_error = kc_error_set(&w->err, -EMSGSIZE,
								  "%s watch: event of %u bytes, over %zu",
								  w->d.t->kind, w->flen, w->max_line);
		}
		if (w->fg.got == 0 && (size_t)(end - p) >= w->flen) {
			n = w->flen;
			p += n;
			w->fhlen = 0;
			r = pb_frame(w, p - n, n);
		} else {
			p += gather(&w->fg, w->flen, p, end);
			r = 0;
			if (w->fg.got == w->flen) {
				w->fhlen = 0;
				w->fg.got = 0;
				r = pb_frame(w, w->fg.buf, w->flen);
			}
		}
		if (r)
			return r;
	}
	return 0;
}

int kc_watch_decoder_feed(struct kc_watch_decoder *w, const char *buf, size_t len)
{
	if (w->pb)
		return pb_watch_feed(w, (const uint8_t *)buf, (const uint8_t *)buf + len);
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

