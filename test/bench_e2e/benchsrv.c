/*
 * benchsrv: the API server of `make bench-e2e`, fast enough that the
 * controller under test, not the server, is what the figures measure.
 *
 *   benchsrv DIR [--watchlist] [--no-protobuf]
 *
 * It serves the cluster gen wrote into DIR (gen.c): the files are mapped
 * once, a LIST page is a header, runs of pods straight from the mapping and
 * a footer (one writev, no JSON built), and a watch event is a fixed prefix,
 * the pod's bytes with a fresh 13-digit resourceVersion spliced in (and, for
 * a health event, "Unhealthy" in place of its GPU's "Healthy"), and a fixed
 * suffix.  One thread, epoll, non-blocking sockets, plain HTTP/1.1.
 *
 * Pods are served in protobuf (application/vnd.kubernetes.protobuf, from
 * DIR/pods.pb) when the request's Accept header prefers it, as kube-apiserver
 * negotiates: LIST pages, watch frames (";stream=watch"), bookmarks, the 410
 * ERROR event and the Status of an error.  The Pod messages come from the
 * mapping as the JSON does; a health event's pod has the lengths around its
 * "Unhealthy" written again (out_pod_pb()).  Everything else (nodes, discovery,
 * evictions, Events) is JSON.  --no-protobuf serves JSON whatever is asked.
 *
 * What the controller needs is served: /version, discovery without
 * resource.k8s.io (so no DRA reflectors start), pods and nodes LIST (limit and
 * continue) and WATCH (chunked, bookmarks every second, resume from a
 * resourceVersion by replaying the event log, WatchList with --watchlist or
 * 422 without it, as a server without the feature gate answers), Events
 * (201, the body echoed) and pods/eviction (201, then a DELETED event).
 *
 * The driver (run.py) talks to it on stdin/stdout, one line each way:
 *   phase rate=N ms=N health=N fail=N close=0|1 gone=0|1 grace_ms=N
 *     N MODIFIED pod events a second for ms milliseconds, `health` of them
 *     spread evenly turning one pod's GPU Unhealthy; every `fail`-th of those
 *     pods gets a 429 (Retry-After: 1) or a 500 on its first eviction; close
 *     cuts the pods watch mid-stream at a third of the phase, gone sends it a
 *     410 ERROR at two thirds (the controller must list again).  When every
 *     unhealthy pod has been evicted, or grace_ms after the end, it prints
 *     one line "result {json}" with the latencies (CLOCK_MONOTONIC: from the
 *     moment the health event's last byte was written to the socket, to the
 *     arrival of the pod's first eviction request and to the 201).
 *   stats   prints "stats {json}" (requests served so far, pods deleted).
 *   quit    exits.
 * It prints "READY <port>" when it listens on 127.0.0.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bench_e2e.h"
#include "pb.h"

#define MAX_IN (4u << 20)           /* the largest request we read */
#define WATCH_HIGH (4u << 20)       /* a watch's queue is filled up to this many bytes */
#define EVENTS_PER_CHUNK 64
#define BOOKMARK_MS 1000
#define POLL_MS 2
#define IOV_BATCH 512

enum pod_state { POD_HEALTHY, POD_UNHEALTHY, POD_DELETED };
enum ev_type { EV_MODIFIED, EV_UNHEALTHY, EV_DELETED, EV_DELETED_HEALTHY };
enum { PRE_ADDED, PRE_MODIFIED, PRE_DELETED };

/* A resource served from the cache: its bytes and where each object is. */
struct kind {
	const char *name;      /* "pods" */
	const char *kind;      /* "Pod" */
	char prefix[3][64];    /* of an ADDED, MODIFIED and DELETED event, up to the object's first field */
	const char *data;
	const struct bench_rec *recs;
	uint32_t n;
	/* Pods only: the same objects in protobuf (NULL for nodes: served as JSON). */
	const uint8_t *pb;
	const struct bench_pbrec *pbrecs;
	/* Pods only: the state now, and the history a LIST or a WatchList at an older
	 * resourceVersion reads (a snapshot, as kube-apiserver serves one). */
	uint8_t *state;
	uint64_t *rv;        /* the resourceVersion of the last change, 0 = as generated */
	uint64_t *sick_rv;   /* when its GPU turned Unhealthy, 0 = never */
	uint64_t *gone_rv;   /* when it was deleted, 0 = never */
};

/* A piece of a connection's output: bytes of the mapping (p) or of its own buffer (at off). */
struct seg {
	const char *p;
	size_t off, len;
	int32_t tag; /* TAG_NONE, TAG_EVENT (counts one event written) or the index of a health pod */
};
#define TAG_NONE (-1)
#define TAG_EVENT (-2)

enum conn_kind { CONN_REQUESTS, CONN_WATCH };

struct conn {
	int fd;
	char *in;
	size_t inlen, incap;
	struct seg *q;
	size_t qhead, qlen, qcap, qbytes, head_done;
	size_t qshift; /* segments moved out of the array's front so far: q_at() of a remembered position */
	char *own;
	size_t ownlen, owncap;
	enum conn_kind mode;
	bool pb;               /* this request (or watch) is answered in protobuf */
	struct kind *watch;    /* the resource watched */
	uint64_t cursor;       /* next event of the log to send */
	int64_t wl_pos;        /* WatchList: next object of the initial state, -1 when sent */
	uint64_t wl_snap;      /* WatchList: the log length the initial state stands for */
	uint64_t deadline_ns;  /* timeoutSeconds */
	uint64_t last_bm_ns;
	bool epollout, close_after, dead;
	bool poll_later; /* a WatchList's initial state waits for the socket: retried every POLL_MS */
	struct conn *next;
};

/* One pod whose GPU a phase turned unhealthy. */
struct track {
	uint32_t pod;
	uint64_t sent_ns, written_ns, first_evict_ns, accepted_ns;
	int fail; /* 0, 429 or 500: answered to its first eviction */
	bool after_fault;
	int attempts;
};

struct phase {
	bool on, producing;
	uint64_t rate, ms, health, fail, grace_ms;
	bool close, gone, closed_done, gone_done;
	uint64_t t0, produced, health_sent, sched; /* health_sent: sched + one after each fault */
	struct track *tr;
	uint64_t events_written0;
	uint64_t wrong0, dup0, unknown0, evict0;
};

static struct kind pods = { .name = "pods", .kind = "Pod" }, nodes = { .name = "nodes", .kind = "Node" };
static struct { uint32_t pod; uint8_t type; } *evlog;
static uint64_t evlen, evcap, compacted; /* watches from before `compacted` get 410 */
static bool watchlist;
static bool no_protobuf; /* --no-protobuf: JSON whatever the Accept header asks */
static int ep;
static unsigned polling; /* connections with poll_later set */
static struct conn *conns;
static struct phase ph;
static int32_t *track_of; /* pod -> index in ph.tr, -1 */
static uint64_t rng = 0x2545F4914F6CDD1DULL;
static struct {
	uint64_t lists, watches, watchlists, evictions, events_posted, other, unknown_paths;
	uint64_t events_written, bytes_written, wrong, dup, unknown_pods, failed_injected, closes, gones;
	uint64_t deleted;  /* pods deleted (after their eviction): a new LIST has that many fewer */
	uint64_t pod_lists_pb, pod_lists_json, pod_watches_pb, pod_watches_json; /* the encoding pods were served in */
} st;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "benchsrv: out of memory\n");
		abort();
	}
	return p;
}

static uint64_t cur_rv(void)
{
	return BENCH_LIST_RV + evlen;
}

/* ---- the cache ------------------------------------------------------------------- */

