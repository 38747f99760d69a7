"""test_trace_nodes.py — `orrery trace` and `orrery replay` on a trace of several nodes.

The trace is a two-node simulated cluster (node "client": a shell pinging; node "server": tcpip
and tcpecho) written by build/tests/record_cluster through trace_recorder_set_nodes /
trace_recorder_record_node (tests/traces/cluster_trace.c). summary has a section per node, show
a node column and --node, export --perfetto one process per node and flows for the frames that
crossed between them, export --pcap every node's frames or one's; replay needs --node.
"""
import json
import os
import sqlite3
import subprocess

import pytest

from conftest import orrery_path, run_cli

NODES = ["client", "server"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The two-node trace, recorded once for the module."""
    tool = os.path.join(os.path.dirname(orrery_path()), "tests", "record_cluster")
    if not os.access(tool, os.X_OK):
        pytest.fail(f"{tool} is not built (ninja -C build record_cluster)")
    db = tmp_path_factory.mktemp("cluster") / "cluster.db"
    r = subprocess.run([tool, str(db)], capture_output=True, text=True, timeout=120)
    assert 0 == r.returncode, r.stderr
    assert "3 transmitted, 3 received" in r.stderr
    return db


def sql(db, query):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_schema_3_nodes_table(cluster):
    assert [("3",)] == sql(cluster, "SELECT value FROM meta WHERE key = 'schema_version'")
    assert [(0, "client"), (1, "server")] == sql(cluster, "SELECT id, name FROM nodes ORDER BY id")
    # Task ids restart per node: init is task 1 on both.
    assert [(0, "init"), (1, "init")] == sql(
        cluster, "SELECT node, name FROM tasks WHERE id = 1 ORDER BY node")
    # events.seq is the file's order; node_seq each node's own, from 1 on each.
    assert [(0, 1), (1, 1)] == sql(
        cluster, "SELECT node, min(node_seq) FROM events GROUP BY node ORDER BY node")


def test_summary_has_a_section_per_node(cluster):
    r = run_cli(["trace", "summary", str(cluster)])
    assert 0 == r.returncode, r.stderr
    out = r.stdout
    assert "nodes: 2 (client, server)" in out
    client = out.index("== node client (0): ")
    server = out.index("== node server (1): ")
    assert client < server
    # Each section's task table holds its node's tasks.
    assert " shell " in out[client:server] and " tcpecho " not in out[client:server]
    assert " tcpecho " in out[server:] and " shell " not in out[server:]
    # The sections' counts add up to the file's.
    total = int(out.split("events: ")[1].split()[0])
    per_node = [int(out[i:].split("): ")[1].split()[0]) for i in (client, server)]
    assert total == sum(per_node)
    assert per_node == [n for (n,) in sql(
        cluster, "SELECT count(*) FROM events GROUP BY node ORDER BY node")]

    one = run_cli(["trace", "summary", str(cluster), "--node", "server"])
    assert 0 == one.returncode, one.stderr
    assert "== node server (1): " in one.stdout and "== node client" not in one.stdout


def test_show_node_column_and_filter(cluster):
    r = run_cli(["trace", "show", str(cluster)])
    assert 0 == r.returncode, r.stderr
    nodes = {line.split()[2] for line in r.stdout.splitlines()}
    assert set(NODES) == nodes
    r = run_cli(["trace", "show", str(cluster), "--node", "server", "--task", "tcpecho"])
    assert 0 == r.returncode, r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(line.split()[2] == "server" for line in lines)
    assert all(line.split()[3].startswith("tcpecho:") for line in lines)
    # An unknown node: one line naming the trace's nodes, exit 2.
    r = run_cli(["trace", "show", str(cluster), "--node", "nobody"])
    assert 2 == r.returncode
    assert "no node 'nobody' (its nodes: client, server)" in r.stderr
    assert "" == r.stdout


def test_perfetto_process_per_node_and_frame_flows(cluster, tmp_path):
    out = tmp_path / "cluster.json"
    r = run_cli(["trace", "export", "--perfetto", str(cluster), str(out)])
    assert 0 == r.returncode, r.stderr
    events = json.loads(out.read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert {1: "client", 2: "server"} == names
    assert {1, 2} == {e["pid"] for e in events}
    threads = {(e["pid"], e["args"]["name"]) for e in events if e.get("name") == "thread_name"}
    assert (1, "shell:4") in threads and (2, "tcpecho:3") in threads
    # Frames between nodes: an 's' and an 'f' per id, on different processes, in time order.
    starts = {e["id"]: e for e in events if e.get("cat") == "net" and e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e.get("cat") == "net" and e["ph"] == "f"}
    assert len(starts) >= 8  # the ARP exchange and three pings, both ways
    assert set(starts) == set(ends)
    for i, s in starts.items():
        f = ends[i]
        assert s["pid"] != f["pid"], (s, f)
        assert s["ts"] <= f["ts"]
    assert {1, 2} == {s["pid"] for s in starts.values()}
    # The IPC flows stay within their node, and their ids never meet the frames'.
    ipc_s = {e["id"]: e["pid"] for e in events if e.get("cat") == "ipc" and e["ph"] == "s"}
    ipc_f = {e["id"]: e["pid"] for e in events if e.get("cat") == "ipc" and e["ph"] == "f"}
    assert ipc_f and all(ipc_s[i] == p for i, p in ipc_f.items())
    assert not set(ipc_s) & set(starts)

    one = run_cli(["trace", "export", "--perfetto", str(cluster), "-", "--node", "client"])
    assert 0 == one.returncode, one.stderr
    events = json.loads(one.stdout)["traceEvents"]
    assert {1} == {e["pid"] for e in events}
    assert not [e for e in events if e.get("cat") == "net"]


def test_pcap_every_node_or_one(cluster, tmp_path):
    def frames(path):
        data = path.read_bytes()
        n, off = 0, 24
        while off < len(data):
            off += 16 + int.from_bytes(data[off + 8:off + 12], "little")
            n += 1
        return n

    for args, name in (([], "all"), (["--node", "server"], "server")):
        r = run_cli(["trace", "export", "--pcap", str(cluster), str(tmp_path / name), *args])
        assert 0 == r.returncode, r.stderr
    # Every node's frames: what each net0 wrote (accepted) and was posted, on each node.
    want = sql(cluster, """SELECT e.node, count(*) FROM events e JOIN events d
        ON d.kind = 21 AND CAST(d.payload AS TEXT) = 'net0' AND d.node = e.node AND d.chan = e.chan
        WHERE e.type = 1 AND (e.kind = 12 OR (e.kind = 14 AND e.result = 0))
        GROUP BY e.node ORDER BY e.node""")
    assert frames(tmp_path / "all") == sum(n for _, n in want)
    assert frames(tmp_path / "server") == want[1][1]


def test_replay_needs_the_node(cluster):
    r = run_cli(["replay", str(cluster), "--task", "tcpecho"])
    assert 2 == r.returncode
    assert "the trace holds 2 nodes (client, server): name the task's with --node NAME" in r.stderr
    r = run_cli(["replay", str(cluster), "--task", "tcpecho", "--node", "server"])
    assert 0 == r.returncode, r.stdout + r.stderr
    assert "events matched" in r.stdout


def test_a_trace_of_one_kernel_has_no_nodes(tmp_path):
    db = tmp_path / "one.db"
    r = run_cli(["trace", "record", str(db), "--deterministic"], input="echo hi\nshutdown\n")
    assert 0 == r.returncode, r.stderr
    assert [] == sql(db, "SELECT * FROM nodes")
    assert [(0,)] == sql(db, "SELECT DISTINCT node FROM events")
    assert [] == sql(db, "SELECT seq FROM events WHERE node_seq <> seq")
    r = run_cli(["trace", "show", str(db), "--node", "client"])
    assert 2 == r.returncode
    assert "the trace is of one kernel" in r.stderr
    r = run_cli(["trace", "summary", str(db)])
    assert 0 == r.returncode and "== node" not in r.stdout


def test_corpus_keeps_each_nodes_inputs_apart(cluster, tmp_path):
    r = run_cli(["trace", "corpus", str(cluster), str(tmp_path / "corpus")])
    assert 0 == r.returncode, r.stderr
    tcpip = sorted(os.listdir(tmp_path / "corpus" / "tcpip"))
    assert ["cluster-client-task3", "cluster-server-task2"] == tcpip
    # The console lines are the client's typed ones; net0's frames (same code) are not lines.
    assert ["cluster-client-lines"] == os.listdir(tmp_path / "corpus" / "shell")
    lines = (tmp_path / "corpus" / "shell" / "cluster-client-lines").read_bytes()
    assert b"ping 10.0.0.2 3" in lines and b"shutdown" in lines
