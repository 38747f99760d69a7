/* device.h — HAL contract: devices as ops tables, and how their input reaches the kernel. */
#ifndef HAL_DEVICE_H
#define HAL_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include <hal/codes.h> /* HAL_DEVICE_END */

/*
 * A device moves frames, lines or sectors, nothing higher. The platform fills
 * one table per device and registers it with k_device_add() before k_boot().
 * A task opens the device by name (os_device_open) and then:
 *   task -> device: os_device_write() calls ops->write on the calling worker;
 *   device -> task: the platform calls k_post(dev, code, data, len) from any
 *   thread; the kernel queues it (bounded, OS_CHAN_QUEUE_MAX) and delivers it
 *   to the task as an OS_EV_DEVICE event with that code.
 * If k_post() returns OS_EFULL the platform keeps the item and stops reading
 * its source; the kernel calls ops->resume once the queue has room again.
 *
 * Code HAL_DEVICE_END means the device's input ended: the platform posts it
 * once, last. The kernel keeps that fact: the task that opens the device
 * after the one it was delivered to (a restarted server) gets it again, after
 * any input still queued, so end of input is never lost with a task.
 */
typedef struct hal_device_ops {
    const char *name; /* "console", later "net0", "blk0"; unique */
    void *self;       /* the backend's own state, passed back to each op */
    /* Task -> device. Called on a worker thread, without kernel locks; must
     * not block for long. Returns 0 or a negative OS_E* code. */
    int (*write)(void *self, uint32_t code, const void *buf, size_t len);
    /* The input queue has room again after k_post() returned OS_EFULL.
     * Called from any worker, possibly with kernel locks held: it must only
     * schedule the retry (wake the I/O thread), never call k_post itself. */
    void (*resume)(void *self);
} hal_device_ops_t;

#endif
