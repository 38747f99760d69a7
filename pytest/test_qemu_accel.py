"""test_qemu_accel.py — how `orrery qemu` chooses its accelerator, its boot deadline, and the
harness failing fast when a booted process dies.

There is no KVM here, so KVM hosts are imitated: ORRERY_KVM_DEVICE (the testing hook of the
/dev/kvm gate) names a regular file that "opens", and ORRERY_QEMU names a stand-in from
pytest/fake_qemu/ that fails the way a real host does, or runs the real QEMU under TCG:
- kvm-cpu-host-aborts: aborts like QEMU 7.2 setting MSR 0x10a with -cpu host; the default CPU
  model "runs under KVM" (real QEMU, -accel tcg);
- kvm-fails: any -accel kvm fails; TCG is the real QEMU;
- kvm-ignores-probe: KVM "works" (real QEMU, -accel tcg) but `-append probe` is dropped, like
  an image older than the probe word;
- never-boots: the real QEMU with its vCPU stopped (-S): no boot line ever.
"""
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from conftest import QEMU_TIMEOUT, Session, orrery_path, probe_kvm, qemu_missing

FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_qemu")
MSR_ABORT = "qemu-system-x86_64: error: failed to set MSR 0x10a"
KVM_FAILS = "qemu-system-x86_64: -accel kvm: failed to initialize kvm"

needs_qemu = pytest.mark.skipif(qemu_missing() is not None, reason=qemu_missing() or "")


@pytest.fixture
def fake_kvm(tmp_path):
    """env(fake) -> an environment where /dev/kvm "opens" and QEMU is pytest/fake_qemu/<fake>."""
    device = tmp_path / "kvm"
    device.write_text("")

    def env(fake):
        return dict(os.environ, ORRERY_KVM_DEVICE=str(device),
                    ORRERY_QEMU=os.path.join(FAKES, fake))
    return env


def orrery(args, env=None, input="", timeout=QEMU_TIMEOUT):
    return subprocess.run([orrery_path(), *args], input=input, capture_output=True, text=True,
                          env=env, timeout=timeout)


def probe_lines(stdout):
    """`orrery qemu --probe` -> (chosen, {candidate: why rejected})."""
    chosen, rejected = None, {}
    for line in stdout.splitlines():
        if line.startswith("chosen: "):
            chosen = line[len("chosen: "):]
        elif line.startswith("rejected: "):
            cand, why = line[len("rejected: "):].split(": ", 1)
            rejected[cand] = why
    return chosen, rejected


def test_session_fails_at_once_when_the_process_has_died():
    timeout = 300
    s = Session([sys.executable, "-c",
                 "import sys; print('bye'); sys.stderr.write('oops\\n'); sys.exit(3)"],
                timeout=timeout)
    start = time.monotonic()
    with pytest.raises(AssertionError) as e:
        s.wait_prompt()
    assert time.monotonic() - start < timeout  # it did not wait the timeout out
    msg = str(e.value)
    assert "exited with status 3 while waiting for prompt #1" in msg
    assert "bye" in msg and "oops" in msg


def test_session_still_sees_output_printed_just_before_exit():
    s = Session([sys.executable, "-c", "print('orrery> ')"], timeout=60)
    s.wait_prompt()
    assert s.wait() == 0


@needs_qemu
def test_probe_without_a_kvm_device_chooses_tcg_and_says_why(tmp_path):
    env = dict(os.environ, ORRERY_KVM_DEVICE=str(tmp_path / "no-such-kvm"))
    r = orrery(["qemu", "--probe"], env=env)
    assert r.returncode == 0, r.stderr
    chosen, rejected = probe_lines(r.stdout)
    assert chosen == "tcg default"
    assert rejected["kvm host"].startswith(f"cannot open {tmp_path}/no-such-kvm: ")
    assert r.stderr == ""  # no KVM device: TCG is what anyone expects, nothing to say


