"""The performance targets P1-P4 and the single-file start-up, each printed with PASS/FAIL.

`python -m benchmarks --targets` runs them. Every ratio comes from paired rounds in this one
run: the two commands alternate (A B A B ...) and the ratio is the median of the per-pair
ratios, so a machine whose speed drifts during the run moves both sides alike. The load
average is printed before and after: on a busy machine read the ratios, not the seconds.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.synthetic import SyntheticCorpus, big_module, cross_module_recall, generate

BENCH_CACHE = Path(os.environ.get("DBPOOLLINT_BENCH_CACHE", "~/.cache/dbpoollint-bench"))
REAL_APP = "mlflow==3.18.0"  # a DB-heavy application (SQLAlchemy, alembic), from its sdist


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    value: float | None
    limit: float
    higher_is_better: bool = False
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "FAIL"
        ok = self.value >= self.limit if self.higher_is_better else self.value <= self.limit
        return "PASS" if ok else "FAIL"

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        shown = "n/a" if self.value is None else f"{self.value:.3g}"
        note = f"  ({self.note})" if self.note else ""
        target = f"(target {sign} {self.limit})"
        return f"{self.verdict}  {self.name:<4} {self.what}: {shown} {target}{note}"


def timed(command: Sequence[str], cwd: Path | None = None, timeout: float = 1800) -> float:
    """Wall seconds of one whole-process run (start-up included); output discarded."""
    start = time.perf_counter()
    subprocess.run(
        list(command),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    return time.perf_counter() - start


def paired(
    a: Callable[[], float], b: Callable[[], float], rounds: int
) -> tuple[float, float, float]:
    """Median of A, median of B, median of the per-pair ratios A/B."""
    pairs = [(a(), b()) for _ in range(rounds)]
    ratios = [x / y for x, y in pairs if y > 0]
    return (
        statistics.median(x for x, _ in pairs),
        statistics.median(y for _, y in pairs),
        statistics.median(ratios) if ratios else float("inf"),
    )


def stdlib_copy(workdir: Path) -> Path:
    """The running interpreter's standard library (its .py files, no site-packages) under workdir.

    A copy, because the installed one may sit in a git checkout whose .gitignore hides it (pyenv
    keeps `versions/` ignored): both tools would then walk an empty tree.
    """
    copy = workdir / "stdlib"
    if not copy.is_dir():
        source = Path(sysconfig.get_paths()["stdlib"])

        def ignore(folder: str, names: list[str]) -> set[str]:
            return {
                name
                for name in names
                if name in {"site-packages", "__pycache__"}
                or (not name.endswith(".py") and not (Path(folder) / name).is_dir())
            }

        shutil.copytree(source, copy, ignore=ignore, symlinks=True)
    return copy


def byte_compile_package() -> None:
    """Write dbpoollint's .pyc files, as `pip install` does: an editable install (or
    PYTHONDONTWRITEBYTECODE) would otherwise make every run recompile the package."""
    package = Path(__file__).resolve().parent.parent / "dbpoollint"
    compileall.compile_dir(package, quiet=1)


def tool(name: str) -> str | None:
    """A command from the running interpreter's environment first (an unactivated venv)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


