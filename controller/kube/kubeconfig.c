/* kubeconfig.c - kubeconfig files (libyaml): loading, merging, context selection. */
#include "kube/kube.h"
#include "kube/config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#define KC_FILE_MAX (16u << 20)

void kr_kube_config_init(struct kr_kube_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	kr_buf_init(&cfg->ca_data);
	kr_buf_init(&cfg->client_cert_data);
	pthread_mutex_init(&cfg->token_lock, NULL);
}

/* Frees everything and leaves `cfg` as after kr_kube_config_init. */
void kr_kube_config_release(struct kr_kube_config *cfg)
{
	free(cfg->server);
	free(cfg->namespace_);
	free(cfg->source);
	free(cfg->ca_file);
	kr_buf_release(&cfg->ca_data);
	free(cfg->tls_server_name);
	free(cfg->client_cert_file);
	free(cfg->client_key_file);
	kr_buf_release(&cfg->client_cert_data);
	kr_secret_free(cfg->client_key_data);
	kr_secret_free(cfg->token);
	free(cfg->token_file);
	kr_secret_free(cfg->file_token);
	pthread_mutex_destroy(&cfg->token_lock);
	kr_kube_config_init(cfg);
}

/* ---- files ---- */

/* Wipe every scalar (tokens, keys) and the parser's copies before libyaml frees them. */
static void wipe_document(yaml_document_t *doc)
{
	for (yaml_node_t *n = doc->nodes.start; n && n < doc->nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE)
			explicit_bzero(n->data.scalar.value, n->data.scalar.length);
}

static void wipe_parser(yaml_parser_t *p)
{
	if (p->buffer.start)
		explicit_bzero(p->buffer.start, (size_t)(p->buffer.end - p->buffer.start));
	if (p->raw_buffer.start)
		explicit_bzero(p->raw_buffer.start,
			       (size_t)(p->raw_buffer.end - p->raw_buffer.start));
}

static enum kr_status yaml_error(const struct kr_kc_file *f, const yaml_parser_t *p,
				 struct kr_error *err)
{
	const char *problem = p->problem ? p->problem : "unknown problem";

	if (p->error == YAML_MEMORY_ERROR)
		return kr_error_set(err, KR_ENOMEM, "kubeconfig %s: out of memory", f->path);
	if (p->error == YAML_READER_ERROR)
		return kr_error_set(err, KR_EINVAL,
				    "kubeconfig %s: byte offset %zu: not UTF-8 text: %s", f->path,
				    p->problem_offset, problem);
	return kr_error_set(
	    err, KR_EINVAL, "kubeconfig %s: line %zu column %zu: YAML syntax error: %s%s%s%s",
	    f->path, p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
	    p->context ? " (" : "", p->context ? p->context : "", p->context ? ")" : "");
}

static enum kr_status parse_file(struct kr_kc_file *f, struct kr_error *err)
{
	yaml_parser_t p;
	enum kr_status rc = KR_OK;

	if (!yaml_parser_initialize(&p))
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)f->text.data, f->text.len);
	if (yaml_parser_load(&p, &f->doc))
		f->loaded = 1;
	else
		rc = yaml_error(f, &p, err);
	wipe_parser(&p);
	yaml_parser_delete(&p);
	if (rc == KR_OK && !yaml_document_get_root_node(&f->doc))
		rc = kr_error_set(err, KR_EINVAL, "kubeconfig %s: file is empty", f->path);
	return rc;
}

/* The absolute directory of `path`, as kubectl resolves relative paths against. */
static char *file_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char cwd[4096];
	struct kr_buf b;
	enum kr_status rc;

	kr_buf_init(&b);
	if (slash == path)
		rc = kr_buf_adds(&b, "/");
	else if (path[0] == '/')
		rc = kr_buf_add(&b, path, (size_t)(slash - path));
	else if (!getcwd(cwd, sizeof(cwd)))
		rc = KR_EINVAL;
	else if (slash)
		rc = kr_buf_addf(&b, "%s/%.*s", cwd, (int)(slash - path), path);
	else
		rc = kr_buf_adds(&b, cwd);
	if (rc != KR_OK) {
		kr_buf_release(&b);
		return NULL;
	}
	return kr_buf_detach(&b, NULL);
}

/* Read and parse one file; with allow_missing, a file that does not exist is skipped. */
static enum kr_status load_file(struct kr_kc_file *f, int allow_missing, struct kr_error *err)
{
	struct stat st;
	enum kr_status rc;