static const void *map_file(const char *dir, const char *name, size_t *ret_len)
{
	char path[4096];
	struct stat sb;
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		fprintf(stderr, "benchsrv: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	p = mmap(NULL, (size_t)sb.st_size ? (size_t)sb.st_size : 1, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "benchsrv: mmap %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
	*ret_len = (size_t)sb.st_size;
	return p;
}

static void load_kind(struct kind *k, const char *dir)
{
	char name[64];
	size_t len;

	snprintf(name, sizeof(name), "%s.json", k->name);
	k->data = map_file(dir, name, &len);
	snprintf(name, sizeof(name), "%s.idx", k->name);
	k->recs = map_file(dir, name, &len);
	k->n = (uint32_t)(len / sizeof(struct bench_rec));
	if (k == &pods) {
		size_t plen;

		k->pb = map_file(dir, "pods.pb", &plen);
		k->pbrecs = map_file(dir, "pods.pbidx", &plen);
		if (plen / sizeof(struct bench_pbrec) != k->n) {
			fprintf(stderr, "benchsrv: %s/pods.pbidx does not match pods.idx\n", dir);
			exit(1);
		}
	}
	for (int t = 0; t < 3; t++)
		snprintf(k->prefix[t], sizeof(k->prefix[t]), "{\"type\":\"%s\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"v1\",",
			 t == PRE_ADDED ? "ADDED" : t == PRE_MODIFIED ? "MODIFIED" : "DELETED", k->kind);
}

/* ---- output --------------------------------------------------------------------- */

static size_t own_add(struct conn *c, const void *p, size_t n)
{
	size_t off = c->ownlen;

	if (c->ownlen + n > c->owncap) {
		c->owncap = (c->ownlen + n) * 2 + 4096;
		c->own = xrealloc(c->own, c->owncap);
	}
	memcpy(c->own + off, p, n);
	c->ownlen += n;
	return off;
}

static void q_push(struct conn *c, const char *p, size_t off, size_t len, int32_t tag)
{
	if (c->qlen == c->qcap) {
		if (c->qhead > 0) {
			memmove(c->q, c->q + c->qhead, (c->qlen - c->qhead) * sizeof(*c->q));
			c->qlen -= c->qhead;
			c->qshift += c->qhead;
			c->qhead = 0;
		}
		if (c->qlen == c->qcap) {
			c->qcap = c->qcap ? c->qcap * 2 : 1024;
			c->q = xrealloc(c->q, c->qcap * sizeof(*c->q));
		}
	}
	c->q[c->qlen++] = (struct seg){ p, off, len, tag };
	c->qbytes += len;
}

/* A position in the queue that stays valid when q_push() moves the array: see q_at(). */
static size_t q_pos(const struct conn *c)
{
	return c->qshift + c->qlen;
}

static struct seg *q_at(struct conn *c, size_t pos)
{
	return &c->q[pos - c->qshift];
}

/* Bytes of the mapping (or static text): referenced, not copied. */
static void out_ref(struct conn *c, const char *p, size_t len)
{
	q_push(c, p, 0, len, TAG_NONE);
}

static void out_copy(struct conn *c, const void *p, size_t len)
{
	size_t off = own_add(c, p, len);

	q_push(c, NULL, off, len, TAG_NONE);
}

static void __attribute__((format(printf, 2, 3))) out_fmt(struct conn *c, const char *fmt, ...)
{
	char buf[8192];
	va_list a;
	int n;

	va_start(a, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, a);
	va_end(a);
	if (n < 0 || (size_t)n >= sizeof(buf))
		abort();
	out_copy(c, buf, (size_t)n);
}

static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->poll_later) {
		c->poll_later = false;
		polling--;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
}

static void set_epollout(struct conn *c, bool on)
{
	struct epoll_event e = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };

	if (c->epollout == on || c->dead)
		return;
	c->epollout = on;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void on_tag(int32_t tag, uint64_t t)
{
	if (tag == TAG_NONE)
		return;
	st.events_written++;
	if (tag >= 0 && ph.tr && ph.tr[tag].written_ns == 0)
		ph.tr[tag].written_ns = t;
}

/* Writes what the socket takes; returns -1 when the connection died. */
static int conn_flush(struct conn *c)
{
	while (c->qhead < c->qlen) {
		struct iovec iov[IOV_BATCH];
		int n = 0;
		ssize_t w;

		for (size_t i = c->qhead; i < c->qlen && n < IOV_BATCH; i++) {
			const struct seg *s = &c->q[i];
			const char *base = s->p ? s->p : c->own + s->off;
			size_t skip = i == c->qhead ? c->head_done : 0;

			if (s->len - skip == 0)
				continue;
			iov[n].iov_base = (void *)(base + skip);
			iov[n].iov_len = s->len - skip;
			n++;
		}
		if (n == 0) {
			/* Only empty (tag) segments left. */
			uint64_t t = now_ns();

			while (c->qhead < c->qlen)
				on_tag(c->q[c->qhead++].tag, t);
			break;
		}
		w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			conn_kill(c);
			return -1;
		}
		st.bytes_written += (uint64_t)w;
		c->qbytes -= (size_t)w;
		{
			uint64_t t = now_ns();
			size_t left = (size_t)w;

			while (c->qhead < c->qlen) {
				struct seg *s = &c->q[c->qhead];
				size_t rest = s->len - c->head_done;

				if (rest > left) {
					c->head_done += left;
					break;
				}
				left -= rest;
				c->head_done = 0;
				c->qhead++;
				on_tag(s->tag, t);
			}
		}
	}
	if (c->qhead == c->qlen) {
		c->qshift += c->qlen;
		c->qhead = c->qlen = 0;
		c->ownlen = 0;
		c->head_done = 0;
		set_epollout(c, false);
		if (c->close_after) {
			conn_kill(c);
			return -1;
		}
	} else if (c->wl_pos >= 0) {
		/*
		 * Streaming a WatchList's initial state as fast as the client reads: waking at
		 * every EPOLLOUT (each time it has read a few tens of KB) would cost the server
		 * more CPU than the bytes do.  A timer comes back every POLL_MS instead.
		 */
		set_epollout(c, false);
		if (!c->poll_later)
			polling++;
		c->poll_later = true;
	} else {
		set_epollout(c, true);
	}
	return 0;
}

static const char status_tail[] = "\r\nContent-Type: application/json\r\nCache-Control: no-cache, private\r\n";
static const char status_tail_pb[] =
	"\r\nContent-Type: application/vnd.kubernetes.protobuf\r\nCache-Control: no-cache, private\r\n";
static const char status_tail_pb_watch[] =
	"\r\nContent-Type: application/vnd.kubernetes.protobuf;stream=watch\r\nCache-Control: no-cache, private\r\n";

/* ---- protobuf ------------------------------------------------------------------- */

/*
 * kube-apiserver's protobuf (application/vnd.kubernetes.protobuf): an object
 * is "k8s\0" then a runtime.Unknown {1: typeMeta {1: apiVersion, 2: kind},
 * 2: raw (the object's message), 3: contentEncoding "", 4: contentType ""};
 * a watch (";stream=watch") is frames of a 4-byte big-endian length and a
 * metav1.WatchEvent {1: type, 2: object: RawExtension {1: raw (an object as
 * above)}}, written without the Unknown wrapper.
 */
static const uint8_t pb_unknown_tail[4] = { 0x1a, 0x00, 0x22, 0x00 };

/* The bytes of an object before its message (raw of objlen bytes); pb_unknown_tail follows it. */
static size_t pb_unknown_head(uint8_t *out, const char *kind, size_t objlen)
{
	size_t kl = strlen(kind);
	uint8_t *p = out;

	memcpy(p, PB_K8S_MAGIC, PB_K8S_MAGIC_LEN);
	p += PB_K8S_MAGIC_LEN;
	*p++ = 0x0a;
	*p++ = (uint8_t)(4 + 2 + kl);
	memcpy(p, "\x0a\x02v1\x12", 5);
	p += 5;
	*p++ = (uint8_t)kl;
	memcpy(p, kind, kl);
	p += kl;
	*p++ = 0x12;
	p += pb_varint_put(p, objlen);
	return (size_t)(p - out);
}

static size_t pb_unknown_size(const char *kind, size_t objlen)
{
	return PB_K8S_MAGIC_LEN + 2 + 4 + 2 + strlen(kind) + 1 + pb_varint_size(objlen) + objlen + sizeof(pb_unknown_tail);
}

