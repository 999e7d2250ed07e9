# Alerts and dashboard (issue 23): manifests/monitoring/keyrotator.rules.yaml checked and
# unit-tested with promtool (`promtool check rules`, `promtool test rules`), the chart's
# PrometheusRule compared with it; the Grafana dashboard's queries parsed by promtool and
# checked against the metrics the controller exports (promtool comes with Debian's prometheus).
# yaml2json is defined by yaml.cmake (included after this fragment; TARGET_FILE resolves late).
if(TARGET keyrotator)
  add_test(NAME test_alert_rules
           COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_rules
           WORKING_DIRECTORY ${KR_TESTS_DIR}/monitoring)
  set_tests_properties(test_alert_rules PROPERTIES LABELS "prometheus;packaging;monitoring" TIMEOUT 120
    ENVIRONMENT "KR_ROOT=${CMAKE_SOURCE_DIR};KR_YAML2JSON=$<TARGET_FILE:yaml2json>")
endif()
add_test(NAME test_dashboard
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_dashboard
         WORKING_DIRECTORY ${KR_TESTS_DIR}/monitoring)
set_tests_properties(test_dashboard PROPERTIES LABELS "prometheus;packaging;monitoring" TIMEOUT 60
  ENVIRONMENT "KR_ROOT=${CMAKE_SOURCE_DIR}")
# tests/tools/dashboard_render.py (it draws docs/dashboard.svg) against a canned Prometheus on
# loopback: well-formed SVG, every panel with its title and series, bounded reads.
add_test(NAME test_dashboard_render
         COMMAND ${Python3_EXECUTABLE} -m krtest.run -v test_dashboard_render
         WORKING_DIRECTORY ${KR_TESTS_DIR}/monitoring)
set_tests_properties(test_dashboard_render PROPERTIES LABELS "monitoring" TIMEOUT 60
  ENVIRONMENT "KR_ROOT=${CMAKE_SOURCE_DIR}")
