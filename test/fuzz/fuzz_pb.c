/*
 * libFuzzer target for the protobuf decoders (kc_pb.h): a LIST body
 * (kc_list_decoder_* after kc_list_decoder_set_protobuf), a WATCH stream of
 * length-prefixed frames (kc_watch_decoder_* after
 * kc_watch_decoder_set_protobuf) and Status bodies (kc_status_decode), for
 * pods and nodes, the kinds read from protobuf.
 *
 * Input: byte 0 chooses
 *   bits 0-1  what the body is: 0 a LIST body, 1 a WATCH stream, 2 a Status
 *             body, 3 an object body as a GET returns it;
 *   bit 2     pod (0) or node (1);
 *   bit 3     a small bound (SMALL_BOUND bytes): max_item of the LIST, or
 *             max_line of the WATCH;
 *   bits 4-6  an item or event at which the callback stops (0 = never);
 *   bit 7     the device and condition filters of kc_decode_opts on;
 * then the chunking header of fuzz_common.h, whose byte's bits 4-5 (unused
 * by the chunking) choose the decode options (fuzz_opts); the rest is the body.
 *
 * A Status body goes through kc_status_decode (with fuzz_status's checks)
 * and, wrapped by this target as the object of an ERROR frame, through the
 * watch decoder; where both accept it, they must agree on the code and
 * retryAfterSeconds.  An object body is wrapped as an ADDED, a MODIFIED, a
 * DELETED and a BOOKMARK frame: a one-object stream the fuzzer need not
 * frame itself; its raw object is also made the one item of a LIST body,
 * which must give what the ADDED event gives.
 *
 * Every stream is decoded in one piece and in the chosen chunks, and up to the
 * first non-zero return both runs must deliver the same items or events (the
 * canonical dumps of fuzz_common.h, which check the object invariants on the
 * way) and stop with the same result.  A LIST must also agree on
 * resourceVersion, continue and the counts, and keep returning its first
 * error.  After an error or a stop the chunked WATCH run calls
 * kc_watch_decoder_reset and feeds the rest as a new stream (a protobuf
 * stream cannot resynchronize, a new one must start clean); those events are
 * checked, not compared.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "kc_decode.h"
#include "kc_intern.h"
#include "kc_log.h"
#include "kc_pb.h"
#include "kc_status.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STOP_CODE 66
#define SMALL_BOUND 600

enum mode { M_LIST, M_WATCH, M_STATUS, M_OBJECT };

struct run {
	FILE *f; /* items or events before the first non-zero return */
	char *text;
	size_t text_len;
	FILE *sink; /* WATCH: events after it (checked, not compared) */
	const struct kc_type *t;
	struct kc_intern *intern;
	const struct kc_decode_opts *opts;
	unsigned count;	  /* items or events delivered */
	unsigned stop_at; /* 1-based item or event that makes the callback return STOP_CODE; 0 = never */
	bool failed;	  /* a feed returned non-zero */
	int r;		  /* that first return (LIST: or finish's) */
	uint64_t skipped; /* the decoder's skipped count at that point (or the end) */
	bool take;	  /* WATCH: take ownership of objects (else leave them to the decoder) */
	/* LIST */
	char *rv, *cont;
	/* WATCH: the first ERROR event's code and retry, for the cross-check with kc_status_decode */
	bool have_error;
	int error_code, error_retry;
	/* WATCH: where the first event's object dump starts in text (its line
	 * before may hold any resourceVersion, newlines too), and its oversized */
	long first_obj_at;
	bool first_oversized;
};

static void check_str(const char *s)
{
	FUZZ_CHECK(s != NULL);
	(void)strlen(s);
}

/* ---- the device and condition filters (bit 7) ---------------------------------------- */

static bool is_device(const char *resource, void *userdata)
{
	(void)userdata;
	check_str(resource);
	return strstr(resource, "gpu") != NULL || strncmp(resource, "claim:", 6) == 0;
}

static bool keep_condition(const char *type, void *userdata)
{
	(void)userdata;
	check_str(type);
	return strcmp(type, "Ready") != 0 && strcmp(type, "MemoryPressure") != 0;
}

/* ---- LIST ------------------------------------------------------------------------------ */

static int on_item(void *obj, void *userdata)
{
	struct run *run = userdata;

	fuzz_dump_object(run->f, run->t, run->intern, run->opts, obj);
	fprintf(run->f, "--\n");
	kc_object_free(obj);
	if (++run->count == run->stop_at)
		return STOP_CODE;
	return 0;
}

