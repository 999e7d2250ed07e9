# The Python suite's shared package (tests/lib/krtest) checked on its own, with a real
# redis-server. Included by tests/CMakeLists.txt, which defines Python3_EXECUTABLE.
add_test(NAME krtest_lib COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_krtest
         WORKING_DIRECTORY ${KR_TESTS_DIR}/lib)
set_tests_properties(krtest_lib PROPERTIES LABELS "unit;redis" TIMEOUT 60)
