# json: the one JSON reader (lookups, typed getters naming the field path, sanitizing).
kr_unit_test(test_json LIBS kr_json)
