# Full rotations by `keyrotator run` against the simulated cluster (tests/sim: the local API
# server, redis-server, the workload simulator): bootstrap, manual, schedule/maxKeyAge with
# --clock-skew-file, emergency, rollback, Valkey flushed mid-rotation, SIGKILL after every
# step, refusals (tests/rotation/test_rotation.py).
add_test(NAME rotation_it
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_rotation
         WORKING_DIRECTORY ${KR_TESTS_DIR}/rotation)
set_tests_properties(rotation_it PROPERTIES LABELS "rotation;apiserver;redis" TIMEOUT 600
  ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
