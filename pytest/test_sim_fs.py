"""test_sim_fs.py — simulated disks in scenarios, power cuts, saved disks, and fs-check's judging.

The 200-seed e2fsck sweep itself is a ctest (tests/sim.cmake: sim_fs_200_seeds, which runs
scripts/fs-check); here: the directives and options, their errors, the seeded cut, the saved
disk's bytes (determinism), and that fs-check fails what it must fail.
"""
import importlib.machinery
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import threading
import zlib

import pytest

from conftest import ROOT, orrery_path

SCN = os.path.join(ROOT, "scenarios")
E2FS_PATH = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"


def load_fs_check():
    path = os.path.join(ROOT, "scripts", "fs-check")
    loader = importlib.machinery.SourceFileLoader("fs_check", path)
    spec = importlib.util.spec_from_loader("fs_check", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def sim(*args, timeout=120):
    return subprocess.run([orrery_path(), "sim", *args], capture_output=True, text=True,
                          timeout=timeout)


def need_e2fsprogs():
    for tool in ("mke2fs", "e2fsck", "debugfs"):
        if not shutil.which(tool, path=E2FS_PATH):
            pytest.fail(f"{tool} missing: scripts/setup installs e2fsprogs")


def mkfs(path, size="1M"):
    subprocess.run(["truncate", "-s", size, path], check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", path], check=True,
                   env=dict(os.environ, PATH=E2FS_PATH), capture_output=True)


def write_scn(tmp_path, text, name="t.scn"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# ---- the directives and options -----------------------------------------------------------

def test_power_cut_reboots_the_node_on_its_disk_and_saves_every_seed(tmp_path):
    need_e2fsprogs()
    d = tmp_path / "disks"
    r = sim(os.path.join(SCN, "power-cut.scn"), "--seeds", "1..4", "--save-disks", str(d),
            "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 passed, 0 failed" in r.stdout
    imgs = sorted(os.listdir(d))
    assert imgs == [f"power-cut-seed-{s}.{e}" for s in range(1, 5) for e in ("img", "out")]
    out = (d / "power-cut-seed-2.out").read_text()
    assert "before the cut" in out and "after the reboot" in out and "shutting down" in out
    # nothing wrote the volume mke2fs made: every seed's disk is the same, and clean
    first = (d / "power-cut-seed-1.img").read_bytes()
    assert len(first) == 1 << 20
    for s in (2, 3, 4):
        assert (d / f"power-cut-seed-{s}.img").read_bytes() == first
    r = subprocess.run(["e2fsck", "-fn", str(d / "power-cut-seed-1.img")], capture_output=True,
                       text=True, env=dict(os.environ, PATH=E2FS_PATH))
    assert r.returncode == 0, r.stdout


def test_the_cut_comes_at_a_seeded_time_in_its_window():
    times = {}
    for seed in range(1, 13):
        r = sim(os.path.join(SCN, "power-cut.scn"), "--seed", str(seed), "--show-output")
        assert r.returncode == 0, r.stdout
        m = re.search(r"^power cut 1 due at (\d+\.\d+) s$", r.stdout, re.M)
        assert m, r.stdout
        times[seed] = float(m.group(1))
        assert 0.3 <= times[seed] <= 0.6
    assert len(set(times.values())) > 6  # drawn, not fixed
    again = sim(os.path.join(SCN, "power-cut.scn"), "--seed", "5", "--show-output")
    assert f"power cut 1 due at {times[5]:.6f} s" in again.stdout


def test_a_cut_without_reboot_leaves_the_node_down(tmp_path):
    scn = write_scn(tmp_path, "name down\nduration 2s\ndisk zero size=64K\n"
                              "power-cut 200ms\nexit -1\nat 100ms echo one\nexpect one\n"
                              "at 500ms echo two\nexpect-not two\n")
    r = sim(scn, "--seeds", "1..3", "--show-output")
    assert r.returncode == 0, r.stdout
    assert "power cut 1 due at 0.200000 s" in r.stdout
    assert "3 passed" in r.stdout


def test_a_cut_that_never_comes_fails_the_seed(tmp_path):
    scn = write_scn(tmp_path, "name early\nduration 5s\npower-cut 2s..3s\n"
                              "at 100ms shutdown\n")
    r = sim(scn, "--seed", "1")
    assert r.returncode == 1
    assert re.search(r"FAIL early seed 1: power cut \(scenario line 3\) due at 2\.\d+ s never "
                     r"came: the run ended at 0\.1\d* s", r.stdout), r.stdout


def test_disk_option_replaces_the_scenario_disk_and_never_writes_it(tmp_path):
    need_e2fsprogs()
    img = str(tmp_path / "in.img")
    mkfs(img, "2M")
    before = open(img, "rb").read()
    out = str(tmp_path / "out.img")
    r = sim(os.path.join(SCN, "power-cut.scn"), "--seed", "9", "--disk", img, "--save-disk",
            out, "--show-output")
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(img, "rb").read() == before
    assert open(out, "rb").read() == before  # 2 MiB: --disk's, not the scenario's 1 MiB
    # a failing seed's reproduce command names the disk
    scn = write_scn(tmp_path, "name bad\nduration 1s\nat 100ms shutdown\nexpect nothing-like-it\n")
    r = sim(scn, "--seed", "4", "--disk", img)
    assert r.returncode == 1
    assert f" --disk {img}" in r.stdout


def test_the_saved_disk_replaces_a_regular_file_only(tmp_path):
    out = tmp_path / "out.img"
    out.write_bytes(b"old")
    r = sim(os.path.join(SCN, "power-cut.scn"), "--seed", "1", "--save-disk", str(out), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.stat().st_size == 1 << 20
    assert [p.name for p in tmp_path.iterdir()] == ["out.img"]  # no temporary left behind


@pytest.mark.parametrize("args,message", [
    (["--save-disk", "X"], "sim: --save-disk needs a disk (--disk IMAGE, or a 'disk' line"),
    (["--save-disks", "X"], "sim: --save-disks needs a disk"),
    (["power-cut.scn", "--seeds", "1..2", "--save-disk", "X"],
     "--save-disk X: needs one seed (--seed N, or --count 1)"),
    (["power-cut.scn", "--save-disk", "DIR"], "--save-disk DIR: exists and is not a regular file"),
    (["power-cut.scn", "--save-disks", "FILE"], "sim: --save-disks FILE: "),
    (["power-cut.scn", "--save-disk", "a", "--save-disks", "b"], "not both --save-disk and"),
    (["--disk", "MISSING"], "sim: --disk MISSING: No such file or directory"),
    (["--disk", "FILE"], "sim: --disk FILE: size 3 is not a non-zero multiple of 512"),
    (["--disk", "DIR"], "sim: --disk DIR: "),
    (["--disk", "IMG", "--disk", "IMG"], "sim: --disk needs one image file (given twice"),
    (["--disk", ""], "sim: --disk needs one image file"),
])
def test_disk_option_errors_exit_2_with_one_line(tmp_path, args, message):
    (tmp_path / "DIR").mkdir()
    (tmp_path / "FILE").write_bytes(b"abc")
    (tmp_path / "IMG").write_bytes(bytes(1024))
    args = [os.path.join(SCN, a) if a.endswith(".scn") else a for a in args]
    args = [str(tmp_path / a) if a in ("X", "DIR", "FILE", "IMG", "MISSING", "a", "b") else a
            for a in args]
    message = message.replace("X", str(tmp_path / "X")).replace("DIR", str(tmp_path / "DIR"))
    message = message.replace("FILE", str(tmp_path / "FILE"))
    message = message.replace("MISSING", str(tmp_path / "MISSING"))
    r = sim(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert message in lines[0], r.stderr
    assert (tmp_path / "FILE").read_bytes() == b"abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR", "FILE", "IMG"]


@pytest.mark.parametrize("line,message", [
    ("disk", "disk needs IMAGE (a file, at most 255 bytes, no spaces), or zero|ext2 size=SIZE"),
    ("disk a.img b", "disk needs IMAGE"),
    ("disk zero", "disk zero needs size=SIZE (a multiple of 512 bytes up to 1G"),
    ("disk zero size=1000", "disk zero needs size=SIZE"),
    ("disk zero size=2G", "disk zero needs size=SIZE"),
    ("disk ext2 size=0", "disk ext2 needs size=SIZE"),
    ("disk zero size=1M\ndisk zero size=1M", "disk given twice (the node has one blk0)"),
    ("power-cut", "power-cut needs TIME or START..END (END not before START), then optionally"),
    ("power-cut 2s..1s", "power-cut needs TIME or START..END"),
    ("power-cut 1s..x", "power-cut needs TIME or START..END"),
    ("power-cut 1s soon", "power-cut needs TIME or START..END"),
    ("power-cut 1s\n" * 9, "too many power cuts (limit 8)"),
    ("blk-eio-rate 101", "blk-eio-rate is a percentage (0..100)"),
    ("blk-latency-max x", "bad duration 'x'"),
])
def test_scenario_disk_and_power_cut_errors(tmp_path, line, message):
    text = "name t\n" + line.rstrip("\n") + "\n"
    scn = write_scn(tmp_path, text)
    r = sim(scn)
    assert r.returncode == 2
    n = text.count("\n")  # the error is on the last line
    assert f"orrery: sim: {scn}:{n}: {message}" in r.stderr, r.stderr


def test_scenario_disk_file_is_relative_to_the_scenario_and_checked_first(tmp_path):
    scn = write_scn(tmp_path, "name t\nduration 1s\ndisk nosuch.img\nat 100ms shutdown\n")
    r = sim(scn)
    assert r.returncode == 2
    assert f"{scn}:3: {tmp_path}/nosuch.img: No such file or directory" in r.stderr
    (tmp_path / "there.img").write_bytes(bytes(4096))
    scn = write_scn(tmp_path, "name t\nduration 1s\ndisk there.img\nat 100ms shutdown\n")
    out = tmp_path / "saved.img"
    r = sim(scn, "--save-disk", str(out), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes() == bytes(4096)


def test_the_same_seed_saves_the_same_disk_byte_for_byte(tmp_path):
    """fs.scn: fsstress on the fs server until a seeded power cut; two processes, one disk."""
    scn = os.path.join(SCN, "fs.scn")
    disks = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        path = tmp_path / f"{name}.img"
        r = sim(scn, "--seed", str(seed), "--save-disk", str(path), "--show-output")
        assert "[fsstress] fsynced" in r.stdout, r.stdout[-2000:]
        assert re.search(r"^blk: \d+ read\(s\), [1-9]\d* write\(s\)", r.stdout, re.M)
        disks[name] = path.read_bytes()
    assert disks["a"] == disks["b"]
    assert disks["a"] != disks["c"]


# ---- fs-check judges what it must ------------------------------------------------------------

def volume_with(tmp_path, files):
    """An ext2 image holding files {path: bytes} (debugfs write), and its path."""
    img = str(tmp_path / "v.img")
    mkfs(img)
    env = dict(os.environ, PATH=E2FS_PATH)
    cmds = []
    for i, (path, data) in enumerate(files.items()):
        src = tmp_path / f"src{i}"
        src.write_bytes(data)
        d = os.path.dirname(path)
        if d != "/":
            cmds.append(f"mkdir {d}")
        cmds.append(f"write {src} {path}")
    (tmp_path / "cmds").write_text("\n".join(cmds) + "\n")
    subprocess.run(["debugfs", "-w", "-f", str(tmp_path / "cmds"), img], check=True,
                   capture_output=True, env=env)
    return img


def test_fs_check_passes_a_volume_that_holds_what_was_fsynced(tmp_path):
    need_e2fsprogs()
    fc = load_fs_check()
    data = os.urandom(5000)
    img = volume_with(tmp_path, {"/d1/f3": data})
    out = (f"[fsstress] fsynced /d1/f3 len 5000 crc32 0x{zlib.crc32(data):08x}\n"
           "[fsstress] fsynced /d2/f0 len 10 crc32 0x12345678\n"
           "[fsstress] superseded /d2/f0 (unlink)\n")
    assert fc.required_files(out) == {"/d1/f3": (5000, zlib.crc32(data))}
    work = tmp_path / "w"
    work.mkdir()
    assert fc.check_disk(img, out, True, str(work)) is None
    seen = {}
    assert fc.check_disk(img, out, False, str(work), seen) is None
    assert seen == {"repaired": False}


def test_fs_check_fails_wrong_contents_a_missing_file_and_a_broken_volume(tmp_path):
    need_e2fsprogs()
    fc = load_fs_check()
    data = b"x" * 3000
    img = volume_with(tmp_path, {"/d1/f1": data})
    work = tmp_path / "w"
    work.mkdir()
    wrong = f"[fsstress] fsynced /d1/f1 len 3000 crc32 0x{zlib.crc32(data) ^ 1:08x}\n"
    why = fc.check_disk(img, wrong, False, str(work))
    assert why and why.startswith("fsynced data lost:") and "/d1/f1: fsynced with len 3000" in why
    gone = "[fsstress] fsynced /d3/f2 len 1 crc32 0x00000000\n"
    why = fc.check_disk(img, gone, False, str(work))
    assert why and "/d3/f2: fsynced (len 1) but missing after the repair" in why
    # a superblock of zeros and no backup found by e2fsck's default: not repairable
    raw = bytearray(open(img, "rb").read())
    raw[1024:2048] = bytes(1024)
    for g in range(1, 8):  # the backups too (8192 blocks a group on a 1 KiB-block volume)
        off = (g * 8192 + 1) * 1024
        if off < len(raw):
            raw[off:off + 1024] = bytes(1024)
    open(img, "wb").write(raw)
    why = fc.check_disk(img, "", False, str(work))
    assert why and why.startswith("e2fsck -fy exited")
    # an inconsistency e2fsck repairs passes without --clean, fails with it
    (tmp_path / "two").mkdir()
    img2 = volume_with(tmp_path / "two", {"/a": b"abc"})
    env = dict(os.environ, PATH=E2FS_PATH)
    subprocess.run(["debugfs", "-w", "-R", "sif /a links_count 5", img2], check=True,
                   capture_output=True, env=env)
    seen = {}
    assert fc.check_disk(img2, "", False, str(work), seen) is None
    assert seen == {"repaired": True}
    why = fc.check_disk(img2, "", True, str(work))
    assert why and why.startswith("e2fsck -fn on the disk after a clean shutdown exited")


def test_fs_check_reads_the_ledger_up_to_its_last_whole_record():
    fc = load_fs_check()

    def rec(seq, ok=True):
        r = struct.pack("<5I", fc.LEDGER_MAGIC, seq, 1, 10, 0) + b"/d1/f0".ljust(40, b"\0")
        return r + struct.pack("<I", zlib.crc32(r) ^ (0 if ok else 1))

    assert fc.ledger_problem(b"") is None
    assert fc.ledger_problem(rec(1) + rec(2) + rec(3)) is None
    assert fc.ledger_problem(rec(1) + rec(2) + bytes(64)) is None  # the one in flight at a cut
    assert fc.ledger_problem(rec(1) + rec(2) + rec(3, ok=False)) is None
    why = fc.ledger_problem(rec(1) + bytes(64) + rec(3))
    assert why and why.startswith("/fsstress.ledger: record 2 (bytes 64..127) is not whole (or out of "
                                  "order), but record 3, written after its fsync, is")
    assert fc.ledger_problem(rec(1) + rec(3)) is not None  # out of order


def test_fsstress_hosted_leaves_a_disk_the_same_check_passes(tmp_path):
    """fsstress is a program of the image: hosted, on a file-backed blk0, 200 ops then shutdown."""
    need_e2fsprogs()
    fc = load_fs_check()
    img = str(tmp_path / "h.img")
    mkfs(img, "4M")
    man = tmp_path / "h.manifest"
    man.write_text("program fs restart=on-failure\n"
                   "program fsstress restart=never reach=fs,init arg=ops=200\n")
    # stdin stays open (a pipe nobody writes): the run ends when fsstress shuts it down
    p = subprocess.Popen([orrery_path(), "run", "--disk", img, "--manifest", str(man)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    timer = threading.Timer(120, p.kill)
    timer.start()
    try:
        out = p.stdout.read()  # to the end: the process is gone (stdin stays open meanwhile)
        p.wait()
    finally:
        timer.cancel()
        p.stdin.close()
    assert p.returncode == 0, out[-2000:]
    assert "[fsstress] done: 200 ops, " in out and ", 0 errors" in out
    assert len(fc.required_files(out)) > 0
    work = tmp_path / "w"
    work.mkdir()
    assert fc.check_disk(img, out, True, str(work)) is None
