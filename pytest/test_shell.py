"""test_shell.py — boot Orrery and drive its shell: ps, kill and restart, errors, faults, input,
shutdown, signals. Every test runs on each platform of the `boot` fixture (conftest.py): hosted
and the bare-metal image under QEMU."""
import re
import signal

import pytest

from conftest import PS_HEADER, ps_rows, wait_restarts

def test_ps_lists_the_four_servers(boot):
    s = boot()
    out = s.run_commands(["ps"])
    assert PS_HEADER.search(out), out
    rows = ps_rows(out)
    for name in ("init", "console", "shell", "echo"):
        assert name in rows, out
    assert rows["init"]["id"] == 1
    s.send_line("shutdown")
    assert s.wait() == 0


def test_kill_echo_is_restarted(boot):
    s = boot()
    s.run_commands([])
    out = s.run_commands(["kill echo"])
    assert re.search(r"killed echo \(task \d+\)", out), out
    wait_restarts(s, "echo", 1)
    assert "restarting" in s.output
    assert "still here" in s.run_commands(["echo still here"])
    s.send_line("shutdown")
    assert s.wait() == 0


def test_unknown_command(boot):
    s = boot()
    out = s.run_commands(["frobnicate"])
    assert "shell: unknown command 'frobnicate' (try 'help')" in out
    assert "hello" in s.run_commands(["echo hello"])
    s.send_line("shutdown")
    assert s.wait() == 0


def test_overlong_line_is_rejected_and_shell_goes_on(boot):
    s = boot()
    out = s.run_commands(["x" * 20000])
    assert "shell: line too long (20000 bytes, limit 1024)" in out
    assert "xxxxxxxxxx" not in out
    assert re.search(r"^after$", s.run_commands(["echo after"]), re.M)
    s.send_line("shutdown")
    assert s.wait() == 0


@pytest.mark.parametrize("how", ["null", "stack", "assert", "panic"])
def test_fault_in_a_task_kills_only_that_task(boot, how):
    s = boot()
    s.run_commands([])
    s.send_line(f"crash {how}")
    s.wait_prompt(2)  # the restarted shell's
    expected = {
        "null": r"\[shell\] fault: page fault at 0x0\b",
        # hosted: the guard page below the thread's stack; bare metal: a double fault
        "stack": r"\[shell\] fault: (page fault at 0x[0-9a-f]+|double fault .*stack overflow)",
        "assert": r"\[shell\] panic: assertion failed: never == 1",
        "panic": r"\[shell\] panic: crash requested",
    }[how]
    assert re.search(expected, s.output), s.output
    assert re.search(r"\[init\] shell \(task \d+\) failed \(status -1[23]\d\); restarting", s.output)
    rows = wait_restarts(s, "shell", 1)
    assert {"init", "console", "echo"} <= set(rows), s.output
    assert "still alive" in s.run_commands(["echo still alive"])
    s.send_line("shutdown 3")
    assert s.wait() == 3


def test_piped_input_is_never_dropped(boot):
    """Lines sent all at once, faster than the shell runs them, all run, in order."""
    s = boot()
    s.run_commands([])
    n = 300
    s.proc.stdin.write("".join(f"echo line {i}\n" for i in range(n)).encode() + b"shutdown\n")
    s.proc.stdin.flush()
    assert s.wait() == 0
    got = [int(m) for m in re.findall(r"^(?:orrery> )?line (\d+)$", s.output, re.M)]
    assert got == list(range(n)), s.output[-2000:]
    assert "dropped" not in s.output


def test_help_and_uptime(boot):
    s = boot()
    out = s.run_commands(["help"])
    for cmd in ("echo", "ps", "uptime", "ipc", "spawn", "kill", "shutdown"):
        assert cmd in out
    for usage in ("\nnet ", "\nnetstat ", "\nping HOST [COUNT] ",
                  "\nfetch http://HOST[:PORT]/PATH "):
        assert usage in out, out
    assert re.search(r"up \d+\.\d+s", s.run_commands(["uptime"]))
    s.send_line("shutdown")
    assert s.wait() == 0


def test_shutdown_exit_status(boot):
    s = boot()
    s.run_commands([])
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "shutting down" in s.output


def test_shutdown_with_status(boot):
    s = boot()
    s.run_commands([])
    s.send_line("shutdown 3")
    assert s.wait() == 3


def test_eof_shuts_down(boot):
    s = boot()
    s.run_commands(["echo bye"])
    s.close_stdin()
    assert s.wait() == 0


def test_sigterm_is_a_clean_exit(boot):
    s = boot()
    s.run_commands([])
    s.signal(signal.SIGTERM)
    assert s.wait() == 0
    assert "SIGTERM" in s.stderr


def test_sigint_is_a_clean_exit(boot):
    s = boot()
    s.run_commands([])
    s.signal(signal.SIGINT)
    assert s.wait() == 0
    assert "SIGINT" in s.stderr
