/* rss_floor.c - the RSS floor under keyrotator: a program that loads the same shared libraries
 * and initialises libcurl as `keyrotator run` does, then prints its own memory as JSON. The
 * benchmark reports it beside the controller's RSS with no objects: what is left above it is
 * keyrotator's own. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

static long status_kib(const char *field)
{
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			sscanf(line + n + 1, "%ld", &v);
	if (f)
		fclose(f);
	return v;
}

int main(void)
{
	redisReader *r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	/* One call into each library, so each is loaded as in keyrotator. */
	r = redisReaderCreate();
	redisReaderFree(r);
	if (!cJSON_Version() || !yaml_get_version_string() || !MHD_get_version() ||
	    !OpenSSL_version(OPENSSL_VERSION) || !TLS_client_method())
		return 1;
	printf("{\"VmRSS\": %ld, \"RssAnon\": %ld, \"RssFile\": %ld}\n", status_kib("VmRSS"),
	       status_kib("RssAnon"), status_kib("RssFile"));
	curl_global_cleanup();
	return 0;
}
