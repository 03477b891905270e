/*
 * Loading the API server location and credentials (kc_config.h): a
 * kubeconfig (YAML, or JSON, which is YAML too) parsed with libyaml's
 * document loader, a $KUBECONFIG list merged the way kubectl merges it
 * (for each name and for current-context the first file that sets it wins),
 * or the in-cluster service account.  Every file is read through
 * kc_read_file with a size bound.  Error messages name the file, the field
 * path and the problem, and never quote a value (values can be secrets).
 */
#include "kc_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "kc_config_int.h"
#include "kc_log.h"

#define KUBECONFIG_MAX (16u * 1024u * 1024u)
#define CERT_FILE_MAX (1024u * 1024u)
#define TOKEN_FILE_MAX (64u * 1024u)
#define KUBECONFIG_FILES_MAX 64
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static void kfile_done(struct kfile *f)
{
	if (!f)
		return;
	if (f->has_doc)
		yaml_document_delete(&f->doc);
	free(f->path);
	free(f->dir);
	memset(f, 0, sizeof(*f));
}

/*
 * A kubeconfig is a few levels deep.  libyaml's document loader takes time
 * quadratic in the nesting depth, so a hostile file of 20,000 nested "[" would
 * stall start-up: one cheap pass over the events refuses deep nesting first.
 */
#define KUBECONFIG_MAX_DEPTH 64

static int check_depth(const char *path, const char *data, size_t len, struct kc_error *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, r = 0;

	if (!yaml_parser_initialize(&parser))
		kc_log_fatal("yaml_parser_initialize: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	for (;;) {
		if (!yaml_parser_parse(&parser, &ev))
			break;  /* the loader reports syntax errors with their position */
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		if (depth > KUBECONFIG_MAX_DEPTH) {
			r = kc_error_set(err, -EINVAL, "%s:%zu:%zu: nested deeper than %d levels", path,
					 ev.start_mark.line + 1, ev.start_mark.column + 1, KUBECONFIG_MAX_DEPTH);
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return r;
}

static int kfile_load(struct kfile *f, const char *path, struct kc_error *err)
{
	yaml_parser_t parser;
	char *data = NULL;
	const char *slash;
	size_t len;
	int r;

	memset(f, 0, sizeof(*f));
	r = kc_read_file(path, KUBECONFIG_MAX, &data, &len);
	if (r == -EFBIG)
		return kc_error_set(err, r, "%s: larger than the limit of %u bytes", path, KUBECONFIG_MAX);
	if (r < 0)
		return kc_error_set(err, r, "%s: %s", path, strerror(-r));
	r = check_depth(path, data, len, err);
	if (r < 0) {
		free(data);
		return r;
	}
	if (!yaml_parser_initialize(&parser))
		kc_log_fatal("yaml_parser_initialize: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &f->doc)) {
		/* libyaml's lines and columns are 0-based. */
		r = kc_error_set(err, -EINVAL, "%s:%zu:%zu: invalid YAML: %s%s%s", path,
				 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
				 parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
				 parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		free(data);
		return r;
	}
	yaml_parser_delete(&parser);
	free(data);
	f->has_doc = true;
	f->path = kc_xstrdup(path);
	slash = strrchr(path, '/');
	if (!slash)
		f->dir = get_current_dir_name();
	else
		f->dir = kc_xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (!f->dir)
		f->dir = kc_xstrdup(".");
	return 0;
}

static yaml_node_t *root(struct kfile *f)
{
	return yaml_document_get_root_node(&f->doc);
}

yaml_node_t *kc_cfg_node_at(struct kfile *f, int id)
{
	return yaml_document_get_node(&f->doc, id);
}

/* An absent value: no node, or a plain null/~/empty scalar. */
bool kc_cfg_is_null(yaml_node_t *n)
{
	if (!n)
		return true;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return n->data.scalar.length == 0 || strcmp((char *)n->data.scalar.value, "null") == 0 ||
	       strcmp((char *)n->data.scalar.value, "~") == 0;
}

yaml_node_t *kc_cfg_map_get(struct kfile *f, yaml_node_t *m, const char *key)
{
	size_t klen = strlen(key);

	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = kc_cfg_node_at(f, p->key);

		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == klen &&
		    memcmp(k->data.scalar.value, key, klen) == 0)
			return kc_cfg_node_at(f, p->value);
	}
	return NULL;
}

/*
 * The string at m[key]: *ret is NULL when absent, else points into the
 * document.  A mapping or list where a string belongs is an error.
 */
int kc_cfg_get_str(struct kfile *f, yaml_node_t *m, const char *field, const char *key, const char **ret,
		   struct kc_error *err)
{
	yaml_node_t *n = kc_cfg_map_get(f, m, key);

	*ret = NULL;
	if (kc_cfg_is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return kc_error_set(err, -EINVAL, "%s: %s.%s: expected a string (line %zu)", f->path, field,
				    key, n->start_mark.line + 1);
	if (strlen((char *)n->data.scalar.value) != n->data.scalar.length)
		return kc_error_set(err, -EINVAL, "%s: %s.%s: contains a NUL byte", f->path, field, key);
	*ret = (const char *)n->data.scalar.value;
	return 0;
}

int kc_cfg_get_bool(struct kfile *f, yaml_node_t *m, const char *field, const char *key, bool *ret,
		    struct kc_error *err)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};
	const char *s;
	int r;

	*ret = false;
	r = kc_cfg_get_str(f, m, field, key, &s, err);
	if (r < 0 || !s)
		return r;
	for (size_t i = 0; i < KC_ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0)
			return *ret = true, 0;
		if (strcmp(s, no[i]) == 0)
			return 0;
	}
	return kc_error_set(err, -EINVAL, "%s: %s.%s: expected true or false", f->path, field, key);
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard, padded base64 (Go's StdEncoding); whitespace is skipped because
 * hand-edited files wrap long lines. */
static int base64_decode(const char *in, char **ret, size_t *ret_len)
{
	size_t n = strlen(in), len = 0, pad = 0, count = 0;
	unsigned acc = 0;
	char *out = kc_xmalloc(n / 4 * 3 + 4);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			count++;
			continue;
		}
		v = b64val(c);
		if (v < 0 || pad > 0)
			goto invalid;
		acc = (acc << 6) | (unsigned)v;
		count++;
		if (count % 4 == 0) {
			out[len++] = (char)(acc >> 16);
			out[len++] = (char)(acc >> 8);
			out[len++] = (char)acc;
			acc = 0;
		}
	}
	if (count == 0 || count % 4 != 0 || pad > 2)
		goto invalid;
	if (pad == 1) {
		out[len++] = (char)(acc >> 10);
		out[len++] = (char)(acc >> 2);
	} else if (pad == 2) {
		out[len++] = (char)(acc >> 4);
	}
	out[len] = '\0';
	*ret = out;
	*ret_len = len;
	return 0;
