"""conftest.py — fixtures that boot Orrery (build/orrery) and drive its shell over stdin/stdout.

The `boot` fixture is parametrized over platforms, so one integration test runs on each:
"hosted" (`orrery run`), and the bare-metal image under QEMU on q35 and microvm with TCG and
with KVM ("qemu-q35-tcg", "qemu-microvm-kvm", ...). Whether KVM can run is what `orrery qemu
--accel kvm --probe` decides (QEMU really starts the image); when it cannot, the KVM variants
are skipped with its reason. Choose with ORRERY_PLATFORMS=hosted,qemu-q35-tcg (default: all)
or ORRERY_QEMU_ACCELS=tcg; the binary with ORRERY_BIN.
"""
import functools
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Boots without --disk attach no disk: never the build's own build/disk.img (tests that use a
# disk pass --disk with a copy; test_fs_shell.py tests the default with ORRERY_DISK unset).
os.environ.setdefault("ORRERY_DISK", "none")
PROMPT = "orrery> "
DEFAULT_TIMEOUT = 30


def orrery_path():
    return os.environ.get("ORRERY_BIN", os.path.join(ROOT, "build", "orrery"))


def probe_kvm(env=None):
    """Why KVM cannot run the image here, as `orrery qemu --accel kvm --probe` says, or None."""
    missing = qemu_missing()
    if missing:
        return missing
    r = subprocess.run([orrery_path(), "qemu", "--accel", "kvm", "--probe"], capture_output=True,
                       text=True, timeout=120, env=env)
    chosen = [line.split(": ", 1)[1] for line in r.stdout.splitlines()
              if line.startswith("chosen: ")]
    if r.returncode == 0 and chosen and chosen[0].startswith("kvm"):
        return None
    rejected = {}  # reason -> the candidates it rejected
    for line in r.stdout.splitlines():
        if line.startswith("rejected: "):
            cand, why = line[len("rejected: "):].split(": ", 1)
            rejected.setdefault(why, []).append(cand)
    return "KVM cannot run here: " + ("; ".join(
        f"{', '.join(cands)}: {why}" for why, cands in rejected.items()) or r.stderr.strip())


@functools.lru_cache(maxsize=None)
def kvm_skip_reason():
    """probe_kvm() once per test session."""
    return probe_kvm()


def qemu_accels():
    wanted = os.environ.get("ORRERY_QEMU_ACCELS")
    if wanted:
        return [a.strip() for a in wanted.split(",") if a.strip()]
    return ["tcg", "kvm"]  # the KVM variants skip, with the reason, where KVM cannot run


def qemu_argv(machine, accel):
    return lambda binary, args: [binary, "qemu", "--machine", machine, "--accel", accel, *args]


# platform name -> function(binary, extra args) -> argv that boots the OS with the shell on stdio
PLATFORMS = {"hosted": lambda binary, args: [binary, "run", *args]}
for _accel in qemu_accels():
    for _machine in ("q35", "microvm"):
        PLATFORMS[f"qemu-{_machine}-{_accel}"] = qemu_argv(_machine, _accel)
QEMU_TIMEOUT = 60  # TCG on a busy 2-core machine


def selected_platforms():
    names = os.environ.get("ORRERY_PLATFORMS")
    if not names:
        return list(PLATFORMS)
    return [n.strip() for n in names.split(",") if n.strip()]


def image_path():
    """The bare-metal image the QEMU tests boot (ORRERY_IMAGE, else next to the binary)."""
    return os.environ.get("ORRERY_IMAGE",
                          os.path.join(os.path.dirname(orrery_path()), "orrery.elf"))


QEMU_CONFIGS = [(m, a) for a in qemu_accels() for m in ("q35", "microvm")]


def qemu_missing():
    """Why the QEMU platforms cannot run here, or None."""
    if shutil.which(os.environ.get("ORRERY_QEMU", "qemu-system-x86_64")) is None:
        return "qemu-system-x86_64 is not installed"
    image = image_path()
    if not os.access(image, os.R_OK):
        return f"{image} is not built"
    return None


