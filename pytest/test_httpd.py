"""test_httpd.py — the httpd server from the host, hosted and in the image under QEMU (q35 and
microvm; KVM variants skip with the reason): Python's http.client and raw sockets through a
hostfwd to guest port 80 fetch pages, HEAD, ranges, 404, 304, /status, the large file, 50
keep-alive requests, 20 connections at once; traversal attempts answer 400/404; a client too
slow with its headers gets 408 while others are served; a killed fs gives 500, then init's
restarted fs serves again. Every disk is a copy of the build's default disk."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import struct
import time

import pytest

from conftest import orrery_path

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
MANIFEST = (
    "program console restart=always\n"
    "program shell   restart=always max-restarts=10 reach=console,echo,init,fs\n"
    "program echo    restart=on-failure\n"
    "program fs      restart=on-failure\n"
    "program tcpip   restart=on-failure\n"
    "program httpd   restart=on-failure reach=tcp,fs:ro,net arg=log=on,timeout=2\n"
)
SERVING = r"\[httpd\] serving /www on tcp port 80"
DHCP = r"\[tcpip\] net0 10\.0\.2\.15/24"
HELLO = b"Hello from the disk of Orrery.\n"
BIG = 3 * 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def debugfs(image, request, write=False):
    tool = shutil.which("debugfs", path=SBIN)
    if tool is None:
        pytest.skip("debugfs (e2fsprogs) is not installed")
    r = subprocess.run([tool, *(["-w"] if write else []), "-R", request, str(image)],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def disk(tmp_path):
    """A copy of the default disk, with symlinks that point out of /www added."""
    src = os.path.join(os.path.dirname(orrery_path()), "disk.img")
    if not os.path.exists(src):
        pytest.fail(f"{src} is not built (run scripts/build)")
    dst = tmp_path / "disk.img"
    shutil.copyfile(src, dst)
    debugfs(dst, "symlink /www/escape /hello.txt", write=True)
    debugfs(dst, "symlink /www/rel ../hello.txt", write=True)
    debugfs(dst, "symlink /www/up /", write=True)
    debugfs(dst, "mkdir /www/empty", write=True)
    return dst


def start(boot, disk, tmp_path, manifest=MANIFEST):
    port = free_port()
    args = ["--disk", str(disk), "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:80"]
    if manifest is not None:
        path = tmp_path / "httpd.manifest"
        path.write_text(manifest)
        args += ["--manifest", str(path)]
    s = boot(*args)
    s.expect(f"(?s)(?=.*{SERVING})(?=.*{DHCP})")  # either line may come first
    s.port = port
    return s


def conn(s):
    return http.client.HTTPConnection("127.0.0.1", s.port, timeout=s.timeout)


def get(s, path, headers=None, method="GET"):
    c = conn(s)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def raw(s, data):
    """Send bytes as they are; the status of the answer (and the whole answer)."""
    with socket.create_connection(("127.0.0.1", s.port), timeout=s.timeout) as k:
        k.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = k.recv(4096)
            if not chunk:
                break
            out += chunk
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", out)
    assert m, out
    return int(m.group(1)), out


def stop(s):
    s.send_line("shutdown")
    assert s.wait() == 0, s.output
    assert "panic" not in s.output, s.output


def test_httpd_serves_the_site(boot, disk, tmp_path):
    s = start(boot, disk, tmp_path)
    index = debugfs(disk, "cat /www/index.html")
    r, body = get(s, "/")
    assert r.status == 200 and body == index
    assert r.getheader("Content-Type") == "text/html; charset=utf-8"
    assert int(r.getheader("Content-Length")) == len(index)
    assert r.getheader("Last-Modified").endswith(" GMT")
    r, body = get(s, "/index.html", method="HEAD")
    assert r.status == 200 and body == b"" and int(r.getheader("Content-Length")) == len(index)
    r, body = get(s, "/orrery.png")
    assert r.status == 200 and r.getheader("Content-Type") == "image/png"
    assert body == debugfs(disk, "cat /www/orrery.png")
    # ranges
    r, body = get(s, "/index.html", {"Range": "bytes=0-9"})
    assert r.status == 206 and body == index[:10]
    assert r.getheader("Content-Range") == f"bytes 0-9/{len(index)}"
    r, body = get(s, "/index.html", {"Range": "bytes=-5"})
    assert r.status == 206 and body == index[-5:]
    r, body = get(s, "/index.html", {"Range": "bytes=100-"})
    assert r.status == 206 and body == index[100:]
    r, body = get(s, "/index.html", {"Range": f"bytes={len(index)}-"})
    assert r.status == 416 and r.getheader("Content-Range") == f"bytes */{len(index)}"
    # 404, 405, 304
    r, body = get(s, "/missing.html")
    assert r.status == 404 and body == b"404 Not Found\n"
    r, body = get(s, "/empty/")
    assert r.status == 404  # a directory without index.html: no listing
    r, body = get(s, "/", method="POST")
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD"
    r, _ = get(s, "/")
    lm = r.getheader("Last-Modified")
    r, body = get(s, "/", {"If-Modified-Since": lm})
    assert r.status == 304 and body == b""
    r, body = get(s, "/", {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert r.status == 200 and body == index
    # /status
    r, body = get(s, "/status")
    assert r.status == 200 and r.getheader("Content-Type") == "application/json"
    st = json.loads(body)
    names = {t["name"] for t in st["tasks"]}
    assert {"init", "shell", "fs", "tcpip", "httpd"} <= names, st
    assert st["commit"] and st["uptime_ms"] > 0
    assert st["disk"]["blocks"] > 0 and st["net"]["rx_frames"] > 0, st
    # the large file, streamed, and a range deep inside it
    big = debugfs(disk, "cat /www/big.bin")
    assert len(big) == BIG
    r, body = get(s, "/big.bin")
    assert r.status == 200 and int(r.getheader("Content-Length")) == BIG and body == big
    r, body = get(s, "/big.bin", {"Range": "bytes=2000000-2100000"})
    assert r.status == 206 and body == big[2000000:2100001]
    # 50 requests on one connection
    c = conn(s)
    for i in range(50):
        c.request("GET", "/index.html" if i % 2 else "/orrery.png")
        r = c.getresponse()
        assert r.status == 200 and len(r.read()) == int(r.getheader("Content-Length"))
    c.close()
    # pipelined: three requests in one write, three answers in order
    with socket.create_connection(("127.0.0.1", s.port), timeout=s.timeout) as k:
        k.sendall(b"GET /index.html HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            chunk = k.recv(65536)
            if not chunk:
                break
            out += chunk
    statuses = re.findall(rb"^HTTP/1\.1 (\d{3}) ", out, re.M)
    assert statuses == [b"200", b"200", b"404"], out
    assert out.count(index) == 1 and out.endswith(b"404 Not Found\n"), out
    # 20 connections at once
    cs = [conn(s) for _ in range(20)]
    for c in cs:
        c.request("GET", "/index.html")
    for c in cs:
        r = c.getresponse()
        assert r.status == 200 and r.read() == index
        c.close()
    # traversal: nothing outside the root is read
    for bad in (b"/../hello.txt", b"/%2e%2e/hello.txt", b"/%2E%2E%2Fhello.txt", b"/a%2f..%2fb",
                b"/..%2fhello.txt", b"/index.html%00.png", b"/\x00", b"//../hello.txt",
                b"/escape", b"/rel", b"/up/hello.txt", b"/up/www/index.html"):
        st, out = raw(s, b"GET " + bad + b" HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert st in (400, 404), (bad, out)
        assert HELLO not in out, (bad, out)
    stop(s)
    log = s.output
    assert re.search(r"\[httpd\] GET / 200 \d+", log), log
    assert re.search(r"\[httpd\] GET /missing.html 404 14", log), log


def test_httpd_slow_client_gets_408_while_others_are_served(boot, disk, tmp_path):
    s = start(boot, disk, tmp_path)
    slow = socket.create_connection(("127.0.0.1", s.port), timeout=s.timeout)
    head = b"GET /index.html HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200
    answer = b""
    served = 0
    for byte in head:
        # one byte, then another client is served in full, then the slow one is looked at
        slow.sendall(bytes([byte]))
        r, body = get(s, "/index.html")
        assert r.status == 200
        served += 1
        slow.settimeout(0.5)
        try:
            answer = slow.recv(4096)
        except socket.timeout:
            continue
        finally:
            slow.settimeout(s.timeout)
        break
    slow.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert served >= 1
    stop(s)


def test_httpd_answers_500_while_fs_is_gone_then_recovers(boot, disk, tmp_path):
    s = start(boot, disk, tmp_path)
    r, _ = get(s, "/")
    assert r.status == 200
    out = s.run_commands(["kill fs"])
    assert re.search(r"killed fs \(task \d+\)", out), out
    r, body = get(s, "/")
    assert r.status == 500 and body == b"500 Internal Server Error\n"
    deadline = time.monotonic() + s.timeout
    while True:
        r, body = get(s, "/")
        if r.status == 200:
            break
        assert r.status == 500 and time.monotonic() < deadline, (r.status, s.output)
        time.sleep(0.2)
    assert body == debugfs(disk, "cat /www/index.html")
    stop(s)


def test_httpd_limits(run, disk, tmp_path):
    """Hosted only (the parser is the same everywhere): 414, 431, 413, 505, 501, 400; a refused
    HEAD has no body."""
    s = start(run, disk, tmp_path)
    assert raw(s, b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n")[0] == 414
    assert raw(s, b"GET / HTTP/1.1\r\n" + b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaa\r\n" * 400)[0] == 431
    assert raw(s, b"GET / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")[0] == 413
    assert raw(s, b"GET / HTTP/2.0\r\n\r\n")[0] == 505
    assert raw(s, b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")[0] == 501
    assert raw(s, b"GARBAGE\r\n\r\n")[0] == 400
    # a refused HEAD is answered without a body, and the answer's Connection: close is kept:
    # the bytes up to the close are the head alone
    for bad, want in ((b"HEAD /\xe6\xe6 HTTP/1.1\r\n\r\n", 400),
                      (b"HEAD /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n", 414),
                      (b"HEAD / HTTP/2.0\r\n\r\n", 505)):
        with socket.create_connection(("127.0.0.1", s.port), timeout=s.timeout) as k:
            k.sendall(bad)
            out = b""
            while chunk := k.recv(4096):
                out += chunk
        assert out.startswith(b"HTTP/1.1 %d " % want), out
        assert b"Content-Length: " in out and b"Connection: close\r\n" in out, out
        assert out.endswith(b"\r\n\r\n"), out
    # a small body is read and dropped; the next request on the connection is answered
    st, out = raw(s, b"GET /nope HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n")
    assert st == 404
    stop(s)


def test_httpd_over_the_connection_limit_answers_503(run, disk, tmp_path):
    # a long timeout: the 64 half-sent requests must not end in 408 while the test runs
    s = start(run, disk, tmp_path, manifest=MANIFEST.replace("timeout=2", "timeout=600"))
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=s.timeout)
            for _ in range(64)]
    for k in held:
        k.sendall(b"G")  # each holds a slot with a request under way
    # once 64 are taken the next is refused; earlier ones may still be on their way in
    out = b""
    for _ in range(64):
        with socket.create_connection(("127.0.0.1", s.port), timeout=s.timeout) as k:
            k.sendall(b"GET / HTTP/1.1\r\n\r\n")
            out = k.recv(4096)
        if out.startswith(b"HTTP/1.1 503 "):
            break
    assert out.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), out
    for k in held:
        k.close()
    stop(s)


def test_httpd_default_manifest_and_curl(run, disk, tmp_path):
    """The default boot serves the site; curl as a second peer (when installed)."""
    s = start(run, disk, tmp_path, manifest=None)
    r, body = get(s, "/")
    assert r.status == 200
    r, body = get(s, "/status")
    st = json.loads(body)
    assert st["net"]["rx_frames"] > 0, st  # the default manifest lets httpd reach net
    if shutil.which("curl"):
        c = subprocess.run(["curl", "-sS", "-r", "0-15", f"http://127.0.0.1:{s.port}/big.bin"],
                           capture_output=True, timeout=s.timeout)
        assert c.returncode == 0 and c.stdout == b"000000000000000\n", c
    stop(s)


def test_httpd_bad_arg_is_one_line_and_status_2(run, tmp_path):
    path = tmp_path / "bad.manifest"
    path.write_text(MANIFEST.replace("arg=log=on,timeout=2", "arg=port=99999"))
    s = run("--manifest", str(path), "--net", "none")
    s.expect(r"\[httpd\] bad arg port='99999': a number 1\.\.65535\n")
    s.expect(r"\[init\] httpd \(task \d+\) failed \(status 2\)")
    s.send_line("shutdown")
    assert s.wait() == 0


def test_run_prints_the_url_of_a_hostfwd_to_port_80(tmp_path):
    """`orrery run` names the URL on stderr for a TCP hostfwd to guest port 80, and only then."""
    from conftest import run_cli
    port = free_port()
    r = run_cli(["run", "--disk", "none", "--net",
                 f"user,hostfwd=tcp:127.0.0.1:{port}-:80,hostfwd=tcp::{free_port()}-:7"],
                input="shutdown\n")
    assert r.returncode == 0, r.stderr
    assert re.findall(r"^orrery: httpd: .*$", r.stderr, re.M) == [
        f"orrery: httpd: http://127.0.0.1:{port}/"], r.stderr
    r = run_cli(["run", "--disk", "none", "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:7"],
                input="shutdown\n")
    assert r.returncode == 0 and "httpd:" not in r.stderr, r.stderr


def test_httpd_lets_go_of_clients_that_stop_reading_then_reset(run, disk, tmp_path):
    """Clients that ask for the 3 MiB file 8 times, read nothing (httpd's sends back up until they get
    OS_EFULL with the channel held) and then reset: httpd frees their connections. It once
    waited for ever on each, and 64 of them would have left every new client a 503."""
    s = start(run, disk, tmp_path)
    socks = []
    for _ in range(3):
        k = socket.socket()
        k.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        k.connect(("127.0.0.1", s.port))
        k.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 8)  # 24 MiB owed: more than
        socks.append(k)  # the host's socket buffers take

    def connections():
        r, body = get(s, "/status")
        return json.loads(body)["httpd"]["connections"]  # the /status request's own counts

    deadline = time.monotonic() + s.timeout
    while (n := connections()) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert n == 4, s.output
    time.sleep(1.0)  # httpd's sends back up to OS_EFULL
    for k in socks:
        k.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        k.close()  # a reset
    while (n := connections()) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert n == 1, s.output
    assert get(s, "/a.txt")[0].status in (200, 404)
    stop(s)
