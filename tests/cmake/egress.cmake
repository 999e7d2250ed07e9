# Egress limits (`run --allowed-endpoints`) and message sanitising: parsing, CIDRs, host
# patterns, link-local and metadata refusals; and, against a listener on 127.0.0.1 in the
# test itself, that a refused address gets no connection and no server text reaches an
# error message (through fetch.c and verify.c).
if(TARGET kr_egress AND TARGET kr_analysis)
  kr_unit_test(test_egress LIBS kr_egress kr_analysis LABELS security)
endif()
