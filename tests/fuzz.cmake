# fuzz.cmake — gcc-side tests of the fuzzing support: the trace-to-corpus converter and
# `orrery trace corpus` end to end.
orrery_add_test(test_fuzz_corpus
    SOURCES ${CMAKE_SOURCE_DIR}/fuzz/test_corpus.c ${CMAKE_SOURCE_DIR}/fuzz/tcpip_frames.c
    LIBS orrery_trace orrery_servers LABELS fuzz)

# Record a short session and turn it into inputs: one per (server, client channel).
add_test(NAME fuzz_trace_corpus COMMAND sh -c "set -e; d=$(mktemp -d); \
printf 'echo hello\\nps\\nkill echo\\nspawn echo\\nshutdown\\n' | \
$<TARGET_FILE:orrery> trace record $d/s.db --deterministic --seed 1 >/dev/null; \
$<TARGET_FILE:orrery> trace corpus $d/s.db $d/c >/dev/null; \
ls $d/c/echo/s-ch* $d/c/init/s-ch* $d/c/console/s-lines $d/c/shell/s-lines; rm -rf $d")
set_tests_properties(fuzz_trace_corpus PROPERTIES LABELS "fuzz" TIMEOUT 120)

# The golden tcpip trace becomes one fuzz_tcpip input of template ops.
add_test(NAME fuzz_trace_corpus_tcpip COMMAND sh -c "set -e; d=$(mktemp -d); \
$<TARGET_FILE:orrery> trace corpus ${CMAKE_SOURCE_DIR}/tests/traces/tcpip-sim.db $d/c >/dev/null; \
test -s $d/c/tcpip/tcpip-sim-task2; rm -rf $d")
set_tests_properties(fuzz_trace_corpus_tcpip PROPERTIES LABELS "fuzz")

# fuzz/corpus/kv is what fuzz/make-kv-seeds.sh makes: the checked-in seeds and their generator
# agree, byte for byte.
add_test(NAME fuzz_kv_seeds COMMAND sh -c "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; \
${CMAKE_SOURCE_DIR}/fuzz/make-kv-seeds.sh $d; diff -r $d ${CMAKE_SOURCE_DIR}/fuzz/corpus/kv")
set_tests_properties(fuzz_kv_seeds PROPERTIES LABELS "fuzz")

# fuzz_kv's harness without libFuzzer (fuzz/fz_main.c): its seeds and its fixed findings
# (tests/regress/fuzz/kv), each from a fresh boot, with every invariant of docs/fuzzing.md "kv"
# (kv's answers, durability, no lost write) on kv as built.
add_executable(fuzz_kv_replay ${CMAKE_SOURCE_DIR}/fuzz/fz_main.c ${CMAKE_SOURCE_DIR}/fuzz/fuzz_kv.c
    ${CMAKE_SOURCE_DIR}/fuzz/kv_peer.c ${CMAKE_SOURCE_DIR}/fuzz/fz_input.c)
target_include_directories(fuzz_kv_replay PRIVATE ${CMAKE_SOURCE_DIR}/servers/kv)
target_link_libraries(fuzz_kv_replay PRIVATE orrery_sim_runner orrery_sim orrery_servers orrery_core
    orrery_hal_host)
target_compile_options(fuzz_kv_replay PRIVATE ${ORRERY_HOST_FLAGS})
target_link_options(fuzz_kv_replay PRIVATE ${ORRERY_HOST_FLAGS})
file(GLOB _kv_seeds ${CMAKE_SOURCE_DIR}/fuzz/corpus/kv/* ${CMAKE_SOURCE_DIR}/tests/regress/fuzz/kv/*)
add_test(NAME fuzz_kv_seeds_replay COMMAND fuzz_kv_replay ${_kv_seeds})
set_tests_properties(fuzz_kv_seeds_replay PROPERTIES LABELS "fuzz" PASS_REGULAR_EXPRESSION
    "inputs ran")
