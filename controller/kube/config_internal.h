/* config_internal.h - what the configuration files (kubeconfig*.c, incluster.c) share. */
#ifndef KR_KUBE_CONFIG_INTERNAL_H
#define KR_KUBE_CONFIG_INTERNAL_H

#include <sys/stat.h>

#include <yaml.h>

#include "kube/kube.h"

/*
 * Read the regular file `path` (at most `max` bytes) into `out`, which must be
 * initialised; `st` (may be NULL) receives its fstat. The message does not name the
 * path ("cannot read: No such file or directory"): callers prefix it. Unreadable or
 * not a regular file: KR_EINVAL; larger than `max`: KR_ETOOBIG. On error `out` is
 * left empty, its bytes wiped (callers also use this for key files).
 */
enum kr_status kr_kube_read_file(const char *path, size_t max, struct kr_buf *out, struct stat *st,
				 struct kr_error *err);

/* ---- kubeconfig.c / kubeconfig_entry.c ---- */

/* One kubeconfig file: its text and its YAML tree (alive until the load ends). */
struct kr_kc_file {
	const char *path; /* as given; borrowed */
	char *dir;	  /* absolute directory, for relative paths in the file */
	struct kr_buf text;
	yaml_document_t doc;
	int loaded;
};

/* A named entry of clusters/users/contexts, and where it came from (for messages). */
struct kr_kc_ref {
	struct kr_kc_file *file;
	const char *list; /* "clusters" */
	const char *kind; /* "cluster" */
	int index;
	yaml_node_t *body; /* the "cluster:" mapping, or NULL when absent */
};

/* The node's kind for messages: "string", "list", "mapping". */
const char *kr_kc_type_name(const yaml_node_t *n);
/* 1 for NULL, an empty scalar, or a plain ~/null: "not set", as in kubectl. */
int kr_kc_is_null(const yaml_node_t *n);
/* The value under `key` in mapping `map`, or NULL (also when `map` is not a mapping). */
yaml_node_t *kr_kc_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key);
/* A scalar's text; NULL for a non-scalar, NULL node, or text with an embedded NUL. */
const char *kr_kc_text(const yaml_node_t *n);

/* KR_EINVAL, "kubeconfig <file>: <list>[<i>].<kind>.<field>: <problem>". No secrets in fmt. */
enum kr_status kr_kc_ref_error(const struct kr_kc_ref *r, const char *field, struct kr_error *err,
			       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A string field of an entry, borrowed from the document; *out NULL when absent or null. */
enum kr_status kr_kc_ref_string(const struct kr_kc_ref *r, const char *field, const char **out,
				struct kr_error *err);
/* Fill server/TLS fields from a clusters[] entry, or credentials from a users[] entry. */
enum kr_status kr_kc_fill_cluster(struct kr_kube_config *cfg, const struct kr_kc_ref *r,
				  struct kr_error *err);
enum kr_status kr_kc_fill_user(struct kr_kube_config *cfg, const struct kr_kc_ref *r,
			       struct kr_error *err);

#endif
