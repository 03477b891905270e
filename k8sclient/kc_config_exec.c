/*
 * users[].user.exec of a kubeconfig (kc_config.h): the exec credential plugin
 * that client-go runs to get a token or a client certificate (EKS, GKE, AKS),
 * checked as client-go checks it, and the deep copy and free of the result.
 * Running the plugin is kc_http_exec.c's job.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_config_int.h"

/* The exec plugin API versions client-go speaks (v1alpha1 was removed in 1.24). */
static const char *const exec_api_versions[] = {
	"client.authentication.k8s.io/v1",
	"client.authentication.k8s.io/v1beta1",
};

#define EXEC_ARGS_MAX 256

/* A list of strings (exec.args) into a NULL-terminated array after `first`. */
static int get_args(struct kfile *f, yaml_node_t *seq, const char *field, const char *first, char ***ret,
		    struct kc_error *err)
{
	size_t n = 0, i = 0;
	char **v;

	if (!kc_cfg_is_null(seq) && seq->type != YAML_SEQUENCE_NODE)
		return kc_error_set(err, -EINVAL, "%s: %s.args: expected a list of strings", f->path, field);
	if (!kc_cfg_is_null(seq))
		n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (n > EXEC_ARGS_MAX)
		return kc_error_set(err, -E2BIG, "%s: %s.args: more than %d arguments", f->path, field,
				    EXEC_ARGS_MAX);
	v = kc_xcalloc(n + 2, sizeof(*v));
	v[i++] = kc_xstrdup(first);
	for (size_t k = 0; k < n; k++) {
		yaml_node_t *it = kc_cfg_node_at(f, seq->data.sequence.items.start[k]);

		if (!it || it->type != YAML_SCALAR_NODE ||
		    strlen((char *)it->data.scalar.value) != it->data.scalar.length) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return kc_error_set(err, -EINVAL, "%s: %s.args[%zu]: expected a string", f->path, field, k);
		}
		v[i++] = kc_xstrdup((char *)it->data.scalar.value);
	}
	*ret = v;
	return 0;
}

/* exec.env: a list of {name, value} into NULL-terminated "NAME=value" strings. */
static int get_env(struct kfile *f, yaml_node_t *seq, const char *field, char ***ret, struct kc_error *err)
{
	size_t n = 0;
	char **v;
	int r = 0;

	if (!kc_cfg_is_null(seq) && seq->type != YAML_SEQUENCE_NODE)
		return kc_error_set(err, -EINVAL, "%s: %s.env: expected a list of {name, value}", f->path,
				    field);
	if (!kc_cfg_is_null(seq))
		n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (n > EXEC_ARGS_MAX)
		return kc_error_set(err, -E2BIG, "%s: %s.env: more than %d entries", f->path, field,
				    EXEC_ARGS_MAX);
	v = kc_xcalloc(n + 1, sizeof(*v));
	for (size_t k = 0; k < n; k++) {
		yaml_node_t *it = kc_cfg_node_at(f, seq->data.sequence.items.start[k]);
		const char *name = NULL, *value = NULL;
		char sub[96];

		/* A path too long for sub is cut: it only shortens an error message. */
		if (snprintf(sub, sizeof(sub), "%s.env[%zu]", field, k) >= (int)sizeof(sub))
			sub[sizeof(sub) - 1] = '\0';
		if (!it || it->type != YAML_MAPPING_NODE) {
			r = kc_error_set(err, -EINVAL, "%s: %s: expected a mapping", f->path, sub);
			break;
		}
		if ((r = kc_cfg_get_str(f, it, sub, "name", &name, err)) < 0 ||
		    (r = kc_cfg_get_str(f, it, sub, "value", &value, err)) < 0)
			break;
		if (!name || !*name || strchr(name, '=')) {
			r = kc_error_set(err, -EINVAL, "%s: %s.name: missing, empty or contains '='", f->path,
					 sub);
			break;
		}
		v[k] = kc_xasprintf("%s=%s", name, value ? value : "");
	}
	if (r < 0) {
		for (size_t k = 0; k < n; k++)
			free(v[k]);
		free(v);
		return r;
	}
	*ret = v;
	return 0;
}

/*
 * users[].user.exec, checked as client-go checks it: a known apiVersion and a
 * command; interactiveMode Never or IfAvailable (v1 requires it to be set;
 * v1beta1 defaults to IfAvailable).  Always is refused: a controller has no
 * terminal to give the plugin.  A command with a '/' is relative to the
 * kubeconfig's directory; one without is looked up on $PATH when run.
 */
