"""test_qemu_blk.py — blk0 on the bare-metal image: the virtio-blk driver under `orrery qemu
--disk FILE[,ro]` on q35 (virtio-pci) and microvm (virtio-mmio), and the option's errors.

No server uses blk0 yet, so the image's own self-test (`--append blktest`, in
hal-baremetal/virtio/blk.c) drives the driver: it writes a pattern to the first sectors with
several requests in flight, flushes, reads them back, fills the request slots to meet
OS_EFULL, and times single-sector reads. The real peer is the image file: once QEMU has
exited the test reads the pattern from it (and finds the rest untouched). KVM variants skip,
with the reason, when `orrery qemu --probe` finds that KVM cannot run here.
"""
import os
import re
import shutil
import stat

import pytest

from conftest import orrery_path, run_cli

TIMEOUT = 90  # TCG on a busy 2-core machine
SECTOR = 512
TEST_SECTORS = 64  # hal-baremetal/virtio/blk.c: TEST_SECTORS, in requests of 4 sectors
SLOTS = 32  # requests in flight at most
FILL = 0xEE  # what the image holds before the test writes


def pattern(s):
    """Sector s as the self-test writes it: bytes (s + i) & 0xff under a NUL-ended label."""
    p = bytearray((s + i) & 0xFF for i in range(SECTOR))
    label = f"orrery blktest sector {s}".encode() + b"\0"
    p[: len(label)] = label
    return bytes(p)


def make_image(tmp_path, sectors=2048):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes([FILL]) * (sectors * SECTOR))
    return path


def blktest(s):
    """The self-test's result lines as a dict (a trailing note is read up to its line's end)."""
    r = {}
    m = s.expect(r"\[bm\] blktest: virtio-blk at (\S+ \S+) \((virtio-\w+)\), (\d+) sectors, "
                 r"(read-only|read-write)")
    r["transport"], r["sectors"], r["mode"] = m.group(2), int(m.group(3)), m.group(4)
    m = s.expect(r"\[bm\] blktest: (\d) of 4 bad requests refused with OS_EINVAL\r?\n")
    r["einval"] = int(m.group(1))
    m = s.expect(r"\[bm\] blktest: wrote 64 sectors in 16 requests: status (-?\d+)([^\r\n]*)\r?\n")
    r["write_status"], r["write_note"] = int(m.group(1)), m.group(2)
    m = s.expect(r"\[bm\] blktest: flush: (-?\d+), status (-?\d+)\r?\n")
    r["flush"] = (int(m.group(1)), int(m.group(2)))
    m = s.expect(r"\[bm\] blktest: read back 64 sectors: (\d+) differ from the pattern, "
                 r"status (-?\d+)([^\r\n]*)\r?\n")
    r["differ"], r["read_status"], r["read_note"] = int(m.group(1)), int(m.group(2)), m.group(3)
    m = s.expect(r"\[bm\] blktest: queue full after (\d+) requests in flight: (-?\d+)([^\r\n]*)\r?\n")
    r["full_at"], r["full_note"] = int(m.group(1)), m.group(3)
    m = s.expect(r"\[bm\] blktest: (\d+) requests completed of (\d+) sent \((\d+) with a bad "
                 r"status, (\d+) held and retried\); (\d+) reads in (\d+) us: (\d+) requests per "
                 r"second\r?\n")
    r["completed"], r["sent"], r["bad"], r["held"] = (int(m.group(i)) for i in range(1, 5))
    r["rps"] = int(m.group(7))
    m = s.expect(r"\[bm\] blk0: (\d+) reads, (\d+) writes, (\d+) flushes, (\d+) errors, (\d+) "
                 r"writes refused \(read-only\), (\d+) refused \(queue full\), held (\d+) times "
                 r"for a full kernel queue, interrupts (\d+)\r?\n")
    (r["reads"], r["writes"], r["flushes"], r["errors"], r["refused_ro"], r["refused_full"],
     r["held_count"], r["irqs"]) = (int(m.group(i)) for i in range(1, 9))
    return r


def test_blktest_writes_the_pattern_into_the_image_file(qemu, tmp_path):
    img = make_image(tmp_path)
    s = qemu("--disk", str(img), "--append", "blktest", "--verbose")
    r = blktest(s)
    assert r["transport"] == ("virtio-pci" if qemu.machine == "q35" else "virtio-mmio")
    assert r["sectors"] == 2048 and r["mode"] == "read-write"
    assert r["einval"] == 4
    assert r["write_status"] == 0 and r["flush"] == (0, 0) and r["differ"] == 0
    assert r["read_status"] == 0
    assert r["full_at"] == SLOTS and "OS_EFULL" in r["full_note"]
    # every completion came, including those the (test's) kernel queue refused at first
    assert r["completed"] == r["sent"] and r["bad"] == 0 and r["held"] > 0
    assert r["writes"] == 16 and r["flushes"] == 1 and r["errors"] == 0
    assert r["reads"] == r["sent"] - 17 and r["refused_ro"] == 0 and r["refused_full"] >= 1
    assert r["irqs"] >= 1  # completions by interrupt: MSI-X (pci) or the IOAPIC line (mmio)
    print(f"blktest {qemu.machine}-{qemu.accel}: {r['rps']} requests per second")
    # the QEMU command line carries the drive and the transport's device
    dev = "virtio-blk-pci" if qemu.machine == "q35" else "virtio-blk-device"
    assert f"file={img},format=raw,if=none,id=blk0" in s.stderr, s.stderr
    assert f"{dev},drive=blk0" in s.stderr and "readonly=on" not in s.stderr
    s.wait_prompt()
    s.send_line("shutdown")
    assert s.wait() == 0
    data = img.read_bytes()
    assert len(data) == 2048 * SECTOR
    for n in range(TEST_SECTORS):
        assert data[n * SECTOR:(n + 1) * SECTOR] == pattern(n), f"sector {n}"
    assert data[TEST_SECTORS * SECTOR:] == bytes([FILL]) * ((2048 - TEST_SECTORS) * SECTOR)


