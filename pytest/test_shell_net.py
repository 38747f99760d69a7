"""test_shell_net.py — the shell's network commands (net, netstat, ping, fetch) against the real
tcpip server, hosted on slirp (`--net user`: 10.0.2.2 is the host's loopback). Peers are Python
servers on 127.0.0.1; nothing leaves the machine and no name is looked up (DNS would go to the
host's resolver: the lookup paths are tested in tests/test_shell_net.c against a fake tcpip)."""
import http.server
import re
import socket
import threading

import pytest


PROGRAMS = (
    "program console restart=always\n"
    "program shell   restart=always max-restarts=10 reach={reach}\n"
    "program echo    restart=on-failure\n"
    "program tcpip   restart=on-failure\n"
)
FULL_REACH = "console,echo,init,net,tcp"
DHCP_LINE = r"\[tcpip\] net0 10\.0\.2\.15/24 gw 10\.0\.2\.2 \(dhcp\)"
BODY_LEN = 200000  # many TCP windows: the body streams through the shell


def write_manifest(tmp_path, reach=FULL_REACH, extra=""):
    path = tmp_path / "net.manifest"
    path.write_text(PROGRAMS.format(reach=reach) + extra)
    return str(path)


@pytest.fixture
def booted(run, tmp_path):
    """An OS with tcpip bound by DHCP on slirp and a shell that may reach net and tcp."""
    s = run("--manifest", write_manifest(tmp_path), "--net", "user")
    s.expect(DHCP_LINE)
    return s


class Handler(http.server.BaseHTTPRequestHandler):
    """/big: BODY_LEN bytes with a Content-Length; anything else: 404. Keeps what it was sent."""
    requests = []

    def do_GET(self):
        Handler.requests.append((self.requestline, dict(self.headers)))
        if self.path == "/big":
            body = bytes(i % 251 for i in range(BODY_LEN))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404, "Nothing here")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    Handler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def raw_server():
    """A TCP server on 127.0.0.1 that reads the request and answers with fixed bytes."""
    answers = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(30)

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(answers.pop(0) if answers else b"")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield sock.getsockname()[1], answers
    sock.close()


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def finish(s):
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "panic" not in s.output and "failed" not in s.output, s.output


def test_net_shows_lease_dns_and_counters(booted):
    out = booted.run_commands(["net"])
    assert "net0 10.0.2.15/24 gw 10.0.2.2 mac 52:54:00:12:34:56\n" in out, out
    assert "address by dhcp, dns 10.0.2.3\n" in out, out
    m = re.search(r"^frames rx (\d+) tx (\d+) dropped (\d+)\nbytes rx (\d+) tx (\d+)\n"
                  r"dropped rx (\d+) tx (\d+) other (\d+)$", out, re.M)
    assert m, out
    frames_rx, frames_tx = int(m.group(1)), int(m.group(2))
    bytes_rx, bytes_tx = int(m.group(4)), int(m.group(5))
    # DHCP alone: an OFFER and an ACK in, a DISCOVER and a REQUEST out, each over 300 bytes
    assert frames_rx >= 2 and frames_tx >= 2, out
    assert bytes_rx >= 300 * frames_rx // 2 and bytes_tx >= 300 * 2, out
    assert int(m.group(3)) == sum(int(m.group(i)) for i in (6, 7, 8)), out
    finish(booted)


def test_ping_the_slirp_gateway(booted):
    out = booted.run_commands(["ping 10.0.2.2 3"])
    if re.search(r"no answer from 10\.0\.2\.2: seq=1 ", out) and "3 received" not in out:
        pytest.skip(f"this host's slirp does not answer ICMP echo for 10.0.2.2: {out!r}")
    assert "PING 10.0.2.2 (10.0.2.2): 56 data bytes\n" in out, out
    seqs = [int(x) for x in
            re.findall(r"^64 bytes from 10\.0\.2\.2: seq=(\d) ttl=\d+ time=\d+\.\d{3} ms$", out,
                       re.M)]
    assert seqs == [1, 2, 3], out
    assert "--- 10.0.2.2 ping statistics ---\n" in out, out
    m = re.search(r"^3 transmitted, 3 received, 0% loss, rtt min/avg/max "
                  r"(\d+\.\d+)/(\d+\.\d+)/(\d+\.\d+) ms$", out, re.M)
    assert m, out
    lo, avg, hi = (float(x) for x in m.groups())
    assert lo <= avg <= hi, out
    finish(booted)


