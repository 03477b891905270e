/*
 * libFuzzer target for the LIST decoder (kc_list_decoder_*), all four kinds.
 *
 * Input: byte 0 chooses the kind (bits 0-1), the decode options (bits 2-3)
 * and an item at which the callback stops decoding (bits 4-7, 0 = never);
 * then the chunking header of fuzz_common.h; the rest is the response body.
 * The body is decoded twice, in one piece and in the chosen chunks, and the
 * two runs must agree exactly: the items (through their canonical dumps),
 * resourceVersion, continue, the item count and the result code.
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

#define STOP_CODE 77

struct run {
	FILE *f;
	char *text;
	size_t text_len;
	const struct kc_type *t;
	struct kc_intern *intern;
	const struct kc_decode_opts *opts;
	size_t items;
	size_t stop_at; /* 1-based item that makes the callback fail; 0 = never */
	char *rv;
	char *cont;
	size_t decoder_items;
	int r;
};

static int on_item(void *obj, void *userdata)
{
	struct run *run = userdata;

	fuzz_dump_object(run->f, run->t, run->intern, run->opts, obj);
	fprintf(run->f, "--\n");
	kc_object_free(obj);
	if (++run->items == run->stop_at)
		return STOP_CODE;
	return 0;
}

/* Feeds body in chunks (c == NULL: one piece) and records the outcome. */
static void decode(struct run *run, const struct kc_decode_ctx *ctx, const char *body, size_t len,
		   struct fuzz_chunks *c)
{
	struct kc_list_decoder *l;
	size_t off = 0;
	int r = 0;

	run->f = open_memstream(&run->text, &run->text_len);
	FUZZ_CHECK(run->f != NULL);
	l = kc_list_decoder_new(run->t, ctx, on_item, run);
	while (off < len) {
		size_t n = c ? fuzz_chunks_next(c, len - off) : len - off;
		int fr = kc_list_decoder_feed(l, body + off, n);

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

		FUZZ_CHECK(msg != NULL && strlen(msg) < 512);
		FUZZ_CHECK(r == STOP_CODE || r == -EBADMSG || r == -EMSGSIZE);
	}
	run->rv = kc_xstrdup(kc_list_decoder_resource_version(l));
	run->cont = kc_xstrdup(kc_list_decoder_continue(l));
	run->decoder_items = kc_list_decoder_items(l);
	FUZZ_CHECK(run->decoder_items == run->items);
	run->r = r;
	kc_list_decoder_free(l);
	fclose(run->f);
}

static void run_done(struct run *run)
{
	free(run->text);
	free(run->rv);
	free(run->cont);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunks chunks;
	struct kc_decode_ctx ctx;
	struct run whole, split;
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
	memset(&whole, 0, sizeof(whole));
	whole.t = FUZZ_TYPE(sel);
	whole.intern = ctx.intern;
	whole.opts = ctx.opts;
	whole.stop_at = sel >> 4;
	split = whole;

	decode(&whole, &ctx, (const char *)data, size, NULL);
	decode(&split, &ctx, (const char *)data, size, &chunks);
	if (whole.r != split.r || whole.items != split.items || strcmp(whole.text, split.text) != 0 ||
	    strcmp(whole.rv, split.rv) != 0 || strcmp(whole.cont, split.cont) != 0) {
		fprintf(stderr,
			"whole/chunked mismatch: r %d/%d items %zu/%zu rv %s/%s cont %s/%s\n"
			"--- whole\n%s--- chunked\n%s",
			whole.r, split.r, whole.items, split.items, whole.rv, split.rv, whole.cont,
			split.cont, whole.text, split.text);
		abort();
	}
	run_done(&whole);
	run_done(&split);
	kc_intern_free(ctx.intern);
	return 0;
}
