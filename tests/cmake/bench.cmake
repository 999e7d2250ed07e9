# The benchmark's smoke (tests/bench): bench.py --quick against the built controller, so the
# benchmark can't rot. It checks that every figure is produced and sane, never the targets.
# Included by tests/CMakeLists.txt, which defines Python3_EXECUTABLE.
add_test(NAME bench_smoke COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_bench
         WORKING_DIRECTORY ${KR_TESTS_DIR}/bench)
set_tests_properties(bench_smoke PROPERTIES LABELS "bench" TIMEOUT 300
  ENVIRONMENT "KR_BINARY=$<TARGET_FILE:keyrotator>")

# The RSS floor the benchmark reports beside "RSS, no objects": keyrotator's shared libraries
# loaded and libcurl initialised, nothing else.
pkg_check_modules(BENCH_SSL REQUIRED IMPORTED_TARGET libssl)
add_executable(bench_rss_floor ${KR_TESTS_DIR}/bench/rss_floor.c)
target_link_libraries(bench_rss_floor PRIVATE PkgConfig::CURL PkgConfig::CJSON PkgConfig::HIREDIS
  PkgConfig::YAML PkgConfig::CRYPTO PkgConfig::MHD PkgConfig::BENCH_SSL)
