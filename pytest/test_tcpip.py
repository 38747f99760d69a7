"""test_tcpip.py — the tcpip server, hosted: lwIP gets its address from slirp's DHCP on net0,
exits cleanly when there is no net0, comes back after a kill, and is in the default boot (quiet
without net0).
Only slirp's own 10.0.2.x network is used (no DNS, nothing leaves the machine)."""
import re

import pytest

from conftest import ps_rows, run_cli

DEFAULT_PROGRAMS = (
    "program console restart=always\n"
    "program shell   restart=always max-restarts=10 reach=console,echo,init\n"
    "program echo    restart=on-failure\n"
)
DHCP_LINE = r"\[tcpip\] net0 10\.0\.2\.15/24 gw 10\.0\.2\.2 \(dhcp\)"


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "tcpip.manifest"
    path.write_text(DEFAULT_PROGRAMS + "program tcpip restart=on-failure\n")
    return str(path)


@pytest.fixture
def net_manifest(tmp_path):
    """The default programs and tcpip, with the shell allowed to reach `net`."""
    path = tmp_path / "net.manifest"
    path.write_text(DEFAULT_PROGRAMS.replace("reach=console,echo,init", "reach=console,echo,init,net")
                    + "program tcpip restart=on-failure\n")
    return str(path)


def test_hosted_tcpip_binds_by_dhcp(run, manifest):
    s = run("--manifest", manifest, "--net", "user")
    s.expect(DHCP_LINE)
    rows = ps_rows(s.run_commands(["ps"]))
    assert rows["tcpip"]["restarts"] == 0, s.output
    s.send_line("shutdown")
    assert s.wait() == 0
    assert len(re.findall(DHCP_LINE, s.output)) == 1, s.output
    assert "panic" not in s.output and "failed" not in s.output, s.output


def test_hosted_tcpip_rebinds_after_kill(run, manifest):
    """A restarted tcpip re-adds the interface (LINK_UP went to the first task) and binds again."""
    s = run("--manifest", manifest, "--net", "user")
    s.expect(DHCP_LINE)
    out = s.run_commands(["kill tcpip"])
    assert re.search(r"killed tcpip \(task \d+\)", out), out
    s.expect(DHCP_LINE)
    s.send_line("shutdown")
    assert s.wait() == 0
    assert len(re.findall(DHCP_LINE, s.output)) == 2, s.output


def test_hosted_tcpip_without_net0_exits_cleanly(run, manifest):
    s = run("--manifest", manifest, "--net", "none")
    s.expect(r"\[tcpip\] no net0 device \(no such entry\); tcpip not started")
    s.expect(r"\[init\] tcpip \(task \d+\) exited\n")
    out = s.run_commands(["echo still running", "ps"])
    assert "still running" in out
    rows = ps_rows(out)
    assert {"init", "console", "shell", "echo"} <= set(rows) and "tcpip" not in rows, out
    s.send_line("shutdown 3")
    assert s.wait() == 3
    assert "restarting" not in s.output, s.output  # exit status 0: on-failure does not restart
    assert len(re.findall(r"\[tcpip\]", s.output)) == 1, s.output


def test_hosted_default_boot_starts_tcpip_quietly_without_net0(run):
    """The default manifest starts tcpip with arg=quiet: without net0 it ends without a line of
    its own (init still says it exited); httpd waits for tcp (docs/httpd.md)."""
    s = run("--net", "none")
    s.expect(r"\[init\] tcpip \(task \d+\) exited\n")
    rows = ps_rows(s.run_commands(["ps"]))
    # fs (the default manifest's) ends at once without a disk: ps may still list it
    assert set(rows) - {"fs"} == {"init", "console", "shell", "echo", "httpd"}, s.output
    s.send_line("shutdown")
    assert s.wait() == 0
    assert "[tcpip]" not in s.output and "[httpd]" not in s.output, s.output


def test_hosted_default_boot_with_net_starts_tcpip_and_httpd(run):
    s = run("--net", "user")
    # either line may come first
    s.expect(r"(?s)(?=.*\[httpd\] serving /www on tcp port 80)(?=.*" + DHCP_LINE + ")")
    rows = ps_rows(s.run_commands(["ps"]))
    assert {"tcpip", "httpd"} <= set(rows), s.output
    s.send_line("shutdown")
    assert s.wait() == 0


def test_hosted_net_command_shows_the_lease_and_counters(run, net_manifest):
    s = run("--manifest", net_manifest, "--net", "user")
    s.expect(DHCP_LINE)
    out = s.run_commands(["net"])
    assert "net0 10.0.2.15/24 gw 10.0.2.2 mac 52:54:00:12:34:56\n" in out, out
    m = re.search(r"^frames rx (\d+) tx (\d+) dropped (\d+)$", out, re.M)
    assert m, out
    # DHCP alone is a DISCOVER and a REQUEST out, an OFFER and an ACK in
    assert int(m.group(1)) >= 2 and int(m.group(2)) >= 2 and int(m.group(3)) == 0, out
    # after a kill the new task has its interface back (same MAC) and fresh counters
    s.run_commands(["kill tcpip"])
    s.expect(DHCP_LINE)
    out = s.run_commands(["net"])
    assert "net0 10.0.2.15/24 gw 10.0.2.2 mac 52:54:00:12:34:56\n" in out, out
    s.send_line("shutdown")
    assert s.wait() == 0


def test_hosted_net_command_needs_reach(run):
    """The default manifest does not let the shell reach net."""
    s = run()
    out = s.run_commands(["net", "net extra"])
    assert "shell: net: permission denied" in out, out
    assert "shell: net takes no arguments" in out, out
    s.send_line("shutdown")
    assert s.wait() == 0


@pytest.mark.parametrize("net", ["user", "none"])
def test_hosted_tcpip_trace_replays(run, manifest, tmp_path, net):
    """A recorded tcpip replays alone: with net0 (a stand-in device) and without."""
    trace = str(tmp_path / "t.db")
    s = run("--manifest", manifest, "--net", net, "--trace", trace)
    s.expect(DHCP_LINE if net == "user" else r"\[init\] tcpip \(task \d+\) exited\n")
    out = s.run_commands(["ps"])
    s.send_line("shutdown")
    assert s.wait() == 0, out
    r = run_cli(["replay", trace, "--task", "tcpip"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"replay tcpip: \d+ events matched", r.stdout), r.stdout


def test_tcpip_without_net0_on_every_platform(boot, manifest):
    """The image links lwIP on every platform; with no net0 (bare metal has no virtio-net driver
    yet) tcpip says so once and the OS runs on."""
    s = boot("--manifest", manifest)
    s.expect(r"\[tcpip\] no net0 device \(no such entry\); tcpip not started")
    s.expect(r"\[init\] tcpip \(task \d+\) exited")
    assert "still running" in s.run_commands(["echo still running"])
    s.send_line("shutdown 4")
    assert s.wait() == 4