/* A watch frame up to the object's message (objlen bytes of kind); pb_unknown_tail follows it. At most 64 bytes. */
static size_t pb_event_head(uint8_t *out, const char *type, const char *kind, size_t objlen)
{
	size_t tl = strlen(type), raw = pb_unknown_size(kind, objlen), re = 1 + pb_varint_size(raw) + raw,
	       ev = 1 + pb_varint_size(tl) + tl + 1 + pb_varint_size(re) + re;
	uint8_t *p = out;

	*p++ = (uint8_t)(ev >> 24);
	*p++ = (uint8_t)(ev >> 16);
	*p++ = (uint8_t)(ev >> 8);
	*p++ = (uint8_t)ev;
	*p++ = 0x0a;
	p += pb_varint_put(p, tl);
	memcpy(p, type, tl);
	p += tl;
	*p++ = 0x12;
	p += pb_varint_put(p, re);
	*p++ = 0x0a;
	p += pb_varint_put(p, raw);
	return (size_t)(p - out) + pb_unknown_head(p, kind, objlen);
}

/* A metav1.Status message (metadata written empty, as Go writes a ListMeta). */
static void pb_status(struct pbw *w, const char *status, const char *msg, const char *reason, int code)
{
	pb_begin(w, 1);
	pb_str(w, 1, "");
	pb_str(w, 2, "");
	pb_str(w, 3, "");
	pb_end(w);
	pb_str(w, 2, status);
	pb_str(w, 3, msg);
	pb_str(w, 4, reason);
	pb_int(w, 6, code);
}

/* A whole watch frame of a Status (the 410 ERROR event) into w. */
static void pb_status_frame(struct pbw *w, const char *msg, const char *reason, int code)
{
	struct pbw obj = { 0 };
	uint8_t head[64];

	pb_status(&obj, "Failure", msg, reason, code);
	pb_reset(w);
	pb_raw(w, head, pb_event_head(head, "ERROR", "Status", obj.len));
	pb_raw(w, obj.buf, obj.len);
	pb_raw(w, pb_unknown_tail, sizeof(pb_unknown_tail));
	pb_free(&obj);
}

static void respond(struct conn *c, int code, const char *reason, const char *extra, const char *body, size_t len)
{
	out_fmt(c, "HTTP/1.1 %d %s%sContent-Length: %zu\r\n%s\r\n", code, reason, c->pb ? status_tail_pb : status_tail,
		len, extra ? extra : "");
	out_copy(c, body, len);
}

/* A metav1.Status answer, in protobuf when the request asked for it (msg is JSON-escaped). */
static void respond_status(struct conn *c, int code, const char *reason, const char *kreason, const char *msg,
			   const char *extra)
{
	char body[2048];
	int n;

	if (c->pb) {
		struct pbw obj = { 0 };
		uint8_t out[2048];
		size_t m = 0, len;

		/* The message without its JSON escapes. */
		for (const char *q = msg; *q && m < sizeof(body) - 1; q++)
			if (!(q[0] == '\\' && q[1]))
				body[m++] = *q;
			else
				body[m++] = *++q;
		body[m] = 0;
		pb_status(&obj, code < 300 ? "Success" : "Failure", body, kreason, code);
		len = pb_unknown_head(out, "Status", obj.len);
		if (len + obj.len + sizeof(pb_unknown_tail) > sizeof(out))
			abort();
		memcpy(out + len, obj.buf, obj.len);
		len += obj.len;
		memcpy(out + len, pb_unknown_tail, sizeof(pb_unknown_tail));
		len += sizeof(pb_unknown_tail);
		pb_free(&obj);
		respond(c, code, reason, extra, (const char *)out, len);
		return;
	}
	n = snprintf(body, sizeof(body),
		     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"%s\",\"message\":\"%s\","
		     "\"reason\":\"%s\",\"code\":%d}",
		     code < 300 ? "Success" : "Failure", msg, kreason, code);
	respond(c, code, reason, extra, body, (size_t)n);
}

/* ---- LIST ----------------------------------------------------------------------- */

/*
 * An object's bytes from the mapping, with rv (when given) in place of its
 * resourceVersion and, when sick, "Unhealthy" in place of its GPU's
 * "Healthy".  `skip` leaves out the opening '{' (a watch event's prefix has
 * opened the object with its kind and apiVersion).
 */
static void out_object(struct conn *c, const struct kind *k, uint32_t i, size_t skip, uint64_t rv, bool sick)
{
	const struct bench_rec *r = &k->recs[i];
	const char *p = k->data + r->off;
	size_t at = skip;

	if (rv) {
		char d[BENCH_RV_DIGITS];

		for (int j = BENCH_RV_DIGITS - 1; j >= 0; j--, rv /= 10)
			d[j] = (char)('0' + rv % 10);
		out_ref(c, p + at, r->rv_rel - at);
		out_copy(c, d, BENCH_RV_DIGITS);
		at = r->rv_rel + BENCH_RV_DIGITS;
	}
	if (sick) {
		out_ref(c, p + at, r->health_rel - at);
		out_ref(c, "Unhealthy", 9);
		at = r->health_rel + 7;
	}
	out_ref(c, p + at, r->len - at);
}

/*
 * A pod's Pod message in protobuf, the same as out_object(): rv (when given)
 * in place of its resourceVersion and, when sick, "Unhealthy" in place of
 * "Healthy", which makes each message around it 2 bytes longer (the lengths
 * on that path, bench_pbrec.path, are written again; one may need a byte
 * more).  pb_pod_len() is the length it writes.
 */
static size_t pb_pod_len(const struct kind *k, uint32_t i, bool sick)
{
	const struct bench_pbrec *r = &k->pbrecs[i];
	const uint8_t *p = k->pb + r->off + r->hdr, *end = p + r->len;
	size_t n = r->len;

	if (sick) {
		n += 2;
		for (int j = 0; j < BENCH_PB_PATH; j++) {
			size_t w;
			uint64_t v = pb_varint_get(p + r->path[j], end, &w);

			n += pb_varint_size(v + 2) - w;
		}
	}
	return n;
}

static void out_pod_pb(struct conn *c, const struct kind *k, uint32_t i, uint64_t rv, bool sick)
{
	const struct bench_pbrec *r = &k->pbrecs[i];
	const uint8_t *p = k->pb + r->off + r->hdr, *end = p + r->len;
	size_t at = 0;

	if (rv) {
		char d[BENCH_RV_DIGITS];

		for (int j = BENCH_RV_DIGITS - 1; j >= 0; j--, rv /= 10)
			d[j] = (char)('0' + rv % 10);
		out_ref(c, (const char *)p, r->rv_rel);
		out_copy(c, d, BENCH_RV_DIGITS);
		at = r->rv_rel + BENCH_RV_DIGITS;
	}
	if (sick) {
		uint8_t v[10];

		for (int j = 0; j < BENCH_PB_PATH; j++) {
			size_t w;
			uint64_t len = pb_varint_get(p + r->path[j], end, &w);

			out_ref(c, (const char *)p + at, r->path[j] - at);
			out_copy(c, v, pb_varint_put(v, len + 2));
			at = r->path[j] + w;
		}
		out_ref(c, (const char *)p + at, r->health_rel - 1 - at);
		out_ref(c, "\x09Unhealthy", 10);
		at = r->health_rel + 7;
	}
	out_ref(c, (const char *)p + at, r->len - at);
}

/* An object as it was at resourceVersion `at`. */
struct view {
	bool present, sick;
	uint64_t rv; /* 0: as generated */
};

static struct view view_at(const struct kind *k, uint32_t i, uint64_t at)
{
	struct view v = { true, false, 0 };

	if (!k->state)
		return v;
	v.present = !k->gone_rv[i] || k->gone_rv[i] > at;
	v.sick = k->sick_rv[i] && k->sick_rv[i] <= at;
	/* Churn in between changed nothing but the resourceVersion: the one of the turn to
	 * Unhealthy (or as generated) stands for it, the watch from `at` replays the rest. */
	v.rv = k->rv[i] <= at ? k->rv[i] : v.sick ? k->sick_rv[i] : 0;
	return v;
}

static const char *qparam(const char *query, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);

	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);

		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t v = len - n - 1;

			if (v >= size)
				v = size - 1;
			memcpy(buf, p + n + 1, v);
			buf[v] = 0;
			return buf;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

/*
 * Queues the objects [*run, end) (with the commas between them in the file, or
 * in protobuf as PodList items), if a run is open.
 */
