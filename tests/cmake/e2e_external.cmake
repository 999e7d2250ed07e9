# The end-to-end suite's real-cluster mode (KEYROTATOR_E2E_KUBECONFIG, issue #7), tested against
# tests/kubeapi run as a standalone external API server (HTTPS, client-certificate auth): the
# suite's namespaces cleaned up, the CRD removed only if the suite installed it, a pre-existing
# namespace untouched. Included by tests/CMakeLists.txt, which defines Python3_EXECUTABLE.
add_test(NAME e2e_external_cluster
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_e2e_external
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/e2e)
set_tests_properties(e2e_external_cluster PROPERTIES LABELS "e2e;redis;apiserver;prometheus"
  TIMEOUT 420 ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