def test_blktest_read_only_disk_refuses_writes(qemu, tmp_path):
    img = make_image(tmp_path, sectors=128)
    before = img.read_bytes()
    s = qemu("--disk", f"{img},ro", "--append", "blktest", "--verbose")
    r = blktest(s)
    assert r["sectors"] == 128 and r["mode"] == "read-only"
    assert r["write_status"] < 0 and "OS_EACCES: read-only" in r["write_note"]
    assert r["refused_ro"] == 16 and r["writes"] == 0
    assert r["differ"] == TEST_SECTORS  # reads work: they find the file's bytes, not the pattern
    assert r["flush"] == (0, 0)
    assert "readonly=on" in s.stderr
    s.wait_prompt()
    s.send_line("shutdown")
    assert s.wait() == 0
    assert img.read_bytes() == before


def test_blktest_device_read_error_is_os_eio(qemu, tmp_path, monkeypatch):
    """QEMU's blkdebug driver fails every read with EIO: the device answers VIRTIO_BLK_S_IOERR
    and each read completes with OS_EIO (writes and the flush still succeed)."""
    img = make_image(tmp_path)
    conf = tmp_path / "blkdebug.conf"
    conf.write_text('[inject-error]\nevent = "read_aio"\niotype = "read"\nerrno = "5"\n')
    real = shutil.which(os.environ.get("ORRERY_QEMU", "qemu-system-x86_64"))
    wrapper = tmp_path / "qemu-blkdebug"
    # The same command line with the drive behind blkdebug.
    wrapper.write_text(
        "#!/usr/bin/python3\nimport os, sys\n"
        f"args = [a.replace('file={img},', 'file=blkdebug:{conf}:{img},') for a in sys.argv[1:]]\n"
        f"os.execv({real!r}, [{real!r}] + args)\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("ORRERY_QEMU", str(wrapper))
    s = qemu("--disk", str(img), "--append", "blktest")
    r = blktest(s)
    assert r["write_status"] == 0 and r["flush"] == (0, 0)
    assert r["read_status"] < 0 and "OS_EIO" in r["read_note"] and r["differ"] == TEST_SECTORS
    assert r["completed"] == r["sent"] and r["bad"] == r["sent"] - 17
    assert r["errors"] == r["sent"] - 17 and r["reads"] == 0 and r["writes"] == 16
    s.wait_prompt()
    s.send_line("shutdown")
    assert s.wait() == 0
    data = img.read_bytes()
    assert data[:SECTOR] == pattern(0)  # the writes reached the file


def test_blktest_without_a_disk_finds_no_blk0(qemu):
    s = qemu("--append", "blktest", "--disk", "none")
    s.expect(r"\[bm\] blktest: no virtio-blk device")
    s.wait_prompt()
    s.send_line("shutdown")
    assert s.wait() == 0


def test_bad_disk_values_exit_2(tmp_path):
    (tmp_path / "odd.img").write_bytes(b"x" * 1000)
    (tmp_path / "empty.img").write_bytes(b"")
    (tmp_path / "a,b.img").write_bytes(bytes(512))
    cases = [
        ("", "--disk needs a file name"),
        (",ro", "--disk needs a file name"),
        (str(tmp_path / "missing.img"), "missing.img: No such file or directory"),
        (str(tmp_path), "not a regular file"),
        (str(tmp_path / "odd.img"), "1000 bytes: a disk image is a whole number of 512-byte"),
        (str(tmp_path / "empty.img"), "0 bytes: a disk image is a whole number"),
        (str(tmp_path / "a,b.img"), "a comma in the file name"),
        (str(tmp_path / "odd.img") + ",rw", "a comma in the file name"),
    ]
    for arg, why in cases:
        r = run_cli(["qemu", "--disk", arg])
        assert r.returncode == 2, (arg, r.stderr)
        assert "orrery: qemu: --disk" in r.stderr and why in r.stderr, (arg, r.stderr)
        assert len(r.stderr.strip().splitlines()) <= 2, r.stderr  # the line, then usage hint
    assert (tmp_path / "odd.img").read_bytes() == b"x" * 1000
    good = str(make_image(tmp_path, sectors=1))
    r = run_cli(["qemu", "--disk", good, "--disk", good])
    assert r.returncode == 2 and "--disk given twice" in r.stderr, r.stderr
    r = run_cli(["qemu", "--help"])
    assert "--disk FILE[,ro]" in r.stdout and "blktest" in r.stdout
