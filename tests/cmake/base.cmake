kr_unit_test(test_base LIBS kr_base PkgConfig::CJSON)
