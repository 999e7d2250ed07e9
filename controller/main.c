/* main.c - the keyrotator binary: process-wide set-up, then the cli module does the rest. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/harden.h"
#include "cli/cli.h"

int main(int argc, char **argv)
{
	struct kr_error err = {0};
	int code;

	/* Before anything reads a key: no core dumps, and cJSON wipes what it frees. */
	if (kr_process_harden(&err) != KR_OK) {
		fprintf(stderr, "keyrotator: cannot harden the process: %s\n", err.msg);
		return KR_EXIT_FAIL;
	}
	/*
	 * libcurl's global state must exist before any thread starts. Its allocations go
	 * through the wiping free and realloc: request buffers carry the API token and the
	 * spec.verify key header, receive buffers the Secrets the API server sends.
	 */
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, kr_harden_free, kr_harden_realloc,
				 strdup, calloc) != CURLE_OK) {
		fprintf(stderr, "keyrotator: cannot initialise libcurl\n");
		return KR_EXIT_FAIL;
	}
	code = kr_cli_main(argc, argv);
	curl_global_cleanup();
	return code;
}
