# Fault injection (issue #10): a full manual rotation by `keyrotator run` through each fault of
# the local API server (5xx on writes, a 409 storm, dropped/stalled watches, 410 after a
# compaction, slow responses) and of Valkey (killed and restarted with and without its data,
# FLUSHALL, a WRONGTYPE activeSet, a changed password, DEBUG SLEEP past --keystore-timeout):
# completed or rolled back cleanly, a condition saying what happened, no raw key anywhere
# (tests/faults/test_faults.py). About two minutes on 2 cores.
add_test(NAME faults
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_faults
         WORKING_DIRECTORY ${KR_TESTS_DIR}/faults)
set_tests_properties(faults PROPERTIES LABELS "faults;apiserver;redis" TIMEOUT 600
  ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
