/*
 * ExecCredential decoding and KUBERNETES_EXEC_INFO (kc_exec.h), with jansson:
 * the documents are small.  jansson's own error text quotes the input near
 * the error ("near 'abc'"), and the input may be a token printed raw, so
 * errors here give the position only.
 */
#include "kc_exec.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_log.h"

static void wipe_free(char *s, size_t len)
{
	if (s) {
		memset(s, 0, len);
		free(s);
	}
}

void kc_exec_credential_done(struct kc_exec_credential *c)
{
	if (!c)
		return;
	wipe_free(c->token, c->token ? strlen(c->token) : 0);
	wipe_free(c->client_cert_data, c->client_cert_data_len);
	wipe_free(c->client_key_data, c->client_key_data_len);
	memset(c, 0, sizeof(*c));
}

/* A string field of status: NULL when absent or empty, -EBADMSG when not a string. */
static int get_string(json_t *status, const char *key, char **ret, size_t *ret_len, struct kc_error *err)
{
	json_t *v = json_object_get(status, key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return kc_error_set(err, -EBADMSG, "exec plugin: status.%s is not a string", key);
	if (json_string_length(v) == 0)
		return 0;
	if (strlen(json_string_value(v)) != json_string_length(v))
		return kc_error_set(err, -EBADMSG, "exec plugin: status.%s contains a NUL byte", key);
	*ret = kc_xstrndup(json_string_value(v), json_string_length(v));
	if (ret_len)
		*ret_len = json_string_length(v);
	return 0;
}

int kc_exec_credential_decode(const char *json, size_t len, const char *api_version,
			      struct kc_exec_credential *ret, struct kc_error *err)
{
	struct kc_exec_credential c;
	json_error_t jerr;
	json_t *root, *status, *exp;
	const char *kind, *av;
	int r = -EBADMSG;

	memset(&c, 0, sizeof(c));
	memset(ret, 0, sizeof(*ret));
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return kc_error_set(err, -EBADMSG,
				    "exec plugin: its output is not an ExecCredential (invalid JSON at line %d, "
				    "column %d)",
				    jerr.line, jerr.column);
	kind = json_string_value(json_object_get(root, "kind"));
	av = json_string_value(json_object_get(root, "apiVersion"));
	if (!json_is_object(root) || !kind || strcmp(kind, "ExecCredential") != 0) {
		kc_error_set(err, r, "exec plugin: its output is not an ExecCredential (kind is not ExecCredential)");
		goto out;
	}
	if (!av || strcmp(av, api_version) != 0) {
		/* A known version is named; anything else could be anything. */
		kc_error_set(err, r, "exec plugin is configured to use API version %s, plugin returned version %s",
			     api_version,
			     !av ? "none"
			     : strcmp(av, "client.authentication.k8s.io/v1") == 0 ||
				     strcmp(av, "client.authentication.k8s.io/v1beta1") == 0 ||
				     strcmp(av, "client.authentication.k8s.io/v1alpha1") == 0
				 ? av
				 : "another");
		goto out;
	}
	status = json_object_get(root, "status");
	if (!json_is_object(status)) {
		kc_error_set(err, r, "exec plugin didn't return a status field");
		goto out;
	}
	if ((r = get_string(status, "token", &c.token, NULL, err)) < 0 ||
	    (r = get_string(status, "clientCertificateData", &c.client_cert_data, &c.client_cert_data_len, err)) < 0 ||
	    (r = get_string(status, "clientKeyData", &c.client_key_data, &c.client_key_data_len, err)) < 0)
		goto out;
	r = -EBADMSG;
	if (!c.client_cert_data != !c.client_key_data) {
		kc_error_set(err, r, "exec plugin returned only %s, not both",
			     c.client_cert_data ? "clientCertificateData" : "clientKeyData");
		goto out;
	}
	if (!c.token && !c.client_cert_data) {
		kc_error_set(err, r, "exec plugin didn't return a token or cert/key pair");
		goto out;
	}
	exp = json_object_get(status, "expirationTimestamp");
	if (exp && !json_is_null(exp)) {
		int64_t s;

		if (!json_is_string(exp) || kc_parse_time(json_string_value(exp), json_string_length(exp), &s) < 0) {
			kc_error_set(err, r, "exec plugin: status.expirationTimestamp is not an RFC 3339 time");
			goto out;
		}
		/* 0 means "never"; a plugin saying 1970 means "already expired". */
		c.expires_ms = s > 0 ? s * 1000 : 1;
	}
	*ret = c;
	memset(&c, 0, sizeof(c));
	r = 0;
out:
	kc_exec_credential_done(&c);
	json_decref(root);
	return r;
}

static char *base64(const char *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = kc_xmalloc((len + 2) / 3 * 4 + 1), *p = out;
	const unsigned char *s = (const unsigned char *)in;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*p++ = tab[s[i] >> 2];
		*p++ = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		*p++ = tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		*p++ = tab[s[i + 2] & 63];
	}
	if (i < len) {
		*p++ = tab[s[i] >> 2];
		if (i + 1 < len) {
			*p++ = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
			*p++ = tab[(s[i + 1] & 15) << 2];
		} else {
			*p++ = tab[(s[i] & 3) << 4];
			*p++ = '=';
		}
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

char *kc_exec_info(const struct kc_config *cfg, const char *ca_pem, size_t ca_len)
{
	const struct kc_exec_config *e = cfg->exec;
	json_t *root = json_object(), *spec = json_object();
	char *out;

	json_object_set_new(root, "apiVersion", json_string(e ? e->api_version : "client.authentication.k8s.io/v1"));
	json_object_set_new(root, "kind", json_string("ExecCredential"));
	json_object_set_new(spec, "interactive", json_false());
	if (e && e->provide_cluster_info) {
		json_t *cl = json_object();

		json_object_set_new(cl, "server", json_string(cfg->server ? cfg->server : ""));
		if (cfg->tls_server_name)
			json_object_set_new(cl, "tls-server-name", json_string(cfg->tls_server_name));
		if (cfg->insecure_skip_tls_verify)
			json_object_set_new(cl, "insecure-skip-tls-verify", json_true());
		if (ca_pem && ca_len) {
			char *b = base64(ca_pem, ca_len);

			json_object_set_new(cl, "certificate-authority-data", json_string(b));
			free(b);
		}
		json_object_set_new(spec, "cluster", cl);
	}
	json_object_set_new(root, "spec", spec);
	out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!out)
		kc_log_fatal("out of memory building KUBERNETES_EXEC_INFO");
	return out;
}

void kc_exec_first_line(const char *s, size_t len, char *buf, size_t size)
{
	size_t n = 0, max = size - 1 < 200 ? size - 1 : 200;

	while (len > 0 && (*s == '\n' || *s == '\r' || *s == ' ')) {
		s++;
		len--;
	}
	for (size_t i = 0; i < len && s[i] != '\n' && s[i] != '\r' && n < max; i++)
		buf[n++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
}
