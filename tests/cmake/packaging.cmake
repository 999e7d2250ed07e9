# Install artefacts: manifests/, charts/keyrotator and the Dockerfile, checked with the
# project's YAML parser (yaml2json), `keyrotator run --help`, ldd and dpkg -S. The Helm
# check lints and renders the chart where a helm binary exists, and is skipped otherwise.
# yaml2json is defined by yaml.cmake (included after this fragment; TARGET_FILE resolves late).
if(TARGET keyrotator)
  add_test(NAME test_packaging
           COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_packaging
           WORKING_DIRECTORY ${KR_TESTS_DIR}/packaging)
  set_tests_properties(test_packaging PROPERTIES LABELS "unit;packaging" TIMEOUT 600
    ENVIRONMENT "KR_ROOT=${CMAKE_SOURCE_DIR};KR_YAML2JSON=$<TARGET_FILE:yaml2json>;KR_BINARY=$<TARGET_FILE:keyrotator>")
  add_test(NAME test_helm_chart
           COMMAND bash ${KR_TESTS_DIR}/packaging/helm-check.sh)
  set_tests_properties(test_helm_chart PROPERTIES LABELS "packaging" TIMEOUT 120
    SKIP_RETURN_CODE 77
    ENVIRONMENT "KR_YAML2JSON=$<TARGET_FILE:yaml2json>")
endif()
