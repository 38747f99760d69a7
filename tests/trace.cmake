# trace.cmake — tests of the trace store (recorder, readers, frame codec, importer) and of replay.
orrery_add_test(test_trace_recorder SOURCES test_trace_recorder.c LIBS orrery_trace LABELS trace)
orrery_add_test(test_trace_capture SOURCES test_trace_capture.c LIBS orrery_trace LABELS trace)
target_include_directories(test_trace_capture PRIVATE ${CMAKE_SOURCE_DIR}/trace) # block formats
# Capture block format 2 (the recorder's encoded entries): the internal header, read directly.
orrery_add_test(test_trace_entry SOURCES test_trace_entry.c LIBS orrery_trace LABELS trace)
target_include_directories(test_trace_entry PRIVATE ${CMAKE_SOURCE_DIR}/trace)
orrery_add_test(test_trace_readers SOURCES test_trace_readers.c LIBS orrery_trace LABELS trace)
orrery_add_test(test_trace_frame SOURCES test_trace_frame.c LIBS orrery_trace LABELS trace)
orrery_add_test(test_pcap SOURCES test_pcap.c LIBS orrery_trace LABELS trace)
orrery_add_test(test_blkdec SOURCES test_blkdec.c LIBS orrery_trace LABELS trace)

# Channel interface tags in trace records (kernel test platform kt, from core.cmake).
orrery_add_test(test_chan_tag SOURCES test_chan_tag.c LIBS orrery_kt LABELS trace)

# Replay (orrery_trace_cli holds replay.c).
orrery_add_test(test_replay SOURCES test_replay.c LIBS orrery_replay LABELS trace)
target_compile_definitions(test_replay PRIVATE ORRERY_TRACES_DIR="${CMAKE_CURRENT_SOURCE_DIR}/traces")

# The golden traces through the CLI, one test per server: `orrery replay` must match.
foreach(task init console shell echo)
    add_test(NAME replay_golden_${task}
        COMMAND orrery replay ${CMAKE_CURRENT_SOURCE_DIR}/traces/session.db --task ${task})
    set_tests_properties(replay_golden_${task} PROPERTIES LABELS "trace;replay"
        PASS_REGULAR_EXPRESSION "events matched")
endforeach()
add_test(NAME replay_golden_restart_shell
    COMMAND orrery replay ${CMAKE_CURRENT_SOURCE_DIR}/traces/restart.db --task shell)
set_tests_properties(replay_golden_restart_shell PROPERTIES LABELS "trace;replay")

# Captures of a simulation with two tcpip nodes: the same seed gives the same pcap.
orrery_add_test(test_pcap_sim SOURCES test_pcap_sim.c
    LIBS orrery_trace orrery_sim orrery_servers orrery_core orrery_hal_host LABELS trace sim)
# The golden tcpip trace: two simulated nodes, node 0's tcpip recorded while it serves a TCP
# echo both ways, a UDP datagram and a ping (tests/traces/record_tcpip.c, record.sh).
add_executable(record_tcpip ${CMAKE_CURRENT_SOURCE_DIR}/traces/record_tcpip.c)
target_link_libraries(record_tcpip PRIVATE orrery_sim orrery_servers orrery_lwip orrery_core
    orrery_hal_host orrery_trace)
target_compile_options(record_tcpip PRIVATE ${ORRERY_HOST_FLAGS})
target_link_options(record_tcpip PRIVATE ${ORRERY_HOST_FLAGS})
set_target_properties(record_tcpip PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME replay_golden_tcpip
    COMMAND orrery replay ${CMAKE_CURRENT_SOURCE_DIR}/traces/tcpip-sim.db --task tcpip)
set_tests_properties(replay_golden_tcpip PROPERTIES LABELS "trace;replay"
    PASS_REGULAR_EXPRESSION "events matched")
