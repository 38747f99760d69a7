"""test_baremetal.py — what only the bare-metal image has: the boot line, register dumps,
kernel panics, virtio-rng, the manifest passed through fw_cfg, `orrery qemu` errors and the
boot benchmark. The shell scenarios shared with hosted mode (ps, kill and restart, errors,
task faults, shutdown, signals) run on QEMU through the `boot` fixture in test_shell.py.

Boots build/orrery.elf with `orrery qemu` on q35 (virtio-pci) and microvm (virtio-mmio),
under TCG and under KVM; the KVM variants skip, with the reason, when `orrery qemu --probe`
finds that KVM cannot run here (ORRERY_QEMU_ACCELS=tcg,kvm to choose).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import orrery_path, ps_rows, wait_restarts

QEMU = shutil.which(os.environ.get("ORRERY_QEMU", "qemu-system-x86_64"))
BOOT_LINE = re.compile(r"\[boot\] ready in (\d+) us")
TIMEOUT = 60  # TCG on a busy 2-core CI machine


def test_boot_line_precedes_the_prompt(qemu):
    s = qemu()
    s.run_commands([])
    m = BOOT_LINE.search(s.output)
    assert m, s.output
    assert s.output.index("[boot]") < s.output.index("orrery> ")
    s.send_line("shutdown")
    assert s.wait() == 0


def test_task_fault_dumps_registers_and_the_address(qemu):
    """The shared fault scenarios are in test_shell.py; here, the bare-metal register dump."""
    s = qemu()
    s.run_commands(["crash null"])
    s.wait_prompt(2)  # the restarted shell's
    out = s.output
    assert re.search(r"\[fault\] page fault \(vector 14", out), out
    assert re.search(r"\[fault\] cr2 0x0000000000000000 \(write", out), out
    assert re.search(r"\[shell\] fault: page fault at 0x0", out), out
    wait_restarts(s, "shell", 1)
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
    assert d["baselines"] == {}  # it has no ratios, and says so
    assert d["qemu_microvm_accel"] == "tcg" and d["qemu_q35_accel"] == "tcg"
