# rotation: the KeyRotation spec decoder, the pure decision (with crash-point and
# property tests over a fake world) and the plan. The spec test links kr_yaml to read the
# example manifests themselves.
if(TARGET kr_rotation)
  kr_unit_test(test_rotation_decide LIBS kr_rotation)
  kr_unit_test(test_keystore_ref LIBS kr_rotation)
  if(TARGET kr_yaml)
    kr_unit_test(test_rotation_spec LIBS kr_rotation kr_yaml)
  endif()
endif()