invalid:
	free(out);
	return -EINVAL;
}

/* Decodes m[key] (base64 PEM) into *ret; leaves *ret NULL when absent. */
static int get_pem_data(struct kfile *f, yaml_node_t *m, const char *field, const char *key, char **ret,
			size_t *ret_len, struct kc_error *err)
{
	const char *s;
	int r;

	r = kc_cfg_get_str(f, m, field, key, &s, err);
	if (r < 0 || !s)
		return r;
	if (base64_decode(s, ret, ret_len) < 0)
		return kc_error_set(err, -EINVAL, "%s: %s.%s: invalid base64", f->path, field, key);
	if (!strstr(*ret, "-----BEGIN ")) {
		memset(*ret, 0, *ret_len);
		free(*ret);
		*ret = NULL;
		return kc_error_set(err, -EINVAL, "%s: %s.%s: not PEM data (no -----BEGIN line)", f->path,
				    field, key);
	}
	return 0;
}

/* Makes a path from the kubeconfig absolute and checks that it can be read
 * (within its bound), so a typo is reported here, naming the field, rather
 * than as a TLS failure later. */
static int get_path(struct kfile *f, yaml_node_t *m, const char *field, const char *key, size_t max,
		    char **ret, struct kc_error *err)
{
	const char *s;
	char *path, *data = NULL;
	size_t len;
	int r;

	r = kc_cfg_get_str(f, m, field, key, &s, err);
	if (r < 0 || !s)
		return r;
	path = s[0] == '/' ? kc_xstrdup(s) : kc_xasprintf("%s/%s", f->dir, s);
	r = kc_read_file(path, max, &data, &len);
	if (r < 0) {
		kc_error_set(err, r, "%s: %s.%s: %s: %s", f->path, field, key, path,
			     r == -EFBIG ? "file too large" : strerror(-r));
		free(path);
		return r;
	}
	memset(data, 0, len);
	free(data);
	*ret = path;
	return 0;
}

