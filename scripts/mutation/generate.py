# generate.py — mutants of one C file, found on its syntax tree (libclang, python3-clang).
#
# Each mutant is the file's original text with one byte range replaced. Ranges come from token
# extents, so a mutant is exact to the byte; a range that cuts into a macro expansion is never
# used (libclang reports code from a macro body at the expansion site, which cannot be edited
# as written). The mutation operators and the id format are in docs/testing.md
# ("Mutation testing").
import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass, field

import clang.cindex as ci

K = ci.CursorKind

# Relational operators: each goes to its neighbour (the bound moved by one) and to its negation.
ROR = {
    "<": ["<=", ">="],
    "<=": ["<", ">"],
    ">": [">=", "<="],
    ">=": [">", "<"],
    "==": ["!="],
    "!=": ["=="],
}
# Arithmetic and bitwise operators, and their compound assignments.
AOR = {"+": "-", "-": "+", "*": "/", "/": "*", "%": "*"}
BOR = {"&": "|", "|": "&", "^": "|"}
LCR = {"&&": "||", "||": "&&"}
NAMES = {
    "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne",
    "+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod",
    "&": "and", "|": "or", "^": "xor", "&&": "land", "||": "lor",
}

# Statements whose deletion is a mutant: an expression evaluated for its effect.
EFFECT_EXPRS = {K.CALL_EXPR, K.BINARY_OPERATOR, K.COMPOUND_ASSIGNMENT_OPERATOR,
                K.UNARY_OPERATOR}
STMT_PARENTS = {K.COMPOUND_STMT, K.CASE_STMT, K.DEFAULT_STMT, K.LABEL_STMT}
INT_TYPES = {ci.TypeKind.INT, ci.TypeKind.LONG, ci.TypeKind.LONGLONG, ci.TypeKind.SHORT,
             ci.TypeKind.SCHAR, ci.TypeKind.CHAR_S}
UINT_TYPES = {ci.TypeKind.UINT, ci.TypeKind.ULONG, ci.TypeKind.ULONGLONG, ci.TypeKind.USHORT,
              ci.TypeKind.UCHAR, ci.TypeKind.CHAR_U, ci.TypeKind.BOOL}

ID_HASH_LEN = 6  # hex digits of the snippet's sha1 in a mutant id


@dataclass
class Mutant:
    id: str          # stable id: PATH:FUNCTION:OPERATOR:N:HASH (docs/testing.md)
    path: str        # the file, relative to the source tree's top
    function: str
    op: str          # operator name, e.g. ror.ge.gt
    line: int        # 1-based line of the replaced range's start
    start: int       # byte offsets of the replaced range in the original file
    end: int
    old: str         # the original bytes of the range (text)
    new: str         # what replaces them
    snippet: str = field(default="", repr=False)  # the code the id's hash is taken of

    def describe(self):
        old = self.old if len(self.old) <= 40 else self.old[:37] + "..."
        if self.new == "":
            return f"delete {old}"
        if self.old == "":
            return f"insert {self.new.strip()}"
        return f"{old} -> {self.new}" if len(self.new) <= 40 else f"{old} -> {self.new[:37]}..."

    def apply(self, text):
        b = text.encode()
        return (b[:self.start] + self.new.encode() + b[self.end:]).decode()

    def to_json(self):
        return {k: getattr(self, k) for k in
                ("id", "path", "function", "op", "line", "start", "end", "old", "new")}


def compile_args(compdb_dir, path):
    """The compile flags the build uses for PATH (absolute), from compile_commands.json, minus
    the compiler, the output and the source; None when the build does not compile it."""
    with open(os.path.join(compdb_dir, "compile_commands.json")) as f:
        db = json.load(f)
    for e in db:
        f = os.path.normpath(os.path.join(e["directory"], e["file"]))
        if f != os.path.normpath(path):
            continue
        argv = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        out, skip = [], False
        for a in argv[1:]:
            if skip:
                skip = False
                continue
            if a in ("-o", "-MF", "-MT", "-MQ"):
                skip = True
                continue
            if a in ("-c", "-MD", "-MMD") or os.path.normpath(os.path.join(e["directory"], a)) == f:
                continue
            if a.startswith("-I") and len(a) > 2 and not os.path.isabs(a[2:]):
                a = "-I" + os.path.normpath(os.path.join(e["directory"], a[2:]))
            out.append(a)
        return out
    return None


