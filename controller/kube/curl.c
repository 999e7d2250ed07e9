/* curl.c - apply a kube config (TLS, client certificate, bearer token) to a curl handle. */
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <string.h>

#include "kube/internal.h"
#include "version.h"

#define KR_KUBE_SET(curl, opt, val)                                                                \
	do {                                                                                       \
		if (curl_easy_setopt((curl), (opt), (val)) != CURLE_OK)                            \
			goto setopt_failed;                                                        \
	} while (0)

/*
 * tls-server-name: libcurl has no option for "verify the certificate against this
 * name". With the OpenSSL backend, the verify parameters of each new SSL_CTX take the
 * name, and OpenSSL checks it during the handshake (curl's own host check, which would
 * use the URL's host, is off). SNI still carries the URL's host.
 */
static CURLcode kr_kube_ssl_ctx_name(CURL *curl, void *ssl_ctx, void *arg)
{
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ssl_ctx);
	const char *name = arg;

	(void)curl;
	if (!param || X509_VERIFY_PARAM_set1_host(param, name, 0) != 1)
		return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

static enum kr_status kr_kube_curl_tls(CURL *curl, struct kr_kube_config *cfg, struct kr_error *err)
{
	struct curl_blob blob;

	if (cfg->insecure_skip_tls_verify) {
		KR_KUBE_SET(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		KR_KUBE_SET(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (cfg->tls_server_name && cfg->tls_server_name[0]) {
		KR_KUBE_SET(curl, CURLOPT_SSL_VERIFYHOST, 0L);
		KR_KUBE_SET(curl, CURLOPT_SSL_CTX_FUNCTION, kr_kube_ssl_ctx_name);
		KR_KUBE_SET(curl, CURLOPT_SSL_CTX_DATA, cfg->tls_server_name);
	}
	if (cfg->ca_file) {
		KR_KUBE_SET(curl, CURLOPT_CAINFO, cfg->ca_file);
	} else if (cfg->ca_data.len) {
		/* The config outlives the client (kube.h), so curl may point at its bytes. */
		blob = (struct curl_blob){cfg->ca_data.data, cfg->ca_data.len, CURL_BLOB_NOCOPY};
		KR_KUBE_SET(curl, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (cfg->client_cert_file) {
		KR_KUBE_SET(curl, CURLOPT_SSLCERT, cfg->client_cert_file);
		KR_KUBE_SET(curl, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (cfg->client_cert_data.len) {
		blob = (struct curl_blob){cfg->client_cert_data.data, cfg->client_cert_data.len,
					  CURL_BLOB_NOCOPY};
		KR_KUBE_SET(curl, CURLOPT_SSLCERT_BLOB, &blob);
		KR_KUBE_SET(curl, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (cfg->client_key_file) {
		KR_KUBE_SET(curl, CURLOPT_SSLKEY, cfg->client_key_file);
		KR_KUBE_SET(curl, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (cfg->client_key_data) {
		/* NOCOPY: the key stays in the config's wiped-on-free buffer only. */
		blob = (struct curl_blob){kr_secret_mut(cfg->client_key_data),
					  kr_secret_len(cfg->client_key_data), CURL_BLOB_NOCOPY};
		KR_KUBE_SET(curl, CURLOPT_SSLKEY_BLOB, &blob);
		KR_KUBE_SET(curl, CURLOPT_SSLKEYTYPE, "PEM");
	}
	return KR_OK;
setopt_failed:
	return kr_error_set(
	    err, KR_EINVAL, "server %s: this libcurl cannot apply the TLS settings of %s",
	    cfg->server ? cfg->server : "?", cfg->source ? cfg->source : "the config");
}

static struct curl_slist *kr_kube_slist_add(struct curl_slist *list, const char *line, int *ok)
{
	struct curl_slist *next = curl_slist_append(list, line);

	if (!next) {
		*ok = 0;
		return list;
	}
	return next;
}

/* Append "Authorization: Bearer <token>" when the config has a token; wipes its copy. */
static enum kr_status kr_kube_curl_auth(struct kr_kube_config *cfg, struct curl_slist **headers,
					struct kr_error *err)
{
	static const char prefix[] = "Authorization: Bearer ";
	struct kr_secret *token = NULL, *line = NULL;
	struct curl_slist *next;
	enum kr_status rc;

	rc = kr_kube_config_token(cfg, &token, err);
	if (rc != KR_OK || !token)
		return rc;
	line = kr_secret_alloc(sizeof(prefix) - 1 + kr_secret_len(token));
	if (!line) {
		kr_secret_free(token);
		return kr_error_set(err, KR_ENOMEM, "out of memory building request headers");
	}
	memcpy(kr_secret_mut(line), prefix, sizeof(prefix) - 1);
	memcpy(kr_secret_mut(line) + sizeof(prefix) - 1, kr_secret_data(token),
	       kr_secret_len(token));
	next = curl_slist_append(*headers, kr_secret_data(line));
	kr_secret_free(line);
	kr_secret_free(token);
	if (!next)
		return kr_error_set(err, KR_ENOMEM, "out of memory building request headers");
	*headers = next;
	return KR_OK;
}

enum kr_status kr_kube_curl_configure(CURL *curl, struct kr_kube_config *cfg,
				      struct curl_slist **headers, struct kr_error *err)
{
	struct curl_slist *list = NULL;
	enum kr_status rc;
	int ok = 1;

	*headers = NULL;
	rc = kr_kube_curl_tls(curl, cfg, err);
	if (rc != KR_OK)
		return rc;
	list = kr_kube_slist_add(list, "Accept: application/json", &ok);
	list = kr_kube_slist_add(list, "User-Agent: keyrotator/" KR_VERSION, &ok);
	if (!ok) {
		curl_slist_free_all(list);
		return kr_error_set(err, KR_ENOMEM, "out of memory building request headers");
	}
	rc = kr_kube_curl_auth(cfg, &list, err);
	if (rc != KR_OK) {
		kr_kube_curl_headers_free(list);
		return rc;
	}
	*headers = list;
	return KR_OK;
}

void kr_kube_curl_headers_free(struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h; h = h->next)
		if (h->data)
			explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}

static int kr_kube_curl_is_tls(CURLcode code)
{
	switch (code) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return 1;
	default:
		return 0;
	}
}

enum kr_status kr_kube_curl_error(CURLcode code, const char *server, const char *errbuf,
				  struct kr_error *err)
{
	const char *detail = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(code);

	if (!server)
		server = "the API server";
	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		return kr_error_set(err, KR_ETIMEOUT, "request to %s timed out: %s", server,
				    detail);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return kr_error_set(err, KR_EIO, "cannot connect to %s: %s", server, detail);
	case CURLE_OUT_OF_MEMORY:
		return kr_error_set(err, KR_ENOMEM, "request to %s: out of memory", server);
	default:
		break;
	}
	if (kr_kube_curl_is_tls(code))
		return kr_error_set(err, KR_EIO, "TLS with %s failed (%s): %s", server,
				    curl_easy_strerror(code), detail);
	return kr_error_set(err, KR_EIO, "request to %s failed (%s): %s", server,
			    curl_easy_strerror(code), detail);
}
