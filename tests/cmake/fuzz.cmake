# fuzz: libFuzzer targets for every parser of outside input (tests/fuzz/README.md).
#  - Every build: replay_<name> runs the target's seed corpus and its crash reproducers
#    (tests/fuzz/regressions/<name>/) through the same LLVMFuzzerTestOneInput, without
#    libFuzzer (test fuzz_replay_<name>, label "unit"; under valgrind too, "memcheck").
#  - CC=clang -DKR_FUZZ=ON (its own build dir, e.g. build-fuzz/): the libFuzzer binaries
#    fuzz_<name>, and a smoke run of each (test fuzz_<name>, label "fuzz"). New inputs go
#    to <build>/fuzz/corpus/<name>/, crashes to <build>/fuzz/artifacts/<name>/.
#    CI runs these through tests/fuzz/smoke.sh (KR_FUZZ_SECONDS each, two at once).
set(KR_FUZZ_DIR ${KR_TESTS_DIR}/fuzz)
set(KR_FUZZ_SMOKE_SECONDS 6 CACHE STRING "seconds each fuzz target runs in the ctest smoke")

# kr_fuzz_target(<name> LIBS <libs...> [SOURCES extra.c...])
function(kr_fuzz_target name)
  cmake_parse_arguments(T "" "" "LIBS;SOURCES" ${ARGN})
  set(src ${KR_FUZZ_DIR}/fuzz_${name}.c ${T_SOURCES})
  set(corpus ${KR_FUZZ_DIR}/corpus/${name})
  set(regress ${KR_FUZZ_DIR}/regressions/${name}/) # replay: trailing '/' = may not exist

  add_executable(replay_${name} ${src} ${KR_FUZZ_DIR}/replay.c)
  target_include_directories(replay_${name} PRIVATE ${KR_FUZZ_DIR})
  target_link_libraries(replay_${name} PRIVATE ${T_LIBS})
  add_test(NAME fuzz_replay_${name} COMMAND replay_${name} ${corpus} ${regress})
  set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS "unit" TIMEOUT 120)
  if(KR_VALGRIND AND NOT KR_SANITIZE AND NOT KR_FUZZ)
    add_test(NAME memcheck_fuzz_replay_${name}
      COMMAND ${KR_VALGRIND} --quiet --error-exitcode=99 --leak-check=full
              --show-leak-kinds=definite,indirect,possible
              --errors-for-leak-kinds=definite,indirect,possible
              $<TARGET_FILE:replay_${name}> ${corpus} ${regress})
    set_tests_properties(memcheck_fuzz_replay_${name} PROPERTIES LABELS "memcheck" TIMEOUT 600)
  endif()

  if(KR_FUZZ)
    add_executable(fuzz_${name} ${src})
    target_include_directories(fuzz_${name} PRIVATE ${KR_FUZZ_DIR})
    target_link_libraries(fuzz_${name} PRIVATE ${T_LIBS})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    set(out ${CMAKE_BINARY_DIR}/fuzz)
    file(MAKE_DIRECTORY ${out}/corpus/${name} ${out}/artifacts/${name})
    set(dict)
    if(EXISTS ${KR_FUZZ_DIR}/dict/${name}.dict)
      set(dict -dict=${KR_FUZZ_DIR}/dict/${name}.dict)
    endif()
    # The first corpus dir is written to (the build's), the repo's seeds only read.
    add_test(NAME fuzz_${name}
      COMMAND fuzz_${name} -max_total_time=${KR_FUZZ_SMOKE_SECONDS} -timeout=10
              -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 ${dict}
              -artifact_prefix=${out}/artifacts/${name}/
              ${out}/corpus/${name} ${corpus} ${KR_FUZZ_DIR}/regressions/${name})
    set_tests_properties(fuzz_${name} PROPERTIES LABELS "fuzz"
      TIMEOUT 300 ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1;UBSAN_OPTIONS=print_stacktrace=1")
  endif()
endfunction()

# The watch stream splitter and event decoder, Status decoding (sources compiled in, so
# these do not wait on the rest of kr_kube), and kubeconfig files.
kr_fuzz_target(kube_stream SOURCES ${KR_CONTROLLER_DIR}/kube/stream.c
               ${KR_CONTROLLER_DIR}/kube/status.c LIBS kr_base kr_json PkgConfig::CJSON PkgConfig::CURL)
kr_fuzz_target(kube_event SOURCES ${KR_CONTROLLER_DIR}/kube/stream.c
               ${KR_CONTROLLER_DIR}/kube/status.c LIBS kr_base kr_json PkgConfig::CJSON PkgConfig::CURL)
kr_fuzz_target(kube_status SOURCES ${KR_CONTROLLER_DIR}/kube/status.c
               LIBS kr_base kr_json PkgConfig::CJSON PkgConfig::CURL)
if(TARGET kr_kube)
  kr_fuzz_target(kubeconfig LIBS kr_kube)
endif()
kr_fuzz_target(yaml LIBS kr_yaml)
# cron, durations, RFC3339 (rotation/schedule.h; pure files, compiled in).
set(KR_FUZZ_SCHEDULE ${KR_CONTROLLER_DIR}/rotation/cron.c ${KR_CONTROLLER_DIR}/rotation/duration.c
    ${KR_CONTROLLER_DIR}/rotation/timefmt.c)
kr_fuzz_target(cron SOURCES ${KR_FUZZ_SCHEDULE} LIBS kr_base)
kr_fuzz_target(duration SOURCES ${KR_FUZZ_SCHEDULE} LIBS kr_base)
kr_fuzz_target(rfc3339 SOURCES ${KR_FUZZ_SCHEDULE} LIBS kr_base)
if(TARGET kr_keystore)
  kr_fuzz_target(key LIBS kr_keystore)
endif()
if(TARGET kr_analysis)
  kr_fuzz_target(promtext LIBS kr_analysis m)
  kr_fuzz_target(promjson LIBS kr_analysis m)
endif()
if(TARGET kr_rotation AND EXISTS ${KR_CONTROLLER_DIR}/rotation/rotation.h)
  kr_fuzz_target(rotation_spec LIBS kr_rotation)
endif()
if(TARGET kr_rotation AND EXISTS ${KR_CONTROLLER_DIR}/rotation/status_json.h)
  kr_fuzz_target(rotation_status LIBS kr_rotation)
endif()
