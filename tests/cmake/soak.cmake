# The soak with invariants (tests/soak, issue #10). The real soak runs for minutes and is not in
# the suite (`python3 tests/soak/soak.py --minutes 10`); soak_smoke is one minute of the same
# chaos and the same invariant checks, so the soak cannot rot. Included by tests/CMakeLists.txt,
# which defines Python3_EXECUTABLE.
add_test(NAME soak_smoke
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/soak/soak.py --minutes 1 --quick
                 --report ${CMAKE_CURRENT_BINARY_DIR}/soak-smoke-report.json)
set_tests_properties(soak_smoke PROPERTIES LABELS "soak;redis;apiserver" TIMEOUT 300
  ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
