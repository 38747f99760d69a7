# cli.cmake — unit tests of the orrery command's shared helpers (cli/opt.c).
orrery_add_test(test_cli_opt SOURCES test_cli_opt.c ${CMAKE_SOURCE_DIR}/cli/opt.c LABELS cli)
target_include_directories(test_cli_opt PRIVATE ${CMAKE_SOURCE_DIR}/cli)
