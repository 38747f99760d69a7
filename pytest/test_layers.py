"""test_layers.py — scripts/check-layers catches what crosses the folder table, on a small tree."""
import os
import subprocess
import sys

from conftest import ROOT

CHECK = os.path.join(ROOT, "scripts", "check-layers")
TABLE = """# doc
<!-- layers:begin -->
| folder | may use |
|---|---|
| `hal/` | — |
| `core/` | `hal/` |
| `cli/` | `core/`, `hal/` |
<!-- layers:end -->
"""


def make_tree(tmp_path, table=TABLE, files=()):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "architecture.md").write_text(table)
    for d in ("hal/include/hal", "core/include/k", "cli"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "hal/include/hal/clock.h").write_text("/* clock */\n")
    (tmp_path / "core/include/k/kernel.h").write_text("#include <hal/clock.h>\n")
    (tmp_path / "cli/commands.h").write_text("/* commands */\n")
    (tmp_path / "cli/main.c").write_text('#include "commands.h"\n#include <k/kernel.h>\n'
                                         "#include <stdio.h>\n")
    for path, text in files:
        p = tmp_path / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return subprocess.run([sys.executable, CHECK, "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)


def test_tree_within_table_passes(tmp_path):
    r = make_tree(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_include_against_the_arrow_fails(tmp_path):
    r = make_tree(tmp_path, files=[("core/task.c", "#include <k/kernel.h>\n\n"
                                    '#include "../cli/commands.h"\n')])
    assert r.returncode == 1
    assert "core/task.c:3: includes ../cli/commands.h from cli/, which core/ may not use" \
        in r.stdout


def test_cmake_link_against_the_arrow_fails(tmp_path):
    r = make_tree(tmp_path, files=[
        ("cli/CMakeLists.txt", "add_executable(orrery main.c)\n"),
        ("hal/CMakeLists.txt", "add_library(orrery_hal STATIC x.c)\n"
                               "target_link_libraries(orrery_hal PUBLIC orrery)\n")])
    assert r.returncode == 1
    assert "hal/CMakeLists.txt:2: links orrery from cli/" in r.stdout


def test_cycle_in_table_fails(tmp_path):
    r = make_tree(tmp_path, table=TABLE.replace("| `hal/` | — |", "| `hal/` | `cli/` |"))
    assert r.returncode == 1
    assert "cycle" in r.stdout


def test_missing_table_is_a_clear_error(tmp_path):
    r = make_tree(tmp_path, table="# no table\n")
    assert r.returncode == 2
    assert "no table between" in r.stderr


def test_the_repository_holds():
    r = subprocess.run([sys.executable, CHECK], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
