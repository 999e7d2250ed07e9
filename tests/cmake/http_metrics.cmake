# Metrics registry (unit) and the HTTP endpoints /healthz /readyz /metrics (label "http").
# The sources are compiled in directly: kr_runtime also links kr_kube, which these
# tests do not need.
kr_unit_test(test_metrics LIBS kr_base m SOURCES ${KR_CONTROLLER_DIR}/runtime/metrics.c
  ${KR_CONTROLLER_DIR}/reconciler/metrics.c)
kr_integration_test(test_http LABELS http
  LIBS kr_base PkgConfig::MHD PkgConfig::CURL m
  SOURCES ${KR_CONTROLLER_DIR}/runtime/metrics.c ${KR_CONTROLLER_DIR}/runtime/http.c
  ${KR_CONTROLLER_DIR}/reconciler/metrics.c)