static void end_run(struct conn *c, const struct kind *k, int64_t *run, uint32_t end)
{
	if (*run < 0)
		return;
	if (c->pb) {
		const struct bench_pbrec *a = &k->pbrecs[*run], *b = &k->pbrecs[end - 1];

		out_ref(c, (const char *)k->pb + a->off, b->off + b->hdr + b->len - a->off);
	} else {
		const struct bench_rec *a = &k->recs[*run], *b = &k->recs[end - 1];

		out_ref(c, k->data + a->off, b->off + b->len - a->off);
	}
	*run = -1;
}

/* The LIST page's bytes before its items, in protobuf: the HTTP head, the Unknown, the PodList's metadata. */
static size_t pb_list_head(char *out, size_t size, const struct kind *k, uint64_t rv, const char *cont, size_t items)
{
	struct pbw lm = { 0 };
	char kind[32], digits[24];
	size_t obj, n;
	uint8_t un[64];
	int hn;

	pb_begin(&lm, 1); /* ListMeta */
	pb_str(&lm, 1, "");
	snprintf(digits, sizeof(digits), "%" PRIu64, rv);
	pb_str(&lm, 2, digits);
	pb_str(&lm, 3, cont);
	pb_end(&lm);
	snprintf(kind, sizeof(kind), "%sList", k->kind);
	obj = lm.len + items;
	n = pb_unknown_head(un, kind, obj);
	hn = snprintf(out, size, "HTTP/1.1 200 OK%sContent-Length: %zu\r\n\r\n", status_tail_pb,
		      n + obj + sizeof(pb_unknown_tail));
	if (hn < 0 || (size_t)hn + n + lm.len > size)
		abort();
	memcpy(out + hn, un, n);
	memcpy(out + (size_t)hn + n, lm.buf, lm.len);
	n += (size_t)hn + lm.len;
	pb_free(&lm);
	return n;
}

static void serve_list(struct conn *c, struct kind *k, const char *query)
{
	char buf[128], cont[64] = "";
	uint64_t limit = 0, start = 0, rv = cur_rv();
	size_t hdr, body0;
	uint32_t i, taken = 0;
	int64_t run = -1; /* first object of the open run */

	if (qparam(query, "limit", buf, sizeof(buf)))
		limit = strtoull(buf, NULL, 10);
	if (qparam(query, "continue", buf, sizeof(buf))) {
		unsigned long long s, r;

		if (sscanf(buf, "c%llux%llu", &s, &r) != 2 || s > k->n) {
			respond_status(c, 400, "Bad Request", "BadRequest", "invalid continue token", NULL);
			return;
		}
		start = s;
		rv = r;
		if (k->state && r < BENCH_LIST_RV + compacted) {
			respond_status(c, 410, "Gone", "Expired",
				       "The provided continue parameter is too old to display a consistent list result.",
				       NULL);
			return;
		}
	}
	st.lists++;
	if (k == &pods)
		(*(c->pb ? &st.pod_lists_pb : &st.pod_lists_json))++;
	/* The header's length is known only at the end: a placeholder segment, filled in below. */
	hdr = q_pos(c);
	q_push(c, NULL, 0, 0, TAG_NONE);
	body0 = c->qbytes;
	for (i = (uint32_t)start; i < k->n && (!limit || taken < limit); i++) {
		struct view v = view_at(k, i, rv);

		if (v.present && !v.sick && !v.rv) {
			/* Unchanged since generated: part of a run of bytes straight from the mapping. */
			if (run < 0) {
				if (taken && !c->pb)
					out_ref(c, ",", 1);
				run = i;
			}
			taken++;
			continue;
		}
		end_run(c, k, &run, i);
		if (!v.present)
			continue;
		if (c->pb) {
			uint8_t h[11];

			h[0] = 0x12; /* PodList.items */
			out_copy(c, h, 1 + pb_varint_put(h + 1, pb_pod_len(k, i, v.sick)));
			out_pod_pb(c, k, i, v.rv, v.sick);
		} else {
			if (taken)
				out_ref(c, ",", 1);
			out_object(c, k, i, 0, v.rv, v.sick);
		}
		taken++;
	}
	end_run(c, k, &run, i);
	while (i < k->n && !view_at(k, i, rv).present)
		i++;
	if (c->pb) {
		char head[1024];
		size_t hn;

		if (i < k->n)
			snprintf(cont, sizeof(cont), "c%ux%" PRIu64, i, rv);
		hn = pb_list_head(head, sizeof(head), k, rv, cont, c->qbytes - body0);
		q_at(c, hdr)->off = own_add(c, head, hn);
		q_at(c, hdr)->len = hn;
		c->qbytes += hn;
		out_ref(c, (const char *)pb_unknown_tail, sizeof(pb_unknown_tail));
		return;
	}
	if (i < k->n)
		snprintf(cont, sizeof(cont), ",\"continue\":\"c%ux%" PRIu64 "\"", i, rv);
	out_ref(c, "]}", 2);
	{
		char head[1024], list[512];
		int ln = snprintf(list, sizeof(list),
				  "{\"kind\":\"%sList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"%" PRIu64
				  "\"%s},\"items\":[",
				  k->kind, rv, cont);
		size_t blen = c->qbytes - body0 + (size_t)ln;
		int hn = snprintf(head, sizeof(head), "HTTP/1.1 200 OK%sContent-Length: %zu\r\n\r\n%s", status_tail, blen,
				  list);
		size_t off = own_add(c, head, (size_t)hn);

		q_at(c, hdr)->off = off;
		q_at(c, hdr)->len = (size_t)hn;
		c->qbytes += (size_t)hn;
	}
}

/* ---- WATCH ---------------------------------------------------------------------- */

static void chunk_begin(struct conn *c, size_t *hdr, size_t *bytes0)
{
	*hdr = q_pos(c);
	q_push(c, NULL, own_add(c, "00000000\r\n", 10), 10, TAG_NONE);
	*bytes0 = c->qbytes;
}

static void chunk_end(struct conn *c, size_t hdr, size_t bytes0)
{
	size_t n = c->qbytes - bytes0;
	char *h = c->own + q_at(c, hdr)->off;

	for (int j = 7; j >= 0; j--, n >>= 4)
		h[j] = "0123456789abcdef"[n & 15];
	out_ref(c, "\r\n", 2);
}

/* A watch event: the fixed prefix, the object from its second byte on, the fixed end. */
/* In protobuf: the frame's head (built per event: its lengths depend on the pod's), the Pod, the tail. */
static void out_event(struct conn *c, int pre, const struct kind *k, uint32_t i, uint64_t rv, bool sick, int32_t tag)
{
	if (c->pb) {
		static const char *const types[] = { "ADDED", "MODIFIED", "DELETED" };
		uint8_t h[64];

		out_copy(c, h, pb_event_head(h, types[pre], k->kind, pb_pod_len(k, i, sick)));
		out_pod_pb(c, k, i, rv, sick);
		q_push(c, (const char *)pb_unknown_tail, 0, sizeof(pb_unknown_tail), tag);
		return;
	}
	out_ref(c, k->prefix[pre], strlen(k->prefix[pre]));
	out_object(c, k, i, 1, rv, sick);
	q_push(c, "}\n", 0, 2, tag);
}

/*
 * A bookmark's object in protobuf: a Pod with nothing but its resourceVersion
 * (and the annotation that ends a WatchList's initial events), every field
 * Go's marshaller writes for an empty Pod included.
 */
static void pb_bookmark_pod(struct pbw *w, uint64_t rv, bool initial_end)
{
	char digits[24];

	snprintf(digits, sizeof(digits), "%" PRIu64, rv);
	pb_begin(w, 1); /* ObjectMeta */
	for (uint32_t f = 1; f <= 5; f++)
		pb_str(w, f, "");
	pb_str(w, 6, digits);
	pb_int(w, 7, 0);
	pb_time(w, 8, 0);
	if (initial_end)
		pb_map_str(w, 12, "k8s.io/initial-events-end", "true");
	pb_end(w);
	pb_begin(w, 2); /* PodSpec */
	pb_str(w, 3, "");
	pb_str(w, 6, "");
	pb_str(w, 8, "");
	pb_str(w, 9, "");
	pb_str(w, 10, "");
	pb_int(w, 11, 0);
	pb_int(w, 12, 0);
	pb_int(w, 13, 0);
	pb_str(w, 16, "");
	pb_str(w, 17, "");
	pb_str(w, 19, "");
	pb_str(w, 24, "");
	pb_end(w);
	pb_begin(w, 3); /* PodStatus */
	pb_str(w, 1, "");
	pb_str(w, 3, "");
	pb_str(w, 4, "");
	pb_str(w, 5, "");
	pb_str(w, 6, "");
	pb_str(w, 9, "");
	pb_str(w, 11, "");
	pb_str(w, 14, "");
	pb_int(w, 17, 0);
	pb_end(w);
}

