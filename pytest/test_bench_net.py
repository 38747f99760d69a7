"""test_bench_net.py — `orrery bench net`: its JSON (every row measured or skipped with a reason,
every ratio naming its baseline), rows that cannot run, a child that dies, usage errors, and
that it leaves no process and no file behind. No timing thresholds."""
import json
import os
import subprocess

import pytest

from conftest import orrery_path

FIGURES = ("rtt_median_us", "rtt_p99_us", "bulk_mib_s", "conns_per_s")
RATIOS = ("rtt_median_over_baseline", "rtt_p99_over_baseline", "bulk_over_baseline",
          "conns_over_baseline")


def bench(args, tmp_path, env_extra=None, timeout=300):
    env = dict(os.environ, TMPDIR=str(tmp_path), **(env_extra or {}))
    return subprocess.run([orrery_path(), "bench", "net", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def check_figures(fig, base, conns=True):
    for key in FIGURES:
        if key == "conns_per_s" and not conns:
            assert fig[key] is None
        else:
            assert positive(fig[key]), (key, fig)
    assert fig["rtt_p99_us"] >= fig["rtt_median_us"]
    assert fig["ratios"]["baseline"] == "loopback"
    for key, figure in zip(RATIOS, ("rtt_median_us", "rtt_p99_us", "bulk_mib_s", "conns_per_s")):
        if fig[figure] is None:
            assert fig["ratios"][key] is None
        else:
            assert fig["ratios"][key] == pytest.approx(fig[figure] / base[figure], rel=0.01,
                                                       abs=0.002)


def orrery_children():
    """Processes still running with a bench manifest on their command line (none should)."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "orrery-bench-net-" in line]


def test_json_of_sim_and_hosted_rows(orrery_bin, tmp_path):
    r = bench(["--json", "--rows", "sim,hosted", "--count", "20", "--bytes", "65536"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["bench"] == "net" and out["count"] == 20 and out["bytes"] == 65536
    assert out["message_bytes"] == 64
    base = out["baseline"]
    assert base["name"] == "loopback"
    for key in FIGURES:
        assert positive(base[key]), key
    # every ratio of the rows names its baseline and the figure it divides
    for key, b in out["baselines"].items():
        assert b["baseline"] == "loopback" and key.endswith("_over_baseline"), key
        assert b["ratio"].split(" / ")[1].removeprefix("baseline.") in base, b
    rows = {row["row"]: row for row in out["rows"]}
    assert sorted(rows) == ["hosted", "sim"]
    for name, row in rows.items():
        assert row["status"] in ("measured", "skipped"), row
        if row["status"] == "skipped":
            assert isinstance(row["reason"], str) and row["reason"], row
            continue
        assert row["clock"] == "wall"
        check_figures(row, base, conns=name != "sim")
        assert set(row["ratios"]) - {"baseline"} == set(out["baselines"]), row
    sim = rows["sim"]
    if sim["status"] == "measured":
        check_figures(sim["virtual"], base, conns=False)
        assert positive(sim["run_wall_s"]) and positive(sim["run_virtual_s"])
    # The manifest file the children booted with is gone, and so are the children.
    assert os.listdir(tmp_path) == []
    assert orrery_children() == []


def test_the_table_names_the_baseline_and_every_row(orrery_bin, tmp_path):
    r = bench(["--rows", "sim", "--count", "5", "--bytes", "4096"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "baseline, loopback" in r.stdout
    lines = r.stdout.splitlines()
    assert any(line.startswith("loopback ") for line in lines)
    assert any(line.startswith("sim (wall) ") for line in lines)
    assert any(line.startswith("sim (virtual) ") for line in lines)


def test_qemu_rows_without_qemu_are_skipped_with_the_reason(orrery_bin, tmp_path):
    r = bench(["--json", "--rows", "qemu-q35,qemu-microvm", "--count", "3", "--bytes", "64"],
              tmp_path, {"ORRERY_QEMU": str(tmp_path / "no-such-qemu")})
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["rows"]
    assert [row["row"] for row in rows] == ["qemu-q35", "qemu-microvm"]
    for row in rows:
        assert row["status"] == "skipped"
        assert row["reason"].startswith("no QEMU")
    assert os.listdir(tmp_path) == []


def test_a_child_that_dies_fails_its_row_at_once(orrery_bin, tmp_path):
    # /bin/false as QEMU: `orrery qemu` exits at once; the row fails with its last line
    # instead of waiting for a boot that cannot come (the subprocess timeout is the backstop).
    r = bench(["--json", "--rows", "qemu-microvm", "--count", "3", "--bytes", "64"], tmp_path,
              {"ORRERY_QEMU": "/bin/false"}, timeout=120)
    assert r.returncode == 1
    row = json.loads(r.stdout)["rows"][0]
    assert row["status"] == "failed"
    assert "exited before its echo service answered" in row["reason"]
    assert "orrery: bench net: qemu-microvm: it exited" in r.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args,message", [
    (["--rows", "hosted,mars"], "bench net: --rows: unknown row 'mars'"),
    (["--rows", ""], "bench net: --rows wants a list of hosted, qemu-q35, qemu-microvm, sim"),
    (["--count", "0"], "bench net: --count wants a number from 1 to 1000000, not '0'"),
    (["--bytes", "63"], "bench net: --bytes wants a number from 64 to 1073741824, not '63'"),
    (["--count", "small"], "bench net: --count wants a number from 1 to 1000000, not 'small'"),
    (["extra"], "bench net: unexpected argument 'extra'"),
    (["--no-such-option"], "bench net: unknown option '--no-such-option'"),
    (["--json=1"], "--json takes no value"),
])
def test_usage_errors(orrery_bin, tmp_path, args, message):
    r = bench(args, tmp_path, timeout=30)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert r.stdout == ""
    assert os.listdir(tmp_path) == []


def test_help(orrery_bin, tmp_path):
    r = bench(["--help"], tmp_path, timeout=30)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: orrery bench net")
    r = subprocess.run([orrery_path(), "bench", "--help"], capture_output=True, text=True)
    assert "\n  net " in r.stdout
