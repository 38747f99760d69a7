/* test_list.c — core's one intrusive list (core/klist.h): queue and stack order, removal anywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../core/klist.h"

typedef struct item {
    int value;
    k_link_t link; /* not first: K_CONTAINER must subtract the offset */
} item_t;

/* The values on l, first to last, into out; also checks the back links. Returns the count. */
static size_t values(const k_list_t *l, int *out, size_t max)
{
    size_t n = 0;
    const k_link_t *prev = NULL;
    K_LIST_FOR(it, l, item_t, link)
    {
        assert_ptr_equal(prev, it->link.prev);
        if (n < max)
            out[n] = it->value;
        n++;
        prev = &it->link;
    }
    assert_ptr_equal(prev, l->last);
    return n;
}

static void zeroed_list_is_empty(void **state)
{
    k_list_t l = {0};
    assert_true(k_list_empty(&l));
    assert_null(k_list_pop(&l));
    int v[1];
    assert_int_equal(0, values(&l, v, 1));
}

static void push_and_pop_is_fifo(void **state)
{
    k_list_t l = {0};
    item_t it[3] = {{.value = 1}, {.value = 2}, {.value = 3}};
    for (int i = 0; i < 3; i++)
        k_list_push(&l, &it[i].link);
    int v[3];
    assert_int_equal(3, values(&l, v, 3));
    assert_int_equal(1, v[0]);
    assert_int_equal(3, v[2]);
    for (int i = 0; i < 3; i++) {
        k_link_t *n = k_list_pop(&l);
        assert_non_null(n);
        assert_int_equal(i + 1, K_CONTAINER(n, item_t, link)->value);
        assert_null(n->next);
        assert_null(n->prev);
    }
    assert_true(k_list_empty(&l));
    assert_null(l.last);
}

static void push_head_and_pop_is_lifo(void **state)
{
    k_list_t l = {0};
    item_t it[3] = {{.value = 1}, {.value = 2}, {.value = 3}};
    for (int i = 0; i < 3; i++)
        k_list_push_head(&l, &it[i].link);
    int v[3];
    assert_int_equal(3, values(&l, v, 3));
    assert_int_equal(3, v[0]);
    assert_int_equal(2, v[1]);
    assert_int_equal(1, v[2]);
    assert_int_equal(3, K_ENTRY(k_list_pop(&l), item_t, link)->value);
    assert_int_equal(2, K_ENTRY(k_list_pop(&l), item_t, link)->value);
    assert_int_equal(1, K_ENTRY(k_list_pop(&l), item_t, link)->value);
    assert_null(K_ENTRY(k_list_pop(&l), item_t, link));
}

static void remove_first_middle_last(void **state)
{
    k_list_t l = {0};
    item_t it[5];
    for (int i = 0; i < 5; i++) {
        it[i].value = i;
        k_list_push(&l, &it[i].link);
    }
    k_list_remove(&l, &it[2].link); /* middle */
    k_list_remove(&l, &it[0].link); /* first */
    k_list_remove(&l, &it[4].link); /* last */
    int v[5];
    assert_int_equal(2, values(&l, v, 5));
    assert_int_equal(1, v[0]);
    assert_int_equal(3, v[1]);
    assert_ptr_equal(&it[1].link, l.first);
    assert_ptr_equal(&it[3].link, l.last);
    /* A removed link can go on again, at either end. */
    k_list_push(&l, &it[2].link);
    k_list_push_head(&l, &it[0].link);
    assert_int_equal(4, values(&l, v, 5));
    assert_int_equal(0, v[0]);
    assert_int_equal(2, v[3]);
    k_list_remove(&l, &it[1].link);
    k_list_remove(&l, &it[3].link);
    k_list_remove(&l, &it[0].link);
    k_list_remove(&l, &it[2].link);
    assert_true(k_list_empty(&l));
    assert_null(l.last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zeroed_list_is_empty),
        cmocka_unit_test(push_and_pop_is_fifo),
        cmocka_unit_test(push_head_and_pop_is_lifo),
        cmocka_unit_test(remove_first_middle_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
