"""test_trace_qemu.py — IPC traces recorded in QEMU (`orrery qemu --trace`), read and replayed on Linux.

Under TCG on q35 and microvm, on the bulk channel (virtio-console, the default) and on the serial
fallback (COM2): one scripted boot per machine and channel is recorded (module fixture) and every
reader runs on it; more boots are killed mid-run (QEMU, then orrery itself; QEMU again in the
middle of a flood of records on the bulk channel) to check that a partial trace is usable.
Skips when QEMU or the image is missing.
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


def qemu_argv(machine, trace, *args, channel="virtio"):
    return [orrery_path(), "qemu", "--machine", machine, "--accel", "tcg", "--trace", str(trace),
            "--trace-channel", channel, *args]

# (machine, trace channel) of the recorded sessions: the bulk channel on both machines, and the
# serial fallback on the machine where both exist side by side.
RECORDINGS = [("q35", "virtio"), ("microvm", "virtio"), ("q35", "serial")]


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


@pytest.fixture(scope="module", params=RECORDINGS, ids=["-".join(r) for r in RECORDINGS])
def recorded(request, tmp_path_factory):
    """(machine, trace path, console output, channel, stderr) of a scripted run that shuts down
    with status 0 (--verbose: QEMU's command line and the image's platform lines)."""
    machine, channel = request.param
    db = tmp_path_factory.mktemp("trace") / f"{machine}-{channel}.db"
    s = Session(qemu_argv(machine, db, "--verbose", "--append", "verbose", channel=channel),
                timeout=QEMU_TIMEOUT)
    try:
        out = s.run_commands(SCRIPT)
        s.send_line("shutdown")
        assert s.wait() == 0, s.stderr
    finally:
        s.kill()
    assert "hello from qemu" in out
    assert f"records in {db}" in s.stderr
    return machine, str(db), s.output, channel, s.stderr


def test_the_channel_asked_for_carries_the_records(recorded):
    machine, _, out, channel, err = recorded
    qemu_line = next(line for line in err.splitlines() if "qemu-system" in line)
    if channel == "virtio":
        bus = "virtio-serial-device" if machine == "microvm" else "virtio-serial-pci"
        assert f"-device {bus} " in qemu_line
        assert "-device virtserialport,chardev=trace,nr=1" in qemu_line
        assert "opt/orrery/trace,string=virtio" in qemu_line
        assert "isa-serial,chardev=trace" not in qemu_line
        assert "[bm] tracing to virtio-console port 1" in out
        assert "on virtio-console, waited for a free buffer" in out
    else:
        assert "-device isa-serial,chardev=trace,iobase=0x2f8" in qemu_line
        assert "virtserialport" not in qemu_line
        assert "[bm] tracing to COM2" in out
        assert "records sent on COM2" in out


def test_run_row_says_qemu(recorded):
    machine, db, _, channel, _ = recorded
    run = run_row(db)
    assert "qemu" == run["platform"]
    assert f"--machine {machine}" in run["command"]
    assert f"--trace-channel {channel}" in run["command"]
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
    _, db, *_ = recorded
    names = [n for (n,) in query(db, "SELECT name FROM tasks ORDER BY id")]
    assert names[:4] == ["init", "console", "shell", "echo"]
    assert names.count("echo") == 2  # killed, then restarted by init
    lines = [bytes(p) for (p,) in query(db, "SELECT payload FROM events WHERE kind = 13")]
    assert any(b"echo hello from qemu" in p for p in lines)
    assert any(b"kill echo" in p for p in lines)


@pytest.mark.parametrize("task", ["shell", "echo", "console", "init"])
def test_replay_matches_on_linux(recorded, task):
    _, db, *_ = recorded
    r = run_cli(["replay", db, "--task", task])
    assert 0 == r.returncode, r.stdout + r.stderr
    assert "events matched" in r.stdout


def test_summary_show_and_perfetto_export(recorded, tmp_path):
    _, db, *_ = recorded
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


def boot_and_cut(db, victim, channel="virtio"):
    """Boot q35 with --trace, run two echos, SIGKILL `victim` ("qemu" or "orrery")."""
    s = Session(qemu_argv("q35", db, channel=channel), timeout=QEMU_TIMEOUT)
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


@pytest.mark.parametrize("channel", ["virtio", "serial"])
def test_killed_qemu_leaves_a_closed_partial_trace(tmp_path, channel):
    """The system idles after each command: the bulk channel has sent its partly filled buffer
    then, so what the commands recorded is in the file although QEMU is killed."""
    db = tmp_path / "cut.db"
    s, status, _ = boot_and_cut(db, "qemu", channel)
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


def test_killed_qemu_in_a_flood_keeps_every_complete_record(tmp_path):
    """QEMU SIGKILLed while traceload streams records on the bulk channel as fast as it can:
    the trace is closed, its records are exactly seq 1..N (each buffer QEMU handed over, in
    order, none lost inside), and at most the one frame QEMU was writing is cut short."""
    manifest = tmp_path / "flood.manifest"
    manifest.write_text("program traceload restart=never reach=init arg=msgs=100000000\n")
    db = tmp_path / "flood.db"
    s = Session(qemu_argv("q35", db, "--manifest", str(manifest)), timeout=QEMU_TIMEOUT)
    try:
        # no boot line to wait for: it comes when the system first idles, after traceload
        qemu = qemu_child(s.proc.pid)
        partial = tmp_path / "flood.db.partial"
        deadline = time.monotonic() + QEMU_TIMEOUT
        while time.monotonic() < deadline:  # until the writer has committed a good many
            time.sleep(0.2)
            try:
                if query(partial, "SELECT count(*) FROM events")[0][0] > 20000:
                    break
            except sqlite3.OperationalError:
                pass  # not created, or locked mid-commit
        os.kill(qemu, signal.SIGKILL)
        status = s.wait()
    finally:
        s.kill()
    assert 2 == status
    assert "QEMU was killed by a signal" in s.stderr
    run = run_row(db)
    assert 1 == run["complete"] and run["exit_status"] is None and 0 == run["dropped"]
    (count, first, last), = query(db, "SELECT count(*), min(seq), max(seq) FROM events")
    assert count > 20000
    assert (1, count) == (first, last)
    assert run["bad_frames"] <= 1
    kinds = dict(query(db, "SELECT kind, count(*) FROM events GROUP BY kind"))
    assert kinds[4] > 5000 and kinds[5] > 5000  # the ping-pong's SENDs and DELIVERs
    r = run_cli(["trace", "summary", str(db)])
    assert 0 == r.returncode, r.stderr
    assert "traceload" in r.stdout


@pytest.mark.parametrize("channel", ["virtio", "serial"])
def test_garbled_stream_counts_bad_frames(tmp_path, channel):
    """`traceglitch`: the image writes a false start before every 10th record and a wrong CRC
    on every 10th other one; the import keeps every good record and counts the rest."""
    db = tmp_path / "glitch.db"
    s = Session(qemu_argv("microvm", db, "--append", "traceglitch", channel=channel),
                timeout=QEMU_TIMEOUT)
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


def test_trace_channel_usage_errors(tmp_path):
    """Refused before QEMU starts, with exit status 2 and nothing created."""
    db = tmp_path / "x.db"
    r = run_cli(["qemu", "--accel", "tcg", "--trace", str(db), "--trace-channel", "pci"])
    assert 2 == r.returncode
    assert "--trace-channel wants virtio or serial, not 'pci'" in r.stderr
    r = run_cli(["qemu", "--accel", "tcg", "--trace-channel", "serial"])
    assert 2 == r.returncode
    assert "--trace-channel needs --trace FILE.db" in r.stderr
    assert not db.exists() and not (tmp_path / "x.db.partial").exists()


@pytest.mark.parametrize("args, message", [
    (["--runs", "0"], "--runs wants 1..20, not '0'"),
    (["--runs", "x"], "--runs wants 1..20, not 'x'"),
    (["--msgs", "1"], "--msgs wants 2..100000000 round trips, not '1'"),
    (["--machine", "pc"], "--machine wants q35 or microvm, not 'pc'"),
])
def test_bench_qtrace_usage(args, message):
    """Bad options are one line naming the option, and exit 2, before any QEMU starts."""
    r = run_cli(["bench", "qtrace"] + args, timeout=QEMU_TIMEOUT)
    assert 2 == r.returncode
    assert message in r.stderr and "Traceback" not in r.stderr


def test_bench_qtrace_json():
    """A short `bench qtrace --json`: both channels recorded whole traces and the ratio names
    its baseline (figures are not judged: the machine may be loaded). The long runs are long
    enough (seconds) that a loaded machine's jitter in boot time cannot hide them."""
    r = run_cli(["bench", "qtrace", "--json", "--serial-msgs", "500", "--msgs", "100000",
                 "--runs", "2"], timeout=10 * QEMU_TIMEOUT)
    assert 0 == r.returncode, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert "qtrace" == doc["bench"] and "tcg" == doc["accel"]
    assert "serial" == doc["baseline"]["name"] == doc["ratios"]["baseline"]
    rows = {row["channel"]: row for row in doc["rows"]}
    assert {"serial", "virtio"} == set(rows)
    assert 500 == rows["serial"]["round_trips"] and 100000 == rows["virtio"]["round_trips"]
    for row in rows.values():
        # every round trip's 4 records, plus the boot's and the shutdown's
        assert row["records"] >= 4 * row["round_trips"] + row["short_run_records"] - 4
        assert row["records_per_s"] > 0
        # the figure is one of the runs' (the lower median of two)
        assert 2 == row["runs"] and 2 == len(row["records_per_s_runs"])
        assert round(row["records_per_s"]) == min(row["records_per_s_runs"])
    assert doc["ratios"]["virtio_over_baseline"] > 0
    assert "serial" == doc["baselines"]["virtio_over_baseline"]["baseline"]


@pytest.mark.parametrize("channel", ["virtio", "serial"])
def test_kernel_panic_keeps_the_records_before_it(tmp_path, channel):
    """`kernelfault`: the kernel faults right after the boot line. The panic sends what the bulk
    channel still holds, so the boot's last record, the console writing the first prompt, is
    in the trace on either channel."""
    db = tmp_path / "panic.db"
    s = Session(qemu_argv("q35", db, "--append", "kernelfault", channel=channel),
                timeout=QEMU_TIMEOUT)
    try:
        assert 125 == s.wait(), s.stderr
    finally:
        s.kill()
    run = run_row(db)
    assert 125 == run["exit_status"] and 1 == run["complete"] and 0 == run["bad_frames"]
    (count, last), = query(db, "SELECT count(*), max(seq) FROM events")
    assert count == last
    prompts = query(db, "SELECT count(*) FROM events WHERE kind = 14 AND payload = ?",
                    b"orrery> ")
    assert [(1,)] == prompts
