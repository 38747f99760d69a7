# test_mutate.py — scripts/mutate: the mutants it finds on a small C file (exactly), ids that
# survive an edit above, and a run on a tiny CMake project: killed, survived, not compiled,
# --resume. Needs python3-clang, cmake, ninja and git (scripts/setup).
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTATE = os.path.join(TOP, "scripts", "mutate")
sys.path.insert(0, os.path.join(TOP, "scripts"))

gen = pytest.importorskip("mutation.generate", reason="python3-clang (scripts/setup)")

SMALL_C = """\
#define LIMIT 8
void g(int x);
static const int table[4] = {1, 2, 3, 4};

int f(int a, int b)
{
    int x = 0;
    if (a < b)
        x = a + b;
    while (a && b)
        a--;
    g(x & LIMIT);
    return a > LIMIT ? x : 1;
}

void h(int a)
{
    for (int i = 0; i != a; i++)
        g(i);
    _Static_assert(LIMIT == 8, "limit");
}
"""

# (operator, line, old, new) of every mutant of SMALL_C. Not there: the static table's numbers,
# the static assertion, LIMIT's expansion, the for's i++ (not a statement), 0 - 1.
SMALL_EXPECTED = [
    ("ret.minus1", 6, "", " return -1;"),
    ("ret.zero", 6, "", " return 0;"),
    ("lit.inc", 7, "0", "1"),
    ("neg.if", 8, "a < b", "!(a < b)"),
    ("ror.lt.ge", 8, "<", ">="),
    ("ror.lt.le", 8, "<", "<="),
    ("del.assign", 9, "x = a + b", ""),
    ("aor.add.sub", 9, "+", "-"),
    ("neg.while", 10, "a && b", "!(a && b)"),
    ("lcr.land.lor", 10, "&&", "||"),
    ("del.incdec", 11, "a--", ""),
    ("del.call", 12, "g(x & LIMIT)", ""),
    ("bor.and.or", 12, "&", "|"),
    ("neg.cond", 13, "a > LIMIT", "!(a > LIMIT)"),
    ("ror.gt.ge", 13, ">", ">="),
    ("ror.gt.le", 13, ">", "<="),
    ("lit.dec", 13, "1", "0"),
    ("lit.inc", 13, "1", "2"),
    ("ret.void", 17, "", " return;"),
    ("lit.inc", 18, "0", "1"),
    ("neg.for", 18, "i != a", "!(i != a)"),
    ("ror.ne.eq", 18, "!=", "=="),
    ("del.call", 19, "g(i)", ""),
]


def _mutants(tmp_path, text):
    src = tmp_path / "t.c"
    src.write_text(text)
    (tmp_path / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(tmp_path), "file": "t.c", "arguments": ["cc", "-c", "t.c", "-o", "t.o"]}]))
    args = gen.compile_args(str(tmp_path), str(src))
    assert args == []
    return gen.generate(str(src), "t.c", args)


def test_every_operator_on_a_small_file(tmp_path):
    ms = _mutants(tmp_path, SMALL_C)
    assert SMALL_EXPECTED == [(m.op, m.line, m.old, m.new) for m in ms]
    # Each mutant is the original with one range replaced, and its id names it.
    m = next(m for m in ms if m.op == "ror.lt.ge")
    assert "    if (a >= b)\n" in m.apply(SMALL_C)
    assert m.id.startswith("t.c:f:ror.lt.ge:0:")
    assert len(set(m.id for m in ms)) == len(ms)


def test_ids_survive_a_line_inserted_above(tmp_path):
    before = {m.id: (m.old, m.new) for m in _mutants(tmp_path, SMALL_C)}
    edited = SMALL_C.replace("int f(int a, int b)\n{\n",
                             "int f(int a, int b)\n{\n    g(0);\n").replace(
        "void g(int x);\n", "void g(int x);\nint k(void);\n")
    after = {m.id: (m.old, m.new) for m in _mutants(tmp_path, edited)}
    assert set(before) <= set(after)
    for i, change in before.items():
        assert change == after[i]


