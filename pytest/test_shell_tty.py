"""test_shell_tty.py — the shell at a terminal: Orrery runs on a pseudo-terminal (Python's pty),
as a person's `orrery run` or `orrery qemu` does, and the test types keys. Every test runs on
each platform of conftest's PLATFORMS (hosted; q35 and microvm under QEMU, TCG and KVM where
it can run), chosen with ORRERY_PLATFORMS as for test_shell.py. Piped input is test_shell.py's.
"""
import fcntl
import os
import pty
import re
import struct
import select
import signal
import subprocess
import termios
import threading
import time

import pytest

from conftest import (DEFAULT_TIMEOUT, PLATFORMS, QEMU_TIMEOUT, kvm_skip_reason, ps_rows,
                      qemu_missing, run_cli, selected_platforms)

PROMPT = "orrery> "


class TtySession:
    """One system on a pseudo-terminal: type keys, wait for output, check the terminal's mode."""

    def __init__(self, argv, timeout, cols=80):
        self.timeout = timeout
        self.master, self.slave = pty.openpty()
        self.resize(cols)
        termios.tcsetattr(self.slave, termios.TCSANOW, self._cooked())
        self.mode_before = termios.tcgetattr(self.slave)
        self.stty_before = self.stty()
        env = dict(os.environ, ORRERY_DISK="none", TERM="xterm")
        self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave,
                                     stderr=self.slave, env=env, close_fds=True,
                                     start_new_session=True)
        self._out = bytearray()
        self._mark = 0
        self._cond = threading.Condition()
        self._stop = False
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _cooked(self):
        """A terminal as a shell leaves it: canonical input, echo, signals from keys."""
        mode = termios.tcgetattr(self.slave)
        mode[3] |= termios.ICANON | termios.ECHO | termios.ISIG
        return mode

    def resize(self, cols, rows=24):
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def stty(self):
        return subprocess.run(["stty", "-g"], stdin=self.slave, capture_output=True,
                              text=True, check=True).stdout.strip()

    def _pump(self):
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if not r:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            with self._cond:
                self._out.extend(data)
                self._cond.notify_all()

    @property
    def output(self):
        with self._cond:
            return self._out.decode(errors="replace")

    def expect(self, pattern, timeout=None):
        """Wait for a regex in the output after the last match; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while True:
                m = rx.search(self._out.decode(errors="replace"), self._mark)
                if m:
                    self._mark = m.end()
                    return m
                if self.proc.poll() is not None:
                    raise AssertionError(f"exited {self.proc.returncode} waiting for "
                                         f"/{pattern}/:\n{self.output!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for /{pattern}/:\n{self.output!r}")
                self._cond.wait(min(left, 0.2))

    def type(self, keys):
        os.write(self.master, keys.encode() if isinstance(keys, str) else keys)

    def line(self, text, answer):
        """Type a line and Enter; wait for `answer` (a regex) on a row of its own."""
        self.type(text + "\r")
        return self.expect(r"\r\n" + answer + r"\r\n")

    def wait(self, timeout=None):
        try:
            return self.proc.wait(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"did not exit:\n{self.output!r}")

    def wait_mode_restored(self):
        """The terminal's mode comes back (a guardian restores it after a kill)."""
        deadline = time.monotonic() + self.timeout
        while termios.tcgetattr(self.slave) != self.mode_before:
            assert time.monotonic() < deadline, "the terminal's mode was not restored"
            time.sleep(0.05)

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._stop = True
        self._reader.join(timeout=5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture(params=selected_platforms())
def tty(request, orrery_bin):
    """tty(*args) -> TtySession on the parametrized platform, past its first prompt."""
    platform = request.param
    if platform not in PLATFORMS:
        pytest.skip(f"platform {platform} not available in this tree")
    qemu = platform.startswith("qemu-")
    if qemu and qemu_missing():
        pytest.skip(qemu_missing())
    if platform.endswith("-kvm") and kvm_skip_reason():
        pytest.skip(kvm_skip_reason())
    sessions = []

    def start(*args, cols=80):
        s = TtySession(PLATFORMS[platform](orrery_bin, list(args)),
                       QEMU_TIMEOUT if qemu else DEFAULT_TIMEOUT, cols=cols)
        sessions.append(s)
        s.expect(re.escape(PROMPT))
        return s

    start.platform = platform
    yield start
    for s in sessions:
        s.close()


def test_editing_in_the_middle_runs_the_edited_line(tty):
    s = tty()
    # "echo wrld", three left, "o"; then Home, Ctrl-F past "echo", Delete the space, " "
    s.line("echo wrld\x1b[D\x1b[D\x1b[Do", "world")
    s.line("echo  lost\x01\x06\x06\x06\x06\x1b[3~\x05 found\x17again", "lost again")
    s.line("echo one two\x17\x17three", "three")  # Ctrl-W twice
    s.line("xyz\x15echo after ctrl-u", "after ctrl-u")
    s.type("\x04")
    assert s.wait() == 0


def test_up_recalls_the_previous_line(tty):
    s = tty()
    s.line("echo first", "first")
    s.line("echo second", "second")
    s.line("\x1b[A\x1b[A", "first")  # two up: the line before the last
    s.line("\x1b[A", "first")  # the newest is now "echo first" again
    s.type("\x12seco\r")  # Ctrl-R
    s.expect(r"\r\nsecond\r\n")
    s.line("history", r"\s+1  echo first\r\n\s+2  echo second\r\n\s+3  echo first\r\n"
           r"\s+4  echo second\r\n\s+5  history")
    s.type("\x04")
    assert s.wait() == 0


def test_tab_completes_commands_tasks_and_programs(tty):
    s = tty()
    s.type("ki\tec\t")  # "kill " then the task "echo "
    s.expect(r"kill echo ")
    s.type("\r")
    s.expect(r"killed echo \(task \d+\)")
    s.expect(re.escape(PROMPT))
    s.type("spawn ech\t\x15")  # completes to the program name, then dropped
    s.expect(r"spawn echo ")
    s.type("sh\t\r")  # "sh": only shutdown begins so
    s.expect(r"shutting down")
    assert s.wait() == 0


def test_ctrl_c_cancels_the_line_and_the_os_goes_on(tty):
    s = tty()
    s.type("echo half typ\x03")
    s.expect(r"half typ[^\n]*\^C\r+\n" + re.escape(PROMPT))
    s.line("echo still running", "still running")
    s.type("\x1a")  # Ctrl-Z: a hint, nothing stops
    s.expect(r"no job control")
    s.line("echo after ctrl-z", "after ctrl-z")
    s.type("\x04")
    assert s.wait() == 0


def test_ctrl_c_stops_top(tty):
    s = tty()
    s.type("top\r")
    s.expect(r"top: \d+ tasks")
    s.expect(r"top: \d+ tasks")  # it refreshes
    s.type("\x03")
    s.expect(re.escape(PROMPT))
    s.line("echo back", "back")
    s.type("top -s name\r")
    s.expect(r"sorted by name")
    s.type("q")
    s.expect(re.escape(PROMPT))
    s.line("echo back again", "back again")
    s.type("\x04")
    assert s.wait() == 0


def test_ctrl_d_exits_0_and_the_terminal_is_given_back(tty):
    s = tty()
    assert termios.tcgetattr(s.slave) != s.mode_before  # raw while it runs
    s.line("echo bye", "bye")
    s.type("\x04")
    assert s.wait() == 0
    assert termios.tcgetattr(s.slave) == s.mode_before
    assert s.stty() == s.stty_before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_from_outside_is_a_clean_exit_and_gives_the_terminal_back(tty, signum):
    s = tty()
    s.type("echo half")
    s.expect(r"echo half")
    s.proc.send_signal(signum)
    assert s.wait() == 0
    assert s.stty() == s.stty_before


def test_sigkill_gives_the_terminal_back(tty):
    s = tty()
    s.type("echo half")
    os.killpg(s.proc.pid, signal.SIGKILL)  # orrery and, under QEMU, QEMU too
    s.wait()
    s.wait_mode_restored()
    assert s.stty() == s.stty_before


def test_escape_sequences_from_tasks_are_shown_escaped(tty):
    s = tty()
    s.line(r"echo -e a\e[31mb\x07c", r"a\\x1b\[31mb\\x07c")
    assert "\x1b[31m" not in s.output
    assert "\x07c" not in s.output
    s.type("\x04")
    assert s.wait() == 0


def test_top_once_lists_every_task(tty):
    s = tty()
    s.type("ps\r")
    s.expect(r"RESTARTS\r\n")
    ps = ps_rows(s.expect(r"(?s).*?" + re.escape(PROMPT)).group(0).replace("\r", ""))
    assert {"init", "console", "shell", "echo"} <= set(ps)
    s.type("top -n 1\r")
    s.expect(r"ID\s+NAME\s+STATE\s+CPU%\s+IN/S\s+OUT/S\s+QUEUE\s+RESTARTS\r\n")
    table = s.expect(r"(?s).*?" + re.escape(PROMPT)).group(0)
    names = {row.split()[1] for row in table.replace("\r", "").splitlines()
             if re.match(r"\d+\s+\S+\s+\S+\s+\d+\.\d", row)}
    assert names == set(ps), table
    s.type("\x04")
    assert s.wait() == 0


def test_tab_completes_paths_through_the_fs_server(tty, tmp_path):
    src = tmp_path / "tree"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "guide.txt").write_text("the guide\n")
    (src / "docs" / "gamma.txt").write_text("gamma\n")
    (src / "notes.txt").write_text("notes\n")
    img = tmp_path / "disk.img"
    r = run_cli(["mkfs", str(src), str(img)])
    assert r.returncode == 0, r.stderr
    s = tty("--disk", str(img))
    s.type("cat no\t")  # a file: a space after it
    s.expect(r"cat notes\.txt ")
    s.type("\r")
    s.expect(r"\r\nnotes\r\n")
    s.type("cat d\tgu\t")  # a directory: no space, then into it
    s.expect(r"cat docs/guide\.txt ")
    s.type("\r")
    s.expect(r"\r\nthe guide\r\n")
    s.type("cd do\t\r")
    s.expect(re.escape(PROMPT))
    s.type("cat g\t\t")  # two choices: the second Tab lists them
    s.expect(r"gamma\.txt\s+guide\.txt")
    s.type("\x15\x04")
    assert s.wait() == 0


