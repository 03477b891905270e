/*
 * Device IDs in 17 bytes (kc_devid.h).  The packed kinds are exactly the
 * texts that format back byte for byte, so packing is canonical: two packed
 * IDs stand for the same text iff their bytes are equal.  Only a text ID that
 * a caller set to packable text (kc_devid_set_text) needs comparing as text.
 */
#include "kc_devid.h"

#include <string.h>

#include "kc_uid.h"

#define PREFIX_LEN 4  /* "GPU-", "MIG-" */

static const char *const prefixes[] = {
	[KC_DEVID_GPU] = "GPU-",
	[KC_DEVID_MIG] = "MIG-",
};

bool kc_devid_pack(const char *s, size_t len, struct kc_devid *ret)
{
	uint8_t kind = KC_DEVID_UUID;
	uint8_t b[16];

	if (len == PREFIX_LEN + 36) {
		if (memcmp(s, prefixes[KC_DEVID_GPU], PREFIX_LEN) == 0)
			kind = KC_DEVID_GPU;
		else if (memcmp(s, prefixes[KC_DEVID_MIG], PREFIX_LEN) == 0)
			kind = KC_DEVID_MIG;
		else
			return false;
		s += PREFIX_LEN;
		len -= PREFIX_LEN;
	}
	if (!kc_uid_parse_hex(s, len, b))
		return false;
	ret->b[0] = kind;
	memcpy(ret->b + 1, b, sizeof(b));
	return true;
}

void kc_devid_set_text(struct kc_devid *d, const char *text)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->b + 1, &text, sizeof(text));
}

void kc_devid_set(struct kc_devid *d, const char *s)
{
	if (!kc_devid_pack(s, strlen(s), d))
		kc_devid_set_text(d, s);
}

enum kc_devid_kind kc_devid_kind(const struct kc_devid *d)
{
	return (enum kc_devid_kind)d->b[0];
}

const char *kc_devid_text(const struct kc_devid *d)
{
	const char *text;

	if (d->b[0] != KC_DEVID_TEXT)
		return NULL;
	memcpy(&text, d->b + 1, sizeof(text));
	return text ? text : "";
}

const char *kc_devid_str(const struct kc_devid *d, char buf[KC_DEVID_BUF])
{
	const char *text = kc_devid_text(d);
	size_t o = 0;

	if (text)
		return text;
	if (d->b[0] == KC_DEVID_GPU || d->b[0] == KC_DEVID_MIG) {
		memcpy(buf, prefixes[d->b[0]], PREFIX_LEN);
		o = PREFIX_LEN;
	}
	kc_uid_format_hex(d->b + 1, buf + o);
	return buf;
}

bool kc_devid_eq(const struct kc_devid *a, const struct kc_devid *b)
{
	const char *ta = kc_devid_text(a), *tb = kc_devid_text(b);

	if (!ta && !tb)
		return memcmp(a->b, b->b, sizeof(a->b)) == 0;
	if (ta && tb)
		return ta == tb || strcmp(ta, tb) == 0;
	return ta ? kc_devid_eq_str(b, ta) : kc_devid_eq_str(a, tb);
}

bool kc_devid_eq_str(const struct kc_devid *d, const char *s)
{
	char buf[KC_DEVID_BUF];

	return strcmp(kc_devid_str(d, buf), s) == 0;
}
