/* iface_table.c — the decoder's interface table: every interface of the image (iface/all.h). */
#include <iface/all.h>

const iface_t *const *trace_iface_table(void);

const iface_t *const *trace_iface_table(void)
{
    return iface_all;
}
