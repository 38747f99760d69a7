"""test_blk.py — `orrery run --disk FILE[,ro]`, the hosted blk0 device: bad values are usage
errors (exit 2, one line naming the file) that create, grow or cut nothing; directories and
device nodes are refused; an image in use by another run (or any flock holder) is refused."""
import fcntl
import os

import pytest

from conftest import Session, orrery_path, run_cli


def image(path, size):
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * (size // 256) + bytes(size % 256))
    return path


def usage_error(args, *wants):
    r = run_cli(["run"] + args, input="shutdown\n")
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in wants:
        assert w in lines[0], (w, lines[0])
    assert "orrery> " not in r.stdout  # nothing booted
    return lines[0]


@pytest.mark.parametrize("size, want", [
    (0, "size 0 is not a non-zero multiple of 512"),
    (1000, "size 1000 is not a non-zero multiple of 512"),
    (511, "size 511 is not a non-zero multiple of 512"),
])
def test_bad_sizes_refused_untouched(tmp_path, size, want):
    p = image(tmp_path / "odd.img", size)
    before = p.read_bytes()
    usage_error(["--disk", str(p)], f"--disk: {p}: {want}")
    assert p.read_bytes() == before


def test_missing_file_not_created(tmp_path):
    p = tmp_path / "nope.img"
    usage_error(["--disk", str(p)], f"--disk: {p}: cannot open: No such file or directory")
    usage_error(["--disk", f"{p},ro"], f"{p}: cannot open")
    assert not p.exists()


def test_empty_name_and_twice(tmp_path):
    usage_error(["--disk", ""], "--disk: needs an image file name")
    usage_error(["--disk", ",ro"], "--disk: needs an image file name")
    p = image(tmp_path / "a.img", 4096)
    usage_error(["--disk", str(p), "--disk", str(p)], "--disk given twice")
    usage_error(["--deterministic", "--disk", str(p)], "--disk needs the threaded run")


def test_directory_and_devices_refused(tmp_path):
    usage_error(["--disk", str(tmp_path)], f"{tmp_path}: is a directory, not an image file")
    usage_error(["--disk", "/dev/null"], "/dev/null: is a character device, not an image file")
    usage_error(["--disk", "/dev/zero,ro"], "/dev/zero: is a character device")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    usage_error(["--disk", str(fifo)], f"{fifo}: is not a regular file")  # and no hang


def test_good_image_boots_and_is_kept(tmp_path):
    p = image(tmp_path / "disk.img", 64 * 512)
    before = p.read_bytes()
    for spec in (str(p), f"{p},ro"):
        r = run_cli(["run", "--disk", spec], input="shutdown\n")
        assert r.returncode == 0, r.stderr
        assert "orrery> " in r.stdout
    assert p.read_bytes() == before  # no server writes blk0 yet; never truncated


def test_locked_image_refused(tmp_path):
    p = image(tmp_path / "disk.img", 8192)
    with open(p, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        usage_error(["--disk", str(p)], f"{p}: in use: another run has the image open")
        usage_error(["--disk", f"{p},ro"], f"{p}: in use")
    with open(p, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)  # a reader: other readers may share, a writer may not
        usage_error(["--disk", str(p)], "in use")
        r = run_cli(["run", "--disk", f"{p},ro"], input="shutdown\n")
        assert r.returncode == 0, r.stderr


def test_two_runs_cannot_share_an_image(tmp_path):
    p = image(tmp_path / "disk.img", 8192)
    s = Session([orrery_path(), "run", "--disk", str(p)])
    try:
        s.wait_prompt()
        usage_error(["--disk", str(p)], f"{p}: in use")
        s.send_line("shutdown")
        assert s.wait() == 0
    finally:
        s.kill()
    # The lock went with the first run.
    r = run_cli(["run", "--disk", str(p)], input="shutdown\n")
    assert r.returncode == 0, r.stderr