/* The names defined in section ("contexts") of every file, for "not found" errors. */
/*
 * A name from the file, fit for an error message.  Context, cluster and user
 * names are short identifiers; one with blanks, quotes, commas or control
 * characters, or longer than 64 bytes, is almost always a malformed file (say,
 * a quoted string that runs on over the next lines, tokens included), so it is
 * described rather than copied into the message.
 */
bool kc_cfg_plain_name(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (i >= 64 || (unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
		    s[i] == ',')
			return false;
	return i > 0;
}

static const char *quoted(const char *s, char *buf, size_t size)
{
	if (kc_cfg_plain_name(s))
		snprintf(buf, size, "\"%s\"", s);
	else
		snprintf(buf, size, "<a %zu-byte name with blanks, quotes or control characters>", strlen(s));
	return buf;
}

/* As quoted(), but plain names are listed bare. */
static const char *listed(const char *s, char *buf, size_t size)
{
	return kc_cfg_plain_name(s) ? s : quoted(s, buf, size);
}

static void list_names(struct kfile *files, size_t n_files, const char *section, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n_files; i++) {
		yaml_node_t *seq = kc_cfg_map_get(&files[i], root(&files[i]), section);

		if (!seq || seq->type != YAML_SEQUENCE_NODE)
			continue;
		for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
		     it++) {
			yaml_node_t *name = kc_cfg_map_get(&files[i], kc_cfg_node_at(&files[i], *it), "name");
			char q[300];
			int w;

			if (!name || name->type != YAML_SCALAR_NODE)
				continue;
			w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
				     listed((char *)name->data.scalar.value, q, sizeof(q)));
			if (w < 0 || (size_t)w >= size - used) {
				snprintf(buf + (size > 5 ? size - 5 : 0), size > 5 ? 5 : size, "...");
				return;
			}
			used += (size_t)w;
		}
	}
	if (!used)
		snprintf(buf, size, "none");
}

/*
 * Finds the entry of section ("clusters") called name, first file first.
 * Returns 1 and sets *ret_file, *ret_index and *ret_body (the "cluster"
 * mapping) when found, 0 when not, negative on a malformed section.
 */
static int find_named(struct kfile *files, size_t n_files, const char *section, const char *body_key,
		      const char *name, struct kfile **ret_file, size_t *ret_index, yaml_node_t **ret_body,
		      struct kc_error *err)
{
	for (size_t i = 0; i < n_files; i++) {
		struct kfile *f = &files[i];
		yaml_node_t *rt = root(f), *seq;
		size_t idx = 0;

		if (kc_cfg_is_null(rt))
			continue;
		if (rt->type != YAML_MAPPING_NODE)
			return kc_error_set(err, -EINVAL,
					    "%s: expected a mapping at the top level (a Config)", f->path);
		seq = kc_cfg_map_get(f, rt, section);
		if (kc_cfg_is_null(seq))
			continue;
		if (seq->type != YAML_SEQUENCE_NODE)
			return kc_error_set(err, -EINVAL, "%s: %s: expected a list (line %zu)", f->path,
					    section, seq->start_mark.line + 1);
		for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
		     it++, idx++) {
			yaml_node_t *item = kc_cfg_node_at(f, *it);
			char field[64];
			const char *nm;
			int r;

			snprintf(field, sizeof(field), "%s[%zu]", section, idx);
			if (!item || item->type != YAML_MAPPING_NODE)
				return kc_error_set(err, -EINVAL, "%s: %s: expected a mapping", f->path,
						    field);
			r = kc_cfg_get_str(f, item, field, "name", &nm, err);
			if (r < 0)
				return r;
			if (!nm || strcmp(nm, name) != 0)
				continue;
			*ret_file = f;
			*ret_index = idx;
			*ret_body = kc_cfg_map_get(f, item, body_key);
			if (*ret_body && !kc_cfg_is_null(*ret_body) && (*ret_body)->type != YAML_MAPPING_NODE)
				return kc_error_set(err, -EINVAL, "%s: %s.%s: expected a mapping", f->path,
						    field, body_key);
			return 1;
		}
	}
	return 0;
}

