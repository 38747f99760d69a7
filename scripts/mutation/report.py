# report.py — WORK/report.json and WORK/report.md from the results of the selected mutants.
import difflib
import json

from .targets import TIERS

COLUMNS = ["mutants", "not_compiled", "equivalent", "killed_unit", "killed_replay",
           "killed_sim", "killed_fuzz", "killed_timeout", "survived", "known_survivors",
           "not_run", "score"]


def unified(m, original):
    """The mutant as a unified diff of its file, 3 lines of context."""
    a = original.splitlines(keepends=True)
    b = m.apply(original).splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, f"a/{m.path}", f"b/{m.path}", n=3))


def _count(rows):
    c = {k: 0 for k in COLUMNS if k != "score"}
    for r in rows:
        c["mutants"] += 1
        st = r["status"]
        if st == "killed":
            c["killed_timeout" if r.get("timeout") else f"killed_{r['tier']}"] += 1
        elif st in c:
            c[st] += 1
        if st == "survived" and r.get("known"):
            c["known_survivors"] += 1
    killed = sum(c[f"killed_{t}"] for t in TIERS) + c["killed_timeout"]
    c["killed"] = killed
    c["score"] = round(killed / (killed + c["survived"]), 3) if killed + c["survived"] else None
    return c


def build(rows, originals, tiers, meta):
    """ROWS: one dict per selected mutant (its Mutant as 'm', group, status, tier, ...)."""
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], {}).setdefault(r["m"].path, []).append(r)
    doc = {"meta": meta, "tiers": list(tiers), "total": _count(rows), "groups": {},
           "survivors": []}
    for g in sorted(groups):
        files = groups[g]
        doc["groups"][g] = {"total": _count([r for rs in files.values() for r in rs]),
                            "files": {f: _count(rs) for f, rs in sorted(files.items())}}
    for r in sorted(rows, key=lambda r: (r["group"], r["m"].path, r["m"].start)):
        if r["status"] == "survived":
            m = r["m"]
            doc["survivors"].append({"id": m.id, "group": r["group"], "line": m.line,
                                     "known": r.get("known", ""),
                                     "diff": unified(m, originals[m.path])})
    return doc


def _fmt(v):
    return "-" if v is None else (f"{v:.0%}" if isinstance(v, float) else str(v))


def markdown(doc):
    cols = ["mutants", "not_compiled", "equivalent", "killed_unit", "killed_replay",
            "killed_sim", "killed_fuzz", "killed_timeout", "survived", "not_run", "score"]
    head = ["group / file", "mutants", "not compiled", "equiv.", "unit", "replay", "sim",
            "fuzz", "timeout", "survived", "not run", "score"]
    out = ["# Mutation testing report", "",
           f"Tiers: {', '.join(doc['tiers'])}. {doc['meta'].get('selection', '')}", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g, gd in doc["groups"].items():
        out.append(f"| **{g}** | " + " | ".join(_fmt(gd["total"][c]) for c in cols) + " |")
        for f, fc in gd["files"].items():
            out.append(f"| {f} | " + " | ".join(_fmt(fc[c]) for c in cols) + " |")
    out.append("| **total** | " + " | ".join(_fmt(doc["total"][c]) for c in cols) + " |")
    out += ["", "score = killed / (killed + survived); timeouts count as killed.", ""]
    out.append(f"## Survivors ({len(doc['survivors'])})")
    for s in doc["survivors"]:
        known = f" (known: {s['known']})" if s["known"] else ""
        out += ["", f"### `{s['id']}` line {s['line']}{known}", "", "```diff", s["diff"].rstrip(),
                "```"]
    return "\n".join(out) + "\n"


def write(work, doc):
    with open(f"{work}/report.json", "w") as fh:
        json.dump(doc, fh, indent=1)
    with open(f"{work}/report.md", "w") as fh:
        fh.write(markdown(doc))
