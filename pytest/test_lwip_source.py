"""test_lwip_source.py — scripts/lwip-source: the deb-src entry it would add, and a warm cache."""
import os
import subprocess

from conftest import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "lwip-source")

MAIN = """Types: deb
# a comment apt ignores
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def run(tmp_path, *args, sources=None, lists=None, codename="bookworm", cache=None):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True, exist_ok=True)
    for name, text in (sources or {}).items():
        (etc / "sources.list.d" / name).write_text(text)
    if lists is not None:
        (etc / "sources.list").write_text(lists)
    osr = tmp_path / "os-release"
    osr.write_text(f"ID=debian\nVERSION_CODENAME={codename}\n" if codename else "ID=debian\n")
    env = dict(os.environ, ORRERY_APT_ETC=str(etc), ORRERY_OS_RELEASE=str(osr),
               ORRERY_LWIP_CACHE=str(cache or tmp_path / "no-cache"))
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=60)


def test_deb822_main_entry_is_mirrored_as_deb_src(tmp_path):
    r = run(tmp_path, "--deb-src-entry", sources={"debian.sources": MAIN})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Types: deb-src",
        "URIs: http://deb.debian.org/debian",
        "Suites: bookworm bookworm-updates",
        "Components: main",
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
    ]


def test_existing_deb_src_stanza_means_nothing_to_add(tmp_path):
    src = MAIN + "\nTypes: deb-src\nURIs: http://x/debian\nSuites: bookworm\nComponents: main\n"
    r = run(tmp_path, "--deb-src-entry", sources={"debian.sources": src})
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_disabled_deb_src_stanza_does_not_count(tmp_path):
    src = MAIN + "\nTypes: deb-src\nEnabled: no\nURIs: http://x/debian\nSuites: bookworm\n"
    r = run(tmp_path, "--deb-src-entry", sources={"debian.sources": src})
    assert r.returncode == 0 and r.stdout.startswith("Types: deb-src\nURIs: http://deb.debian.org/debian\n")


def test_one_line_sources_list_is_mirrored(tmp_path):
    lists = ("deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m/debian bookworm main contrib\n"
             "deb-src http://m/debian bookworm-security main\n")
    r = run(tmp_path, "--deb-src-entry", lists=lists)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Types: deb-src", "URIs: http://m/debian", "Suites: bookworm",
        "Components: main contrib", "Signed-By: /usr/share/keyrings/k.gpg"]


def test_one_line_deb_src_counts(tmp_path):
    r = run(tmp_path, "--deb-src-entry", lists="deb-src http://m/debian bookworm main\n",
            sources={"debian.sources": MAIN})
    assert (r.returncode, r.stdout) == (0, "")


def test_no_entry_for_the_suite_is_a_named_error(tmp_path):
    r = run(tmp_path, "--deb-src-entry", sources={"debian.sources": MAIN}, codename="trixie")
    assert r.returncode == 1
    assert "step 'deb-src entry'" in r.stderr and "'trixie'" in r.stderr


def test_missing_codename_is_a_named_error(tmp_path):
    r = run(tmp_path, "--deb-src-entry", sources={"debian.sources": MAIN}, codename="")
    assert r.returncode == 1 and "step 'suite'" in r.stderr


def test_warm_cache_prints_nothing(tmp_path):
    tree = tmp_path / "cache" / "lwip-2.1.3"
    (tree / "src" / "core").mkdir(parents=True)
    (tree / "src" / "core" / "tcp.c").write_text("/* lwIP */\n")
    (tree / "test" / "unit").mkdir(parents=True)
    os.symlink("lwip-2.1.3", tmp_path / "cache" / "current")
    # No apt sources at all: a warm cache must not even look at them.
    r = run(tmp_path, cache=tmp_path / "cache", codename="")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_unknown_argument_is_a_usage_error(tmp_path):
    r = run(tmp_path, "--frobnicate")
    assert r.returncode == 2 and "unknown argument '--frobnicate'" in r.stderr