static int load_cluster(struct kfile *f, size_t idx, yaml_node_t *m, struct kc_config *c,
			struct kc_error *err)
{
	char field[64];
	const char *server, *sni;
	size_t n;
	int r;

	snprintf(field, sizeof(field), "clusters[%zu].cluster", idx);
	r = kc_cfg_get_str(f, m, field, "server", &server, err);
	if (r < 0)
		return r;
	if (!server)
		return kc_error_set(err, -EINVAL, "%s: %s.server: missing", f->path, field);
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
		return kc_error_set(err, -EINVAL, "%s: %s.server: expected an https:// or http:// URL",
				    f->path, field);
	c->server = kc_xstrdup(server);
	n = strlen(c->server);
	while (n > 0 && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	r = kc_cfg_get_str(f, m, field, "tls-server-name", &sni, err);
	if (r < 0)
		return r;
	c->tls_server_name = sni ? kc_xstrdup(sni) : NULL;
	r = kc_cfg_get_bool(f, m, field, "insecure-skip-tls-verify", &c->insecure_skip_tls_verify, err);
	if (r < 0)
		return r;
	/* As in client-go, inline data wins over a file. */
	r = get_pem_data(f, m, field, "certificate-authority-data", &c->ca_data, &c->ca_data_len, err);
	if (r < 0)
		return r;
	if (!c->ca_data) {
		r = get_path(f, m, field, "certificate-authority", CERT_FILE_MAX, &c->ca_file, err);
		if (r < 0)
			return r;
	}
	if (c->insecure_skip_tls_verify && (c->ca_data || c->ca_file))
		return kc_error_set(
		    err, -EINVAL,
		    "%s: %s: insecure-skip-tls-verify together with a certificate authority is not "
		    "allowed",
		    f->path, field);
	return 0;
}

static int load_user(struct kfile *f, size_t idx, yaml_node_t *m, struct kc_config *c, struct kc_error *err)
{
	char field[64];
	const char *tok;
	int r;

	snprintf(field, sizeof(field), "users[%zu].user", idx);
	if (!kc_cfg_is_null(kc_cfg_map_get(f, m, "exec"))) {
		r = kc_cfg_load_exec(f, field, kc_cfg_map_get(f, m, "exec"), c, err);
		if (r < 0)
			return r;
	}
	if (!kc_cfg_is_null(kc_cfg_map_get(f, m, "auth-provider")))
		return kc_error_set(
		    err, -ENOTSUP,
		    "%s: %s.auth-provider: auth-provider plugins are not supported; use a token, "
		    "tokenFile or client certificate",
		    f->path, field);
	if (!kc_cfg_is_null(kc_cfg_map_get(f, m, "username")) || !kc_cfg_is_null(kc_cfg_map_get(f, m, "password")))
		return kc_error_set(err, -ENOTSUP,
				    "%s: %s: basic authentication (username/password) is not supported",
				    f->path, field);
	r = kc_cfg_get_str(f, m, field, "token", &tok, err);
	if (r < 0)
		return r;
	c->token = tok ? kc_xstrdup(tok) : NULL;
	r = get_path(f, m, field, "tokenFile", TOKEN_FILE_MAX, &c->token_file, err);
	if (r < 0)
		return r;
	r = get_pem_data(f, m, field, "client-certificate-data", &c->client_cert_data,
			 &c->client_cert_data_len, err);
	if (r < 0)
		return r;
	if (!c->client_cert_data) {
		r = get_path(f, m, field, "client-certificate", CERT_FILE_MAX, &c->client_cert_file, err);
		if (r < 0)
			return r;
	}
	r = get_pem_data(f, m, field, "client-key-data", &c->client_key_data, &c->client_key_data_len, err);
	if (r < 0)
		return r;
	if (!c->client_key_data) {
		r = get_path(f, m, field, "client-key", CERT_FILE_MAX, &c->client_key_file, err);
		if (r < 0)
			return r;
	}
	if ((c->client_cert_data || c->client_cert_file) != (c->client_key_data || c->client_key_file))
		return kc_error_set(
		    err, -EINVAL, "%s: %s: %s without %s", f->path, field,
		    c->client_key_data || c->client_key_file ? "client-key" : "client-certificate",
		    c->client_key_data || c->client_key_file ? "client-certificate" : "client-key");
	return 0;
}

/* Resolves a context across the files (one, or the $KUBECONFIG list). */
static int resolve(struct kfile *files, size_t n_files, const char *what, const char *context,
		   struct kc_config *ret, struct kc_error *err)
{
	struct kc_config c;
	struct kfile *f;
	yaml_node_t *ctx, *body;
	const char *cluster_name = NULL, *user_name = NULL, *ns = NULL;
	char names[256], field[64], q1[300], q2[300];
	size_t idx;
	int r;

