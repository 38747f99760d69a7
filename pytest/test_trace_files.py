"""test_trace_files.py — what the trace writers do to the files they are given, and what a kill leaves.

Every recording command (`run --trace`, `run --deterministic --trace`, `trace record`,
`trace import`) refuses a path that exists and is not an Orrery trace, leaving it exactly as it
was (exit 2); an existing trace (through a symlink: its target) is replaced only by a complete
one; a SIGKILLed recording leaves its committed records in FILE.partial and an older trace at
FILE intact. Output commands stop when their reader goes away.
"""
import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import threading
import time

import pytest

from conftest import Session, head_one_line, orrery_path, run_cli, run_row

ECHO = "echo hello from the trace tests"


def record(db, lines=(ECHO,), expect=0):
    """`orrery trace record DB --deterministic`: a small, reproducible trace."""
    r = run_cli(["trace", "record", str(db), "--deterministic"],
                input="".join(line + "\n" for line in lines))
    assert expect == r.returncode, r.stderr
    return r


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def events(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [bytes(p) for (p,) in con.execute(
            "SELECT payload FROM events WHERE payload IS NOT NULL ORDER BY seq")]
    finally:
        con.close()


# Every command that writes a trace, as a function(path) -> CompletedProcess.
WRITERS = {
    "run": lambda p: run_cli(["run", "--trace", str(p)], input="shutdown\n"),
    "run-deterministic": lambda p: run_cli(["run", "--deterministic", "--trace", str(p)],
                                           input="shutdown\n"),
    "trace-record": lambda p: run_cli(["trace", "record", str(p), "--deterministic"],
                                      input="shutdown\n"),
    "trace-import": lambda p: run_cli(["trace", "import", "/dev/null", str(p)]),
}


@pytest.fixture(params=sorted(WRITERS))
def writer(request):
    return WRITERS[request.param]


def refused(r, what):
    assert 2 == r.returncode, r.stdout + r.stderr
    assert what in r.stderr
    assert "refusing" in r.stderr
    assert 1 == len(r.stderr.strip().splitlines()), r.stderr


def test_text_file_is_refused_and_unchanged(writer, tmp_path):
    f = tmp_path / "notes.db"
    f.write_bytes(b"my notes, not a trace\n" * 100)
    before = digest(f)
    refused(writer(f), "not a SQLite database")
    assert before == digest(f)
    assert sorted(os.listdir(tmp_path)) == ["notes.db"]  # nothing written next to it


def test_character_device_is_refused_and_kept(writer, tmp_path):
    """A device node made for the test (as root), then the real /dev/null: both untouched."""
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        dev = None
    for node in ([dev] if dev else []) + ["/dev/null"]:
        before = os.stat(node)
        refused(writer(node), "a character device")
        after = os.stat(node)
        assert stat.S_ISCHR(after.st_mode)
        assert (before.st_ino, before.st_rdev) == (after.st_ino, after.st_rdev)
    assert not os.path.exists("/dev/null.partial")


def test_symlink_to_text_file_is_refused(writer, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    link = tmp_path / "trace.db"
    link.symlink_to(target)
    refused(writer(link), "not a SQLite database")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert "keep me\n" == target.read_text()


def test_directory_fifo_and_other_database_are_refused(writer, tmp_path):
    d = tmp_path / "dir.db"
    d.mkdir()
    refused(writer(d), "a directory")
    assert d.is_dir() and not any(d.iterdir())
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo)
    refused(writer(fifo), "a FIFO")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE accounts(id, balance)")
    con.commit()
    con.close()
    before = digest(other)
    refused(writer(other), "a SQLite database of something else")
    assert before == digest(other)


def test_existing_trace_is_replaced_with_a_notice(writer, tmp_path):
    db = tmp_path / "t.db"
    record(db)
    assert any(ECHO.encode() in p for p in events(db))
    r = writer(db)
    assert 0 == r.returncode, r.stderr
    assert "replaces it once it is complete" in r.stderr
    assert not any(ECHO.encode() in p for p in events(db))  # the new recording
    assert 1 == run_row(db)["complete"]
    assert not os.path.exists(str(db) + ".partial")


def test_symlink_to_trace_replaces_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "runs" / "first.db"
    target.parent.mkdir()
    record(target)
    link = tmp_path / "latest.db"
    link.symlink_to(target)
    record(link, ["echo second recording"])
    assert link.is_symlink() and os.readlink(link) == str(target)
    payloads = events(target)
    assert any(b"second recording" in p for p in payloads)
    assert not any(ECHO.encode() in p for p in payloads)
    assert sorted(os.listdir(tmp_path)) == ["latest.db", "runs"]
    assert os.listdir(target.parent) == ["first.db"]


def test_export_replaces_only_an_earlier_export(tmp_path):
    db = tmp_path / "t.db"
    record(db)
    out = tmp_path / "t.json"
    for _ in range(2):  # the second time, over the first export
        r = run_cli(["trace", "export", "--perfetto", str(db), str(out)])
        assert 0 == r.returncode, r.stderr
        assert out.read_text().startswith('{"displayTimeUnit"')
    before = digest(db)
    r = run_cli(["trace", "export", "--perfetto", str(db), str(db)])  # a slip of the hand
    refused(r, "not an Orrery Perfetto export")
    assert before == digest(db)
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}\n')
    refused(run_cli(["trace", "export", "--perfetto", str(db), str(notes)]), "something else")
    assert '{"mine": true}\n' == notes.read_text()
    refused(run_cli(["trace", "export", "--perfetto", str(db), "/dev/null"]), "a character device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert sorted(os.listdir(tmp_path)) == ["notes.json", "t.db", "t.json"]


def test_help_states_the_rule():
    for args in (["run", "--help"], ["trace", "record", "--help"], ["trace", "import", "--help"],
                 ["trace", "export", "--help"]):
        r = run_cli(args)
        assert 0 == r.returncode
        assert ".partial" in r.stdout and "exit 2" in r.stdout, args


@pytest.mark.parametrize("args", [["show"], ["summary"], ["export", "--perfetto"]],
                         ids=["show", "summary", "export"])
def test_output_stops_when_the_reader_goes_away(big, args):
    """`orrery trace show big.db | head -1`: the writer dies of SIGPIPE at its next write."""
    argv = [orrery_path(), "trace", args[0], *args[1:], str(big)]
    if args[0] == "export":
        argv.append("-")
    first, status, err = head_one_line(argv)
    assert first, err
    if args[0] == "summary":
        # A summary may fit in the pipe and end before the reader leaves; never an error.
        assert status in (0, -signal.SIGPIPE), err
    else:
        assert -signal.SIGPIPE == status, err


def test_show_counts_every_row_when_read_to_the_end(big):
    """The pipe test above stops early; read to the end, show prints one line per event."""
    r = run_cli(["trace", "show", str(big)])
    assert 0 == r.returncode, r.stderr
    con = sqlite3.connect(f"file:{big}?mode=ro", uri=True)
    (count,), = con.execute("SELECT count(*) FROM events").fetchall()
    con.close()
    assert count == len(r.stdout.splitlines())
    assert count > 20000


def test_write_error_is_reported(big):
    with open("/dev/full", "w") as full:
        r = subprocess.run([orrery_path(), "trace", "show", str(big)], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert 1 == r.returncode
    assert "writing the output" in r.stderr


def committed(db, sql, *params):
    """Query what the recorder has committed so far (read-only, beside the live writer)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def wait_committed(s, db, needle, timeout=30):
    """Poll until a console line holding needle is committed; fails at once if orrery died."""
    deadline = time.monotonic() + timeout
    while True:
        assert s.proc.poll() is None, s.stderr
        if os.path.exists(db):
            rows = committed(db, "SELECT count(*) FROM events WHERE kind = 13 AND"
                                 " instr(payload, ?) > 0", needle.encode())
            if rows[0][0]:
                return
        assert time.monotonic() < deadline, f"{needle!r} never committed\n{s.stderr}"
        time.sleep(0.05)


def test_sigkill_under_load_keeps_committed_records_and_the_old_trace(tmp_path):
    """A hosted run flooded with commands is SIGKILLed. The trace at FILE (an older one) is
    untouched; FILE.partial holds every committed record, consistent and readable, with a
    run row that says it did not finish and when its last commit was."""
    db = tmp_path / "load.db"
    partial = str(db) + ".partial"
    record(db)
    old = digest(db)

    s = Session([orrery_path(), "run", "--trace", str(db)])
    stop = threading.Event()
    try:
        s.run_commands(["echo before the load"])
        # The writer commits while the run goes on, not only at the end.
        wait_committed(s, partial, "echo before the load")

        def flood():
            i = 0
            try:
                while not stop.is_set():
                    s.send_line("".join(f"echo load {i + k}\n" for k in range(50)).rstrip("\n"))
                    i += 50
            except (BrokenPipeError, OSError):
                pass

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        s.expect(r"load 3000\b")
        # ...and keeps committing under load.
        wait_committed(s, partial, "echo load 3000")
        s.proc.send_signal(signal.SIGKILL)
        assert -signal.SIGKILL == s.wait()
    finally:
        stop.set()
        s.kill()

    assert old == digest(db)  # the earlier trace was never touched
    run = run_row(partial)
    assert 0 == run["complete"]
    assert run["end_unix_ns"] is None
    assert run["commit_unix_ns"] >= run["start_unix_ns"]
    (ok,), = committed(partial, "PRAGMA integrity_check")
    assert "ok" == ok
    (n, first, last, latest), = committed(
        partial, "SELECT count(*), min(seq), max(seq), max(time_ns) FROM events")
    assert n > 0 and first == 1 and last >= n
    # Nothing in the file is newer than its last commit (time_ns counts from boot, after start).
    assert latest <= run["commit_unix_ns"] - run["start_unix_ns"]
    lines = [p for (p,) in committed(partial, "SELECT payload FROM events WHERE kind = 13")]
    assert any(b"echo before the load" in bytes(p) for p in lines)
    assert any(b"echo load 3000" in bytes(p) for p in lines)

    r = run_cli(["trace", "summary", partial])
    assert 0 == r.returncode, r.stderr
    assert "did not finish cleanly; its last commit was" in r.stdout
    r = run_cli(["trace", "show", partial, "--task", "shell", "--limit", "5"])
    assert 0 == r.returncode, r.stderr
    r = run_cli(["trace", "summary", str(db)])
    assert 0 == r.returncode and "did not finish" not in r.stdout

    # The next recording takes the unfinished one's place and says so.
    r = record(db)
    assert "an unfinished earlier recording" in r.stderr
    assert not os.path.exists(partial)
