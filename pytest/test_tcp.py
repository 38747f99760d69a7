"""test_tcp.py — the tcp and udp interfaces, hosted: tcpecho on port 7 echoes 1 MiB from a
Python socket through hostfwd with a half close, echoes UDP datagrams, comes back after tcpip
is killed, and runs on a static address from the manifest's arg=; a bad arg stops tcpip with
a clear line. Only 127.0.0.1 and slirp's 10.0.2.x are used."""
import re
import shutil
import socket
import subprocess
import threading

import pytest

from conftest import Session, run_cli

PROGRAMS = (
    "program console restart=always\n"
    "program shell   restart=always max-restarts=10 reach=console,echo,init\n"
    "program echo    restart=on-failure\n"
)
ECHO = "program tcpecho restart=on-failure reach=tcp,udp\n"
DHCP_LINE = r"\[tcpip\] net0 10\.0\.2\.15/24 gw 10\.0\.2\.2 \(dhcp\)"
LISTENING = r"\[tcpecho\] tcp port 7\n"
BULK = 1 << 20


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def run_net(run, tmp_path):
    """run_net(manifest_text, net) -> `orrery run --manifest M --net NET`."""
    count = [0]

    def start(manifest_text, net):
        path = tmp_path / f"m{count[0]}.manifest"
        count[0] += 1
        path.write_text(manifest_text)
        return run("--manifest", str(path), "--net", net)

    return start


def alive(s):
    assert s.proc.poll() is None, f"orrery exited with {s.proc.returncode}\n{s.output}\n{s.stderr}"


def echo_bulk(s, port, data):
    """Send data and read the echo at once (a writer thread), half close, read to EOF."""
    alive(s)
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    got = bytearray()
    errors = []

    def writer():
        try:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        alive(s)
        raise AssertionError(f"echo stalled after {len(got)} bytes\n{s.output}")
    finally:
        t.join(30)
        c.close()
    assert not errors, errors
    return bytes(got)


