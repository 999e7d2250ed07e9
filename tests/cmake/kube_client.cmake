# REST half of the Kubernetes client: Status decoding over the real server's goldens
# (unit; status.c compiled in directly so it does not wait on the rest of kr_kube).
kr_unit_test(test_kube_status SOURCES ${KR_CONTROLLER_DIR}/kube/status.c
             LIBS kr_base PkgConfig::CJSON PkgConfig::CURL)
