/*
 * Where the API server is and how to authenticate to it: in-cluster service
 * account or a kubeconfig, resolved the way client-go does.  Pure file
 * parsing: no uv.h, no curl.h.  Errors name the file, the field and what is
 * wrong, and never contain a token or key.
 */
#ifndef KC_CONFIG_H
#define KC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "kc_util.h"

/*
 * users[].user.exec: a client-go credential plugin
 * (client.authentication.k8s.io/v1 or v1beta1), run by the HTTP client
 * (kc_http_exec.c) for a token or a client certificate.
 */
enum kc_exec_interactive {
	KC_EXEC_NEVER = 0,
	KC_EXEC_IF_AVAILABLE,
};

struct kc_exec_config {
	char *api_version;  /* "client.authentication.k8s.io/v1" or ".../v1beta1" */
	char *command;      /* a name looked up on $PATH, or a path (made absolute when relative) */
	char **args;        /* NULL-terminated; args[0] is command */
	char **env;         /* NULL-terminated "NAME=value" entries, added to our environment */
	char *install_hint; /* shown when the command cannot be found; or NULL */
	bool provide_cluster_info;
	enum kc_exec_interactive interactive;
};

struct kc_config {
	char *server;               /* "https://10.0.0.1:443", no trailing slash */
	char *tls_server_name;      /* NULL = the server's host */
	char *ca_file;              /* NULL or a path (made absolute) */
	char *ca_data;              /* NULL or PEM bytes (decoded certificate-authority-data) */
	size_t ca_data_len;
	char *client_cert_file;
	char *client_key_file;
	char *client_cert_data;     /* PEM */
	size_t client_cert_data_len;
	char *client_key_data;      /* PEM */
	size_t client_key_data_len;
	char *token;                /* static bearer token, or NULL */
	char *token_file;           /* re-read when it changes and after a 401, or NULL */
	char *ns;                   /* namespace from the context or the service account; "default" */
	char *source;               /* "kubeconfig /root/.kube/config, context kind" or "in-cluster" */
	bool insecure_skip_tls_verify;
	struct kc_exec_config *exec; /* NULL, or the credential plugin (its credentials win over token) */
};

/*
 * Resolves the configuration:
 *   1. kubeconfig_path (the --kubeconfig flag) when not NULL/empty;
 *   2. else $KUBECONFIG (colon-separated), merged as kubectl merges it:
 *      missing files are skipped, and for current-context and for each
 *      context, cluster and user name the first file that sets it wins;
 *   3. else in-cluster when KUBERNETES_SERVICE_HOST is set;
 *   4. else ~/.kube/config.
 * context: a context name, or NULL for current-context.
 */
int kc_config_load(const char *kubeconfig_path, const char *context, struct kc_config *ret,
		   struct kc_error *err);
/* Parses one kubeconfig file.  Relative paths inside it are relative to its
 * directory; referenced files are checked to be readable (within a size
 * bound) here, so that errors name the field.  exec plugins are parsed
 * (apiVersion checked; interactiveMode Always refused, as we have no
 * terminal); auth-provider plugins and basic auth are refused with -ENOTSUP. */
int kc_config_load_kubeconfig(const char *path, const char *context, struct kc_config *ret,
			      struct kc_error *err);
/* In-cluster: KUBERNETES_SERVICE_HOST/PORT and sa_dir/{token,ca.crt,namespace}
 * (sa_dir NULL = /var/run/secrets/kubernetes.io/serviceaccount). */
int kc_config_in_cluster(const char *sa_dir, struct kc_config *ret, struct kc_error *err);
/* Frees the fields (wiping the token and key) and zeroes *c; accepts NULL. */
void kc_config_done(struct kc_config *c);
/* A deep copy of an exec configuration (NULL for NULL); free with kc_exec_config_free. */
struct kc_exec_config *kc_exec_config_dup(const struct kc_exec_config *e);
/* Accepts NULL; returns NULL. */
struct kc_exec_config *kc_exec_config_free(struct kc_exec_config *e);

#endif
