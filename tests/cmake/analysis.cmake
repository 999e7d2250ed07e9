# The 401 watch: the text-format parser, query decoding, counter rates and the gate (unit),
# and the HTTP side against Debian's prometheus and a test service (label "prometheus").
if(TARGET kr_analysis)
  kr_unit_test(test_promtext LIBS kr_analysis)
  kr_unit_test(test_promjson LIBS kr_analysis)
  kr_unit_test(test_analysis_rate LIBS kr_analysis)
  kr_unit_test(test_analysis_gate LIBS kr_analysis)
endif()
if(TARGET kr_analysis AND TARGET keyrotator)
  kr_integration_test(test_analysis_prometheus LABELS prometheus LIBS kr_analysis)
endif()
