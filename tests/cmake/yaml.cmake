kr_unit_test(test_yaml LIBS kr_yaml)
# yaml2json: lets Python test infrastructure read our YAML manifests (CRDs, examples)
# through the same parser the product uses.
add_executable(yaml2json ${KR_TESTS_DIR}/tools/yaml2json.c)
target_link_libraries(yaml2json PRIVATE kr_yaml)
