#!/usr/bin/env python3
"""Build the Latent Attention Book into ``_build/html``.

The build has four stages, each of which says what it did and how long it took:

1. **Execute.** Every notebook that ``_toc.yml`` lists under ``notebooks/`` is
   executed with papermill into ``_build/executed/<name>.ipynb``, with the
   parameter ``profile`` injected and ``notebooks/`` as working directory.
   Papermill is the book's one executor: Jupyter Book itself never runs code
   (``execute_notebooks: "off"`` in ``_config.yml``). With ``--executed DIR``
   this stage is skipped and the notebooks are taken, already executed, from
   ``DIR``. Chapters that do not exist yet are left out of the book, and the
   build says which.
2. **Stage.** A clean source tree is assembled in ``_build/src``:
   ``_config.yml``, a ``_toc.yml`` restricted to the chapters present,
   ``book/`` and the executed notebooks (plus any images next to them).
3. **Render.** ``jupyter-book build`` turns the staged tree into HTML. Sphinx
   warnings fail the build unless they match :data:`ALLOWED_WARNINGS` (or
   ``--allow-warnings`` is given).
4. **Vendor.** The JavaScript that the pages load (MathJax, RequireJS and the
   Jupyter widget embedder) is copied from ``node_modules/`` (``npm ci``) into the
   new site's ``_static/_vendor/``, so that the site needs no network at all.
   Only then does the new site replace ``_build/html``, by renaming.

An interrupted build never leaves half of anything: every file is written under a
temporary name and renamed into place (the executed notebooks too, which papermill
saves cell by cell), and the complete new site replaces the old one in one
rename (:func:`lanlib.data._files.replace_directory`), so ``_build/html`` is the
whole old site or the whole new one.

Examples::

    python tools/build_book.py                        # profile from $PROFILE, else "auto"
    python tools/build_book.py --profile full         # the paper's settings (GPU)
    python tools/build_book.py --only 01_method       # one chapter, for a quick look
    python tools/build_book.py --executed _build/executed   # re-render, no execution
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout where lanlib is not installed
    sys.path.insert(0, str(ROOT))

from lanlib.data._files import atomic_write, replace_directory  # noqa: E402

#: Name of the private kernelspec that runs the notebooks with this interpreter.
KERNEL_NAME = "latent-attention-book"

#: Sphinx warnings that do not fail the build (regular expressions, searched in
#: each warning line). Keep this list short and say why each entry is harmless.
ALLOWED_WARNINGS: list[str] = []

#: Where the vendored JavaScript goes in the site. Sphinx prefixes the relative
#: script paths of _config.yml (mathjax_path, nb_ipywidgets_js) with "_static/",
#: so they land here. They are copied after the build: the book's sources have
#: no _static/ folder, whose every .js/.css Jupyter Book would add to every page.
VENDOR_DIR = Path("_static", "_vendor")

#: Files copied from node_modules/ into <site>/_static/_vendor/: (source, destination),
#: both relative; a source that is a folder is copied whole.
VENDOR_FILES: list[tuple[str, str]] = [
    # MathJax 3: the combined TeX -> CommonHTML component, the fonts it loads
    # from [mathjax]/output/chtml/fonts/woff-v2, and the lazily loaded parts of
    # its context menu (accessibility explorer, speech rules).
    ("mathjax/es5/tex-chtml-full.js", "mathjax/tex-chtml-full.js"),
    ("mathjax/es5/output/chtml/fonts/woff-v2", "mathjax/output/chtml/fonts/woff-v2"),
    ("mathjax/es5/ui", "mathjax/ui"),
    ("mathjax/es5/a11y", "mathjax/a11y"),
    ("mathjax/es5/sre", "mathjax/sre"),
    ("mathjax/LICENSE", "mathjax/LICENSE"),
    # RequireJS, which the widget embedder needs.
    ("requirejs/require.js", "requirejs/require.js"),
    # The ipywidgets 8 embedder and the Font Awesome files its CSS points at
    # (webpack resolves them next to embed-amd.js).
    ("@jupyter-widgets/html-manager/dist", "html-manager"),
]

#: Script written to <site>/_static/_vendor/widgets-setup.js and loaded between
#: require.js and the widget embedder (see nb_ipywidgets_js in _config.yml).
#: It fixes two things that break the embedded widgets on an offline site:
#:
#: * The embedder's webpack bundles look for their Font Awesome files next to
#:   the module URL that RequireJS derives from each module name, by default
#:   relative to the page (<page folder>/@jupyter-widgets/...). Mapping every
#:   bundled module name into _vendor/html-manager/ points them at the copies.
#: * ipywidgets typesets widget labels with MathJax 2's ``MathJax.Hub.Queue``,
#:   which MathJax 3 does not have (jupyter-widgets/ipywidgets#3829): every
#:   widget with a description then throws. A small ``Hub.Queue`` that calls
#:   MathJax 3's ``typesetPromise`` is added to whatever ``window.MathJax``
#:   becomes (the configuration object first, MathJax itself once loaded).
WIDGETS_SETUP_JS = """\
// Written by tools/build_book.py; see WIDGETS_SETUP_JS there for why.
(function () {
  var folder = new URL("html-manager/", document.currentScript.src).href;
  var names = [
    "@jupyter-widgets/base", "@jupyter-widgets/base7",
    "@jupyter-widgets/controls", "@jupyter-widgets/controls7",
    "@jupyter-widgets/html-manager", "@jupyter-widgets/html-manager/dist/libembed-amd"
  ];
  var paths = {};
  names.forEach(function (name) { paths[name] = folder + name.split("/").pop(); });
  window.require.config({ paths: paths });

  function typeset(element) {
    var mathjax = window.MathJax;
    if (mathjax && mathjax.startup && mathjax.startup.promise && mathjax.typesetPromise) {
      mathjax.startup.promise.then(function () { return mathjax.typesetPromise([element]); });
    }
  }
  function addHub(mathjax) {
    if (mathjax && typeof mathjax === "object" && !mathjax.Hub) {
      mathjax.Hub = {
        Queue: function () {
          Array.prototype.forEach.call(arguments, function (job) {
            if (Array.isArray(job) && job[0] === "Typeset" && job[2]) { typeset(job[2]); }
          });
        }
      };
    }
  }
  var current = window.MathJax;
  addHub(current);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = value; addHub(value); }
  });
})();
"""

#: Files of the html-manager dist/ folder that the pages never load.
VENDOR_SKIP = re.compile(r"\.map$|^embed\.js$|^libembed-amd\.js$")


class BuildError(RuntimeError):
    """A stage of the build failed; the message says which and why."""


@dataclass
class Chapter:
    """A notebook entry of ``_toc.yml``: ``notebooks/<name>``."""

    name: str
    source: Path | None = None  # notebook to execute or copy, None when missing
    executed: Path | None = None  # executed notebook that goes into the book


@dataclass
class Report:
    """What the build did, printed at the end."""

    timings: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[build_book] {message}", flush=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file renamed into place)."""
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


