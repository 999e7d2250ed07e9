# reconciler: the unit-testable parts of the I/O layer (Secret data, the clock). The rotations
# themselves are tested end to end in tests/rotation/ against the local API server and redis.
if(TARGET kr_reconciler)
  kr_unit_test(test_reconciler_secrets LIBS kr_reconciler)
  kr_unit_test(test_reconciler_sources LIBS kr_reconciler kr_testlib)
endif()
