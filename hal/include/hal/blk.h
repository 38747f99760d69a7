/* blk.h — HAL contract: the block device moves 512-byte sectors, nothing higher. */
#ifndef HAL_BLK_H
#define HAL_BLK_H

/*
 * A block device is a device (device.h) named "blk0". Its codes and the request layout are in
 * codes.h (HAL_BLK_*, hal_blk_req_t, hal_blk_info_t), which servers also see through os.h.
 * Hosted: a file-backed image (--disk FILE[,ro]). Simulated: memory with latency, EIO, torn
 * and lost writes and power cuts. Bare metal: virtio-blk. docs/storage.md.
 */
#include <hal/codes.h>

#endif
