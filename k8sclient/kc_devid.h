/*
 * Device IDs in 17 bytes.  Every device a pod holds is named in its
 * allocatedResourcesStatus by a resourceID, and a cache of 150,000 device
 * pods holds at least one each.  Most are UUID-shaped: the NVIDIA device
 * plugin's "GPU-<uuid>" and "MIG-<uuid>", or a bare UUID.  Such an ID is
 * unique to its device, so interning it saves nothing: as text it costs 42
 * bytes of intern slab, a slot of the intern table and a pointer; packed it is
 * 17 bytes in the object's block.
 *
 * A UUID here is any lower-case 8-4-4-4-12 hex text, of any variant (NVIDIA's
 * GPU UUIDs are not all RFC 9562 ones).  Every other ID (a PCI address,
 * "nvidia0", a time-sliced replica "GPU-<uuid>::3", upper-case hex) is kept
 * as a pointer to its text, which the caller keeps alive (the decoder interns
 * it: such IDs repeat as pods come and go on the same device).  Either way the
 * ID reads back as its original text, byte for byte.  An all-zero kc_devid is
 * the empty ID "".  Pure: no allocation.
 */
#ifndef KC_DEVID_H
#define KC_DEVID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Byte 0 is the kind (enum kc_devid_kind); a packed ID keeps its 16 bytes in
 * b[1..16], a text one its pointer in b[1..8].  A byte array, so that arrays
 * of them take 17 bytes an element: read it only through the functions below.
 */
struct kc_devid {
	uint8_t b[17];
};

enum kc_devid_kind {
	KC_DEVID_TEXT = 0,  /* a borrowed pointer to the text */
	KC_DEVID_UUID,      /* "<uuid>" */
	KC_DEVID_GPU,       /* "GPU-<uuid>" */
	KC_DEVID_MIG,       /* "MIG-<uuid>" */
};

/* Room for any packed ID as text, with its NUL: "GPU-" and a UUID. */
#define KC_DEVID_BUF 41

/* Packs s[0..len) into *ret when it has one of the packed forms; false (and *ret untouched) otherwise. */
bool kc_devid_pack(const char *s, size_t len, struct kc_devid *ret);
/* Makes *d stand for text, which it borrows (NUL-terminated, outliving *d). */
void kc_devid_set_text(struct kc_devid *d, const char *text);
/* Sets *d from s (borrowed when it cannot be packed, as kc_devid_set_text). */
void kc_devid_set(struct kc_devid *d, const char *s);
enum kc_devid_kind kc_devid_kind(const struct kc_devid *d);
/* The borrowed text of a text ID ("" for the empty ID); NULL for a packed one. */
const char *kc_devid_text(const struct kc_devid *d);
/* The ID as text: buf (filled) for a packed ID, else its borrowed text. */
const char *kc_devid_str(const struct kc_devid *d, char buf[KC_DEVID_BUF]);
/* Whether a and b stand for the same text (whatever their kinds). */
bool kc_devid_eq(const struct kc_devid *a, const struct kc_devid *b);
/* Whether d stands for exactly the text s. */
bool kc_devid_eq_str(const struct kc_devid *d, const char *s);

#endif