static void out_bookmark(struct conn *c, struct kind *k, bool initial_end)
{
	uint64_t rv = BENCH_LIST_RV + (initial_end ? c->wl_snap : evlen);
	size_t hdr, b0;

	chunk_begin(c, &hdr, &b0);
	if (c->pb) {
		struct pbw w = { 0 };
		uint8_t h[64];

		pb_bookmark_pod(&w, rv, initial_end);
		out_copy(c, h, pb_event_head(h, "BOOKMARK", k->kind, w.len));
		out_copy(c, w.buf, w.len);
		out_ref(c, (const char *)pb_unknown_tail, sizeof(pb_unknown_tail));
		pb_free(&w);
	} else {
		out_fmt(c, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"%" PRIu64 "\"%s}}}\n",
			k->kind, rv, initial_end ? ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}" : "");
	}
	chunk_end(c, hdr, b0);
	c->last_bm_ns = now_ns();
}

/* The ERROR event of a watch from a compacted resourceVersion, in JSON and (built in main) protobuf. */
static const char gone_json[] =
	"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
	"\"status\":\"Failure\",\"message\":\"too old resource version\",\"reason\":\"Expired\",\"code\":410}}\n";
static struct pbw gone_pb;

static void out_gone(struct conn *c)
{
	if (c->pb)
		out_ref(c, (const char *)gone_pb.buf, gone_pb.len);
	else
		out_ref(c, gone_json, sizeof(gone_json) - 1);
}

static bool watch_has_more(const struct conn *c)
{
	return c->wl_pos >= 0 || (c->watch->state && c->cursor < evlen);
}

/*
 * Fills a watch's queue up to WATCH_HIGH from the initial state, then from
 * the event log, and writes; again while the socket takes it all (nothing
 * else would call it back: EPOLLOUT is off once the queue is empty).
 */
static void pump(struct conn *c)
{
	struct kind *k = c->watch;

	if (c->dead || c->mode != CONN_WATCH || c->close_after)
		return;
	do {
		while (c->qbytes < WATCH_HIGH && watch_has_more(c)) {
			size_t hdr, b0;
			int n = 0;

			if (c->wl_pos >= 0) {
				if ((uint64_t)c->wl_pos >= k->n) {
					c->wl_pos = -1;
					out_bookmark(c, k, true);
					continue;
				}
				chunk_begin(c, &hdr, &b0);
				for (; (uint64_t)c->wl_pos < k->n && n < EVENTS_PER_CHUNK; c->wl_pos++) {
					if (!view_at(k, (uint32_t)c->wl_pos, BENCH_LIST_RV + c->wl_snap).present)
						continue;
					struct view v = view_at(k, (uint32_t)c->wl_pos, BENCH_LIST_RV + c->wl_snap);

					out_event(c, PRE_ADDED, k, (uint32_t)c->wl_pos, v.rv, v.sick, TAG_NONE);
					n++;
				}
				chunk_end(c, hdr, b0);
				continue;
			}
			chunk_begin(c, &hdr, &b0);
			for (; c->cursor < evlen && n < EVENTS_PER_CHUNK; c->cursor++, n++) {
				uint32_t pod = evlog[c->cursor].pod;
				uint8_t type = evlog[c->cursor].type;
				int32_t tag = TAG_EVENT;

				if (type == EV_UNHEALTHY && track_of[pod] >= 0)
					tag = track_of[pod];
				out_event(c, type == EV_DELETED || type == EV_DELETED_HEALTHY ? PRE_DELETED : PRE_MODIFIED, k,
					  pod, BENCH_LIST_RV + c->cursor + 1, type == EV_UNHEALTHY || type == EV_DELETED,
					  tag);
			}
			chunk_end(c, hdr, b0);
		}
		if (conn_flush(c) < 0)
			return;
	} while (c->qbytes == 0 && watch_has_more(c));
}

static void serve_watch(struct conn *c, struct kind *k, const char *query)
{
	char buf[64];
	bool initial = qparam(query, "sendInitialEvents", buf, sizeof(buf)) && strcmp(buf, "true") == 0;
	uint64_t timeout = 1800, rv = 0;

	if (qparam(query, "timeoutSeconds", buf, sizeof(buf)))
		timeout = strtoull(buf, NULL, 10);
	if (initial && !watchlist) {
		respond_status(c, 422, "Unprocessable Entity", "Invalid",
			       "ListOptions.meta.k8s.io \\\"\\\" is invalid: sendInitialEvents: Forbidden: "
			       "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
			       NULL);
		return;
	}
	if (qparam(query, "resourceVersion", buf, sizeof(buf)))
		rv = strtoull(buf, NULL, 10);
	if (!initial && rv && k->state && rv < BENCH_LIST_RV + compacted) {
		/* As kube-apiserver: 200, then one ERROR event. */
		size_t hdr, b0;

		out_fmt(c, "HTTP/1.1 200 OK%sTransfer-Encoding: chunked\r\n\r\n",
			c->pb ? status_tail_pb_watch : status_tail);
		chunk_begin(c, &hdr, &b0);
		out_gone(c);
		chunk_end(c, hdr, b0);
		out_ref(c, "0\r\n\r\n", 5);
		return;
	}
	st.watches++;
	if (k == &pods)
		(*(c->pb ? &st.pod_watches_pb : &st.pod_watches_json))++;
	out_fmt(c, "HTTP/1.1 200 OK%sTransfer-Encoding: chunked\r\n\r\n", c->pb ? status_tail_pb_watch : status_tail);
	c->mode = CONN_WATCH;
	c->watch = k;
	c->deadline_ns = now_ns() + timeout * 1000000000ULL;
	c->last_bm_ns = now_ns();
	c->wl_pos = -1;
	if (initial) {
		st.watchlists++;
		c->wl_pos = 0;
		c->wl_snap = evlen;
		c->cursor = evlen;
	} else if (rv >= BENCH_LIST_RV) {
		c->cursor = rv - BENCH_LIST_RV < evlen ? rv - BENCH_LIST_RV : evlen;
	} else {
		c->cursor = evlen;
	}
	pump(c);
}

/* Ends a watch cleanly (the last chunk), as a server does at timeoutSeconds; gone: after a 410 ERROR event. */
static void watch_end(struct conn *c, bool gone)
{
	if (gone) {
		size_t hdr, b0;

		chunk_begin(c, &hdr, &b0);
		out_gone(c);
		chunk_end(c, hdr, b0);
	}
	out_ref(c, "0\r\n\r\n", 5);
	c->close_after = true;
	conn_flush(c);
}

/* ---- events and evictions ----------------------------------------------------------- */

static void log_event(uint32_t pod, uint8_t type)
{
	if (evlen == evcap) {
		evcap = evcap ? evcap * 2 : 1 << 16;
		evlog = xrealloc(evlog, evcap * sizeof(*evlog));
	}
	evlog[evlen].pod = pod;
	evlog[evlen].type = type;
	evlen++;
	pods.rv[pod] = cur_rv();
	if (type == EV_UNHEALTHY)
		pods.sick_rv[pod] = cur_rv();
	else if ((type == EV_DELETED || type == EV_DELETED_HEALTHY) && !pods.gone_rv[pod]) {
		pods.gone_rv[pod] = cur_rv();
		st.deleted++;
	}
}

