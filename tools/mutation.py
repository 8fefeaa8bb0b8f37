"""`make mutation`: the mutation score and the branch coverage of lanlib's method modules.

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) copies lanlib to ``mutants/``,
mutates the method modules and, for each mutant, runs the fastest of the unit tests that
reach the mutated function (up to ``TEST_BUDGET_S`` seconds of them, see
:func:`pytest_collection_modifyitems`), in a process forked from a warm one. A
mutant is *killed* when a test fails (or times out), *survives* when every test passes,
and has *no tests* when no selected test reaches its function. The score of a module is

    killed / (total - documented equivalents)

where the equivalents are the surviving mutants listed, each with its reason, in
``tests/mutation_equivalents.toml``: mutants that cannot change what the module does.
Listed mutants whose reason starts with "CPU only" (device placement, which a machine
without a GPU cannot observe) are counted as surviving, in a column of their own.
Then the same unit tests run once more under pytest-cov for the branch coverage.

    python tools/mutation.py                    # every method module, then coverage
    python tools/mutation.py --modules noise loop
    python tools/mutation.py --report           # print the last results, run nothing
    python tools/mutation.py --survivors core   # list the surviving mutants of core

Results are kept in ``mutants/`` (ignored by git); ``mutmut show NAME`` prints a
mutant's diff. mutmut runs one worker per core.
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
CPU_ONLY = "CPU only"  # a listed reason that starts so: a survivor here, not an equivalent
TEST_BUDGET_S = 5.0  # seconds of tests per mutant, fastest first
FAILURES = ROOT / "mutants" / "failed-tests.txt"  # the failures of mutmut's clean and stats runs

# mutmut's exit codes of a mutant's test run (mutmut/stats.py), by what they mean here
KILLED = {1, 3, 24, -24, 36, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def pytest_configure(config) -> None:
    """Build one optimiser before the tests (pytest plugin, like the hook below).

    A process's first ``torch.optim`` optimiser imports ``torch._dynamo``: seconds. In
    mutmut's fork server this happens once, at its warm-up, instead of in every forked
    mutant run whose tests train something.
    """
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def pytest_collection_modifyitems(config, items) -> None:
    """Run a mutant's fastest tests only (pytest plugin: ``-p tools.mutation`` in [tool.mutmut]).

    The tests that reach the mutated function are ordered fastest first and kept up to
    :data:`TEST_BUDGET_S` seconds of the durations of mutmut's clean run
    (``mutmut-stats.json`` in ``mutants/``, the working directory of its runs); at least
    one is kept. mutmut stops at the first failing test (``-x``), so a killed mutant costs
    its first failing test; a surviving one costs the budget, not the minutes of every fit
    that also reaches it. A mutant that only a slower test would catch counts as
    surviving: the unit tests that matter are the fast ones. A mutant listed in
    ``tests/mutation_equivalents.toml`` runs no test (it survived them when it was listed):
    it counts as listed. The clean and stats runs (no mutant under test) keep every test.
    """
    stats = Path("mutmut-stats.json")
    if not stats.exists():
        return
    seconds = json.loads(stats.read_text("utf-8"))["duration_by_test"]
    items.sort(key=lambda item: seconds.get(item.nodeid, float("inf")))
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if not mutant.startswith("lanlib."):
        return
    if mutant in equivalents():  # listed: its tests pass, that is why it is listed
        config.hook.pytest_deselected(items=items[:])
        del items[:]
        return
    spent, kept = 0.0, 0
    for item in items:
        spent += seconds.get(item.nodeid, TEST_BUDGET_S)
        if kept and spent > TEST_BUDGET_S:
            break
        kept += 1
    config.hook.pytest_deselected(items=items[kept:])
    del items[kept:]


def pytest_runtest_logreport(report) -> None:
    """Keep why a test failed in mutmut's clean or stats run (pytest plugin).

    mutmut shows none of that run's output, only that it failed; this writes each failure
    to :data:`FAILURES` (in ``mutants/``, their working directory), which
    :func:`run_mutants` prints. Mutant runs, and the forced-fail run whose tests fail on
    purpose, are left out.
    """
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if report.failed and not mutant.startswith("lanlib.") and mutant != "fail":
        with open(FAILURES.name, "a", encoding="utf-8") as failures:
            failures.write(f"{report.nodeid} ({report.when}, {mutant or 'clean'} run)\n"
                           f"{report.longreprtext}\n\n")


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
    """Run mutmut once on every mutant of the modules, one worker per core; print the time."""
    start = time.perf_counter()
    FAILURES.unlink(missing_ok=True)
    done = subprocess.run([_mutmut(), "run", "--max-children", str(os.cpu_count() or 1),
                           *(f"lanlib.{module}.*" for module in modules)],
                          cwd=ROOT, env=_env(), check=False, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).replace("\r", "\n").splitlines()
        print(f"mutmut failed (exit {done.returncode}): {lines[-1] if lines else ''}", flush=True)
        if FAILURES.exists():
            print(FAILURES.read_text("utf-8"), flush=True)
    print(f"mutmut ran the mutants of {', '.join(modules)} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)


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
        return "cpu only" if equivalent[name].startswith(CPU_ONLY) else "equivalent"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return "other"  # segfault, suspicious: counted as not killed


COLUMNS = ("total", "killed", "survived", "cpu only", "no tests", "equivalent", "not run")


def _row(label: str, counts: Counter) -> tuple[str, float]:
    """A line of the table and the score of ``counts``: killed / (total - equivalent)."""
    counted = counts["total"] - counts["equivalent"] - counts["not run"]
    score = 100.0 * counts["killed"] / counted if counted else float("nan")
    return f"{label:<12}" + "".join(f"{counts[k]:>11}" for k in COLUMNS) + f"{score:>9.1f}%", \
        score


def report(modules: list[str]) -> bool:
    """Print the per-module table; True if every module measured reaches the target."""
    equivalent = equivalents()
    header = f"{'module':<12}" + "".join(f"{k:>11}" for k in COLUMNS) + f"{'score':>10}"
    print(header)
    print("-" * len(header))
    ok, known, totals = True, set(), Counter()
    for module in modules:
        codes = results(module)
        known |= set(codes)
        counts = Counter(classify(code, name, equivalent) for name, code in codes.items())
        counts["total"] = len(codes)
        totals.update(counts)
        line, score = _row(module, counts)
        ok &= counts["not run"] == 0 and score >= TARGET
        print(line)
    if totals["total"]:
        print(_row("all", totals)[0])
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
