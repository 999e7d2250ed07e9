/* kubeconfig_entry.c - one kubeconfig entry's fields (cluster, user) into the config. */
#include "kube/kube.h"
#include "kube/config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- YAML tree access ---- */

const char *kr_kc_type_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "string";
	case YAML_SEQUENCE_NODE:
		return "list";
	case YAML_MAPPING_NODE:
		return "mapping";
	default:
		return "nothing";
	}
}

/* A plain `~`, `null` or empty scalar means "not set", as in kubectl. */
int kr_kc_is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n)
		return 1;
	if (n->type != YAML_SCALAR_NODE)
		return 0;
	v = (const char *)n->data.scalar.value;
	if (n->data.scalar.length == 0)
		return 1;
	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"));
}

yaml_node_t *kr_kc_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);

		if (k && k->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)k->data.scalar.value, key))
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

/* Scalar text of a node, or NULL for a non-scalar or one with an embedded NUL. */
const char *kr_kc_text(const yaml_node_t *n)
{
	const char *v;

	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	v = (const char *)n->data.scalar.value;
	return strlen(v) == n->data.scalar.length ? v : NULL;
}

/* ---- messages ---- */

/* "kubeconfig /x: users[0].user.token: <problem>". Never pass a value of a secret field. */
enum kr_status kr_kc_ref_error(const struct kr_kc_ref *r, const char *field, struct kr_error *err,
			       const char *fmt, ...)
{
	char problem[KR_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	return kr_error_set(err, KR_EINVAL, "kubeconfig %s: %s[%d].%s.%s: %s", r->file->path,
			    r->list, r->index, r->kind, field, problem);
}

/* A string field of an entry; *out NULL when absent or null. */
enum kr_status kr_kc_ref_string(const struct kr_kc_ref *r, const char *field, const char **out,
				struct kr_error *err)
{
	yaml_node_t *n = kr_kc_map_get(&r->file->doc, r->body, field);

	*out = NULL;
	if (kr_kc_is_null(n))
		return KR_OK;
	if (n->type != YAML_SCALAR_NODE)
		return kr_kc_ref_error(r, field, err, "expected a string, got a %s",
				       kr_kc_type_name(n));
	*out = kr_kc_text(n);
	if (!*out)
		return kr_kc_ref_error(r, field, err, "contains a NUL character");
	return KR_OK;
}

static enum kr_status ref_bool(const struct kr_kc_ref *r, const char *field, int *out,
			       struct kr_error *err)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
					  "YES",  "on",	  "On",	  "ON"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No",
					 "NO",	  "off",   "Off",   "OFF"};
	const char *v;
	enum kr_status rc = kr_kc_ref_string(r, field, &v, err);

	*out = 0;
	if (rc != KR_OK || !v)
		return rc;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(v, yes[i])) {
			*out = 1;
			return KR_OK;
		}
		if (!strcmp(v, no[i]))
			return KR_OK;
	}
	return kr_kc_ref_error(r, field, err, "expected true or false, got \"%.40s\"", v);
}

/* ---- values ---- */

static int b64_value(unsigned char c)
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

/*
 * Standard padded base64, as Go's base64.StdEncoding decodes kubeconfig []byte fields:
 * CR and LF are skipped, anything else outside the alphabet is an error, '=' only as
 * the final padding. Hand-written rather than EVP_DecodeBlock, which accepts unpadded
 * tails loosely and returns a length that includes the padding. With out == NULL it only
 * validates and counts. Returns the decoded length, or -1 when invalid.
 */
static long b64_decode(const char *in, size_t len, unsigned char *out)
{
	unsigned char q[4] = {0};
	size_t n = 0, pad = 0;
	long outlen = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v = b64_value(c);

		if (c == '\r' || c == '\n')
			continue;
		if (c == '=' && n >= 2) {
			pad++;
			q[n++] = 0;
		} else if (v < 0 || pad) {
			outlen = -1;
			break;
		} else {
			q[n++] = (unsigned char)v;
		}
		if (n < 4)
			continue;
		if (out) {
			unsigned char three[3] = {(unsigned char)(q[0] << 2 | q[1] >> 4),
						  (unsigned char)(q[1] << 4 | q[2] >> 2),
						  (unsigned char)(q[2] << 6 | q[3])};

			memcpy(out + outlen, three, 3 - pad);
			explicit_bzero(three, sizeof(three));
		}
		outlen += 3 - (long)pad;
		n = 0;
		if (pad)
			pad = 3; /* nothing may follow the padding */
	}
	explicit_bzero(q, sizeof(q));
	return n == 0 ? outlen : -1;
}

