/* fuzz_kubeconfig.c - a kubeconfig file, loaded as `keyrotator --kubeconfig FILE` loads it. */
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "kube/kube.h"

/*
 * kr_kube_config_load reads a path, so each input is written to one file in a private
 * temporary directory (removed at exit). Paths inside the kubeconfig are only stored,
 * never opened, by the load. The context is the default one, or "c" when the input's
 * length is odd (so both the current-context and the --context paths are fuzzed).
 * Success means a server URL; failure a message.
 */

static char dir[64], path[96];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static int setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%.40s/kr-fuzz-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/config", dir);
	atexit(cleanup);
	return 0;
}

static int write_input(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, size, f) == size;
	return fclose(f) == 0 && ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct kr_kube_config cfg;
	struct kr_error err;
	enum kr_status rc;

	if (!ready) {
		if (setup() != 0)
			abort();
		ready = 1;
	}
	if (write_input(data, size) != 0)
		abort();
	kr_kube_config_init(&cfg);
	kr_error_clear(&err);
	rc = kr_kube_config_load(&cfg, path, size % 2 ? "c" : NULL, &err);
	if (rc == KR_OK)
		KR_FUZZ_ASSERT(cfg.server && cfg.server[0] && cfg.namespace_ && cfg.source);
	else
		KR_FUZZ_ASSERT(err.msg[0] != '\0');
	kr_kube_config_release(&cfg);
	return 0;
}
