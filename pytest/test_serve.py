"""test_serve.py — `orrery serve`: every request from a fresh Orrery (sequential and concurrent),
the orrery-boot-time and orrery-instance headers, a failing instance answering 502 while the next
request succeeds, a stuck one 504, --pool, SIGTERM leaving no process behind, usage errors, and
the same under QEMU microvm. No timing thresholds: timeouts only bound waits."""
import http.client
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import ROOT, image_path, kvm_skip_reason, orrery_path, qemu_missing

TIMEOUT = 120  # per request: TCG boots on a busy 2-core machine


def default_disk():
    return os.path.join(os.path.dirname(orrery_path()), "disk.img")


@pytest.fixture
def disk(tmp_path):
    """A copy of the default disk (with the site in www/) that each instance opens read-only."""
    src = default_disk()
    if not os.access(src, os.R_OK):
        pytest.fail(f"{src} is not built (run scripts/build)")
    dst = tmp_path / "site.img"
    shutil.copyfile(src, dst)
    return dst


class Serve:
    """One `orrery serve` on a free port; its stderr is collected all along."""

    def __init__(self, args):
        self.proc = subprocess.Popen([orrery_path(), "serve", "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._err = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, f"no address line: {line!r} {self.stderr}"
        self.port = int(m.group(1))

    def _pump(self):
        for line in self.proc.stderr:
            with self._cond:
                self._err.append(line)
                self._cond.notify_all()

    @property
    def stderr(self):
        with self._cond:
            return "".join(self._err)

    def wait_stderr(self, pattern, count=1, timeout=TIMEOUT):
        """Wait until pattern has appeared count times on stderr; fail at once if serve exited."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(rx.findall("".join(self._err))) < count:
                assert self.proc.poll() is None, f"serve exited: {''.join(self._err)}"
                assert time.monotonic() < deadline, f"no {pattern} x{count}: {''.join(self._err)}"
                self._cond.wait(0.2)

    def get(self, path="/", timeout=TIMEOUT):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def children(self):
        """The pids whose parent is serve (its instances)."""
        kids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.proc.pid:
                    kids.append(int(d))
        return kids

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"serve did not stop on SIGTERM: {self.stderr}")
        return self.proc.returncode


@pytest.fixture
def serve():
    started = []

    def start(*args):
        s = Serve([str(a) for a in args])
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:  # a failed test: stopped as a user would (temp files go)
            s.proc.send_signal(signal.SIGTERM)
            try:
                s.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()


def check_answer(status, headers, body, why=""):
    assert status == 200, (status, body, why)
    assert re.fullmatch(r"\d+(\.\d+)?", headers.get("orrery-boot-time", "")), headers
    assert float(headers["orrery-boot-time"]) > 0
    assert headers.get("orrery-instance"), headers
    assert headers.get("connection", "").lower() == "close"
    assert b"<html" in body.lower() or b"<!doctype" in body.lower(), body[:200]


def group_gone(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_ten_sequential_requests_each_from_a_fresh_instance(serve, disk):
    s = serve("--disk", disk)
    ids = []
    for _ in range(10):
        status, headers, body = s.get()
        check_answer(status, headers, body, s.stderr)
        ids.append(headers["orrery-instance"])
    assert len(set(ids)) == 10, ids
    assert s.stop() == 0


def test_ten_concurrent_requests_each_from_a_fresh_instance(serve, disk):
    s = serve("--disk", disk, "--max-instances", "4")
    results = [None] * 10

    def one(i):
        try:
            results[i] = s.get()
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 3)
    ids = []
    for r in results:
        assert not isinstance(r, Exception) and r is not None, (r, s.stderr)
        check_answer(*r, s.stderr)
        ids.append(r[1]["orrery-instance"])
    assert len(set(ids)) == 10, ids
    assert s.stop() == 0


def test_an_instance_that_cannot_boot_gives_502_and_the_next_request_succeeds(serve, disk):
    s = serve("--disk", disk)
    check_answer(*s.get(), s.stderr)
    hidden = disk.with_name("hidden.img")
    os.rename(disk, hidden)  # the next instance cannot open its disk: it exits at once
    status, headers, body = s.get()
    assert status == 502, (status, body)
    text = body.decode()
    assert "exited (status 2) before httpd was ready" in text, text
    assert str(disk) in text, text  # the instance's own error names the disk
    os.rename(hidden, disk)
    check_answer(*s.get(), s.stderr)
    assert s.stop() == 0


GOOD_MANIFEST = ("program console restart=always\n"
                 "program fs restart=on-failure\n"
                 "program tcpip restart=on-failure arg=addr=10.0.2.15/24,gw=10.0.2.2\n"
                 "program httpd restart=on-failure reach=tcp,fs:ro,net arg=root=/www,port=80\n")


def test_a_bad_manifest_gives_502_naming_it_and_the_next_request_succeeds(serve, disk, tmp_path):
    manifest = tmp_path / "m.manifest"
    manifest.write_text("program nosuchprogram\n")
    s = serve("--disk", disk, "--manifest", manifest)
    status, _, body = s.get()
    assert status == 502, (status, body)
    text = body.decode()
    assert "exited (status 2) before httpd was ready" in text and "m.manifest" in text, text
    manifest.write_text(GOOD_MANIFEST)  # each instance reads the manifest when it starts
    check_answer(*s.get(), s.stderr)
    assert s.stop() == 0


def test_the_default_manifest_is_a_temp_file_removed_at_the_end(serve, disk, tmp_path):
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    os.environ["TMPDIR"] = str(env_tmp)
    try:
        s = serve("--disk", disk)
    finally:
        del os.environ["TMPDIR"]
    (made,) = os.listdir(env_tmp)
    assert "program tcpip" in (env_tmp / made).read_text()
    assert "addr=10.0.2.15/24" in (env_tmp / made).read_text()
    check_answer(*s.get(), s.stderr)
    assert s.stop() == 0
    assert os.listdir(env_tmp) == []


def test_an_instance_whose_httpd_never_listens_gives_504(serve, disk, tmp_path):
    manifest = tmp_path / "nohttpd.manifest"
    manifest.write_text("program console restart=always\n"
                        "program tcpip restart=on-failure arg=addr=10.0.2.15/24,gw=10.0.2.2\n")
    s = serve("--disk", disk, "--manifest", manifest, "--boot-timeout", "2")
    status, _, body = s.get()
    assert status == 504, (status, body)
    assert "not ready within 2 s (waiting for" in body.decode(), body
    assert "'[httpd] serving '" in body.decode(), body
    assert s.stop() == 0


def test_pool_keeps_booted_instances_and_each_serves_once(serve, disk):
    s = serve("--disk", disk, "--pool", "2", "--verbose")
    s.wait_stderr(r"instance \S+: ready", 2)
    status, headers, body = s.get()
    check_answer(status, headers, body, s.stderr)
    first = headers["orrery-instance"]
    s.wait_stderr(r"instance \S+: started", 3)  # the pool is refilled
    status, headers, body = s.get()
    check_answer(status, headers, body, s.stderr)
    assert headers["orrery-instance"] != first
    assert re.search(rf"instance {re.escape(first)}: started", s.stderr)
    assert s.stop() == 0


def test_sigterm_stops_cleanly_and_leaves_no_process(serve, disk):
    s = serve("--disk", disk, "--pool", "2", "--verbose")
    s.wait_stderr(r"instance \S+: ready", 2)
    kids = s.children()
    assert len(kids) >= 2, kids
    assert s.stop() == 0
    assert "SIGTERM: stopping" in s.stderr
    for pid in kids:  # each instance was its own process group (QEMU in it too)
        assert group_gone(pid), (pid, s.stderr)


def test_sigint_with_a_request_waiting_exits_0(serve, disk):
    s = serve("--disk", disk, "--verbose")
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=TIMEOUT)
    c.request("GET", "/")
    s.wait_stderr(r"instance \S+: started", 1)
    kids = s.children()
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(timeout=30) == 0, s.stderr
    try:
        r = c.getresponse()
        assert r.status in (200, 503), r.status
    except (http.client.HTTPException, ConnectionError):
        pass  # cut in flight
    c.close()
    for pid in kids:
        assert group_gone(pid), (pid, s.stderr)


@pytest.mark.parametrize("args,message", [
    (["--pool", "5"], "--pool 5 is more than --max-instances 4"),
    (["--max-instances", "0"], "--max-instances wants a number from 1 to 64"),
    (["--listen", "example.com:80"], "'example.com' is not an IPv4 address"),
    (["--listen", "127.0.0.1"], "--listen wants ADDR:PORT"),
    (["--qemu", "q35"], "--qemu takes 'microvm', not 'q35'"),
    (["--disk", "/nonexistent/x.img"], "--disk /nonexistent/x.img: No such file or directory"),
    (["--manifest", "/nonexistent/m"], "--manifest /nonexistent/m: No such file or directory"),
    (["--bogus"], "unknown option '--bogus'"),
    (["extra"], "unexpected argument 'extra'"),
    ([], "no disk ($ORRERY_DISK is 'none'); the site is on a disk: give --disk FILE"),
])
def test_usage_errors(args, message):
    r = subprocess.run([orrery_path(), "serve", *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r
    assert message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


def test_help():
    r = subprocess.run([orrery_path(), "serve", "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0
    for opt in ("--listen", "--pool", "--max-instances", "--queue", "--qemu microvm", "--disk",
                "--manifest", "--boot-timeout", "--timeout", "orrery-boot-time",
                "orrery-instance"):
        assert opt in r.stdout, opt


@pytest.mark.parametrize("accel", ["tcg", "kvm"])
def test_qemu_microvm_requests_each_from_a_fresh_vm(serve, disk, accel):
    if qemu_missing():
        pytest.skip(qemu_missing())
    if not os.access(image_path(), os.R_OK):
        pytest.fail(f"{image_path()} is not built (run scripts/build)")
    if accel == "kvm" and kvm_skip_reason():
        pytest.skip(kvm_skip_reason())
    if accel == "tcg" and not kvm_skip_reason():
        pytest.skip("orrery qemu chooses KVM here; the tcg variant runs where KVM cannot")
    s = serve("--disk", disk, "--qemu", "microvm", "--max-instances", "2")
    ids = []
    for _ in range(2):
        status, headers, body = s.get()
        check_answer(status, headers, body, s.stderr)
        ids.append(headers["orrery-instance"])
    assert len(set(ids)) == 2
    kids = s.children()
    assert s.stop() == 0
    for pid in kids:
        assert group_gone(pid)


NO_HTTPD = ("program console restart=always\n"
            "program tcpip restart=on-failure arg=addr=10.0.2.15/24,gw=10.0.2.2\n")


def test_an_instance_killed_while_a_request_waits_gives_502_and_serving_goes_on(serve, disk,
                                                                                tmp_path):
    manifest = tmp_path / "m.manifest"
    manifest.write_text(NO_HTTPD)  # never ready: the request waits on it
    s = serve("--disk", disk, "--manifest", manifest, "--verbose")
    result = []
    t = threading.Thread(target=lambda: result.append(s.get()))
    t.start()
    s.wait_stderr(r"instance \S+: started", 1)
    (kid,) = s.children()
    os.killpg(kid, signal.SIGKILL)  # the instance crashes
    t.join(TIMEOUT)
    status, _, body = result[0]
    assert status == 502, (status, body)
    assert "was killed (signal 9) before httpd was ready" in body.decode(), body
    manifest.write_text(GOOD_MANIFEST)
    check_answer(*s.get(), s.stderr)
    assert s.stop() == 0


def test_past_the_queue_limit_a_request_gets_503(serve, disk, tmp_path):
    manifest = tmp_path / "m.manifest"
    manifest.write_text(NO_HTTPD)
    s = serve("--disk", disk, "--manifest", manifest, "--max-instances", "1", "--queue", "0",
              "--verbose")
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=TIMEOUT)
    c.request("GET", "/")  # holds the only instance
    s.wait_stderr(r"instance \S+: started", 1)
    status, _, body = s.get()
    assert status == 503, (status, body)
    assert "busy: 1 instances in flight and 0 requests waiting" in body.decode(), body
    c.close()
    assert s.stop() == 0


def test_a_non_loopback_address_is_taken_only_when_given_and_said(disk):
    p = subprocess.Popen([orrery_path(), "serve", "--listen", "0.0.0.0:0", "--disk", str(disk)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert re.match(r"orrery serve: http://0\.0\.0\.0:\d+/ ", line), line
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
        assert "which is not loopback" in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    r = subprocess.run([orrery_path(), "serve", "--help"], capture_output=True, text=True)
    assert "default 127.0.0.1:8000" in r.stdout