static int looks_like_pem(const char *data, size_t len)
{
	return memmem(data, len, "-----BEGIN ", 11) != NULL;
}

/* field-data: base64 of PEM, into a buffer (certificates) or a secret (keys). */
static enum kr_status ref_pem_data(const struct kr_kc_ref *r, const char *field, struct kr_buf *buf,
				   struct kr_secret **secret, struct kr_error *err)
{
	const char *v;
	char *dst;
	long n;
	enum kr_status rc = kr_kc_ref_string(r, field, &v, err);

	if (rc != KR_OK || !v)
		return rc;
	n = b64_decode(v, strlen(v), NULL);
	if (n < 0)
		return kr_kc_ref_error(r, field, err, "invalid base64");
	if (secret) {
		*secret = kr_secret_alloc((size_t)n);
		dst = *secret ? kr_secret_mut(*secret) : NULL;
	} else {
		dst = kr_buf_grow(buf, (size_t)n) == KR_OK ? buf->data : NULL;
	}
	if (!dst)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	b64_decode(v, strlen(v), (unsigned char *)dst);
	if (buf) {
		buf->len = (size_t)n;
		buf->data[n] = '\0';
	}
	if (!looks_like_pem(dst, (size_t)n))
		return kr_kc_ref_error(r, field, err,
				       "decoded value is not PEM (no -----BEGIN line)");
	return KR_OK;
}

/* A file path field, made absolute against the kubeconfig's directory, and readable. */
static enum kr_status ref_path(const struct kr_kc_ref *r, const char *field, char **out,
			       struct kr_error *err)
{
	const char *v;
	struct kr_buf b;
	enum kr_status rc = kr_kc_ref_string(r, field, &v, err);

	*out = NULL;
	if (rc != KR_OK || !v)
		return rc;
	kr_buf_init(&b);
	if (v[0] == '/')
		rc = kr_buf_adds(&b, v);
	else
		rc = kr_buf_addf(&b, "%s/%s", r->file->dir, v);
	if (rc != KR_OK) {
		kr_buf_release(&b);
		return kr_error_set(err, rc, "out of memory");
	}
	*out = kr_buf_detach(&b, NULL);
	if (!*out)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	if (access(*out, R_OK) != 0)
		return kr_kc_ref_error(r, field, err, "cannot read %s: %s", *out, strerror(errno));
	return KR_OK;
}

