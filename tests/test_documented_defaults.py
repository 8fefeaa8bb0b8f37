"""The defaults the docstrings of the method modules state are the ones the code has.

A reader sets options from the documentation ("Default 1000."), so a default changed in
the signature but not in the docstring (or the reverse) misleads them. Every ``Args:``
entry of a public function or class that states a literal default (a number or a bool)
is compared with the signature (a ``None`` default stands for what the text says it does).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re

import pytest

MODULES = ("core", "fit", "noise", "losses", "nets", "metrics", "attribution", "loop", "cache")
DEFAULT = re.compile(r"Default:? (-?[\d.e+-]+|True|False)(?=[\s.,;)]|$)")


def _documented_defaults():
    """``(where, argument, documented value, signature default)`` for literal defaults."""
    for name in MODULES:
        module = importlib.import_module(f"lanlib.{name}")
        for public in module.__all__:  # the API (a mutation tool's copies are not in it)
            obj = getattr(module, public)
            if getattr(obj, "__module__", None) != module.__name__ or not callable(obj):
                continue
            doc = inspect.getdoc(obj) or ""
            if "Args:" not in doc:
                continue
            section = re.split(r"\n\S[^\n]*:\n", doc.split("Args:", 1)[1] + "\n")[0]
            params = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj).parameters
            for entry in re.split(r"\n(?=    \w+(?:, \w+)* \()", "\n" + section):
                found = re.match(r"\s*(\w+) \([^)]*\):(.*)", entry, re.S)
                if not found or found.group(1) not in params or \
                        params[found.group(1)].default is None:  # None: documented by effect
                    continue
                stated = DEFAULT.search(found.group(2))
                if not stated:
                    continue
                try:
                    value = ast.literal_eval(stated.group(1).rstrip("."))
                except (ValueError, SyntaxError):
                    continue
                yield f"lanlib.{name}.{public}", found.group(1), value, \
                    params[found.group(1)].default


DEFAULTS = list(_documented_defaults())


def test_the_method_modules_document_their_defaults():
    assert len(DEFAULTS) >= 40  # the scan finds them (a broken pattern would find none)


@pytest.mark.parametrize(("where", "argument", "documented", "default"), DEFAULTS,
                         ids=[f"{w}.{a}" for w, a, _, _ in DEFAULTS])
def test_a_documented_default_is_the_signatures(where, argument, documented, default):
    assert default == documented and isinstance(default, bool) == isinstance(documented, bool)
