"""test_pcap.py — packet captures of net0: `orrery run --pcap` read back by tcpdump, `trace export
--pcap` giving the same frames from the run's trace, `trace show` decoding them, and the output
rule (a file that is not a pcap is never replaced). Only slirp's 10.0.2.x network is used."""
import os
import re
import shutil
import sqlite3
import struct
import subprocess

import pytest

from conftest import Session, orrery_path, run_cli

MANIFEST = (
    "program console restart=always\n"
    "program shell   restart=always max-restarts=10 reach=console,echo,init\n"
    "program echo    restart=on-failure\n"
    "program tcpip   restart=on-failure\n"
)
DHCP_LINE = r"\[tcpip\] net0 10\.0\.2\.15/24 gw 10\.0\.2\.2 \(dhcp\)"
OUR_MAC = bytes.fromhex("525400123456")
TCPDUMP = shutil.which("tcpdump")


def read_pcap(path):
    """(header fields, [(ts_ns, bytes)]) of a nanosecond pcap; asserts its layout on the way."""
    data = open(path, "rb").read()
    assert len(data) >= 24, path
    magic, major, minor, zone, sigfigs, snaplen, link = struct.unpack("<IHHiIII", data[:24])
    frames = []
    off = 24
    while off < len(data):
        assert off + 16 <= len(data), f"{path}: a cut record header at {off}"
        sec, nsec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        assert nsec < 10**9 and incl == orig and off + 16 + incl <= len(data)
        frames.append((sec * 10**9 + nsec, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return (magic, major, minor, zone, sigfigs, snaplen, link), frames


def split(frames):
    """Frames we sent (source MAC ours) and frames we received, each in order."""
    out = [f for _, f in frames if f[6:12] == OUR_MAC]
    inn = [f for _, f in frames if f[6:12] != OUR_MAC]
    return out, inn


def need_tcpdump():
    if TCPDUMP is None:
        if os.environ.get("CI"):
            pytest.fail("tcpdump is missing (scripts/setup installs it)")
        pytest.skip("tcpdump is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def capture(tmp_path_factory, orrery_bin):
    """One hosted run with tcpip over slirp, captured (--pcap) and traced (--trace)."""
    d = tmp_path_factory.mktemp("pcap")
    manifest = d / "tcpip.manifest"
    manifest.write_text(MANIFEST)
    pcap, trace = d / "run.pcap", d / "run.db"
    s = Session([orrery_bin, "run", "--manifest", str(manifest), "--net", "user",
                 "--pcap", str(pcap), "--trace", str(trace)])
    try:
        s.expect(DHCP_LINE)
        s.send_line("shutdown")
        assert s.wait() == 0, s.stderr
    finally:
        s.kill()
    assert not os.path.exists(str(pcap) + ".partial")
    return d, pcap, trace


def test_run_pcap_holds_the_dhcp_exchange(capture):
    d, pcap, _ = capture
    head, frames = read_pcap(pcap)
    assert head == (0xa1b23c4d, 2, 4, 0, 0, 65535, 1)
    out, inn = split(frames)
    assert out and inn
    assert all(1 <= len(f) <= 1514 for _, f in frames)
    # the kernel clock: ns since boot, in order within each direction
    for t, _ in frames:
        assert t < 60 * 10**9
    need_tcpdump()
    r = subprocess.run([TCPDUMP, "-r", str(pcap), "-nn", "-v"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    kinds = re.findall(r"DHCP-Message \(53\), length 1: (\w+)", r.stdout)
    assert kinds[:4] == ["Discover", "Offer", "Request", "ACK"], r.stdout
    assert "52:54:00:12:34:56" in r.stdout


def test_export_gives_the_frames_run_captured(capture):
    d, pcap, trace = capture
    out_path = d / "export.pcap"
    r = run_cli(["trace", "export", "--pcap", str(trace), str(out_path)])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    head, exported = read_pcap(out_path)
    assert head == (0xa1b23c4d, 2, 4, 0, 0, 65535, 1)
    _, captured = read_pcap(pcap)
    assert len(exported) == len(captured)
    # Same bytes both ways, in the same order per direction (a reply may be recorded before the
    # write that caused it: see docs/trace-format.md).
    assert split(exported) == split(captured)
    # Timestamps are the trace's own times.
    db = sqlite3.connect(str(trace))
    times = [t for (t,) in db.execute(
        "SELECT e.time_ns FROM events e WHERE e.type = 1 AND e.chan = "
        "(SELECT chan FROM events WHERE kind = 21 AND CAST(payload AS TEXT) = 'net0')"
        " AND (e.kind = 12 OR (e.kind = 14 AND e.result = 0)) ORDER BY e.seq")]
    db.close()
    assert [t for t, _ in exported] == times
    # '-' writes the same file to stdout
    p = subprocess.run([orrery_path(), "trace", "export", "--pcap", str(trace), "-"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stdout == open(out_path, "rb").read()


def test_export_replaces_only_a_pcap(capture):
    d, pcap, trace = capture
    notes = d / "notes.txt"
    notes.write_text("not a capture\n")
    r = run_cli(["trace", "export", "--pcap", str(trace), str(notes)])
    assert r.returncode == 2
    assert re.search(r"notes\.txt: exists and is not a pcap file", r.stderr), r.stderr
    assert notes.read_text() == "not a capture\n"
    assert not os.path.exists(str(notes) + ".partial")
    # the trace itself is not a pcap: export --pcap T T is refused, T intact
    before = open(trace, "rb").read()
    r = run_cli(["trace", "export", "--pcap", str(trace), str(trace)])
    assert r.returncode == 2 and open(trace, "rb").read() == before
    # an earlier capture is replaced
    again = d / "again.pcap"
    shutil.copy(pcap, again)
    r = run_cli(["trace", "export", "--pcap", str(trace), str(again)])
    assert r.returncode == 0, r.stderr
    # run --pcap onto a file that is not a pcap: refused before the OS boots
    r = run_cli(["run", "--net", "user", "--pcap", str(notes)], input="shutdown\n")
    assert r.returncode == 2
    assert "orrery: run: --pcap:" in r.stderr and "is not a pcap file" in r.stderr
    assert "orrery>" not in r.stdout
    assert notes.read_text() == "not a capture\n"


def test_export_skips_a_damaged_frame_row(capture):
    d, _, trace = capture
    bad = d / "damaged.db"
    shutil.copy(trace, bad)
    db = sqlite3.connect(str(bad))
    (seq,) = db.execute(
        "SELECT seq FROM events WHERE kind = 12 AND type = 1 AND chan = "
        "(SELECT chan FROM events WHERE kind = 21 AND CAST(payload AS TEXT) = 'net0')"
        " ORDER BY seq LIMIT 1").fetchone()
    db.execute("UPDATE events SET payload = substr(payload, 1, 20) WHERE seq = ?", (seq,))
    db.commit()
    db.close()
    r = run_cli(["trace", "export", "--pcap", str(trace), str(d / "whole.pcap")])
    assert r.returncode == 0, r.stderr
    r = run_cli(["trace", "export", "--pcap", str(bad), str(d / "damaged.pcap")])
    assert r.returncode == 0, r.stderr
    assert re.search(rf"skipped 1 damaged frame row \(first: seq {seq}, payload length disagrees"
                     r" with len \(20 bytes, len \d+\)\)", r.stderr), r.stderr
    _, whole = read_pcap(d / "whole.pcap")
    _, damaged = read_pcap(d / "damaged.pcap")
    assert len(damaged) == len(whole) - 1


def test_show_decodes_net0_frames(capture):
    _, _, trace = capture
    r = run_cli(["trace", "show", str(trace)])
    assert r.returncode == 0, r.stderr
    assert re.search(r'DEVICE\s+dev (\d+) = "net0"', r.stdout), r.stdout[:2000]
    assert re.search(r"DEV_WRITE\s+dev \d+ net0 FRAME \[350 bytes\] 52:54:00:12:34:56 > "
                     r"ff:ff:ff:ff:ff:ff, IPv4 0\.0\.0\.0 > 255\.255\.255\.255: UDP 68 > 67 len 308,"
                     r" DHCP DISCOVER xid 0x[0-9a-f]{8}", r.stdout)
    assert re.search(r"DEV_POST\s+dev \d+ net0 FRAME \[\d+ bytes\] \S+ > \S+, IPv4 10\.0\.2\.2 > "
                     r"\S+: UDP 67 > 68 len \d+, DHCP ACK xid 0x[0-9a-f]{8} yiaddr 10\.0\.2\.15",
                     r.stdout)
    assert re.search(r"DEV_POST\s+dev \d+ net0 LINK_UP \[6 bytes\] 52 54 00 12 34 56", r.stdout)
    assert re.search(r"DEV_POST\s+dev \d+ console LINE \[8 bytes\] .*\|shutdown\|", r.stdout)


def test_killed_run_leaves_a_partial_pcap_the_next_run_replaces(tmp_path, orrery_bin):
    manifest = tmp_path / "tcpip.manifest"
    manifest.write_text(MANIFEST)
    pcap = tmp_path / "k.pcap"
    partial = tmp_path / "k.pcap.partial"
    s = Session([orrery_bin, "run", "--manifest", str(manifest), "--net", "user",
                 "--pcap", str(pcap)])
    try:
        s.expect(DHCP_LINE)
    finally:
        s.kill()  # SIGKILL: no close, no rename
    assert not pcap.exists()
    head, _ = read_pcap(partial)  # at least the header, written at once
    assert head == (0xa1b23c4d, 2, 4, 0, 0, 65535, 1)
    s = Session([orrery_bin, "run", "--manifest", str(manifest), "--net", "user",
                 "--pcap", str(pcap)])
    try:
        s.expect(DHCP_LINE)
        s.send_line("shutdown")
        assert s.wait() == 0, s.stderr
    finally:
        s.kill()
    assert not partial.exists()
    _, frames = read_pcap(pcap)
    assert len(frames) >= 4


def test_export_without_net0(tmp_path):
    trace = tmp_path / "plain.db"
    r = run_cli(["run", "--deterministic", "--trace", str(trace)], input="shutdown\n")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "none.pcap"
    r = run_cli(["trace", "export", "--pcap", str(trace), str(out)])
    assert r.returncode == 1
    assert "the trace names no net0 device" in r.stderr
    assert not out.exists() and not os.path.exists(str(out) + ".partial")


def test_pcap_usage_errors(tmp_path):
    r = run_cli(["run", "--pcap", str(tmp_path / "x.pcap")], input="shutdown\n")
    assert r.returncode == 2
    assert "run: --pcap needs --net user" in r.stderr
    assert not (tmp_path / "x.pcap").exists()
    r = run_cli(["run", "--net", "user", "--pcap", "-"])
    assert r.returncode == 2 and "stdout is the console" in r.stderr
    r = run_cli(["trace", "export", "--pcap", "--perfetto", "a.db", "b"])
    assert r.returncode == 2 and "one format at a time" in r.stderr
    r = run_cli(["trace", "export", "--pcap", "--clock", "seq", "a.db", "b"])
    assert r.returncode == 2 and "--clock is for --perfetto" in r.stderr
    r = run_cli(["trace", "export", "--pcap", "a.db"])
    assert r.returncode == 2
    r = run_cli(["run", "--help"])
    assert "--pcap FILE" in r.stdout
    r = run_cli(["trace", "export", "--help"])
    assert "--pcap FILE OUT.pcap" in r.stdout
