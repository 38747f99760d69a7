/* klist.h — the one intrusive doubly linked list that every list and queue in core is made of. */
#ifndef K_LIST_H
#define K_LIST_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A k_link_t lives inside the object it links (a task, an object, a message);
 * a k_list_t names the first and last link. Both are NULL-terminated rather
 * than circular so that an all-zero list is empty: K is cleared with memset
 * at boot and teardown, and objects come from calloc. An object is on at most
 * one list per link it has; the caller knows which list that is (membership
 * flags such as k_obj_t.pending say whether it is on it). Used as a queue it
 * is FIFO (k_list_push, k_list_pop); used as a stack, k_list_push_head and
 * k_list_pop. Callers hold the lock that guards the list.
 */
typedef struct k_link {
    struct k_link *next, *prev;
} k_link_t;

typedef struct k_list {
    k_link_t *first, *last;
} k_list_t;

/* The structure of type `type` whose member `member` is the link at `ptr`. */
#define K_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* The entry holding link `l`, or NULL when l is NULL (the end of a walk); l is evaluated once. */
#define K_ENTRY(l, type, member) ((type *)k_link_owner((l), offsetof(type, member)))

static inline void *k_link_owner(k_link_t *l, size_t offset)
{
    return l ? (void *)((char *)l - offset) : NULL;
}

/* for (type *var = first entry; var; var = next entry): var may not be removed in the body. */
#define K_LIST_FOR(var, list, type, member)                                                        \
    for (type *var = K_ENTRY((list)->first, type, member); var;                                    \
         var = K_ENTRY(var->member.next, type, member))

static inline bool k_list_empty(const k_list_t *l)
{
    return l->first == NULL;
}

/* Append n at the tail. */
static inline void k_list_push(k_list_t *l, k_link_t *n)
{
    n->next = NULL;
    n->prev = l->last;
    if (l->last)
        l->last->next = n;
    else
        l->first = n;
    l->last = n;
}

/* Insert n at the head. */
static inline void k_list_push_head(k_list_t *l, k_link_t *n)
{
    n->prev = NULL;
    n->next = l->first;
    if (l->first)
        l->first->prev = n;
    else
        l->last = n;
    l->first = n;
}

/* Unlink n, which is on l. */
static inline void k_list_remove(k_list_t *l, k_link_t *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->last = n->prev;
    n->next = n->prev = NULL;
}

/* Unlink and return the head, or NULL if l is empty. */
static inline k_link_t *k_list_pop(k_list_t *l)
{
    k_link_t *n = l->first;
    if (n)
        k_list_remove(l, n);
    return n;
}

#endif
