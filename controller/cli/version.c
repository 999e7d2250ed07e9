/* version.c - `keyrotator version`: the version and the libraries it was built with. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <yaml.h>

#include "cli/cli.h"
#include "version.h"

/* No flags: the table still refuses unknown ones the way every verb does. */
static const struct kr_flag kr_version_flags[] = {{0}};

int kr_cli_version(int argc, char **argv)
{
	int rc, nargs = 0;

	if (kr_cli_wants_help(argc, argv)) {
		printf("Usage: keyrotator version\n\nPrint the version of keyrotator and of the "
		       "libraries it runs on.\n");
		return KR_EXIT_OK;
	}
	rc = kr_cli_flags("version", kr_version_flags, 0, NULL, argc, argv, &nargs);
	if (rc != KR_EXIT_OK)
		return rc;
	if (nargs > 0)
		return kr_cli_usage_error("version", "unexpected argument '%s'", argv[1]);
	printf("keyrotator %s\n", KR_VERSION);
	printf("libcurl %s, cJSON %s, hiredis %d.%d.%d, libyaml %s\n",
	       curl_version_info(CURLVERSION_NOW)->version, cJSON_Version(), HIREDIS_MAJOR,
	       HIREDIS_MINOR, HIREDIS_PATCH, yaml_get_version_string());
	return KR_EXIT_OK;
}
