"""The README documents every setting, with the default the code really uses."""

from __future__ import annotations

import re
from pathlib import Path

from fraudstream.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def documented_defaults() -> dict[str, str]:
    rows = re.findall(r"^\| `(FRAUDSTREAM_[A-Z0-9_]+)` \| ([^|]+) \|", README, flags=re.M)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    documented = documented_defaults()
    for variable, field in Settings.variables().items():
        assert variable in documented, f"{variable} missing from the README settings table"
        default = field.default
        if hasattr(default, "get_secret_value") or default == "":
            assert documented[variable] == "(empty)"
        else:
            assert documented[variable] == f"`{default}`", variable


def test_readme_documents_no_setting_that_does_not_exist() -> None:
    known = set(Settings.variables())
    assert set(documented_defaults()) <= known


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "make test" in README and "make test" in ci


def test_the_module_table_lists_every_module_of_the_package_and_the_producer() -> None:
    root = Path(__file__).parents[1]
    modules = {
        str(path.relative_to(root))
        for package in ("fraudstream", "producer")
        for path in (root / package).rglob("*.py")
        if path.name != "__init__.py" or path.parent.name == "cli"
    }
    rows = re.findall(r"^\| `((?:fraudstream|producer)/[^|]+)\|", README, flags=re.M)
    listed: set[str] = set()
    for row in rows:
        names = re.findall(r"`([^`]+\.py)`", "`" + row)
        folder = names[0].rsplit("/", 1)[0]
        listed.update(n if "/" in n else f"{folder}/{n}" for n in names)
    assert modules - listed == set(), "modules missing from the README's module table"
    assert listed - modules == set(), "the README's module table names modules that do not exist"


def test_the_example_rule_definition_in_the_rules_section_is_valid() -> None:
    from fraudstream.core.rule_definitions import RuleMode, definition_from_json

    section = README.split("## Rules:", 1)[1]
    example = re.search(r"```json\n(.*?)```", section, flags=re.S)
    assert example is not None
    definition = definition_from_json(example.group(1))
    assert definition.mode is RuleMode.SHADOW and definition.kind.type == "expression"
