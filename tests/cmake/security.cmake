# Security review tests (tests/security/): key scanner, source audit (no file writes, no key
# bytes in logs/errors, constant-time compares), RBAC versus what the code calls, key buffer
# wiping, endpoints that leak nothing, TLS verification on by default.

# kr_security_test(<name> LIBS <libs...> [LABELS ...] [INTEGRATION])
# builds tests/security/<name>.c. INTEGRATION: with testlib and the environment of
# kr_integration_test; otherwise a unit test (label unit, and a memcheck twin).
function(kr_security_test name)
  cmake_parse_arguments(T "INTEGRATION" "" "LIBS;LABELS;LINK_OPTIONS" ${ARGN})
  add_executable(${name} ${KR_TESTS_DIR}/security/${name}.c)
  target_include_directories(${name} PRIVATE ${KR_CONTROLLER_DIR})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  target_link_options(${name} PRIVATE ${T_LINK_OPTIONS})
  add_test(NAME ${name} COMMAND ${name})
  if(T_INTEGRATION)
    target_link_libraries(${name} PRIVATE kr_testlib)
    set_tests_properties(${name} PROPERTIES LABELS "security;${T_LABELS}" TIMEOUT 300
      ENVIRONMENT "KR_TESTS_DIR=${KR_TESTS_DIR};KR_PYTHON=${Python3_EXECUTABLE};KR_BINARY=$<TARGET_FILE:keyrotator>")
  else()
    set_tests_properties(${name} PROPERTIES LABELS "unit;security" TIMEOUT 120)
    if(KR_VALGRIND AND NOT KR_SANITIZE)
      add_test(NAME memcheck_${name}
        COMMAND ${KR_VALGRIND} --quiet --error-exitcode=99 --leak-check=full
                --show-leak-kinds=definite,indirect,possible
                --errors-for-leak-kinds=definite,indirect,possible $<TARGET_FILE:${name}>)
      set_tests_properties(memcheck_${name} PROPERTIES LABELS "memcheck;security" TIMEOUT 600)
    endif()
  endif()
endfunction()

# kr_security_py(<name> [ENV ...]): tests/security/<name>.py with unittest.
function(kr_security_py name)
  cmake_parse_arguments(T "" "" "ENV;LABELS" ${ARGN})
  add_test(NAME ${name} COMMAND ${Python3_EXECUTABLE} -m krtest.run -v ${name}
           WORKING_DIRECTORY ${KR_TESTS_DIR}/security)
  set_tests_properties(${name} PROPERTIES LABELS "unit;security;${T_LABELS}" TIMEOUT 120
    ENVIRONMENT "KR_ROOT=${CMAKE_SOURCE_DIR};${T_ENV}")
endfunction()

kr_security_py(test_scan_keys)
kr_security_py(test_source_audit)
if(TARGET keyrotator)
  kr_security_py(test_rbac_needs ENV "KR_YAML2JSON=$<TARGET_FILE:yaml2json>" LABELS packaging)
  kr_security_test(test_security_endpoints INTEGRATION LABELS "apiserver;redis"
                   LIBS kr_base PkgConfig::CURL)
  add_dependencies(test_security_endpoints keyrotator)
endif()
if(TARGET kr_kube AND TARGET kr_analysis)
  kr_security_test(test_security_tls INTEGRATION LABELS apiserver LIBS kr_kube kr_analysis m)
endif()
kr_security_test(test_secret_wipe LIBS kr_base LINK_OPTIONS -Wl,--wrap=free)

# test_attacks: issue 17's attacks by an identity that may write KeyRotations and Deployments
# in its namespace but not read its Secrets, each a KeyRotation against a real `keyrotator run`
# (local API server with every CRD, redis-server shared by two teams, recording fake Valkey and
# HTTP servers on loopback): refusals with condition and Event, and no canary anywhere.
if(TARGET keyrotator)
  add_test(NAME test_attacks COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_attacks
           WORKING_DIRECTORY ${KR_TESTS_DIR}/security)
  set_tests_properties(test_attacks PROPERTIES LABELS "security;apiserver;redis" TIMEOUT 600
    ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")
endif()
