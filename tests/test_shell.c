/* test_shell.c — the shell: its pure parser, and whole sessions through the simulator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <iface/console.h>
#include <iface/init_client.h>
#include <image.h>
#include <shell_parse.h>
#include <sim/sim.h>

/* ---- the parser ----------------------------------------------------------------------- */

static shell_kind_t parse(const char *line, shell_cmd_t *c)
{
    return shell_parse(line, strlen(line), c);
}

static void test_parse_commands(void **state)
{
    shell_cmd_t c;
    assert_int_equal(SHELL_EMPTY, parse("", &c));
    assert_int_equal(SHELL_EMPTY, parse("   \t ", &c));
    assert_int_equal(SHELL_HELP, parse("help", &c));
    assert_int_equal(SHELL_PS, parse("  ps  ", &c));
    assert_int_equal(SHELL_UPTIME, parse("uptime", &c));
    assert_int_equal(SHELL_IPC, parse("ipc", &c));
    assert_int_equal(SHELL_ECHO, parse("echo  hello   big world  ", &c));
    assert_string_equal("hello   big world", c.arg);
    assert_int_equal(SHELL_ECHO, parse("echo", &c));
    assert_string_equal("", c.arg);
    assert_int_equal(SHELL_SPAWN, parse("spawn echo", &c));
    assert_string_equal("echo", c.arg);
    assert_int_equal(SHELL_KILL, parse("kill 4", &c));
    assert_string_equal("4", c.arg);
    assert_int_equal(SHELL_SHUTDOWN, parse("shutdown", &c));
    assert_int_equal(0, c.status);
    assert_int_equal(SHELL_SHUTDOWN, parse("shutdown 119", &c));
    assert_int_equal(119, c.status);
    assert_int_equal(OS_EXIT_USER_MAX, c.status);
    assert_int_equal(SHELL_CRASH, parse("crash null", &c));
    assert_int_equal(SHELL_CRASH_NULL, c.crash);
    assert_int_equal(SHELL_CRASH, parse("crash panic", &c));
    assert_int_equal(SHELL_CRASH_PANIC, c.crash);
    assert_int_equal(SHELL_CRASH, parse("crash assert", &c));
    assert_int_equal(SHELL_CRASH_ASSERT, c.crash);
    assert_int_equal(SHELL_CRASH, parse("crash stack", &c));
    assert_int_equal(SHELL_CRASH_STACK, c.crash);
}

static void test_parse_terminal_commands(void **state)
{
    shell_cmd_t c;
    assert_int_equal(SHELL_ECHO, parse("echo -e a\\e[31mb\\x07\\\\ \\q", &c));
    assert_string_equal("a\x1b[31mb\x07\\ \\q", c.arg);
    assert_int_equal(SHELL_ECHO, parse("echo -e", &c));
    assert_string_equal("", c.arg);
    assert_int_equal(SHELL_ECHO, parse("echo -eh \\e", &c)); /* not the option */
    assert_string_equal("-eh \\e", c.arg);
    assert_int_equal(SHELL_ECHO, parse("echo -e \\x00x", &c)); /* a NUL never */
    assert_string_equal("\\x00x", c.arg);

    assert_int_equal(SHELL_TOP, parse("top", &c));
    assert_int_equal(0, c.count);
    assert_string_equal("cpu", c.arg);
    assert_int_equal(SHELL_TOP, parse("top -s name -n 3", &c));
    assert_int_equal(3, c.count);
    assert_string_equal("name", c.arg);
    assert_int_equal(SHELL_ERROR, parse("top -n 0", &c));
    assert_string_equal("shell: top: COUNT must be 1..1000, not '0'", c.error);
    assert_int_equal(SHELL_ERROR, parse("top -s size", &c));
    assert_string_equal(
        "shell: top: unknown sort key 'size' (cpu, in, out, queue, restarts, name, id)", c.error);
    assert_int_equal(SHELL_ERROR, parse("top -n", &c));
    assert_string_equal("shell: usage: top [-n COUNT] [-s KEY]", c.error);

    assert_int_equal(SHELL_HISTORY, parse("history", &c));
    assert_int_equal(0, c.count);
    assert_int_equal(SHELL_HISTORY, parse("history 5", &c));
    assert_int_equal(5, c.count);
    assert_int_equal(SHELL_ERROR, parse("history x", &c));
    assert_int_equal(SHELL_CLEAR, parse("clear", &c));
    assert_int_equal(SHELL_ERROR, parse("clear now", &c));

    /* the names completion offers */
    assert_string_equal("help", shell_command_name(0));
    size_t n = 0;
    while (shell_command_name(n))
        n++;
    assert_int_equal(31, n);
    assert_int_equal(3, shell_top_key("queue"));
    assert_int_equal(-1, shell_top_key("q"));
}

