# servers.cmake — unit tests of the servers: interfaces, manifest, init, console, shell (and its
# network commands), echo.
foreach(t iface manifest init console console_term shell shell_net echo)
    orrery_add_test(test_${t} SOURCES test_${t}.c
        LIBS orrery_servers orrery_sim orrery_core orrery_hal_host LABELS servers)
endforeach()

# The ext2 library of the fs server, alone: images made at test time by the host's mke2fs.
orrery_add_test(test_fs_ext2 SOURCES test_fs_ext2.c ${CMAKE_SOURCE_DIR}/servers/fs/ext2.c
    LIBS orrery_core LABELS servers)
# Its write side, judged by the host's e2fsck and debugfs on images mke2fs makes at test time.
set(EXT2_LIB ${CMAKE_SOURCE_DIR}/servers/fs/ext2.c ${CMAKE_SOURCE_DIR}/servers/fs/ext2_write.c
    ${CMAKE_SOURCE_DIR}/servers/fs/ext2_wmap.c ${CMAKE_SOURCE_DIR}/servers/fs/ext2_wdir.c)
orrery_add_test(test_fs_ext2_write SOURCES test_fs_ext2_write.c ext2w_util.c ${EXT2_LIB}
    LIBS orrery_core LABELS servers)
orrery_add_test(test_fs_ext2_wmodel SOURCES test_fs_ext2_wmodel.c ext2w_util.c ${EXT2_LIB}
    LIBS orrery_core LABELS servers)
orrery_add_test(test_fs_ext2_wbad SOURCES test_fs_ext2_wbad.c ext2w_util.c ${EXT2_LIB}
    LIBS orrery_core LABELS servers)
orrery_add_test(test_fs_iface SOURCES test_fs_iface.c LIBS orrery_servers orrery_core
    LABELS servers)
# httpd's pure parts: request parser, path normalisation, ranges, dates, MIME, arg.
orrery_add_test(test_http_parse SOURCES test_http_parse.c
    ${CMAKE_SOURCE_DIR}/servers/httpd/http_parse.c ${CMAKE_SOURCE_DIR}/servers/httpd/path.c
    LIBS orrery_core LABELS servers)
target_include_directories(test_http_parse PRIVATE ${ORRERY_SERVERS_INCLUDE})
# kv's pure parts: log records and their chain, loading a log file, the recovery choice, lines.
orrery_add_test(test_kv_log SOURCES test_kv_log.c ${CMAKE_SOURCE_DIR}/servers/kv/log.c
    LIBS orrery_core LABELS servers)
target_include_directories(test_kv_log PRIVATE ${ORRERY_SERVERS_INCLUDE}
    ${CMAKE_SOURCE_DIR}/servers/kv)

# The console's line editor alone (pure), against the small terminal model of its fuzz target
# (fuzz/term_screen.c).
orrery_add_test(test_console_edit SOURCES test_console_edit.c ${CMAKE_SOURCE_DIR}/fuzz/term_screen.c
    LIBS orrery_servers orrery_core LABELS servers)
target_include_directories(test_console_edit PRIVATE ${CMAKE_SOURCE_DIR}/fuzz)
# The whole httpd in the simulator against an ext2 image, judged as an HTTP client judges it.
orrery_add_test(test_httpd_sim SOURCES test_httpd_sim.c
    LIBS orrery_sim orrery_servers orrery_lwip orrery_core orrery_hal_host LABELS servers)
target_compile_definitions(test_httpd_sim PRIVATE ORRERY_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
# Connections opened all at once to a peer whose MAC is not known yet (lwIP's ARP queueing).
orrery_add_test(test_arp_burst_sim SOURCES test_arp_burst_sim.c
    LIBS orrery_sim orrery_servers orrery_lwip orrery_core orrery_hal_host LABELS servers)
