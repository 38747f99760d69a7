"""test_baremetal.py — the shell scenarios, faults and boot figures on the bare-metal image under QEMU.

Boots build/orrery.elf with `orrery qemu` on q35 (virtio-pci) and microvm (virtio-mmio),
under TCG always and under KVM too when /dev/kvm works (ORRERY_QEMU_ACCELS=tcg,kvm to choose).
Uses conftest.Session to drive the console. test_shell.py's scenarios also pass on QEMU when
conftest.PLATFORMS has entries such as
    "qemu-q35": lambda b, a: [b, "qemu", "--machine", "q35", "--accel", "tcg", *a]
(ORRERY_PLATFORMS=hosted,qemu-q35,qemu-microvm); the ones here that duplicate them can then go.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import Session, orrery_path

QEMU = shutil.which(os.environ.get("ORRERY_QEMU", "qemu-system-x86_64"))
BOOT_LINE = re.compile(r"\[boot\] ready in (\d+) us")
PS_HEADER = re.compile(r"ID\s+NAME\s+STATE\s+HANDLES\s+SENT\s+RECV\s+RESTARTS")
TIMEOUT = 60  # TCG on a busy 2-core CI machine


def image_path():
    return os.environ.get("ORRERY_IMAGE",
                          os.path.join(os.path.dirname(orrery_path()), "orrery.elf"))


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def accels():
    wanted = os.environ.get("ORRERY_QEMU_ACCELS")
    if wanted:
        return [a.strip() for a in wanted.split(",") if a.strip()]
    return ["tcg", "kvm"] if kvm_usable() else ["tcg"]


CONFIGS = [(m, a) for a in accels() for m in ("q35", "microvm")]


@pytest.fixture(params=CONFIGS, ids=[f"{m}-{a}" for m, a in CONFIGS])
def qemu(request):
    """qemu(*args) -> Session running `orrery qemu --machine M --accel A ARGS`."""
    machine, accel = request.param
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    if not os.access(image_path(), os.R_OK):
        pytest.fail(f"{image_path()} is not built (run scripts/build)")
    if accel == "kvm" and not kvm_usable():
        pytest.skip("/dev/kvm is not usable")
    sessions = []

    def start(*args):
        s = Session([orrery_path(), "qemu", "--machine", machine, "--accel", accel, *args],
                    timeout=TIMEOUT)
        sessions.append(s)
        return s

    start.machine = machine
    start.accel = accel
    yield start
    for s in sessions:
        s.close_stdin()
        if s.proc.poll() is None:
            s.kill()


def ps_rows(text):
    rows = {}
    for line in text.splitlines():
        f = line.replace("orrery> ", "").split()
        if len(f) == 7 and f[0].isdigit() and f[6].isdigit():
            rows[f[1]] = {"id": int(f[0]), "state": f[2], "restarts": int(f[6])}
    return rows


def wait_restarts(s, name, count):
    deadline = time.monotonic() + TIMEOUT
    while True:
        rows = ps_rows(s.run_commands(["ps"]))
        if rows.get(name, {}).get("restarts") == count:
            return rows
        assert time.monotonic() < deadline, s.output
        time.sleep(0.05)


def test_boot_line_and_ps_lists_the_four_servers(qemu):
    s = qemu()
    out = s.run_commands(["ps"])
    m = BOOT_LINE.search(s.output)
    assert m, s.output
    assert s.output.index("[boot]") < s.output.index("orrery> ")  # the line precedes the prompt
    assert PS_HEADER.search(out), out
    rows = ps_rows(out)
    for name in ("init", "console", "shell", "echo"):
        assert name in rows, out
    assert rows["init"]["id"] == 1
    s.send_line("shutdown")
    assert s.wait() == 0


def test_kill_echo_is_restarted(qemu):
    s = qemu()
    out = s.run_commands(["kill echo"])
    assert re.search(r"killed echo \(task \d+\)", out), out
    wait_restarts(s, "echo", 1)
    assert "restarting" in s.output
    assert "still here" in s.run_commands(["echo still here"])
    s.send_line("shutdown")
    assert s.wait() == 0


def test_unknown_command_and_long_line(qemu):
    s = qemu()
    out = s.run_commands(["frobnicate"])
    assert "shell: unknown command 'frobnicate' (try 'help')" in out
    out = s.run_commands(["x" * 20000])
    assert "shell: line too long (20000 bytes, limit 1024)" in out, out[-500:]
    assert "after" in s.run_commands(["echo after"])
    s.send_line("shutdown")
    assert s.wait() == 0


def test_shutdown_status_is_the_exit_status(qemu):
    s = qemu()
    s.run_commands([])
    s.send_line("shutdown 7")
    assert s.wait() == 7
    assert "shutting down" in s.output


def test_sigterm_shuts_the_os_down_cleanly(qemu):
    s = qemu()
    s.run_commands([])
    s.signal(signal.SIGTERM)
    assert s.wait() == 0
    assert "SIGTERM received, shutting down" in s.stderr
    assert "shutting down" in s.output  # the shell's own shutdown, after end of input


def test_end_of_input_shuts_down(qemu):
    s = qemu()
    s.run_commands(["echo hi"])
    s.close_stdin()
    assert s.wait() == 0


@pytest.mark.parametrize("how", ["null", "assert"])
def test_fault_in_a_task_kills_only_that_task(qemu, how):
    s = qemu()
    s.run_commands([f"crash {how}"])
    s.wait_prompt(2)  # the restarted shell's
    out = s.output
    if how == "null":
        assert re.search(r"\[fault\] page fault \(vector 14", out), out
        assert re.search(r"\[fault\] cr2 0x0000000000000000 \(write", out), out
        assert re.search(r"\[shell\] fault: page fault at 0x0", out), out
    else:
        assert re.search(r"\[shell\].*assertion failed", out), out
    rows = wait_restarts(s, "shell", 1)
    assert "echo" in rows
    assert "still alive" in s.run_commands(["echo still alive"])
    s.send_line("shutdown 3")
    assert s.wait() == 3


def test_fault_in_the_kernel_panics_with_status_125(qemu):
    s = qemu("--append", "kernelfault")
    assert s.wait() == 125
    assert "[panic] page fault at 0x0 (write" in s.output
    assert "in the kernel" in s.output


def test_kernel_stack_overflow_hits_the_guard_page(qemu):
    s = qemu("--append", "stackoverflow")
    assert s.wait() == 125
    assert re.search(r"\[panic\] .*stack overflow", s.output), s.output


def test_virtio_rng_end_to_end(qemu):
    s = qemu("--append", "rngtest")
    m = s.expect(r"\[bm\] rngtest: (\d+) bytes from virtio-rng at (\S+ \S+) \((virtio-\w+)\), "
                 r"(\d+) non-zero: [0-9a-f]+\.\.\.; interrupts: (\d+)")
    assert int(m.group(1)) == 32
    assert int(m.group(4)) >= 16  # random bytes, a few may be zero
    assert m.group(3) == ("virtio-pci" if qemu.machine == "q35" else "virtio-mmio")
    assert int(m.group(5)) >= 1  # the completion interrupt: MSI-X (pci) or IOAPIC line (mmio)
    s.send_line("shutdown")
    assert s.wait() == 0


def test_manifest_is_passed_to_the_image(qemu):
    with tempfile.NamedTemporaryFile("w", suffix=".manifest", delete=False) as f:
        # The default manifest without echo: ps must not list it.
        f.write("program console restart=always\nprogram shell restart=always reach=console,init\n")
        path = f.name
    try:
        check = subprocess.run([orrery_path(), "run", "--manifest", path], input="shutdown\n",
                               capture_output=True, text=True, timeout=TIMEOUT)
        if check.returncode != 0:
            pytest.skip(f"manifest syntax differs: {check.stderr.strip()}")
        s = qemu("--manifest", path)
        rows = ps_rows(s.run_commands(["ps"]))
        assert "shell" in rows and "echo" not in rows, s.output
        s.send_line("shutdown")
        assert s.wait() == 0
    finally:
        os.unlink(path)


def test_invalid_manifest_is_rejected_before_qemu_starts(tmp_path):
    bad = tmp_path / "bad.manifest"
    bad.write_text("program nosuchprogram restart=always\n")
    r = subprocess.run([orrery_path(), "qemu", "--manifest", str(bad)], input="",
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2
    assert f"{bad}:1:" in r.stderr


def test_missing_image_or_qemu_is_a_clear_error():
    env = dict(os.environ, ORRERY_IMAGE="/nonexistent/orrery.elf")
    r = subprocess.run([orrery_path(), "qemu"], input="", capture_output=True, text=True,
                       env=env, timeout=TIMEOUT)
    assert r.returncode == 2 and "no bare-metal image" in r.stderr
    env = dict(os.environ, ORRERY_QEMU="/nonexistent/qemu")
    r = subprocess.run([orrery_path(), "qemu"], input="", capture_output=True, text=True,
                       env=env, timeout=TIMEOUT)
    assert r.returncode == 2 and "ORRERY_QEMU" in r.stderr


def test_bench_boot_json():
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    r = subprocess.run([orrery_path(), "bench", "boot", "--json", "--runs", "1", "--accel",
                        "tcg"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ("os_boot_us", "qemu_microvm_ms", "qemu_q35_ms", "hosted_ms"):
        assert d[key] > 0, d
    assert d["qemu_microvm_accel"] == "tcg" and d["qemu_q35_accel"] == "tcg"
