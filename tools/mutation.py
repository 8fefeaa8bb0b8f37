"""`make mutation`: the mutation score and the branch coverage of lanlib's method modules.

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) copies lanlib to ``mutants/``,
mutates the method modules and, for each mutant, runs the unit tests that reach the
mutated function, in a process forked from a warm one (torch is imported once). A
mutant is *killed* when a test fails (or times out), *survives* when every test passes,
and has *no tests* when no selected test reaches its function. The score of a module is

    killed / (total - documented equivalents)

where the equivalents are the surviving mutants listed, each with its reason, in
``tests/mutation_equivalents.toml``: mutants that cannot change what the module does.
Then the same unit tests run once more under pytest-cov for the branch coverage.

    python tools/mutation.py                    # every method module, then coverage
    python tools/mutation.py --modules noise loop
    python tools/mutation.py --report           # print the last results, run nothing
    python tools/mutation.py --survivors core   # list the surviving mutants of core

Results are kept in ``mutants/`` (ignored by git); ``mutmut show NAME`` prints a
mutant's diff. One worker: the 2-core machines the project runs on are shared. The
device placement mutants listed as equivalent are so on a CPU-only machine (see the list).
Needs Python >= 3.11 (tomllib), as the project's .venv has.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("core", "fit", "noise", "losses", "nets", "metrics", "attribution", "loop", "cache")
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
TARGET = 90.0

# mutmut's exit codes of a mutant's test run (mutmut/stats.py), by what they mean here
KILLED = {1, 3, 24, -24, 36, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def pytest_collection_modifyitems(items) -> None:
    """Run the fastest tests first (pytest plugin: ``-p tools.mutation`` in [tool.mutmut]).

    mutmut stops a mutant's run at the first failing test (``-x``), so a mutant that a
    quick unit test kills costs that test only, not the minutes of the fits that also
    reach it. The durations are those of mutmut's clean run (``mutmut-stats.json`` in
    ``mutants/``, the working directory of its runs); without them the order stays.
    """
    stats = Path("mutmut-stats.json")
    if not stats.exists():
        return
    seconds = json.loads(stats.read_text("utf-8"))["duration_by_test"]
    items.sort(key=lambda item: seconds.get(item.nodeid, float("inf")))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    return env


def _mutmut() -> str:
    return str(Path(sys.executable).with_name("mutmut"))


def equivalents() -> dict[str, str]:
    """The documented equivalent mutants: name -> reason."""
    if not EQUIVALENTS.exists():
        return {}
    listed = tomllib.loads(EQUIVALENTS.read_text("utf-8")).get("equivalent", [])
    return {entry["mutant"]: entry["reason"] for entry in listed}


def run_mutants(modules: list[str]) -> None:
    """Run mutmut on each module in turn; print how long each took."""
    for module in modules:
        start = time.perf_counter()
        done = subprocess.run([_mutmut(), "run", "--max-children", "1", f"lanlib.{module}.*"],
                              cwd=ROOT, env=_env(), check=False, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            print(f"mutmut failed on lanlib.{module} (exit {done.returncode}):\n"
                  + "\n".join((done.stdout + done.stderr).splitlines()[-20:]), flush=True)
        print(f"mutmut ran lanlib.{module} in {seconds:.0f} s", flush=True)


def results(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / "lanlib" / f"{module}.py.meta"
    if not meta.exists():
        return {}
    return json.loads(meta.read_text("utf-8"))["exit_code_by_key"]


def classify(code: int | None, name: str, equivalent: dict[str, str]) -> str:
    if code is None:
        return "not run"
    if code in KILLED:
        return "killed"
    if name in equivalent and code in SURVIVED | NO_TESTS:
        return "equivalent"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return "other"  # segfault, suspicious: counted as not killed


def report(modules: list[str]) -> bool:
    """Print the per-module table; True if every module measured reaches the target."""
    equivalent = equivalents()
    header = f"{'module':<12}{'total':>7}{'killed':>8}{'survived':>10}{'no tests':>10}" \
             f"{'equiv':>7}{'not run':>9}{'score':>8}"
    print(header)
    print("-" * len(header))
    ok, known, totals = True, set(), Counter()
    for module in modules:
        codes = results(module)
        known |= set(codes)
        counts = Counter(classify(code, name, equivalent) for name, code in codes.items())
        counts["total"] = len(codes)
        totals.update(counts)
        counted = counts["total"] - counts["equivalent"] - counts["not run"]
        score = 100.0 * counts["killed"] / counted if counted else float("nan")
        ok &= counted > 0 and counts["not run"] == 0 and score >= TARGET
        print(f"{module:<12}{counts['total']:>7}{counts['killed']:>8}{counts['survived']:>10}"
              f"{counts['no tests']:>10}{counts['equivalent']:>7}{counts['not run']:>9}"
              f"{score:>7.1f}%")
    counted = totals["total"] - totals["equivalent"] - totals["not run"]
    if counted:
        print(f"{'all':<12}{totals['total']:>7}{totals['killed']:>8}{totals['survived']:>10}"
              f"{totals['no tests']:>10}{totals['equivalent']:>7}{totals['not run']:>9}"
              f"{100.0 * totals['killed'] / counted:>7.1f}%")
    stale = sorted(name for name in equivalent
                   if name.split(".")[1] in modules and name not in known)
    if stale and known:
        print("listed as equivalent but no longer a mutant (update tests/mutation_equivalents."
              "toml): " + ", ".join(stale))
    return ok


def survivors(module: str) -> list[str]:
    equivalent = equivalents()
    return sorted(name for name, code in results(module).items()
                  if classify(code, name, equivalent) in ("survived", "no tests"))


def coverage(modules: list[str]) -> bool:
    """Branch coverage of the modules under the same unit tests; True if all reach the target."""
    selection = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"]
    data = ROOT / "mutants" / "coverage.json"
    data.parent.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                    "addopts=", "--cov=lanlib", "--cov-branch", "--cov-report=",
                    f"--cov-report=json:{data}", *selection], cwd=ROOT, env=_env(), check=True,
                   stdout=subprocess.DEVNULL)
    files = json.loads(data.read_text("utf-8"))["files"]
    print(f"\n{'module':<12}{'statements':>11}{'branches':>10}{'coverage':>10}")
    ok = True
    for module in modules:
        summary = files[f"lanlib/{module}.py"]["summary"]
        ok &= summary["percent_covered"] >= TARGET
        print(f"{module:<12}{summary['num_statements']:>11}{summary['num_branches']:>10}"
              f"{summary['percent_covered']:>9.1f}%")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="+", choices=MODULES, default=list(MODULES))
    parser.add_argument("--report", action="store_true", help="print the last results only")
    parser.add_argument("--no-coverage", action="store_true")
    parser.add_argument("--survivors", choices=MODULES, help="list a module's survivors")
    args = parser.parse_args(argv)
    if args.survivors:
        print("\n".join(survivors(args.survivors)))
        return 0
    if not args.report:
        run_mutants(args.modules)
    ok = report(args.modules)
    if not args.no_coverage:
        ok &= coverage(args.modules)
    print(f"\ntarget: score and branch coverage >= {TARGET:.0f}% per module: "
          f"{'met' if ok else 'not met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
