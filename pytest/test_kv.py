"""test_kv.py — the kv store hosted and in the image under QEMU, as a cluster of one (a leader without followers is a
majority by itself): a Python socket through a hostfwd to guest port 7000 writes and reads keys
with the line protocol, every limit answers its ERR line, and after a shutdown and a new boot
on the same disk the leader reads its log back, starts the next epoch and serves every write it
had acknowledged (docs/kv.md). The disk is a copy of the build's default disk."""
import os
import shutil
import socket

import pytest

from conftest import orrery_path

MANIFEST = (
    "program console restart=always\n"
    "program shell   restart=always max-restarts=10 reach=console,init\n"
    "program tcpip   restart=on-failure\n"
    "program fs      restart=on-failure\n"
    "program kv      restart=on-failure reach=tcp,fs arg=role=leader,port=7000\n"
)
DHCP = r"\[tcpip\] net0 10\.0\.2\.15/24"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def disk(tmp_path):
    src = os.path.join(os.path.dirname(orrery_path()), "disk.img")
    if not os.path.exists(src):
        pytest.fail(f"{src} is not built (run scripts/build)")
    dst = tmp_path / "disk.img"
    shutil.copyfile(src, dst)
    return dst


def boot_kv(boot, tmp_path, disk, epoch):
    port = free_port()
    path = tmp_path / "kv.manifest"
    path.write_text(MANIFEST)
    s = boot("--manifest", str(path), "--disk", str(disk), "--net",
            f"user,hostfwd=tcp:127.0.0.1:{port}-:7000")
    s.expect(rf"\[kv\] leader: serving: epoch {epoch}, \d+ entries committed")
    s.expect(DHCP)
    s.port = port
    return s


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def ask(self, line):
        self.sock.sendall(line + b"\n")
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, f"the connection closed after {line!r}"
            self.buf += chunk
        answer, self.buf = self.buf.split(b"\n", 1)
        return answer.decode()

    def close(self):
        self.sock.close()


def test_kv_put_get_limits_and_recovery(boot, tmp_path, disk):
    s = boot_kv(boot, tmp_path, disk, 1)
    c = Client(s.port)
    assert c.ask(b"GET a") == "NOTFOUND"
    assert c.ask(b"PUT a first") == "OK"
    assert c.ask(b"PUT a the second value") == "OK"
    assert c.ask(b"PUT b " + b"v" * 256) == "OK"
    assert c.ask(b"GET a") == "VALUE the second value"
    assert c.ask(b"GET b") == "VALUE " + "v" * 256
    assert c.ask(b"PUT " + b"k" * 65 + b" v") == "ERR key longer than 64 bytes"
    assert c.ask(b"PUT c " + b"v" * 257) == "ERR value longer than 256 bytes"
    assert c.ask(b"PUT c") == "ERR missing value"
    assert c.ask(b"DEL a") == "ERR unknown command (PUT key value, GET key)"
    assert c.ask(b"HELLO 3") == "ERR the leader takes PUT and GET"
    assert c.ask(b"GET " + b"x" * 600) == "ERR line longer than 511 bytes"
    assert c.ask(b"GET a") == "VALUE the second value"  # the connection goes on
    for i in range(50):
        assert c.ask(b"PUT k%d value %d" % (i, i)) == "OK"
    c.close()
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "panic" not in s.output, s.output

    # the same disk: the log is read back (53 writes and epoch 1's no-op), epoch 2 begins
    s = boot_kv(boot, tmp_path, disk, 2)
    assert "[kv] leader: log /kv.log: 54 entries, epoch 1" in s.output, s.output
    c = Client(s.port)
    assert c.ask(b"GET a") == "VALUE the second value"
    assert c.ask(b"GET b") == "VALUE " + "v" * 256
    assert c.ask(b"GET k49") == "VALUE value 49"
    assert c.ask(b"GET c") == "NOTFOUND"
    c.close()
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "panic" not in s.output, s.output
