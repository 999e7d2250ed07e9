# The CLI's one flag parser (controller/cli/flags.c): forms, errors, env, generated help.
kr_unit_test(test_cli_flags LIBS kr_cli)
