/* fuzz_yaml.c - YAML to cJSON (manifests, CRDs, kubeconfig-like files). */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "yaml/yaml.h"

/* Success means a JSON array of documents that prints; failure a message. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kr_error err;
	cJSON *docs = NULL;
	enum kr_status rc;
	char *json;

	kr_error_clear(&err);
	rc = kr_yaml_parse((const char *)data, size, "fuzz.yaml", &docs, &err);
	if (rc != KR_OK) {
		KR_FUZZ_ASSERT(docs == NULL && err.msg[0] != '\0');
		return 0;
	}
	KR_FUZZ_ASSERT(cJSON_IsArray(docs));
	json = cJSON_PrintUnformatted(docs);
	free(json);
	cJSON_Delete(docs);
	return 0;
}
