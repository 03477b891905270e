/*
 * Private to the configuration loader (kc_config.c, and kc_config_exec.c for
 * users[].user.exec): one parsed kubeconfig file and the typed getters both
 * read it with.  Every getter names the file and the field path in its error
 * and never quotes a value (values can be secrets).
 */
#ifndef KC_CONFIG_INT_H
#define KC_CONFIG_INT_H

#include <stdbool.h>
#include <yaml.h>

#include "kc_config.h"
#include "kc_util.h"

/* One parsed kubeconfig file. */
struct kfile {
	char *path;
	char *dir; /* for relative paths inside it */
	yaml_document_t doc;
	bool has_doc;
};

yaml_node_t *kc_cfg_node_at(struct kfile *f, int id);
/* An absent value: no node, or a plain null/~/empty scalar. */
bool kc_cfg_is_null(yaml_node_t *n);
/* The value of key in mapping m, or NULL. */
yaml_node_t *kc_cfg_map_get(struct kfile *f, yaml_node_t *m, const char *key);
/* The string at m[key]: *ret is NULL when absent, else points into the document; a mapping
 * or list where a string belongs is -EINVAL.  field is m's path, for errors. */
int kc_cfg_get_str(struct kfile *f, yaml_node_t *m, const char *field, const char *key, const char **ret,
		   struct kc_error *err);
int kc_cfg_get_bool(struct kfile *f, yaml_node_t *m, const char *field, const char *key, bool *ret,
		    struct kc_error *err);
/* A short identifier from the file, fit to be copied into an error message. */
bool kc_cfg_plain_name(const char *s);

/* kc_config_exec.c: users[].user.exec (m) into c->exec; user_field names the user in errors. */
int kc_cfg_load_exec(struct kfile *f, const char *user_field, yaml_node_t *m, struct kc_config *c,
		     struct kc_error *err);

#endif
