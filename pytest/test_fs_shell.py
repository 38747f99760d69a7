"""test_fs_shell.py — the file system as a user sees it: the shell's file commands on a disk
(hosted, and the image under QEMU on q35 and microvm), the default disk, `--disk none`, and
`orrery mkfs`. Every disk a test writes is a copy (of build/disk.img or one `orrery mkfs`
made); after the OS has shut down, the host's e2fsck must accept it and debugfs must find the
bytes the shell wrote. KVM variants skip, with the reason, when KVM cannot run here."""
import hashlib
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import PROMPT, Session, image_path, orrery_path, qemu_missing, run_cli

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
HELLO = "Hello from the disk of Orrery.\n"  # disk/hello.txt
PLAN = ("An orrery is a clockwork model of the solar system.\n"
        "This file lives in a subdirectory of the default disk.\n")  # disk/notes/plan.txt


def tool(name):
    path = shutil.which(name, path=SBIN)
    if path is None:
        pytest.skip(f"{name} (e2fsprogs) is not installed")
    return path


def default_image():
    return os.path.join(os.path.dirname(orrery_path()), "disk.img")


def disk_copy(tmp_path, name="disk.img"):
    """A copy of the build's default disk: tests never write the build's own."""
    src = default_image()
    if not os.path.exists(src):
        pytest.fail(f"{src} is not built (run scripts/build)")
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def fsck(image):
    r = subprocess.run([tool("e2fsck"), "-fn", str(image)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def debugfs(image, request):
    r = subprocess.run([tool("debugfs"), "-R", request, str(image)], capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def mkfs(folder, image, *args):
    r = run_cli(["mkfs", *args, str(folder), str(image)])
    assert r.returncode == 0, r.stderr
    return r


def mounted(s):
    """Wait for the fs server's mount line, so that no log line falls into a command's output."""
    s.expect(r"\[fs\] blk0: ext2[^\n]*\n")
    return s


def cmd(s, line, timeout=None):
    """One shell command's output: prompts and the OS's log lines ("[fs] ...") left out."""
    out = s.run_commands([line], timeout=timeout).replace("\r\n", "\n")
    out = out.replace(PROMPT, "")
    return "".join(x for x in out.splitlines(True) if not re.match(r"\[\w+\] ", x))


def cat(s, path, timeout=None):
    """`cat PATH` exactly as printed, up to the next prompt."""
    out = s.run_commands([f"cat {path}"], timeout=timeout).replace("\r\n", "\n")
    assert out.endswith(PROMPT), out
    return out[: -len(PROMPT)]


def shutdown(s):
    s.send_line("shutdown")
    assert s.wait() == 0, s.output


# ---- on every platform -------------------------------------------------------------------


def test_shell_changes_files_and_the_disk_keeps_them(boot, tmp_path):
    img = disk_copy(tmp_path)
    s = mounted(boot("--disk", str(img)))

    out = cmd(s, "mount")
    assert re.search(r"^blk0 on / type ext2 \(rw", out, re.M), out
    assert "this shell may read and write" in out
    listing = cmd(s, "ls").splitlines()
    for name in ("README.txt", "hello.txt", "latest", "notes/", "www/"):
        assert name in listing, listing
    long = cmd(s, "ls -l /")
    assert re.search(r"^-rw-r--r-- +1 +31 \d{4}-\d\d-\d\d \d\d:\d\d  hello\.txt$", long, re.M), long
    assert re.search(r"^lrwxrwxrwx +1 +14 .* latest -> notes/plan\.txt$", long, re.M), long
    assert re.search(r"^drwxr-xr-x +\d+ +\d+ .* notes$", long, re.M), long
    assert cat(s, "hello.txt") == HELLO
    assert cat(s, "/latest") == PLAN  # through the symlink
    assert cat(s, "notes/orbits/../plan.txt") == PLAN

    assert cmd(s, "mkdir work") == ""
    assert cmd(s, "write work/a.txt first line") == ""
    assert cmd(s, "append work/a.txt second  line") == ""
    assert cat(s, "work/a.txt") == "first line\nsecond  line\n"
    assert cmd(s, "mv work/a.txt work/b.txt") == ""
    assert cmd(s, "cat work/a.txt") == "shell: cat: /work/a.txt: no such entry\n"
    assert cmd(s, "ln -s b.txt work/link") == ""
    assert re.search(r"^l\S+ +1 +5 .* link -> b\.txt$", cmd(s, "ls -l work"), re.M)
    assert cat(s, "work/link") == "first line\nsecond  line\n"
    st = cmd(s, "stat work/b.txt")
    assert "type: regular file" in st and "size: 24" in st and "mode: 0644 (-rw-r--r--)" in st, st
    assert "-> b.txt" in cmd(s, "stat work/link")
    assert cmd(s, "mkdir work/sub") == ""
    assert cmd(s, "write work/sub/gone.txt soon gone") == ""
    assert cmd(s, "rmdir work/sub") == "shell: rmdir: /work/sub: directory not empty\n"
    assert cmd(s, "rm work/sub/gone.txt") == ""
    assert cmd(s, "rmdir work/sub") == ""
    assert cmd(s, "write work/empty") == ""
    assert re.search(r"size: 0\b", cmd(s, "stat work/empty"))
    # the errors: one line each, naming the path
    assert cmd(s, "cat notes") == "shell: cat: /notes: is a directory\n"
    assert cmd(s, "mkdir notes") == "shell: mkdir: /notes: already exists\n"
    assert cmd(s, "rm notes") == "shell: rm: /notes: is a directory\n"
    assert cmd(s, "ls nowhere") == "shell: ls: /nowhere: no such entry\n"
    assert cmd(s, "write hello.txt/x y") == "shell: write: /hello.txt/x: not a directory\n"
    assert cmd(s, "mv nowhere elsewhere") == "shell: mv: /nowhere -> /elsewhere: no such entry\n"
    assert cmd(s, "cd hello.txt") == "shell: cd: /hello.txt: not a directory\n"
    # cd and relative paths
    assert cmd(s, "cd work") == ""
    assert cmd(s, "pwd") == "/work\n"
    assert cat(s, "b.txt") == "first line\nsecond  line\n"
    assert cmd(s, "cd ..") == ""
    assert cmd(s, "pwd") == "/\n"

    df = cmd(s, "df")
    m = re.search(r"^blk0 ext2 +1024 +8192 +(\d+) +(\d+) +\d+% +2048 +(\d+)$", df, re.M)
    assert m, df
    assert int(m.group(1)) + int(m.group(2)) == 8192
    assert cmd(s, "sync") == ""
    shutdown(s)

    fsck(img)
    assert debugfs(img, "cat /work/b.txt") == b"first line\nsecond  line\n"
    names = debugfs(img, "ls /work").decode()
    assert "b.txt" in names and "link" in names and "empty" in names
    assert "sub" not in names.split() and "a.txt" not in names.split()
    assert b"Fast link dest: \"b.txt\"" in debugfs(img, "stat /work/link")


def test_files_made_by_mke2fs_read_back_identically(boot, tmp_path):
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    # longer than the shell's 32 KiB output buffer and many data messages: cat is paced
    text = "".join(f"line {i:05d}: the quick brown fox jumps over the lazy dog\n"
                   for i in range(700))
    (src / "long.txt").write_text(text)
    (src / "deep" / "er" / "small.txt").write_text("small\n")
    (src / "control.bin").write_bytes(b"a\x01b\x1b[31mc\x7fd\n")
    many = src / "many"
    many.mkdir()
    for i in range(250):  # more names than one readdir page holds
        (many / f"file-with-a-long-name-{i:03d}.txt").write_text(f"{i}\n")
    img = tmp_path / "made.img"
    mkfs(src, img)
    s = mounted(boot("--disk", str(img)))

    assert cat(s, "long.txt", timeout=120) == text
    assert cat(s, "deep/er/small.txt") == "small\n"
    # control bytes never reach the terminal
    assert cat(s, "control.bin") == "a?b?[31mc?d\n"
    names = cmd(s, "ls many").split()
    assert sorted(names) == [f"file-with-a-long-name-{i:03d}.txt" for i in range(250)]
    rows = [x for x in cmd(s, "ls -l many", timeout=120).splitlines() if x.startswith("-rw")]
    assert len(rows) == 250, rows
    shutdown(s)
    fsck(img)


def test_read_only_disk_refuses_changes(boot, tmp_path):
    img = disk_copy(tmp_path)
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    s = mounted(boot("--disk", f"{img},ro"))
    out = cmd(s, "mount")
    assert re.search(r"^blk0 on / type ext2 \(ro", out, re.M), out
    assert "this shell may only read: the volume is read-only" in out
    assert cat(s, "hello.txt") == HELLO
    assert cmd(s, "write new.txt x") == "shell: write: /new.txt: read-only file system\n"
    assert cmd(s, "mkdir d") == "shell: mkdir: /d: read-only file system\n"
    assert cmd(s, "rm hello.txt") == "shell: rm: /hello.txt: read-only file system\n"
    shutdown(s)
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before


def test_without_a_disk_file_commands_say_so(boot):
    s = boot("--disk", "none")
    # fs finds no blk0 and exits; init says so: wait for that line, so that it cannot fall
    # into (and split) a command's output
    s.expect(r"\[init\] fs \(task \d+\) exited[^\n]*\n")
    for line in ("ls", "cat hello.txt", "df"):
        name = line.split()[0]
        assert cmd(s, line) == (f"shell: {name}: no file system: the fs server is not running "
                                "(no disk? boot with --disk FILE)\n")
    assert cmd(s, "pwd") == "/\n"
    shutdown(s)


# ---- hosted ------------------------------------------------------------------------------


def test_a_shell_granted_fs_ro_may_only_read(run, tmp_path):
    img = disk_copy(tmp_path)
    manifest = tmp_path / "ro.manifest"
    manifest.write_text("program console restart=always\n"
                        "program shell restart=always reach=console,init,fs:ro\n"
                        "program fs restart=on-failure\n")
    s = mounted(run("--manifest", str(manifest), "--disk", str(img)))
    out = cmd(s, "mount")
    assert re.search(r"^blk0 on / type ext2 \(rw", out, re.M), out
    assert "this shell may only read: its manifest line grants reach=fs:ro" in out
    assert cat(s, "hello.txt") == HELLO
    assert cmd(s, "write new.txt x") == ("shell: write: /new.txt: permission denied (this shell "
                                         "may only read: reach=fs:ro in the manifest)\n")
    shutdown(s)
    fsck(img)
    assert b"new.txt" not in debugfs(img, "ls /")


def test_cat_of_a_large_file_loses_nothing(tmp_path):
    """A file far larger than every buffer on the way (the shell's 32 KiB, the console's, the
    pipe's): cat asks for a piece only when the shell's buffer has room, so a slow reader
    gets every byte."""
    src = tmp_path / "src"
    src.mkdir()
    text = "".join(f"{i:07d} {'abcdefghijklmnopqrstuvwxyz' * 2}\n" for i in range(16000))
    (src / "big.txt").write_text(text)  # 976 KiB
    img = tmp_path / "big.img"
    mkfs(src, img)
    p = subprocess.Popen([orrery_path(), "run", "--disk", str(img)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"cat big.txt\n")
    p.stdin.close()
    # Not reading for a moment lets the pipe, the console and the shell's buffer fill, so the
    # shell waits for room (only which path runs depends on it; the check does not).
    time.sleep(0.5)
    chunks = []
    while True:  # read slowly: small pieces
        chunk = p.stdout.read(4096)
        if not chunk:
            break
        chunks.append(chunk)
    assert p.wait(timeout=120) == 0, p.stderr.read()
    out = b"".join(chunks).decode()
    start = out.index("0000000 ")
    assert out[start:start + len(text)] == text
    assert out[start + len(text):].startswith(PROMPT + "shutting down\n")


def test_a_shell_without_fs_in_its_reach_is_told(run, tmp_path):
    img = disk_copy(tmp_path)
    manifest = tmp_path / "nofs.manifest"
    manifest.write_text("program console restart=always\n"
                        "program shell restart=always reach=console,init\n"
                        "program fs restart=on-failure\n")
    s = mounted(run("--manifest", str(manifest), "--disk", str(img)))
    assert cmd(s, "ls") == ("shell: ls: this shell may not reach the file system (no 'fs' in "
                            "its reach in the manifest)\n")
    shutdown(s)


def start_copy(tmp_path, with_disk=True):
    """The orrery binary copied into tmp_path (with a copy of the default disk beside it), run
    without ORRERY_DISK: what a user gets from `orrery run`."""
    binary = tmp_path / "orrery"
    shutil.copy2(orrery_path(), binary)
    if with_disk:
        disk_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "ORRERY_DISK"}
    return binary, env


def test_run_attaches_the_disk_next_to_the_binary(tmp_path, monkeypatch):
    binary, env = start_copy(tmp_path)
    monkeypatch.delenv("ORRERY_DISK")  # for Session, which runs with this environment
    r = subprocess.run([str(binary), "run"], input="cat hello.txt\nwrite mine.txt kept\n",
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"orrery: disk: {tmp_path}/disk.img (read-write, the default)\n"
    assert HELLO in r.stdout
    fsck(tmp_path / "disk.img")
    assert debugfs(tmp_path / "disk.img", "cat /mine.txt") == b"kept\n"
    # a second run while one holds the disk boots without it, and says so
    first = Session([str(binary), "run"])
    try:
        mounted(first)
        r = subprocess.run([str(binary), "run"], input="ls\n", capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stderr == (f"orrery: disk: none (the default image cannot be used: {tmp_path}"
                            "/disk.img: in use: another run has the image open)\n")
        assert "no file system: the fs server is not running" in r.stdout
    finally:
        first.close_stdin()
        assert first.wait() == 0


def test_qemu_attaches_the_disk_next_to_the_binary(tmp_path):
    if qemu_missing():
        pytest.skip(qemu_missing())
    binary, env = start_copy(tmp_path)
    env["ORRERY_IMAGE"] = image_path()
    r = subprocess.run([str(binary), "qemu", "--machine", "microvm", "--accel", "tcg"],
                       input="cat hello.txt\nwrite from-qemu.txt yes\n", capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"orrery: disk: {tmp_path}/disk.img (read-write, the default)\n"
    assert HELLO in r.stdout.replace("\r\n", "\n")
    fsck(tmp_path / "disk.img")
    assert debugfs(tmp_path / "disk.img", "cat /from-qemu.txt") == b"yes\n"
    # ORRERY_DISK names another default; --disk none wins over both
    other = disk_copy(tmp_path, "other.img")
    env["ORRERY_DISK"] = str(other)
    r = subprocess.run([str(binary), "qemu", "--machine", "microvm", "--accel", "tcg",
                        "--disk", "none"], input="ls\n", capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "no file system: the fs server is not running" in r.stdout


def test_qemu_blktest_never_gets_the_default_disk(tmp_path):
    if qemu_missing():
        pytest.skip(qemu_missing())
    binary, env = start_copy(tmp_path)
    env["ORRERY_IMAGE"] = image_path()
    before = (tmp_path / "disk.img").read_bytes()
    r = subprocess.run([str(binary), "qemu", "--machine", "microvm", "--accel", "tcg", "--append",
                        "blktest"], input="", capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("orrery: disk: none (blktest writes the disk's first sectors: give it a "
                        "scratch image with --disk)\n")
    assert "[bm] blktest: no virtio-blk device" in r.stdout
    assert (tmp_path / "disk.img").read_bytes() == before


def test_run_without_a_default_disk_says_so(tmp_path):
    binary, env = start_copy(tmp_path, with_disk=False)
    r = subprocess.run([str(binary), "run"], input="", capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"orrery: disk: none (no default image {tmp_path}/disk.img; --disk FILE "
                        "attaches one)\n")
    r = subprocess.run([str(binary), "run", "--disk", "none"], input="", capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == ""


def test_disk_none_twice_or_with_a_file_is_refused(tmp_path):
    for args in (["--disk", "none", "--disk", "none"], ["--disk", "none", "--disk", "x.img"]):
        for command in ("run", "qemu"):
            r = run_cli([command, *args])
            assert r.returncode == 2, r.stderr
            assert "--disk given twice" in r.stderr


# ---- orrery mkfs -------------------------------------------------------------------------


def test_mkfs_makes_an_image_e2fsck_accepts(tmp_path):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "f.txt").write_text("deep\n")
    (src / "big.bin").write_bytes(os.urandom(300_000))
    os.symlink("a/b/f.txt", src / "link")
    for args, bs, rev in (([], 1024, 1), (["--block-size", "4096", "--rev", "0"], 4096, 0)):
        img = tmp_path / f"img-{bs}-{rev}.img"
        r = mkfs(src, img, *args, "--label", "mine")
        assert r.stdout.startswith(f"orrery: mkfs: {img}: ext2 revision {rev}, {bs}-byte blocks")
        fsck(img)
        assert debugfs(img, "cat /a/b/f.txt") == b"deep\n"
        assert debugfs(img, "cat /big.bin") == (src / "big.bin").read_bytes()
        stats = debugfs(img, "stats").decode()
        assert re.search(rf"Block size:\s+{bs}\n", stats), stats
        assert re.search(r"Filesystem volume name:\s+mine\n", stats), stats
        assert img.stat().st_size % (1 << 20) == 0  # sized from the content, whole MiB
        assert not [p for p in tmp_path.iterdir() if ".mkfs-" in p.name]  # no temporary left
    img = tmp_path / "sized.img"
    mkfs(src, img, "--size", "3M")
    assert img.stat().st_size == 3 << 20
    fsck(img)


def test_mkfs_refuses_an_existing_image(tmp_path):
    (tmp_path / "src").mkdir()
    img = tmp_path / "there.img"
    img.write_bytes(b"not ours")
    r = run_cli(["mkfs", str(tmp_path / "src"), str(img)])
    assert r.returncode == 2
    assert r.stderr == (f"orrery: mkfs: {img}: already exists; refusing to replace it (choose "
                        "a new name)\n")
    assert img.read_bytes() == b"not ours"
    os.symlink("nowhere", tmp_path / "dangling")  # a dangling symlink is a path too
    r = run_cli(["mkfs", str(tmp_path / "src"), str(tmp_path / "dangling")])
    assert r.returncode == 2 and "already exists" in r.stderr
    assert not (tmp_path / "nowhere").exists()


def test_mkfs_help_and_usage_errors(tmp_path):
    r = run_cli(["mkfs", "--help"])
    assert r.returncode == 0 and r.stdout.startswith("usage: orrery mkfs DIR IMAGE")
    (tmp_path / "src").mkdir()
    (tmp_path / "file").write_text("x")
    src, out = str(tmp_path / "src"), str(tmp_path / "out.img")
    cases = [
        (["mkfs"], "mkfs: needs DIR and IMAGE"),
        (["mkfs", src], "mkfs: needs DIR and IMAGE"),
        (["mkfs", src, out, "extra"], "mkfs: unexpected argument 'extra'"),
        (["mkfs", "--size", "12", src, out], "--size wants N[K|M|G]"),
        (["mkfs", "--size", "5T", src, out], "--size wants N[K|M|G]"),
        (["mkfs", "--size", "10X", src, out], "--size wants N[K|M|G]"),
        (["mkfs", "--block-size", "2048", src, out], "--block-size wants 1024 or 4096"),
        (["mkfs", "--rev", "2", src, out], "--rev wants 0 or 1"),
        (["mkfs", "--label", "x" * 17, src, out], "--label: at most 16 bytes"),
        (["mkfs", "--bogus", src, out], "unknown option '--bogus'"),
        (["mkfs", str(tmp_path / "missing"), out], "missing: No such file or directory"),
        (["mkfs", str(tmp_path / "file"), out], "file: not a directory"),
    ]
    for args, message in cases:
        r = run_cli(args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and message in r.stderr, (args, r.stderr)
    assert not os.path.exists(out)


def test_mkfs_without_mke2fs_says_so(tmp_path):
    (tmp_path / "src").mkdir()
    env = dict(os.environ, ORRERY_MKE2FS=str(tmp_path / "no-mke2fs"))
    r = subprocess.run([orrery_path(), "mkfs", str(tmp_path / "src"), str(tmp_path / "o.img")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr == f"orrery: mkfs: ORRERY_MKE2FS={tmp_path}/no-mke2fs is not executable\n"
    env = dict(os.environ, PATH=str(tmp_path))  # and not on an empty PATH, if not in sbin
    if not any(os.access(f"{d}/mke2fs", os.X_OK) for d in ("/usr/sbin", "/sbin")):
        r = subprocess.run([orrery_path(), "mkfs", str(tmp_path / "src"),
                            str(tmp_path / "o.img")], capture_output=True, text=True, env=env)
        assert r.returncode == 2 and "mke2fs not found" in r.stderr
    assert not (tmp_path / "o.img").exists()


def test_mkfs_reports_a_failing_mke2fs_and_leaves_nothing(tmp_path):
    (tmp_path / "src").mkdir()
    fake = tmp_path / "mke2fs"
    fake.write_text("#!/bin/sh\necho 'mke2fs: something went wrong' >&2\nexit 1\n")
    fake.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, ORRERY_MKE2FS=str(fake))
    r = subprocess.run([orrery_path(), "mkfs", str(tmp_path / "src"), str(out / "o.img")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert r.stderr == ("orrery: mkfs: mke2fs failed (status 1): mke2fs: something went "
                        "wrong\n")
    assert list(out.iterdir()) == []  # the temporary file is gone, no image


def test_mkfs_never_replaces_an_image_that_appears_meanwhile(tmp_path):
    (tmp_path / "src").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    fake = tmp_path / "mke2fs"  # makes the image, and someone else makes IMAGE meanwhile
    fake.write_text('#!/bin/sh\nfor a; do last=$a; done\necho theirs > "$(dirname "$last")/o.img"'
                    '\nexit 0\n')
    fake.chmod(0o755)
    env = dict(os.environ, ORRERY_MKE2FS=str(fake))
    r = subprocess.run([orrery_path(), "mkfs", str(tmp_path / "src"), str(out / "o.img")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr == (f"orrery: mkfs: {out}/o.img: appeared while the image was made; not "
                        "replaced\n")
    assert (out / "o.img").read_text() == "theirs\n"
    assert [p.name for p in out.iterdir()] == ["o.img"]  # our temporary file is gone
