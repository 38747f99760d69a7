/* blk.h — HAL contract: the block device moves 512-byte sectors, nothing higher. */
#ifndef HAL_BLK_H
#define HAL_BLK_H

#include <stdint.h>

/*
 * A block device is a device (device.h) named "blk0". A task writes a request
 * (hal_blk_req_t followed, for writes, by the sectors); the device posts the
 * completion (hal_blk_req_t with status, followed, for reads, by the sectors).
 * Hosted: a file-backed image. Simulated: memory with latency, EIO, torn and
 * lost writes. Bare metal: virtio-blk. Implemented by the storage issue.
 */
enum {
    HAL_BLK_SECTOR = 512,
    HAL_BLK_READ = 1,  /* task -> device, then device -> task completion */
    HAL_BLK_WRITE = 2, /* task -> device, then device -> task completion */
    HAL_BLK_FLUSH = 3, /* task -> device, then device -> task completion */
};

typedef struct hal_blk_req {
    uint64_t id;      /* chosen by the task, echoed in the completion */
    uint64_t sector;  /* first sector */
    uint32_t count;   /* sectors; at most 4096 / HAL_BLK_SECTOR - 1 per message */
    int32_t status;   /* completion: 0 or a negative OS_E* code */
} hal_blk_req_t;

#endif
