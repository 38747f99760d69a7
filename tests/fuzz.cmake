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
