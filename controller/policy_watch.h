/*
 * The policy file and its hot reload.  Holds the policy in force and the
 * bytes it was parsed from; watches the file's directory with inotify (a
 * ConfigMap update swaps the ..data symlink, not the file) and also checks it
 * every POLICY_WATCH_POLL_MS by reading it, since inotify can report a swap
 * before it completes.  A changed file that parses replaces the policy; one
 * that does not is logged and counted once (until it changes again; SIGHUP
 * always reports) and the previous policy stays.  --dry-run forces dryRun on.
 */
#ifndef POLICY_WATCH_H
#define POLICY_WATCH_H

#include <stdbool.h>
#include <uv.h>

#include "kc_util.h"
#include "metrics.h"
#include "policy.h"

/* How often the policy file is read to look for changes, besides inotify. */
#define POLICY_WATCH_POLL_MS 2000

struct policy_watch;

/*
 * A new policy took effect: p is the policy in force from now on (owned by
 * the watcher; the previous one is freed after this returns, so the callback
 * must stop using it, e.g. core_set_policy()).
 */
typedef void (*policy_watch_reload_cb)(const struct policy *p, const char *why, void *userdata);

/*
 * Reads and parses path (the initial load, before any loop runs).  Returns 0
 * and *ret, or a negative errno with err set (unreadable file or invalid
 * policy).  path is copied.
 */
int policy_watch_new(const char *path, bool force_dry_run, struct policy_watch **ret, struct kc_error *err);

/* The policy in force; owned by the watcher, valid until the next reload. */
const struct policy *policy_watch_policy(const struct policy_watch *w);

/*
 * Starts watching on loop: changes call on_reload; reloads are counted in
 * metrics (policy_reloads_total{result}; metrics may be NULL).  Returns 0;
 * a failed inotify watch is logged and the watcher polls only.
 */
int policy_watch_start(struct policy_watch *w, uv_loop_t *loop, struct metrics *metrics,
		       policy_watch_reload_cb on_reload, void *userdata);

/* Re-reads the file now (SIGHUP, or a test).  why appears in the log line. */
void policy_watch_reload(struct policy_watch *w, const char *why);

/* Stops watching (the shutdown): no more reloads. */
void policy_watch_stop(struct policy_watch *w);
/* Closes the handles; the loop must run for their close callbacks before policy_watch_free(). */
void policy_watch_close(struct policy_watch *w);
/* Frees the watcher and its policy (after policy_watch_close() and the loop ran); accepts NULL. */
struct policy_watch *policy_watch_free(struct policy_watch *w);

#endif
