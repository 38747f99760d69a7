"""test_trace_qemu.py — IPC traces recorded in QEMU (`orrery qemu --trace`), read and replayed on Linux.

Under TCG on q35 and microvm: one scripted boot per machine is recorded (module fixture) and
every reader runs on it; two more boots are killed mid-run (QEMU, then orrery itself) to check
that a partial trace is usable. Skips when QEMU or the image is missing.
"""
import json
import os
import signal
import sqlite3
import time

import pytest

from conftest import QEMU_TIMEOUT, Session, orrery_path, qemu_missing, run_cli, run_row

pytestmark = pytest.mark.skipif(qemu_missing() is not None, reason=qemu_missing() or "")

SCRIPT = ["echo hello from qemu", "ps", "kill echo", "echo again", "ps"]


def qemu_argv(machine, trace, *args):
    return [orrery_path(), "qemu", "--machine", machine, "--accel", "tcg", "--trace", str(trace),
            *args]


def query(db, sql, *params):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def qemu_child(pid, timeout=10):
    """The QEMU process orrery started (its only child)."""
    deadline = time.monotonic() + timeout
    path = f"/proc/{pid}/task/{pid}/children"
    while time.monotonic() < deadline:
        with open(path) as f:
            kids = f.read().split()
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise AssertionError("orrery qemu started no child")


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module", params=["q35", "microvm"])
def recorded(request, tmp_path_factory):
    """(machine, trace path, console output) of a scripted run that shuts down with status 0."""
    machine = request.param
    db = tmp_path_factory.mktemp("trace") / f"{machine}.db"
    s = Session(qemu_argv(machine, db), timeout=QEMU_TIMEOUT)
    try:
        out = s.run_commands(SCRIPT)
        s.send_line("shutdown")
        assert s.wait() == 0, s.stderr
    finally:
        s.kill()
    assert "hello from qemu" in out
    assert f"records in {db}" in s.stderr
    return machine, str(db), out


def test_run_row_says_qemu(recorded):
    machine, db, _ = recorded
    run = run_row(db)
    assert "qemu" == run["platform"]
    assert f"--machine {machine}" in run["command"]
    assert "--accel tcg" in run["command"]
    assert run["commit_id"]
    assert "init" in run["manifest"]
    assert 0 == run["exit_status"]
    assert 1 == run["complete"]
    assert 0 == run["bad_frames"]
    assert 0 == run["dropped"]
    (count, first, last), = query(db, "SELECT count(*), min(seq), max(seq) FROM events")
    assert run["events"] == count
    assert (1, count) == (first, last)  # no gaps: every record crossed the serial port


def test_trace_holds_the_session(recorded):
    _, db, _ = recorded
    names = [n for (n,) in query(db, "SELECT name FROM tasks ORDER BY id")]
    assert names[:4] == ["init", "console", "shell", "echo"]
    assert names.count("echo") == 2  # killed, then restarted by init
    lines = [bytes(p) for (p,) in query(db, "SELECT payload FROM events WHERE kind = 13")]
    assert any(b"echo hello from qemu" in p for p in lines)
    assert any(b"kill echo" in p for p in lines)


@pytest.mark.parametrize("task", ["shell", "echo", "console", "init"])
def test_replay_matches_on_linux(recorded, task):
    _, db, _ = recorded
    r = run_cli(["replay", db, "--task", task])
    assert 0 == r.returncode, r.stdout + r.stderr
    assert "events matched" in r.stdout


def test_summary_show_and_perfetto_export(recorded, tmp_path):
    _, db, _ = recorded
    r = run_cli(["trace", "summary", db])
    assert 0 == r.returncode, r.stderr
    assert "platform qemu" in r.stdout
    assert "exit status 0" in r.stdout
    r = run_cli(["trace", "show", db, "--task", "shell"])
    assert 0 == r.returncode, r.stderr
    assert "init.connect" in r.stdout
    assert "hello from qemu" in r.stdout
    out = tmp_path / "trace.json"
    r = run_cli(["trace", "export", "--perfetto", db, str(out)])
    assert 0 == r.returncode, r.stderr
    doc = json.loads(out.read_text())
    assert "qemu" == doc["otherData"]["platform"]
    assert any(e.get("ph") == "s" for e in doc["traceEvents"])  # send -> deliver flows


