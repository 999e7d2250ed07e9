# Work queue (controller/runtime/workqueue.c). Compiled into the test directly so it does not
# wait for the rest of kr_runtime (which links kr_kube) to build.
kr_unit_test(test_workqueue LIBS kr_base m SOURCES ${KR_CONTROLLER_DIR}/runtime/workqueue.c)
