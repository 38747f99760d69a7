"""test_qemu_net.py — net0 on the bare-metal image: the virtio-net driver under `orrery qemu
--net user` on q35 (virtio-pci) and microvm (virtio-mmio), `--pcap`, and the option errors.

The tcpip server binds 10.0.2.15 by QEMU's DHCP; the capture shows that exchange to
`tcpdump -r`; a stream of UDP datagrams through a hostfwd rule (each answered by lwIP with an
ICMP port unreachable) takes the receive ring around several times and the transmit ring too.
Only 127.0.0.1 and slirp's 10.0.2.x are addressed. KVM variants skip, with the reason, when
`orrery qemu --probe` finds that KVM cannot run here (ORRERY_QEMU_ACCELS=tcg,kvm).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import threading

import pytest

from conftest import orrery_path

QEMU = shutil.which(os.environ.get("ORRERY_QEMU", "qemu-system-x86_64"))
TCPDUMP = shutil.which("tcpdump")
TIMEOUT = 90  # TCG on a busy 2-core machine
DHCP_LINE = r"\[tcpip\] net0 10\.0\.2\.15/24 gw 10\.0\.2\.2 \(dhcp\)"
NET_COUNTERS = re.compile(r"frames rx (\d+) tx (\d+) dropped (\d+)")
RX_RING, TX_RING = 128, 256  # hal-baremetal/virtio/net.c
PCAP_HEADER = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")  # empty capture

MANIFEST = (
    "program console restart=always\n"
    "program shell   restart=always max-restarts=10 reach=console,echo,init,net\n"
    "program echo    restart=on-failure\n"
    "program tcpip   restart=on-failure\n"
)


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "net.manifest"
    path.write_text(MANIFEST)
    return str(path)


def free_port(kind):
    """A port of 127.0.0.1 that nothing holds right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def net_counters(s):
    """The tcpip server's frame counters, from the shell's `net` command."""
    m = NET_COUNTERS.search(s.run_commands(["net"]))
    assert m, s.output
    return int(m.group(1)), int(m.group(2))


