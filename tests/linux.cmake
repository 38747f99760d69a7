# linux.cmake — tests of the hosted platform (hal-linux): unit tests, and the TSan stress test.
orrery_add_test(test_hal_linux SOURCES test_hal_linux.c LIBS orrery_hal_linux)
orrery_add_test(test_stress SOURCES test_stress.c LIBS orrery_hal_linux LABELS tsan)
