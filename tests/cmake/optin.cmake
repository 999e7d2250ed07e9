# Secret opt-in (design.md §1b): which Secrets a KeyRotation may make the controller read
# or write, and that a refused reconcile reads and writes nothing.
if(TARGET kr_reconciler)
  kr_unit_test(test_secret_optin LIBS kr_reconciler)
endif()
