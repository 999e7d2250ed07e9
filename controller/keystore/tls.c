/* tls.c - the key store's TLS settings as an OpenSSL context: verification always on, TLS 1.2+. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keystore/internal.h"

/* The reason of OpenSSL's latest queued error ("certificate verify failed"), or `dflt`. */
const char *kr_ks_tls_reason(const char *dflt)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	return why ? why : dflt;
}

/* Every certificate of the PEM bundle `pem` into the context's trust store. */
static enum kr_status kr_ks_tls_load_ca(SSL_CTX *ctx, const struct kr_secret *pem,
					struct kr_error *err)
{
	BIO *bio = BIO_new_mem_buf(kr_secret_data(pem), (int)kr_secret_len(pem));
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509 *cert;
	int n = 0;

	if (!bio)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		int ok = X509_STORE_add_cert(store, cert);

		X509_free(cert);
		if (!ok &&
		    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_CERT_ALREADY_IN_HASH_TABLE)
			break;
		n++;
	}
	BIO_free(bio);
	ERR_clear_error(); /* the end of the bundle reads as "no start line" */
	if (n == 0)
		return kr_error_set(err, KR_EINVAL, "tls.caSecretRef: no PEM certificate in it");
	return KR_OK;
}

/* The client certificate (with its chain) and key; the key's PEM is only read in place. */
static enum kr_status kr_ks_tls_load_client(SSL_CTX *ctx, const struct kr_keystore_tls *tls,
					    struct kr_error *err)
{
	BIO *bio =
	    BIO_new_mem_buf(kr_secret_data(tls->client_cert), (int)kr_secret_len(tls->client_cert));
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *extra;
	enum kr_status rc = KR_OK;

	if (!bio)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!cert || SSL_CTX_use_certificate(ctx, cert) != 1) {
		rc = kr_error_set(err, KR_EINVAL,
				  "tls.clientCertSecretRef: tls.crt is not a PEM certificate (%s)",
				  kr_ks_tls_reason("no certificate"));
		goto out;
	}
	while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, extra) != 1)
			X509_free(extra);
	BIO_free(bio);
	ERR_clear_error();
	bio = BIO_new_mem_buf(kr_secret_data(tls->client_key), (int)kr_secret_len(tls->client_key));
	if (!bio) {
		rc = kr_error_set(err, KR_ENOMEM, "out of memory");
		goto out;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (!key) {
		rc = kr_error_set(
		    err, KR_EINVAL,
		    "tls.clientCertSecretRef: tls.key is not an unencrypted PEM private "
		    "key (%s)",
		    kr_ks_tls_reason("no key"));
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
		rc = kr_error_set(err, KR_EINVAL,
				  "tls.clientCertSecretRef: tls.key does not match tls.crt");
out:
	EVP_PKEY_free(key); /* the context holds its own reference; freeing clears the key */
	X509_free(cert);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

enum kr_status kr_ks_tls_ctx_new(const struct kr_keystore_tls *tls, SSL_CTX **out,
				 struct kr_error *err)
{
	SSL_CTX *ctx;
	enum kr_status rc = KR_OK;

	*out = NULL;
	if (!tls->client_cert != !tls->client_key)
		return kr_error_set(
		    err, KR_EINVAL,
		    "tls.clientCertSecretRef: needs both a certificate and its key");
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return kr_error_set(err, KR_ENOMEM, "out of memory (TLS context)");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (tls->ca)
		rc = kr_ks_tls_load_ca(ctx, tls->ca, err);
	else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		rc = kr_error_set(err, KR_EIO, "TLS: the system's trust store cannot be read");
	if (rc == KR_OK && tls->client_cert)
		rc = kr_ks_tls_load_client(ctx, tls, err);
	if (rc != KR_OK) {
		SSL_CTX_free(ctx);
		return rc;
	}
	*out = ctx;
	return KR_OK;
}

enum kr_status kr_ks_tls_session(SSL_CTX *ctx, int fd, const char *host, const char *server_name,
				 SSL **out, struct kr_error *err)
{
	const char *name = server_name && *server_name ? server_name : host;
	SSL *ssl = SSL_new(ctx);
	X509_VERIFY_PARAM *param;
	int ok;

	*out = NULL;
	if (!ssl)
		return kr_error_set(err, KR_ENOMEM, "out of memory (TLS)");
	param = SSL_get0_param(ssl);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* An IP literal is checked against the IP SANs; anything else is a DNS name (and SNI). */
	if (X509_VERIFY_PARAM_set1_ip_asc(param, name) == 1) {
		ok = 1;
	} else {
		ok = X509_VERIFY_PARAM_set1_host(param, name, 0) == 1 &&
		     SSL_set_tlsext_host_name(ssl, name) == 1;
	}
	if (!ok || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return kr_error_set(err, KR_EINVAL, "TLS: cannot use server name \"%.200s\"", name);
	}
	SSL_set_connect_state(ssl);
	*out = ssl;
	return KR_OK;
}

/* Why the handshake failed: the verification's verdict when it failed, else OpenSSL's. */
void kr_ks_tls_handshake_error(SSL *ssl, char *out, size_t size)
{
	long v = SSL_get_verify_result(ssl);

	if (v != X509_V_OK)
		snprintf(out, size, "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
	else
		snprintf(out, size, "%s", kr_ks_tls_reason("handshake failed"));
}

/* A fingerprint of the TLS settings: PEMs by their SHA-256 only. */
void kr_ks_tls_fingerprint(const struct kr_keystore_tls *tls, struct kr_buf *b)
{
	const struct kr_secret *parts[] = {tls->ca, tls->client_cert, tls->client_key};

	kr_buf_addf(b, "|tls=%d|%s", tls->enabled, tls->server_name ? tls->server_name : "");
	for (size_t i = 0; i < 3; i++) {
		char h[65] = "-";

		if (parts[i])
			kr_key_hash_hex_bytes(kr_secret_data(parts[i]), kr_secret_len(parts[i]), h);
		kr_buf_addf(b, "|%s", h);
	}
}