def udp_echo(s, port, count=3):
    """Datagrams may be lost: send until `count` came back (each wait is short)."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(0.5)
    back = set()
    try:
        for i in range(200):
            alive(s)
            u.sendto(b"datagram %d" % i, ("127.0.0.1", port))
            try:
                while True:
                    back.add(u.recv(2048))
            except socket.timeout:
                pass
            if len(back) >= count:
                break
    finally:
        u.close()
    return back


def test_tcpecho_bulk_half_close_and_udp(run_net):
    tport, uport = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    s = run_net(PROGRAMS + "program tcpip\n" + ECHO,
            f"user,hostfwd=tcp:127.0.0.1:{tport}-:7,hostfwd=udp:127.0.0.1:{uport}-:7")
    s.expect(LISTENING)
    s.expect(DHCP_LINE)
    data = bytes((i * 7 + (i >> 13)) & 0xff for i in range(BULK))
    assert echo_bulk(s, tport, data) == data
    back = udp_echo(s, uport)
    assert len(back) >= 3 and all(re.fullmatch(rb"datagram \d+", d) for d in back), back
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "panic" not in s.output and "failed" not in s.output, s.output


def test_hostfwd_takes_many_connections_at_once(run_net):
    """libslirp listens for a hostfwd with a backlog of 1; the hosted platform widens it to the
    system's, so clients that connect at once are not left waiting for SYN-ACK retransmissions
    (one of three could wait over 30 s). 16 clients connect before any is read, each gets its
    echo; `ss` (when installed) shows the listener's backlog."""
    tport = free_port(socket.SOCK_STREAM)
    s = run_net(PROGRAMS + "program tcpip\n" + ECHO, f"user,hostfwd=tcp:127.0.0.1:{tport}-:7")
    s.expect(LISTENING)
    s.expect(DHCP_LINE)
    ss = shutil.which("ss", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if ss:
        out = subprocess.run([ss, "-Hlnt", f"sport = :{tport}"], capture_output=True, text=True,
                             timeout=10).stdout.split()
        assert out[:1] == ["LISTEN"] and int(out[2]) > 16, out
    socks = [socket.create_connection(("127.0.0.1", tport), timeout=10) for _ in range(16)]
    for i, k in enumerate(socks):
        k.sendall(b"client %d\n" % i)
    for i, k in enumerate(socks):
        want, got = b"client %d\n" % i, b""
        while len(got) < len(want):
            chunk = k.recv(64)
            assert chunk, (i, got)
            got += chunk
        assert got == want
        k.close()
    s.send_line("shutdown")
    assert s.wait() == 0


def test_tcpecho_comes_back_after_tcpip_is_killed(run_net):
    """The restarted tcpip drops the dead task's pcbs; tcpecho, cut off, exits and is restarted,
    listens again, and echoes."""
    tport = free_port(socket.SOCK_STREAM)
    s = run_net(PROGRAMS + "program tcpip restart=on-failure\n" + ECHO,
            f"user,hostfwd=tcp:127.0.0.1:{tport}-:7")
    s.expect(LISTENING)
    s.expect(DHCP_LINE)
    assert echo_bulk(s, tport, b"before\n") == b"before\n"
    out = s.run_commands(["kill tcpip"])
    assert re.search(r"killed tcpip \(task \d+\)", out), out
    # (lines may come before or after the shell's own answer)
    s._wait_for(lambda: "[tcpecho] the tcpip server went away; exiting" in s.output
                and len(re.findall(LISTENING, s.output)) == 2
                and len(re.findall(DHCP_LINE, s.output)) == 2, None, "tcpecho and tcpip back")
    assert echo_bulk(s, tport, b"after\n" * 1000) == b"after\n" * 1000
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "panic" not in s.output, s.output


def test_tcpecho_killed_with_a_connection_open_listens_again(run_net):
    """Its connection closes (the host sees EOF) and the restarted tcpecho listens on port 7
    again at once, while lwIP still closes the old connection on that port."""
    tport = free_port(socket.SOCK_STREAM)
    s = run_net(PROGRAMS + "program tcpip\n" + ECHO, f"user,hostfwd=tcp:127.0.0.1:{tport}-:7")
    s.expect(LISTENING)
    s.expect(DHCP_LINE)
    c = socket.create_connection(("127.0.0.1", tport), timeout=30)
    c.sendall(b"one\n")
    assert c.recv(16) == b"one\n"
    out = s.run_commands(["kill tcpecho"])
    assert re.search(r"killed tcpecho \(task \d+\)", out), out
    assert c.recv(16) == b""  # our FIN, after the echoed bytes
    c.close()
    s._wait_for(lambda: len(re.findall(LISTENING, s.output)) == 2, None, "tcpecho listening again")
    assert "address in use" not in s.output, s.output
    assert echo_bulk(s, tport, b"two\n") == b"two\n"
    s.send_line("shutdown")
    assert s.wait() == 0


def test_static_address_from_arg(run_net):
    tport = free_port(socket.SOCK_STREAM)
    s = run_net(PROGRAMS + "program tcpip arg=addr=10.0.2.16/24,gw=10.0.2.2,dns=10.0.2.3\n" + ECHO,
            f"user,hostfwd=tcp:127.0.0.1:{tport}-10.0.2.16:7")
    s.expect(r"\[tcpip\] net0 10\.0\.2\.16/24 gw 10\.0\.2\.2 \(static\)")
    s.expect(LISTENING)
    assert echo_bulk(s, tport, b"static\n") == b"static\n"
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "(dhcp)" not in s.output, s.output


@pytest.mark.parametrize("arg,why", [
    ("addr=10.0.2.300/24", r"bad address '10\.0\.2\.300/24' in addr="),
    ("addr=10.0.2.16", r"addr= needs a prefix 1\.\.32"),
    ("gw=10.0.2.2", r"gw= and dns= need addr="),
    ("addr=10.0.2.16/24,mtu=9000", r"unknown or repeated key 'mtu'"),
])
def test_bad_arg_stops_tcpip(run_net, arg, why):
    s = run_net(PROGRAMS + f"program tcpip restart=never arg={arg}\n", "user")
    s.expect(r"\[tcpip\] bad arg '" + re.escape(arg) + r"': " + why + r".*; tcpip not started")
    s.expect(r"\[init\] tcpip \(task \d+\) failed \(status 2\)")
    out = s.run_commands(["echo still here"])
    assert "still here" in out
    s.send_line("shutdown")
    assert s.wait() == 0


def test_trace_of_tcp_traffic_replays(run_net, orrery_bin, tmp_path):
    """tcpip and tcpecho of a traced run replay alone: frames, lwIP's clock and randomness,
    holds, os_chan_list and every send come back from the trace."""
    tport = free_port(socket.SOCK_STREAM)
    trace = tmp_path / "tcp.db"
    manifest = tmp_path / "traced.manifest"
    manifest.write_text(PROGRAMS + "program tcpip\n" + ECHO)
    s = Session([orrery_bin, "run", "--manifest", str(manifest), "--net",
                 f"user,hostfwd=tcp:127.0.0.1:{tport}-:7", "--trace", str(trace)])
    try:
        s.expect(LISTENING)
        s.expect(DHCP_LINE)
        data = bytes(range(256)) * 400
        assert echo_bulk(s, tport, data) == data
        s.send_line("shutdown")
        assert s.wait() == 0
    finally:
        s.kill()
    for task in ("tcpip", "tcpecho"):
        r = run_cli(["replay", str(trace), "--task", task], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(rf"replay {task}: \d+ events matched", r.stdout), r.stdout
