# keystore: key format unit tests; store and CLI integration tests against redis-server.
if(TARGET kr_keystore)
  kr_unit_test(test_keystore_key LIBS kr_keystore)
  kr_integration_test(test_keystore LABELS redis
    LIBS kr_keystore PkgConfig::HIREDIS Threads::Threads)
  kr_integration_test(test_keystore_probe LABELS redis
    LIBS kr_keystore PkgConfig::HIREDIS Threads::Threads)
  # TLS (issue 22): a TLS-only redis-server, certificates made with the openssl CLI.
  kr_integration_test(test_keystore_tls LABELS "redis;tls"
    LIBS kr_keystore PkgConfig::HIREDIS Threads::Threads)
  # Sentinel (issue 22): redis-sentinel, a master and a replica; the master is killed.
  kr_integration_test(test_keystore_sentinel LABELS "redis;sentinel"
    LIBS kr_keystore PkgConfig::HIREDIS Threads::Threads)
  # The same under valgrind, as the unit tests' memcheck_ twins (OpenSSL and the new
  # transport allocate on every path).
  if(KR_VALGRIND AND NOT KR_SANITIZE)
    foreach(t test_keystore_tls test_keystore_sentinel)
      add_test(NAME memcheck_${t}
        COMMAND ${KR_VALGRIND} --quiet --error-exitcode=99 --leak-check=full
                --show-leak-kinds=definite,indirect,possible
                --errors-for-leak-kinds=definite,indirect,possible $<TARGET_FILE:${t}>)
      set_tests_properties(memcheck_${t} PROPERTIES LABELS "memcheck;redis" TIMEOUT 900
        ENVIRONMENT "KR_TESTS_DIR=${KR_TESTS_DIR};KR_MEMCHECK=1")
    endforeach()
  endif()
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
