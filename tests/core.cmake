# core.cmake — the kernel's unit tests (one cmocka file per core module) and the kt test platform.

# kt: a single-threaded test platform (manual clock, captured console, counting trace sink).
add_library(orrery_kt STATIC ${CMAKE_CURRENT_LIST_DIR}/kt.c)
target_include_directories(orrery_kt PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(orrery_kt PUBLIC orrery_core orrery_hal_host)
target_compile_options(orrery_kt PRIVATE ${ORRERY_HOST_FLAGS})

foreach(module errno list check handle channel timer sched task device trace fault audit)
    orrery_add_test(test_${module}
        SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_${module}.c
        LIBS orrery_kt orrery_core orrery_hal_host
        LABELS core)
endforeach()
