# keystore: key format unit tests; store and CLI integration tests against redis-server.
if(TARGET kr_keystore)
  kr_unit_test(test_keystore_key LIBS kr_keystore)
  kr_integration_test(test_keystore LABELS redis
    LIBS kr_keystore PkgConfig::HIREDIS Threads::Threads)
endif()
