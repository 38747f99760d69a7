/* image_select.h — which program table the image boots: the servers' (normal) or the self-test's.
 */
#ifndef BM_IMAGE_SELECT_H
#define BM_IMAGE_SELECT_H

#include <os/os.h>

#ifdef BM_SELFTEST
/* selftest.c: a stand-in init that proves boot, timer, console input and faults. */
extern const os_program_t *const bm_selftest_programs[];
extern const char bm_selftest_manifest[];
#define bm_programs bm_selftest_programs
#define bm_default_manifest bm_selftest_manifest
#else
#include <image.h>
#define bm_programs orrery_programs
#define bm_default_manifest orrery_default_manifest
#endif

#endif
