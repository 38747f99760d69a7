# fuzz.cmake — gcc-side tests of the fuzzing support: the trace-to-corpus converter, the
# orrery-trace-corpus tool (until `orrery trace corpus` is wired), and the seed corpus check.
if(TARGET orrery_trace AND TARGET orrery_servers)
    set(_fz_corpus_src ${CMAKE_SOURCE_DIR}/sim/trace/corpus.c)
    orrery_add_test(test_fuzz_corpus
        SOURCES ${CMAKE_SOURCE_DIR}/fuzz/test_corpus.c ${_fz_corpus_src}
        LIBS orrery_trace orrery_servers LABELS fuzz)

    add_executable(orrery-trace-corpus ${CMAKE_SOURCE_DIR}/fuzz/corpus_main.c
        ${CMAKE_SOURCE_DIR}/hal-linux/cmd_corpus.c ${_fz_corpus_src})
    target_link_libraries(orrery-trace-corpus PRIVATE orrery_trace orrery_servers)
    target_compile_options(orrery-trace-corpus PRIVATE ${ORRERY_HOST_FLAGS})
    target_link_options(orrery-trace-corpus PRIVATE ${ORRERY_HOST_FLAGS})

    # Record a short session and turn it into inputs: one per (server, client channel).
    if(TARGET orrery)
        add_test(NAME fuzz_trace_corpus COMMAND sh -c "set -e; d=$(mktemp -d); \
printf 'echo hello\\nps\\nkill echo\\nspawn echo\\nshutdown\\n' | \
$<TARGET_FILE:orrery> trace record $d/s.db --deterministic --seed 1 --quiet >/dev/null; \
$<TARGET_FILE:orrery-trace-corpus> $d/s.db $d/c; \
ls $d/c/echo/s-ch* $d/c/init/s-ch* $d/c/console/s-lines $d/c/shell/s-lines; rm -rf $d")
        set_tests_properties(fuzz_trace_corpus PROPERTIES LABELS "fuzz" TIMEOUT 120)
    endif()
endif()
