/* net.h — HAL contract: the network device moves Ethernet frames, nothing higher. */
#ifndef HAL_NET_H
#define HAL_NET_H

/*
 * A network device is a device (device.h) named "net0". Frames are posted to
 * the kernel with HAL_NET_FRAME and written with HAL_NET_FRAME; the TCP/IP
 * server (lwIP) runs above it on every platform. Hosted: libslirp.
 * Simulated: links with loss/delay/reorder. Bare metal: virtio-net.
 * Hosted: hal-linux/net.c (docs/networking.md); the others follow.
 */
#include <hal/codes.h> /* HAL_NET_*: the codes */

#endif
