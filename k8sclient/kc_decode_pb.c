/*
 * The decoders' protobuf streams (kc_decode.h, kc_pb.h): a LIST body read as it
 * arrives, one item held at a time, and WATCH frames.  The JSON side and what
 * both share (delivering an item or an event) are in kc_decode.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_decode_int.h"
#include "kc_log.h"
#include "kc_pb.h"

#define MAX_PB_LIST_META (64u * 1024)  /* a protobuf LIST's ListMeta */

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
		r = kc_dec_list_item_done(l);
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

int kc_dec_pb_list_feed(struct kc_list_decoder *l, const uint8_t *p, const uint8_t *end)
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

int kc_dec_pb_list_finish(struct kc_list_decoder *l)
{
	if (l->pb.state != PL_HEADER || l->pb.hlen || l->pb.in_list || !l->pb.seen_list)
		return pb_list_error(l, -EBADMSG, "protobuf LIST body cut short");
	return 0;
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
	enum kc_watch_type type;
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
	type = w->have_type ? kc_dec_watch_type(w->type) : 0;
	if (!type || !raw)
		return kc_dec_watch_deliver(w);  /* says what is missing, or skips an unknown type */
	r = kc_pb_unwrap(raw, raw_len, &kind, &kind_len, &obj, &obj_len, msg, sizeof(msg));
	if (r)
		return kc_error_set(&w->err, r, "%s watch: %s", w->d.t->kind, msg);
	kc_dec_reset(&w->d);
	w->d.errmsg[0] = '\0';
	r = kc_pb_walk(type == KC_WATCH_ERROR ? w->d.t->ops->pb_status : &w->d.t->ops->root, obj, obj_len,
		       kc_dec_handler, &w->d, msg, sizeof(msg));
	if (r)
		return kc_error_set(&w->err, r, "%s watch: %s", w->d.t->kind, w->d.errmsg[0] ? w->d.errmsg : msg);
	w->obj_done = true;
	return kc_dec_watch_deliver(w);
}

/* Protobuf frames across any chunk boundary: a frame whole in this feed is read in place. */
int kc_dec_pb_watch_feed(struct kc_watch_decoder *w, const uint8_t *p, const uint8_t *end)
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