	if (allow_missing && stat(f->path, &st) != 0 && errno == ENOENT)
		return KR_OK;
	rc = kr_kube_read_file(f->path, KC_FILE_MAX, &f->text, NULL, err);
	if (rc != KR_OK) {
		kr_error_prefix(err, "kubeconfig %s: ", f->path);
		return rc;
	}
	if (f->text.len == 0)
		return kr_error_set(err, KR_EINVAL, "kubeconfig %s: file is empty", f->path);
	f->dir = file_dir(f->path);
	if (!f->dir)
		return kr_error_set(err, KR_EINVAL, "kubeconfig %s: cannot resolve its directory",
				    f->path);
	return parse_file(f, err);
}

static void release_file(struct kr_kc_file *f)
{
	if (f->loaded) {
		wipe_document(&f->doc);
		yaml_document_delete(&f->doc);
	}
	kr_buf_release_wipe(&f->text);
	free(f->dir);
	f->dir = NULL;
	f->loaded = 0;
}

/* ---- merging and selection ---- */

#define KC_LIST_MAX 10000

static yaml_node_t *file_root(struct kr_kc_file *f)
{
	return yaml_document_get_root_node(&f->doc);
}

static enum kr_status check_entry(struct kr_kc_file *f, yaml_node_t *seq, int i, const char *list,
				  const char *kind, struct kr_error *err)
{
	yaml_document_t *doc = &f->doc;
	yaml_node_t *item = yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
	yaml_node_t *name, *body;
	const char *text;

	if (!item || item->type != YAML_MAPPING_NODE)
		return kr_error_set(err, KR_EINVAL,
				    "kubeconfig %s: %s[%d]: expected a mapping, got a %s", f->path,
				    list, i, item ? kr_kc_type_name(item) : "nothing");
	name = kr_kc_map_get(doc, item, "name");
	text = kr_kc_text(name);
	if (kr_kc_is_null(name) || !text)
		return kr_error_set(err, KR_EINVAL, "kubeconfig %s: %s[%d].name: %s", f->path, list,
				    i, kr_kc_is_null(name) ? "missing" : "expected a string");
	body = kr_kc_map_get(doc, item, kind);
	if (!kr_kc_is_null(body) && body->type != YAML_MAPPING_NODE)
		return kr_error_set(err, KR_EINVAL,
				    "kubeconfig %s: %s[%d].%s: expected a mapping, got a %s",
				    f->path, list, i, kind, kr_kc_type_name(body));
	for (int j = 0; j < i; j++) {
		yaml_node_t *other = yaml_document_get_node(doc, seq->data.sequence.items.start[j]);

		if (!strcmp(kr_kc_text(kr_kc_map_get(doc, other, "name")), text))
			return kr_error_set(err, KR_EINVAL,
					    "kubeconfig %s: %s[%d].name: duplicate name \"%.100s\" "
					    "(also %s[%d])",
					    f->path, list, i, text, list, j);
	}
	return KR_OK;
}

/* Every file must be well-formed throughout, not only in the entries this load uses. */
static enum kr_status check_list(struct kr_kc_file *f, const char *list, const char *kind,
				 struct kr_error *err)
{
	yaml_node_t *seq = kr_kc_map_get(&f->doc, file_root(f), list);
	enum kr_status rc = KR_OK;
	int n;

	if (kr_kc_is_null(seq))
		return KR_OK;
	if (seq->type != YAML_SEQUENCE_NODE)
		return kr_error_set(err, KR_EINVAL, "kubeconfig %s: %s: expected a list, got a %s",
				    f->path, list, kr_kc_type_name(seq));
	n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (n > KC_LIST_MAX)
		return kr_error_set(err, KR_EINVAL, "kubeconfig %s: %s: more than %d entries",
				    f->path, list, KC_LIST_MAX);
	for (int i = 0; i < n && rc == KR_OK; i++)
		rc = check_entry(f, seq, i, list, kind, err);
	return rc;
}

static enum kr_status check_file(struct kr_kc_file *f, struct kr_error *err)
{
	yaml_node_t *root = file_root(f);
	yaml_node_t *cur = kr_kc_map_get(&f->doc, root, "current-context");
	enum kr_status rc;

	if (root->type != YAML_MAPPING_NODE)
		return kr_error_set(err, KR_EINVAL,
				    "kubeconfig %s: expected a mapping at the top level, got a %s",
				    f->path, kr_kc_type_name(root));
	if (!kr_kc_is_null(cur) && !kr_kc_text(cur))
		return kr_error_set(err, KR_EINVAL,
				    "kubeconfig %s: current-context: expected a string", f->path);
	rc = check_list(f, "clusters", "cluster", err);
	if (rc == KR_OK)
		rc = check_list(f, "users", "user", err);
	if (rc == KR_OK)
		rc = check_list(f, "contexts", "context", err);
	return rc;
}