def test_ctrl_c_stops_ping_with_its_summary(tty):
    manifest = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                            "examples", "network.manifest")
    s = tty("--manifest", manifest, "--net", "user")
    s.type("ping 10.0.2.2 100\r")
    s.expect(r"seq=2 ")
    s.type("\x03")
    s.expect(r"\^C\r\n--- 10\.0\.2\.2 ping statistics ---\r\n\d+ transmitted")
    s.expect(re.escape(PROMPT))
    s.line("echo after ping", "after ping")
    s.type("\x04")
    assert s.wait() == 0


def widest_row(text):
    """The most columns a redraw of the edited row used ("\\r" row "\\x1b[K")."""
    return max(len(m) for m in re.findall(r"\r([^\r\n\x1b]*)\x1b\[K", text))


def test_a_long_line_stays_on_one_row_of_the_terminal(tty):
    s = tty(cols=40)
    word = "abcdefghij" * 6
    s.line(f"echo {word}", word)
    assert widest_row(s.output) == 38  # the prompt, 30 columns of the line, the cursor's
    if tty.platform != "hosted":
        s.type("\x04")
        assert s.wait() == 0
        return  # QEMU's serial line has no resize: the size goes on the command line at boot
    s.type("echo ")
    s.expect(r"orrery> echo \x1b\[K")
    s.resize(60)
    s.proc.send_signal(signal.SIGWINCH)
    s.expect(r"\r\x1b\[K\rorrery> echo \x1b\[K")  # redrawn for the new width
    mark = len(s.output)
    s.line(word, word)
    assert widest_row(s.output[mark:]) == 58
    s.type("\x04")
    assert s.wait() == 0