def boot_and_cut(db, victim):
    """Boot q35 with --trace, run two echos, SIGKILL `victim` ("qemu" or "orrery")."""
    s = Session(qemu_argv("q35", db), timeout=QEMU_TIMEOUT)
    try:
        s.run_commands(["echo before the cut", "ps"])
        qemu = qemu_child(s.proc.pid)
        if victim == "orrery":
            time.sleep(0.5)  # the writer commits what it holds every 50 ms
        os.kill(qemu if victim == "qemu" else s.proc.pid, signal.SIGKILL)
        status = s.wait()
    finally:
        s.kill()
    return s, status, qemu


def test_killed_qemu_leaves_a_closed_partial_trace(tmp_path):
    db = tmp_path / "cut.db"
    s, status, _ = boot_and_cut(db, "qemu")
    assert 2 == status
    assert "QEMU was killed by a signal" in s.stderr
    run = run_row(db)
    assert 1 == run["complete"]  # orrery survived and closed the trace
    assert run["exit_status"] is None
    lines = [bytes(p) for (p,) in query(db, "SELECT payload FROM events WHERE kind = 13")]
    assert any(b"echo before the cut" in p for p in lines)
    r = run_cli(["replay", str(db), "--task", "shell"])
    assert 0 == r.returncode, r.stdout + r.stderr
    r = run_cli(["trace", "summary", str(db)])
    assert 0 == r.returncode, r.stderr


def test_killed_orrery_keeps_committed_records(tmp_path):
    db = tmp_path / "cut.db"
    s, status, qemu = boot_and_cut(db, "orrery")
    assert -signal.SIGKILL == status
    deadline = time.monotonic() + 10
    while not gone(qemu) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(qemu), "QEMU outlived orrery"
    assert not db.exists()  # only a finished trace gets the name; the records are in .partial
    db = tmp_path / "cut.db.partial"
    run = run_row(db)
    assert 0 == run["complete"]
    (count, last), = query(db, "SELECT count(*), max(seq) FROM events")
    assert count == last and count > 0
    lines = [bytes(p) for (p,) in query(db, "SELECT payload FROM events WHERE kind = 13")]
    assert any(b"echo before the cut" in p for p in lines)
    r = run_cli(["trace", "summary", str(db)])
    assert 0 == r.returncode, r.stderr
    assert "did not finish cleanly" in r.stdout


def test_garbled_stream_counts_bad_frames(tmp_path):
    """`traceglitch`: the image writes a false start before every 10th record and a wrong CRC
    on every 10th other one; the import keeps every good record and counts the rest."""
    db = tmp_path / "glitch.db"
    s = Session(qemu_argv("microvm", db, "--append", "traceglitch"), timeout=QEMU_TIMEOUT)
    try:
        s.run_commands(["echo through the noise"])
        s.send_line("shutdown")
        assert 0 == s.wait(), s.stderr
    finally:
        s.kill()
    run = run_row(db)
    (count, last), = query(db, "SELECT count(*), max(seq) FROM events")
    lost = last - count
    assert lost >= 1  # the records with a wrong CRC are gone (gaps in seq)...
    assert run["bad_frames"] >= 2 * lost  # ...each counted, and so is each false start
    assert 1 == run["complete"] and 0 == run["exit_status"]
    for args in (["trace", "summary", str(db)], ["trace", "show", str(db)]):
        r = run_cli(args)
        assert 0 == r.returncode, r.stderr
    r = run_cli(["replay", str(db), "--task", "shell"])
    assert r.returncode in (0, 1), r.stderr  # a verdict, never a signal