# record_tcpip is deterministic: two recordings show the same events.
add_test(NAME record_tcpip_deterministic COMMAND sh -c "set -e; d=$(mktemp -d); \
$<TARGET_FILE:record_tcpip> $d/a.db 2>/dev/null; $<TARGET_FILE:record_tcpip> $d/b.db 2>/dev/null; \
$<TARGET_FILE:orrery> trace show $d/a.db > $d/a.txt; $<TARGET_FILE:orrery> trace show $d/b.db > $d/b.txt; \
test -s $d/a.txt; cmp $d/a.txt $d/b.txt; rm -rf $d")
set_tests_properties(record_tcpip_deterministic PROPERTIES LABELS "trace;replay")

# The golden fs trace: one simulated node whose fs server serves a client on an ext2 image
# (tests/traces/record_fs.c, make-fs-image.sh, record.sh). Replaying it feeds blk0's recorded
# completions back to the fs server through a blk0 stand-in (sim/replay_run.c).
add_executable(record_fs ${CMAKE_CURRENT_SOURCE_DIR}/traces/record_fs.c)
target_link_libraries(record_fs PRIVATE orrery_sim orrery_servers orrery_core orrery_hal_host
    orrery_trace)
target_compile_options(record_fs PRIVATE ${ORRERY_HOST_FLAGS})
target_link_options(record_fs PRIVATE ${ORRERY_HOST_FLAGS})
set_target_properties(record_fs PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME replay_golden_fs
    COMMAND orrery replay ${CMAKE_CURRENT_SOURCE_DIR}/traces/fs-sim.db --task fs)
set_tests_properties(replay_golden_fs PROPERTIES LABELS "trace;replay"
    PASS_REGULAR_EXPRESSION "events matched")
# record_fs is deterministic: two recordings on the same image show the same events.
add_test(NAME record_fs_deterministic COMMAND sh -c "set -e; d=$(mktemp -d); \
trap 'rm -rf $d' EXIT; \
${CMAKE_CURRENT_SOURCE_DIR}/traces/make-fs-image.sh $d/fs.img; \
$<TARGET_FILE:record_fs> $d/fs.img $d/a.db 2>/dev/null; \
$<TARGET_FILE:record_fs> $d/fs.img $d/b.db 2>/dev/null; \
$<TARGET_FILE:orrery> trace show $d/a.db > $d/a.txt; $<TARGET_FILE:orrery> trace show $d/b.db > $d/b.txt; \
grep -q 'blk0 READ' $d/a.txt; grep -q 'fs.open' $d/a.txt; cmp $d/a.txt $d/b.txt")
set_tests_properties(record_fs_deterministic PROPERTIES LABELS "trace;replay")

# The golden httpd trace: two simulated nodes, node 0's httpd (beside tcpip and the fs server on
# an ext2 image) serving pipelined requests and a malformed one to a client on node 1
# (tests/traces/record_httpd.c, make-httpd-image.sh, record.sh; docs/httpd.md).
add_executable(record_httpd ${CMAKE_CURRENT_SOURCE_DIR}/traces/record_httpd.c)
target_link_libraries(record_httpd PRIVATE orrery_sim orrery_servers orrery_lwip orrery_core
    orrery_hal_host orrery_trace)
target_compile_options(record_httpd PRIVATE ${ORRERY_HOST_FLAGS})
target_link_options(record_httpd PRIVATE ${ORRERY_HOST_FLAGS})
set_target_properties(record_httpd PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME replay_golden_httpd
    COMMAND orrery replay ${CMAKE_CURRENT_SOURCE_DIR}/traces/httpd-sim.db --task httpd)
set_tests_properties(replay_golden_httpd PROPERTIES LABELS "trace;replay"
    PASS_REGULAR_EXPRESSION "events matched")
# record_httpd is deterministic: two recordings on the same image show the same events, and
# `trace show` decodes httpd's channels (tcp and fs messages by their interface).
add_test(NAME record_httpd_deterministic COMMAND sh -c "set -e; d=$(mktemp -d); \
trap 'rm -rf $d' EXIT; \
${CMAKE_CURRENT_SOURCE_DIR}/traces/make-httpd-image.sh $d/h.img; \
$<TARGET_FILE:record_httpd> $d/h.img $d/a.db 2>/dev/null; \
$<TARGET_FILE:record_httpd> $d/h.img $d/b.db 2>/dev/null; \
$<TARGET_FILE:orrery> trace show $d/a.db > $d/a.txt; $<TARGET_FILE:orrery> trace show $d/b.db > $d/b.txt; \
grep -q 'tcp.accepted' $d/a.txt; grep -q 'tcp.data' $d/a.txt; grep -q 'fs.open' $d/a.txt; \
grep -q 'fs.data' $d/a.txt; cmp $d/a.txt $d/b.txt")
set_tests_properties(record_httpd_deterministic PROPERTIES LABELS "trace;replay")

