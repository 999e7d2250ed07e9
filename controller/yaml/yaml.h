/* yaml.h - YAML documents to cJSON trees (manifests, kubeconfig-like files), on libyaml. */
#ifndef KR_YAML_H
#define KR_YAML_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/error.h"

/*
 * Parse every document in `text` (len bytes) into a cJSON array, one element per
 * document (empty documents are skipped). Plain scalars resolve as YAML 1.2's core
 * schema does (null, true/false, integers, floats; everything else a string);
 * quoted scalars and `!!str` are strings. Aliases are expanded, bounded by a node
 * budget so a "billion laughs" file fails with KR_ETOOBIG instead of eating memory.
 * `source` (a file name, may be NULL) prefixes error messages, which also give the
 * line and column. *out belongs to the caller (cJSON_Delete); NULL on error.
 */
enum kr_status kr_yaml_parse(const char *text, size_t len, const char *source, cJSON **out,
			     struct kr_error *err);

/* Read `path` (at most 16 MiB) and parse it as kr_yaml_parse does. */
enum kr_status kr_yaml_parse_file(const char *path, cJSON **out, struct kr_error *err);

#endif
