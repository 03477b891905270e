/*
 * libFuzzer target for kc_decode_object (pods, nodes, ResourceClaims,
 * ResourceSlices).
 *
 * Input: byte 0 chooses the kind (bits 0-1) and the decode options (bits
 * 2-3); the rest is the JSON document.  Every decoded object is dumped
 * through fuzz_common.h, which checks the kc_objects.h invariants, and then
 * cross-checked against the LIST decoder: the same document wrapped as the
 * only item of {"items":[...]} must decode to the same object.

 * (This check found test_regressions.c, test_object_trailing_garbage.)
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

struct list_result {
	FILE *f;
	const struct kc_type *t;
	struct kc_intern *intern;
	const struct kc_decode_opts *opts;
	size_t items;
};

static int on_item(void *obj, void *userdata)
{
	struct list_result *lr = userdata;

	fuzz_dump_object(lr->f, lr->t, lr->intern, lr->opts, obj);
	lr->items++;
	kc_object_free(obj);
	return 0;
}

/* Decodes {"items":[json]} and returns the dump of its items (caller frees). */
static char *decode_as_list(const struct kc_type *t, const struct kc_decode_ctx *ctx, const char *json,
			    size_t len, int *ret_r, size_t *ret_items)
{
	static const char head[] = "{\"items\":[", tail[] = "]}";
	struct list_result lr = {.t = t, .intern = ctx->intern, .opts = ctx->opts};
	struct kc_list_decoder *l;
	char *text = NULL;
	size_t text_len = 0;
	int r;

	lr.f = open_memstream(&text, &text_len);
	FUZZ_CHECK(lr.f != NULL);
	l = kc_list_decoder_new(t, ctx, on_item, &lr);
	r = kc_list_decoder_feed(l, head, sizeof(head) - 1);
	if (r == 0)
		r = kc_list_decoder_feed(l, json, len);
	if (r == 0)
		r = kc_list_decoder_feed(l, tail, sizeof(tail) - 1);
	if (r == 0)
		r = kc_list_decoder_finish(l);
	FUZZ_CHECK(kc_list_decoder_items(l) == lr.items);
	kc_list_decoder_free(l);
	fclose(lr.f);
	*ret_r = r;
	*ret_items = lr.items;
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct kc_type *t;
	struct kc_decode_ctx ctx;
	struct kc_error err;
	void *obj = NULL;
	char *dump = NULL, *list_dump;
	size_t dump_len = 0, items;
	int r, lr;

	if (size < 1)
		return 0;
	fuzz_set_input(data, size);
	t = FUZZ_TYPE(data[0]);
	ctx.opts = fuzz_opts((uint8_t)(data[0] >> 2));
	ctx.intern = kc_intern_new();
	memset(&err, 0, sizeof(err));

	r = kc_decode_object(t, &ctx, (const char *)data + 1, size - 1, &obj, &err);
	FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
	if (r == 0) {
		FILE *f = open_memstream(&dump, &dump_len);

		FUZZ_CHECK(f != NULL);
		fuzz_dump_object(f, t, ctx.intern, ctx.opts, obj);
		fclose(f);
		kc_object_free(obj);
	} else {
		FUZZ_CHECK(r < 0);
		FUZZ_CHECK(r == -EBADMSG || r == -EMSGSIZE);
		FUZZ_CHECK(err.msg[0] != '\0');
	}

	/* A document that decodes alone decodes the same as a list item. */
	list_dump = decode_as_list(t, &ctx, (const char *)data + 1, size - 1, &lr, &items);
	if (r == 0) {
		if (lr != 0 || items != 1 || strcmp(dump, list_dump) != 0) {
			fprintf(stderr,
				"object/list mismatch: object r=0, list r=%d items=%zu\n--- object\n%s--- "
				"list\n%s",
				lr, items, dump, list_dump);
			abort();
		}
	}
	free(list_dump);
	free(dump);
	kc_intern_free(ctx.intern);
	return 0;
}
