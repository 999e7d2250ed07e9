# Kubernetes client configuration: kubeconfig, in-cluster, token cache, resource paths.
if(TARGET kr_kube)
  kr_unit_test(test_kubeconfig LIBS kr_kube kr_testlib)
endif()
