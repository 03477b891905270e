/*
 * A small protobuf writer for gen and benchsrv: Kubernetes objects in the
 * wire format kube-apiserver serves (application/vnd.kubernetes.protobuf).
 *
 * Messages nest: pb_begin() writes the field's key and reserves one byte for
 * the length, pb_end() writes the length there, moving the message's bytes up
 * when it needs more than one byte (a length over 127).  Fields go in the
 * order of their numbers, as Go's generated marshallers write them.  Offsets
 * the caller keeps into the buffer (pb_mark()) follow those moves.
 */
#ifndef BENCH_PB_H
#define BENCH_PB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PB_MAX_DEPTH 24
#define PB_MAX_MARKS 8

struct pbw {
	uint8_t *buf;
	size_t len, cap;
	size_t open[PB_MAX_DEPTH]; /* where each open message's length byte is */
	int depth;
	size_t *marks[PB_MAX_MARKS];
	int nmarks;
};

/* Bytes of v as a varint. */
static inline size_t pb_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Writes v as a varint at p; returns the bytes written. */
static inline size_t pb_varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Reads the varint at p (at most 10 bytes, not past end): its value; *width its bytes (0 when malformed). */
static inline uint64_t pb_varint_get(const uint8_t *p, const uint8_t *end, size_t *width)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 10 && p + i < end; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*width = i + 1;
			return v;
		}
	}
	*width = 0;
	return 0;
}

static inline void pb_reset(struct pbw *w)
{
	w->len = 0;
	w->depth = 0;
	w->nmarks = 0;
}

static inline void pb_free(struct pbw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static inline uint8_t *pb_room(struct pbw *w, size_t n)
{
	if (w->len + n > w->cap) {
		w->cap = (w->len + n) * 2 + 4096;
		w->buf = realloc(w->buf, w->cap);
		if (!w->buf)
			abort();
	}
	return w->buf + w->len;
}

static inline void pb_raw(struct pbw *w, const void *p, size_t n)
{
	memcpy(pb_room(w, n), p, n);
	w->len += n;
}

static inline void pb_uvarint(struct pbw *w, uint64_t v)
{
	w->len += pb_varint_put(pb_room(w, 10), v);
}

/* Wire types: 0 varint, 2 length-delimited. */
static inline void pb_key(struct pbw *w, uint32_t field, uint32_t wire)
{
	pb_uvarint(w, (uint64_t)field << 3 | wire);
}

/* An int32/int64/bool field (negative numbers take 10 bytes, as in Go's marshallers). */
static inline void pb_int(struct pbw *w, uint32_t field, int64_t v)
{
	pb_key(w, field, 0);
	pb_uvarint(w, (uint64_t)v);
}

static inline void pb_bytes(struct pbw *w, uint32_t field, const void *p, size_t n)
{
	pb_key(w, field, 2);
	pb_uvarint(w, n);
	pb_raw(w, p, n);
}

/* A string field, written even when empty (Go writes every non-pointer string). */
static inline void pb_str(struct pbw *w, uint32_t field, const char *s)
{
	pb_bytes(w, field, s, strlen(s));
}

static inline void __attribute__((format(printf, 3, 4))) pb_strf(struct pbw *w, uint32_t field, const char *fmt, ...)
{
	char s[1024];
	va_list a;
	int n;

	va_start(a, fmt);
	n = vsnprintf(s, sizeof(s), fmt, a);
	va_end(a);
	if (n < 0 || (size_t)n >= sizeof(s))
		abort();
	pb_bytes(w, field, s, (size_t)n);
}

/* Keeps *off (an offset into the buffer) right when pb_end() moves bytes. */
static inline void pb_mark(struct pbw *w, size_t *off)
{
	if (w->nmarks == PB_MAX_MARKS)
		abort();
	w->marks[w->nmarks++] = off;
}

/* Opens an embedded message (or a map entry) as field `field`. */
static inline void pb_begin(struct pbw *w, uint32_t field)
{
	if (w->depth == PB_MAX_DEPTH)
		abort();
	pb_key(w, field, 2);
	w->open[w->depth++] = w->len;
	pb_room(w, 1);
	w->len++;
}

/* Closes the innermost open message: writes its length. */
static inline void pb_end(struct pbw *w)
{
	size_t at = w->open[--w->depth], n = w->len - at - 1, k = pb_varint_size(n);

	if (k > 1) {
		pb_room(w, k - 1);
		memmove(w->buf + at + k, w->buf + at + 1, n);
		w->len += k - 1;
		for (int i = 0; i < w->nmarks; i++)
			if (*w->marks[i] > at)
				*w->marks[i] += k - 1;
	}
	pb_varint_put(w->buf + at, n);
}

/* A map<string,string> entry (maps are written sorted by key, as Go does). */
static inline void pb_map_str(struct pbw *w, uint32_t field, const char *key, const char *val)
{
	pb_begin(w, field);
	pb_str(w, 1, key);
	pb_str(w, 2, val);
	pb_end(w);
}

/* A map<string,Quantity> entry: resource.Quantity is a message {1: string}. */
static inline void pb_map_qty(struct pbw *w, uint32_t field, const char *key, const char *qty)
{
	pb_begin(w, field);
	pb_str(w, 1, key);
	pb_begin(w, 2);
	pb_str(w, 1, qty);
	pb_end(w);
	pb_end(w);
}

/* A metav1.Time {1: seconds, 2: nanos}; a zero time (JSON null) is an empty message. */
static inline void pb_time(struct pbw *w, uint32_t field, int64_t unix_s)
{
	pb_begin(w, field);
	if (unix_s) {
		pb_int(w, 1, unix_s);
		pb_int(w, 2, 0);
	}
	pb_end(w);
}

/* The 4 bytes that open an object in application/vnd.kubernetes.protobuf. */
#define PB_K8S_MAGIC "k8s\0"
#define PB_K8S_MAGIC_LEN 4

#endif
