# The CRDs (every file in crds/) served by the local API server: examples accepted, invalid
# objects refused, every field described.
add_test(NAME test_crd COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_crd
         WORKING_DIRECTORY ${KR_TESTS_DIR}/crd)
set_tests_properties(test_crd PROPERTIES LABELS "apiserver" TIMEOUT 120
  ENVIRONMENT "KR_YAML2JSON=$<TARGET_FILE:yaml2json>")