static void decode_list(struct run *run, const struct kc_decode_ctx *ctx, size_t max_item, const uint8_t *body,
			size_t len, struct fuzz_chunks *c)
{
	struct kc_list_decoder *l;
	size_t off = 0;
	int r = 0;

	run->f = open_memstream(&run->text, &run->text_len);
	FUZZ_CHECK(run->f != NULL);
	l = kc_list_decoder_new(run->t, ctx, on_item, run);
	kc_list_decoder_set_protobuf(l, max_item);
	while (off < len) {
		size_t n = c ? fuzz_chunks_next(c, len - off) : len - off;
		int fr = kc_list_decoder_feed(l, (const char *)body + off, n);

		off += n;
		if (fr && !r)
			r = fr;
		/* Errors are sticky: feeding on must keep returning the first one. */
		if (r)
			FUZZ_CHECK(fr == r);
	}
	if (!r)
		r = kc_list_decoder_finish(l);
	else
		FUZZ_CHECK(kc_list_decoder_finish(l) == r);
	if (r) {
		const char *msg = kc_list_decoder_error(l);

		FUZZ_CHECK(r == STOP_CODE || r == -EBADMSG || r == -EMSGSIZE);
		FUZZ_CHECK(msg != NULL && strlen(msg) < 512);
		/* A decoding error says why (a stop is the callback's own). */
		if (r != STOP_CODE)
			FUZZ_CHECK(msg[0] != '\0');
	}
	run->failed = r != 0;
	run->r = r;
	run->rv = kc_xstrdup(kc_list_decoder_resource_version(l));
	run->cont = kc_xstrdup(kc_list_decoder_continue(l));
	FUZZ_CHECK(kc_list_decoder_items(l) == run->count);
	run->skipped = kc_list_decoder_skipped(l);
	kc_list_decoder_free(l);
	fclose(run->f);
}

/* ---- WATCH ------------------------------------------------------------------------------ */

static int on_event(struct kc_watch_event *ev, void *userdata)
{
	struct run *run = userdata;
	FILE *f = run->failed ? run->sink : run->f;

	FUZZ_CHECK(ev->type >= KC_WATCH_ADDED && ev->type <= KC_WATCH_ERROR);
	check_str(ev->resource_version);
	fprintf(f, "event %d rv=%s end=%d over=%d\n", ev->type, ev->resource_version, ev->initial_events_end,
		ev->oversized);
	switch (ev->type) {
	case KC_WATCH_ADDED:
	case KC_WATCH_MODIFIED:
	case KC_WATCH_DELETED:
		FUZZ_CHECK(ev->object != NULL);
		FUZZ_CHECK(!ev->oversized || ev->type == KC_WATCH_DELETED);
		/* Protobuf strings holding NUL are dropped: the text is the whole resourceVersion. */
		FUZZ_CHECK(kc_decode_rv_key(ev->resource_version, strlen(ev->resource_version)) ==
			   ((struct kc_meta *)ev->object)->rv_key);
		if (run->count == 0 && f == run->f) {
			FUZZ_CHECK(fflush(f) == 0);
			run->first_obj_at = ftell(f);
			run->first_oversized = ev->oversized;
		}
		fuzz_dump_object(f, run->t, run->intern, run->opts, ev->object);
		if (run->take) {
			kc_object_free(ev->object);
			ev->object = NULL;
		}
		break;
	case KC_WATCH_BOOKMARK:
		FUZZ_CHECK(ev->object == NULL);
		break;
	case KC_WATCH_ERROR:
		FUZZ_CHECK(ev->object == NULL);
		check_str(ev->status.status);
		check_str(ev->status.reason);
		check_str(ev->status.message);
		FUZZ_CHECK(ev->status.code >= 0 && ev->status.code <= 999);
		FUZZ_CHECK(ev->status.retry_after_s >= 0 && ev->status.retry_after_s <= 86400);
		FUZZ_CHECK(ev->status.n_causes == 0 || ev->status.causes != NULL);
		fprintf(f, "status %d %s %s %s retry=%d\n", ev->status.code, ev->status.status, ev->status.reason,
			ev->status.message, ev->status.retry_after_s);
		if (!run->failed && !run->have_error) {
			run->have_error = true;
			run->error_code = ev->status.code;
			run->error_retry = ev->status.retry_after_s;
		}
		break;
	}
	if (++run->count == run->stop_at)
		return STOP_CODE;
	return 0;
}

