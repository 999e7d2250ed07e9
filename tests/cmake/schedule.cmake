# schedule: cron, durations, RFC3339 (rotation/schedule.h) and the `keyrotator schedule` verb.
kr_unit_test(test_cron LIBS kr_rotation)
kr_unit_test(test_duration LIBS kr_rotation)
kr_unit_test(test_timefmt LIBS kr_rotation)

add_test(NAME test_schedule_cli
  COMMAND ${Python3_EXECUTABLE} ${KR_TESTS_DIR}/cli/test_schedule_cli.py $<TARGET_FILE:keyrotator>)
set_tests_properties(test_schedule_cli PROPERTIES LABELS "unit" TIMEOUT 60)
