/* iface_none.c — the decoder's interface table when the build has no interface descriptors. */
#include <iface/iface.h>

const iface_t *const *trace_iface_table(void);

const iface_t *const *trace_iface_table(void)
{
    return NULL;
}