def _norm(s):
    return " ".join(s.split())


def _short_hash(s):
    return hashlib.sha1(_norm(s).encode()).hexdigest()[:ID_HASH_LEN]


class _FileMutator:
    def __init__(self, tu, abspath, relpath, text):
        self.tu = tu
        self.abspath = abspath
        self.rel = relpath
        self.text = text
        self.data = text.encode()
        self.out = []
        self.macros = []  # (start, end) byte ranges of macro expansions in this file
        for c in tu.cursor.get_children():
            if c.kind == K.MACRO_INSTANTIATION and self._in_file(c):
                self.macros.append((c.extent.start.offset, c.extent.end.offset))

    def _in_file(self, c):
        e = c.extent
        return (e.start.file is not None and e.end.file is not None
                and os.path.normpath(e.start.file.name) == self.abspath
                and os.path.normpath(e.end.file.name) == self.abspath)

    def _clean(self, start, end):
        """A range is usable when each macro expansion is wholly inside it or wholly out."""
        if start >= end:
            return False
        for m0, m1 in self.macros:
            if m1 <= start or m0 >= end:
                continue
            if not (start <= m0 and m1 <= end):
                return False
        return True

    def _in_macro(self, start, end):
        return any(m0 <= start and end <= m1 for m0, m1 in self.macros)

    def _src(self, start, end):
        return self.data[start:end].decode()

    def _line(self, offset):
        return self.data.count(b"\n", 0, offset) + 1

    def add(self, func, op, start, end, new, snippet):
        self.out.append(Mutant(id="", path=self.rel, function=func, op=op,
                               line=self._line(start), start=start, end=end,
                               old=self._src(start, end), new=new, snippet=snippet))

    # ---- the walk ----
    def run(self):
        for c in self.tu.cursor.get_children():
            if c.kind == K.FUNCTION_DECL and c.is_definition() and self._in_file(c):
                body = [b for b in c.get_children() if b.kind == K.COMPOUND_STMT]
                if body:
                    self._function(c, body[0])
        return self.out

    def _function(self, fn, body):
        name = fn.spelling
        self._early_return(fn, body)
        self._walk(name, fn, body, None, False)

    def _walk(self, func, fn, c, parent, skip_lits):
        k = c.kind
        if k == K.STATIC_ASSERT:
            return
        if k == K.VAR_DECL and (c.type.kind in (ci.TypeKind.CONSTANTARRAY, ci.TypeKind.INCOMPLETEARRAY)
                                or c.storage_class == ci.StorageClass.STATIC):
            # An array's size and a static table's initialiser: a changed number there is a
            # changed layout, not a changed behaviour of the code under test.
            skip_lits = True
        if k == K.INIT_LIST_EXPR and parent is not None and parent.kind == K.VAR_DECL:
            skip_lits = True
        if k in (K.BINARY_OPERATOR, K.COMPOUND_ASSIGNMENT_OPERATOR):
            self._binop(func, c)
        elif k == K.INTEGER_LITERAL and not skip_lits:
            self._literal(func, c, parent)
        elif k == K.IF_STMT:
            self._negate(func, c, "neg.if", self._first_expr_child(c))
        elif k == K.WHILE_STMT:
            self._negate(func, c, "neg.while", self._first_expr_child(c))
        elif k == K.DO_STMT:
            kids = list(c.get_children())
            if len(kids) == 2:
                self._negate(func, c, "neg.do", kids[1])
        elif k == K.FOR_STMT:
            self._negate(func, c, "neg.for", self._for_cond(c))
        elif k == K.CONDITIONAL_OPERATOR:
            self._negate(func, c, "neg.cond", self._first_expr_child(c))
        if parent is not None and self._is_stmt_position(parent, c):
            self._delete(func, fn, c)
        for ch in c.get_children():
            self._walk(func, fn, ch, c, skip_lits)

    # ---- operators ----
    def _op_token(self, c):
        kids = list(c.get_children())
        if len(kids) != 2:
            return None
        lhs, rhs = kids
        a, b = lhs.extent.end.offset, rhs.extent.start.offset
        if not (self._in_file(lhs) and self._in_file(rhs)) or a >= b:
            return None
        toks = [t for t in c.get_tokens()
                if t.kind == ci.TokenKind.PUNCTUATION and a <= t.extent.start.offset
                and t.extent.end.offset <= b]
        if len(toks) != 1:
            return None
        t = toks[0]
        s, e = t.extent.start.offset, t.extent.end.offset
        if self._in_macro(s, e) or not self._clean(s, e):
            return None
        return t.spelling, s, e

    def _binop(self, func, c):
        if not self._in_file(c):
            return
        t = self._op_token(c)
        if t is None:
            return
        op, s, e = t
        snippet = self._src(c.extent.start.offset, c.extent.end.offset)
        compound = op.endswith("=") and op not in ROR and len(op) >= 2
        base = op[:-1] if compound else op
        if op in ROR:
            for to in ROR[op]:
                self.add(func, f"ror.{NAMES[op]}.{NAMES[to]}", s, e, to, snippet)
        elif op in LCR:
            self.add(func, f"lcr.{NAMES[op]}.{NAMES[LCR[op]]}", s, e, LCR[op], snippet)
        elif base in AOR:
            to = AOR[base]
            self.add(func, f"aor.{NAMES[base]}.{NAMES[to]}", s, e, to + ("=" if compound else ""), snippet)
        elif base in BOR:
            to = BOR[base]
            self.add(func, f"bor.{NAMES[base]}.{NAMES[to]}", s, e, to + ("=" if compound else ""), snippet)

    def _literal(self, func, c, parent):
        if not self._in_file(c):
            return
        toks = list(c.get_tokens())
        if len(toks) != 1 or toks[0].kind != ci.TokenKind.LITERAL:
            return
        t = toks[0]
        s, e = t.extent.start.offset, t.extent.end.offset
        if self._in_macro(s, e) or not self._clean(s, e):
            return
        m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([uUlL]*)", t.spelling)
        if not m:
            return
        digits, suffix = m.groups()
        if digits[:2] in ("0x", "0X"):
            v, fmt = int(digits, 16), (lambda n: digits[:2] + format(n, "x" if digits[2:].islower() or digits[2:].isdigit() else "X"))
        elif len(digits) > 1 and digits[0] == "0":
            v, fmt = int(digits, 8), (lambda n: "0" + format(n, "o"))
        else:
            v, fmt = int(digits), str
        # The context of the literal for the id: its parent expression (or the literal alone).
        ctx = parent if parent is not None and self._in_file(parent) and parent.kind not in (
            K.COMPOUND_STMT, K.VAR_DECL) else c
        snippet = self._src(ctx.extent.start.offset, ctx.extent.end.offset)
        self.add(func, "lit.inc", s, e, fmt(v + 1) + suffix, snippet)
        if v > 0:
            self.add(func, "lit.dec", s, e, fmt(v - 1) + suffix, snippet)

    def _first_expr_child(self, c):
        kids = list(c.get_children())
        if not kids or kids[0].kind.is_declaration() or kids[0].kind == K.DECL_STMT:
            return None
        return kids[0]

    def _for_cond(self, c):
        # libclang leaves out a for's empty parts, so the condition is found between the
        # first two semicolons at the parentheses' depth.
        depth, semis = 0, []
        for t in c.get_tokens():
            if t.spelling == "(":
                depth += 1
            elif t.spelling == ")":
                depth -= 1
                if depth == 0:
                    break
            elif t.spelling == ";" and depth == 1:
                semis.append(t.extent.start.offset)
        if len(semis) != 2:
            return None
        for k in c.get_children():
            if semis[0] < k.extent.start.offset and k.extent.end.offset <= semis[1]:
                return k
        return None

    def _negate(self, func, stmt, op, cond):
        if cond is None or not self._in_file(cond):
            return
        s, e = cond.extent.start.offset, cond.extent.end.offset
        if not self._clean(s, e):
            return
        src = self._src(s, e)
        self.add(func, op, s, e, f"!({src})", src)

    def _is_stmt_position(self, parent, c):
        if c.kind not in EFFECT_EXPRS and c.kind not in (K.RETURN_STMT, K.BREAK_STMT, K.CONTINUE_STMT):
            return False
        if parent.kind in STMT_PARENTS:
            # A case's or label's own expression (the value) is not a statement.
            if parent.kind == K.CASE_STMT and list(parent.get_children())[0] == c:
                return False
            return True
        kids = list(parent.get_children())
        if parent.kind == K.IF_STMT:
            return c in kids[1:]
        if parent.kind in (K.WHILE_STMT, K.FOR_STMT):
            return len(kids) >= 2 and c == kids[-1]  # the body: libclang lists it last
        if parent.kind == K.DO_STMT:
            return len(kids) == 2 and c == kids[0]
        return False

    def _delete(self, func, fn, c):
        if not self._in_file(c):
            return
        k = c.kind
        if k == K.UNARY_OPERATOR:
            toks = [t.spelling for t in c.get_tokens()]
            if "++" not in toks and "--" not in toks:
                return
        if k == K.BINARY_OPERATOR:
            t = self._op_token(c)
            if t is None or t[0] != "=":
                return
        if k == K.RETURN_STMT and (fn.result_type.kind != ci.TypeKind.VOID
                                   or list(c.get_children())):
            return  # only `return;` of a void function: anything else may not compile
        s, e = c.extent.start.offset, c.extent.end.offset  # the `;` is past the extent: it stays
        if not self._clean(s, e):
            return
        op = {K.RETURN_STMT: "del.return", K.BREAK_STMT: "del.break",
              K.CONTINUE_STMT: "del.continue", K.CALL_EXPR: "del.call",
              K.UNARY_OPERATOR: "del.incdec"}.get(k, "del.assign")
        src = self._src(s, e)
        self.add(func, op, s, e, "", src)

    def _early_return(self, fn, body):
        toks = list(body.get_tokens())
        if not toks or toks[0].spelling != "{":
            return
        at = toks[0].extent.end.offset
        if self._in_macro(at - 1, at):
            return
        rt = fn.result_type.get_canonical()
        if rt.kind == ci.TypeKind.VOID:
            values = [("ret.void", "return;")]
        elif rt.kind == ci.TypeKind.BOOL:
            values = [("ret.false", "return 0;"), ("ret.true", "return 1;")]
        elif rt.kind in INT_TYPES:
            values = [("ret.zero", "return 0;"), ("ret.minus1", "return -1;")]
        elif rt.kind in UINT_TYPES or rt.kind == ci.TypeKind.POINTER:
            values = [("ret.zero", "return 0;")]
        else:
            return  # structs, floats: no sensible constant
        head = [t.spelling for t in fn.get_tokens() if t.extent.start.offset < at]
        if any(t in ("_Noreturn", "noreturn") for t in head):
            return  # returning from it is undefined, not a mutant
        for op, stmt in values:
            self.add(fn.spelling, op, at, at, " " + stmt, fn.spelling)


def generate(abspath, relpath, args):
    """Every mutant of the file at ABSPATH (RELPATH in ids), parsed with compile flags ARGS."""
    with open(abspath, encoding="utf-8") as f:
        text = f.read()
    index = ci.Index.create()
    tu = index.parse(abspath, args=args,
                     options=ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD)
    errors = [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
    if errors:
        raise RuntimeError(f"{relpath}: libclang cannot parse it: {errors[0]}")
    muts = _FileMutator(tu, os.path.normpath(abspath), relpath, text).run()
    # Duplicates (the same range and replacement reached twice) are one mutant.
    seen, uniq = set(), []
    for m in sorted(muts, key=lambda m: (m.start, m.end, m.op, m.new)):
        key = (m.start, m.end, m.new)
        if key not in seen:
            seen.add(key)
            uniq.append(m)
    # Ids: N counts the mutants of one operator on one snippet within one function, in file order.
    counts = {}
    for m in uniq:
        h = _short_hash(m.snippet)
        key = (m.function, m.op, h)
        n = counts.get(key, 0)
        counts[key] = n + 1
        m.id = f"{relpath}:{m.function}:{m.op}:{n}:{h}"
    return uniq