static void test_parse_file_commands(void **state)
{
    shell_cmd_t c;
    assert_int_equal(SHELL_LS, parse("ls", &c));
    assert_string_equal("", c.arg);
    assert_false(c.long_list);
    assert_int_equal(SHELL_LS, parse("ls -l /etc", &c));
    assert_string_equal("/etc", c.arg);
    assert_true(c.long_list);
    assert_int_equal(SHELL_CAT, parse("cat  a/b.txt ", &c));
    assert_string_equal("a/b.txt", c.arg);
    /* write and append keep the text after FILE verbatim */
    assert_int_equal(SHELL_WRITE, parse("write f  hello   world", &c));
    assert_string_equal("f", c.arg);
    assert_string_equal("hello   world", c.arg2);
    assert_int_equal(SHELL_WRITE, parse("write f", &c));
    assert_string_equal("", c.arg2);
    assert_int_equal(SHELL_APPEND, parse("append f x", &c));
    assert_string_equal("x", c.arg2);
    assert_int_equal(SHELL_MV, parse("mv a b", &c));
    assert_string_equal("a", c.arg);
    assert_string_equal("b", c.arg2);
    assert_int_equal(SHELL_LN, parse("ln -s ../t l", &c));
    assert_string_equal("../t", c.arg);
    assert_string_equal("l", c.arg2);
    assert_int_equal(SHELL_CD, parse("cd", &c));
    assert_string_equal("/", c.arg);
    assert_int_equal(SHELL_MKDIR, parse("mkdir d", &c));
    assert_int_equal(SHELL_RM, parse("rm d", &c));
    assert_int_equal(SHELL_RMDIR, parse("rmdir d", &c));
    assert_int_equal(SHELL_STAT, parse("stat d", &c));
    assert_int_equal(SHELL_DF, parse("df", &c));
    assert_int_equal(SHELL_SYNC, parse("sync", &c));
    assert_int_equal(SHELL_MOUNT, parse("mount", &c));
    assert_int_equal(SHELL_PWD, parse("pwd", &c));

    assert_int_equal(SHELL_ERROR, parse("ls -a", &c));
    assert_string_equal("shell: ls: unknown option '-a' (usage: ls [-l] [PATH])", c.error);
    assert_int_equal(SHELL_ERROR, parse("ls a b", &c));
    assert_string_equal("shell: usage: ls [-l] [PATH]", c.error);
    assert_int_equal(SHELL_ERROR, parse("cat", &c));
    assert_string_equal("shell: usage: cat FILE", c.error);
    assert_int_equal(SHELL_ERROR, parse("append f", &c));
    assert_string_equal("shell: usage: append FILE TEXT", c.error);
    assert_int_equal(SHELL_ERROR, parse("mv a", &c));
    assert_string_equal("shell: usage: mv FROM TO", c.error);
    assert_int_equal(SHELL_ERROR, parse("ln a b", &c));
    assert_string_equal("shell: ln: only symbolic links (ln -s TARGET PATH): the file system "
                        "interface has no hard links",
                        c.error);
    assert_int_equal(SHELL_ERROR, parse("ln -s a", &c));
    assert_string_equal("shell: usage: ln -s TARGET PATH", c.error);
    assert_int_equal(SHELL_ERROR, parse("rm a b", &c));
    assert_string_equal("shell: usage: rm PATH", c.error);
    assert_int_equal(SHELL_ERROR, parse("df x", &c));
    assert_string_equal("shell: df takes no arguments", c.error);
}

static void test_parse_errors(void **state)
{
    shell_cmd_t c;
    assert_int_equal(SHELL_ERROR, parse("foo bar", &c));
    assert_string_equal("shell: unknown command 'foo' (try 'help')", c.error);
    assert_int_equal(SHELL_ERROR, parse("ps -a", &c));
    assert_string_equal("shell: ps takes no arguments", c.error);
    assert_int_equal(SHELL_ERROR, parse("spawn", &c));
    assert_string_equal("shell: usage: spawn NAME", c.error);
    assert_int_equal(SHELL_ERROR, parse("kill a b", &c));
    assert_string_equal("shell: usage: kill NAME|ID", c.error);
    /* a status is exact on every platform or refused: 0..119; the OS's own are 120..126 */
    assert_int_equal(SHELL_ERROR, parse("shutdown soon", &c));
    assert_string_equal("shell: shutdown: STATUS must be 0..119, not 'soon'", c.error);
    assert_int_equal(SHELL_ERROR, parse("shutdown 99999999999", &c));
    assert_int_equal(SHELL_ERROR, parse("shutdown -1", &c));
    assert_string_equal("shell: shutdown: STATUS must be 0..119, not '-1'", c.error);
    assert_int_equal(SHELL_ERROR, parse("shutdown 120", &c));
    assert_int_equal(SHELL_ERROR, parse("shutdown 126", &c));
    assert_int_equal(SHELL_ERROR, parse("shutdown 256", &c));
    assert_string_equal("shell: shutdown: STATUS must be 0..119, not '256'", c.error);
    assert_int_equal(SHELL_ERROR, parse("shutdown 1 2", &c));
    assert_string_equal("shell: usage: shutdown [STATUS]", c.error);
    assert_int_equal(SHELL_ERROR, parse("crash softly", &c));
    assert_string_equal("shell: usage: crash null|panic|assert|stack", c.error);
    assert_int_equal(SHELL_ERROR, shell_parse("ps\0x", 4, &c));

    char *big = malloc(20000);
    memset(big, 'x', 20000);
    assert_int_equal(SHELL_ERROR, shell_parse(big, 20000, &c));
    assert_string_equal("shell: line too long (20000 bytes, limit 1024)", c.error);
    assert_int_equal(SHELL_ERROR, shell_parse(big, 1000, &c)); /* long unknown name: cut */
    assert_true(strlen(c.error) < 80);
    free(big);
}

