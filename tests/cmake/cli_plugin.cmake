# `keyrotator plan -f FILE` (no cluster) and the kubectl plugin (`kubectl-keyrotation`, the
# same binary by argv[0]) against the local API server serving the KeyRotation CRD.
add_test(NAME test_plan_cli
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_plan_cli
         WORKING_DIRECTORY ${KR_TESTS_DIR}/cli)
set_tests_properties(test_plan_cli PROPERTIES LABELS "unit" TIMEOUT 120
  ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")

# yaml2json is defined by yaml.cmake (included after this fragment; TARGET_FILE resolves late).
add_test(NAME test_plugin
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_plugin
         WORKING_DIRECTORY ${KR_TESTS_DIR}/cli)
set_tests_properties(test_plugin PROPERTIES LABELS "apiserver" TIMEOUT 300
  ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>;KR_YAML2JSON=$<TARGET_FILE:yaml2json>")