/* The first entry named `name` across the files, in order: the first file wins. */
static int find_entry(struct kr_kc_file *files, size_t nfiles, const char *list, const char *kind,
		      const char *name, struct kr_kc_ref *out)
{
	for (size_t f = 0; f < nfiles; f++) {
		yaml_node_t *seq;

		if (!files[f].loaded)
			continue;
		seq = kr_kc_map_get(&files[f].doc, file_root(&files[f]), list);
		if (kr_kc_is_null(seq))
			continue;
		for (yaml_node_item_t *it = seq->data.sequence.items.start;
		     it < seq->data.sequence.items.top; it++) {
			yaml_node_t *item = yaml_document_get_node(&files[f].doc, *it);

			if (strcmp(kr_kc_text(kr_kc_map_get(&files[f].doc, item, "name")), name))
				continue;
			out->file = &files[f];
			out->list = list;
			out->kind = kind;
			out->index = (int)(it - seq->data.sequence.items.start);
			out->body = kr_kc_map_get(&files[f].doc, item, kind);
			if (kr_kc_is_null(out->body))
				out->body = NULL;
			return 1;
		}
	}
	return 0;
}

static enum kr_status select_context(struct kr_kc_file *files, size_t n, const char *context,
				     const char *all, struct kr_kc_ref *ctx, const char **ctx_name,
				     struct kr_error *err)
{
	struct kr_kc_file *cur_file = NULL;
	const char *name = context;

	for (size_t i = 0; i < n && !name; i++) {
		const char *v;

		if (!files[i].loaded)
			continue;
		v = kr_kc_text(
		    kr_kc_map_get(&files[i].doc, file_root(&files[i]), "current-context"));
		if (v && *v) {
			name = v;
			cur_file = &files[i];
		}
	}
	if (!name)
		return kr_error_set(err, KR_EINVAL,
				    "kubeconfig %s: current-context is not set and no context was "
				    "given",
				    all);
	*ctx_name = name;
	if (find_entry(files, n, "contexts", "context", name, ctx))
		return KR_OK;
	if (cur_file)
		return kr_error_set(
		    err, KR_EINVAL,
		    "kubeconfig %s: current-context \"%.100s\" not found in contexts",
		    cur_file->path, name);
	return kr_error_set(err, KR_EINVAL,
			    "kubeconfig %s: context \"%.100s\" not found in contexts", all, name);
}

