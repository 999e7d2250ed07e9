# Watch half of the Kubernetes client: stream splitter (unit) and reflector (apiserver).
# The stream test compiles stream.c directly so it does not depend on the rest of kr_kube.
kr_unit_test(test_kube_stream SOURCES ${KR_CONTROLLER_DIR}/kube/stream.c
             LIBS kr_base PkgConfig::CJSON)
if(TARGET kr_kube)
  kr_integration_test(test_kube_watch LABELS apiserver LIBS kr_kube)
endif()
kr_unit_test(test_kube_objset SOURCES ${KR_CONTROLLER_DIR}/kube/objset.c LIBS kr_base)
