/*
 * A schema-driven SAX walker with its own JSON scanner, private to the
 * decoders.
 *
 * A schema is a static table of the keys we keep at one level of a JSON
 * object.  The walker follows the document with a stack of frames (one per
 * kept object, array or string map), reports each kept value to one handler
 * as (field id, event, value), and skips everything else by counting
 * brackets, so an unknown subtree such as managedFields costs only a scan
 * for quotes and brackets (fully validated, see kc_sax.c).  A value whose JSON type does not match the schema is skipped like
 * an unknown key.  Schemas chain (struct kc_sax_schema.next) so the watch
 * decoder can look for Status fields and the object's fields at once.
 */
#ifndef KC_SAX_H
#define KC_SAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kc_sax_kind {
	KC_SAX_STR = 1,  /* string value */
	KC_SAX_INT,      /* integer number */
	KC_SAX_BOOL,
	KC_SAX_OBJ,      /* object walked with sub */
	KC_SAX_ARR,      /* array of objects, each walked with sub */
	KC_SAX_MAP,      /* object of string values, reported as KC_SAX_EV_ENTRY */
};

enum kc_sax_event {
	KC_SAX_EV_STR = 1,  /* v.s, v.len */
	KC_SAX_EV_INT,      /* v.i */
	KC_SAX_EV_BOOL,     /* v.b */
	KC_SAX_EV_BEGIN,    /* an OBJ field or an ARR element opened */
	KC_SAX_EV_END,      /* ... and closed */
	KC_SAX_EV_ENTRY,    /* a MAP entry: v.key, v.klen, v.s, v.len */
};

struct kc_sax_value {
	const char *s;
	size_t len;
	const char *key;
	size_t klen;
	int64_t i;
	bool b;
};

struct kc_sax_schema;

/* How a field's value is wrapped in protobuf (kc_pb.h), where JSON has a plain value. */
enum kc_sax_pb_wrap {
	KC_SAX_PB_PLAIN = 0,
	KC_SAX_PB_QUANTITY,  /* a MAP whose values are resource.Quantity {1: string} */
	KC_SAX_PB_TIME,      /* a STR that is a metav1.Time {1: seconds, 2: nanos}, reported as RFC 3339 */
	/* Reported before the message's other fields, as JSON orders it: protobuf orders
	 * fields by number, JSON by Go's struct (initContainers before containers). */
	KC_SAX_PB_FIRST,
};

struct kc_sax_field {
	const char *key;
	uint16_t klen;
	uint8_t kind;
	uint16_t id;
	const struct kc_sax_schema *sub;
	uint8_t pb;   /* the field number in the protobuf message; 0: JSON only */
	uint8_t pbw;  /* enum kc_sax_pb_wrap */
};

struct kc_sax_schema {
	const struct kc_sax_field *fields;
	size_t n;
	const struct kc_sax_schema *next;
};

#define KC_SAX_F(k, kind, id, sub) { k, sizeof(k) - 1, kind, id, sub, 0, 0 }
/* A field read from JSON by key and from protobuf by number n. */
#define KC_SAX_P(k, n, kind, id, sub) { k, sizeof(k) - 1, kind, id, sub, n, KC_SAX_PB_PLAIN }
#define KC_SAX_PW(k, n, wrap, kind, id, sub) { k, sizeof(k) - 1, kind, id, sub, n, wrap }
#define KC_SAX_SCHEMA(arr) { arr, sizeof(arr) / sizeof((arr)[0]), NULL }

/* Returns 0 to go on; anything else aborts the parse and is returned by kc_sax_feed. */
typedef int (*kc_sax_handler)(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v);

#define KC_SAX_MAX_DEPTH 24
#define KC_SAX_MAX_KEY 512
/* The longest kept token (a string or number we report) that may be buffered
 * across feeds or unescaped (etcd caps objects at 1.5 MB); -EMSGSIZE beyond.
 * Tokens we skip are validated as they pass and never buffered. */
#define KC_SAX_MAX_TOKEN (4u * 1024 * 1024)
/* The deepest nesting of arrays and objects, kept or skipped; -EMSGSIZE beyond. */
#define KC_SAX_MAX_NEST 1024

struct kc_sax_frame {
	const struct kc_sax_field *field;  /* the field this container is the value of */
	uint8_t type;                      /* KC_SAX_OBJ, KC_SAX_ARR or KC_SAX_MAP */
};

struct kc_sax {
	const struct kc_sax_schema *root;
	kc_sax_handler handler;
	void *ud;
	int depth;  /* frames in use; -1 before the root value */
	unsigned long skip;  /* > 0: inside a skipped container */
	bool root_done;
	int error;  /* sticky: the handler's error or the scanner's */
	/* The scanner (kc_sax.c): what may come next, and the token that the
	 * last feed ended inside of, if any. */
	uint8_t gs;      /* grammar state */
	uint8_t ts;      /* token state: none, string, number, literal */
	uint8_t sub;     /* the token's sub-state (escape, number part, literal position) */
	uint8_t cnt;     /* hex digits of a \uXXXX read so far */
	uint8_t u8need;  /* UTF-8 continuation bytes still expected */
	uint8_t u8lo, u8hi;  /* the range of the next continuation byte */
	bool keep;       /* the token is reported: its text goes to tok */
	bool is_key;     /* the string is an object key */
	bool copied;     /* tok holds the token's text so far */
	uint16_t hi;     /* a high surrogate waiting for its low half */
	uint16_t cp;     /* the \uXXXX being read */
	const char *lit; /* the literal being matched */
	const char *why; /* what was wrong with the input */
	const unsigned char *base;  /* the current feed, for error offsets */
	uint64_t off;    /* bytes fed before the current feed */
	uint64_t erroff;
	unsigned nest;   /* open arrays and objects */
	char *tok;       /* a kept token's text (unescaped), bounded by KC_SAX_MAX_TOKEN */
	size_t tlen, tcap;
	/* The fields the last key matched, by JSON value class. */
	const struct kc_sax_field *pend_str, *pend_int, *pend_bool, *pend_obj, *pend_arr;
	size_t klen;
	bool key_ok;
	char key[KC_SAX_MAX_KEY];
	struct kc_sax_frame st[KC_SAX_MAX_DEPTH];
	uint8_t objs[KC_SAX_MAX_NEST / 8];  /* per nesting level: 1 = object, 0 = array */
};

/* Prepares a walker for one JSON document whose root object follows root. */
void kc_sax_init(struct kc_sax *s, const struct kc_sax_schema *root, kc_sax_handler h, void *ud);
/* Starts a new document (keeps the token buffer of the last one). */
void kc_sax_begin(struct kc_sax *s);
/* Feeds bytes: 0, a handler's error, -EBADMSG for invalid JSON or -EMSGSIZE
 * past a bound (message in err); errors are sticky until kc_sax_begin. */
int kc_sax_feed(struct kc_sax *s, const char *buf, size_t len, char *err, size_t errsize);
/* Ends the document: 0, or -EBADMSG if it is incomplete or invalid. */
int kc_sax_complete(struct kc_sax *s, char *err, size_t errsize);
/* Frees the token buffer; s may be NULL. */
void kc_sax_done(struct kc_sax *s);

#endif