/* "host:443" -> "https://host:443"; only http and https; no trailing slash. */
static enum kr_status set_server(struct kr_kube_config *cfg, const struct kr_kc_ref *r,
				 const char *v, struct kr_error *err)
{
	const char *sep = strstr(v, "://");
	const char *host = sep ? sep + 3 : v;
	size_t len = strlen(host);
	struct kr_buf b;

	if (sep && strncmp(v, "https://", 8) && strncmp(v, "http://", 7))
		return kr_kc_ref_error(r, "server", err, "unsupported scheme in \"%.100s\"", v);
	while (len && host[len - 1] == '/')
		len--;
	if (!len || host[0] == '/' || strpbrk(v, " \t\r\n"))
		return kr_kc_ref_error(r, "server", err, "not a URL: \"%.100s\"", v);
	kr_buf_init(&b);
	if (kr_buf_addf(&b, "%s%.*s", sep && v[4] == ':' ? "http://" : "https://", (int)len,
			host) != KR_OK) {
		kr_buf_release(&b);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	cfg->server = kr_buf_detach(&b, NULL);
	return cfg->server ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

enum kr_status kr_kc_fill_cluster(struct kr_kube_config *cfg, const struct kr_kc_ref *r,
				  struct kr_error *err)
{
	const char *server, *name;
	enum kr_status rc;

	rc = kr_kc_ref_string(r, "server", &server, err);
	if (rc == KR_OK && !server)
		rc = kr_kc_ref_error(r, "server", err, "missing");
	if (rc == KR_OK)
		rc = set_server(cfg, r, server, err);
	if (rc == KR_OK)
		rc = ref_path(r, "certificate-authority", &cfg->ca_file, err);
	if (rc == KR_OK)
		rc = ref_pem_data(r, "certificate-authority-data", &cfg->ca_data, NULL, err);
	if (rc == KR_OK)
		rc = ref_bool(r, "insecure-skip-tls-verify", &cfg->insecure_skip_tls_verify, err);
	if (rc == KR_OK)
		rc = kr_kc_ref_string(r, "tls-server-name", &name, err);
	if (rc != KR_OK)
		return rc;
	/* The same combinations kubectl's validation refuses. */
	if (cfg->ca_file && cfg->ca_data.len)
		return kr_kc_ref_error(r, "certificate-authority-data", err,
				       "certificate-authority is also set; use one of them");
	if (cfg->insecure_skip_tls_verify && (cfg->ca_file || cfg->ca_data.len))
		return kr_kc_ref_error(r, "insecure-skip-tls-verify", err,
				       "cannot be combined with a certificate authority");
	if (name) {
		cfg->tls_server_name = strdup(name);
		if (!cfg->tls_server_name)
			return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	return KR_OK;
}

/* token wins over tokenFile (kubeconfig's documented precedence). */
static enum kr_status fill_token(struct kr_kube_config *cfg, const struct kr_kc_ref *r,
				 struct kr_error *err)
{
	struct kr_secret *probe = NULL;
	const char *token;
	enum kr_status rc = kr_kc_ref_string(r, "token", &token, err);

	if (rc != KR_OK)
		return rc;
	if (token) {
		cfg->token = kr_secret_new(token, strlen(token));
		return cfg->token ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	rc = ref_path(r, "tokenFile", &cfg->token_file, err);
	if (rc != KR_OK || !cfg->token_file)
		return rc;
	rc = kr_kube_config_token(cfg, &probe, err);
	kr_secret_free(probe);
	if (rc == KR_EINVAL || rc == KR_ETOOBIG)
		kr_error_prefix(err, "kubeconfig %s: %s[%d].%s.tokenFile: ", r->file->path, r->list,
				r->index, r->kind);
	return rc;
}

static enum kr_status check_user(struct kr_kube_config *cfg, const struct kr_kc_ref *r,
				 struct kr_error *err)
{
	static const char *const unsupported[] = {"exec", "auth-provider", "username"};
	int has_cert = cfg->client_cert_file || cfg->client_cert_data.len;
	int has_key = cfg->client_key_file || cfg->client_key_data;

	if (cfg->client_cert_file && cfg->client_cert_data.len)
		return kr_kc_ref_error(r, "client-certificate-data", err,
				       "client-certificate is also set; use one of them");
	if (cfg->client_key_file && cfg->client_key_data)
		return kr_kc_ref_error(r, "client-key-data", err,
				       "client-key is also set; use one of them");
	if (has_cert && !has_key)
		return kr_kc_ref_error(
		    r, "client-key", err,
		    "missing (client-key or client-key-data is needed with a client "
		    "certificate)");
	if (has_key && !has_cert)
		return kr_kc_ref_error(r, "client-certificate", err,
				       "missing (a client key needs client-certificate or "
				       "client-certificate-data)");
	if (has_cert || cfg->token || cfg->token_file)
		return KR_OK;
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
		if (!kr_kc_is_null(kr_kc_map_get(&r->file->doc, r->body, unsupported[i])))
			return kr_kc_ref_error(r, unsupported[i], err,
					       "not supported; use token, tokenFile or a client "
					       "certificate");
	return KR_OK;
}

enum kr_status kr_kc_fill_user(struct kr_kube_config *cfg, const struct kr_kc_ref *r,
			       struct kr_error *err)
{
	enum kr_status rc;

	rc = ref_path(r, "client-certificate", &cfg->client_cert_file, err);
	if (rc == KR_OK)
		rc = ref_pem_data(r, "client-certificate-data", &cfg->client_cert_data, NULL, err);
	if (rc == KR_OK)
		rc = ref_path(r, "client-key", &cfg->client_key_file, err);
	if (rc == KR_OK)
		rc = ref_pem_data(r, "client-key-data", NULL, &cfg->client_key_data, err);
	if (rc == KR_OK)
		rc = fill_token(cfg, r, err);
	if (rc == KR_OK)
		rc = check_user(cfg, r, err);
	return rc;
}