static void record(struct run *run, struct kc_watch_decoder *w, int r)
{
	const char *msg;

	if (run->failed || r == 0)
		return;
	run->failed = true;
	run->r = r;
	run->skipped = kc_watch_decoder_skipped(w);
	FUZZ_CHECK(r == STOP_CODE || r == -EBADMSG || r == -EMSGSIZE);
	if (r != STOP_CODE) {
		msg = kc_watch_decoder_error(w);
		FUZZ_CHECK(msg != NULL && msg[0] != '\0' && strlen(msg) < 512);
	}
}

static void decode_watch(struct run *run, const struct kc_decode_ctx *ctx, size_t max_line, const uint8_t *buf,
			 size_t len, struct fuzz_chunks *c)
{
	struct kc_watch_decoder *w;
	char *sink_text = NULL;
	size_t sink_len = 0, off = 0;

	run->f = open_memstream(&run->text, &run->text_len);
	run->sink = open_memstream(&sink_text, &sink_len);
	FUZZ_CHECK(run->f != NULL && run->sink != NULL);
	w = kc_watch_decoder_new(run->t, ctx, max_line, on_event, run);
	kc_watch_decoder_set_protobuf(w, true);
	if (!c) {
		record(run, w, kc_watch_decoder_feed(w, (const char *)buf, len));
	} else {
		while (off < len) {
			size_t n = fuzz_chunks_next(c, len - off);
			int r = kc_watch_decoder_feed(w, (const char *)buf + off, n);

			record(run, w, r);
			off += n;
			/* The stream is over: what follows is read as a new one. */
			if (r)
				kc_watch_decoder_reset(w);
		}
	}
	if (!run->failed)
		run->skipped = kc_watch_decoder_skipped(w);
	kc_watch_decoder_free(w);
	fclose(run->f);
	fclose(run->sink);
	free(sink_text);
}

/* ---- frames built by the target ---------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Appends the frame of a metav1.WatchEvent {1: type, 2: {1: raw}} to out at *len. */
static void put_frame(uint8_t *out, size_t *len, const char *type, const uint8_t *raw, size_t raw_len)
{
	uint8_t ext_hdr[12], raw_hdr[12];
	size_t tlen = strlen(type), n_raw_hdr, n_ext_hdr, ev_len;
	uint8_t *p = out + *len + 4;

	raw_hdr[0] = 0x0a; /* field 1, LEN */
	n_raw_hdr = 1 + put_varint(raw_hdr + 1, raw_len);
	ext_hdr[0] = 0x12; /* field 2, LEN */
	n_ext_hdr = 1 + put_varint(ext_hdr + 1, n_raw_hdr + raw_len);
	ev_len = 2 + tlen + n_ext_hdr + n_raw_hdr + raw_len;
	out[*len] = (uint8_t)(ev_len >> 24);
	out[*len + 1] = (uint8_t)(ev_len >> 16);
	out[*len + 2] = (uint8_t)(ev_len >> 8);
	out[*len + 3] = (uint8_t)ev_len;
	*p++ = 0x0a; /* field 1, LEN: the type */
	*p++ = (uint8_t)tlen;
	memcpy(p, type, tlen);
	p += tlen;
	memcpy(p, ext_hdr, n_ext_hdr);
	p += n_ext_hdr;
	memcpy(p, raw_hdr, n_raw_hdr);
	p += n_raw_hdr;
	if (raw_len)
		memcpy(p, raw, raw_len);
	p += raw_len;
	*len = (size_t)(p - out);
}

/* A stream of one frame per type, each with body as its object (a new buffer). */
static uint8_t *wrap(const char *const *types, size_t n_types, const uint8_t *body, size_t len, size_t *ret_len)
{
	uint8_t *out = kc_xmalloc(n_types * (len + 48));

	*ret_len = 0;
	for (size_t i = 0; i < n_types; i++)
		put_frame(out, ret_len, types[i], body, len);
	return out;
}

/*
 * An object body's raw object is also the one item of a LIST body built
 * around it: read there, it must give what its ADDED event gives (the same
 * object, the same error, or left out where the event stands for a deletion).
 */