# ---- a run on a tiny project ----
CMAKE = """\
cmake_minimum_required(VERSION 3.20)
project(tiny C)
enable_testing()
add_library(lib STATIC lib.c)
add_executable(test_lib test_lib.c)
target_link_libraries(test_lib PRIVATE lib)
add_test(NAME test_lib COMMAND test_lib)
add_executable(test_other test_other.c)
add_test(NAME test_other COMMAND test_other)
"""
LIB_C = """\
int clamp(int v, int hi)
{
    if (v > hi)
        return hi;
    return v;
}

long dist(const char *p, const char *q)
{
    return p - q;
}
"""
TEST_C = """\
int clamp(int v, int hi);
int main(void)
{
    return !(clamp(5, 3) == 3 && clamp(2, 3) == 2 && clamp(3, 3) == 3);
}
"""
TARGETS = """\
[group.lib]
files = ["lib.c"]
unit = "^test_(lib|other)$"
"""


@pytest.fixture
def tiny(tmp_path):
    for tool in ("cmake", "ninja", "git", "ctest"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing (scripts/setup)")
    top = tmp_path / "tiny"
    (top / "tests" / "mutation").mkdir(parents=True)
    (top / "CMakeLists.txt").write_text(CMAKE)
    (top / "lib.c").write_text(LIB_C)
    (top / "test_lib.c").write_text(TEST_C)
    (top / "test_other.c").write_text("int main(void)\n{\n    return 0;\n}\n")
    (top / "tests" / "mutation" / "targets.toml").write_text(TARGETS)
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    subprocess.run(["git", "-C", str(top), "add", "."], check=True)
    return top


def _mutate(top, *args):
    return subprocess.run([sys.executable, MUTATE, "--work", str(top / "work"), "-j", "1",
                           *args], cwd=top, capture_output=True, text=True, timeout=120)


KILLED = "lib.c:clamp:ror.gt.le:0:"     # v <= hi: clamp(5, 3) is 5
SURVIVES = "lib.c:clamp:ror.gt.ge:0:"   # v >= hi: the same value at v == hi
BROKEN = "lib.c:dist:aor.sub.add:0:"    # p + q: two pointers do not add


def test_a_run_kills_keeps_and_skips(tiny):
    listing = _mutate(tiny, "--list")
    assert listing.returncode == 0, listing.stderr
    ids = [line.split()[0] for line in listing.stdout.splitlines() if line.startswith("lib.c:")]
    chosen = [next(i for i in ids if i.startswith(p)) for p in (KILLED, SURVIVES, BROKEN)]
    picks = [a for i in chosen for a in ("--id", i)]

    r = _mutate(tiny, *picks)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 3 == r.stdout.count("] lib.c:")
    results = {}
    with open(tiny / "work" / "results.jsonl") as fh:
        for line in fh:
            rec = json.loads(line)
            results[rec["id"]] = rec
    assert "killed" == results[chosen[0]]["status"]
    assert "unit" == results[chosen[0]]["tier"]
    assert "survived" == results[chosen[1]]["status"]
    assert "not_compiled" == results[chosen[2]]["status"]
    # test_other does not link lib.c: its executable was not relinked, so it was not run.
    assert ["test_other"] == results[chosen[0]]["unchanged"]
    # The user's tree is as it was; the worker's copy holds the original again.
    assert LIB_C == (tiny / "lib.c").read_text()
    assert LIB_C == (tiny / "work" / "w0" / "src" / "lib.c").read_text()
    report = json.loads((tiny / "work" / "report.json").read_text())
    assert [chosen[1]] == [s["id"] for s in report["survivors"]]
    assert 0.5 == report["total"]["score"]
    assert "-    if (v > hi)\n+    if (v >= hi)\n" in report["survivors"][0]["diff"]

    again = _mutate(tiny, "--resume", *picks)
    assert again.returncode == 0, again.stderr
    assert 0 == again.stdout.count("] lib.c:")
    assert "1 killed, 1 survived, 1 not compiled" in again.stdout

    # Other tiers that include the killing one keep the kill; the survivor and the mutant
    # that did not build run again (their results were for other tiers).
    other = _mutate(tiny, "--resume", "--tiers", "unit,sim", *picks)
    assert other.returncode == 0, other.stderr
    assert 2 == other.stdout.count("] lib.c:")
    assert "1 killed, 1 survived, 1 not compiled" in other.stdout
    # --rerun-survivors runs the survivor alone again.
    rerun = _mutate(tiny, "--resume", "--rerun-survivors", *picks)
    assert rerun.returncode == 0, rerun.stderr
    assert 1 == rerun.stdout.count("] lib.c:")
    assert "1 killed, 1 survived, 1 not compiled" in rerun.stdout
