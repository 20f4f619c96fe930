"""The public surface: ``__all__``, the lazy export table and the type checker's imports agree,
every name resolves, and every error the package defines has the one root (as httpx tests its
exported members)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import golem_actors
from golem_actors.actors.activity import BatchTimeoutError
from golem_actors.errors import GolemActorsError
from golem_actors.policy.payload import PayloadError

INIT = Path(golem_actors.__file__)


def _type_checking_imports() -> dict[str, str]:
    """name -> module of every ``from M import N`` under ``if TYPE_CHECKING:`` in ``__init__``."""
    tree = ast.parse(INIT.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name)
        if node.test.id == "TYPE_CHECKING"
    )
    names: dict[str, str] = {}
    for stmt in block.body:
        assert isinstance(stmt, ast.ImportFrom), ast.dump(stmt)
        assert stmt.module is not None
        for alias in stmt.names:
            names[alias.asname or alias.name] = stmt.module
    return names


def test_all_matches_the_lazy_export_table():
    assert sorted(golem_actors.__all__) == sorted([*golem_actors._EXPORTS, "__version__"])
    assert len(set(golem_actors.__all__)) == len(golem_actors.__all__)


def test_type_checking_imports_match_the_lazy_export_table():
    assert _type_checking_imports() == golem_actors._EXPORTS


@pytest.mark.parametrize("name", sorted(golem_actors._EXPORTS))
def test_every_export_resolves_to_its_module(name: str):
    module = importlib.import_module(golem_actors._EXPORTS[name])
    assert getattr(golem_actors, name) is getattr(module, name)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = golem_actors.Nope


def _package_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(golem_actors.__path__, "golem_actors.")
        if not info.name.endswith("__main__")  # running them would start a program
    )


#: Runs as pid 1 inside the sandbox under the image's own python, standard library only: it
#: cannot import the package, so its one internal error cannot have the root.
STANDALONE = {"golem_actors.localnet.initd"}


def _defined_errors() -> list[type[BaseException]]:
    errors = []
    for name in _package_modules():
        if name in STANDALONE:
            continue
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == name:
                errors.append(obj)
    return errors


def test_every_exported_error_has_the_root():
    exported = [getattr(golem_actors, name) for name in golem_actors._EXPORTS]
    errors = [obj for obj in exported if isinstance(obj, type) and issubclass(obj, BaseException)]
    assert GolemActorsError in errors
    assert [e.__name__ for e in errors if not issubclass(e, GolemActorsError)] == []


def test_every_error_the_package_defines_has_the_root():
    errors = _defined_errors()
    assert len(errors) > 40  # the walk really imported the package
    assert [
        f"{e.__module__}.{e.__qualname__}" for e in errors if not issubclass(e, GolemActorsError)
    ] == []


def test_standalone_modules_import_nothing_of_the_package():
    for name in STANDALONE:
        source = Path(importlib.import_module(name).__file__ or "").read_text()
        assert "golem_actors" not in source.split('"""', 2)[2], name


def test_rooted_errors_keep_their_builtin_base():
    assert issubclass(PayloadError, ValueError)
    assert issubclass(BatchTimeoutError, TimeoutError)
