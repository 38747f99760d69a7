# servers.cmake — unit tests of the servers: interfaces, manifest, init, console, shell (and its
# network commands), echo.
foreach(t iface manifest init console shell shell_net echo)
    orrery_add_test(test_${t} SOURCES test_${t}.c
        LIBS orrery_servers orrery_sim orrery_core orrery_hal_host LABELS servers)
endforeach()
