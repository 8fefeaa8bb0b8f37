"""The GitHub Actions workflows call the same commands as the README.

The workflows cannot run here (no GitHub, no GPU runner), so this checks what can be
checked without running them:

- each file in ``.github/workflows/`` parses, has triggers and jobs, and every step
  either runs a command or uses an action pinned to a version;
- ``ci.yml`` runs the README's test command on ubuntu, without ``LANLIB_DATA_MIRROR``
  (a CI run downloads the datasets like a reader's first run);
- ``gpu.yml`` runs the README's build command with ``PROFILE=full`` once per chapter (a
  matrix of self-hosted GPU runners), then renders the book from the executed chapters
  and uploads the site as an artifact;
- ``pages.yml`` publishes that artifact (same name) with ``upload-pages-artifact`` and
  ``deploy-pages``, with the permissions and environment Pages needs, and falls back to
  the README's build command when started by hand.

The README's commands are read from the code block under its "Two commands" heading.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("ci.yml", "gpu.yml", "pages.yml")


def readme_commands() -> dict[str, str]:
    """The README's "Two commands", keyed by make target: {"book": "make book", ...}."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Two commands\s*\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Two commands' section"
    block = re.search(r"^```\w*\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    assert block, "the 'Two commands' section has no code block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) == 2, f"expected two commands in the README, got {commands}"
    return {shlex.split(c)[1]: c for c in commands}


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(workflow: dict) -> list[tuple[str, dict]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"]]


def run_lines(workflow: dict) -> list[str]:
    """Every command line of every ``run:`` step (comments and blank lines left out)."""
    lines = []
    for _, step in steps(workflow):
        for line in str(step.get("run", "")).splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def uses(workflow: dict, action: str) -> list[tuple[str, dict]]:
    return [
        (job, step) for job, step in steps(workflow)
        if str(step.get("uses", "")).split("@")[0] == action
    ]


def calls(lines: list[str], command: str) -> list[list[str]]:
    """The lines that are ``command`` followed only by ``VAR=value`` make arguments.

    Returns the extra arguments of each such line.
    """
    base = shlex.split(command)
    found = []
    for line in lines:
        words = shlex.split(line)
        if words[: len(base)] == base and all(
            re.fullmatch(r"[A-Z_]+=\S*", w) for w in words[len(base):]
        ):
            found.append(words[len(base):])
    return found


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", text, re.MULTILINE))


def test_readme_commands_are_make_targets():
    commands = readme_commands()
    assert set(commands) == {"book", "test"}
    assert set(commands) <= makefile_targets()


@pytest.mark.parametrize("name", NAMES)
def test_workflow_parses_and_pins_its_actions(name):
    workflow = load(name)
    assert workflow.get("name"), f"{name} has no name"
    assert workflow.get("on"), f"{name} has no trigger"
    assert workflow.get("jobs"), f"{name} has no jobs"
    for job, spec in workflow["jobs"].items():
        assert spec.get("runs-on"), f"{name}: job {job} has no runs-on"
        for step in spec["steps"]:
            assert ("run" in step) != ("uses" in step), f"{name}: step {step} needs run or uses"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+(\.\d+)*", step["uses"]), (
                    f"{name}: pin {step['uses']} to a version tag (@vN)"
                )


def test_ci_runs_the_readme_test_command_without_the_mirror():
    workflow = load("ci.yml")
    assert calls(run_lines(workflow), readme_commands()["test"]) == [[]], (
        f"ci.yml must run exactly `{readme_commands()['test']}`"
    )
    envs = [workflow.get("env", {})] + [
        spec.get("env", {}) for spec in workflow["jobs"].values()
    ] + [step.get("env", {}) for _, step in steps(workflow)]
    assert not any("LANLIB_DATA_MIRROR" in env for env in envs) and not any(
        "LANLIB_DATA_MIRROR" in line for line in run_lines(workflow)
    ), "ci.yml must leave LANLIB_DATA_MIRROR unset (CI downloads the datasets)"
    (job,) = workflow["jobs"].values()
    assert str(job["runs-on"]).startswith("ubuntu")
    declared = set(job.get("env", {}).get("LANLIB_CI_MAY_LACK", "").split(","))
    assert declared == {"mirror", "offline"}, (
        "ci.yml declares what it cannot provide (LANLIB_CI_MAY_LACK): the mirror and an "
        f"offline machine, nothing else; it declares {sorted(declared)}"
    )
    assert {"push", "pull_request"} <= set(workflow["on"])


def test_gpu_runs_each_chapter_on_a_gpu_runner_then_renders_the_book():
    workflow = load("gpu.yml")
    chapter, site = workflow["jobs"]["chapter"], workflow["jobs"]["site"]
    labels = chapter["runs-on"] if isinstance(chapter["runs-on"], list) else [chapter["runs-on"]]
    assert {"self-hosted", "gpu"} <= set(labels)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    notebooks = [entry["file"].split("/")[-1] for part in toc["parts"]
                 for entry in part["chapters"] if entry["file"].startswith("notebooks/")]
    assert chapter["strategy"]["matrix"]["chapter"] == notebooks, (
        "gpu.yml's matrix must hold every chapter of _toc.yml, in order")
    assert chapter["strategy"]["fail-fast"] is False, "one failing chapter must not stop the rest"
    book = readme_commands()["book"]
    lines = run_lines({"jobs": {"chapter": chapter}})
    assert f'{book} PROFILE=full BOOK_ARGS="--only ${{{{ matrix.chapter }}}}"' in lines, (
        f"each chapter job must run `{book} PROFILE=full` for its chapter alone")
    assert site["needs"] in ("chapter", ["chapter"])
    assert f'{book} BOOK_ARGS="--executed _build/executed"' in run_lines({"jobs": {"site": site}})
    ((_, download),) = uses({"jobs": {"site": site}}, "actions/download-artifact")
    uploads = [s["with"]["name"] for _, s in uses({"jobs": {"chapter": chapter}},
                                                  "actions/upload-artifact")]
    assert "executed-${{ matrix.chapter }}" in uploads
    assert download["with"]["pattern"] == "executed-*" and download["with"]["merge-multiple"]
    sites = [s for _, s in uses(workflow, "actions/upload-artifact")
             if s["with"]["path"].rstrip("/") == "_build/html"]
    assert len(sites) == 1, "gpu.yml must upload _build/html as an artifact"


def test_pages_deploys_the_gpu_site():
    workflow, gpu = load("pages.yml"), load("gpu.yml")
    site_artifact = next(
        s["with"]["name"] for _, s in uses(gpu, "actions/upload-artifact")
        if s["with"]["path"].rstrip("/") == "_build/html"
    )
    assert gpu["name"] in workflow["on"]["workflow_run"]["workflows"]
    ((_, download),) = uses(workflow, "actions/download-artifact")
    assert download["with"]["name"] == site_artifact
    assert download["with"]["path"] == "_build/html"
    assert "workflow_run.id" in download["with"]["run-id"]

    ((_, upload),) = uses(workflow, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    ((job_name, _),) = uses(workflow, "actions/deploy-pages")
    job = workflow["jobs"][job_name]
    assert job["environment"]["name"] == "github-pages"
    assert job["permissions"] == {"pages": "write", "id-token": "write"}
    assert job["needs"] in ("site", ["site"])

    assert calls(run_lines(workflow), readme_commands()["book"]) == [[]], (
        f"pages.yml builds the site by hand with `{readme_commands()['book']}`"
    )
