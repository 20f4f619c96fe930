"""The README's layout table is the map of the code: it names every module, so a newcomer finds
each in one step from it (a module added without a line there fails here)."""

from __future__ import annotations

from pathlib import Path

import golem_actors

PACKAGE = Path(golem_actors.__file__).parent
README = PACKAGE.parent / "README.md"


def _layout() -> str:
    text = README.read_text()
    return text[text.index("## Layout") :]


def test_the_layout_names_every_module():
    layout = _layout()
    modules = [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in {"__init__.py", "__main__.py"}
    ]
    assert len(modules) > 100  # the walk found the package
    missing = [
        str(path.relative_to(PACKAGE))
        for path in modules
        if f"`{path.name}`" not in layout and str(path.relative_to(PACKAGE)) not in layout
    ]
    assert missing == []


def test_the_actor_tree_names_each_actor_module():
    layout = _layout()
    tree = layout[layout.index("### The actor tree") : layout.index("### Modules")]
    for module in ("market", "agreement", "activity", "instance", "supervisor", "task_dispatcher"):
        assert f"actors/{module}.py" in tree, module
    assert "payments/actor.py" in tree
