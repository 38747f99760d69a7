# docs.cmake — the code in the docs builds: docs/writing-a-server.md's counter server is
# extracted (scripts/doc-code), compiled and run on the simulator (test_doc_server).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(_doc ${CMAKE_SOURCE_DIR}/docs/writing-a-server.md)
set(_out ${CMAKE_BINARY_DIR}/doc-code)
add_custom_command(
    OUTPUT ${_out}/servers/counter/counter.c ${_out}/servers/include/iface/counter.h
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/doc-code ${_doc} ${_out}
    DEPENDS ${_doc} ${CMAKE_SOURCE_DIR}/scripts/doc-code
    COMMENT "Extracting the example server of docs/writing-a-server.md")
add_custom_target(doc_code DEPENDS ${_out}/servers/counter/counter.c
    ${_out}/servers/include/iface/counter.h)

orrery_iface_ids(doc_iface_gen ${_out}/gen/iface_ids.h doc_ifaces.h DOC_IFACES
    INCLUDES ${CMAKE_CURRENT_LIST_DIR} ${_out}/servers/include)
add_dependencies(doc_iface_gen doc_code)

orrery_add_test(test_doc_server SOURCES test_doc_server.c ${_out}/servers/counter/counter.c
    LIBS orrery_servers orrery_sim orrery_core orrery_hal_host LABELS servers)
# The doc's own iface_ids.h comes first, then the image's (for image.h's programs.h).
target_include_directories(test_doc_server BEFORE PRIVATE ${_out}/gen ${_out}/servers/include
    ${CMAKE_CURRENT_LIST_DIR})
add_dependencies(test_doc_server doc_iface_gen_ids)
