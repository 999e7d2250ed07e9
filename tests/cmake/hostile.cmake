# hostile: servers that answer too much, too deep or too slowly (issue 18). Fake HTTP and
# Valkey servers on loopback (tests/hostile/hostile.c, forked, so their memory is not ours)
# drive the library calls directly; each test checks the error, that the call ended by its
# deadline, and that the peak RSS (VmHWM) of the test process grew by less than 16 MiB.
# Labels "hostile" and "unit" (they start no real server); no memcheck twin: they time
# calls and measure RSS, which valgrind would distort.
set(KR_HOSTILE_DIR ${KR_TESTS_DIR}/hostile)

# kr_hostile_test(<name> LIBS <libs...>)
function(kr_hostile_test name)
  cmake_parse_arguments(T "" "" "LIBS" ${ARGN})
  add_executable(${name} ${KR_HOSTILE_DIR}/${name}.c ${KR_HOSTILE_DIR}/hostile.c)
  target_include_directories(${name} PRIVATE ${KR_HOSTILE_DIR})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "hostile;unit" TIMEOUT 300)
endfunction()

if(TARGET kr_analysis)
  kr_hostile_test(test_hostile_http LIBS kr_analysis PkgConfig::CURL)
endif()
if(TARGET kr_keystore)
  kr_hostile_test(test_hostile_valkey LIBS kr_keystore PkgConfig::HIREDIS)
endif()
# The reflector against list pages over the 64 MiB response cap (streams ~200 MiB over
# loopback; the test process peaks near 150 MiB while it holds one page).
if(TARGET kr_kube)
  kr_hostile_test(test_hostile_kube LIBS kr_kube Threads::Threads)
endif()

# The RESP scanner and hiredis's reader on any byte stream (tests/fuzz/fuzz_resp.c): the
# replay test fuzz_replay_resp (label "unit") in every build, fuzz_resp under KR_FUZZ.
if(TARGET kr_keystore AND COMMAND kr_fuzz_target)
  kr_fuzz_target(resp LIBS kr_keystore PkgConfig::HIREDIS)
endif()

# The real controller among hostile servers: `keyrotator run` (--workers 2) with the local API
# server and redis-server, while Python stand-ins on loopback (tests/hostile/hostile_servers.py)
# answer 8 MiB, nest 100 levels, drip forever (two, as many as workers), stream a million
# series, announce a 2 GB bulk or never answer, each reached by a KeyRotation of its own
# (spec.analysis or a KeyStore). A healthy KeyRotation bootstraps and rotates meanwhile within
# 120 s; each attacked one names its server and fault in Degraded; the controller's VmHWM stays
# below 64 MiB (not held in KR_SANITIZE builds), /healthz answers 200 and SIGTERM amid the
# attacks exits 0 within 20 s. About 70 s (a failing run up to ~8 min).
if(TARGET keyrotator)
  add_test(NAME test_hostile_controller
           COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_hostile_controller
           WORKING_DIRECTORY ${KR_HOSTILE_DIR})
  set_tests_properties(test_hostile_controller PROPERTIES
    LABELS "hostile;apiserver;redis;e2e" TIMEOUT 900
    ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>;KR_SANITIZE=${KR_SANITIZE}")
endif()