def test_tcpip_binds_by_dhcp_and_pcap_shows_it(qemu, manifest, tmp_path):
    if TCPDUMP is None:
        pytest.skip("tcpdump is not installed (scripts/setup installs it)")
    pcap = tmp_path / "net0.pcap"
    pcap.write_bytes(PCAP_HEADER)  # an earlier capture: replaced
    (tmp_path / "net0.pcap.partial").write_bytes(PCAP_HEADER)  # a killed one's: removed
    port = free_port(socket.SOCK_STREAM)
    s = qemu("--manifest", manifest, "--net", f"user,hostfwd=tcp:localhost:{port}-:80",
             "--pcap", str(pcap), "--verbose", "--append", "verbose")
    s.expect(DHCP_LINE)
    out = s.run_commands(["net"])
    assert "net0 10.0.2.15/24 gw 10.0.2.2 mac 52:54:00:12:34:56" in out, out
    s.send_line("shutdown")
    assert s.wait() == 0, s.output + s.stderr
    # the QEMU command line: the rule in QEMU's spelling, nothing restricted, the right device
    netdev = f"-netdev user,id=net0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:80 "
    assert netdev in s.stderr, s.stderr
    assert "restrict" not in s.stderr
    device = "virtio-net-device" if qemu.machine == "microvm" else "virtio-net-pci"
    assert f"-device {device},netdev=net0" in s.stderr, s.stderr
    transport = "virtio-mmio" if qemu.machine == "microvm" else "virtio-pci"
    assert re.search(rf"\[bm\] net0: virtio-net at .* \({transport}\), mac 52:54:00:12:34:56, "
                     r"link up", s.output), s.output
    assert len(re.findall(DHCP_LINE, s.output)) == 1, s.output
    # the capture, complete and renamed; both directions of DHCP in it
    assert not os.path.exists(str(pcap) + ".partial")
    r = subprocess.run([TCPDUMP, "-nr", str(pcap)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"0\.0\.0\.0\.68 > 255\.255\.255\.255\.67: BOOTP/DHCP, Request from "
                     r"52:54:00:12:34:56", r.stdout), r.stdout
    assert re.search(r"10\.0\.2\.2\.67 > \S+: BOOTP/DHCP, Reply", r.stdout), r.stdout


def test_rx_ring_survives_more_frames_than_its_size(qemu, manifest):
    """Datagrams to a port nobody listens on: each is a frame in and an ICMP port unreachable
    out, so both rings go round several times; tcpip's counters must keep growing past them."""
    port = free_port(socket.SOCK_DGRAM)
    s = qemu("--manifest", manifest, "--net", f"user,hostfwd=udp:127.0.0.1:{port}-:9",
             "--append", "verbose")
    s.expect(DHCP_LINE)
    rx0, tx0 = net_counters(s)
    rx, tx = rx0, tx0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        n = 0
        while rx - rx0 <= 3 * RX_RING or tx - tx0 <= 2 * TX_RING:
            for _ in range(64):
                u.sendto(b"frame %d" % n, ("127.0.0.1", port))
                n += 1
            rx, tx = net_counters(s)  # fails at once if QEMU has died
            assert n < 40 * RX_RING, f"{n} datagrams sent, tcpip counted rx {rx} tx {tx}"
    s.send_line("shutdown")
    assert s.wait() == 0, s.output + s.stderr
    m = re.search(r"\[bm\] net0: rx (\d+) frames \((\d+) bad, held (\d+) times for a full "
                  r"queue\), tx (\d+) frames", s.output)
    assert m, s.output
    assert int(m.group(1)) >= rx and int(m.group(2)) == 0, s.output
    assert int(m.group(4)) >= tx, s.output


def test_no_net_means_no_device(qemu, manifest):
    s = qemu("--manifest", manifest, "--append", "verbose")
    s.expect(r"\[tcpip\] no net0 device \(no such entry\); tcpip not started")
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "[bm] net0" not in s.output


@pytest.mark.parametrize("args,message", [
    (["--net", "bogus"], "qemu: --net: 'bogus' is not a network: use 'user' or 'none'"),
    (["--net", "user,hostfwd=tcp:127.0.0.1:0-:80"],
     "qemu: --net: hostfwd 'tcp:127.0.0.1:0-:80': host port must be 1..65535, not '0'"),
    (["--net", "user,hostfwd=tcp::8080-10.0.3.1:80"],
     "qemu: --net: hostfwd 'tcp::8080-10.0.3.1:80': guest address must be in 10.0.2.0/24"),
    (["--net", "user,restrict=on"],
     "qemu: --net: unknown 'restrict=on' (only hostfwd=... follows 'user')"),
    (["--pcap", "x.pcap"], "qemu: --pcap needs --net user"),
    (["--net", "user", "--pcap="], "qemu: --pcap needs a file name"),
])
def test_bad_net_options_are_usage_errors(args, message, tmp_path):
    r = subprocess.run([orrery_path(), "qemu", *args], input="", capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr
    assert os.listdir(tmp_path) == []


def test_pcap_refuses_what_is_not_a_capture(tmp_path, manifest):
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a capture\n")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    for path, why in ((notes, "no pcap magic number"), (empty, "an empty file"),
                      (tmp_path, "a directory")):
        r = subprocess.run([orrery_path(), "qemu", "--accel", "tcg", "--net", "user", "--pcap",
                            str(path)], input="", capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        assert f"--pcap {path}: exists and is not a pcap file ({why}): refusing to replace it" \
            in r.stderr, r.stderr
    # a leftover FILE.partial that is not a capture of ours is not removed either
    partial = tmp_path / "new.pcap.partial"
    partial.write_text("someone's notes\n")
    r = subprocess.run([orrery_path(), "qemu", "--accel", "tcg", "--net", "user", "--pcap",
                        str(tmp_path / "new.pcap")], input="", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"{partial} exists and is not a pcap file (no pcap magic number): refusing to " \
        "touch it" in r.stderr, r.stderr
    # a symlink to nowhere: the name to write is asked for, nothing is created
    (tmp_path / "dangling.pcap").symlink_to(tmp_path / "nowhere" / "x.pcap")
    r = subprocess.run([orrery_path(), "qemu", "--accel", "tcg", "--net", "user", "--pcap",
                        str(tmp_path / "dangling.pcap")], input="", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "a symbolic link to a missing file" in r.stderr, r.stderr
    assert notes.read_text() == "not a capture\n" and empty.read_bytes() == b""
    assert partial.read_text() == "someone's notes\n"
    assert sorted(os.listdir(tmp_path)) == ["dangling.pcap", "empty.pcap", "net.manifest",
                                            "new.pcap.partial", "notes.txt"]


def test_hostfwd_port_in_use_fails_clearly(tmp_path):
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        pcap = tmp_path / "never.pcap"
        r = subprocess.run([orrery_path(), "qemu", "--accel", "tcg", "--net",
                            f"user,hostfwd=tcp:127.0.0.1:{port}-:80", "--pcap", str(pcap)],
                           input="", capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"tcp:127.0.0.1:{port}-10.0.2.15:80" in r.stderr, r.stderr  # QEMU names the rule
    assert "QEMU failed" in r.stderr, r.stderr
    assert os.listdir(tmp_path) == []  # no capture was made: none is left behind


def test_link_state_follows_the_device(qemu, manifest, tmp_path, monkeypatch):
    """STATUS: QEMU's set_link (QMP, reached through a wrapper given as ORRERY_QEMU) interrupts
    with a configuration change; the driver posts LINK_DOWN, then LINK_UP, and frames flow again
    once the link is back."""
    monitor = tmp_path / "qmp.sock"
    wrapper = tmp_path / "qemu-with-qmp"
    wrapper.write_text(f'#!/bin/sh\nexec {QEMU} "$@" -qmp unix:{monitor},server=on,wait=off\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("ORRERY_QEMU", str(wrapper))
    s = qemu("--manifest", manifest, "--net", "user", "--append", "verbose")
    s.expect(DHCP_LINE)

    def set_link(up):
        """QMP's set_link; returns once QEMU has answered (the link is changed)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as m:
            m.connect(str(monitor))
            f = m.makefile("rw")
            assert "QMP" in f.readline()
            for cmd in ({"execute": "qmp_capabilities"},
                        {"execute": "set_link", "arguments": {"name": "net0", "up": up}}):
                f.write(json.dumps(cmd) + "\n")
                f.flush()
                while True:
                    line = f.readline()
                    assert line, "QMP closed"
                    answer = json.loads(line)
                    if "return" in answer or "error" in answer:
                        break
                assert "return" in answer, answer

    set_link(False)
    s.expect(r"\[bm\] net0: link down")
    rx_down, _ = net_counters(s)
    set_link(True)
    s.expect(r"\[bm\] net0: link up")
    # lwIP asks for its lease again when the link comes back: frames flow again
    s.expect(DHCP_LINE)
    assert net_counters(s)[0] > rx_down, s.output
    s.send_line("shutdown")
    assert s.wait() == 0, s.output + s.stderr


def test_tcpip_trace_from_qemu_replays_on_linux(qemu, manifest, tmp_path):
    """net0's events (link up, frames both ways) are recorded by the image like any device's;
    the replayer stands in for net0 and tcpip replays alone on Linux."""
    trace = tmp_path / "net.db"
    s = qemu("--manifest", manifest, "--net", "user", "--trace", str(trace))
    s.expect(DHCP_LINE)
    net_counters(s)
    s.send_line("shutdown")
    assert s.wait() == 0, s.output + s.stderr
    r = subprocess.run([orrery_path(), "replay", str(trace), "--task", "tcpip"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"replay tcpip: \d+ events matched", r.stdout), r.stdout


@pytest.mark.parametrize("tx_ring", [None, 1], ids=["tx256", "tx1"])
def test_tcp_echo_of_1_mib_through_hostfwd(qemu, tmp_path, tx_ring):
    """Python's socket to 127.0.0.1:PORT, slirp's hostfwd to 10.0.2.15:7, virtio-net, tcpip and
    tcpecho: a UDP datagram comes back, and 1 MiB of random bytes over TCP comes back exactly,
    then the half close ends the echo. With a transmit ring of one slot (`nettx=1`) writes meet
    a full ring (QEMU sends from a bottom half, after the vCPU has moved on): OS_EFULL, counted
    by the driver, and tcpip's retries still deliver every byte."""
    path = tmp_path / "echo.manifest"
    path.write_text(MANIFEST + "program tcpecho reach=tcp,udp\n")
    port, uport = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    s = qemu("--manifest", str(path), "--net",
             f"user,hostfwd=tcp:127.0.0.1:{port}-:7,hostfwd=udp:127.0.0.1:{uport}-:7",
             "--append", "verbose" + (f" nettx={tx_ring}" if tx_ring else ""))
    s.expect(DHCP_LINE)
    s._wait_for(lambda: "[tcpecho] tcp port 7\n" in s.output
                and "[tcpecho] udp port 7\n" in s.output, None, "tcpecho on port 7")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(TIMEOUT)
        u.connect(("127.0.0.1", uport))
        u.send(b"one datagram")
        assert u.recv(2048) == b"one datagram"
    data = os.urandom(1 << 20)
    got = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as c:
        def reader():
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    return
                got.extend(chunk)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        t.join(TIMEOUT)
        assert not t.is_alive(), f"{len(got)} bytes back, no end of stream\n{s.output}"
    assert len(got) == len(data) and bytes(got) == data, f"{len(got)} bytes back"
    rx, tx = net_counters(s)
    assert rx > RX_RING and tx > RX_RING, s.output  # about 1450 frames each way
    s.send_line("shutdown")
    assert s.wait() == 0, s.output + s.stderr
    assert "panic" not in s.output and "fault" not in s.output, s.output
    m = re.search(r"\[bm\] net0: .* tx ring (\d+),", s.output)
    assert m and int(m.group(1)) == (tx_ring or TX_RING), s.output
    m = re.search(r"\[bm\] net0: rx \d+ frames .* \((\d+) refused: ring full\)", s.output)
    assert m, s.output
    if tx_ring == 1:
        assert int(m.group(1)) > 0, s.output


def test_ping_and_fetch_through_slirp(qemu, tmp_path):
    """The shell on the image pings slirp's gateway and fetches a page from a server on the
    host's 127.0.0.1, reached as 10.0.2.2: the same commands and tcpip as hosted."""
    import http.server

    body = bytes(range(256)) * 300  # 76800 bytes

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = tmp_path / "shell.manifest"
        path.write_text(MANIFEST.replace("reach=console,echo,init,net",
                                         "reach=console,echo,init,net,tcp"))
        s = qemu("--manifest", str(path), "--net", "user")
        s.expect(DHCP_LINE)
        out = s.run_commands(["ping 10.0.2.2 2"], timeout=TIMEOUT)
        if "2 transmitted, 0 received" in out:
            pytest.skip(f"this host's slirp does not answer ICMP echo for 10.0.2.2: {out!r}")
        assert re.search(r"^64 bytes from 10\.0\.2\.2: seq=\d ttl=\d+ time=\d+\.\d{3} ms$", out,
                         re.M), out
        url = f"http://10.0.2.2:{server.server_address[1]}/page"
        out = s.run_commands([f"fetch {url}"], timeout=TIMEOUT)
        assert re.search(r"^HTTP/1\.0 200 OK$", out, re.M), out
        assert re.search(rf"^fetch: 200 OK, {len(body)} bytes in \d+\.\d ms$", out, re.M), out
        s.send_line("shutdown")
        assert s.wait() == 0, s.output + s.stderr
    finally:
        server.shutdown()
        server.server_close()
