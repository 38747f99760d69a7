# linux.cmake — tests of the hosted platform (hal-linux): unit tests, and the multi-worker stress
# test (kills, faults, restarts, tracing): short in every build, a few seconds under TSan.
orrery_add_test(test_hal_linux SOURCES test_hal_linux.c LIBS orrery_hal_linux)
orrery_add_test(test_stress SOURCES test_stress.c LIBS orrery_hal_linux orrery_trace)
if(ORRERY_SANITIZE MATCHES "thread")
    # The TSan step of scripts/test runs the label tsan: 1000 kills (one a millisecond) and
    # about 330 faults on 4 workers, about 5 s on 2 cores.
    add_test(NAME test_stress_tsan COMMAND test_stress --kills 1000)
    set_tests_properties(test_stress_tsan PROPERTIES LABELS "tsan" TIMEOUT 300)
endif()
# The net0 device on libslirp: only slirp's 10.0.2.x addresses and 127.0.0.1 (restricted mode).
orrery_add_test(test_net_hosted SOURCES test_net_hosted.c LIBS orrery_hal_linux)
# The blk0 device on image files in a temp dir it makes and removes.
orrery_add_test(test_blk_hosted SOURCES test_blk_hosted.c LIBS orrery_hal_linux)
if(ORRERY_SANITIZE MATCHES "thread")
    # I/O threads, the loop and two workers hand requests and completions around.
    add_test(NAME test_blk_hosted_tsan COMMAND test_blk_hosted)
    set_tests_properties(test_blk_hosted_tsan PROPERTIES LABELS "tsan" TIMEOUT 300)
endif()
# The tcpip server on slirp (restricted) with init and a client of its net interface.
orrery_add_test(test_tcpip SOURCES test_tcpip.c LIBS orrery_hal_linux orrery_servers)
if(ORRERY_SANITIZE MATCHES "thread")
    # lwIP's globals are reached from whichever worker runs tcpip: under TSan too.
    add_test(NAME test_tcpip_tsan COMMAND test_tcpip)
    set_tests_properties(test_tcpip_tsan PROPERTIES LABELS "tsan" TIMEOUT 300)
endif()
if(ORRERY_SANITIZE MATCHES "thread")
    # The worker -> loop hand-off of frames, under TSan in scripts/test's TSan step (about 1 s).
    add_test(NAME test_net_hosted_tsan COMMAND test_net_hosted)
    set_tests_properties(test_net_hosted_tsan PROPERTIES LABELS "tsan" TIMEOUT 300)
endif()
# The tcp and udp interfaces with tcpecho, against host sockets through hostfwd (restricted slirp),
# and docs/networking.md's example program (extracted by scripts/doc-code).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(_net_doc ${CMAKE_SOURCE_DIR}/docs/networking.md)
set(_net_out ${CMAKE_BINARY_DIR}/doc-code-net)
add_custom_command(
    OUTPUT ${_net_out}/servers/greeter/greeter.c
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/doc-code ${_net_doc} ${_net_out}
    DEPENDS ${_net_doc} ${CMAKE_SOURCE_DIR}/scripts/doc-code
    COMMENT "Extracting the example program of docs/networking.md")
orrery_add_test(test_tcp SOURCES test_tcp.c tcp_tasks.c ${_net_out}/servers/greeter/greeter.c
    LIBS orrery_hal_linux orrery_servers)
if(ORRERY_SANITIZE MATCHES "thread")
    # tcpip, tcpecho and the host's sockets on several workers and the loop: under TSan too.
    add_test(NAME test_tcp_tsan COMMAND test_tcp)
    set_tests_properties(test_tcp_tsan PROPERTIES LABELS "tsan" TIMEOUT 300)
endif()
# The fs server on an image made by the host's mke2fs, with scripted clients; e2fsck judges it.
orrery_add_test(test_fs_server SOURCES test_fs_server.c fs_client.c
    LIBS orrery_hal_linux orrery_servers)
if(ORRERY_SANITIZE MATCHES "thread")
    # The server, several clients and blk0's I/O threads on two workers.
    add_test(NAME test_fs_server_tsan COMMAND test_fs_server)
    set_tests_properties(test_fs_server_tsan PROPERTIES LABELS "tsan" TIMEOUT 300)
endif()
# The same with the kernel clock kept on clock_gettime (ORRERY_HOSTED_CLOCK=monotonic, hl/clock.h).
add_test(NAME test_hal_linux_monotonic COMMAND test_hal_linux)
set_tests_properties(test_hal_linux_monotonic PROPERTIES ENVIRONMENT ORRERY_HOSTED_CLOCK=monotonic)