class Session:
    """One booted system: send lines to its console, wait for output, collect its exit status."""

    def __init__(self, argv, timeout=DEFAULT_TIMEOUT):
        self.argv = argv
        self.timeout = timeout
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self._out = bytearray()
        self._err = bytearray()
        self._cond = threading.Condition()
        self._mark = 0  # output already returned by run_commands / consumed by expect
        self._eofs = 0  # readers that reached the end of their stream (set before they start)
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _pump(self, stream, buf):
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            with self._cond:
                buf.extend(chunk)
                self._cond.notify_all()
        with self._cond:
            self._eofs += 1
            self._cond.notify_all()

    @property
    def output(self):
        with self._cond:
            return self._out.decode(errors="replace")

    @property
    def stderr(self):
        with self._cond:
            return self._err.decode(errors="replace")

    def _wait_for(self, predicate, timeout, what):
        """Wait until predicate() holds; fail at once when the process has ended without it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while not predicate():
                if self._eofs == len(self._readers) and self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self.argv} exited with status {self.proc.returncode} while waiting "
                        f"for {what}\n--- stdout ---\n{self._out.decode(errors='replace')}\n"
                        f"--- stderr ---\n{self._err.decode(errors='replace')}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out waiting for {what}\n--- stdout ---\n"
                        f"{self._out.decode(errors='replace')}\n--- stderr ---\n"
                        f"{self._err.decode(errors='replace')}")
                self._cond.wait(min(left, 0.2))

    def prompts(self):
        with self._cond:
            return self._out.count(PROMPT.encode())

    def wait_prompt(self, count=1, timeout=None):
        """Wait until at least `count` prompts have been printed in total."""
        self._wait_for(lambda: self._out.count(PROMPT.encode()) >= count, timeout,
                       f"prompt #{count}")

    def send_line(self, line):
        data = line.encode() if isinstance(line, str) else line
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=None):
        """Wait for a regex in the output after the last consumed point; returns the match."""
        rx = re.compile(pattern)
        found = []

        def check():
            m = rx.search(self._out.decode(errors="replace"), self._mark)
            if m:
                found.append(m)
            return bool(m)

        self._wait_for(check, timeout, f"/{pattern}/")
        self._mark = found[0].end()
        return found[0]

    def run_commands(self, lines, timeout=None):
        """Send each line after the shell's prompt; return the output they produced."""
        if self.prompts() == 0:
            self.wait_prompt(1, timeout)
        start = len(self.output)
        for line in lines:
            n = self.prompts()
            self.send_line(line)
            self.wait_prompt(n + 1, timeout)
        out = self.output
        self._mark = len(out)
        return out[start:]

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=None):
        try:
            status = self.proc.wait(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.argv} did not exit\n--- stdout ---\n{self.output}")
        for t in self._readers:
            t.join(timeout=5)
        return status

    @property
    def exit_status(self):
        return self.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


PS_HEADER = re.compile(r"ID\s+NAME\s+STATE\s+HANDLES\s+SENT\s+RECV\s+RESTARTS")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item: the fixtures below read it at teardown."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def report_sessions(request, sessions, tail=6000):
    """After a failed test, the end of what each of its systems printed (pytest shows it as the
    teardown's captured output): a socket that timed out says nothing of the OS's side."""
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed:
        return
    for s in sessions:
        print(f"--- {' '.join(map(str, s.argv))} (exit {s.proc.poll()}) ---")
        print(f"--- stdout, last {tail} characters ---\n{s.output[-tail:]}")
        print(f"--- stderr, last {tail} characters ---\n{s.stderr[-tail:]}")


def ps_rows(text):
    """Parse `ps` rows into {name: {"id", "state", "restarts"}} (last row per name wins)."""
    rows = {}
    for line in text.splitlines():
        f = line.replace("orrery> ", "").split()
        if len(f) == 7 and f[0].isdigit() and f[6].isdigit():
            rows[f[1]] = {"id": int(f[0]), "state": f[2], "restarts": int(f[6])}
    return rows


