/*
 * Object UIDs in 16 bytes.  Kubernetes UIDs are UUIDs (RFC 9562 variant,
 * written in lower case), and a cache of 150,000 pods holds one or two of
 * them per pod: as text each costs 37 bytes and a pointer, as bytes 16.
 *
 * Any other text (a test server's "uid-7", a UUID in upper case, another
 * variant) cannot be packed, yet it must go back to the API server byte for
 * byte (eviction preconditions).  Such a UID is kept as a pointer to its
 * text, marked by a variant byte that no packed UUID has; the text lives with
 * the object the UID belongs to (the decoder puts it in the object's block).
 * An all-zero kc_uid is the empty UID.  Pure: no allocation.
 */
#ifndef KC_UID_H
#define KC_UID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kc_uid {
	uint8_t b[16];
};

/* Room for any packed UUID as text, with its NUL. */
#define KC_UID_BUF 37

/*
 * The 8-4-4-4-12 text of 16 bytes in lower-case hex, with no check of the
 * variant (device IDs, kc_devid.h, carry UUIDs of any variant): parse fills
 * ret[0..16) and returns true only for text that format gives back byte for
 * byte; format writes KC_UID_BUF bytes, the NUL included.
 */
bool kc_uid_parse_hex(const char *s, size_t len, uint8_t ret[16]);
void kc_uid_format_hex(const uint8_t b[16], char buf[KC_UID_BUF]);
/* Packs s[0..len) into *ret when it is a lower-case RFC 9562 UUID; false (and *ret untouched) otherwise. */
bool kc_uid_pack(const char *s, size_t len, struct kc_uid *ret);
/* Makes *u stand for text, which it borrows (NUL-terminated, outliving *u). */
void kc_uid_set_text(struct kc_uid *u, const char *text);
/* Sets *u from s (borrowed when it cannot be packed, as kc_uid_set_text). */
void kc_uid_set(struct kc_uid *u, const char *s);
/* The borrowed text of an unpacked UID ("" for the empty UID); NULL for a packed one. */
const char *kc_uid_text(const struct kc_uid *u);
/* The UID as text: buf (filled) for a packed UUID, else its borrowed text. */
const char *kc_uid_str(const struct kc_uid *u, char buf[KC_UID_BUF]);
/* Whether u stands for exactly the text s. */
bool kc_uid_eq_str(const struct kc_uid *u, const char *s);
/* Whether a and b stand for the same text (two unpacked UIDs may borrow different copies of it). */
bool kc_uid_eq(const struct kc_uid *a, const struct kc_uid *b);
/* Whether u is the empty UID (an object without one). */
bool kc_uid_is_empty(const struct kc_uid *u);

#endif
