# rotation status codec: .status JSON round trips, hand-written status, field errors, and
# every emitted key checked against the CRD's status schema (read with kr_yaml).
if(TARGET kr_rotation AND TARGET kr_yaml)
  kr_unit_test(test_rotation_status LIBS kr_rotation kr_yaml)
endif()