# --------------------------------------------------------------------------- toc


def toc_files(toc: dict) -> list[str]:
    """Return every ``file:`` of a jb-book table of contents, in order."""
    found: list[str] = []

    def walk(entries: list[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                found.append(str(entry["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    found.append(str(toc["root"]))
    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return found


def filter_toc(toc: dict, keep: set[str]) -> dict:
    """Copy of ``toc`` without the files not in ``keep`` (and emptied parts)."""

    def prune(entries: list[dict]) -> list[dict]:
        kept = []
        for entry in entries or []:
            entry = dict(entry)
            for key in ("parts", "chapters", "sections"):
                if key in entry:
                    entry[key] = prune(entry[key])
                    if not entry[key]:
                        del entry[key]
            if "file" in entry and entry["file"] not in keep:
                continue  # its sections go with it
            if "file" not in entry and not any(
                k in entry for k in ("parts", "chapters", "sections", "url", "glob")
            ):
                continue  # a part left without chapters
            kept.append(entry)
        return kept

    out = dict(toc)
    for key in ("parts", "chapters"):
        if key in out:
            out[key] = prune(out[key])
    return out


def strip_suffix(path: str) -> str:
    return re.sub(r"\.(ipynb|md)$", "", path)


# ---------------------------------------------------------------------- execute


def write_kernelspec(build_dir: Path) -> Path:
    """Write a kernelspec that runs this very interpreter; return its JUPYTER_PATH dir.

    A private kernelspec avoids depending on whatever "python3" kernel happens
    to be registered on the machine (a user-level one may point at another
    Python), and needs no install step on a fresh clone.
    """
    jupyter_dir = build_dir / "jupyter"
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (latent attention book)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    write_text(spec_dir / "kernel.json", json.dumps(spec, indent=1) + "\n")
    return jupyter_dir


def kernel_environment(jupyter_dir: Path) -> None:
    """Prepare os.environ, which the kernels inherit."""
    paths = [str(jupyter_dir)] + [
        p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p
    ]
    os.environ["JUPYTER_PATH"] = os.pathsep.join(paths)
    # `import lanlib` works even when the package is not installed.
    py_paths = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(py_paths)
    # A MPLBACKEND such as "Agg" (set by some CI images) would stop ipykernel
    # from selecting the inline backend, and the figures would vanish.
    os.environ.pop("MPLBACKEND", None)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def first_error(notebook: Path) -> str:
    """The first error output of an executed notebook, as one line."""
    try:
        nb = json.loads(notebook.read_text())
    except (OSError, ValueError):
        return "(executed notebook not readable)"
    for index, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
    return "(no error output recorded)"


def execute(chapter: Chapter, out_dir: Path, cwd: Path, profile: str, timeout: int | None) -> None:
    """Run one notebook with papermill; raise BuildError when a cell fails.

    Papermill saves the notebook as it goes, so it writes to a temporary name that is
    renamed to ``<out_dir>/<name>.ipynb`` once it stops: interrupted, the build leaves
    the previous executed notebook in place, never a partly executed one under its name.
    A notebook that failed (its outputs up to the error) is renamed into place too.
    """
    import papermill as pm  # imported here: --executed builds do not need it

    assert chapter.source is not None
    target = out_dir / f"{chapter.name}.ipynb"
    partial = out_dir / f".{chapter.name}.partial.ipynb"
    original = json.loads(chapter.source.read_text())
    try:
        pm.execute_notebook(
            str(chapter.source),
            str(partial),
            parameters={"profile": profile},
            kernel_name=KERNEL_NAME,
            cwd=str(cwd),
            progress_bar=sys.stderr.isatty(),
            log_output=False,
            execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as error:
        os.replace(partial, target)
        raise BuildError(
            f"{chapter.name}: cell {error.cell_index} raised {error.ename}: {error.evalue}\n"
            f"    the notebook with its outputs is in {target}"
        ) from None
    except Exception as error:  # kernel died, timeout, bad notebook ...
        detail = ""
        if partial.exists():
            os.replace(partial, target)
            detail = first_error(target)
        raise BuildError(
            f"{chapter.name}: execution failed: {type(error).__name__}: {error} {detail}".rstrip()
        ) from None
    # Keep the source's kernelspec (papermill writes the private one in).
    executed = json.loads(partial.read_text())
    if "kernelspec" in original.get("metadata", {}):
        executed["metadata"]["kernelspec"] = original["metadata"]["kernelspec"]
        write_text(partial, json.dumps(executed, indent=1, ensure_ascii=False) + "\n")
    os.replace(partial, target)
    if not executed.get("metadata", {}).get("widgets") and notebook_uses_widgets(executed):
        log(f"  note: {chapter.name} shows widgets but saved no widget state")
    chapter.executed = target


def notebook_uses_widgets(nb: dict) -> bool:
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                return True
    return False


# ------------------------------------------------------------------------ stage

#: The "Open in Colab" badge that chapters show at the top. On GitHub and in
#: Colab the notebook loads it from Google; in the site that would be a request
#: to another host, so staging points it at a local badge drawn here instead,
#: and :func:`restore_badges` points the downloadable copies back at Google's.
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_BADGE_FILE = "_colab-badge.svg"
COLAB_BADGE_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img"
     aria-label="Open in Colab">
  <rect width="117" height="20" rx="3" fill="#555"/>
  <rect x="38" width="79" height="20" rx="3" fill="#f9ab00"/>
  <rect x="38" width="4" height="20" fill="#f9ab00"/>
  <g font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">
    <text x="19" y="14" fill="#fff">Open</text>
    <text x="77" y="14" fill="#333">in Colab</text>
  </g>
</svg>
"""

ASSET_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".csv", ".json", ".bib"}


def stage(src_dir: Path, toc: dict, chapters: list[Chapter], notebooks_dir: Path) -> None:
    """Assemble the source tree that jupyter-book renders."""
    if src_dir.exists():
        shutil.rmtree(src_dir)
    (src_dir / "notebooks").mkdir(parents=True)
    shutil.copy2(ROOT / "_config.yml", src_dir / "_config.yml")
    shutil.copytree(ROOT / "book", src_dir / "book")
    keep = {f for f in toc_files(toc) if not f.startswith("notebooks/")}
    write_text(src_dir / "notebooks" / COLAB_BADGE_FILE, COLAB_BADGE_SVG)
    for chapter in chapters:
        assert chapter.executed is not None
        notebook = json.loads(chapter.executed.read_text())
        # Papermill records where it read and wrote the notebook: the build machine's
        # folders, which the downloadable notebook must not show.
        for key in ("input_path", "output_path"):
            notebook.get("metadata", {}).get("papermill", {}).pop(key, None)
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        # Only Markdown sources mention the badge; the JSON escaping leaves the URL intact.
        text = text.replace(COLAB_BADGE_URL, COLAB_BADGE_FILE)
        write_text(src_dir / "notebooks" / f"{chapter.name}.ipynb", text)
        keep.add(f"notebooks/{chapter.name}")
    staged_toc = filter_toc(toc, keep)
    write_text(
        src_dir / "_toc.yml",
        "# Generated by tools/build_book.py from the top-level _toc.yml.\n"
        + yaml.safe_dump(staged_toc, sort_keys=False),
    )
    # Images and small data files that the notebooks' Markdown may point at.
    if notebooks_dir.is_dir():
        for path in notebooks_dir.rglob("*"):
            rel = path.relative_to(notebooks_dir)
            if (
                path.is_file()
                and path.suffix.lower() in ASSET_SUFFIXES
                and not any(part.startswith((".", "_")) for part in rel.parts)
            ):
                dest = src_dir / "notebooks" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)


def restore_badges(site_dir: Path) -> int:
    """Point the site's downloadable notebooks back at Google's badge; return how many.

    The local badge exists only inside the site, so a downloaded notebook that kept
    the local name would show a broken image in Jupyter or Colab.
    """
    count = 0
    for path in sorted((site_dir / "_sources" / "notebooks").glob("*.ipynb")):
        text = path.read_text()
        if COLAB_BADGE_FILE in text:
            write_text(path, text.replace(COLAB_BADGE_FILE, COLAB_BADGE_URL))
            count += 1
    return count


# ----------------------------------------------------------------------- render

WARNING_LINE = re.compile(r"(WARNING|ERROR|CRITICAL|SEVERE):")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def render(src_dir: Path, build_dir: Path) -> tuple[Path, list[str]]:
    """Run jupyter-book on the staged tree; return the new site's folder and the warnings
    that matter. The site is not in place yet: see :func:`lanlib.data._files.replace_directory`."""
    jb_out = build_dir / "jupyter-book"
    cmd = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(src_dir),
        "--path-output",
        str(jb_out),
        "--builder",
        "html",
        "--keep-going",
    ]
    log("  $ jupyter-book build " + " ".join(cmd[4:]))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if not sys.stdout.isatty():
        env["NO_COLOR"] = "1"  # plain text in logs, and for the warning filter below
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )
    warnings: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        plain = ANSI_ESCAPE.sub("", line).rstrip()
        if WARNING_LINE.search(plain):
            warnings.append(plain)
    if proc.wait() != 0:
        raise BuildError(f"jupyter-book build exited with status {proc.returncode}")
    built = jb_out / "_build" / "html"
    if not (built / "index.html").exists():
        raise BuildError(f"jupyter-book reported success but {built}/index.html is missing")
    write_text(build_dir / "sphinx-warnings.txt", "\n".join(warnings) + ("\n" if warnings else ""))
    serious = [w for w in warnings if not any(re.search(p, w) for p in ALLOWED_WARNINGS)]
    for w in warnings:
        if w not in serious:
            log(f"  allowed warning: {w}")
    return built, serious


# ----------------------------------------------------------------------- vendor


def vendor(site_dir: Path, node_modules: Path) -> int:
    """Copy the vendored JavaScript into the site; return the number of files."""
    if not node_modules.is_dir():
        raise BuildError(
            f"{node_modules} is missing: run `npm ci` in {ROOT} (or `make book`), "
            "which installs the versions pinned in package-lock.json"
        )
    dest_root = site_dir / VENDOR_DIR
    if dest_root.exists():
        shutil.rmtree(dest_root)
    count = 0
    for source, dest in VENDOR_FILES:
        src = node_modules / source
        dst = dest_root / dest
        if not src.exists():
            raise BuildError(f"{src} is missing: is node_modules up to date (`npm ci`)?")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(
                src, dst, ignore=lambda _d, names: [n for n in names if VENDOR_SKIP.search(n)]
            )
            count += sum(1 for p in dst.rglob("*") if p.is_file())
        else:
            shutil.copy2(src, dst)
            count += 1
    write_text(dest_root / "widgets-setup.js", WIDGETS_SETUP_JS)
    return count + 1


# ------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Execute the chapters with papermill and build the book into _build/html.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--profile",
        default=os.environ.get("PROFILE") or "auto",
        help="value of the notebooks' `profile` parameter (default: $PROFILE or 'auto')",
    )
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=ROOT / "notebooks",
        help="folder with the source notebooks; also their working directory",
    )
    parser.add_argument(
        "--executed",
        type=Path,
        metavar="DIR",
        help="take already executed notebooks <name>.ipynb from DIR instead of executing",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="build only this chapter (e.g. 01_method); repeat for several",
    )
    parser.add_argument(
        "--build-dir", type=Path, default=ROOT / "_build", help="where everything is written"
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds a single cell may run (default: no limit)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failing notebook, execute the others and build the site anyway "
        "(the exit status is still non-zero)",
    )
    parser.add_argument(
        "--allow-warnings", action="store_true", help="do not fail on Sphinx warnings"
    )
    parser.add_argument(
        "--node-modules",
        type=Path,
        default=ROOT / "node_modules",
        help="where `npm ci` installed the vendored JavaScript",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    build_dir: Path = args.build_dir.resolve()
    notebooks_dir: Path = args.notebooks.resolve()
    site_dir = build_dir / "html"
    report = Report()
    started = time.perf_counter()

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [strip_suffix(f) for f in toc_files(toc)]
    for f in files:
        if not f.startswith("notebooks/") and not any(
            (ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")
        ):
            raise SystemExit(f"[build_book] _toc.yml lists {f}, which does not exist")

    chapters: list[Chapter] = []
    origin = args.executed.resolve() if args.executed else notebooks_dir
    for f in files:
        if not f.startswith("notebooks/"):
            continue
        name = f.removeprefix("notebooks/")
        if args.only and name not in args.only:
            report.skipped.append(f"{name} (not in --only)")
            continue
        path = origin / f"{name}.ipynb"
        if not path.exists():
            report.skipped.append(f"{name} (no {path})")
            continue
        chapters.append(Chapter(name=name, source=path))
    toc_names = {f.removeprefix("notebooks/") for f in files if f.startswith("notebooks/")}
    unknown = set(args.only or ()) - toc_names
    if unknown:
        raise SystemExit(f"[build_book] --only names chapters not in _toc.yml: {sorted(unknown)}")
    for s in report.skipped:
        log(f"skipping chapter {s}")

    try:
        # 1. execute
        t0 = time.perf_counter()
        if args.executed:
            log(f"taking executed notebooks from {origin}")
            for chapter in chapters:
                chapter.executed = chapter.source
        elif chapters:
            out_dir = build_dir / "executed"
            out_dir.mkdir(parents=True, exist_ok=True)
            kernel_environment(write_kernelspec(build_dir))
            log(f"executing {len(chapters)} notebook(s) with papermill, profile={args.profile!r}")
            for chapter in chapters:
                t = time.perf_counter()
                try:
                    execute(chapter, out_dir, notebooks_dir, args.profile, args.timeout)
                except BuildError as error:
                    report.failed.append(str(error))
                    log(f"  FAILED {error}")
                    if not args.keep_going:
                        raise
                    chapter.executed = out_dir / f"{chapter.name}.ipynb"
                    if not chapter.executed.exists():
                        chapter.executed = None
                report.timings[f"execute {chapter.name}"] = time.perf_counter() - t
                log(f"  {chapter.name}: {report.timings[f'execute {chapter.name}']:.1f} s")
            chapters = [c for c in chapters if c.executed is not None]
        report.timings["execute"] = time.perf_counter() - t0

        # 2. stage
        t0 = time.perf_counter()
        stage(build_dir / "src", toc, chapters, notebooks_dir)
        report.timings["stage"] = time.perf_counter() - t0

        # 3. render
        t0 = time.perf_counter()
        log("rendering with jupyter-book")
        new_site, warnings = render(build_dir / "src", build_dir)
        log(f"pointed {restore_badges(new_site)} downloadable notebooks at Colab's own badge")
        report.timings["render"] = time.perf_counter() - t0

        # 4. vendor, then the complete new site replaces the old one in one rename
        t0 = time.perf_counter()
        n = vendor(new_site, args.node_modules.resolve())
        replace_directory(new_site, site_dir)
        report.timings["vendor"] = time.perf_counter() - t0
        log(f"copied {n} vendored files into {site_dir / VENDOR_DIR}")

        # The site is complete; now refuse it if Sphinx complained.
        if warnings and not args.allow_warnings:
            raise BuildError(
                f"Sphinx reported {len(warnings)} warning(s) (all in "
                f"{build_dir / 'sphinx-warnings.txt'}):\n"
                + "\n".join(f"    {w}" for w in warnings)
                + "\n    Fix them, or add a pattern to ALLOWED_WARNINGS in tools/build_book.py"
                " with the reason it is harmless (or pass --allow-warnings)."
            )
    except BuildError as error:
        log(f"BUILD FAILED: {error}")
        return 1

    total = time.perf_counter() - started
    log(
        "done in {:.1f} s (execute {:.1f}, stage {:.1f}, render {:.1f}, vendor {:.1f})".format(
            total, *(report.timings.get(k, 0.0) for k in ("execute", "stage", "render", "vendor"))
        )
    )
    log(f"chapters in the book: {', '.join(c.name for c in chapters) or 'none'}")
    if report.skipped:
        log(f"chapters left out: {', '.join(report.skipped)}")
    log(f"open {site_dir / 'index.html'}")
    if report.failed:
        log(f"{len(report.failed)} notebook(s) failed:")
        for failure in report.failed:
            log(f"  {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
