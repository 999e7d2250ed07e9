# keystore: key format unit tests; store and CLI integration tests against redis-server.
if(TARGET kr_keystore)
  kr_unit_test(test_keystore_key LIBS kr_keystore)
  kr_integration_test(test_keystore LABELS redis
    LIBS kr_keystore PkgConfig::HIREDIS Threads::Threads)
  kr_integration_test(test_keystore_probe LABELS redis
    LIBS kr_keystore PkgConfig::HIREDIS Threads::Threads)
endif()
# `keyrotator keys ...` as a user runs it: stdout/stderr/exit codes, both layouts, AUTH/ACL,
# and no raw key in any output but create's one stdout line.
if(TARGET kr_keystore)
  add_test(NAME test_cli_keys
           COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_cli_keys
           WORKING_DIRECTORY ${KR_TESTS_DIR}/cli)
  set_tests_properties(test_cli_keys PROPERTIES LABELS "redis" TIMEOUT 300
    ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
endif()
