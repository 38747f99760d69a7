# trace.cmake — the trace store: SQLite recorder, readers, frame codec, importer, trace CLI (included by sim/CMakeLists.txt).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)

set(ORRERY_TRACE_DIR ${CMAKE_CURRENT_LIST_DIR}/trace)

# The frame codec is freestanding: the bare-metal image compiles sim/trace/frame.c itself
# (with include paths ${ORRERY_HAL_INCLUDE} and ${ORRERY_TRACE_INCLUDE}).
set(ORRERY_TRACE_INCLUDE ${CMAKE_CURRENT_LIST_DIR}/include CACHE INTERNAL "trace headers")
set(ORRERY_TRACE_FRAME_SOURCE ${ORRERY_TRACE_DIR}/frame.c CACHE INTERNAL "freestanding frame encoder")

add_library(orrery_trace STATIC
    ${ORRERY_TRACE_DIR}/recorder.c
    ${ORRERY_TRACE_DIR}/writer.c
    ${ORRERY_TRACE_DIR}/outpath.c
    ${ORRERY_TRACE_DIR}/frame.c
    ${ORRERY_TRACE_DIR}/stream.c
    ${ORRERY_TRACE_DIR}/import.c
    ${ORRERY_TRACE_DIR}/decode.c
    ${ORRERY_TRACE_DIR}/iface_table.c
    ${ORRERY_TRACE_DIR}/corpus.c
    ${ORRERY_TRACE_DIR}/reader.c
    ${ORRERY_TRACE_DIR}/pair.c
    ${ORRERY_TRACE_DIR}/summary.c
    ${ORRERY_TRACE_DIR}/show.c
    ${ORRERY_TRACE_DIR}/perfetto.c
    ${ORRERY_TRACE_DIR}/bench.c)
target_include_directories(orrery_trace PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include ${ORRERY_HAL_INCLUDE}
    ${ORRERY_SERVERS_INCLUDE} ${ORRERY_CORE_INCLUDE})
target_link_libraries(orrery_trace PUBLIC PkgConfig::SQLITE3 Threads::Threads orrery_servers)
target_compile_options(orrery_trace PRIVATE ${ORRERY_HOST_FLAGS})

# `orrery trace ...`, `orrery bench trace` and `orrery replay`, linked into build/orrery.
add_library(orrery_trace_cli STATIC ${CMAKE_SOURCE_DIR}/hal-linux/cmd_trace.c
    ${CMAKE_SOURCE_DIR}/hal-linux/cmd_replay.c ${CMAKE_SOURCE_DIR}/hal-linux/cmd_corpus.c
    ${ORRERY_TRACE_DIR}/record_run.c ${ORRERY_TRACE_DIR}/replay.c ${ORRERY_TRACE_DIR}/replay_run.c)
target_link_libraries(orrery_trace_cli PUBLIC orrery_trace orrery_sim orrery_servers
    orrery_hal_linux)
target_compile_definitions(orrery_trace_cli PRIVATE ORRERY_COMMIT="${ORRERY_COMMIT}")
target_compile_options(orrery_trace_cli PRIVATE ${ORRERY_HOST_FLAGS})
target_include_directories(orrery_trace_cli PRIVATE ${CMAKE_SOURCE_DIR}/hal-linux/include)