static void check_list_item(const struct kc_decode_ctx *ctx, const struct run *proto, const uint8_t *body,
			    size_t len)
{
	static const char *const added[] = {"ADDED"};
	const uint8_t *kind, *raw;
	size_t kind_len, raw_len, frame_len, list_len = 0, item_len;
	struct run ev = *proto, item = *proto;
	uint8_t *frame, *list, hdr[10];
	const char *dump;
	char err[128];

	if (kc_pb_unwrap(body, len, &kind, &kind_len, &raw, &raw_len, err, sizeof(err)) != 0)
		return;
	/* "k8s\0", Unknown {2: the list message {2: the item}} */
	list = kc_xmalloc(raw_len + 32);
	memcpy(list, KC_PB_MAGIC, KC_PB_MAGIC_LEN);
	list_len = KC_PB_MAGIC_LEN;
	list[list_len++] = 0x12;
	item_len = 1 + put_varint(hdr, raw_len);
	list_len += put_varint(list + list_len, item_len + raw_len);
	list[list_len++] = 0x12;
	list_len += put_varint(list + list_len, raw_len);
	if (raw_len)
		memcpy(list + list_len, raw, raw_len);
	list_len += raw_len;
	frame = wrap(added, 1, body, len, &frame_len);
	ev.stop_at = item.stop_at = 0;
	decode_watch(&ev, ctx, 0, frame, frame_len, NULL);
	decode_list(&item, ctx, 0, list, list_len, NULL);
	if (ev.failed || item.r) {
		FUZZ_CHECK(ev.failed && ev.r == item.r);
	} else if (ev.count == 0) {
		/* Over a bound, without even a name to delete: nothing to say. */
		FUZZ_CHECK(item.count == 0 && item.skipped == 1);
	} else {
		FUZZ_CHECK(ev.count == 1 && ev.first_obj_at > 0 && (size_t)ev.first_obj_at <= ev.text_len);
		dump = ev.text + ev.first_obj_at;
		if (ev.first_oversized) {
			FUZZ_CHECK(item.count == 0 && item.skipped == 1);
		} else if (item.count != 1 || item.text_len != strlen(dump) + 3 ||
			   memcmp(item.text, dump, item.text_len - 3) != 0) {
			fprintf(stderr, "an object as an ADDED event and as a LIST item:\n--- event\n%s--- item\n%s",
				ev.text, item.text);
			abort();
		}
	}
	free(ev.text);
	free(item.text);
	free(item.rv);
	free(item.cont);
	free(frame);
	free(list);
}

/* ---- Status bodies ------------------------------------------------------------------------ */

static bool status_is_zero(const struct kc_status *s)
{
	static const struct kc_status zero;

	return memcmp(s, &zero, sizeof(zero)) == 0;
}

/* fuzz_status's checks; 0 and the status decoded, or -EBADMSG. */
static int status_decode(const uint8_t *body, size_t len, struct kc_status *s)
{
	int r;

	memset(s, 0xa5, sizeof(*s));
	r = kc_status_decode((const char *)body, len, s);
	if (r != 0) {
		FUZZ_CHECK(r == -EBADMSG);
		FUZZ_CHECK(status_is_zero(s));
		return r;
	}
	check_str(s->status);
	check_str(s->reason);
	check_str(s->message);
	FUZZ_CHECK(s->n_causes <= 64);
	FUZZ_CHECK(s->n_causes == 0 || s->causes != NULL);
	for (size_t i = 0; i < s->n_causes; i++) {
		check_str(s->causes[i].reason);
		check_str(s->causes[i].message);
		check_str(s->causes[i].field);
	}
	FUZZ_CHECK(kc_status_has_cause(s, "DisruptionBudget") == 0 || s->n_causes > 0);
	return 0;
}

/* ---- the two runs ---------------------------------------------------------------------------- */

static void run_done(struct run *run)
{
	free(run->text);
	free(run->rv);
	free(run->cont);
}

static void mismatch(const char *what, const struct run *whole, const struct run *split)
{
	fprintf(stderr,
		"whole/chunked mismatch (%s): failed %d/%d r %d/%d count %u/%u skipped %llu/%llu rv %s/%s cont %s/%s\n"
		"--- whole\n%s--- chunked\n%s",
		what, whole->failed, split->failed, whole->r, split->r, whole->count, split->count,
		(unsigned long long)whole->skipped, (unsigned long long)split->skipped, whole->rv ? whole->rv : "",
		split->rv ? split->rv : "", whole->cont ? whole->cont : "", split->cont ? split->cont : "",
		whole->text, split->text);
	abort();
}