@needs_qemu
def test_probe_finds_the_cpu_model_that_works(fake_kvm):
    r = orrery(["qemu", "--probe"], env=fake_kvm("kvm-cpu-host-aborts"))
    assert r.returncode == 0, r.stderr
    chosen, rejected = probe_lines(r.stdout)
    assert chosen == "kvm default"
    assert list(rejected) == ["kvm host"]
    assert rejected["kvm host"].startswith(f"QEMU: {MSR_ABORT}")
    assert "killed by signal 6" in rejected["kvm host"]


@needs_qemu
def test_the_probe_word_makes_the_image_exit_at_once():
    r = orrery(["qemu", "--machine", "microvm", "--accel", "tcg", "--append", "probe"],
               input="echo never sent\n")
    assert r.returncode == 0, r.stderr
    assert "[boot]" not in r.stdout and "never sent" not in r.stdout


@needs_qemu
def test_probe_takes_the_boot_line_of_an_image_without_the_probe_word(fake_kvm):
    r = orrery(["qemu", "--probe"], env=fake_kvm("kvm-ignores-probe"))
    assert r.returncode == 0, r.stderr
    assert probe_lines(r.stdout) == ("kvm host", {})


@needs_qemu
def test_auto_boots_with_the_default_cpu_model_when_cpu_host_aborts(fake_kvm):
    r = orrery(["qemu", "--machine", "microvm", "--verbose"], env=fake_kvm("kvm-cpu-host-aborts"),
               input="echo hi\nshutdown 5\n")
    assert r.returncode == 5, r.stderr
    assert "[boot] ready" in r.stdout and "hi" in r.stdout
    assert (f"orrery: qemu: KVM with -cpu host fails here (QEMU: {MSR_ABORT}" in r.stderr)
    assert "; using KVM with QEMU's default CPU model\n" in r.stderr
    command = [line for line in r.stderr.splitlines() if "-kernel" in line]
    assert len(command) == 1 and " -accel kvm " in command[0], r.stderr
    assert " -cpu " not in command[0]


@needs_qemu
def test_auto_falls_back_to_tcg_when_kvm_cannot_run(fake_kvm):
    r = orrery(["qemu", "--machine", "microvm", "--verbose"], env=fake_kvm("kvm-fails"),
               input="shutdown\n")
    assert r.returncode == 0, r.stderr
    assert f"orrery: qemu: KVM cannot run here (QEMU: {KVM_FAILS}" in r.stderr
    assert "); using TCG\n" in r.stderr
    command = [line for line in r.stderr.splitlines() if "-kernel" in line]
    assert len(command) == 1 and " -accel tcg " in command[0], r.stderr


@needs_qemu
def test_accel_kvm_fails_fast_when_kvm_cannot_run(fake_kvm):
    r = orrery(["qemu", "--accel", "kvm"], env=fake_kvm("kvm-fails"), input="shutdown\n")
    assert r.returncode == 2
    assert r.stdout == ""  # no machine was booted
    line, = r.stderr.splitlines()
    assert line.startswith(f"orrery: qemu: --accel kvm: KVM cannot run here (QEMU: {KVM_FAILS}")
    assert line.endswith("try --accel tcg or auto")
    r = orrery(["qemu", "--accel", "kvm", "--probe"], env=fake_kvm("kvm-fails"))
    assert r.returncode == 2
    assert probe_lines(r.stdout)[0] == "none"


@needs_qemu
def test_conftest_skips_kvm_variants_by_what_orrery_decides(fake_kvm):
    assert probe_kvm(fake_kvm("kvm-cpu-host-aborts")) is None
    why = probe_kvm(fake_kvm("kvm-fails"))
    assert why.startswith("KVM cannot run here: kvm host, kvm default: QEMU: " + KVM_FAILS), why


