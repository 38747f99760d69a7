"""test_bench_sim.py — `orrery bench sim`: its JSON (the single-node figures and the cluster rows,
idle and busy, with the published reference figures), the text table, --quick, and usage errors.
Small sizes; no timing thresholds."""
import json

from conftest import run_cli

CLUSTER_FIELDS = ("virtual_s", "wall_s", "sim_s_per_wall_s", "frames", "frames_per_s", "events",
                  "events_per_s", "messages", "seeds_per_hour")


def positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def bench(*args):
    r = run_cli(["bench", "sim", "--virtual=1", "--msgs=100", "--cluster-virtual=1", *args],
                timeout=120)
    assert r.returncode == 0, r.stderr
    return r


def test_the_json_has_every_cluster_row_with_sane_figures(orrery_bin):
    out = json.loads(bench("--clusters=2,3", "--json").stdout)
    for key in ("time_compression", "msgs_per_s", "msgs"):
        assert positive(out[key]), key
    rows = out["clusters"]
    assert [(c["nodes"], c["load"]) for c in rows] == [(2, "idle"), (2, "busy"), (3, "idle"),
                                                       (3, "busy")]
    for c in rows:
        for key in CLUSTER_FIELDS:
            assert positive(c[key]), (key, c)
        assert c["virtual_s"] >= 1.0
        # the rates are the counts over the same wall time
        assert abs(c["frames_per_s"] - c["frames"] / c["wall_s"]) <= 0.01 * c["frames_per_s"] + 1
        assert abs(c["sim_s_per_wall_s"] - c["virtual_s"] / c["wall_s"]) <= \
            0.01 * c["sim_s_per_wall_s"] + 0.01
    idle, busy = rows[0], rows[1]
    # the busy load's fetches and pings put far more on the wire than idle tcpip does
    assert busy["frames"] > 10 * idle["frames"]
    assert out["published"] == {"tigerbeetle_vopr_x": 700, "foundationdb_x": 10}
    # every ratio names what it is measured against
    assert sorted(out["baselines"]) == ["clusters.sim_s_per_wall_s", "published.foundationdb_x",
                                        "published.tigerbeetle_vopr_x", "time_compression"]
    assert out["baselines"]["time_compression"]["baseline"] == "timer_wall_s"
    assert out["baselines"]["clusters.sim_s_per_wall_s"]["baseline"] == "clusters.wall_s"


def test_the_text_names_each_row_and_the_published_figures(orrery_bin):
    out = bench("--clusters=2").stdout
    assert "nodes load" in out and "seeds/hour" in out
    assert "\n      2 idle " in out and "\n      2 busy " in out
    assert 'published, not measured: TigerBeetle VOPR "up to 700x"' in out
    assert "FoundationDB about 10:1" in out


def test_no_clusters_and_quick(orrery_bin):
    out = json.loads(bench("--clusters=none", "--json").stdout)
    assert out["clusters"] == [] and positive(out["msgs_per_s"])
    r = run_cli(["bench", "sim", "--quick", "--msgs=50", "--json"], timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted({c["nodes"] for c in out["clusters"]}) == [2, 8]
    assert out["virtual_s"] == 10.0 and out["msgs"] < 1000  # --msgs given wins over --quick


def test_usage_errors(orrery_bin):
    for bad in ("--clusters=1", "--clusters=65", "--clusters=2,,3", "--clusters=x",
                "--clusters=2,2,2,2,2,2,2,2,2", "--cluster-virtual=0"):
        r = run_cli(["bench", "sim", bad])
        assert r.returncode == 2, (bad, r.stdout)
        assert "orrery: bench sim: --cluster" in r.stderr, (bad, r.stderr)
    r = run_cli(["bench", "sim", "--help"])
    assert r.returncode == 0 and "--clusters" in r.stdout and "bench sim: clusters" in r.stdout