/* The warnings of items over a bound are formatted, as in production, but not
 * printed: at thousands of runs a second they would drown libFuzzer's output. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FILE *null = fopen("/dev/null", "w");

	(void)argc;
	(void)argv;
	FUZZ_CHECK(null != NULL);
	kc_log_setup(0, KC_LOG_TEXT, null);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const error_type[] = {"ERROR"};
	static const char *const object_types[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
	struct fuzz_chunks chunks;
	struct kc_decode_ctx ctx;
	struct kc_decode_opts opts;
	const struct kc_decode_opts *base;
	struct kc_status status;
	struct run whole, split;
	const uint8_t *stream;
	uint8_t *wrapped = NULL;
	size_t stream_len, bound;
	bool have_status = false;
	enum mode mode;
	uint8_t sel;

	if (size < 2)
		return 0;
	sel = data[0];
	base = fuzz_opts((uint8_t)(data[1] >> 4));
	data++;
	size--;
	if (!fuzz_chunks_init(&chunks, &data, &size))
		return 0;
	/* A protobuf string holding NUL is dropped, never cut: the checks that need strlen hold. */
	fuzz_input_has_nul = false;
	mode = (enum mode)(sel & 3);
	if (base)
		opts = *base;
	else
		memset(&opts, 0, sizeof(opts));
	if (sel & 0x80) {
		opts.is_device = is_device;
		opts.keep_condition = keep_condition;
	}
	ctx.opts = base || (sel & 0x80) ? &opts : NULL;
	ctx.intern = kc_intern_new();
	bound = (sel & 8) ? SMALL_BOUND : 0;

	memset(&whole, 0, sizeof(whole));
	whole.t = (sel & 4) ? &kc_type_node : &kc_type_pod;
	FUZZ_CHECK(kc_type_reads_protobuf(whole.t));
	whole.intern = ctx.intern;
	whole.opts = ctx.opts;
	whole.stop_at = (sel >> 4) & 7;
	whole.take = (size & 1) != 0;
	split = whole;
	split.take = !whole.take;

	stream = data;
	stream_len = size;
	if (mode == M_STATUS) {
		have_status = status_decode(data, size, &status) == 0;
		stream = wrapped = wrap(error_type, 1, data, size, &stream_len);
	} else if (mode == M_OBJECT) {
		stream = wrapped = wrap(object_types, 4, data, size, &stream_len);
		check_list_item(&ctx, &whole, data, size);
	}

	if (mode == M_LIST) {
		decode_list(&whole, &ctx, bound, stream, stream_len, NULL);
		decode_list(&split, &ctx, bound, stream, stream_len, &chunks);
		if (whole.r != split.r || whole.count != split.count || whole.skipped != split.skipped ||
		    strcmp(whole.text, split.text) != 0 || strcmp(whole.rv, split.rv) != 0 ||
		    strcmp(whole.cont, split.cont) != 0)
			mismatch("LIST", &whole, &split);
	} else {
		decode_watch(&whole, &ctx, bound, stream, stream_len, NULL);
		decode_watch(&split, &ctx, bound, stream, stream_len, &chunks);
		/* A frame is bounded by its header and read whole: the same result, exactly. */
		if (whole.failed != split.failed || whole.r != split.r || whole.skipped != split.skipped ||
		    strcmp(whole.text, split.text) != 0)
			mismatch("WATCH", &whole, &split);
	}

	/*
	 * The same protobuf Status read by kc_status_decode and, as an ERROR event's
	 * object, by the schema walker: what the event keeps (a code in 1..999, a
	 * retry in 1..86400, else 0) must be what kc_status_decode read.
	 */
	if (have_status && whole.have_error && size >= 4 && memcmp(data, "k8s\0", 4) == 0) {
		if ((whole.error_code != 0 && whole.error_code != status.code) ||
		    (whole.error_retry != 0 && whole.error_retry != status.retry_after_s)) {
			fprintf(stderr, "Status: kc_status_decode code %d retry %d, ERROR event code %d retry %d\n",
				status.code, status.retry_after_s, whole.error_code, whole.error_retry);
			abort();
		}
	}
	if (have_status) {
		kc_status_done(&status);
		FUZZ_CHECK(status_is_zero(&status));
	}
	free(wrapped);
	run_done(&whole);
	run_done(&split);
	kc_intern_free(ctx.intern);
	return 0;
}
