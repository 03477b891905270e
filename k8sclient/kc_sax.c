/*
 * The schema-driven SAX walker (kc_sax.h).  All state lives in struct
 * kc_sax; yajl calls back into the functions below, which keep a frame
 * stack for the kept containers and a single counter for skipped ones.
 */
#include "kc_sax.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void clear_pending(struct kc_sax *s)
{
	s->pend_str = s->pend_int = s->pend_bool = s->pend_obj = s->pend_arr = NULL;
}

static const struct kc_sax_schema *frame_schema(const struct kc_sax *s, const struct kc_sax_frame *f)
{
	return f->field ? f->field->sub : s->root;
}

static int fail(struct kc_sax *s, int err)
{
	s->error = err;
	return 0;  /* cancels yajl */
}

static int emit(struct kc_sax *s, const struct kc_sax_field *f, enum kc_sax_event ev,
		const struct kc_sax_value *v)
{
	int r = s->handler(s->ud, f->id, ev, v);

	return r ? fail(s, r) : 1;
}

static int on_key(void *ctx, const unsigned char *key, size_t len)
{
	struct kc_sax *s = ctx;
	struct kc_sax_frame *top;

	s->evented = true;

	if (s->skip || s->depth < 0)
		return 1;
	top = &s->st[s->depth];
	if (top->type == KC_SAX_MAP) {
		s->key_ok = len < sizeof(s->key);
		if (s->key_ok) {
			memcpy(s->key, key, len);
			s->key[len] = '\0';
			s->klen = len;
		}
		return 1;
	}
	clear_pending(s);
	for (const struct kc_sax_schema *sc = frame_schema(s, top); sc; sc = sc->next) {
		for (size_t i = 0; i < sc->n; i++) {
			const struct kc_sax_field *f = &sc->fields[i];

			if (f->klen != len || memcmp(f->key, key, len) != 0)
				continue;
			switch (f->kind) {
			case KC_SAX_STR:
				if (!s->pend_str)
					s->pend_str = f;
				break;
			case KC_SAX_INT:
				if (!s->pend_int)
					s->pend_int = f;
				break;
			case KC_SAX_BOOL:
				if (!s->pend_bool)
					s->pend_bool = f;
				break;
			case KC_SAX_OBJ:
			case KC_SAX_MAP:
				if (!s->pend_obj)
					s->pend_obj = f;
				break;
			case KC_SAX_ARR:
				if (!s->pend_arr)
					s->pend_arr = f;
				break;
			}
		}
	}
	return 1;
}

/* Whether a scalar arrives as the value of a kept key; clears the pending keys. */
static const struct kc_sax_field *take(struct kc_sax *s, const struct kc_sax_field *f)
{
	if (s->depth < 0 || s->st[s->depth].type != KC_SAX_OBJ)
		return NULL;
	clear_pending(s);
	return f;
}

static int on_string(void *ctx, const unsigned char *str, size_t len)
{
	struct kc_sax *s = ctx;
	struct kc_sax_value v = { .s = (const char *)str, .len = len };
	const struct kc_sax_field *f;

	s->evented = true;

	if (s->skip || s->depth < 0)
		return 1;
	if (s->st[s->depth].type == KC_SAX_MAP) {
		if (!s->key_ok)
			return 1;
		v.key = s->key;
		v.klen = s->klen;
		return emit(s, s->st[s->depth].field, KC_SAX_EV_ENTRY, &v);
	}
	f = take(s, s->pend_str);
	return f ? emit(s, f, KC_SAX_EV_STR, &v) : 1;
}

