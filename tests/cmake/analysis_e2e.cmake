# The 401 watch end to end: `keyrotator run` rotating on the simulated cluster (tests/sim)
# while Debian's prometheus on loopback scrapes a test service whose 401 counter the test
# sets (tests/analysis/counter_service.py): gate, rollback, holds, scrape, auth, verify,
# revokeWhenUnusedFor.
if(TARGET keyrotator)
  add_test(NAME test_analysis_e2e
           COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_analysis_e2e
           WORKING_DIRECTORY ${KR_TESTS_DIR}/analysis)
  set_tests_properties(test_analysis_e2e PROPERTIES
    LABELS "analysis;prometheus;apiserver;redis" TIMEOUT 420
    ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
endif()
