/*
 * A schema-driven SAX walker on top of yajl, private to the decoders.
 *
 * A schema is a static table of the keys we keep at one level of a JSON
 * object.  The walker follows the document with a stack of frames (one per
 * kept object, array or string map), reports each kept value to one handler
 * as (field id, event, value), and skips everything else by counting
 * brackets, so an unknown subtree such as managedFields costs only yajl's
 * lexing.  A value whose JSON type does not match the schema is skipped like
 * an unknown key.  Schemas chain (struct kc_sax_schema.next) so the watch
 * decoder can look for Status fields and the object's fields at once.
 */
#ifndef KC_SAX_H
#define KC_SAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_parse.h>

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

struct kc_sax_field {
	const char *key;
	uint16_t klen;
	uint8_t kind;
	uint16_t id;
	const struct kc_sax_schema *sub;
};

struct kc_sax_schema {
	const struct kc_sax_field *fields;
	size_t n;
	const struct kc_sax_schema *next;
};

#define KC_SAX_F(k, kind, id, sub) { k, sizeof(k) - 1, kind, id, sub }
#define KC_SAX_SCHEMA(arr) { arr, sizeof(arr) / sizeof((arr)[0]), NULL }

/* Returns 0 to go on; anything else aborts the parse and is returned by kc_sax_feed. */
typedef int (*kc_sax_handler)(void *ud, unsigned id, enum kc_sax_event ev, const struct kc_sax_value *v);

#define KC_SAX_MAX_DEPTH 24
#define KC_SAX_MAX_KEY 512
/* The longest token yajl may buffer across feeds (etcd caps objects at 1.5 MB). */
#define KC_SAX_MAX_TOKEN (4u * 1024 * 1024)

struct kc_sax_frame {
	const struct kc_sax_field *field;  /* the field this container is the value of */
	uint8_t type;                      /* KC_SAX_OBJ, KC_SAX_ARR or KC_SAX_MAP */
};

struct kc_sax {
	yajl_handle yajl;
	const struct kc_sax_schema *root;
	kc_sax_handler handler;
	void *ud;
	int depth;  /* frames in use; -1 before the root value */
	unsigned long skip;  /* > 0: inside a skipped container */
	bool root_done;
	int error;  /* the handler's error that cancelled the parse */
	bool multiple;  /* cancelled because a second root value began */
	bool evented;   /* a callback ran during the current feed */
	size_t quiet;   /* bytes fed since the last feed with a callback */
	/* The fields the last key matched, by JSON value class. */
	const struct kc_sax_field *pend_str, *pend_int, *pend_bool, *pend_obj, *pend_arr;
	size_t klen;
	bool key_ok;
	char key[KC_SAX_MAX_KEY];
	struct kc_sax_frame st[KC_SAX_MAX_DEPTH];
};

/* Prepares a walker for one JSON document whose root object follows root. */
void kc_sax_init(struct kc_sax *s, const struct kc_sax_schema *root, kc_sax_handler h, void *ud);
/* Starts a new document (allocates the yajl handle lazily). */
void kc_sax_begin(struct kc_sax *s);
/* Feeds bytes: 0, a handler's negative error, or -EBADMSG (message in err). */
int kc_sax_feed(struct kc_sax *s, const char *buf, size_t len, char *err, size_t errsize);
/* Ends the document: 0, or -EBADMSG if it is incomplete or invalid. */
int kc_sax_complete(struct kc_sax *s, char *err, size_t errsize);
void kc_sax_done(struct kc_sax *s);

#endif
