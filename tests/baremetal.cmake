# baremetal.cmake — host tests of the bare-metal image's freestanding C subset (hal-baremetal/libc).
set(BM_LIBC_DIR ${CMAKE_SOURCE_DIR}/hal-baremetal/libc)
# The same sources as the image, under their bm_ names (no BM_STD_NAMES: no clash with glibc).
orrery_add_test(test_libc
    SOURCES test_libc.c ${BM_LIBC_DIR}/string.c ${BM_LIBC_DIR}/stdlib.c ${BM_LIBC_DIR}/ctype.c
        ${BM_LIBC_DIR}/format.c ${BM_LIBC_DIR}/heap.c
    LABELS baremetal)
target_include_directories(test_libc PRIVATE ${BM_LIBC_DIR})
# -Wformat would compare our format strings against glibc's printf rules: same rules, keep it.
target_compile_options(test_libc PRIVATE -fno-builtin)