# Traces of several nodes (schema 3): a two-node cluster recorded into one trace and read back
# node by node (tests/traces/cluster_trace.c); record_cluster writes it for pytest
# (pytest/test_trace_nodes.py).
orrery_add_test(test_trace_nodes SOURCES test_trace_nodes.c traces/cluster_trace.c
    LIBS orrery_replay orrery_trace orrery_sim orrery_servers orrery_lwip orrery_core
    orrery_hal_host LABELS trace sim)
add_executable(record_cluster ${CMAKE_CURRENT_SOURCE_DIR}/traces/record_cluster.c
    ${CMAKE_CURRENT_SOURCE_DIR}/traces/cluster_trace.c)
target_link_libraries(record_cluster PRIVATE orrery_sim orrery_servers orrery_lwip orrery_core
    orrery_hal_host orrery_trace)
target_compile_options(record_cluster PRIVATE ${ORRERY_HOST_FLAGS})
target_link_options(record_cluster PRIVATE ${ORRERY_HOST_FLAGS})
set_target_properties(record_cluster PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

# The golden kv trace: three simulated nodes, two recorded: the kv leader and its follower (f1,
# which also runs tcpecho) on ext2 images of make-kv-image.sh, serving kvclient and tcpstream from
# the third (tests/traces/record_kv.c, record.sh; docs/kv.md).
add_executable(record_kv ${CMAKE_CURRENT_SOURCE_DIR}/traces/record_kv.c
    ${CMAKE_CURRENT_SOURCE_DIR}/traces/cluster_trace.c)
target_link_libraries(record_kv PRIVATE orrery_sim orrery_servers orrery_lwip orrery_core
    orrery_hal_host orrery_trace)
target_compile_options(record_kv PRIVATE ${ORRERY_HOST_FLAGS})
target_link_options(record_kv PRIVATE ${ORRERY_HOST_FLAGS})
set_target_properties(record_kv PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
foreach(golden "leader;kv" "f1;kv" "f1;tcpecho")
    list(GET golden 0 node)
    list(GET golden 1 task)
    set(name replay_golden_${task})
    if(task STREQUAL "kv")
        set(name replay_golden_kv_${node})
    endif()
    add_test(NAME ${name} COMMAND orrery replay ${CMAKE_CURRENT_SOURCE_DIR}/traces/kv-sim.db
        --node ${node} --task ${task})
    set_tests_properties(${name} PROPERTIES LABELS "trace;replay"
        PASS_REGULAR_EXPRESSION "events matched")
endforeach()
# record_kv is deterministic: two recordings on the same image show the same events, and `trace
# show` decodes kv's channels (its replication lines as tcp data, its log file as fs writes).
add_test(NAME record_kv_deterministic COMMAND sh -c "set -e; d=$(mktemp -d); \
trap 'rm -rf $d' EXIT; \
${CMAKE_CURRENT_SOURCE_DIR}/traces/make-kv-image.sh $d/kv.img; \
$<TARGET_FILE:record_kv> $d/kv.img $d/a.db 2>/dev/null; \
$<TARGET_FILE:record_kv> $d/kv.img $d/b.db 2>/dev/null; \
$<TARGET_FILE:orrery> trace show $d/a.db > $d/a.txt; $<TARGET_FILE:orrery> trace show $d/b.db > $d/b.txt; \
grep -q 'fs.write' $d/a.txt; grep -q 'fs.fsync' $d/a.txt; grep -q 'tcp.data' $d/a.txt; \
cmp $d/a.txt $d/b.txt")
set_tests_properties(record_kv_deterministic PROPERTIES LABELS "trace;replay")
