"""test_endings.py — how a run ends: end of input when no task can act on it, a console killed
mid-input, exit statuses, the manifest size limit, line and worker limits. Tests that boot run on
every platform of the `boot` fixture (conftest.py): hosted and the image under QEMU."""
import re

import pytest

from conftest import run_cli

INPUT_ENDED = 120  # OS_EXIT_INPUT_ENDED in core/include/os/os.h
MANIFEST_MAX = 65536  # OS_BOOT_ARG_MAX
WORKERS_MAX = 64  # K_WORKERS_MAX


def pipe(s, lines):
    """Send every line at once, then end the input (as `printf ... | orrery run`)."""
    s.proc.stdin.write("".join(line + "\n" for line in lines).encode())
    s.proc.stdin.flush()
    s.close_stdin()


def manifest(tmp_path, text, name="m.manifest"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_killing_the_console_mid_input_loses_no_line(boot):
    lines = [f"echo line{i}" for i in range(1, 41)] + ["kill console"]
    lines += [f"echo line{i}" for i in range(41, 201)]
    s = boot()
    pipe(s, lines)
    assert s.wait() == 0, s.output
    got = [int(n) for n in re.findall(r"^(?:orrery> )*line(\d+)$", s.output, re.M)]
    assert got == list(range(1, 201)), s.output
    assert re.search(r"console \(task \d+\) killed; restarting", s.output), s.output


ENDINGS = {
    # manifest text -> why init says nobody can act on the input
    "empty": ("", "no console program in the manifest"),
    "no console": ("program shell reach=console,init\nprogram echo\n",
                   "no console program in the manifest"),
    "no shell": ("program console\nprogram echo\n",
                 "no program in the manifest may reach console and init"),
    "shell may not shut down": (
        "program console\nprogram shell restart=always reach=console,echo\nprogram echo\n",
        "shell may not shut down: no 'init' in its reach (manifest line 2)"),
}


@pytest.mark.parametrize("case", list(ENDINGS))
def test_end_of_input_when_no_task_can_act(boot, tmp_path, case):
    text, why = ENDINGS[case]
    s = boot("--manifest", manifest(tmp_path, text))
    pipe(s, ["echo one", "ps"])
    assert s.wait() == INPUT_ENDED, s.output
    assert (f"[init] console input ended and no task can act on it ({why}); "
            f"shutting down with status {INPUT_ENDED}\n") in s.output


def test_end_of_input_after_the_shell_gave_up(boot, tmp_path):
    m = manifest(tmp_path, "program console restart=always\n"
                 "program shell restart=always max-restarts=2 reach=console,echo,init\n"
                 "program echo\n")
    s = boot("--manifest", m)
    pipe(s, ["crash panic", "crash panic", "crash panic", "echo never run"])
    assert s.wait() == INPUT_ENDED, s.output
    assert "not restarting (max-restarts 2 reached)" in s.output
    assert ("console input ended and no task can act on it (shell gave up after 2 restarts); "
            f"shutting down with status {INPUT_ENDED}\n") in s.output


def test_end_of_input_after_the_console_gave_up(boot, tmp_path):
    m = manifest(tmp_path, "program console restart=always max-restarts=1\n"
                 "program shell restart=always reach=console,echo,init\nprogram echo\n")
    s = boot("--manifest", m)
    pipe(s, ["kill console", "kill console", "echo never run"])
    assert s.wait() == INPUT_ENDED, s.output
    assert "console input ended and no task can act on it (console gave up after 1 restart)" \
        in s.output


@pytest.mark.parametrize("status", ["256", "-1", "126", "120", "soon"])
def test_shutdown_status_out_of_range_is_refused(boot, status):
    s = boot()
    out = s.run_commands([f"shutdown {status}"])
    assert f"shell: shutdown: STATUS must be 0..119, not '{status}'" in out
    s.send_line("shutdown 119")
    assert s.wait() == 119, s.output


def test_shutdown_status_is_exact(boot):
    s = boot()
    s.run_commands([])
    s.send_line("shutdown 7")
    assert s.wait() == 7


def test_overlong_line_in_piped_input_loses_nothing_after_it(boot):
    lines = ["echo before", "y" * 5000] + [f"echo after{i}" for i in range(30)]
    s = boot()
    pipe(s, lines)
    assert s.wait() == 0, s.output
    assert "shell: line too long (5000 bytes, limit 1024)" in s.output
    assert "yyyy" not in s.output
    got = re.findall(r"^(?:orrery> )*(before|after\d+)$", s.output, re.M)
    assert got == ["before"] + [f"after{i}" for i in range(30)], s.output


def padded_manifest(size):
    """A valid manifest of exactly `size` bytes: the default programs, then comment lines."""
    head = ("program console restart=always\n"
            "program shell restart=always reach=console,echo,init\nprogram echo\n")
    body = head
    while len(body) + 64 <= size:
        body += "#" * 63 + "\n"
    body += "#" * (size - len(body) - 1) + "\n"
    assert len(body) == size
    return body


def test_manifest_at_the_size_limit_boots(boot, tmp_path):
    m = manifest(tmp_path, padded_manifest(MANIFEST_MAX))
    s = boot("--manifest", m)
    s.run_commands([])
    s.send_line("shutdown 3")
    assert s.wait() == 3, s.output + s.stderr


def test_manifest_over_the_size_limit_is_refused(boot, tmp_path):
    m = manifest(tmp_path, padded_manifest(MANIFEST_MAX + 1))
    s = boot("--manifest", m)
    assert s.wait() == 2
    # the line named is the last one: it holds the first byte past the limit
    last = padded_manifest(MANIFEST_MAX + 1).count("\n")
    assert (f"orrery: {m}:{last}: manifest is {MANIFEST_MAX + 1} bytes, over the limit of "
            f"{MANIFEST_MAX}\n") in s.stderr, s.stderr


def test_workers_range_is_stated_and_checked():
    r = run_cli(["run", "--help"])
    assert r.returncode == 0
    assert f"1..{WORKERS_MAX}" in r.stdout and f"at most {WORKERS_MAX}" in r.stdout
    r = run_cli(["run", "--workers", str(WORKERS_MAX + 1)])
    assert r.returncode == 2
    assert (f"run: --workers wants a number from 1 to {WORKERS_MAX}, not '{WORKERS_MAX + 1}'"
            in r.stderr)
    r = run_cli(["run", "--workers", str(WORKERS_MAX)], input="shutdown 4\n")
    assert r.returncode == 4, r.stderr