int kc_cfg_load_exec(struct kfile *f, const char *user_field, yaml_node_t *m, struct kc_config *c,
		     struct kc_error *err)
{
	struct kc_exec_config *e;
	const char *api, *cmd, *hint, *mode;
	char field[80];
	bool known = false;
	int r;

	snprintf(field, sizeof(field), "%s.exec", user_field);
	if (m->type != YAML_MAPPING_NODE)
		return kc_error_set(err, -EINVAL, "%s: %s: expected a mapping", f->path, field);
	if ((r = kc_cfg_get_str(f, m, field, "apiVersion", &api, err)) < 0 ||
	    (r = kc_cfg_get_str(f, m, field, "command", &cmd, err)) < 0 ||
	    (r = kc_cfg_get_str(f, m, field, "installHint", &hint, err)) < 0 ||
	    (r = kc_cfg_get_str(f, m, field, "interactiveMode", &mode, err)) < 0)
		return r;
	if (!api)
		return kc_error_set(err, -EINVAL, "%s: %s.apiVersion: missing (%s or %s)", f->path, field,
				    exec_api_versions[0], exec_api_versions[1]);
	for (size_t i = 0; i < KC_ARRAY_SIZE(exec_api_versions); i++)
		known = known || strcmp(api, exec_api_versions[i]) == 0;
	if (!known)
		return kc_error_set(err, -ENOTSUP, "%s: %s.apiVersion: %s is not supported (use %s or %s)",
				    f->path, field, kc_cfg_plain_name(api) ? api : "the value",
				    exec_api_versions[0], exec_api_versions[1]);
	if (!cmd || !*cmd)
		return kc_error_set(err, -EINVAL, "%s: %s.command: missing", f->path, field);
	e = kc_xcalloc(1, sizeof(*e));
	c->exec = e;
	e->api_version = kc_xstrdup(api);
	e->command = strchr(cmd, '/') && cmd[0] != '/' ? kc_xasprintf("%s/%s", f->dir, cmd) : kc_xstrdup(cmd);
	e->install_hint = hint ? kc_xstrdup(hint) : NULL;
	if (!mode && strcmp(api, exec_api_versions[0]) == 0)
		return kc_error_set(err, -EINVAL, "%s: %s.interactiveMode: required by %s (use Never)", f->path,
				    field, api);
	if (!mode || strcmp(mode, "IfAvailable") == 0)
		e->interactive = KC_EXEC_IF_AVAILABLE;
	else if (strcmp(mode, "Never") == 0)
		e->interactive = KC_EXEC_NEVER;
	else if (strcmp(mode, "Always") == 0)
		return kc_error_set(err, -ENOTSUP,
				    "%s: %s.interactiveMode: Always needs a terminal, and device-descheduler has "
				    "none; use a plugin that works with Never or IfAvailable",
				    f->path, field);
	else
		return kc_error_set(err, -EINVAL, "%s: %s.interactiveMode: expected Never, IfAvailable or Always",
				    f->path, field);
	if ((r = kc_cfg_get_bool(f, m, field, "provideClusterInfo", &e->provide_cluster_info, err)) < 0 ||
	    (r = get_args(f, kc_cfg_map_get(f, m, "args"), field, e->command, &e->args, err)) < 0 ||
	    (r = get_env(f, kc_cfg_map_get(f, m, "env"), field, &e->env, err)) < 0)
		return r;
	return 0;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static char **dup_strv(char *const *v)
{
	size_t n = 0;
	char **out;

	if (!v)
		return NULL;
	while (v[n])
		n++;
	out = kc_xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = kc_xstrdup(v[i]);
	return out;
}

struct kc_exec_config *kc_exec_config_dup(const struct kc_exec_config *e)
{
	struct kc_exec_config *d;

	if (!e)
		return NULL;
	d = kc_xcalloc(1, sizeof(*d));
	d->api_version = kc_xstrdup(e->api_version);
	d->command = kc_xstrdup(e->command);
	d->args = dup_strv(e->args);
	d->env = dup_strv(e->env);
	d->install_hint = e->install_hint ? kc_xstrdup(e->install_hint) : NULL;
	d->provide_cluster_info = e->provide_cluster_info;
	d->interactive = e->interactive;
	return d;
}

struct kc_exec_config *kc_exec_config_free(struct kc_exec_config *e)
{
	if (!e)
		return NULL;
	free(e->api_version);
	free(e->command);
	free_strv(e->args);
	free_strv(e->env);
	free(e->install_hint);
	free(e);
	return NULL;
}