/* Accepts only plain integers that fit in int64_t; anything else is a wrong type. */
static bool parse_int(const char *p, size_t len, int64_t *ret)
{
	bool neg = false;
	uint64_t v = 0;
	size_t i = 0;

	if (len && p[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == len)
		return false;
	for (; i < len; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
		return false;
	*ret = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

static int on_number(void *ctx, const char *num, size_t len)
{
	struct kc_sax *s = ctx;
	struct kc_sax_value v = { 0 };
	const struct kc_sax_field *f;

	s->evented = true;

	if (s->skip || s->depth < 0)
		return 1;
	f = take(s, s->pend_int);
	if (!f || !parse_int(num, len, &v.i))
		return 1;
	return emit(s, f, KC_SAX_EV_INT, &v);
}

static int on_bool(void *ctx, int b)
{
	struct kc_sax *s = ctx;
	struct kc_sax_value v = { .b = b != 0 };
	const struct kc_sax_field *f;

	s->evented = true;

	if (s->skip || s->depth < 0)
		return 1;
	f = take(s, s->pend_bool);
	return f ? emit(s, f, KC_SAX_EV_BOOL, &v) : 1;
}

static int on_null(void *ctx)
{
	struct kc_sax *s = ctx;

	s->evented = true;

	if (!s->skip && s->depth >= 0)
		take(s, NULL);
	return 1;
}

static int push(struct kc_sax *s, const struct kc_sax_field *f, uint8_t type)
{
	/* Deeper than any schema: walk it as skipped instead. */
	if (s->depth + 1 >= KC_SAX_MAX_DEPTH) {
		s->skip = 1;
		return 0;
	}
	s->depth++;
	s->st[s->depth].field = f;
	s->st[s->depth].type = type;
	return 1;
}

static int on_start_map(void *ctx)
{
	struct kc_sax *s = ctx;
	struct kc_sax_frame *top;
	const struct kc_sax_field *f;

	s->evented = true;

	if (s->skip) {
		s->skip++;
		return 1;
	}
	if (s->depth < 0) {
		if (s->root_done) {
			s->multiple = true;
			return fail(s, -EBADMSG);
		}
		push(s, NULL, KC_SAX_OBJ);
		return 1;
	}
	top = &s->st[s->depth];
	if (top->type == KC_SAX_ARR) {
		f = top->field;
		if (!push(s, f, KC_SAX_OBJ))
			return 1;
		return emit(s, f, KC_SAX_EV_BEGIN, NULL);
	}
	f = top->type == KC_SAX_OBJ ? s->pend_obj : NULL;
	clear_pending(s);
	if (!f) {
		s->skip = 1;
		return 1;
	}
	if (f->kind == KC_SAX_MAP) {
		s->key_ok = false;
		push(s, f, KC_SAX_MAP);
		return 1;
	}
	if (!push(s, f, KC_SAX_OBJ))
		return 1;
	return emit(s, f, KC_SAX_EV_BEGIN, NULL);
}

static int on_end(struct kc_sax *s)
{
	struct kc_sax_frame *f;

	s->evented = true;
	if (s->skip) {
		s->skip--;
		return 1;
	}
	if (s->depth < 0)
		return 1;
	f = &s->st[s->depth--];
	clear_pending(s);
	if (s->depth < 0)
		s->root_done = true;
	if (f->type == KC_SAX_OBJ && f->field)
		return emit(s, f->field, KC_SAX_EV_END, NULL);
	return 1;
}

static int on_end_map(void *ctx)
{
	return on_end(ctx);
}

static int on_start_array(void *ctx)
{
	struct kc_sax *s = ctx;
	const struct kc_sax_field *f = NULL;

	s->evented = true;

	if (s->skip) {
		s->skip++;
		return 1;
	}
	if (s->depth >= 0 && s->st[s->depth].type == KC_SAX_OBJ)
		f = s->pend_arr;
	clear_pending(s);
	if (!f) {
		s->skip = 1;
		return 1;
	}
	push(s, f, KC_SAX_ARR);
	return 1;
}

static int on_end_array(void *ctx)
{
	return on_end(ctx);
}

static const yajl_callbacks callbacks = {
	.yajl_null = on_null,
	.yajl_boolean = on_bool,
	.yajl_number = on_number,
	.yajl_string = on_string,
	.yajl_start_map = on_start_map,
	.yajl_map_key = on_key,
	.yajl_end_map = on_end_map,
	.yajl_start_array = on_start_array,
	.yajl_end_array = on_end_array,
};

void kc_sax_init(struct kc_sax *s, const struct kc_sax_schema *root, kc_sax_handler h, void *ud)
{
	memset(s, 0, sizeof(*s));
	s->root = root;
	s->handler = h;
	s->ud = ud;
	s->depth = -1;
}

void kc_sax_begin(struct kc_sax *s)
{
	/* A handle that finished its last document cleanly is reused: with
	 * yajl_allow_multiple_values it accepts the next one, which saves an
	 * allocation per watch event. */
	if (s->yajl && (s->error || !s->root_done || s->depth >= 0 || s->skip)) {
		yajl_free(s->yajl);
		s->yajl = NULL;
	}
	if (!s->yajl) {
		s->yajl = yajl_alloc(&callbacks, NULL, s);
		if (!s->yajl)
			abort();  /* yajl only fails when malloc does: our allocation policy */
		yajl_config(s->yajl, yajl_allow_multiple_values, 1);
	}
	s->depth = -1;
	s->skip = 0;
	s->root_done = false;
	s->error = 0;
	s->multiple = false;
	s->quiet = 0;
	clear_pending(s);
}

static int yajl_failed(struct kc_sax *s, yajl_status st, const char *buf, size_t len, char *err,
		       size_t errsize)
{
	unsigned char *msg;

	if (st == yajl_status_client_canceled && s->error) {
		if (s->multiple)
			snprintf(err, errsize, "more than one JSON value");
		return s->error;
	}
	msg = yajl_get_error(s->yajl, 0, (const unsigned char *)buf, len);
	snprintf(err, errsize, "invalid JSON: %s", msg ? (const char *)msg : "parse error");
	if (msg)
		yajl_free_error(s->yajl, msg);
	s->error = -EBADMSG;
	return -EBADMSG;
}

int kc_sax_feed(struct kc_sax *s, const char *buf, size_t len, char *err, size_t errsize)
{
	yajl_status st;

	if (s->error)
		return s->error;
	s->evented = false;
	st = yajl_parse(s->yajl, (const unsigned char *)buf, len);
	if (st != yajl_status_ok)
		return yajl_failed(s, st, buf, len, err, errsize);
	/* yajl buffers a token that spans feeds, without limit.  Feeds that
	 * produce no event at all can only be inside one token (or blanks),
	 * so counting their bytes bounds that buffer. */
	s->quiet = s->evented ? 0 : s->quiet + len;
	if (s->quiet > KC_SAX_MAX_TOKEN) {
		snprintf(err, errsize, "a JSON token longer than %u bytes", KC_SAX_MAX_TOKEN);
		s->error = -EMSGSIZE;
		return -EMSGSIZE;
	}
	return 0;
}

int kc_sax_complete(struct kc_sax *s, char *err, size_t errsize)
{
	yajl_status st;

	if (s->error)
		return s->error;
	st = yajl_complete_parse(s->yajl);
	if (st != yajl_status_ok)
		return yajl_failed(s, st, NULL, 0, err, errsize);
	if (!s->root_done) {
		snprintf(err, errsize, "not a JSON object");
		s->error = -EBADMSG;
		return -EBADMSG;
	}
	return 0;
}

void kc_sax_done(struct kc_sax *s)
{
	if (s && s->yajl) {
		yajl_free(s->yajl);
		s->yajl = NULL;
	}
}