	memset(&c, 0, sizeof(c));
	if (!context || !*context) {
		for (size_t i = 0; i < n_files && (!context || !*context); i++) {
			yaml_node_t *rt = root(&files[i]);

			if (rt && rt->type == YAML_MAPPING_NODE) {
				r = kc_cfg_get_str(&files[i], rt, "(top)", "current-context", &context, err);
				if (r < 0)
					return r;
			}
		}
		if (!context || !*context)
			return kc_error_set(err, -ENOENT,
					    "%s: no current-context is set and no context was given", what);
	}
	r = find_named(files, n_files, "contexts", "context", context, &f, &idx, &ctx, err);
	if (r < 0)
		return r;
	if (r == 0) {
		list_names(files, n_files, "contexts", names, sizeof(names));
		return kc_error_set(err, -ENOENT, "%s: context %s not found (contexts: %s)", what,
				    quoted(context, q1, sizeof(q1)), names);
	}
	snprintf(field, sizeof(field), "contexts[%zu].context", idx);
	if ((r = kc_cfg_get_str(f, ctx, field, "cluster", &cluster_name, err)) < 0 ||
	    (r = kc_cfg_get_str(f, ctx, field, "user", &user_name, err)) < 0 ||
	    (r = kc_cfg_get_str(f, ctx, field, "namespace", &ns, err)) < 0)
		return r;
	if (!cluster_name)
		return kc_error_set(err, -EINVAL, "%s: %s.cluster: missing", f->path, field);

	r = find_named(files, n_files, "clusters", "cluster", cluster_name, &f, &idx, &body, err);
	if (r < 0)
		goto fail;
	if (r == 0) {
		list_names(files, n_files, "clusters", names, sizeof(names));
		r = kc_error_set(err, -ENOENT, "%s: context %s: cluster %s not found (clusters: %s)", what,
				 quoted(context, q1, sizeof(q1)), quoted(cluster_name, q2, sizeof(q2)), names);
		goto fail;
	}
	r = load_cluster(f, idx, body, &c, err);
	if (r < 0)
		goto fail;
	if (user_name && *user_name) {
		r = find_named(files, n_files, "users", "user", user_name, &f, &idx, &body, err);
		if (r < 0)
			goto fail;
		if (r == 0) {
			list_names(files, n_files, "users", names, sizeof(names));
			r = kc_error_set(err, -ENOENT,
					 "%s: context %s: user %s not found (users: %s)", what,
					 quoted(context, q1, sizeof(q1)), quoted(user_name, q2, sizeof(q2)), names);
			goto fail;
		}
		r = load_user(f, idx, body, &c, err);
		if (r < 0)
			goto fail;
	}
	c.ns = kc_xstrdup(ns && *ns ? ns : "default");
	c.source = kc_xasprintf("kubeconfig %s, context %s", what, context);
	*ret = c;
	return 0;
fail:
	kc_config_done(&c);
	return r;
}

int kc_config_load_kubeconfig(const char *path, const char *context, struct kc_config *ret,
			      struct kc_error *err)
{
	struct kfile f;
	int r;

	r = kfile_load(&f, path, err);
	if (r < 0)
		return r;
	r = resolve(&f, 1, path, context, ret, err);
	kfile_done(&f);
	return r;
}

/* $KUBECONFIG: a colon-separated list; missing files are skipped as kubectl does. */
static int load_list(const char *list, const char *context, struct kc_config *ret, struct kc_error *err)
{
	struct kfile files[KUBECONFIG_FILES_MAX];
	size_t n = 0;
	char *copy = kc_xstrdup(list), *save = NULL, *what;
	int r = 0;

	for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		if (!*p || access(p, F_OK) < 0)
			continue;
		if (n == KUBECONFIG_FILES_MAX) {
			r = kc_error_set(err, -E2BIG, "$KUBECONFIG: more than %d files",
					 KUBECONFIG_FILES_MAX);
			goto free_files;
		}
		r = kfile_load(&files[n], p, err);
		if (r < 0)
			goto free_files;
		n++;
	}
	if (n == 0) {
		r = kc_error_set(err, -ENOENT, "$KUBECONFIG=%s: none of its files exists", list);
		goto free_files;
	}
	/* One file: errors name it; several: they name the list. */
	what = n == 1 ? kc_xstrdup(files[0].path) : kc_xasprintf("$KUBECONFIG=%s", list);
	r = resolve(files, n, what, context, ret, err);
	free(what);
free_files:
	for (size_t i = 0; i < n; i++)
		kfile_done(&files[i]);
	free(copy);
	return r;
}

