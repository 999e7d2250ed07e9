# Controller runtime: informers (caches, 410/resume, projection, reverse index) and the
# `keyrotator run` process, against the local API server (and a redis-server: inline key stores).
if(TARGET kr_runtime)
  kr_integration_test(test_informer LABELS apiserver LIBS kr_reconciler)
  # A worker stuck in one reconcile fails kr_controller_alive/ready (--stuck-worker-timeout).
  kr_integration_test(test_controller_stuck LABELS apiserver LIBS kr_reconciler)
  kr_integration_test(test_controller_run LABELS apiserver redis LIBS kr_base PkgConfig::CJSON PkgConfig::CURL)
  add_dependencies(test_controller_run keyrotator)
endif()
# The string map and the reverse index, without I/O.
if(TARGET kr_runtime)
  kr_unit_test(test_index LIBS kr_runtime)
  # Packed cache entries (runtime/pack.h).
  kr_unit_test(test_pack LIBS kr_runtime)
endif()
# The Event recorder: queued off the caller, counted up, combined, bounded (runtime/events.h).
if(TARGET kr_runtime)
  kr_integration_test(test_events LABELS apiserver LIBS kr_runtime)
endif()
