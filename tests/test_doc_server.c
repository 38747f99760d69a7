/* test_doc_server.c — the counter server of docs/writing-a-server.md, built from the doc's own
 * text, booted with init and a client on the simulator: totals, garbage, survival. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <doc_ifaces.h>
#include <iface/init_client.h>
#include <iface_ids.h> /* this test's: generated from doc_ifaces.h */
#include <image.h>
#include <sim/sim.h>

IFACE_DEFINE(counter, COUNTER_MESSAGES)

extern const os_program_t orrery_counter; /* the doc's servers/counter/counter.c */

static struct {
    int64_t totals[4];
    int ntotals;
    int32_t error_status;
    uint32_t error_type;
    int nerrors;
    bool closed;
} G;

static void client_start(os_ctx_t *ctx)
{
    assert_int_equal(0, init_connect_iface(ctx, 1, &counter_iface));
}

static void client_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_connected_t c;
    counter_total_t t;
    counter_error_t e;
    if (ev->kind == OS_EV_PEER_CLOSED)
        G.closed = true;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_connected_decode(ev, &c) == 0) {
        counter_add_t a = {1, 5};
        assert_int_equal(0, counter_add_send(ctx, c.chan, &a));
        uint8_t junk[3] = {1, 2, 3};
        os_send(ctx, c.chan, counter_msg_add, junk, sizeof junk, NULL, 0); /* short */
        a = (counter_add_t){2, -2};
        assert_int_equal(0, counter_add_send(ctx, c.chan, &a));
    } else if (counter_total_decode(ev, &t) == 0 && G.ntotals < 4) {
        G.totals[G.ntotals++] = t.value;
    } else if (counter_error_decode(ev, &e) == 0) {
        G.error_type = e.type;
        G.error_status = e.status;
        G.nerrors++;
    }
}

static const os_program_t client = {"client", 0, client_start, client_event};
static const os_program_t *const image[] = {&orrery_init, &orrery_counter, &client, NULL};

static void test_counter_from_the_doc(void **state)
{
    const char *manifest = "program counter restart=on-failure\nprogram client reach=counter\n";
    sim_config_t cfg = {
        .programs = image, .init_arg = manifest, .init_arg_len = strlen(manifest), .seed = 1};
    assert_int_equal(0, sim_boot(&cfg));
    sim_run(100000);
    assert_int_equal(2, G.ntotals);
    assert_int_equal(5, G.totals[0]);
    assert_int_equal(3, G.totals[1]);
    assert_int_equal(1, G.nerrors);
    assert_int_equal(counter_msg_add, G.error_type);
    assert_int_equal(OS_EPROTO, G.error_status);
    assert_false(G.closed);
    assert_int_equal(0, sim_teardown()); /* and nothing leaked */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_from_the_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
