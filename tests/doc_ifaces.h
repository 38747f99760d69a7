/* doc_ifaces.h — the interface set of docs/writing-a-server.md's example, for its own iface_gen. */
#ifndef DOC_IFACES_H
#define DOC_IFACES_H

#include <iface/counter.h> /* extracted from the doc by scripts/doc-code */

#define DOC_IFACES(X) X(counter, COUNTER_MESSAGES)

#endif
