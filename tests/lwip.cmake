# tests/lwip.cmake — lwIP's own unit suite (test/unit of Debian's lwip source, libcheck), built
# with Orrery's lwipopts.h and run as `lwip_unit` (docs/networking.md).
pkg_check_modules(CHECK REQUIRED IMPORTED_TARGET check)

set(LWIP_DIR ${ORRERY_LWIP_DIR})
include(${LWIP_DIR}/test/unit/Filelists.cmake) # LWIP_TESTFILES, LWIP_TESTDIR
# The sockets suite drives lwIP's socket API through its tcpip thread, neither of which exists
# with NO_SYS 1 and LWIP_SOCKET 0 (it does not compile); lwip/suites.c stands an empty suite in.
# The mdns suite tests the mDNS responder app, which needs IGMP and LWIP_MDNS_RESPONDER (both
# off in Orrery); it too is an empty stand-in.
list(REMOVE_ITEM LWIP_TESTFILES ${LWIP_TESTDIR}/api/test_sockets.c ${LWIP_TESTDIR}/mdns/test_mdns.c)
# The suite's main gets memp.h and stats.h only through tcpip.h, which it includes when
# !NO_SYS; with NO_SYS 1 they are included first by flag (no change to lwIP's file).
set_source_files_properties(${LWIP_TESTDIR}/lwip_unittests.c PROPERTIES
    COMPILE_OPTIONS "-include;lwip/memp.h;-include;lwip/stats.h")
# The ip4 and ip6 suites call tcpip_thread_poll_one (declared in lwip/nosys.h); the dhcp
# suite calls printf without stdio.h.
set_source_files_properties(${LWIP_TESTDIR}/ip4/test_ip4.c ${LWIP_TESTDIR}/ip6/test_ip6.c PROPERTIES
    COMPILE_OPTIONS "-include;${CMAKE_CURRENT_SOURCE_DIR}/lwip/nosys.h")
set_source_files_properties(${LWIP_TESTDIR}/dhcp/test_dhcp.c PROPERTIES
    COMPILE_OPTIONS "-include;stdio.h")
# The mem suite's double-free test frees a pointer whose header the next allocation has
# overwritten; mem_free's sanity check then reads neighbours at whatever (odd) offsets it
# finds there and rejects the free, as the test expects. UBSan's alignment check would stop
# that read, so it is off for this test copy of mem.c only (orrery_lwip keeps it).
if(ORRERY_SANITIZE MATCHES "undefined")
    set_source_files_properties(${LWIP_DIR}/src/core/mem.c PROPERTIES
        COMPILE_OPTIONS "-fno-sanitize=alignment")
endif()
# The suite and the stack it tests are compiled together with the same options (the test
# mode and the sizes below change lwIP's structures), so lwIP is compiled again here rather
# than linked from orrery_lwip.
add_executable(lwip_unit ${LWIP_TESTFILES} ${ORRERY_LWIP_SOURCES}
    ${LWIP_DIR}/src/apps/mqtt/mqtt.c ${CMAKE_CURRENT_SOURCE_DIR}/lwip/glue.c
    ${CMAKE_CURRENT_SOURCE_DIR}/lwip/suites.c)
# net/include first: our lwipopts.h, not the suite's own test/unit/lwipopts.h.
target_include_directories(lwip_unit PRIVATE ${ORRERY_LWIP_INCLUDE} ${CMAKE_CURRENT_SOURCE_DIR}/lwip
    ${LWIP_TESTDIR})
# What the suite needs beyond our options (test mode, its own sizes, options it tests) is in
# lwip/unit_opts.h, included ahead of everything; lwipopts.h leaves those to it (#ifndef).
# lwIP's own tests pass messages with arguments to libcheck macros whose format has no
# conversion for them (test_pbuf.c, test_dhcp.c): their warning, not ours to fix.
target_compile_options(lwip_unit PRIVATE ${ORRERY_HOST_FLAGS}
    -include ${CMAKE_CURRENT_SOURCE_DIR}/lwip/unit_opts.h -Wno-format-extra-args)
target_link_options(lwip_unit PRIVATE ${ORRERY_HOST_FLAGS})
target_link_libraries(lwip_unit PRIVATE PkgConfig::CHECK)
set_target_properties(lwip_unit PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
# The suite writes lwip_unittests.xml into its working directory.
add_test(NAME lwip_unit COMMAND lwip_unit WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
set_tests_properties(lwip_unit PROPERTIES LABELS "unit" TIMEOUT 300)
