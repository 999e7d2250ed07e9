/* yaml2json.c - test tool: print each YAML document of a file as one JSON line. */
#include <stdio.h>
#include <stdlib.h>

#include "yaml/yaml.h"

int main(int argc, char **argv)
{
	struct kr_error err;
	cJSON *docs, *doc;

	if (argc != 2) {
		fprintf(stderr, "usage: yaml2json FILE\n");
		return 2;
	}
	if (kr_yaml_parse_file(argv[1], &docs, &err) != KR_OK) {
		fprintf(stderr, "yaml2json: %s\n", err.msg);
		return 2;
	}
	cJSON_ArrayForEach(doc, docs) {
		char *text = cJSON_PrintUnformatted(doc);
		if (text)
			puts(text);
		free(text);
	}
	cJSON_Delete(docs);
	return 0;
}
