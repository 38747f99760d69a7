# targets.py — tests/mutation/targets.toml (groups of files and the tiers of tests that judge
# their mutants) and the hand-kept id lists (equivalent.txt, known-survivors.txt).
import fnmatch
import os
import tomllib
from dataclasses import dataclass, field

TIERS = ("unit", "replay", "sim", "fuzz")


@dataclass
class Group:
    name: str
    files: list                 # globs, relative to the source tree's top
    exclude: list = field(default_factory=list)
    unit: str = ""             # ctest -R regex
    replay: str = ""           # ctest -R regex
    sim: list = field(default_factory=list)   # [(scenario path or None for the default, seeds)]
    fuzz: list = field(default_factory=list)  # [(target, seconds)]

    def has(self, tier):
        return bool(getattr(self, tier))

    def expand(self, tracked):
        """The tracked .c files of this group, sorted."""
        out = []
        for f in tracked:
            if not f.endswith(".c"):
                continue
            if any(fnmatch.fnmatchcase(f, g) for g in self.files) and \
                    not any(fnmatch.fnmatchcase(f, g) for g in self.exclude):
                out.append(f)
        return sorted(out)


def _sim_entry(where, s):
    scn, sep, seeds = s.rpartition(":")
    if not sep or not seeds.isdigit() or int(seeds) < 1:
        raise ValueError(f"{where}: sim entry '{s}' is not SCENARIO:SEEDS")
    if scn == "sim:default":
        return (None, int(seeds))
    return (scn, int(seeds))


def _fuzz_entries(where, v):
    items = v if isinstance(v, list) else [v]
    out = []
    for it in items:
        if not isinstance(it, dict) or "target" not in it:
            raise ValueError(f"{where}: fuzz needs {{ target = NAME, seconds = N }}")
        out.append((str(it["target"]), int(it.get("seconds", 20))))
    return out


def load(path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    groups = []
    for name, g in doc.get("group", {}).items():
        where = f"{path}: group {name}"
        if "files" not in g:
            raise ValueError(f"{where}: no files")
        groups.append(Group(
            name=name, files=list(g["files"]), exclude=list(g.get("exclude", [])),
            unit=g.get("unit", ""), replay=g.get("replay", ""),
            sim=[_sim_entry(where, s) for s in g.get("sim", [])],
            fuzz=_fuzz_entries(where, g["fuzz"]) if "fuzz" in g else []))
    return groups


def load_ids(path):
    """ID -> reason from a list of 'ID  # reason' lines (blank lines and whole-line comments
    skipped); an absent file is an empty list."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            ident, _, reason = line.partition("#")
            out[ident.strip()] = reason.strip()
    return out