static void test_help_lists_every_command(void **state)
{
    char buf[4096];
    size_t n = shell_help(buf, sizeof buf);
    assert_int_equal(strlen(buf), n);
    const char *cmds[] = {"help",
                          "echo [-e] WORDS",
                          "ps",
                          "uptime",
                          "ipc",
                          "top [-n COUNT] [-s KEY]",
                          "history [N]",
                          "clear",
                          "net",
                          "netstat",
                          "ping HOST [COUNT]",
                          "fetch http://HOST[:PORT]/PATH",
                          "ls [-l] [PATH]",
                          "cat FILE",
                          "write FILE [TEXT]",
                          "append FILE TEXT",
                          "mkdir PATH",
                          "rm PATH",
                          "rmdir PATH",
                          "mv FROM TO",
                          "ln -s TARGET PATH",
                          "stat PATH",
                          "df",
                          "sync",
                          "mount",
                          "cd [PATH]",
                          "pwd",
                          "spawn NAME",
                          "kill NAME|ID",
                          "shutdown [STATUS]",
                          "crash null|panic|assert|stack"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        assert_non_null(strstr(buf, cmds[i]));
    int lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    assert_int_equal(31, lines);
    assert_int_equal(n, shell_help(NULL, 0)); /* measuring works */
}

/* ---- sessions through the simulator --------------------------------------------------- */

static int run(const char *input, bool eof)
{
    sim_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.programs = orrery_programs;
    cfg.init_arg = orrery_default_manifest;
    cfg.init_arg_len = strlen(orrery_default_manifest);
    cfg.seed = 42;
    cfg.console_input = input;
    cfg.console_eof = eof;
    assert_int_equal(0, sim_boot(&cfg));
    return sim_run(1000000);
}

static const char *out(void)
{
    return sim_console_output(NULL);
}

static void expect(const char *s)
{
    if (!strstr(out(), s))
        fail_msg("missing '%s' in output:\n%s", s, out());
}

/* The RESTARTS column of the last ps row for name, or -1. */
static int restarts_of(const char *name)
{
    int r = -1;
    for (const char *p = out(); (p = strchr(p, '\n')); p++) {
        unsigned id, h, rs;
        unsigned long long s, rc;
        char n[32], st[16];
        if (sscanf(p + 1, "%u %31s %15s %u %llu %llu %u", &id, n, st, &h, &s, &rc, &rs) == 7 &&
            strcmp(n, name) == 0)
            r = (int)rs;
    }
    return r;
}

static void test_session_ps_errors_kill_and_shutdown(void **state)
{
    char *input = malloc(21000);
    strcpy(input, "ps\nfoo\n");
    size_t at = strlen(input);
    memset(input + at, 'x', 20000);
    strcpy(input + at + 20000, "\nkill echo\nps\nshutdown 5\n");
    assert_int_equal(5, run(input, true));
    expect("orrery> ID   NAME         STATE    HANDLES  SENT     RECV     RESTARTS\n");
    expect("\n1    init ");
    expect("\n2    console ");
    expect("\n3    shell ");
    expect("\n4    echo ");
    expect("\n7    httpd ");
    expect("shell: unknown command 'foo' (try 'help')\n");
    expect("shell: line too long (20000 bytes, limit 1024)\n");
    expect("[init] echo (task 4) killed; restarting (restart 1 of 5)\n");
    expect("killed echo (task 4)\n");
    assert_int_equal(1, restarts_of("echo"));
    assert_int_equal(0, restarts_of("shell"));
    expect("shutting down\n");
    assert_null(strstr(out(), "xxxx"));
    assert_int_equal(0, sim_teardown());
    free(input);
}

static void test_session_echo_spawn_kill_errors_uptime_ipc(void **state)
{
    assert_int_equal(0, run("echo hello   world\nspawn echo\nspawn nosuch\nkill nosuch\nkill 1\n"
                            "uptime\nipc\nhelp\n",
                            true));
    expect("orrery> hello   world\norrery> ");
    expect("shell: spawn echo: already exists\n");
    expect("shell: spawn nosuch: no such entry\n");
    expect("shell: kill nosuch: no such task\n");
    expect("shell: kill init: permission denied\n");
    expect("orrery> up 0.");
    expect("CHAN  PEER  OWNER            QUEUED  PEER OWNER       QUEUED\n");
    expect("total: 7 channels, "); /* tcpip idles without net0; httpd waits for tcp */
    expect("shutting down\n");     /* end of input */
    assert_int_equal(0, sim_teardown());
}

static void test_session_echo_after_echo_restart(void **state)
{
    assert_int_equal(0, run("kill echo\necho again\n", true));
    expect("killed echo (task 4)\n");
    expect("orrery> again\n");
    assert_int_equal(0, sim_teardown());
}

static void test_session_crash_restarts_the_shell(void **state)
{
    assert_int_equal(3, run("crash panic\ncrash assert\nps\nshutdown 3\n", false));
    expect("shell (task 3) failed");
    expect("restarting (restart 2 of 10)");
    assert_int_equal(2, restarts_of("shell"));
    assert_int_equal(0, sim_teardown());
}

static void test_session_eof_is_shutdown_0(void **state)
{
    assert_int_equal(0, run("", true));
    expect("orrery> shutting down\n");
    assert_int_equal(0, sim_teardown());
}

/* A fake console that feeds the shell garbage of every message type, then real lines. */
static struct {
    char out[4096];
    size_t len;
} F;

static void fake_start(os_ctx_t *ctx)
{
    assert_int_equal(0, init_register_iface(ctx, 1, &console_iface));
}

static void fake_event(os_ctx_t *ctx, const os_event_t *ev)
{
    init_new_client_t nc;
    console_write_t w;
    console_flush_t f;
    if (ev->kind != OS_EV_MESSAGE)
        return;
    if (init_new_client_decode(ev, &nc) == 0) {
        uint8_t junk[64];
        memset(junk, 0xff, sizeof junk);
        for (uint32_t type = 0; type <= 9; type++) {
            os_send(ctx, nc.chan, type, junk, 2, NULL, 0);
            os_send(ctx, nc.chan, type, junk, sizeof junk, NULL, 0);
        }
        console_line_t l = {"echo ok"};
        console_line_send(ctx, nc.chan, &l);
        console_overlong_t o = {5000};
        console_overlong_send(ctx, nc.chan, &o);
        strcpy(l.text, "shutdown 4");
        console_line_send(ctx, nc.chan, &l);
    } else if (console_write_decode(ev, &w) == 0) {
        if (F.len + w.data_len < sizeof F.out) {
            memcpy(F.out + F.len, w.data, w.data_len);
            F.len += w.data_len;
        }
    } else if (console_flush_decode(ev, &f) == 0) {
        console_flushed_t d = {f.token};
        console_flushed_send(ctx, ev->handle, &d);
    }
}

static const os_program_t fake = {"console", 0, fake_start, fake_event};
static const os_program_t *const fake_image[] = {&orrery_init, &fake, &orrery_shell, &orrery_echo,
                                                 NULL};

static void test_shell_survives_garbage_from_its_console(void **state)
{
    sim_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.programs = fake_image;
    cfg.init_arg = orrery_default_manifest;
    cfg.init_arg_len = strlen(orrery_default_manifest);
    cfg.seed = 5;
    memset(&F, 0, sizeof F);
    assert_int_equal(0, sim_boot(&cfg));
    assert_int_equal(4, sim_run(1000000));
    F.out[F.len] = 0;
    if (!strstr(F.out, "orrery> ok\norrery> shell: line too long (5000 bytes, limit 1024)\n"
                       "orrery> shutting down\n"))
        fail_msg("shell output:\n%s", F.out);
    assert_int_equal(0, sim_teardown());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_commands),
        cmocka_unit_test(test_parse_terminal_commands),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_help_lists_every_command),
        cmocka_unit_test(test_parse_file_commands),
        cmocka_unit_test(test_session_ps_errors_kill_and_shutdown),
        cmocka_unit_test(test_session_echo_spawn_kill_errors_uptime_ipc),
        cmocka_unit_test(test_session_echo_after_echo_restart),
        cmocka_unit_test(test_session_crash_restarts_the_shell),
        cmocka_unit_test(test_session_eof_is_shutdown_0),
        cmocka_unit_test(test_shell_survives_garbage_from_its_console),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