@needs_qemu
def test_bench_boot_skips_rows_that_cannot_run(fake_kvm):
    r = orrery(["bench", "boot", "--json", "--runs", "1"], env=fake_kvm("kvm-fails"),
               timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    kvm = [row for row in d["results"] if row["accel"] == "kvm"]
    tcg = [row for row in d["results"] if row["accel"] == "tcg"]
    assert {row["machine"] for row in kvm} == {"microvm", "q35"}
    for row in kvm:
        assert KVM_FAILS in row["skipped"] and row["qemu_ms"] is None and row["ok_runs"] == 0
    for row in tcg:
        assert "skipped" not in row and row["ok_runs"] == 1 and row["qemu_ms"] > 0
    assert d["qemu_microvm_accel"] == "tcg" and d["qemu_q35_accel"] == "tcg"
    for key in ("os_boot_us", "qemu_microvm_ms", "qemu_q35_ms", "hosted_ms"):
        assert d[key] > 0, d
    r = orrery(["bench", "boot", "--runs", "1", "--accel", "kvm"], env=fake_kvm("kvm-fails"))
    assert r.returncode == 2
    assert f"--accel kvm: KVM cannot run here (QEMU: {KVM_FAILS}" in r.stderr


@needs_qemu
def test_bench_boot_runs_kvm_with_the_cpu_model_that_works(fake_kvm):
    r = orrery(["bench", "boot", "--json", "--runs", "1", "--accel", "kvm"],
               env=fake_kvm("kvm-cpu-host-aborts"), timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [(row["accel"], row["cpu"], row["ok_runs"]) for row in d["results"]] == [
        ("kvm", "default", 1), ("kvm", "default", 1)]


@needs_qemu
def test_no_boot_line_stops_qemu_at_the_deadline():
    env = dict(os.environ, ORRERY_QEMU=os.path.join(FAKES, "never-boots"))
    r = orrery(["qemu", "--accel", "tcg", "--boot-timeout", "1", "--disk", "none"], env=env,
               input="ps\n")
    assert r.returncode == 2
    line, = r.stderr.splitlines()
    assert line.startswith('orrery: qemu: no boot line ("[boot] ready") from ')
    assert "within 1 s; QEMU stopped (--boot-timeout SECONDS waits longer)" in line


@needs_qemu
def test_an_image_that_is_not_orrerys_hits_the_deadline(tmp_path):
    """Real QEMU given a file that is no kernel sits in firmware forever; the deadline ends it."""
    image = tmp_path / "not-a-kernel"
    image.write_text("this is not a kernel\n" * 4000)  # QEMU starts it; it never boots
    env = dict(os.environ, ORRERY_IMAGE=str(image))
    r = orrery(["qemu", "--machine", "microvm", "--accel", "tcg", "--boot-timeout=1"], env=env)
    assert r.returncode == 2
    assert f'orrery: qemu: no boot line ("[boot] ready") from {image} within 1 s' in r.stderr


def run_on_terminal(argv, env, send_at_prompt=None, timeout=QEMU_TIMEOUT):
    """Run argv on a new pseudo-terminal; (exit status, everything it wrote there)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: the process and its children closed the terminal
                    break
                if not data:
                    break
                out += data
                if send_at_prompt and b"orrery> " in out:
                    os.write(fd, send_at_prompt)
                    send_at_prompt = None
        else:
            os.kill(pid, 9)
            raise AssertionError(f"{argv} did not end on its terminal:\n{out!r}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


@needs_qemu
def test_no_boot_line_stops_qemu_at_the_deadline_on_a_terminal():
    env = dict(os.environ, ORRERY_QEMU=os.path.join(FAKES, "never-boots"))
    status, out = run_on_terminal([orrery_path(), "qemu", "--accel", "tcg", "--boot-timeout",
                                   "1"], env)
    assert status == 2, out
    assert 'orrery: qemu: no boot line ("[boot] ready") from ' in out
    assert "within 1 s; QEMU stopped" in out


@needs_qemu
def test_terminal_boot_watches_the_console_copy():
    """On a terminal QEMU owns the console; the boot line reaches us through its logfile copy."""
    status, out = run_on_terminal([orrery_path(), "qemu", "--machine", "microvm", "--accel",
                                   "tcg", "--verbose"], dict(os.environ),
                                  send_at_prompt=b"shutdown 6\r")
    assert status == 6, out
    assert "-chardev stdio,id=console,logfile=/dev/fd/" in out
    assert "[boot] ready" in out


def test_boot_timeout_must_be_a_number_of_seconds():
    for bad in ("abc", "-1", "86401", ""):
        r = orrery(["qemu", "--boot-timeout", bad])
        assert r.returncode == 2
        assert "--boot-timeout wants seconds, 0..86400" in r.stderr, r.stderr
