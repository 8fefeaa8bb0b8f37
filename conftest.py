"""Test-session glue: nbval is the one executor of the chapters in the test command.

nbval runs every chapter notebook once (``pytest --nbval-lax``), checks that each
cell runs and compares the cells marked ``# NBVAL_CHECK_OUTPUT`` with their stored
outputs. This plugin records what nbval's kernel produced, together with the
widgets' state, into ``_build/executed/<name>.ipynb``; the site test then builds
the book from those notebooks instead of executing the chapters a second time.
The site tests run last so that they see the chapters executed in this session.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent
EXECUTED = ROOT / "_build" / "executed"

_WIDGET_STATE_CODE = (
    "import json as _json\n"
    "try:\n"
    "    from ipywidgets import Widget as _W\n"
    "    print(_json.dumps(_W.get_manager_state(drop_defaults=True)))\n"
    "except ImportError:\n"
    "    print('null')\n"
)


def _is_nbval_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell" and hasattr(item, "test_outputs")


class _Recorder:
    """Collects the outputs of each notebook's cells as nbval runs them."""

    def __init__(self):
        self.outputs: dict[Path, dict[int, list]] = {}
        self.failed: set[Path] = set()
        self.written: set[str] = set()  # chapters executed and recorded in this session

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if not _is_nbval_cell(item) or call.when != "call":
            return
        path = Path(str(item.parent.fspath))
        self.outputs.setdefault(path, {})[item.cell_num] = list(item.test_outputs or [])
        if outcome.get_result().failed:
            self.failed.add(path)

    def pytest_runtest_teardown(self, item, nextitem):
        if not _is_nbval_cell(item):
            return
        if nextitem is not None and nextitem.parent is item.parent:
            return
        path = Path(str(item.parent.fspath))
        if path in self.failed or path not in self.outputs:
            EXECUTED.joinpath(path.name).unlink(missing_ok=True)
            return
        _write_executed(path, self.outputs[path], _widget_state(item.parent))
        self.written.add(path.stem)


def _widget_state(notebook_item) -> dict | None:
    """Ask the notebook's still-running kernel for the state of its widgets."""
    kernel = notebook_item.kernel
    if kernel is None or not kernel.is_alive():
        return None
    msg_id = kernel.execute_cell_input(_WIDGET_STATE_CODE, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=60)
    text = []
    while True:
        msg = notebook_item.get_kernel_message(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    state = json.loads("".join(text) or "null")
    return state if state and state.get("state") else None


def _write_executed(source: Path, outputs: dict[int, list], widgets: dict | None) -> None:
    nb = nbformat.read(source, as_version=4)
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code_cells):
        cell.outputs = [nbformat.from_dict(dict(out)) for out in outputs.get(number, [])]
        cell.execution_count = number + 1
        for out in cell.outputs:
            if out.get("output_type") == "execute_result":
                out["execution_count"] = number + 1
    if widgets:
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": widgets}
    EXECUTED.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=EXECUTED, suffix=".ipynb.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        os.replace(tmp, EXECUTED / source.name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


RECORDER = "lanlib-executed-notebooks"


def pytest_configure(config):
    config.pluginmanager.register(_Recorder(), RECORDER)


def pytest_collection_modifyitems(session, config, items):
    """Run the site tests after everything else (they use the chapters executed before)."""
    items.sort(key=lambda item: "tests/site/" in Path(str(item.fspath)).as_posix())
