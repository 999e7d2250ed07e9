/* main.c - the keyrotator binary: process-wide set-up, then the cli module does the rest. */
#include <curl/curl.h>
#include <stdio.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
	int code;

	/* libcurl's global state must exist before any thread starts. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "keyrotator: cannot initialise libcurl\n");
		return KR_EXIT_FAIL;
	}
	code = kr_cli_main(argc, argv);
	curl_global_cleanup();
	return code;
}
