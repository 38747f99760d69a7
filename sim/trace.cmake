# trace.cmake — the trace store: SQLite recorder, readers, frame codec, importer, trace CLI (included by sim/CMakeLists.txt).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)

set(ORRERY_TRACE_DIR ${CMAKE_CURRENT_LIST_DIR}/trace)

# The frame codec is freestanding: the bare-metal image compiles sim/trace/frame.c itself
# (with include paths ${ORRERY_HAL_INCLUDE} and ${ORRERY_TRACE_INCLUDE}).
set(ORRERY_TRACE_INCLUDE ${CMAKE_CURRENT_LIST_DIR}/include CACHE INTERNAL "trace headers")
set(ORRERY_TRACE_FRAME_SOURCE ${ORRERY_TRACE_DIR}/frame.c CACHE INTERNAL "freestanding frame encoder")

# Payload decoding by interface definition needs the image's descriptor tables (iface_all).
set(ORRERY_TRACE_IFACE_LIB "")
foreach(candidate orrery_iface orrery_servers_iface orrery_servers)
    if(TARGET ${candidate} AND NOT ORRERY_TRACE_IFACE_LIB)
        set(ORRERY_TRACE_IFACE_LIB ${candidate})
    endif()
endforeach()
if(ORRERY_TRACE_IFACE_LIB)
    set(ORRERY_TRACE_IFACE_SOURCE ${ORRERY_TRACE_DIR}/iface_table.c)
else()
    set(ORRERY_TRACE_IFACE_SOURCE ${ORRERY_TRACE_DIR}/iface_none.c)
endif()

add_library(orrery_trace STATIC
    ${ORRERY_TRACE_DIR}/recorder.c
    ${ORRERY_TRACE_DIR}/frame.c
    ${ORRERY_TRACE_DIR}/stream.c
    ${ORRERY_TRACE_DIR}/import.c
    ${ORRERY_TRACE_DIR}/decode.c
    ${ORRERY_TRACE_IFACE_SOURCE}
    ${ORRERY_TRACE_DIR}/reader.c
    ${ORRERY_TRACE_DIR}/pair.c
    ${ORRERY_TRACE_DIR}/summary.c
    ${ORRERY_TRACE_DIR}/show.c
    ${ORRERY_TRACE_DIR}/perfetto.c
    ${ORRERY_TRACE_DIR}/bench.c)
target_include_directories(orrery_trace PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include ${ORRERY_HAL_INCLUDE}
    ${ORRERY_SERVERS_INCLUDE} ${ORRERY_CORE_INCLUDE})
target_link_libraries(orrery_trace PUBLIC PkgConfig::SQLITE3 Threads::Threads ${ORRERY_TRACE_IFACE_LIB})
target_compile_options(orrery_trace PRIVATE ${ORRERY_HOST_FLAGS})

# `orrery trace ...` and `orrery bench trace`: hal-linux/cmd_trace.c, linked into build/orrery.
# `trace record` boots the image: it needs the kernel, the servers, sim and the hosted platform.
if(TARGET orrery_sim AND TARGET orrery_servers AND TARGET orrery_hal_linux)
    add_library(orrery_trace_cli STATIC ${CMAKE_SOURCE_DIR}/hal-linux/cmd_trace.c
        ${CMAKE_SOURCE_DIR}/hal-linux/cmd_replay.c ${ORRERY_TRACE_DIR}/record_run.c
        ${ORRERY_TRACE_DIR}/replay.c ${ORRERY_TRACE_DIR}/replay_run.c)
    target_link_libraries(orrery_trace_cli PUBLIC orrery_trace orrery_sim orrery_servers
        orrery_hal_linux)
    target_compile_definitions(orrery_trace_cli PRIVATE ORRERY_COMMIT="${ORRERY_COMMIT}")
else()
    add_library(orrery_trace_cli STATIC ${CMAKE_SOURCE_DIR}/hal-linux/cmd_trace.c
        ${ORRERY_TRACE_DIR}/record_none.c ${ORRERY_TRACE_DIR}/replay_none.c)
    target_link_libraries(orrery_trace_cli PUBLIC orrery_trace)
endif()
target_compile_options(orrery_trace_cli PRIVATE ${ORRERY_HOST_FLAGS})
target_include_directories(orrery_trace_cli PRIVATE ${CMAKE_SOURCE_DIR}/hal-linux/include)

# A standalone front end for the same commands (build/orrery-trace), usable before and
# besides build/orrery.
add_executable(orrery-trace ${ORRERY_TRACE_DIR}/tool.c)
target_link_libraries(orrery-trace PRIVATE orrery_trace_cli)
target_compile_options(orrery-trace PRIVATE ${ORRERY_HOST_FLAGS})
target_link_options(orrery-trace PRIVATE ${ORRERY_HOST_FLAGS})

# libFuzzer target for the stream decoder: clang only, so a gcc build is unaffected.
# With gcc: cmake -S fuzz-dir... or simply `ninja trace-fuzz` when CMAKE_C_COMPILER is clang.
if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    add_executable(fuzz_trace_frame ${CMAKE_SOURCE_DIR}/fuzz/fuzz_trace_frame.c
        ${ORRERY_TRACE_DIR}/frame.c ${ORRERY_TRACE_DIR}/stream.c)
    target_include_directories(fuzz_trace_frame PRIVATE ${CMAKE_CURRENT_LIST_DIR}/include ${ORRERY_HAL_INCLUDE})
    target_compile_options(fuzz_trace_frame PRIVATE -fsanitize=fuzzer,address,undefined -g)
    target_link_options(fuzz_trace_frame PRIVATE -fsanitize=fuzzer,address,undefined)
else()
    find_program(ORRERY_CLANG NAMES clang clang-14)
    if(ORRERY_CLANG)
        # Built on demand only (`ninja fuzz_trace_frame`), not by `ninja`.
        set(_fz ${CMAKE_BINARY_DIR}/fuzz_trace_frame)
        add_custom_command(OUTPUT ${_fz}
            COMMAND ${ORRERY_CLANG} -g -O1 -fsanitize=fuzzer,address,undefined
                -I${CMAKE_CURRENT_LIST_DIR}/include -I${ORRERY_HAL_INCLUDE}
                ${CMAKE_SOURCE_DIR}/fuzz/fuzz_trace_frame.c ${ORRERY_TRACE_DIR}/frame.c
                ${ORRERY_TRACE_DIR}/stream.c -o ${_fz}
            DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_trace_frame.c ${ORRERY_TRACE_DIR}/frame.c
                ${ORRERY_TRACE_DIR}/stream.c
            COMMENT "clang libFuzzer target fuzz_trace_frame")
        add_custom_target(fuzz_trace_frame DEPENDS ${_fz})
    endif()
endif()