def wait_restarts(s, name, count):
    """Poll ps until `name` shows `count` restarts (init restarts asynchronously)."""
    deadline = time.monotonic() + s.timeout
    while True:
        rows = ps_rows(s.run_commands(["ps"]))
        if rows.get(name, {}).get("restarts") == count:
            return rows
        assert time.monotonic() < deadline, s.output
        time.sleep(0.05)


@pytest.fixture(scope="session")
def orrery_bin():
    path = orrery_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built (set ORRERY_BIN or run scripts/build)")
    return path


def head_one_line(argv, timeout=60):
    """Run argv, read one line of its output and close the pipe, as `| head -1` does.
    Returns (first line, exit status, stderr)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()
    try:
        status = p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
    return first, status, p.stderr.read()


def run_row(db):
    """The run row of a trace file (read-only), as a dict."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        con.row_factory = sqlite3.Row
        return dict(con.execute("SELECT * FROM run").fetchone())
    finally:
        con.close()


@pytest.fixture(scope="session")
def big(tmp_path_factory):
    """A trace whose `trace show` and verbose replay outputs are far larger than a pipe."""
    db = tmp_path_factory.mktemp("big") / "big.db"
    lines = "".join(f"echo line {i} of a long session\n" for i in range(1500)) + "shutdown\n"
    r = run_cli(["run", "--deterministic", "--trace", str(db)], input=lines)
    assert 0 == r.returncode, r.stderr
    return db


def run_cli(args, input=None, timeout=DEFAULT_TIMEOUT):
    """Run `orrery ARGS` to completion; a CompletedProcess with text output."""
    return subprocess.run([orrery_path(), *args], input=input, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def run(request, orrery_bin):
    """run(*args) -> Session of `orrery run ARGS`; each is killed at the end of the test."""
    sessions = []

    def start(*args):
        s = Session([orrery_bin, "run", *args])
        sessions.append(s)
        return s

    yield start
    report_sessions(request, sessions)
    for s in sessions:
        s.close_stdin()
        s.kill()


@pytest.fixture(params=QEMU_CONFIGS, ids=[f"{m}-{a}" for m, a in QEMU_CONFIGS])
def qemu(request):
    """qemu(*args) -> Session running `orrery qemu --machine M --accel A ARGS`, on q35 and
    microvm with each accelerator; the test module's TIMEOUT (else QEMU_TIMEOUT) per wait."""
    machine, accel = request.param
    if shutil.which(os.environ.get("ORRERY_QEMU", "qemu-system-x86_64")) is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    if not os.access(image_path(), os.R_OK):
        pytest.fail(f"{image_path()} is not built (run scripts/build)")
    if accel == "kvm" and kvm_skip_reason():
        pytest.skip(kvm_skip_reason())
    timeout = getattr(request.module, "TIMEOUT", QEMU_TIMEOUT)
    sessions = []

    def start(*args):
        s = Session([orrery_path(), "qemu", "--machine", machine, "--accel", accel, *args],
                    timeout=timeout)
        sessions.append(s)
        return s

    start.machine = machine
    start.accel = accel
    yield start
    report_sessions(request, sessions)
    for s in sessions:
        s.close_stdin()
        if s.proc.poll() is None:
            s.kill()


@pytest.fixture(params=selected_platforms())
def boot(request, orrery_bin):
    """boot(*args) -> Session with the shell on stdio, on the parametrized platform."""
    platform = request.param
    if platform not in PLATFORMS:
        pytest.skip(f"platform {platform} not available in this tree")
    qemu = platform.startswith("qemu-")
    if qemu and qemu_missing():
        pytest.skip(qemu_missing())
    if platform.endswith("-kvm") and kvm_skip_reason():
        pytest.skip(kvm_skip_reason())
    sessions = []

    def start(*args, timeout=None):
        timeout = timeout or (QEMU_TIMEOUT if qemu else DEFAULT_TIMEOUT)
        s = Session(PLATFORMS[platform](orrery_bin, list(args)), timeout=timeout)
        sessions.append(s)
        return s

    start.platform = platform
    yield start
    report_sessions(request, sessions)
    for s in sessions:
        s.close_stdin()
        if s.proc.poll() is None:
            s.signal(signal.SIGTERM)
            try:
                s.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                s.kill()
