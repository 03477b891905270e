/*
 * UIDs in 16 bytes (kc_uid.h).  A packed UUID keeps its variant bits (10 in
 * the top of byte 8); an unpacked UID stores its text pointer in bytes 0-7
 * and 0 in byte 8, which no packed UUID can hold, so the two never mix.
 */
#include "kc_uid.h"

#include <string.h>

#define TEXT_MARK 8 /* the byte whose top bit tells packed (1) from text (0) */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;  /* upper case too: it would not come back the same */
}

bool kc_uid_parse_hex(const char *s, size_t len, uint8_t ret[16])
{
	uint8_t b[16];
	size_t i = 0;

	if (len != 36)
		return false;
	for (int k = 0; k < 16; k++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
			i++;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		b[k] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	memcpy(ret, b, sizeof(b));
	return true;
}

void kc_uid_format_hex(const uint8_t b[16], char buf[KC_UID_BUF])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (int k = 0; k < 16; k++) {
		if (k == 4 || k == 6 || k == 8 || k == 10)
			buf[o++] = '-';
		buf[o++] = hex[b[k] >> 4];
		buf[o++] = hex[b[k] & 15];
	}
	buf[o] = '\0';
}

bool kc_uid_pack(const char *s, size_t len, struct kc_uid *ret)
{
	struct kc_uid u;

	if (!kc_uid_parse_hex(s, len, u.b))
		return false;
	if ((u.b[TEXT_MARK] & 0xC0) != 0x80)
		return false;  /* not the RFC variant: kept as text */
	*ret = u;
	return true;
}

void kc_uid_set_text(struct kc_uid *u, const char *text)
{
	memset(u, 0, sizeof(*u));
	memcpy(u->b, &text, sizeof(text));
}

void kc_uid_set(struct kc_uid *u, const char *s)
{
	if (!kc_uid_pack(s, strlen(s), u))
		kc_uid_set_text(u, s);
}

const char *kc_uid_text(const struct kc_uid *u)
{
	const char *text;

	if (u->b[TEXT_MARK] & 0x80)
		return NULL;
	memcpy(&text, u->b, sizeof(text));
	return text ? text : "";
}

const char *kc_uid_str(const struct kc_uid *u, char buf[KC_UID_BUF])
{
	const char *text = kc_uid_text(u);

	if (text)
		return text;
	kc_uid_format_hex(u->b, buf);
	return buf;
}

bool kc_uid_eq_str(const struct kc_uid *u, const char *s)
{
	char buf[KC_UID_BUF];

	return strcmp(kc_uid_str(u, buf), s) == 0;
}

bool kc_uid_eq(const struct kc_uid *a, const struct kc_uid *b)
{
	char buf[KC_UID_BUF];

	if (!kc_uid_text(a) && !kc_uid_text(b))
		return memcmp(a->b, b->b, sizeof(a->b)) == 0;
	return kc_uid_eq_str(a, kc_uid_str(b, buf));
}

bool kc_uid_is_empty(const struct kc_uid *u)
{
	const char *text = kc_uid_text(u);

	return text && !*text;
}
