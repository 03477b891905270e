/*
 * The pure half of exec credential plugins (client-go's
 * client.authentication.k8s.io v1 and v1beta1): decoding the ExecCredential
 * a plugin prints, building the KUBERNETES_EXEC_INFO it is given, and the
 * error text of a failed run.  No uv.h, no curl.h: running the plugin is
 * kc_http_exec.c's job.  Nothing here ever puts a token or key into an error
 * message, and every copy of one is wiped before it is freed.
 */
#ifndef KC_EXEC_H
#define KC_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "kc_config.h"
#include "kc_util.h"

/* What a plugin's stdout may hold, at most (client-go has no bound; real plugins print ~2 KB). */
#define KC_EXEC_MAX_OUTPUT (1024u * 1024u)

struct kc_exec_credential {
	char *token;            /* bearer token, or NULL */
	char *client_cert_data; /* PEM, or NULL */
	size_t client_cert_data_len;
	char *client_key_data;  /* PEM, or NULL */
	size_t client_key_data_len;
	int64_t expires_ms;     /* status.expirationTimestamp as Unix ms; 0 = does not expire */
};

/*
 * Decodes a plugin's output: an ExecCredential of api_version (the
 * kubeconfig's exec.apiVersion: a plugin answering in another version is an
 * error, as in client-go) whose status has a token, or a client certificate
 * and key, or both.  On success *ret is filled (free with
 * kc_exec_credential_done); on failure it is zeroed and err says what was
 * wrong without quoting the output.  Returns 0 or -EBADMSG.
 */
int kc_exec_credential_decode(const char *json, size_t len, const char *api_version,
			      struct kc_exec_credential *ret, struct kc_error *err);
/* Wipes and frees the fields and zeroes *c; accepts NULL. */
void kc_exec_credential_done(struct kc_exec_credential *c);

/*
 * The value of KUBERNETES_EXEC_INFO: an ExecCredential whose spec says the
 * plugin is not interactive and, with provideClusterInfo, describes the
 * cluster (server, tls-server-name, insecure-skip-tls-verify and the CA as
 * base64 certificate-authority-data: ca_pem, which the caller read from
 * ca_file when the kubeconfig names a file).  The caller frees the result.
 */
char *kc_exec_info(const struct kc_config *cfg, const char *ca_pem, size_t ca_len);

/*
 * The first line of a plugin's stderr, made fit for one log line: control
 * characters replaced, cut to 200 bytes.  Into buf (size > 4); "" when empty.
 */
void kc_exec_first_line(const char *s, size_t len, char *buf, size_t size);

#endif