class Runner:
    def __init__(self, base: list[str], jobs: int, rounds: int, workdir: Path) -> None:
        self.base = base
        self.jobs = jobs
        self.rounds = rounds
        self.workdir = workdir
        self.targets: list[Target] = []

    def lint(self, target: Path) -> list[str]:
        return [*self.base, "check", str(target), "--exit-zero", "--quiet", "-j", str(self.jobs)]

    def cold(self, target: Path) -> Callable[[], float]:
        return lambda: timed([*self.lint(target), "--no-cache"], cwd=target)

    def baseline(self, mode: str, root: Path, listed: Path | None = None) -> Callable[[], float]:
        command = [sys.executable, "-m", "benchmarks.baselines", mode, str(root), str(self.jobs)]
        command += [str(listed)] if listed is not None else []
        return lambda: timed(command, cwd=Path(__file__).resolve().parent.parent)

    def parsed_list(self, name: str, root: Path) -> Path | None:
        """The files a cold check of `root` parses, listed once (not timed) for the baseline."""
        command = [sys.executable, "-m", "benchmarks.baselines", "list", str(root)]
        here = Path(__file__).resolve().parent.parent
        done = subprocess.run(command, cwd=here, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not done.stdout.strip():
            return None
        listed = self.workdir / f"parsed-{name.replace('/', '_')}.txt"
        listed.write_text(done.stdout)
        return listed

    def add(self, target: Target) -> None:
        self.targets.append(target)
        log(target.line())

    def recall(self, corpus: SyntheticCorpus) -> str:
        """One cold JSON run over the synthetic corpus: the recall on its multi-module projects."""
        command = [*self.lint(corpus.root), "--no-cache", "--output-format", "json"]
        done = subprocess.run(command, cwd=corpus.root, capture_output=True, text=True, check=False)
        try:
            findings = json.loads(done.stdout)
        except json.JSONDecodeError:
            findings = None
        if not isinstance(findings, list):
            line = f"cross-module recall n/a (no JSON report, exit {done.returncode})"
        else:
            line = cross_module_recall(corpus, findings)
        log(line)
        return line

    # --- P1 ------------------------------------------------------------------------------------

    def p1(self) -> None:
        stdlib = stdlib_copy(self.workdir)
        ruff = tool("ruff")
        if ruff is None:
            self.add(Target("P1", "stdlib cold / ruff ALL", None, 0.3, note="ruff not found"))
            return
        ruff_command = [ruff, "check", "--select", "ALL", "--no-cache", "--isolated"]
        ruff_command += ["--statistics", "--exit-zero", str(stdlib)]
        ours, theirs, ratio = paired(
            self.cold(stdlib), lambda: timed(ruff_command, cwd=stdlib), self.rounds
        )
        note = f"dbpoollint {ours:.2f} s, ruff {theirs:.2f} s"
        self.add(Target("P1", "stdlib cold / ruff --select ALL", ratio, 0.3, note=note))

    # --- P2 ------------------------------------------------------------------------------------

    def p2(self, name: str, root: Path) -> None:
        naive, ours, ratio = paired(self.baseline("naive", root), self.cold(root), self.rounds)
        note = f"naive {naive:.1f} s, dbpoollint {ours:.1f} s"
        self.add(Target("P2", f"{name}: naive libcst / cold", ratio, 5, True, note))
        listed = self.parsed_list(name, root)
        parse_only = self.baseline("parse", root, listed)
        ours, parse, ratio = paired(self.cold(root), parse_only, self.rounds)
        which = (
            f"its {len(listed.read_text().split())} parsed files" if listed else "prefiltered files"
        )
        note = f"dbpoollint {ours:.1f} s, parse-only of {which} {parse:.1f} s"
        self.add(Target("P2", f"{name}: cold / libcst parse-only", ratio, 3, note=note))

    # --- P3 ------------------------------------------------------------------------------------

    def p3(self, synthetic: Path) -> None:
        warm_command = self.lint(synthetic)
        timed(warm_command, cwd=synthetic)  # fill the cache
        warm, cold, ratio = paired(
            lambda: timed(warm_command, cwd=synthetic), self.cold(synthetic), self.rounds
        )
        note = f"cold {cold:.2f} s, warm {warm:.2f} s"
        self.add(Target("P3", "unchanged tree: warm / cold", ratio, 0.1, note=note))

        edited = sorted(synthetic.rglob("*.py"))[len(list(synthetic.rglob("*.py"))) // 2]
        original = edited.read_text()

        def edit_then_check() -> float:
            edited.write_text(original + f"\n# edit {time.monotonic_ns()}\n")
            return timed(warm_command, cwd=synthetic)

        one, cold, ratio = paired(edit_then_check, self.cold(synthetic), self.rounds)
        edited.write_text(original)
        note = f"one edited file {one:.2f} s, cold {cold:.2f} s"
        self.add(Target("P3", "one edited file / cold", ratio, 0.2, note=note))

        stdlib = stdlib_copy(self.workdir)
        cache = self.workdir / "stdlib-cache"
        env_command = ["env", f"DBPOOLLINT_CACHE_DIR={cache}", *self.lint(stdlib)]
        timed(env_command, cwd=stdlib)
        warm = statistics.median(timed(env_command, cwd=stdlib) for _ in range(self.rounds))
        self.add(Target("P3", "stdlib warm, seconds", warm, 0.3))

    # --- P4 ------------------------------------------------------------------------------------

    def p4(self, synthetic: Path, big_lines: int, big_timeout: float) -> None:
        fixit = fixit_command()
        if fixit is None:
            self.add(
                Target(
                    "P4",
                    "fixit lint / cold",
                    None,
                    10,
                    True,
                    note="fixit could not be installed",
                )
            )
        else:
            fixit_run = lambda: timed([fixit, "lint", str(synthetic)], cwd=synthetic)  # noqa: E731
            theirs, ours, ratio = paired(fixit_run, self.cold(synthetic), self.rounds)
            note = f"fixit {theirs:.1f} s, dbpoollint {ours:.1f} s"
            self.add(Target("P4", "fixit lint / dbpoollint cold", ratio, 10, True, note))
        peak = peak_rss([*self.lint(synthetic), "--no-cache"], synthetic)
        self.add(Target("P4", "peak RSS per process, MiB", peak, 250))

        folder = self.workdir / "big"
        folder.mkdir(exist_ok=True)
        (folder / "pyproject.toml").write_text("")
        expected = big_module(folder / "big.py", big_lines)
        command = [*self.lint(folder / "big.py"), "--no-cache"]
        start = time.perf_counter()
        try:
            peak = peak_rss(command, folder, big_timeout)
            seconds: float | None = time.perf_counter() - start
        except subprocess.TimeoutExpired:
            peak = seconds = None
        note = f"{big_lines} lines, {expected} planted DPL101"
        if seconds is None:
            note += f"; stopped after {big_timeout:.0f} s"
        self.add(Target("P4", "one big file, seconds", seconds, 60, note=note))
        self.add(Target("P4", "one big file, peak MiB", peak, 500, note=note))

    # --- start-up ------------------------------------------------------------------------------

    def startup(self, one: Path) -> None:
        ruff = tool("ruff")
        ours_run = lambda: timed([*self.base, "check", str(one), "--exit-zero"], cwd=one.parent)  # noqa: E731
        ours_run()  # pre-commit runs warm: the first run reads the project and fills the cache
        if ruff is None:
            ours = statistics.median(ours_run() for _ in range(self.rounds))
            self.add(Target("S", "single file, seconds", ours, 0.5, note="ruff not found"))
            return
        ruff_run = lambda: timed([ruff, "check", str(one), "--exit-zero"], cwd=one.parent)  # noqa: E731
        ours, theirs, _ = paired(ours_run, ruff_run, self.rounds)
        note = f"ruff {theirs:.3f} s"
        self.add(Target("S", "single file (pre-commit), seconds", ours, 0.5, note=note))


def peak_rss(command: Sequence[str], cwd: Path, timeout: float = 1800) -> float | None:
    """Largest single process's peak RSS in MiB (wait4 reports the maximum over the tree)."""
    process = subprocess.Popen(
        list(command), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    while True:
        pid, _, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = 0
            return usage.ru_maxrss / 1024
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise subprocess.TimeoutExpired(list(command), timeout)
        time.sleep(0.05)


def fixit_command() -> str | None:
    """Fixit from a virtualenv of its own in the bench cache: it pins click below the release
    dbpoollint's tests need, so it must not share their environment."""
    found = tool("fixit")
    if found is not None:
        return found
    venv = BENCH_CACHE.expanduser() / "fixit-venv"
    fixit = venv / "bin" / "fixit"
    if not fixit.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "fixit>=2"],
        ]
        for step in steps:
            if subprocess.run(step, capture_output=True, check=False).returncode != 0:
                return None
    return str(fixit) if fixit.exists() else None


def real_application(pip: Sequence[str]) -> Path | None:
    """The real app's source from its sdist, downloaded once into the bench cache."""
    cache = BENCH_CACHE.expanduser()
    name = REAL_APP.split("==")[0]
    unpacked = cache / name
    if unpacked.is_dir():
        return unpacked
    cache.mkdir(parents=True, exist_ok=True)
    download = [*pip, "download", "--no-deps", "--no-binary", ":all:", REAL_APP, "-d", str(cache)]
    if subprocess.run(download, capture_output=True, check=False).returncode != 0:
        return None
    archives = sorted(cache.glob(f"{name}-*.tar.gz"))
    if not archives:
        return None
    with tarfile.open(archives[-1]) as archive:
        archive.extractall(cache / "extract", filter="data")
    extracted = next((cache / "extract").iterdir())
    extracted.rename(unpacked)
    return unpacked


def run_targets(
    base: list[str],
    jobs: int,
    rounds: int,
    synthetic_files: int,
    big_lines: int,
    big_timeout: float,
    real: bool,
    workdir: Path,
) -> int:
    log(f"before: {load()}")
    byte_compile_package()
    runner = Runner(base, jobs, rounds, workdir)
    corpus = generate(workdir / "synthetic", synthetic_files, 0.1, 0)
    synthetic = corpus.root
    (synthetic / "pyproject.toml").write_text("")  # the project root: its cache lives here
    recall = runner.recall(corpus)
    one = next(p for p in sorted(synthetic.rglob("*.py")) if b"import" in p.read_bytes())
    runner.startup(one)
    runner.p1()
    runner.p2("synthetic", synthetic)
    if real:
        app = real_application([sys.executable, "-m", "pip"])
        if app is None:
            runner.add(Target("P2", f"{REAL_APP}: not downloaded", None, 5, True))
        else:
            runner.p2(REAL_APP, app)
    runner.p3(synthetic)
    runner.p4(synthetic, big_lines, big_timeout)
    log(f"after: {load()}")
    print(f"# {load()}")
    print(f"# synthetic: {recall}")
    for target in runner.targets:
        print(target.line())
    return 0 if all(t.verdict == "PASS" for t in runner.targets) else 1
