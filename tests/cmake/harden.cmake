# Process hardening (issue 18): not dumpable, no core files, key bytes wiped wherever cJSON,
# libcurl or kr_secret_data_set free them, secret pages left out of dumps (test_harden); the
# binary built with PIE, full RELRO, a non-executable stack, stack protector and FORTIFY
# (test_elf_hardening); the running `keyrotator run` has a core limit of 0 and is not
# dumpable (test_process_hardening, against the local API server).
if(TARGET kr_reconciler)
  kr_unit_test(test_harden LIBS kr_reconciler LABELS security)
  # The test sees each block at free() time, before it goes back to the allocator.
  target_link_options(test_harden PRIVATE -Wl,--wrap=free)
endif()
if(TARGET keyrotator)
  set(kr_elf_env "KR_BINARY=$<TARGET_FILE:keyrotator>;KR_BUILD_TYPE=${CMAKE_BUILD_TYPE}")
  add_test(NAME test_elf_hardening
           COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_elf_hardening.ElfHardening
           WORKING_DIRECTORY ${KR_TESTS_DIR}/security)
  set_tests_properties(test_elf_hardening PROPERTIES LABELS "unit;security" TIMEOUT 60
    ENVIRONMENT "${kr_elf_env};KR_SANITIZE=${KR_SANITIZE}")
  add_test(NAME test_process_hardening
           COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_elf_hardening.RunningProcess
           WORKING_DIRECTORY ${KR_TESTS_DIR}/security)
  set_tests_properties(test_process_hardening PROPERTIES LABELS "security;apiserver" TIMEOUT 120
    ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>;KR_PYTHON=${Python3_EXECUTABLE}")
endif()
