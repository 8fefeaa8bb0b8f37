"""What a test needs and may not find: skipped on a reader's machine, failed under CI.

A skip goes unnoticed in a CI log, so under continuous integration (``CI`` set and not
"", "0", "false" or "no", as GitHub Actions and ``.ci/run``'s machines set it) a missing
requirement fails the test with the same message. A CI job that knowingly cannot provide a
requirement declares it in ``LANLIB_CI_MAY_LACK`` (comma-separated names, e.g. ``mirror``:
the offline dataset copies exist only on this project's own machines); those tests are
then skipped, and ``pytest -ra`` lists them with the reason.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether the tests run under continuous integration (``CI`` set and not false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def declared_missing() -> set[str]:
    """The requirements this CI job says it cannot provide (``LANLIB_CI_MAY_LACK``)."""
    return {name.strip() for name in os.environ.get("LANLIB_CI_MAY_LACK", "").split(",")
            if name.strip()}


def unavailable(message: str, *, what: str) -> NoReturn:
    """Skip saying ``message``; under CI fail instead, unless the job declared ``what`` missing."""
    if in_ci() and what not in declared_missing():
        pytest.fail(f"{message} (CI is set: a missing requirement fails instead of skipping; "
                    f"a job that cannot provide it lists {what!r} in LANLIB_CI_MAY_LACK)",
                    pytrace=False)
    pytest.skip(message)


def require_module(name: str, how: str) -> ModuleType:
    """``import name``, or :func:`unavailable` saying ``how`` to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(f"{name} is not installed: {how}", what=name)