/* Pod index from ".../namespaces/NS/pods/NAME/eviction", or -1 when it is none of ours. */
static int64_t pod_of(const char *path)
{
	const char *ns = path + strlen("/api/v1/namespaces/"), *slash = strchr(ns, '/'), *name, *end;
	uint64_t v = 0;
	char expect[64];

	if (!slash || strncmp(slash, "/pods/", 6) != 0)
		return -1;
	name = slash + 6;
	end = strchr(name, '/');
	if (!end || end - name < 6)
		return -1;
	for (const char *p = end - 5; p < end; p++) {
		const char *at = strchr(bench_suffix_alphabet, *p);

		if (!at || !*p)
			return -1;
		v = v * BENCH_SUFFIX_BASE + (uint64_t)(at - bench_suffix_alphabet);
	}
	if (v >= pods.n)
		return -1;
	snprintf(expect, sizeof(expect), "team-%02u/pods/train-%u-7d9f8c6b5-", (unsigned)(v / 10 % BENCH_NAMESPACES),
		 (unsigned)(v / 10));
	if (strncmp(ns, expect, strlen(expect)) != 0)
		return -1;
	return (int64_t)v;
}

static void serve_eviction(struct conn *c, const char *path, uint64_t t)
{
	int64_t i = pod_of(path);
	struct track *tr = NULL;

	st.evictions++;
	if (i < 0) {
		st.unknown_pods++;
		respond_status(c, 404, "Not Found", "NotFound", "pods not found", NULL);
		return;
	}
	if (pods.state[i] == POD_DELETED) {
		st.dup++;
		respond_status(c, 404, "Not Found", "NotFound", "pods not found", NULL);
		return;
	}
	if (pods.state[i] == POD_HEALTHY) {
		st.wrong++;
		fprintf(stderr, "benchsrv: WRONG eviction of healthy pod %s\n", path);
	} else if (ph.tr && track_of[i] >= 0) {
		tr = &ph.tr[track_of[i]];
		tr->attempts++;
		if (!tr->first_evict_ns)
			tr->first_evict_ns = t;
		if (tr->fail > 0) {
			int code = tr->fail;

			tr->fail = -code; /* answered once */
			st.failed_injected++;
			if (code == 429)
				respond_status(c, 429, "Too Many Requests", "TooManyRequests",
					       "Too many requests, please try again later.", "Retry-After: 1\r\n");
			else
				respond_status(c, 500, "Internal Server Error", "InternalError",
					       "Internal error occurred: etcdserver: request timed out", NULL);
			return;
		}
		tr->accepted_ns = t;
	}
	log_event((uint32_t)i, pods.state[i] == POD_UNHEALTHY ? EV_DELETED : EV_DELETED_HEALTHY);
	pods.state[i] = POD_DELETED;
	respond_status(c, 201, "Created", "", "", NULL);
}

/* ---- requests --------------------------------------------------------------------- */

static const char discovery_apis[] =
	"{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":["
	"{\"name\":\"apps\",\"versions\":[{\"groupVersion\":\"apps/v1\",\"version\":\"v1\"}],"
	"\"preferredVersion\":{\"groupVersion\":\"apps/v1\",\"version\":\"v1\"}},"
	"{\"name\":\"events.k8s.io\",\"versions\":[{\"groupVersion\":\"events.k8s.io/v1\",\"version\":\"v1\"}],"
	"\"preferredVersion\":{\"groupVersion\":\"events.k8s.io/v1\",\"version\":\"v1\"}},"
	"{\"name\":\"policy\",\"versions\":[{\"groupVersion\":\"policy/v1\",\"version\":\"v1\"}],"
	"\"preferredVersion\":{\"groupVersion\":\"policy/v1\",\"version\":\"v1\"}},"
	"{\"name\":\"coordination.k8s.io\",\"versions\":[{\"groupVersion\":\"coordination.k8s.io/v1\",\"version\":\"v1\"}],"
	"\"preferredVersion\":{\"groupVersion\":\"coordination.k8s.io/v1\",\"version\":\"v1\"}}]}";
static const char discovery_api[] =
	"{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],\"serverAddressByClientCIDRs\":"
	"[{\"clientCIDR\":\"0.0.0.0/0\",\"serverAddress\":\"127.0.0.1:6443\"}]}";
static const char version_json[] =
	"{\"major\":\"1\",\"minor\":\"36\",\"gitVersion\":\"v1.36.1\",\"gitCommit\":\"bench-e2e\","
	"\"gitTreeState\":\"clean\",\"buildDate\":\"2026-11-01T00:00:00Z\",\"goVersion\":\"go1.25.3\","
	"\"compiler\":\"gc\",\"platform\":\"linux/amd64\"}";

/*
 * Whether an Accept header asks for protobuf before JSON, as kube-apiserver
 * negotiates: the media range of the highest q wins, the first listed among
 * equals; any type (star/star) and application/star mean JSON, the server's first choice.
 */
static bool accept_protobuf(const char *a, size_t n)
{
	static const char pb_type[] = "application/vnd.kubernetes.protobuf";
	double best_q = 0;
	bool best_pb = false;

	while (n > 0) {
		size_t item = 0, tlen;
		double q = 1;
		int kind; /* 0 unknown, 1 JSON, 2 protobuf */
		const char *t, *semi;

		while (item < n && a[item] != ',')
			item++;
		t = a;
		while (t < a + item && (*t == ' ' || *t == '\t'))
			t++;
		semi = memchr(t, ';', (size_t)(a + item - t));
		tlen = (size_t)((semi ? semi : a + item) - t);
		while (tlen && (t[tlen - 1] == ' ' || t[tlen - 1] == '\t'))
			tlen--;
		for (const char *p = semi; p && p < a + item; p = memchr(p + 1, ';', (size_t)(a + item - p - 1))) {
			const char *v = p + 1;

			while (v < a + item && *v == ' ')
				v++;
			if (a + item - v > 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=')
				q = strtod(v + 2, NULL);
		}
		if (tlen == sizeof(pb_type) - 1 && strncasecmp(t, pb_type, tlen) == 0)
			kind = 2;
		else if ((tlen == 16 && strncasecmp(t, "application/json", 16) == 0) ||
			 (tlen == 13 && strncasecmp(t, "application/*", 13) == 0) || (tlen == 3 && strncmp(t, "*/*", 3) == 0))
			kind = 1;
		else
			kind = 0;
		if (kind && q > best_q) {
			best_q = q;
			best_pb = kind == 2;
		}
		a += item;
		n -= item;
		if (n) {
			a++;
			n--;
		}
	}
	return best_pb;
}

static void serve(struct conn *c, const char *method, char *target, const char *body, size_t blen, uint64_t t,
		  bool want_pb)
{
	char *query = strchr(target, '?');
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	char buf[16];

	if (query)
		*query++ = 0;
	if (get && strcmp(target, "/version") == 0) {
		respond(c, 200, "OK", NULL, version_json, sizeof(version_json) - 1);
	} else if (get && strcmp(target, "/apis") == 0) {
		respond(c, 200, "OK", NULL, discovery_apis, sizeof(discovery_apis) - 1);
	} else if (get && strcmp(target, "/api") == 0) {
		respond(c, 200, "OK", NULL, discovery_api, sizeof(discovery_api) - 1);
	} else if (get && (strcmp(target, "/healthz") == 0 || strcmp(target, "/readyz") == 0 ||
			   strcmp(target, "/livez") == 0)) {
		respond(c, 200, "OK", NULL, "ok", 2);
	} else if (get && (strcmp(target, "/api/v1/pods") == 0 || strcmp(target, "/api/v1/nodes") == 0)) {
		struct kind *k = target[8] == 'p' ? &pods : &nodes;

		/*
		 * Pods in protobuf when asked, as kube-apiserver serves every built-in type.
		 * Nodes stay JSON even then (a real server would send protobuf): the
		 * controller lists application/json as its second choice, and only pods'
		 * decoding is what the benchmark measures.
		 */
		c->pb = want_pb && k == &pods && !no_protobuf;

		if (qparam(query, "watch", buf, sizeof(buf)) && (strcmp(buf, "1") == 0 || strcmp(buf, "true") == 0))
			serve_watch(c, k, query);
		else
			serve_list(c, k, query);
	} else if (post && strncmp(target, "/api/v1/namespaces/", 19) == 0 && strstr(target, "/eviction")) {
		serve_eviction(c, target, t);
	} else if ((post || strcmp(method, "PATCH") == 0) && strncmp(target, "/api/v1/namespaces/", 19) == 0 &&
		   strstr(target, "/events")) {
		/* The controller reads the name the server gave the Event: echo the object. */
		st.events_posted++;
		respond(c, post ? 201 : 200, post ? "Created" : "OK", NULL, body, blen);
	} else {
		st.unknown_paths++;
		if (st.unknown_paths <= 20)
			fprintf(stderr, "benchsrv: not served: %s %s%s%s\n", method, target, query ? "?" : "",
				query ? query : "");
		respond_status(c, 404, "Not Found", "NotFound", "the server could not find the requested resource",
			       NULL);
	}
}

/* Serves every complete request in the input buffer (none while the connection is a watch). */
static void conn_input(struct conn *c)
{
	uint64_t t = now_ns();

	while (!c->dead && c->mode == CONN_REQUESTS) {
		char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4), *sp1, *sp2, *line_end, *h;
		size_t hlen, clen = 0, total;
		char method[16], target[8192];
		const char *accept = NULL;
		size_t accept_len = 0;

		if (!end)
			return;
		hlen = (size_t)(end - c->in) + 4;
		*end = 0;
		line_end = strstr(c->in, "\r\n");
		sp1 = strchr(c->in, ' ');
		sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		if (!sp1 || !sp2 || (line_end && sp2 > line_end) || (size_t)(sp1 - c->in) >= sizeof(method) ||
		    (size_t)(sp2 - sp1 - 1) >= sizeof(target)) {
			conn_kill(c);
			return;
		}
		memcpy(method, c->in, (size_t)(sp1 - c->in));
		method[sp1 - c->in] = 0;
		memcpy(target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
		target[sp2 - sp1 - 1] = 0;
		for (h = line_end; h && *h;) {
			h += 2;
			if (strncasecmp(h, "content-length:", 15) == 0)
				clen = strtoull(h + 15, NULL, 10);
			else if (strncasecmp(h, "accept:", 7) == 0) {
				accept = h + 7;
				accept_len = strcspn(accept, "\r\n");
			}
			else if (strncasecmp(h, "transfer-encoding:", 18) == 0) {
				fprintf(stderr, "benchsrv: chunked request bodies are not supported\n");
				conn_kill(c);
				return;
			}
			h = strstr(h, "\r\n");
		}
		total = hlen + clen;
		if (total > MAX_IN) {
			conn_kill(c);
			return;
		}
		if (c->inlen < total) {
			*end = '\r';
			return;
		}
		c->pb = false;
		serve(c, method, target, c->in + hlen, clen, t, accept && accept_protobuf(accept, accept_len));
		memmove(c->in, c->in + total, c->inlen - total);
		c->inlen -= total;
		if (!c->dead && conn_flush(c) < 0)
			return;
	}
}

static void conn_read(struct conn *c)
{
	if (c->dead)
		return;
	for (;;) {
		ssize_t r;

		if (c->incap - c->inlen < 65536) {
			if (c->incap >= MAX_IN + 65536) {
				conn_kill(c);
				return;
			}
			c->incap = c->incap ? c->incap * 2 : 65536;
			c->in = xrealloc(c->in, c->incap);
		}
		r = read(c->fd, c->in + c->inlen, c->incap - c->inlen - 1);
		if (r == 0) {
			conn_kill(c);
			return;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			conn_kill(c);
			return;
		}
		c->inlen += (size_t)r;
		if (c->mode == CONN_WATCH)
			c->inlen = 0; /* a client says nothing more on a watch */
	}
	conn_input(c);
}

static void conn_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event e;
		struct conn *c;

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c)
			abort();
		c->fd = fd;
		c->wl_pos = -1;
		c->next = conns;
		conns = c;
		e.events = EPOLLIN;
		e.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
	}
}

