# run.py — workers that build and test mutants in private copies of the source tree.
#
# Worker N owns WORK/wN/src (a copy of the tracked files of the tree it was started from),
# WORK/wN/build (a Ninja build like scripts/build's, without the bare-metal image) and, once a
# mutant reaches the fuzz tier, WORK/wN/fuzz (configured as scripts/fuzz does). A mutant is
# written into the copy, the targets its tiers need are built, the tiers run in order until one
# fails (the mutant is killed), and the original file is written back, whatever happened.
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time


MIN_TIMEOUT = 10.0       # s: the least time a tier is given
TIMEOUT_FACTOR = 4.0     # a tier's limit is this many times its time on the unmutated tree
BUILD_TIMEOUT = 1800.0   # s: a (re)build of a worker's targets
FUZZ_TIMEOUT = 10        # s: libFuzzer's -timeout for one input (as scripts/fuzz)


class Interrupted(Exception):
    pass


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


def tracked_files(top):
    out = subprocess.run(["git", "-C", top, "ls-files", "-z"], check=True,
                         capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and os.path.isfile(os.path.join(top, f))]


def file_hash(data):
    return hashlib.sha1(data).hexdigest()[:12]


def tree_hash(top, files):
    h = hashlib.sha1()
    for f in files:
        h.update(f.encode() + b"\0")
        with open(os.path.join(top, f), "rb") as fh:
            h.update(hashlib.sha1(fh.read()).digest())
    return h.hexdigest()[:16]


class Proc:
    """The subprocesses of a run, so an interrupt can end them (each runs in its own session,
    so a timeout ends the test's children too)."""
    lock = threading.Lock()
    live = set()
    stopping = threading.Event()

    @classmethod
    def run(cls, argv, cwd, timeout, log):
        """Run ARGV; returns (exit code or None on timeout, seconds). Output goes to LOG."""
        if cls.stopping.is_set():
            raise Interrupted()
        t0 = time.monotonic()
        with open(log, "wb") as out:
            p = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
            with cls.lock:
                cls.live.add(p)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                cls._kill(p)
                p.wait()
                rc = None
            finally:
                with cls.lock:
                    cls.live.discard(p)
        if cls.stopping.is_set():
            raise Interrupted()
        return rc, time.monotonic() - t0

    @staticmethod
    def _kill(p):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @classmethod
    def stop_all(cls):
        cls.stopping.set()
        with cls.lock:
            for p in list(cls.live):
                cls._kill(p)