def test_ping_an_address_nobody_has_is_a_line_per_echo(booted):
    """10.0.2.99 is on slirp's network but nobody answers ARP for it: nothing leaves slirp."""
    out = booted.run_commands(["ping 10.0.2.99 2"])
    assert len(re.findall(r"^no answer from 10\.0\.2\.99: seq=[12] \(", out, re.M)) == 2, out
    assert "2 transmitted, 0 received, 100% loss\n" in out, out
    assert "still here" in booted.run_commands(["echo still here"])
    finish(booted)


def test_fetch_counts_the_body(booted, http_server):
    url = f"http://10.0.2.2:{http_server}/big"
    out = booted.run_commands([f"fetch {url}"], timeout=60)
    assert re.search(r"^HTTP/1\.0 200 OK$", out, re.M), out
    assert f"\nContent-Length: {BODY_LEN}\n" in out, out
    assert re.search(rf"^fetch: 200 OK, {BODY_LEN} bytes in \d+\.\d ms$", out, re.M), out
    assert len(out) < 2000, out  # the body is counted, not printed
    line, headers = Handler.requests[-1]
    assert line == "GET /big HTTP/1.0", line
    assert headers["Host"] == f"10.0.2.2:{http_server}", headers
    assert headers["Connection"] == "close", headers
    # a 404 is an answer, not an error; the body's size is still counted
    out = booted.run_commands([f"fetch http://10.0.2.2:{http_server}/nothing?a=1"])
    m = re.search(r"^Content-Length: (\d+)$", out, re.M)
    assert m, out
    assert re.search(rf"^fetch: 404 Nothing here, {m.group(1)} bytes in ", out, re.M), out
    assert Handler.requests[-1][0] == "GET /nothing?a=1 HTTP/1.0"
    finish(booted)


