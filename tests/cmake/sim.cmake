# The simulated cluster (tests/sim): local API server, redis-server, prometheus, the kubelet
# and workload-controller stand-ins and the api/ui/engine pods. Included by tests/CMakeLists.txt, which defines
# Python3_EXECUTABLE.
add_test(NAME sim_cluster
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_sim
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/sim)
set_tests_properties(sim_cluster PROPERTIES LABELS "e2e" TIMEOUT 300)
