/*
 * libFuzzer target for the WATCH stream decoder (kc_watch_decoder_*), all
 * four kinds.
 *
 * Input: byte 0 chooses the kind (bits 0-1), the decode options (bits 2-3),
 * an event at which the callback stops the feed (bits 4-6, 0 = never) and a
 * small max_line (bit 7) so that the over-long-line path is reached; then
 * the chunking header of fuzz_common.h; the rest is the stream.
 *
 * The stream is decoded in one piece and in the chosen chunks.  Up to the
 * first non-zero return of kc_watch_decoder_feed both runs must deliver the
 * same events (type, resourceVersion, the object's canonical dump, the
 * Status of ERROR events) and stop on the same kind of result.  After that
 * the chunked run goes on feeding the rest, so resynchronization after an
 * error and kc_watch_decoder_reset are exercised too; those events are
 * checked for invariants but not compared.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "kc_decode.h"
#include "kc_intern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STOP_CODE 55
#define SMALL_MAX_LINE 300

struct run {
	FILE *f; /* events before the first error */
	char *text;
	size_t text_len;
	FILE *sink; /* events after it (checked, not compared) */
	const struct kc_type *t;
	struct kc_intern *intern;
	const struct kc_decode_opts *opts;
	unsigned events;
	unsigned stop_at; /* 1-based event that makes the callback return STOP_CODE; 0 = never */
	bool failed;	  /* a feed returned non-zero */
	int r;		  /* that first return */
	uint64_t skipped; /* kc_watch_decoder_skipped() at that point (or the end) */
	bool take;	  /* take ownership of objects (else leave them to the decoder) */
};

static void check_str(const char *s)
{
	FUZZ_CHECK(s != NULL);
	(void)strlen(s);
}

static int on_event(struct kc_watch_event *ev, void *userdata)
{
	struct run *run = userdata;
	FILE *f = run->failed ? run->sink : run->f;

	FUZZ_CHECK(ev->type >= KC_WATCH_ADDED && ev->type <= KC_WATCH_ERROR);
	check_str(ev->resource_version);
	fprintf(f, "event %d rv=%s\n", ev->type, ev->resource_version);
	switch (ev->type) {
	case KC_WATCH_ADDED:
	case KC_WATCH_MODIFIED:
	case KC_WATCH_DELETED:
		FUZZ_CHECK(ev->object != NULL);
		/* The object keeps the key of the text the event carries (strlen cannot see past a NUL). */
		FUZZ_CHECK(fuzz_input_has_nul ||
			   kc_decode_rv_key(ev->resource_version, strlen(ev->resource_version)) ==
			   ((struct kc_meta *)ev->object)->rv_key);
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
		FUZZ_CHECK(ev->status.n_causes == 0 || ev->status.causes != NULL);
		fprintf(f, "status %d %s %s %s retry=%d\n", ev->status.code, ev->status.status,
			ev->status.reason, ev->status.message, ev->status.retry_after_s);
		break;
	}
	if (++run->events == run->stop_at)
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

/* Feeds the stream in chunks (c == NULL: one piece). */
static void decode(struct run *run, const struct kc_decode_ctx *ctx, size_t max_line, const char *buf,
		   size_t len, struct fuzz_chunks *c)
{
	struct kc_watch_decoder *w;
	char *sink_text = NULL;
	size_t sink_len = 0, off = 0, n_feeds = 0;

	run->f = open_memstream(&run->text, &run->text_len);
	run->sink = open_memstream(&sink_text, &sink_len);
	FUZZ_CHECK(run->f != NULL && run->sink != NULL);
	w = kc_watch_decoder_new(run->t, ctx, max_line, on_event, run);
	if (!c) {
		record(run, w, kc_watch_decoder_feed(w, buf, len));
	} else {
		while (off < len) {
			size_t n = fuzz_chunks_next(c, len - off);

			record(run, w, kc_watch_decoder_feed(w, buf + off, n));
			off += n;
			/* Now and then start a new stream, as a reconnect does. */
			if (run->failed && ++n_feeds % 7 == 0)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunks chunks;
	struct kc_decode_ctx ctx;
	struct run whole, split;
	size_t max_line;
	bool same;
	uint8_t sel;

	if (size < 1)
		return 0;
	fuzz_set_input(data, size);
	sel = data[0];
	data++;
	size--;
	if (!fuzz_chunks_init(&chunks, &data, &size))
		return 0;
	ctx.opts = fuzz_opts((uint8_t)(sel >> 2));
	ctx.intern = kc_intern_new();
	max_line = (sel & 0x80) ? SMALL_MAX_LINE : 0;
	memset(&whole, 0, sizeof(whole));
	whole.t = FUZZ_TYPE(sel);
	whole.intern = ctx.intern;
	whole.opts = ctx.opts;
	whole.stop_at = (sel >> 4) & 7;
	whole.take = (size & 1) != 0;
	split = whole;
	split.take = !whole.take;

	decode(&whole, &ctx, max_line, (const char *)data, size, NULL);
	decode(&split, &ctx, max_line, (const char *)data, size, &chunks);

	same = whole.failed == split.failed && whole.skipped == split.skipped &&
	       strcmp(whole.text, split.text) == 0;
	/* An over-long line is caught before it is parsed in one piece, but
	 * chunked it may show a syntax error first: either way it fails. */
	if (whole.r != -EMSGSIZE && split.r != -EMSGSIZE)
		same = same && whole.r == split.r;
	if (!same) {
		fprintf(stderr,
			"whole/chunked mismatch: failed %d/%d r %d/%d skipped %llu/%llu\n"
			"--- whole\n%s--- chunked\n%s",
			whole.failed, split.failed, whole.r, split.r, (unsigned long long)whole.skipped,
			(unsigned long long)split.skipped, whole.text, split.text);
		abort();
	}
	free(whole.text);
	free(split.text);
	kc_intern_free(ctx.intern);
	return 0;
}
