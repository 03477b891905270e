/*
 * The policy file watcher (see policy_watch.h): compares what the file holds
 * now with what the policy in force was parsed from, byte for byte, so that
 * touches and the inotify events of our own reads cost nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kc_log.h"
#include "policy_watch.h"

/* What the policy file held when it was last read: its bytes, or the error that
 * kept us from reading it.  Compared by length and content, so NUL bytes and the
 * different kinds of unreadable file (missing, a directory, too large) all count
 * as changes. */
struct file_bytes {
	char *data;
	size_t len;
	int err;
	bool valid;
};

struct policy_watch {
	char *path;
	bool force_dry_run;
	struct policy *policy;
	struct file_bytes policy_bytes;	  /* what the loaded policy was parsed from */
	struct file_bytes rejected_bytes; /* the last rejected file, so it is reported once */
	struct metrics *metrics;
	policy_watch_reload_cb on_reload;
	void *userdata;
	uv_timer_t poll;
	uv_fs_event_t fs_watch;
	bool started, fs_watch_active;
};

static void file_bytes_read(const char *path, struct file_bytes *ret)
{
	ret->data = NULL;
	ret->len = 0;
	ret->err = kc_read_file(path, POLICY_MAX_SIZE, &ret->data, &ret->len);
	ret->valid = true;
}

static void file_bytes_done(struct file_bytes *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool file_bytes_equal(const struct file_bytes *a, const struct file_bytes *b)
{
	return a->valid && b->valid && a->err == b->err && a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Parses the policy from bytes already read; --dry-run forces dryRun on. */
static int parse_policy(const struct policy_watch *w, const struct file_bytes *b, struct policy **ret,
			struct kc_error *err)
{
	int r;

	if (b->err < 0)
		return kc_error_set(err, b->err, "%s: cannot read the policy: %s", w->path,
				    b->err == -EFBIG ? "larger than 1 MiB" : strerror(-b->err));
	r = policy_parse(w->path, b->data, b->len, ret, err);
	if (r < 0)
		return r;
	if (w->force_dry_run)
		(*ret)->dry_run = true;
	return 0;
}

int policy_watch_new(const char *path, bool force_dry_run, struct policy_watch **ret, struct kc_error *err)
{
	struct policy_watch *w = kc_xcalloc(1, sizeof(*w));
	int r;

	w->path = kc_xstrdup(path);
	w->force_dry_run = force_dry_run;
	file_bytes_read(path, &w->policy_bytes);
	r = parse_policy(w, &w->policy_bytes, &w->policy, err);
	if (r < 0) {
		policy_watch_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

const struct policy *policy_watch_policy(const struct policy_watch *w)
{
	return w->policy;
}

static void count_reload(struct policy_watch *w, const char *result)
{
	if (w->metrics)
		metrics_counter_add(w->metrics, "policy_reloads_total", 1, result, NULL);
}

void policy_watch_reload(struct policy_watch *w, const char *why)
{
	struct kc_error err = {{0}};
	struct policy *p = NULL, *old;
	struct file_bytes b;

	file_bytes_read(w->path, &b);
	if (file_bytes_equal(&b, &w->policy_bytes)) {
		/* Same bytes (a touch, or the inotify event of our own read): nothing to do,
		 * but a later return to a rejected text must be reported again. */
		file_bytes_done(&w->rejected_bytes);
		file_bytes_done(&b);
		return;
	}
	if (parse_policy(w, &b, &p, &err) < 0) {
		/* Report a bad file once, not at every poll, until it changes again;
		 * SIGHUP always reports. */
		bool repeated = file_bytes_equal(&b, &w->rejected_bytes) && strcmp(why, "SIGHUP") != 0;

		file_bytes_done(&w->rejected_bytes);
		w->rejected_bytes = b;
		if (repeated)
			return;
		kc_log_error("policy reload (%s) failed, keeping the previous policy: %s", why, err.msg);
		count_reload(w, "failure");
		return;
	}
	file_bytes_done(&w->rejected_bytes);
	old = w->policy;
	w->policy = p;
	file_bytes_done(&w->policy_bytes);
	w->policy_bytes = b;
	if (w->on_reload)
		w->on_reload(p, why, w->userdata);
	policy_free(old);
	count_reload(w, "success");
	kc_log_info(0, "policy reloaded from %s (%s)%s", w->path, why, p->dry_run ? ", dry run" : "");
}

/* A cheap check that also catches the kubelet's symlink swap of a mounted
 * ConfigMap, which inotify on the directory can report before it completes. */
static void on_poll(uv_timer_t *t)
{
	struct policy_watch *w = kc_container_of(t, struct policy_watch, poll);
	struct file_bytes b;
	bool same;

	file_bytes_read(w->path, &b);
	same = file_bytes_equal(&b, &w->policy_bytes) || file_bytes_equal(&b, &w->rejected_bytes);
	if (file_bytes_equal(&b, &w->policy_bytes))
		file_bytes_done(&w->rejected_bytes);
	file_bytes_done(&b);
	if (!same)
		policy_watch_reload(w, "file changed");
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct policy_watch *w = kc_container_of(h, struct policy_watch, fs_watch);

	(void)filename;
	(void)events;
	if (status < 0)
		return;
	/* Let a burst of events (write, rename, symlink swap) settle first. */
	uv_timer_start(&w->poll, on_poll, 100, POLICY_WATCH_POLL_MS);
}

int policy_watch_start(struct policy_watch *w, uv_loop_t *loop, struct metrics *metrics,
		       policy_watch_reload_cb on_reload, void *userdata)
{
	char *dir = kc_xstrdup(w->path);
	char *slash = strrchr(dir, '/');
	int r;

	w->metrics = metrics;
	w->on_reload = on_reload;
	w->userdata = userdata;
	r = uv_timer_init(loop, &w->poll);
	if (r < 0) {
		free(dir);
		return r;
	}
	w->started = true;
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	/* Watch the directory: a ConfigMap update replaces the ..data symlink, not the file. */
	r = uv_fs_event_init(loop, &w->fs_watch);
	if (r == 0) {
		w->fs_watch_active = true;
		r = uv_fs_event_start(&w->fs_watch, on_fs_event, dir[0] ? dir : "/", 0);
	}
	if (r < 0)
		kc_log_warn("cannot watch %s for policy changes (%s); checking every %d ms instead", dir, uv_strerror(r),
			    POLICY_WATCH_POLL_MS);
	free(dir);
	uv_timer_start(&w->poll, on_poll, POLICY_WATCH_POLL_MS, POLICY_WATCH_POLL_MS);
	return 0;
}

void policy_watch_stop(struct policy_watch *w)
{
	if (!w || !w->started)
		return;
	uv_timer_stop(&w->poll);
	if (w->fs_watch_active)
		uv_fs_event_stop(&w->fs_watch);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void policy_watch_close(struct policy_watch *w)
{
	if (!w || !w->started)
		return;
	close_handle((uv_handle_t *)&w->poll);
	if (w->fs_watch_active)
		close_handle((uv_handle_t *)&w->fs_watch);
}

struct policy_watch *policy_watch_free(struct policy_watch *w)
{
	if (!w)
		return NULL;
	policy_free(w->policy);
	file_bytes_done(&w->policy_bytes);
	file_bytes_done(&w->rejected_bytes);
	free(w->path);
	free(w);
	return NULL;
}