static char *read_trimmed(const char *path, size_t max, int *ret_r)
{
	char *data = NULL;
	size_t len;

	*ret_r = kc_read_file(path, max, &data, &len);
	if (*ret_r < 0)
		return NULL;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ' ||
			   data[len - 1] == '\t'))
		data[--len] = '\0';
	return data;
}

int kc_config_in_cluster(const char *sa_dir, struct kc_config *ret, struct kc_error *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	struct kc_config c;
	char *path;
	int r;

	memset(&c, 0, sizeof(c));
	if (!sa_dir)
		sa_dir = SA_DIR;
	if (!host || !*host || !port || !*port)
		return kc_error_set(
		    err, -ENOENT,
		    "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
	c.server = strchr(host, ':') ? kc_xasprintf("https://[%s]:%s", host, port)
				     : kc_xasprintf("https://%s:%s", host, port);
	c.token_file = kc_xasprintf("%s/token", sa_dir);
	c.token = read_trimmed(c.token_file, TOKEN_FILE_MAX, &r);
	if (!c.token) {
		kc_error_set(err, r, "in-cluster: %s: %s", c.token_file,
			     r == -EFBIG ? "file too large" : strerror(-r));
		goto fail;
	}
	if (!*c.token) {
		r = kc_error_set(err, -EINVAL, "in-cluster: %s: empty", c.token_file);
		goto fail;
	}
	c.ca_file = kc_xasprintf("%s/ca.crt", sa_dir);
	if (access(c.ca_file, R_OK) < 0) {
		r = kc_error_set(err, -errno, "in-cluster: %s: %s", c.ca_file, strerror(errno));
		goto fail;
	}
	path = kc_xasprintf("%s/namespace", sa_dir);
	c.ns = read_trimmed(path, 4096, &r);
	free(path);
	if (!c.ns || !*c.ns) {
		free(c.ns);
		c.ns = kc_xstrdup("default");
	}
	c.source = kc_xstrdup("in-cluster");
	*ret = c;
	return 0;
fail:
	kc_config_done(&c);
	return r;
}

int kc_config_load(const char *kubeconfig_path, const char *context, struct kc_config *ret,
		   struct kc_error *err)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	char *path;
	int r;

	if (kubeconfig_path && *kubeconfig_path)
		return kc_config_load_kubeconfig(kubeconfig_path, context, ret, err);
	if (env && *env)
		return load_list(env, context, ret, err);
	if (getenv("KUBERNETES_SERVICE_HOST") && *getenv("KUBERNETES_SERVICE_HOST"))
		return kc_config_in_cluster(NULL, ret, err);
	path = kc_xasprintf("%s/.kube/config", home && *home ? home : "");
	if (access(path, F_OK) < 0) {
		r = kc_error_set(
		    err, -ENOENT,
		    "no configuration: no --kubeconfig, $KUBECONFIG is not set, not in a cluster "
		    "(KUBERNETES_SERVICE_HOST is not set), and %s does not exist",
		    path);
		free(path);
		return r;
	}
	r = kc_config_load_kubeconfig(path, context, ret, err);
	free(path);
	return r;
}

/* Wipes secrets before freeing them: a core dump should not carry them. */
static void free_secret(char *s, size_t len)
{
	if (s) {
		memset(s, 0, len);
		free(s);
	}
}

void kc_config_done(struct kc_config *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->tls_server_name);
	free(c->ca_file);
	free(c->ca_data);
	free(c->client_cert_file);
	free(c->client_key_file);
	free(c->client_cert_data);
	free_secret(c->client_key_data, c->client_key_data_len);
	free_secret(c->token, c->token ? strlen(c->token) : 0);
	free(c->token_file);
	free(c->ns);
	free(c->source);
	kc_exec_config_free(c->exec);
	memset(c, 0, sizeof(*c));
}
