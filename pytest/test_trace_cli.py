"""test_trace_cli.py — the command lines of `orrery trace`, `replay` and `bench trace`.

One option parser for all of them (`--opt VAL` and `--opt=VAL`, one-line errors with the usage
hint, exit 2); `trace record` as an alias of `run --trace`; `trace corpus` writing only what is
its own; `replay` stopping when its reader goes away.
"""
import json
import os
import re
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import Session, head_one_line, orrery_path, run_cli, run_row

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "traces",
                      "session.db")
SESSION = "echo hello\nps\nkill echo\nspawn echo\nshutdown\n"


def usage_error(r, *words):
    """Exit 2 and one line: 'orrery: ...' naming words, with the usage hint."""
    assert 2 == r.returncode, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert 1 == len(lines), r.stderr
    assert lines[0].startswith("orrery: ") and "--help')" in lines[0], lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def payloads(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT seq, kind, task, type, payload FROM events ORDER BY seq"
                           ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    db = tmp_path_factory.mktemp("t") / "s.db"
    r = run_cli(["run", "--deterministic", "--trace", str(db)], input=SESSION)
    assert 0 == r.returncode, r.stderr
    return db


# ---- one option parser -----------------------------------------------------------------------

@pytest.mark.parametrize("args,word", [
    (["trace", "--frob"], "--frob"),
    (["trace", "frob"], "frob"),
    (["trace", "summary", "--frob", "x.db"], "--frob"),
    (["trace", "summary"], "which trace file"),
    (["trace", "summary", "a.db", "b.db"], "'b.db'"),
    (["trace", "show", "--frob", "x.db"], "--frob"),
    (["trace", "show", "x.db", "--limit"], "--limit needs a value"),
    (["trace", "show", "x.db", "--limit=0"], "--limit wants a number from 1"),
    (["trace", "show", "x.db", "--limit", "-1"], "--limit wants a number from 1"),
    (["trace", "show", "x.db", "--kind=NOPE"], "unknown kind 'NOPE'"),
    (["trace", "show", "x.db", "--interface=nope"], "unknown interface 'nope'"),
    (["trace", "show", "-t", "shell", "x.db"], "'-t'"),
    (["trace", "export", "--perfetto", "--clock=wall", "x.db", "o.json"], "'wall'"),
    (["trace", "export", "--perfetto=1", "x.db", "o.json"], "--perfetto takes no value"),
    (["trace", "export", "x.db", "o.json"], "--perfetto"),
    (["trace", "export", "--perfetto", "x.db"], "needs FILE and OUT.json"),
    (["trace", "import", "--frob", "s", "o.db"], "--frob"),
    (["trace", "import", "s", "o.db", "--platform"], "--platform needs a value"),
    (["trace", "import", "s", "o.db", "x"], "'x'"),
    (["trace", "corpus", "--frob", "x.db", "d"], "--frob"),
    (["trace", "corpus", "x.db"], "needs FILE.db and DIR"),
    (["trace", "corpus", "x.db", "d", "e"], "'e'"),
    (["trace", "record"], "which trace file"),
    (["trace", "record", "--deterministic", "x.db"], "OUT.db comes first"),
    (["trace", "record", "x.db", "--trace", "y.db"], "no --trace"),
    (["trace", "record", "x.db", "--quiet"], "--quiet"),
    (["trace", "record", "x.db", "--workers=0"], "--workers"),
    (["replay", "--frob", "x.db", "--task", "echo"], "--frob"),
    (["replay", "x.db", "--task"], "--task needs a value"),
    (["replay", "x.db", "--task="], "which task"),
    (["replay", "--task=echo"], "which trace file"),
    (["replay", "x.db", "y.db", "--task=echo"], "'y.db'"),
    (["replay", "x.db", "--task=echo", "--verbose=yes"], "--verbose takes no value"),
    (["bench", "trace", "--frob"], "--frob"),
    (["bench", "trace", "extra"], "'extra'"),
    (["bench", "trace", "--events=0"], "--events wants a number from 1"),
    (["bench", "trace", "--threads", "65"], "--threads wants a number from 1 to 64"),
    (["bench", "trace", "--json=1"], "--json takes no value"),
    (["bench", "trace", "--keep"], "--keep needs a value"),
], ids=lambda v: "-".join(v) if isinstance(v, list) else None)
def test_bad_command_lines_are_one_line_and_exit_2(args, word, tmp_path):
    r = subprocess.run([orrery_path(), *args], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    usage_error(r, word)
    assert [] == os.listdir(tmp_path)  # nothing written for a refused command line


def test_every_trace_command_has_help():
    for args in (["trace", "--help"], ["trace", "summary", "--help"], ["trace", "show", "-h"],
                 ["trace", "export", "--help"], ["trace", "import", "--help"],
                 ["trace", "record", "--help"], ["trace", "corpus", "--help"],
                 ["replay", "--help"], ["bench", "trace", "--help"]):
        r = run_cli(args)
        assert 0 == r.returncode, args
        assert r.stdout.startswith("usage: orrery"), (args, r.stdout)
        assert "" == r.stderr


def test_option_values_after_an_equals_sign(trace, tmp_path):
    """--opt=VAL means what --opt VAL means, for every command."""
    for a, b in ((["--limit", "3"], ["--limit=3"]), (["--kind", "SEND"], ["--kind=SEND"]),
                 (["--task", "shell", "--limit", "5"], ["--task=shell", "--limit=5"]),
                 (["--interface", "echo"], ["--interface=echo"])):
        ra = run_cli(["trace", "show", str(trace), *a])
        rb = run_cli(["trace", "show", *b, str(trace)])
        assert 0 == ra.returncode == rb.returncode, (ra.stderr, rb.stderr)
        assert ra.stdout and ra.stdout == rb.stdout, (a, b)
    assert 3 == len(run_cli(["trace", "show", str(trace), "--limit=3"]).stdout.splitlines())

    r = run_cli(["trace", "export", "--perfetto", "--clock=seq", str(trace), "-"])
    assert 0 == r.returncode and r.stdout == run_cli(
        ["trace", "export", str(trace), "--clock", "seq", "--perfetto", "-"]).stdout

    out = tmp_path / "imported.db"
    r = run_cli(["trace", "import", "--platform=sim", "/dev/null", str(out)])
    assert 0 == r.returncode, r.stderr
    assert "sim" == run_row(out)["platform"]

    a = run_cli(["replay", GOLDEN, "--task", "echo", "--verbose"])
    b = run_cli(["replay", "--task=echo", "-v", GOLDEN])
    assert 0 == a.returncode == b.returncode, (a.stderr, b.stderr)
    assert "events matched" in a.stdout and a.stdout == b.stdout


# ---- trace record is run --trace -------------------------------------------------------------

def test_trace_record_is_run_trace(tmp_path):
    """Same options, same trace: `trace record X ARGS` is `run --trace X ARGS`."""
    rec, run = tmp_path / "rec.db", tmp_path / "run.db"
    a = run_cli(["trace", "record", str(rec), "--deterministic", "--seed=7"], input=SESSION)
    b = run_cli(["run", "--deterministic", "--seed", "7", "--trace", str(run)], input=SESSION)
    assert 0 == a.returncode == b.returncode, (a.stderr, b.stderr)
    assert a.stdout == b.stdout and "hello" in a.stdout
    ra, rb = run_row(rec), run_row(run)
    assert ("sim", 7, 1) == (ra["platform"], ra["seed"], ra["complete"])
    assert ra["command"] == rb["command"]
    assert payloads(rec) == payloads(run)


def test_trace_record_takes_runs_options(tmp_path):
    """--manifest and --workers exist only in run: the alias has them."""
    m = tmp_path / "m.txt"
    m.write_text("frobnicate\n")
    r = run_cli(["trace", "record", str(tmp_path / "x.db"), f"--manifest={m}"])
    assert 2 == r.returncode
    assert f"{m}:1" in r.stderr  # run's manifest check, naming file and line
    assert not os.path.exists(tmp_path / "x.db")

    db = tmp_path / "w.db"
    r = run_cli(["trace", "record", str(db), "--workers", "2"], input="shutdown\n")
    assert 0 == r.returncode, r.stderr
    assert ("hosted", 2) == (run_row(db)["platform"], run_row(db)["workers"])


def test_help_calls_trace_record_an_alias():
    r = run_cli(["trace", "record", "--help"])
    assert "orrery run --trace OUT.db" in r.stdout and "orrery run --help" in r.stdout
    assert "alias of 'orrery run --trace" in run_cli(["trace", "--help"]).stdout


# ---- trace corpus writes only what is its own -------------------------------------------------

def tree(root):
    """Every path under root with what it is: a file's bytes, a symlink's target, 'dir'."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = "dir"
            elif not os.path.isfile(p):
                out[rel] = "special"  # a FIFO: opening it would wait for a writer
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out


def corpus(db, d):
    return run_cli(["trace", "corpus", str(db), str(d)])


def test_corpus_writes_inputs_and_replaces_its_own(trace, tmp_path):
    d = tmp_path / "c"
    r = corpus(trace, d)
    assert 0 == r.returncode, r.stderr
    first = tree(d)
    assert any(k.startswith("echo/s-ch") for k in first) and "shell/s-lines" in first
    # An earlier input of the same name (a regular file) is replaced, in place of the old bytes.
    (d / "shell" / "s-lines").write_bytes(b"stale")
    r = corpus(trace, d)
    assert 0 == r.returncode, r.stderr
    assert first == tree(d)  # no temporary files left behind, every input rewritten
    mode = os.stat(d / "shell" / "s-lines").st_mode & 0o777
    assert mode == 0o666 & ~current_umask()


def current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_corpus_dir_through_a_symlink_is_followed(trace, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    r = corpus(trace, tmp_path / "link")
    assert 0 == r.returncode, r.stderr
    assert (real / "shell" / "s-lines").is_file()


def refused(r, *words):
    assert 2 == r.returncode, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert 1 == len(lines), r.stderr
    assert "refusing" in lines[0]
    for w in words:
        assert w in lines[0], lines[0]


def test_corpus_refuses_a_file_as_dir(trace, tmp_path):
    f = tmp_path / "notes"
    f.write_text("mine\n")
    refused(corpus(trace, f), str(f), "not a directory")
    assert "mine\n" == f.read_text()


def test_corpus_refuses_a_symlinked_server_dir(trace, tmp_path):
    d, elsewhere = tmp_path / "c", tmp_path / "elsewhere"
    d.mkdir()
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("mine\n")
    os.symlink(elsewhere, d / "echo")
    before, outside = tree(d), tree(elsewhere)
    refused(corpus(trace, d), "echo", "a symlink")
    assert before == tree(d) and outside == tree(elsewhere)  # nothing written anywhere


@pytest.mark.parametrize("kind", ["symlink", "dangling", "directory", "fifo"])
def test_corpus_refuses_to_replace_what_is_not_a_regular_file(trace, tmp_path, kind):
    d = tmp_path / "c"
    (d / "shell").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    p = d / "shell" / "s-lines"
    if kind == "symlink":
        os.symlink(victim, p)
    elif kind == "dangling":
        os.symlink(tmp_path / "nowhere", p)
    elif kind == "directory":
        p.mkdir()
    else:
        os.mkfifo(p)
    before = tree(d)
    refused(corpus(trace, d), str(p))
    assert before == tree(d)  # checked before anything was written: not even echo's inputs
    assert "precious\n" == victim.read_text()
    assert not os.path.exists(tmp_path / "nowhere")


# ---- replay stops when its reader goes away -----------------------------------------------------

def test_replay_stops_when_the_reader_goes_away(big):
    """`orrery replay big.db --task shell --verbose | head -1` dies of SIGPIPE at once."""
    first, status, err = head_one_line(
        [orrery_path(), "replay", str(big), "--task", "shell", "--verbose"])
    assert first, err
    assert -signal.SIGPIPE == status, err


def test_replay_reads_to_the_end_and_reports_a_write_error(big):
    r = run_cli(["replay", str(big), "--task", "shell", "--verbose"])
    assert 0 == r.returncode, r.stderr
    assert len(r.stdout) > 1 << 16 and "events matched" in r.stdout
    with open("/dev/full", "w") as full:
        r = subprocess.run([orrery_path(), "replay", str(big), "--task", "shell", "--verbose"],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert 1 == r.returncode
    assert "orrery replay: writing the output" in r.stderr


def test_corpus_refuses_an_overlong_dir(trace, tmp_path):
    """A path cut to fit a buffer would name another file: refused whole instead."""
    d = tmp_path / ("d" * 200)
    long_dir = str(d) + ("/" + "e" * 200) * 19
    r = corpus(trace, long_dir)
    assert 1 == r.returncode
    assert "longer than 3776 bytes" in r.stderr and 1 == len(r.stderr.strip().splitlines())
    assert not d.exists()


def test_import_platform_is_one_of_three(tmp_path):
    r = run_cli(["trace", "import", str(tmp_path / "s.bin"), str(tmp_path / "o.db"),
                 "--platform=mars"])
    assert r.returncode == 2
    assert "--platform is qemu, sim or hosted, not 'mars'" in r.stderr
    assert not (tmp_path / "o.db").exists()


def test_traceload_hosted_makes_four_records_a_round_trip(tmp_path):
    """traceload (the workload of `bench qtrace`): N round trips are N SENDs and N DELIVERs
    each way, then a result line and a shutdown with status 0; a bad argument is status 1."""
    manifest = tmp_path / "load.manifest"
    manifest.write_text("program traceload restart=never reach=init arg=msgs=1000,bytes=16\n")
    db = tmp_path / "load.db"
    # stdin held open: its end would shut the OS down (status 120, no console program)
    s = Session([orrery_path(), "run", "--manifest", str(manifest), "--trace", str(db)])
    try:
        assert 0 == s.wait(), s.output + s.stderr
    finally:
        s.kill()
    assert "result msgs=1000 records=4000 ns=" in s.output
    con = sqlite3.connect(db)
    try:
        (task,), = con.execute("SELECT id FROM tasks WHERE name = 'traceload'").fetchall()
        kinds = dict(con.execute("SELECT kind, count(*) FROM events WHERE task = ? AND kind IN "
                                 "(4, 5) AND len = 16 GROUP BY kind", (task,)).fetchall())
    finally:
        con.close()
    assert {4: 2000, 5: 2000} == kinds
    manifest.write_text("program traceload restart=never reach=init arg=msgs=0\n")
    s = Session([orrery_path(), "run", "--manifest", str(manifest)])
    try:
        assert 1 == s.wait(), s.output + s.stderr
    finally:
        s.kill()
    assert "bad argument (msgs=1..1000000000,bytes=0..4096)" in s.output


def test_bench_trace_json_names_the_baseline_of_each_ratio(tmp_path):
    # the ingest part alone, small: its figures carry no ratio, so there is no baseline to name
    env = dict(os.environ, TMPDIR=str(tmp_path))
    r = subprocess.run([orrery_path(), "bench", "trace", "--json", "--events=2000", "--no-ipc"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ingest_events"] == 2000 and out["dropped"] == 0
    assert out["baselines"] == {}
    assert not [k for k in out if "ratio" in k]
    assert os.listdir(tmp_path) == []  # its temporary traces are gone


# ---- trace import's progress -------------------------------------------------------------------

def frame2(seq, time_ns, kind=4, task=2, chan=6, peer=7, payload=b""):
    """One version 2 frame (docs/trace-format.md, "Bare-metal stream framing"), made here from
    the format's text so the decoder is checked against an encoder that is not its own."""
    mask = (1 << 64) - 1

    def step(h, w):
        h = ((h ^ w) * 0x9e3779b97f4a7c15) & mask
        return h ^ (h >> 32)

    n = 64 + len(payload)
    body = (seq.to_bytes(8, "little") + time_ns.to_bytes(8, "little") + bytes(8)
            + kind.to_bytes(4, "little") + task.to_bytes(4, "little")
            + chan.to_bytes(4, "little") + peer.to_bytes(4, "little")
            + (1).to_bytes(4, "little") + bytes(4)
            + len(payload).to_bytes(4, "little") + bytes(4) + bytes(8)
            + payload + bytes(-len(payload) % 8))
    h = step(0x4f72726572793200, n | ((~n & 0xffffffff) << 32))
    for i in range(0, len(body), 8):
        h = step(h, int.from_bytes(body[i:i + 8], "little"))
    for shift, mul in ((33, 0xff51afd7ed558ccd), (33, 0xc4ceb9fe1a85ec53)):
        h ^= h >> shift
        h = (h * mul) & mask
    h ^= h >> 33
    return (bytes([0xA5, 0x5A, 0x4F, 0x55]) + n.to_bytes(4, "little")
            + (~n & 0xffffffff).to_bytes(4, "little") + (h & 0xffffffff).to_bytes(4, "little")
            + body)


@pytest.mark.parametrize("quiet", [False, True])
def test_import_says_how_far_it_is(tmp_path, quiet):
    """A stream that takes more than 2 s to arrive gets a progress line on stderr (records so
    far, bytes read) and one when the trace is being finished; --quiet has neither. Every record
    is in the trace either way."""
    frames = [frame2(i, 1000 * i, payload=b"x" * (i % 40)) for i in range(1, 3001)]
    out = tmp_path / "imported.db"
    cmd = [orrery_path(), "trace", "import", "-", str(out)] + (["--quiet"] if quiet else [])
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"".join(frames[:1000]))
        p.stdin.flush()
        # A progress line is considered after each read: the next piece comes after 2.5 s.
        for _ in range(5):
            assert p.poll() is None, p.stderr.read()
            time.sleep(0.5)
        p.stdin.write(b"".join(frames[1000:]))
        p.stdin.close()
        stdout, stderr = p.stdout.read().decode(), p.stderr.read().decode()
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert 0 == p.returncode, stderr
    assert "imported 3000 records" in stdout, stdout
    progress = [l for l in stderr.splitlines() if l.startswith("orrery: trace import: ")]
    if quiet:
        assert [] == progress, stderr
    else:
        assert 2 == len(progress), stderr
        m = re.fullmatch(r"orrery: trace import: (\d+) records, (\d+\.\d) MB read, 0 bad frames "
                         r"\((\d+) s, \d+ records/s\)", progress[0])
        assert m and 1000 <= int(m.group(1)) <= 3000 and int(m.group(3)) >= 2, progress[0]
        assert progress[1] == f"orrery: trace import: 3000 records read; finishing {out}"
    con = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    try:
        assert (3000, 1, 3000) == con.execute(
            "SELECT count(*), min(seq), max(seq) FROM events").fetchone()
        assert b"x" * 39 == con.execute("SELECT payload FROM events WHERE seq = 39").fetchone()[0]
    finally:
        con.close()