def test_fetch_errors(booted, raw_server):
    port, answers = raw_server
    answers += [b"garbage\r\n", b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort", b""]
    out = booted.run_commands([
        f"fetch http://10.0.2.2:{closed_port()}/",
        f"fetch http://10.0.2.2:{port}/a",
        f"fetch http://10.0.2.2:{port}/b",
        f"fetch http://10.0.2.2:{port}/c",
    ])
    assert re.search(r"^shell: fetch: 10\.0\.2\.2:\d+: connection refused$", out, re.M), out
    assert "shell: fetch: malformed response (status line 'garbage')\n" in out, out
    assert "shell: fetch: malformed response (body 5 bytes, Content-Length 10)\n" in out, out
    assert "shell: fetch: empty response (the server closed without answering)\n" in out, out
    assert "still here" in booted.run_commands(["echo still here"])
    finish(booted)


def test_netstat_lists_the_dhcp_socket(booted):
    out = booted.run_commands(["netstat"])
    header = "PROTO LOCAL                 REMOTE                STATE        QUEUED\n"
    assert out.startswith(header), out
    assert re.search(r"^udp   0\.0\.0\.0:68 +0\.0\.0\.0:67 +- +0$", out, re.M), out
    assert re.search(r"^total: \d+ sockets? \(\d+ tcp, \d+ udp\)$", out, re.M), out
    finish(booted)


def test_netstat_shows_tcpecho_listening(run, tmp_path):
    manifest = write_manifest(tmp_path, extra="program tcpecho restart=on-failure reach=tcp,udp\n")
    s = run("--manifest", manifest, "--net", "user")
    status = None
    try:
        s.expect(DHCP_LINE)
    except AssertionError:
        status = s.wait()
    if status == 2 and "unknown program 'tcpecho'" in s.stderr:
        pytest.skip("this image has no tcpecho program yet")
    out = ""
    for _ in range(50):  # tcpecho's listen may come after DHCP: ask again, not sleep
        out = s.run_commands(["netstat"])
        if re.search(r"^tcp +0\.0\.0\.0:7 ", out, re.M):
            break
    assert re.search(r"^tcp   0\.0\.0\.0:7 +0\.0\.0\.0:0 +LISTEN +0$", out, re.M), out
    finish(s)


def test_netstat_shows_an_established_connection(run, tmp_path):
    """A host client reaches tcpecho through hostfwd: netstat shows its connection."""
    manifest = write_manifest(tmp_path, extra="program tcpecho restart=on-failure reach=tcp,udp\n")
    port = closed_port()
    s = run("--manifest", manifest, "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:7")
    s.expect(DHCP_LINE)
    s.run_commands([])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        c.sendall(b"ping")
        assert c.recv(4) == b"ping"  # through tcpecho: the connection is established
        out = s.run_commands(["netstat"])
        row = r"^tcp   10\.0\.2\.15:7 +10\.0\.2\.2:\d+ +ESTABLISHED +\d+$"  # queued: unacked
        assert re.search(row, out, re.M), out
        assert re.search(r"^tcp   0\.0\.0\.0:7 +0\.0\.0\.0:0 +LISTEN +0$", out, re.M), out
    finish(s)


def test_commands_work_again_after_tcpip_restarts(booted, http_server):
    out = booted.run_commands(["kill tcpip"])
    assert re.search(r"killed tcpip \(task \d+\)", out), out
    booted.expect(DHCP_LINE)
    out = booted.run_commands(["ping 10.0.2.2 1", f"fetch http://10.0.2.2:{http_server}/big"])
    assert "1 transmitted, 1 received, 0% loss" in out, out
    assert f"fetch: 200 OK, {BODY_LEN} bytes in " in out, out
    finish(booted)


def test_net_commands_need_reach(run, tmp_path):
    """Without reach=net (the default manifest) every network command is denied; with net but
    not tcp, fetch is."""
    s = run("--net", "user")
    out = s.run_commands(["netstat", "ping 10.0.2.2 1", "fetch http://10.0.2.2:1/"])
    for cmd in ("netstat", "ping", "fetch"):
        assert f"shell: {cmd}: permission denied\n" in out, out
    finish(s)
    s = run("--manifest", write_manifest(tmp_path, reach="console,echo,init,net"), "--net", "user")
    s.expect(DHCP_LINE)
    out = s.run_commands(["fetch http://10.0.2.2:1/", "netstat"])
    assert "shell: fetch: permission denied\n" in out, out
    assert "total: " in out, out
    finish(s)


def test_bad_arguments_are_one_usage_line(run):
    s = run()
    lines = ["ping", "ping 1.2.3.4 0", "ping 1.2.3.4 101", "fetch", "fetch ftp://x",
             "fetch https://x/", "fetch http://" + "a" * 600, "netstat all"]
    out = s.run_commands(lines)
    expected = [
        "shell: usage: ping HOST [COUNT]",
        "shell: ping: COUNT must be 1..100, not '0'",
        "shell: ping: COUNT must be 1..100, not '101'",
        "shell: usage: fetch http://HOST[:PORT]/PATH",
        "shell: fetch: only http:// URLs are supported, not 'ftp://'",
        "shell: fetch: https is not supported (no TLS); use http://",
        "shell: fetch: URL too long (607 bytes, limit 512)",
        "shell: netstat takes no arguments",
    ]
    got = [line.removeprefix("orrery> ") for line in out.splitlines()]
    # the OS's own log lines (the fs server ending for want of a disk) may come in between
    got = [line for line in got if line and not re.match(r"\[\w+\] ", line)]
    assert got == expected, out
    finish(s)
