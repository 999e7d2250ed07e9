# REST half of the Kubernetes client: Status decoding over the real server's goldens
# (unit; status.c compiled in directly so it does not wait on the rest of kr_kube).
kr_unit_test(test_kube_status SOURCES ${KR_CONTROLLER_DIR}/kube/status.c
             LIBS kr_base kr_json PkgConfig::CJSON PkgConfig::CURL)
# Every verb, error code, TLS/auth mode, transport failure, and `keyrotator doctor`,
# against the local API server over HTTP and HTTPS.
if(TARGET kr_kube)
  kr_integration_test(test_kube_client LABELS apiserver LIBS kr_kube)
endif()
# `keyrotator doctor`, run as a process against the local API server (with and without
# the KeyRotation CRD loaded).
if(TARGET kr_kube)
  kr_integration_test(test_doctor LABELS apiserver LIBS kr_base)
  add_dependencies(test_doctor keyrotator)
endif()
