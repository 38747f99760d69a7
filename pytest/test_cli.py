"""test_cli.py — the orrery command line: help, version, errors, manifests, deterministic runs, bench."""
import json
import re

import pytest

from conftest import run_cli

SCRIPT = "ps\nuptime\necho one two\nipc\nfrobnicate\nkill echo\nps\nshutdown\n"


def test_help(orrery_bin):
    r = run_cli(["--help"])
    assert r.returncode == 0
    assert r.stdout.startswith("usage: orrery")
    for cmd in ("run", "bench", "version"):
        assert cmd in r.stdout


def test_every_subcommand_has_help(orrery_bin):
    for args in (["run", "--help"], ["bench", "--help"], ["bench", "ipc", "--help"],
                 ["version", "--help"]):
        r = run_cli(args)
        assert r.returncode == 0, args
        assert r.stdout.startswith("usage: orrery"), (args, r.stdout)
    assert "--manifest" in run_cli(["run", "--help"]).stdout


def test_version(orrery_bin):
    r = run_cli(["version"])
    assert r.returncode == 0
    assert re.match(r"orrery \d+\.\d+\.\d+ \(commit \S+\)$", r.stdout.strip()), r.stdout


def test_no_command_is_a_usage_error(orrery_bin):
    r = run_cli([])
    assert r.returncode == 2
    assert "usage: orrery" in r.stderr


def test_unknown_command_and_option(orrery_bin):
    for args, word in ((["frob"], "frob"), (["--frob"], "--frob"), (["run", "--frob"], "--frob"),
                       (["bench", "frob"], "frob"), (["bench", "ipc", "--frob"], "--frob"),
                       (["run", "--workers", "zero"], "zero"), (["run", "--workers"], "--workers")):
        r = run_cli(args)
        assert r.returncode == 2, args
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, (args, r.stderr)
        assert lines[0].startswith("orrery: ") and word in lines[0] and "--help" in lines[0]


def test_missing_manifest(orrery_bin, tmp_path):
    path = tmp_path / "nope.manifest"
    r = run_cli(["run", "--manifest", str(path)], input="shutdown\n")
    assert r.returncode == 2
    assert r.stderr.startswith(f"orrery: {path}")


def test_invalid_manifest_names_file_and_line(orrery_bin, tmp_path):
    path = tmp_path / "bad.manifest"
    path.write_text("]]] this is not a manifest [[[ = = =\n")
    r = run_cli(["run", "--manifest", str(path)], input="shutdown\n")
    assert r.returncode == 2
    assert re.match(re.escape(f"orrery: {path}:") + r"\d+: \S", r.stderr), r.stderr


def test_deterministic_runs_are_identical(orrery_bin):
    a = run_cli(["run", "--deterministic", "--seed", "7"], input=SCRIPT)
    b = run_cli(["run", "--deterministic", "--seed", "7"], input=SCRIPT)
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    assert "killed echo" in a.stdout
    assert "one two" in a.stdout
    assert a.stdout == b.stdout


def test_deterministic_overlong_line(orrery_bin):
    r = run_cli(["run", "--deterministic", "--seed", "3"], input="y" * 20000 + "\nshutdown 4\n")
    assert r.returncode == 4
    assert "shell: line too long (20000 bytes, limit 1024)" in r.stdout


def test_workers_option(orrery_bin):
    r = run_cli(["run", "--workers", "1"], input="ps\nshutdown\n")
    assert r.returncode == 0
    assert "echo" in r.stdout


def test_bench_ipc_json(orrery_bin):
    r = run_cli(["bench", "ipc", "--json"], timeout=120)
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout)
    for key in ("same_worker_rtt_ns", "cross_worker_rtt_ns", "pipe_rtt_ns", "msgs_per_s",
                "pipe_one_cpu_rtt_ns"):
        assert key in figures
        assert isinstance(figures[key], (int, float)) and figures[key] > 0
    # every ratio names the figure it is measured against, and that figure is in the JSON
    ratios = [k for k in figures if "_over_" in k]
    assert sorted(ratios) == sorted(figures["baselines"])
    for key in ratios:
        base = figures["baselines"][key]["baseline"]
        assert base in figures and base in figures["baselines"][key]["ratio"], key
    assert figures["baselines"]["pipe_one_cpu_over_same_worker"]["baseline"] == \
        "pipe_one_cpu_rtt_ns"


