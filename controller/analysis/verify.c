/* verify.c - spec.verify: one request with a key in a header, and the HTTP status it got. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "analysis/analysis.h"
#include "egress/egress.h"

static size_t vf_discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb;
}

/* "Header: key" in wiped memory; curl copies it into the list, wiped again on release. */
static struct curl_slist *vf_header(const char *header, const struct kr_secret *key)
{
	size_t hlen = strlen(header), klen = kr_secret_len(key);
	struct kr_secret *line = kr_secret_alloc(hlen + 2 + klen + 1);
	struct curl_slist *list = NULL;

	if (!line)
		return NULL;
	memcpy(kr_secret_mut(line), header, hlen);
	memcpy(kr_secret_mut(line) + hlen, ": ", 2);
	memcpy(kr_secret_mut(line) + hlen + 2, kr_secret_data(key), klen);
	list = curl_slist_append(NULL, kr_secret_data(line));
	kr_secret_free(line);
	return list;
}

static void vf_release(CURL *curl, struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h; h = h->next)
		if (h->data)
			explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
}

enum kr_status kr_analysis_verify_key(const char *url, const char *header,
				      const struct kr_secret *key,
				      const struct kr_analysis_http_opts *opts, long *http_status,
				      struct kr_error *err)
{
	long timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
	struct curl_slist *headers = vf_header(header, key);
	CURL *curl = curl_easy_init();
	char redacted[256], errbuf[CURL_ERROR_SIZE] = "";
	CURLcode code = CURLE_OUT_OF_MEMORY;
	struct kr_egress_guard guard = {0};
	enum kr_status rc;

	*http_status = 0;
	kr_analysis_redact_url(url, redacted, sizeof(redacted));
	/* Before anything else: the key must not leave for a URL that is not allowed. */
	rc = curl ? kr_egress_curl(opts ? opts->egress : NULL, curl, url, &guard, err) : KR_OK;
	if (rc != KR_OK) {
		vf_release(curl, headers);
		kr_error_prefix(err, "verify %s: ", redacted);
		return rc;
	}
	if (curl && headers) {
		struct curl_blob blob;

		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout);
		curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, vf_discard);
		if (opts && opts->ca_pem && opts->ca_pem_len) {
			blob = (struct curl_blob){(void *)opts->ca_pem, opts->ca_pem_len,
						  CURL_BLOB_COPY};
			curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
		}
		code = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, http_status);
	}
	vf_release(curl, headers);
	if (code == CURLE_OK)
		return KR_OK;
	if (guard.refused)
		rc = kr_error_set(err, KR_EAUTH, "verify %s: %s", redacted, guard.why.msg);
	else if (code == CURLE_OPERATION_TIMEDOUT)
		rc = kr_error_set(err, KR_ETIMEOUT, "verify %s: timed out after %gs", redacted,
				  (double)timeout / 1000.0);
	else
		rc = kr_error_set(err, KR_EIO, "verify %s: %s", redacted,
				  errbuf[0] ? errbuf : curl_easy_strerror(code));
	if (err)
		kr_text_sanitize(err->msg);
	return rc;
}