static void reap(void)
{
	for (struct conn **pp = &conns; *pp;) {
		struct conn *c = *pp;

		if (c->dead) {
			*pp = c->next;
			free(c->in);
			free(c->q);
			free(c->own);
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* ---- phases ----------------------------------------------------------------------- */

static uint32_t pick_healthy(void)
{
	for (;;) {
		uint32_t i = (uint32_t)(rnd() % pods.n);

		if (pods.state[i] == POD_HEALTHY && track_of[i] < 0)
			return i;
	}
}

static void phase_start(const char *args)
{
	char key[32];
	unsigned long long v;
	int n;

	memset(&ph, 0, sizeof(ph));
	ph.fail = 20;
	ph.grace_ms = 20000;
	while (sscanf(args, " %31[a-z_]=%llu%n", key, &v, &n) == 2) {
		args += n;
		if (strcmp(key, "rate") == 0)
			ph.rate = v;
		else if (strcmp(key, "ms") == 0)
			ph.ms = v;
		else if (strcmp(key, "health") == 0)
			ph.health = v;
		else if (strcmp(key, "fail") == 0)
			ph.fail = v;
		else if (strcmp(key, "close") == 0)
			ph.close = v != 0;
		else if (strcmp(key, "gone") == 0)
			ph.gone = v != 0;
		else if (strcmp(key, "grace_ms") == 0)
			ph.grace_ms = v;
	}
	if (ph.health * 4 > pods.n)
		ph.health = pods.n / 4;
	ph.tr = calloc(ph.health + 2, sizeof(*ph.tr)); /* 2: one after each fault */
	if (!ph.tr)
		abort();
	ph.on = ph.producing = true;
	ph.t0 = now_ns();
	ph.events_written0 = st.events_written;
	ph.wrong0 = st.wrong;
	ph.dup0 = st.dup;
	ph.unknown0 = st.unknown_pods;
	ph.evict0 = st.evictions;
}

/* Turns one healthy pod's GPU Unhealthy: the event the phase times. */
static void health_event(uint64_t t)
{
	uint32_t i = pick_healthy();
	struct track *tr = &ph.tr[ph.health_sent];

	tr->pod = i;
	tr->sent_ns = t;
	if (ph.fail && ph.health_sent % ph.fail == ph.fail / 4)
		tr->fail = 429;
	else if (ph.fail && ph.health_sent % ph.fail == ph.fail * 3 / 4)
		tr->fail = 500;
	track_of[i] = (int32_t)ph.health_sent;
	pods.state[i] = POD_UNHEALTHY;
	log_event(i, EV_UNHEALTHY);
	ph.health_sent++;
}

static void pump_all(void)
{
	for (struct conn *c = conns; c; c = c->next)
		if (c->watch == &pods)
			pump(c);
}

static void inject(bool gone)
{
	if (gone)
		compacted = evlen;
	for (struct conn *c = conns; c; c = c->next) {
		if (c->dead || c->mode != CONN_WATCH || c->watch != &pods || c->close_after)
			continue;
		if (gone) {
			st.gones++;
			watch_end(c, true);
		} else {
			/* Mid-stream: whatever is queued is lost, the client sees the connection end. */
			st.closes++;
			conn_kill(c);
		}
	}
}

/* Logs the events due by now (and the faults), and hands them to the pods watches. */
static void produce(uint64_t t)
{
	uint64_t el = (t - ph.t0) / 1000000ULL, due;

	if (el >= ph.ms)
		el = ph.ms;
	due = ph.rate * el / 1000;
	for (;;) {
		/* The k-th scheduled health event is due at (k + 1/2) ms/health. */
		bool health_due = ph.sched < ph.health && (2 * ph.sched + 1) * ph.ms / (2 * ph.health) <= el;

		if (health_due) {
			ph.sched++;
			health_event(t);
			continue;
		}
		if (ph.produced >= due)
			break;
		log_event(pick_healthy(), EV_MODIFIED);
		ph.produced++;
	}
	/* Each fault is followed at once by one more health event: it arrives while the
	 * controller has no watch (replayed on the new one) or is listing again. */
	if (ph.close && !ph.closed_done && el >= ph.ms / 3) {
		ph.closed_done = true;
		inject(false);
		health_event(t);
		ph.tr[ph.health_sent - 1].after_fault = true;
	}
	if (ph.gone && !ph.gone_done && el >= ph.ms * 2 / 3) {
		ph.gone_done = true;
		inject(true);
		health_event(t);
		ph.tr[ph.health_sent - 1].after_fault = true;
	}
	pump_all();
	if (el >= ph.ms && ph.produced >= due && ph.sched >= ph.health)
		ph.producing = false;
}

static void phase_report(uint64_t t)
{
	uint64_t right = 0, missing = 0, retried = 0;

	printf("result {\"ms\":%.1f,\"events_written\":%" PRIu64 ",\"churn\":%" PRIu64 ",\"health\":%" PRIu64,
	       (double)(t - ph.t0) / 1e6, st.events_written - ph.events_written0, ph.produced, ph.health_sent);
	printf(",\"to_request_ms\":[");
	for (uint64_t k = 0, first = 1; k < ph.health_sent; k++) {
		struct track *tr = &ph.tr[k];

		if (tr->accepted_ns)
			right++;
		else
			missing++;
		if (tr->attempts > 1)
			retried++;
		if (tr->first_evict_ns && tr->written_ns && !tr->after_fault) {
			printf("%s%.3f", first ? "" : ",", (double)(tr->first_evict_ns - tr->written_ns) / 1e6);
			first = 0;
		}
	}
	printf("],\"to_accepted_ms\":[");
	for (uint64_t k = 0, first = 1; k < ph.health_sent; k++) {
		struct track *tr = &ph.tr[k];

		if (tr->accepted_ns && tr->written_ns && !tr->after_fault && !tr->fail) {
			printf("%s%.3f", first ? "" : ",", (double)(tr->accepted_ns - tr->written_ns) / 1e6);
			first = 0;
		}
	}
	/* The pods whose first eviction got a 429 or a 500: the time includes the retry. */
	printf("],\"retried_ms\":[");
	for (uint64_t k = 0, first = 1; k < ph.health_sent; k++) {
		struct track *tr = &ph.tr[k];

		if (tr->accepted_ns && tr->written_ns && tr->fail) {
			printf("%s%.3f", first ? "" : ",", (double)(tr->accepted_ns - tr->written_ns) / 1e6);
			first = 0;
		}
	}
	/* The events right after a fault may reach the controller only on its next watch or LIST:
	 * timed from the moment they happened. */
	printf("],\"after_fault_ms\":[");
	for (uint64_t k = 0, first = 1; k < ph.health_sent; k++) {
		struct track *tr = &ph.tr[k];

		if (tr->after_fault && tr->first_evict_ns) {
			printf("%s%.3f", first ? "" : ",", (double)(tr->first_evict_ns - tr->sent_ns) / 1e6);
			first = 0;
		}
	}
	printf("],\"right\":%" PRIu64 ",\"missing\":%" PRIu64 ",\"wrong\":%" PRIu64 ",\"dup\":%" PRIu64
	       ",\"unknown\":%" PRIu64 ",\"retried\":%" PRIu64 ",\"eviction_requests\":%" PRIu64
	       ",\"closes\":%" PRIu64 ",\"gones\":%" PRIu64 ",\"lists\":%" PRIu64 ",\"watches\":%" PRIu64 "}\n",
	       right, missing, st.wrong - ph.wrong0, st.dup - ph.dup0, st.unknown_pods - ph.unknown0, retried,
	       st.evictions - ph.evict0, st.closes, st.gones, st.lists, st.watches);
	fflush(stdout);
	for (uint64_t k = 0; k < ph.health_sent; k++)
		track_of[ph.tr[k].pod] = -1;
	free(ph.tr);
	ph.tr = NULL;
	ph.on = false;
}

static bool phase_settled(void)
{
	for (uint64_t k = 0; k < ph.health_sent; k++)
		if (!ph.tr[k].accepted_ns)
			return false;
	return true;
}

static void command(char *line)
{
	if (strncmp(line, "phase", 5) == 0 && !ph.on) {
		phase_start(line + 5);
	} else if (strncmp(line, "stats", 5) == 0) {
		printf("stats {\"lists\":%" PRIu64 ",\"watches\":%" PRIu64 ",\"watchlists\":%" PRIu64
		       ",\"evictions\":%" PRIu64 ",\"events_posted\":%" PRIu64 ",\"events_written\":%" PRIu64
		       ",\"bytes_written\":%" PRIu64 ",\"wrong\":%" PRIu64 ",\"dup\":%" PRIu64 ",\"not_served\":%" PRIu64
		       ",\"injected_failures\":%" PRIu64 ",\"deleted\":%" PRIu64 ",\"pod_lists_pb\":%" PRIu64
		       ",\"pod_lists_json\":%" PRIu64 ",\"pod_watches_pb\":%" PRIu64 ",\"pod_watches_json\":%" PRIu64 "}\n",
		       st.lists, st.watches, st.watchlists, st.evictions, st.events_posted, st.events_written,
		       st.bytes_written, st.wrong, st.dup, st.unknown_paths, st.failed_injected, st.deleted,
		       st.pod_lists_pb, st.pod_lists_json, st.pod_watches_pb, st.pod_watches_json);
		fflush(stdout);
	} else if (strncmp(line, "quit", 4) == 0) {
		exit(0);
	} else {
		printf("error unknown or untimely command: %s\n", line);
		fflush(stdout);
	}
}

static void on_stdin(void)
{
	static char buf[4096];
	static size_t len;
	ssize_t r = read(0, buf + len, sizeof(buf) - 1 - len);
	char *nl;

	if (r <= 0)
		exit(0); /* the driver is gone: so are we */
	len += (size_t)r;
	buf[len] = 0;
	while ((nl = strchr(buf, '\n'))) {
		*nl = 0;
		command(buf);
		memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
		len -= (size_t)(nl + 1 - buf);
	}
	if (len == sizeof(buf) - 1)
		len = 0;
}

static void timers(uint64_t t)
{
	if (ph.on && ph.producing)
		produce(t);
	if (ph.on && !ph.producing &&
	    (phase_settled() || t - ph.t0 >= (ph.ms + ph.grace_ms) * 1000000ULL))
		phase_report(t);
	for (struct conn *c = conns; c; c = c->next) {
		if (c->poll_later) {
			c->poll_later = false;
			polling--;
			if (!c->dead && conn_flush(c) == 0)
				pump(c);
		}
		if (c->dead || c->mode != CONN_WATCH || c->close_after)
			continue;
		if (t >= c->deadline_ns) {
			watch_end(c, false);
			continue;
		}
		if (t - c->last_bm_ns >= BOOKMARK_MS * 1000000ULL && c->wl_pos < 0 && c->qbytes == 0 &&
		    (c->watch != &pods || c->cursor >= evlen)) {
			out_bookmark(c, c->watch, false);
			conn_flush(c);
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct epoll_event e;
	int lfd, one = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: benchsrv DIR [--watchlist] [--no-protobuf]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--watchlist") == 0)
			watchlist = true;
		else if (strcmp(argv[i], "--no-protobuf") == 0)
			no_protobuf = true;
	signal(SIGPIPE, SIG_IGN);
	load_kind(&pods, argv[1]);
	load_kind(&nodes, argv[1]);
	pb_status_frame(&gone_pb, "too old resource version", "Expired", 410);
	pods.state = calloc(pods.n ? pods.n : 1, 1);
	pods.rv = calloc(pods.n ? pods.n : 1, sizeof(*pods.rv));
	pods.sick_rv = calloc(pods.n ? pods.n : 1, sizeof(*pods.rv));
	pods.gone_rv = calloc(pods.n ? pods.n : 1, sizeof(*pods.rv));
	track_of = malloc((pods.n ? pods.n : 1) * sizeof(*track_of));
	if (!pods.state || !pods.rv || !pods.sick_rv || !pods.gone_rv || !track_of)
		abort();
	memset(track_of, 0xff, pods.n * sizeof(*track_of));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 128) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "benchsrv: cannot listen: %s\n", strerror(errno));
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	e.events = EPOLLIN;
	e.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
	e.data.ptr = &ep; /* stdin */
	epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e);
	printf("READY %u %u %u\n", ntohs(sa.sin_port), pods.n, nodes.n);
	fflush(stdout);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, ph.on && ph.producing ? 1 : polling ? POLL_MS : 50);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c) {
				conn_accept(lfd);
			} else if (evs[i].data.ptr == &ep) {
				on_stdin();
			} else {
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					conn_read(c);
				if (!c->dead && (evs[i].events & EPOLLOUT)) {
					if (conn_flush(c) == 0)
						pump(c);
				}
			}
		}
		timers(now_ns());
		reap();
	}
}
