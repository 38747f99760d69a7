/* entropy.c — hal_entropy_fill: RDRAND when the CPU has it, else virtio-rng, else a last resort. */
#include <string.h>

#include <hal/entropy.h>

#include <bm/bm.h>
#include <bm/virtio.h>
#include <bm/x86.h>

/*
 * Under KVM (-cpu host) RDRAND is there. Under TCG QEMU's default CPU model
 * has no RDRAND, so virtio-rng serves (which is how the tests exercise the
 * virtio path). With neither, we mix TSC readings through splitmix64 and say
 * so at boot: fine for hash seeds, not for keys.
 */
static enum { SRC_NONE, SRC_RDRAND, SRC_VIRTIO } src;
static uint64_t mix_state;

static bool rdrand64(uint64_t *v)
{
    for (int i = 0; i < 10; i++) {
        unsigned char ok;
        __asm__ volatile("rdrand %0; setc %1" : "=r"(*v), "=qm"(ok));
        if (ok)
            return true;
    }
    return false;
}

static uint64_t splitmix(void)
{
    uint64_t z = (mix_state += 0x9E3779B97F4A7C15ull ^ rdtsc());
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bm_entropy_init(void)
{
    uint32_t r[4];

    bm_virtio_rng_init();
    cpuid(1, 0, r);
    if (r[2] & (1u << 30))
        src = SRC_RDRAND;
    else if (bm_virtio_rng_present())
        src = SRC_VIRTIO;
    else {
        src = SRC_NONE;
        mix_state = rdtsc();
        bm_printf("[bm] warning: no RDRAND and no virtio-rng; entropy is TSC jitter only\n");
    }
}

const char *bm_entropy_source(void)
{
    return src == SRC_RDRAND ? "rdrand" : src == SRC_VIRTIO ? "virtio-rng" : "tsc";
}

void hal_entropy_fill(void *buf, size_t len)
{
    uint8_t *p = buf;
    uint64_t v;

    if (src == SRC_VIRTIO) {
        size_t n = bm_virtio_rng_read(p, len);
        p += n;
        len -= n;
    }
    while (len > 0) {
        size_t k = len < 8 ? len : 8;
        if (!(src == SRC_RDRAND && rdrand64(&v)))
            v = splitmix();
        memcpy(p, &v, k);
        p += k;
        len -= k;
    }
}
