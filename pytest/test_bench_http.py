"""test_bench_http.py — `orrery bench http`: its JSON (every row measured, skipped with a reason
or off; nginx named as the baseline and the ratios computed against it; Starina's reference row),
rows skipped with reasons where wrk, nginx or QEMU are missing, usage errors, and that it leaves
no process and no temp file behind. Short durations; no timing thresholds."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import image_path, kvm_skip_reason, orrery_path, qemu_missing

ROWS = ["nginx", "hosted", "microvm-tcg", "microvm-kvm", "serve-hosted", "serve-microvm"]


def bench(args, tmp_path, env=None, timeout=600):
    e = dict(os.environ, TMPDIR=str(tmp_path))
    e.pop("ORRERY_DISK", None)  # the default disk carries the site
    e.update(env or {})
    return subprocess.run([orrery_path(), "bench", "http", *args], capture_output=True,
                          text=True, timeout=timeout, env=e)


def need(tool):
    if not shutil.which(tool) and not os.access(f"/usr/sbin/{tool}", os.X_OK):
        pytest.skip(f"{tool} is not installed (scripts/setup installs it)")


def rows_of(out):
    return {r["name"]: r for r in out["rows"]}


def check_point(p, base):
    assert p["rps"] > 0 and p["requests"] > 0, p
    assert 0 <= p["p50_ms"] <= p["p75_ms"] <= p["p90_ms"] <= p["p99_ms"], p
    if base is None:
        assert p["rps_vs_nginx"] is None
    else:
        assert p["rps_vs_nginx"] == pytest.approx(p["rps"] / base["rps"], rel=1e-3, abs=1e-3)
        assert p["p50_vs_nginx"] == pytest.approx(p["p50_ms"] / base["p50_ms"], rel=1e-2,
                                                  abs=1e-2)


def test_json_nginx_and_hosted_with_ratios(orrery_bin, tmp_path):
    need("wrk")
    need("nginx")
    r = bench(["--json", "--only", "nginx,hosted", "--duration", "1", "--connections", "1,4"],
              tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["benchmark"] == "http" and out["baseline"] == "nginx"
    # every ratio a point or a row carries names its baseline
    assert sorted(out["baselines"]) == ["p50_vs_nginx", "request_ms_vs_starina", "rps_vs_nginx"]
    assert out["baselines"]["rps_vs_nginx"]["baseline"] == "nginx"
    assert out["baselines"]["request_ms_vs_starina"]["baseline"] == "starina-vmcgi"
    assert out["duration_s"] == 1 and out["page"]["bytes"] > 0
    rows = rows_of(out)
    assert list(rows) == ROWS + ["starina-vmcgi"]
    for name in ("microvm-tcg", "microvm-kvm", "serve-hosted", "serve-microvm"):
        assert rows[name]["state"] == "off" and rows[name]["points"] == []
    nginx = {p["connections"]: p for p in rows["nginx"]["points"]}
    assert sorted(nginx) == [1, 4]
    for name in ("nginx", "hosted"):
        assert rows[name]["state"] == "measured", rows[name]
        assert [p["connections"] for p in rows[name]["points"]] == [1, 4]
        for p in rows[name]["points"]:
            check_point(p, nginx[p["connections"]])
            assert p["errors"] == 0, p
    for p in rows["nginx"]["points"]:
        assert p["rps_vs_nginx"] == pytest.approx(1.0)
    star = rows["starina-vmcgi"]
    assert star["state"] == "reference"
    assert (star["request_ms"], star["qemu_ms"], star["os_ms"]) == (100.0, 60.0, 40.0)
    assert "nginx: 1 connection(s)" in r.stderr  # progress goes to stderr
    assert os.listdir(tmp_path) == []  # the temp folder (nginx's prefix) is gone
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "orrery-bench-http." not in ps  # the private nginx is stopped


def test_json_serve_hosted_boot_times_beside_starina(orrery_bin, tmp_path):
    need("wrk")
    r = bench(["--json", "--only", "serve-hosted", "--duration", "1"], tmp_path)
    assert r.returncode == 0, r.stderr
    row = rows_of(json.loads(r.stdout))["serve-hosted"]
    assert row["state"] == "measured", row
    assert row["boots"] == 5
    assert 0 < row["boot_ms_min"] <= row["boot_ms_median"] <= row["boot_ms_max"]
    assert row["request_ms_vs_starina"] == pytest.approx(row["request_ms_median"] / 100.0,
                                                         rel=1e-3, abs=1e-3)
    assert [p["connections"] for p in row["points"]] == [1, 4]
    for p in row["points"]:
        check_point(p, None)  # nginx was off: no ratio


def test_missing_wrk_skips_every_row_with_the_reason(orrery_bin, tmp_path):
    r = bench(["--json", "--duration", "1"], tmp_path, env={"ORRERY_WRK": "/nonexistent/wrk"})
    assert r.returncode == 0, r.stderr  # skipped rows are not failures
    out = json.loads(r.stdout)
    for row in out["rows"][:-1]:
        assert row["state"] == "skipped" and "no wrk" in row["why"], row
    assert out["rows"][-1]["name"] == "starina-vmcgi"


def test_missing_nginx_skips_the_baseline_and_leaves_ratios_empty(orrery_bin, tmp_path):
    need("wrk")
    r = bench(["--json", "--only", "nginx,hosted", "--duration", "1", "--connections", "1"],
              tmp_path, env={"ORRERY_NGINX": "/nonexistent/nginx"})
    assert r.returncode == 0, r.stderr
    rows = rows_of(json.loads(r.stdout))
    assert rows["nginx"]["state"] == "skipped" and "no nginx" in rows["nginx"]["why"]
    assert rows["hosted"]["state"] == "measured"
    check_point(rows["hosted"]["points"][0], None)


def test_kvm_row_is_skipped_with_the_reason_where_kvm_cannot_run(orrery_bin, tmp_path):
    need("wrk")
    if qemu_missing():
        r = bench(["--json", "--only", "microvm-kvm", "--duration", "1"], tmp_path)
        row = rows_of(json.loads(r.stdout))["microvm-kvm"]
        assert row["state"] == "skipped" and "QEMU" in row["why"], row
        return
    if not kvm_skip_reason():
        pytest.skip("KVM runs here; the row is measured")
    r = bench(["--json", "--only", "microvm-kvm", "--duration", "1"], tmp_path)
    assert r.returncode == 0, r.stderr
    row = rows_of(json.loads(r.stdout))["microvm-kvm"]
    assert row["state"] == "skipped" and row["why"].startswith("KVM is not usable"), row


@pytest.mark.parametrize("accel", ["tcg", "kvm"])
def test_qemu_microvm_row(orrery_bin, tmp_path, accel):
    need("wrk")
    if qemu_missing():
        pytest.skip(qemu_missing())
    if not os.access(image_path(), os.R_OK):
        pytest.fail(f"{image_path()} is not built (run scripts/build)")
    if accel == "kvm" and kvm_skip_reason():
        pytest.skip(kvm_skip_reason())
    name = f"microvm-{accel}"
    r = bench(["--json", "--only", name, "--duration", "1", "--connections", "1"], tmp_path)
    assert r.returncode == 0, r.stderr
    row = rows_of(json.loads(r.stdout))[name]
    assert row["state"] == "measured" and row["accel"] == accel, row
    check_point(row["points"][0], None)


@pytest.mark.parametrize("args,message", [
    (["--duration", "0"], "--duration wants a number from 1 to 600"),
    (["--connections", "1,x"], "--connections wants a number from 1 to 1000, not 'x'"),
    (["--connections", "1,2,3,4,5,6,7,8,9"], "--connections: at most 8 counts"),
    (["--only", "apache"], "--only: unknown row 'apache'"),
    (["--disk", "/nonexistent.img"], "--disk /nonexistent.img: No such file or directory"),
    (["--bogus"], "unknown option '--bogus'"),
])
def test_usage_errors(orrery_bin, tmp_path, args, message):
    r = bench(args, tmp_path, timeout=30)
    assert r.returncode == 2, r
    assert message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
