/*
 * Kubernetes' protobuf encoding (application/vnd.kubernetes.protobuf), private
 * to the decoders and to kc_status.
 *
 * kube-apiserver serves every built-in type in protobuf as well as JSON.  A
 * body is the magic "k8s\0" and a runtime.Unknown {1: typeMeta {1: apiVersion,
 * 2: kind}, 2: raw (the object's message), 3: contentEncoding, 4: contentType};
 * a watch is a stream of frames, each a 4-byte big-endian length and a
 * metav1.WatchEvent {1: type, 2: object {1: raw}} without the magic, whose raw
 * object is such a body.  Protobuf's length-delimited fields let a reader step
 * over what it does not keep (managedFields, volumes, env) without reading it,
 * which is why a watch event costs the decoder a fraction of its JSON.
 *
 * kc_pb_walk reports a message to the same handler as kc_sax (kc_sax.h), from
 * the same schemas: a field's pb number says where it is in the message (0:
 * not read from protobuf), and pbt how its value is wrapped (a Quantity or a
 * Time is a message of its own where JSON has a string).
 */
#ifndef KC_PB_H
#define KC_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kc_sax.h"

#define KC_PB_MAGIC "k8s\0"
#define KC_PB_MAGIC_LEN 4
#define KC_PB_CONTENT_TYPE "application/vnd.kubernetes.protobuf"

enum kc_pb_wire { KC_PB_VARINT = 0, KC_PB_I64 = 1, KC_PB_LEN = 2, KC_PB_I32 = 5 };

/* One field of a message: its number, wire type and value (v for varints and
 * fixed-width values, data and len for length-delimited ones). */
struct kc_pb_field {
	uint32_t num;
	uint8_t wire;
	uint64_t v;
	const uint8_t *data;
	size_t len;
};

/* A reader over the fields of one message. */
struct kc_pb_reader {
	const uint8_t *p, *end;
};

static inline void kc_pb_reader_init(struct kc_pb_reader *r, const void *data, size_t len)
{
	r->p = data;
	r->end = r->p + len;
}

/* Reads a varint at *p (not past end): 1 and *p moved past it, 0 if end comes
 * first (the varint may be cut), -EBADMSG if it is longer than 10 bytes. */
int kc_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret);
/* The next field: 1, 0 at the end of the message, -EBADMSG if it is malformed
 * (cut, a group, an unknown wire type, field number 0). */
int kc_pb_next(struct kc_pb_reader *r, struct kc_pb_field *f);

/*
 * A body with the magic: the kind its typeMeta names and its raw object.
 * 0, or -EBADMSG (no magic, malformed, a contentEncoding such as gzip that
 * we do not read) with the reason in err.
 */
int kc_pb_unwrap(const void *body, size_t len, const uint8_t **kind, size_t *kind_len, const uint8_t **raw,
		 size_t *raw_len, char *err, size_t errsize);

/*
 * Walks one message by schema and reports its kept fields to h, as kc_sax
 * reports a JSON object: 0, the handler's non-zero return, -EBADMSG for a
 * malformed message or a kept string that is not UTF-8, -EMSGSIZE for a kept
 * string over KC_SAX_MAX_TOKEN (the reason in err).  Fields with the wrong
 * wire type are skipped, as kc_sax skips a value of the wrong JSON type.
 */
int kc_pb_walk(const struct kc_sax_schema *root, const void *msg, size_t len, kc_sax_handler h, void *ud,
	       char *err, size_t errsize);

/* Whether a Content-Type header names the protobuf encoding. */
bool kc_pb_is_content_type(const char *content_type);

#endif
