/*
 * The bearer token of a client: read from the configuration or a token file,
 * re-read when the file changes (so rotated service-account tokens are picked
 * up without a restart) and once after a 401, and put into each attempt's
 * headers.  The token is never logged, and copies of it are wiped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kc_http_int.h"
#include "kc_log.h"

#define TOKEN_FILE_MAX (64u * 1024u)

/* Drops trailing whitespace (token files usually end with a newline). */
static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/*
 * Re-reads the token file when its identity, size or mtime changed (or when
 * forced after a 401), so rotated service-account tokens are picked up
 * without a restart.  An unreadable file keeps the previous token: a rotation
 * in progress should not turn into unauthenticated requests.
 */
void kc_http_refresh_token(struct kc_client *c, bool force)
{
	struct stat st;
	char *data = NULL;
	int r;

	if (!c->cfg.token_file)
		return;
	if (stat(c->cfg.token_file, &st) < 0) {
		if (!c->token_warned)
			kc_log_warn("token file %s: %s; keeping the previous token", c->cfg.token_file,
				    strerror(errno));
		c->token_warned = true;
		return;
	}
	if (!force && c->token_st_valid && st.st_ino == c->token_st.st_ino &&
	    st.st_dev == c->token_st.st_dev && st.st_size == c->token_st.st_size &&
	    st.st_mtim.tv_sec == c->token_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_st.st_mtim.tv_nsec)
		return;
	r = kc_read_file(c->cfg.token_file, TOKEN_FILE_MAX, &data, NULL);
	if (r < 0) {
		if (!c->token_warned)
			kc_log_warn("token file %s: %s; keeping the previous token", c->cfg.token_file,
				    strerror(-r));
		c->token_warned = true;
		return;
	}
	c->token_warned = false;
	c->token_st = st;
	c->token_st_valid = true;
	rstrip(data);
	if (!c->token || strcmp(c->token, data) != 0) {
		free(c->token);
		c->token = data;
		c->token_gen++;
		kc_log_info(4, "token file %s: loaded a new token", c->cfg.token_file);
	} else {
		free(data);
	}
}

/* The headers of one attempt: the Authorization value may change between
 * attempts when the token file is rotated. */
void kc_http_build_headers(struct kc_request *r)
{
	struct kc_client *c = r->client;
	struct curl_slist *h = NULL;
	char *ct;

	curl_slist_free_all(r->headers);
	if (r->accept) {
		char *a = kc_xasprintf("Accept: %s", r->accept);

		h = curl_slist_append(h, a);
		free(a);
	} else {
		h = curl_slist_append(h, "Accept: application/json");
	}
	/* No 100-continue round trip: the API server answers bodies directly. */
	h = curl_slist_append(h, "Expect:");
	if (r->body) {
		ct = kc_xasprintf("Content-Type: %s", r->content_type ? r->content_type : "application/json");
		h = curl_slist_append(h, ct);
		free(ct);
	}
	kc_http_refresh_token(c, false);
	if (c->token && *c->token) {
		char *auth = kc_xasprintf("Authorization: Bearer %s", c->token);

		h = curl_slist_append(h, auth);
		/* The header held the token: wipe our copy before freeing it. */
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	if (!h)
		kc_log_fatal("out of memory building request headers");
	r->headers = h;
	r->token_gen = c->token_gen;
	kc_http_exec_apply(r);
}
