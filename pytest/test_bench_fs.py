"""test_bench_fs.py — `orrery bench fs`: its JSON (the host baseline measured, the hosted, QEMU
and fuse2fs rows measured or skipped with a reason, every ratio against the baseline), no fuse2fs
on PATH, usage errors, and nothing left behind (files, mounts). No timing thresholds."""
import json
import os
import subprocess

import pytest

from conftest import orrery_path

FIGURES = ("seq_write_mib_s", "seq_read_mib_s", "creates_per_s", "fsync_median_us",
           "fsync_p99_us")
RATIOS = {"seq_write_over_baseline": "seq_write_mib_s", "seq_read_over_baseline": "seq_read_mib_s",
          "creates_over_baseline": "creates_per_s",
          "fsync_median_over_baseline": "fsync_median_us"}


def bench(args, tmp_path, env_extra=None, timeout=900):
    env = dict(os.environ, TMPDIR=str(tmp_path), **(env_extra or {}))
    return subprocess.run([orrery_path(), "bench", "fs", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def check_row(row, base):
    for key in FIGURES:
        assert positive(row[key]), (key, row)
    assert row["fsync_p99_us"] >= row["fsync_median_us"]
    assert row["ratios"]["baseline"] == "host"
    for key, figure in RATIOS.items():
        assert row["ratios"][key] == pytest.approx(row[figure] / base[figure], rel=0.01,
                                                   abs=0.002)


def mounts_under(path):
    with open("/proc/self/mounts") as f:
        return [line for line in f if str(path) in line]


def test_json_baseline_and_rows(orrery_bin, tmp_path):
    r = bench(["--json", "--rows", "hosted,qemu-microvm,fuse2fs", "--size", "2", "--files", "20"],
              tmp_path)
    out = json.loads(r.stdout)
    assert out["bench"] == "fs" and out["size_mib"] == 2 and out["files"] == 20
    assert out["fsyncs"] == 50 and out["file_bytes"] == 1024
    base = out["baseline"]
    assert base["name"] == "host"
    for key in FIGURES:
        assert positive(base[key]), key
    # every ratio of the rows names its baseline and the figure it divides
    for key, b in out["baselines"].items():
        assert b["baseline"] == "host" and key.endswith("_over_baseline"), key
        assert b["ratio"].split(" / ")[1].removeprefix("baseline.") in base, b
    rows = {row["row"]: row for row in out["rows"]}
    assert sorted(rows) == ["fuse2fs", "hosted", "qemu-microvm"]
    assert rows["qemu-microvm"]["accel"] == "tcg"
    for row in rows.values():
        assert row["status"] in ("measured", "skipped"), (row, r.stderr)
        if row["status"] == "skipped":
            assert isinstance(row["reason"], str) and row["reason"], row
        else:
            check_row(row, base)
            named = set(row["ratios"]) - {"baseline"}
            assert named == set(out["baselines"]), row
    assert r.returncode == 0, r.stderr
    # the hosted row needs nothing the build lacks; QEMU's only QEMU and the image
    assert rows["hosted"]["status"] == "measured"
    if rows["qemu-microvm"]["status"] == "skipped":
        assert "QEMU" in rows["qemu-microvm"]["reason"] or "image" in rows["qemu-microvm"]["reason"]
    # the images, the manifest, the mount point: all gone, and nothing mounted
    assert os.listdir(tmp_path) == []
    assert mounts_under(tmp_path) == []


def test_table_names_the_baseline(orrery_bin, tmp_path):
    r = bench(["--rows", "fuse2fs", "--size", "1", "--files", "5"], tmp_path)
    assert "the baseline, host" in r.stdout
    assert "\nhost " in r.stdout and "\nfuse2fs " in r.stdout
    assert "orrery: bench fs: fuse2fs..." in r.stderr  # progress on stderr
    assert os.listdir(tmp_path) == []
    assert mounts_under(tmp_path) == []


def test_no_fuse2fs_is_a_skip_with_the_reason(orrery_bin, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    # mke2fs stays reachable by its full directory; fuse2fs does not
    r = bench(["--json", "--rows", "fuse2fs", "--size", "1", "--files", "5"], tmp_path,
              {"PATH": f"{empty}:/usr/sbin:/sbin"})
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)["rows"][0]
    assert row["status"] == "skipped"
    assert "fuse2fs" in row["reason"]
    assert sorted(os.listdir(tmp_path)) == ["bin"]


@pytest.mark.parametrize("args,msg", [
    (["--size", "0"], "--size wants a number from 1 to 4096"),
    (["--size", "4097"], "--size wants a number from 1 to 4096"),
    (["--files", "0"], "--files wants a number from 1 to 100000"),
    (["--rows", "nfs"], "--rows: unknown row 'nfs'"),
    (["--rows", ""], "--rows wants a list"),
    (["extra"], "unexpected argument 'extra'"),
    (["--bogus"], "unknown option"),
])
def test_usage_errors(orrery_bin, tmp_path, args, msg):
    r = bench(args, tmp_path)
    assert r.returncode == 2
    assert msg in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []
