# Leader election (controller/runtime/leader.c): options, the acquire decision on a fake
# clock, prompt stop (unit; leader.c compiled in so it does not wait on the rest of
# kr_runtime).
if(TARGET kr_kube)
  kr_unit_test(test_leader SOURCES ${KR_CONTROLLER_DIR}/runtime/leader.c
               LIBS kr_kube kr_base PkgConfig::CJSON Threads::Threads)
  # Two real candidate processes (tests/integration/leader_candidate.c, driven by
  # test_leader_election.c) against the local API server: one leader at a time, takeover
  # after SIGKILL/SIGTERM, a partitioned leader stops writing.
  add_executable(leader_candidate ${KR_TESTS_DIR}/integration/leader_candidate.c
                 ${KR_CONTROLLER_DIR}/runtime/leader.c)
  target_link_libraries(leader_candidate PRIVATE kr_kube kr_base PkgConfig::CJSON
                        Threads::Threads)
  if(EXISTS ${KR_TESTS_DIR}/integration/test_leader_election.c)
    kr_integration_test(test_leader_election LABELS apiserver LIBS kr_base)
    add_dependencies(test_leader_election leader_candidate)
    set_property(TEST test_leader_election APPEND PROPERTY ENVIRONMENT
                 "KR_LEADER_CANDIDATE=$<TARGET_FILE:leader_candidate>")
  endif()
endif()
