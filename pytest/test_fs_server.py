"""test_fs_server.py — the fs server under `orrery run`: it mounts an mke2fs image read-write
(read-only with ,ro), says why it cannot mount a disk that is not ext2, ends quietly without a
disk, and leaves an image e2fsck finds clean."""
import shutil
import subprocess

import pytest

from conftest import run_cli

MANIFEST = """program console restart=always
program shell restart=always reach=console,echo,init
program fs
"""

pytestmark = pytest.mark.skipif(not shutil.which("mke2fs") or not shutil.which("e2fsck"),
                                reason="needs e2fsprogs (mke2fs, e2fsck)")


def ext2_image(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.txt").write_text("hello\n")
    img = tmp_path / "disk.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", str(src), str(img),
                    "8M"], check=True, capture_output=True)
    return img


def boot(run, tmp_path, disk):
    m = tmp_path / "m.manifest"
    m.write_text(MANIFEST)
    args = ["--manifest", str(m)] + (["--disk", disk] if disk else [])
    return run(*args)


def test_mounts_read_write_and_stays_clean(run, tmp_path):
    img = ext2_image(tmp_path)
    s = boot(run, tmp_path, str(img))
    s.expect(r"\[fs\] blk0: ext2, 8192 blocks of 1024 bytes, read-write\n")
    s.send_line("shutdown")
    assert s.wait() == 0
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_read_only_disk(run, tmp_path):
    img = ext2_image(tmp_path)
    before = img.read_bytes()
    s = boot(run, tmp_path, f"{img},ro")
    s.expect(r"\[fs\] blk0: ext2, 8192 blocks of 1024 bytes, read-only "
             r"\(read-only: the disk is read-only\)\n")
    s.send_line("shutdown")
    assert s.wait() == 0
    assert img.read_bytes() == before


def test_not_ext2(run, tmp_path):
    img = tmp_path / "zero.img"
    img.write_bytes(bytes(1 << 20))
    s = boot(run, tmp_path, str(img))
    s.expect(r"\[fs\] cannot mount blk0: superblock: bad magic 0x0000 \(not ext2\); "
             r"every request fails with EIO\n")
    s.send_line("shutdown")
    assert s.wait() == 0
    assert img.read_bytes() == bytes(1 << 20)


def test_no_disk(run, tmp_path):
    s = boot(run, tmp_path, None)
    s.expect(r"\[fs\] no blk0 device\n")
    s.expect(r"\[init\] fs \(task 4\) exited\n")
    s.send_line("shutdown")
    assert s.wait() == 0


def test_reach_suffix_other_than_fs_ro_is_a_usage_error(tmp_path):
    m = tmp_path / "bad.manifest"
    m.write_text("program echo reach=echo:ro\n")
    r = run_cli(["run", "--manifest", str(m)], input="shutdown\n")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"orrery: {m}:1: bad interface 'echo:ro' in reach "
                                "(only 'fs:ro' takes a ':' suffix)"), r.stderr


def test_qemu_mounts_and_leaves_a_clean_image(qemu, tmp_path):
    """The same server in the bare-metal image, on virtio-blk."""
    img = ext2_image(tmp_path)
    m = tmp_path / "m.manifest"
    m.write_text(MANIFEST)
    s = qemu("--disk", str(img), "--manifest", str(m))
    s.expect(r"\[fs\] blk0: ext2, 8192 blocks of 1024 bytes, read-write\r?\n")
    s.wait_prompt()
    s.send_line("shutdown")
    assert s.wait() == 0
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
