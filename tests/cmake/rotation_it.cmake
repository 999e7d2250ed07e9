# Full rotations by `keyrotator run` against the simulated cluster (tests/sim: the local API
# server, redis-server, the workload simulator): bootstrap, manual, schedule/maxKeyAge with
# --clock-skew-file, emergency, rollback, Valkey flushed mid-rotation, SIGKILL after every
# step, refusals (tests/rotation/test_rotation.py).
add_test(NAME rotation_it
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_rotation
         WORKING_DIRECTORY ${KR_TESTS_DIR}/rotation)
set_tests_properties(rotation_it PROPERTIES LABELS "rotation;apiserver;redis" TIMEOUT 600
  ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
# The key store over TLS only (issue 22): bootstrap, rotation, refusals (wrong CA, wrong
# server name, missing client certificate) and `keyrotator keys --tls-*`.
add_test(NAME rotation_tls
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_keystore_tls
         WORKING_DIRECTORY ${KR_TESTS_DIR}/rotation)
set_tests_properties(rotation_tls PROPERTIES LABELS "rotation;apiserver;redis;tls" TIMEOUT 300
  ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
# Sentinel (issue 22): a master, a replica and redis-sentinel; the master SIGKILLed during a
# rotation; the controller follows the promoted replica; no consumer gets a 401.
add_test(NAME rotation_sentinel
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_keystore_sentinel
         WORKING_DIRECTORY ${KR_TESTS_DIR}/rotation)
set_tests_properties(rotation_sentinel PROPERTIES LABELS "rotation;apiserver;redis;sentinel"
  TIMEOUT 300 ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