# Every command reads its options the same way (cli/opt.c): unknown options, missing values
# and values given to flags are one line with the usage hint and exit 2.
COMMANDS = [["run"], ["qemu"], ["sim"], ["bench", "ipc"], ["bench", "boot"], ["bench", "sim"],
            ["bench", "trace"], ["replay"], ["trace", "show"], ["trace", "summary"],
            ["trace", "export"], ["trace", "import"], ["trace", "corpus"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_refuses_an_unknown_option(orrery_bin, cmd):
    r = run_cli([*cmd, "--no-such-option"])
    assert r.returncode == 2
    name = " ".join(cmd)
    assert r.stderr == (f"orrery: {name}: unknown option '--no-such-option' "
                        f"(try 'orrery {name} --help')\n")


@pytest.mark.parametrize("cmd,flag", [(["run"], "--deterministic"), (["qemu"], "--gdb"),
                                      (["sim"], "--quiet"), (["bench", "ipc"], "--json")],
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_flag_given_a_value_is_refused(orrery_bin, cmd, flag):
    r = run_cli([*cmd, f"{flag}=1"])
    assert r.returncode == 2
    assert f"{flag} takes no value" in r.stderr


def test_values_after_an_equals_sign_on_every_command(orrery_bin, tmp_path):
    r = run_cli(["run", "--workers=2", "--manifest=/nonexistent"], input="shutdown 3\n")
    assert r.returncode == 2 and "/nonexistent" in r.stderr  # the value reached the option
    r = run_cli(["run", "--deterministic", "--seed=7"], input="shutdown 3\n")
    assert r.returncode == 3, r.stderr
    r = run_cli(["sim", "--seeds=1..3", "--quiet"])
    assert r.returncode == 0 and "3 seed(s)" in r.stdout, r.stderr
    r = run_cli(["sim", "--count=2", "--seeds", "1..100", "--quiet"])
    assert r.returncode == 0 and "2 seed(s)" in r.stdout, r.stderr
    r = run_cli(["bench", "sim", "--virtual=1", "--msgs=100", "--clusters=none", "--json"],
                timeout=60)
    assert r.returncode == 0 and "msgs_per_s" in r.stdout, r.stderr
    r = run_cli(["bench", "boot", "--runs=0"])
    assert r.returncode == 2 and "--runs wants a number from 1 to 64, not '0'" in r.stderr
    r = run_cli(["qemu", "--boot-timeout=x"])
    assert r.returncode == 2 and "--boot-timeout wants seconds" in r.stderr


def test_the_command_table_is_the_help(orrery_bin):
    r = run_cli(["--help"])
    for name in ("run", "qemu", "sim", "trace", "replay", "bench", "version"):
        assert f"\n  {name} " in r.stdout
    r = run_cli(["bench", "--help"])
    for name in ("ipc", "boot", "trace", "sim"):
        assert f"\n  {name} " in r.stdout
    r = run_cli(["bench", "nope"])
    assert r.returncode == 2 and "unknown benchmark 'nope'" in r.stderr


def test_a_second_init_is_refused(orrery_bin):
    # There is one init (the kernel starts it): a second would read the console device beside
    # it, and a console started later could not open it (found by fuzz_init).
    r = run_cli(["run", "--deterministic"], input="spawn init\nps\nshutdown 5\n")
    assert r.returncode == 5, r.stderr
    assert "spawn init: already exists" in r.stdout
    assert len([l for l in r.stdout.splitlines() if re.search(r"\binit\s+idle", l)]) == 1


def test_net_option(orrery_bin):
    """--net none|user[,hostfwd=...]: bad values name the option; a busy host port fails the run.
    Only 127.0.0.1 is used; with no server on net0 nothing is sent anywhere."""
    import socket
    for value, says in (("bogus", "'bogus' is not a network"),
                        ("user,hostfwd=tcp:127.0.0.1:0-:80", "host port must be 1..65535"),
                        ("user,hostfwd=tcp:127.0.0.1:8080-192.168.0.1:80",
                         "guest address must be in 10.0.2.0/24")):
        r = run_cli(["run", "--net", value], input="shutdown\n")
        assert r.returncode == 2, value
        assert r.stderr.startswith("orrery: run: --net: "), r.stderr
        assert says in r.stderr, r.stderr
    r = run_cli(["run", "--deterministic", "--net", "user"], input="shutdown\n")
    assert r.returncode == 2 and "--deterministic" in r.stderr
    assert run_cli(["run", "--net", "none"], input="shutdown\n").returncode == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli(["run", "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:80"], input="shutdown\n")
        assert r.returncode == 1
        assert f"hostfwd tcp:127.0.0.1:{port}: cannot listen" in r.stderr, r.stderr
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    r = run_cli(["run", "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:80"], input="shutdown\n")
    assert r.returncode == 0, r.stderr