class Worker:
    def __init__(self, n, top, work, files, baseline):
        self.n = n
        self.top = top
        self.dir = os.path.join(work, f"w{n}")
        self.src = os.path.join(self.dir, "src")
        self.build = os.path.join(self.dir, "build")
        self.fuzz = os.path.join(self.dir, "fuzz")
        self.logs = os.path.join(self.dir, "logs")
        self.files = files
        self.baseline = baseline
        self.built = set()       # targets built at least once in this run
        self.fuzz_ready = False
        self._targets = {}       # (group, tier) -> ninja targets
        self._tests = {}         # (group, tier) -> the ctest tests its regex selects
        self._exes = {}          # ctest test -> its own executable (test_exe)
        self._not_exe = set()    # ctest tests without one
        self._ninja_names = None

    # ---- the private tree ----
    def sync(self):
        """Make the copy equal to the tracked files of the user's tree (a run stopped hard may
        have left a mutant in it; the files of a tree that moved on are brought up to date)."""
        os.makedirs(self.logs, exist_ok=True)
        for f in self.files:
            a = os.path.join(self.top, f)
            b = os.path.join(self.src, f)
            with open(a, "rb") as fh:
                data = fh.read()
            try:
                with open(b, "rb") as fh:
                    same = fh.read() == data
            except FileNotFoundError:
                same = False
            if not same:
                os.makedirs(os.path.dirname(b), exist_ok=True)
                with open(b, "wb") as fh:
                    fh.write(data)
                shutil.copymode(a, b)

    def configure(self):
        if os.path.exists(os.path.join(self.build, "build.ninja")):
            # The synced tree may have new tests or targets: let ninja regenerate its files
            # (a no-op when no CMake file changed) before the targets and tests are read.
            rc, _ = Proc.run(["ninja", "-C", self.build, "build.ninja"], self.src, BUILD_TIMEOUT,
                             os.path.join(self.logs, "regenerate.log"))
            if rc != 0:
                raise RuntimeError(f"regenerating {self.build} failed "
                                   f"(log: {self.logs}/regenerate.log)")
            return
        rc, _ = Proc.run(["cmake", "-S", self.src, "-B", self.build, "-G", "Ninja",
                          "-DORRERY_BAREMETAL=OFF", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"],
                         self.src, BUILD_TIMEOUT, os.path.join(self.logs, "configure.log"))
        if rc != 0:
            raise RuntimeError(f"configuring {self.build} failed (log: {self.logs}/configure.log)")

    def configure_fuzz(self):
        if self.fuzz_ready or os.path.exists(os.path.join(self.fuzz, "build.ninja")):
            self.fuzz_ready = True
            return
        cc = shutil.which("clang") or shutil.which("clang-14")
        if not cc:
            raise RuntimeError("clang not found (scripts/setup installs it)")
        env_cc = ["env", f"CC={cc}"]
        rc, _ = Proc.run(env_cc + ["cmake", "-S", self.src, "-B", self.fuzz, "-G", "Ninja",
                                   "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DORRERY_FUZZ=ON",
                                   "-DORRERY_SANITIZE=fuzzer-no-link,address,undefined",
                                   "-DORRERY_TESTS=OFF", "-DORRERY_BAREMETAL=OFF"],
                         self.src, BUILD_TIMEOUT, os.path.join(self.logs, "configure-fuzz.log"))
        if rc != 0:
            raise RuntimeError(f"configuring {self.fuzz} failed (log: {self.logs}/configure-fuzz.log)")
        self.fuzz_ready = True

    def write(self, rel, data):
        with open(os.path.join(self.src, rel), "wb") as fh:
            fh.write(data)

    # ---- what to build ----
    def ninja_names(self):
        if self._ninja_names is None:
            out = subprocess.run(["ninja", "-C", self.build, "-t", "targets", "all"],
                                 capture_output=True, text=True, check=True).stdout
            self._ninja_names = {line.split(":", 1)[0] for line in out.splitlines()}
        return self._ninja_names

    def ctest_targets(self, regex):
        """The executables of the ctest tests REGEX selects, as ninja targets."""
        out = subprocess.run(["ctest", "--test-dir", self.build, "--show-only=json-v1",
                              "-R", regex], capture_output=True, text=True, check=True).stdout
        tests = json.loads(out).get("tests", [])
        names, found = self.ninja_names(), set()
        for t in tests:
            # A test's executable that is not built yet has no command in the listing; the
            # tests of orrery_add_test are named after their executable's target.
            if t.get("name") in names:
                found.add(t["name"])
            for arg in t.get("command", []):
                for path in re.findall(r"(?:^|[\s'\"])(/[^\s'\";]+)", " " + arg):
                    base = os.path.basename(path)
                    if path.startswith(self.build) and base in names:
                        found.add(base)
        return found, [t["name"] for t in tests]

    def targets(self, group, tier):
        key = (group.name, tier)
        if key not in self._targets:
            if tier in ("unit", "replay"):
                found, names = self.ctest_targets(getattr(group, tier))
                self._tests[key] = names
                if not names:
                    raise RuntimeError(f"group {group.name}: {tier} regex "
                                       f"'{getattr(group, tier)}' selects no ctest test")
                # orrery too: the sh -c tests and the replays run it.
                if "orrery" in self.ninja_names():
                    found.add("orrery")
                self._targets[key] = sorted(found)
            elif tier == "sim":
                self._targets[key] = ["orrery"]
            else:
                self._targets[key] = []
        return self._targets[key]

    def make(self, targets, label):
        """Build TARGETS in the worker's build dir; True when it built."""
        if not targets:
            return True, 0.0
        rc, secs = Proc.run(["nice", "ninja", "-C", self.build] + sorted(targets), self.src,
                            BUILD_TIMEOUT, os.path.join(self.logs, f"{label}.log"))
        return rc == 0, secs

    def make_fuzz(self, targets, label):
        self.configure_fuzz()
        rc, secs = Proc.run(["nice", "ninja", "-C", self.fuzz] + [f"fuzz_{t}" for t in targets],
                            self.src, BUILD_TIMEOUT, os.path.join(self.logs, f"{label}.log"))
        return rc == 0, secs

    # ---- the tiers ----
    def test_exe(self, name):
        """The executable of ctest test NAME when it is the test's own target, named like it
        (as orrery_add_test makes them), else None. Asked once they are built (ctest lists a
        test's command only when its executable exists)."""
        if name in self._exes or name in self._not_exe:
            return self._exes.get(name)
        out = subprocess.run(["ctest", "--test-dir", self.build, "--show-only=json-v1"],
                             capture_output=True, text=True, check=True).stdout
        for t in json.loads(out).get("tests", []):
            cmd = t.get("command") or [""]
            if os.path.basename(cmd[0]) == t["name"] and t["name"] in self.ninja_names():
                self._exes[t["name"]] = cmd[0]
        if name not in self._exes:
            self._not_exe.add(name)
        return self._exes.get(name)

    def unchanged_tests(self, group, tiers, before):
        """The ctest tests of TIERS whose executable the last build did not relink: they run
        exactly the code they ran on the unmutated tree, so they cannot see the mutant."""
        out = set()
        for tier in tiers:
            for name in self._tests.get((group.name, tier), []):
                exe = self.test_exe(name)
                if exe and before.get(exe) is not None and before[exe] == _mtime(exe):
                    out.add(name)
        return out

    def exe_mtimes(self, group, tiers):
        return {e: _mtime(e) for tier in tiers for e in
                (self.test_exe(n) for n in self._tests.get((group.name, tier), [])) if e}

    def run_tier(self, group, tier, limit, label, skip=frozenset()):
        """Run one tier on whatever the copy holds now (without the ctest tests in SKIP).
        Returns (outcome, seconds): outcome is 'pass', 'fail' or 'timeout'."""
        log = os.path.join(self.logs, f"{label}-{tier}.log")
        t_total = 0.0
        if tier in ("unit", "replay"):
            regex = getattr(group, tier)
            if skip:
                run = [n for n in self._tests[(group.name, tier)] if n not in skip]
                if not run:
                    return "pass", 0.0
                regex = "^(" + "|".join(re.escape(n) for n in run) + ")$"
            rc, t = Proc.run(["ctest", "--test-dir", self.build, "-R", regex,
                              "--timeout", str(int(limit) + 1), "--output-on-failure",
                              "--stop-on-failure"],
                             self.src, limit + 5, log)
            if rc is None:
                return "timeout", t
            if rc != 0:
                with open(log, errors="replace") as fh:
                    text = fh.read()
                return ("timeout" if "***Timeout" in text else "fail"), t
            return "pass", t
        orrery = os.path.join(self.build, "orrery")
        if tier == "sim":
            for i, (scn, seeds) in enumerate(group.sim):
                argv = [orrery, "sim"] + ([os.path.join(self.src, scn)] if scn else []) + \
                       ["--seeds", f"1..{seeds}", "--quiet"]
                rc, t = Proc.run(argv, self.src, max(limit - t_total, 1.0), f"{log}.{i}")
                t_total += t
                if rc is None:
                    return "timeout", t_total
                if rc != 0:
                    return "fail", t_total
            return "pass", t_total
        # fuzz: a fresh, empty corpus dir first (libFuzzer writes there), then the seeds of the
        # copy; the user's tree is never written.
        for i, (target, seconds) in enumerate(group.fuzz):
            binp = os.path.join(self.fuzz, f"fuzz_{target}")
            corpus = os.path.join(self.dir, "corpus", target)
            shutil.rmtree(corpus, ignore_errors=True)
            os.makedirs(corpus)
            seeds = [d for d in (os.path.join(self.src, "fuzz", "corpus", target),
                                 os.path.join(self.src, "tests", "regress", "fuzz", target))
                     if os.path.isdir(d)]
            crashes = os.path.join(self.dir, "crashes")
            os.makedirs(crashes, exist_ok=True)
            argv = ["env", "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0",
                    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1", binp,
                    f"-max_total_time={seconds}", f"-timeout={FUZZ_TIMEOUT}",
                    "-rss_limit_mb=2048", "-detect_leaks=0",
                    f"-artifact_prefix={crashes}/{target}-", corpus] + seeds
            rc, t = Proc.run(argv, self.src, max(limit - t_total, 1.0), f"{log}.{i}")
            t_total += t
            if rc is None:
                return "timeout", t_total
            if rc != 0:
                return "fail", t_total
        return "pass", t_total

    def limit(self, group, tier):
        return max(MIN_TIMEOUT, TIMEOUT_FACTOR * self.baseline.seconds(self, group, tier))

    # ---- one mutant ----
    def test_mutant(self, m, group, tiers, original):
        """Build and test mutant M; the original bytes are back in the copy when it returns
        (or raises). Returns the result record (without the keys the caller adds)."""
        label = f"m{self.n}"
        need = sorted({t for tier in tiers if tier != "fuzz" for t in self.targets(group, tier)})
        times = {}
        for tier in tiers:  # the baselines first, on the unmutated copy
            self.baseline.seconds(self, group, tier)
        try:
            before = self.exe_mtimes(group, tiers)
            self.write(m.path, m.apply(original.decode()).encode())
            ok, times["build"] = self.make(need, label + "-build")
            if not ok:
                return {"status": "not_compiled", "times": times}
            skip = self.unchanged_tests(group, tiers, before)
            base = {"times": times, "unchanged": sorted(skip)}
            for tier in tiers:
                if tier == "fuzz":
                    fz = [t for t, _ in group.fuzz]
                    ok, times["fuzzbuild"] = self.make_fuzz(fz, label + "-fuzzbuild")
                    if not ok:
                        return dict(base, status="not_compiled")
                outcome, times[tier] = self.run_tier(group, tier, self.limit(group, tier), label,
                                                     skip)
                if outcome != "pass":
                    return dict(base, status="killed", tier=tier, timeout=outcome == "timeout")
            return dict(base, status="survived")
        finally:
            self.write(m.path, original)


class Baseline:
    """Each tier's time on the unmutated tree, measured once per tree (WORK/baseline.json,
    keyed by the tree's hash) and shared by the workers."""

    def __init__(self, path, tree):
        self.path = path
        self.tree = tree
        self.lock = threading.Lock()
        self.measuring = {}  # key -> the lock of the worker measuring it
        self.data = {}
        if os.path.exists(path):
            with open(path) as fh:
                saved = json.load(fh)
            if saved.get("tree") == tree:
                self.data = saved.get("seconds", {})

    @staticmethod
    def key(group, tier):
        spec = {"unit": group.unit, "replay": group.replay, "sim": group.sim,
                "fuzz": group.fuzz}[tier]
        return f"{group.name}/{tier}/{json.dumps(spec)}"

    def seconds(self, worker, group, tier):
        k = self.key(group, tier)
        with self.lock:
            if k in self.data:
                return self.data[k]
            mine = self.measuring.setdefault(k, threading.Lock())
        # One worker measures a tier (the others wait for its figure); different tiers are
        # measured at once, each on the unmutated copy of the worker that measures it.
        with mine:
            with self.lock:
                if k in self.data:
                    return self.data[k]
            label = f"baseline-{group.name}"
            if tier == "fuzz":
                ok, _ = worker.make_fuzz([t for t, _ in group.fuzz], label + "-fuzzbuild")
            else:
                ok, _ = worker.make(worker.targets(group, tier), label + "-build")
            if not ok:
                raise RuntimeError(f"group {group.name}: the unmutated tree does not build for "
                                   f"the {tier} tier (logs: {worker.logs})")
            outcome, secs = worker.run_tier(group, tier, BUILD_TIMEOUT, label)
            if outcome != "pass":
                raise RuntimeError(f"group {group.name}: the {tier} tier fails on the unmutated "
                                   f"tree (log: {worker.logs}/{label}-{tier}.log*)")
            with self.lock:
                self.data[k] = round(secs, 2)
                tmp = self.path + ".tmp"
                with open(tmp, "w") as fh:
                    json.dump({"tree": self.tree, "seconds": self.data}, fh, indent=1)
                os.replace(tmp, self.path)
                return self.data[k]
