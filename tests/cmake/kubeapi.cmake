# The local Kubernetes API server's conformance suite (tests/kubeapi).
# Included by tests/CMakeLists.txt, which defines Python3_EXECUTABLE.
add_test(NAME kubeapi_conformance
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_conformance
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/kubeapi)
set_tests_properties(kubeapi_conformance PROPERTIES LABELS "apiserver" TIMEOUT 300)

# --latency-ms and --max-inflight (a real server's cost): timed, with loose upper bounds.
add_test(NAME kubeapi_cost
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_cost
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/kubeapi)
set_tests_properties(kubeapi_cost PROPERTIES LABELS "apiserver" TIMEOUT 120)
