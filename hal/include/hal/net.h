/* net.h — HAL contract: the network device moves Ethernet frames, nothing higher. */
#ifndef HAL_NET_H
#define HAL_NET_H

/*
 * A network device is a device (device.h) named "net0". Frames are posted to
 * the kernel with HAL_NET_FRAME and written with HAL_NET_FRAME; the TCP/IP
 * server (lwIP) runs above it on every platform. Hosted: libslirp.
 * Simulated: links with loss/delay/reorder. Bare metal: virtio-net.
 * Implemented by the networking issue; declared here so the contract is whole.
 */
enum {
    HAL_NET_MTU = 1514,    /* largest frame, without FCS */
    HAL_NET_FRAME = 1,     /* device <-> task: one Ethernet frame */
    HAL_NET_LINK_UP = 2,   /* device -> task: link came up; data: 6-byte MAC */
    HAL_NET_LINK_DOWN = 3, /* device -> task: link went down */
};

#endif