static enum kr_status fill_context(struct kr_kube_config *cfg, struct kr_kc_file *files, size_t n,
				   const struct kr_kc_ref *ctx, struct kr_error *err)
{
	struct kr_kc_ref ref;
	const char *cluster, *user, *ns;
	enum kr_status rc;

	rc = kr_kc_ref_string(ctx, "cluster", &cluster, err);
	if (rc == KR_OK && !cluster)
		rc = kr_kc_ref_error(ctx, "cluster", err, "missing");
	if (rc == KR_OK && !find_entry(files, n, "clusters", "cluster", cluster, &ref))
		rc = kr_kc_ref_error(ctx, "cluster", err,
				     "cluster \"%.100s\" not found in clusters", cluster);
	if (rc == KR_OK)
		rc = kr_kc_fill_cluster(cfg, &ref, err);
	if (rc == KR_OK)
		rc = kr_kc_ref_string(ctx, "user", &user, err);
	if (rc == KR_OK && user && !find_entry(files, n, "users", "user", user, &ref))
		rc = kr_kc_ref_error(ctx, "user", err, "user \"%.100s\" not found in users", user);
	if (rc == KR_OK && user)
		rc = kr_kc_fill_user(cfg, &ref, err);
	if (rc == KR_OK)
		rc = kr_kc_ref_string(ctx, "namespace", &ns, err);
	if (rc != KR_OK)
		return rc;
	cfg->namespace_ = strdup(ns ? ns : "default");
	return cfg->namespace_ ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

static enum kr_status set_source(struct kr_kube_config *cfg, const char *path, const char *ctx,
				 struct kr_error *err)
{
	struct kr_buf b;

	kr_buf_init(&b);
	if (kr_buf_addf(&b, "kubeconfig %s (context %s)", path, ctx) != KR_OK) {
		kr_buf_release(&b);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	cfg->source = kr_buf_detach(&b, NULL);
	return cfg->source ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

/* Parse and check every file, then resolve the context. *none: no file existed. */
static enum kr_status load_files(struct kr_kube_config *cfg, struct kr_kc_file *files, size_t n,
				 int allow_missing, const char *context, int *none,
				 struct kr_error *err)
{
	struct kr_buf all;
	struct kr_kc_ref ctx;
	const char *ctx_name = NULL;
	enum kr_status rc = KR_OK;

	kr_buf_init(&all);
	for (size_t i = 0; i < n && rc == KR_OK; i++) {
		rc = load_file(&files[i], allow_missing, err);
		if (rc == KR_OK && files[i].loaded)
			rc = check_file(&files[i], err);
		if (rc == KR_OK && files[i].loaded &&
		    kr_buf_addf(&all, "%s%s", all.len ? ":" : "", files[i].path) != KR_OK)
			rc = kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	*none = rc == KR_OK && all.len == 0;
	if (rc != KR_OK || *none)
		goto out;
	rc = select_context(files, n, context, all.data, &ctx, &ctx_name, err);
	if (rc == KR_OK)
		rc = fill_context(cfg, files, n, &ctx, err);
	if (rc == KR_OK)
		rc = set_source(cfg, ctx.file->path, ctx_name, err);
out:
	kr_buf_release(&all);
	return rc;
}

/* Load `paths` in order (first file wins), then release the files. */
static enum kr_status load_paths(struct kr_kube_config *cfg, const char *const *paths, size_t n,
				 int allow_missing, const char *context, int *none,
				 struct kr_error *err)
{
	struct kr_kc_file *files = calloc(n, sizeof(*files));
	enum kr_status rc;

	*none = 0;
	if (!files)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		files[i].path = paths[i];
		kr_buf_init(&files[i].text);
	}
	rc = load_files(cfg, files, n, allow_missing, context, none, err);
	for (size_t i = 0; i < n; i++)
		release_file(&files[i]);
	free(files);
	return rc;
}

/* $KUBECONFIG: ':'-separated, empty parts and repeats skipped, missing files ignored. */
static enum kr_status load_env_list(struct kr_kube_config *cfg, const char *env,
				    const char *context, int *none, struct kr_error *err)
{
	char *copy = strdup(env), *save = NULL, *tok;
	const char **paths = calloc(strlen(env) / 2 + 1, sizeof(*paths));
	size_t n = 0;
	enum kr_status rc = KR_OK;

	*none = 1;
	if (!copy || !paths) {
		rc = kr_error_set(err, KR_ENOMEM, "out of memory");
		goto out;
	}
	for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		size_t j = 0;

		while (j < n && strcmp(paths[j], tok))
			j++;
		if (j == n)
			paths[n++] = tok;
	}
	if (n)
		rc = load_paths(cfg, paths, n, 1, context, none, err);
out:
	free(paths);
	free(copy);
	return rc;
}

/* kubectl's order: $KUBECONFIG if set (~/.kube/config is then not read), else ~/.kube/config. */
static enum kr_status load_default(struct kr_kube_config *cfg, const char *context, int *none,
				   struct kr_buf *where, struct kr_error *err)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	struct kr_buf path;
	enum kr_status rc;

	if (env && env[0]) {
		rc = kr_buf_addf(where, "$KUBECONFIG=%s", env);
		if (rc == KR_OK)
			return load_env_list(cfg, env, context, none, err);
		return kr_error_set(err, rc, "out of memory");
	}
	*none = 1;
	if (!home || !home[0])
		return kr_buf_adds(where, "$HOME is not set") == KR_OK
			   ? KR_OK
			   : kr_error_set(err, KR_ENOMEM, "out of memory");
	kr_buf_init(&path);
	rc = kr_buf_addf(&path, "%s/.kube/config", home);
	if (rc == KR_OK)
		rc = kr_buf_adds(where, path.data);
	if (rc == KR_OK)
		rc = load_paths(cfg, (const char *const *)&path.data, 1, 1, context, none, err);
	else
		rc = kr_error_set(err, rc, "out of memory");
	kr_buf_release(&path);
	return rc;
}

enum kr_status kr_kube_config_load(struct kr_kube_config *cfg, const char *path,
				   const char *context, struct kr_error *err)
{
	struct kr_buf where;
	int none = 1;
	enum kr_status rc;

	kr_kube_config_release(cfg);
	kr_buf_init(&where);
	if (context && !context[0])
		context = NULL;
	if (path)
		rc = load_paths(cfg, &path, 1, 0, context, &none, err);
	else
		rc = load_default(cfg, context, &none, &where, err);
	if (rc != KR_OK || !none)
		goto out;
	if (context) {
		rc = kr_error_set(err, KR_EINVAL,
				  "context \"%.100s\" was given but there is no kubeconfig (%s)",
				  context, where.data);
		goto out;
	}
	rc = kr_kube_config_in_cluster(cfg, NULL, err);
	if (rc != KR_OK)
		kr_error_prefix(err, "no kubeconfig (%s) and ", where.data);
out:
	kr_buf_release(&where);
	if (rc != KR_OK)
		kr_kube_config_release(cfg);
	return rc;
}
