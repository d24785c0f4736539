"""The documentation keeps up with the kit: every framework, option, override variable and page."""

from __future__ import annotations

import re

import pytest

from session_kit.engine.kit import KIT_ROOT, Kit
from session_kit.errors import UserError
from session_kit.frameworks import PLUGINS, get_plugin
from session_kit.overrides import ENV_PREFIX, RESERVED_VARIABLES


def _doc(name: str) -> str:
    return (KIT_ROOT / "docs" / name).read_text(encoding="utf-8")


def _paragraph(text: str, start: str) -> str:
    """The paragraph of `text` that begins with `start`."""
    at = text.index(start)
    end = text.find("\n\n", at)
    return text[at : len(text) if end < 0 else end]


def test_advanced_md_lists_every_override_variable_with_its_default() -> None:
    text = (KIT_ROOT / "docs" / "advanced.md").read_text(encoding="utf-8")
    for option in Kit().options.options:
        variable = f"{ENV_PREFIX}{option.name.upper()}"
        rows = [line for line in text.splitlines() if line.startswith(f"| `{variable}` |")]
        assert rows, f"docs/advanced.md has no table row for {variable}"
        default = ",".join(option.default) if isinstance(option.default, list) else str(option.default).lower()
        assert f"`{default}`" in rows[0].lower(), f"{variable}: the documented default is not {default}"
    for former in Kit().options.runtime_defaults:
        variable = f"{ENV_PREFIX}{former.name.upper()}"
        rows = [line for line in text.splitlines() if line.startswith(f"| `{variable}` |")]
        assert rows, f"docs/advanced.md has no table row for {variable}"
        for word in (former.name, former.constant, former.variable):
            assert f"`{word}`" in rows[0], f"{variable}: the row does not name {word}"
    for variable in RESERVED_VARIABLES:
        assert f"`{variable}`" in text


def test_every_session_kit_variable_the_docs_name_exists() -> None:
    """A documented variable that the kit does not read is stale text."""
    spec = Kit().options
    known = {f"{ENV_PREFIX}{name.upper()}" for name in spec.known_names} | set(RESERVED_VARIABLES)
    for page in sorted((KIT_ROOT / "docs").glob("*.md")):
        # The example of a misspelt name is meant to be unknown.
        lines = [
            line for line in page.read_text(encoding="utf-8").splitlines() if "not a session-kit option" not in line
        ]
        for variable in set(re.findall(r"\bSESSION_KIT_[A-Z0-9_]*[A-Z0-9]\b", "\n".join(lines))):
            assert variable in known, f"{page.name} names {variable}, which session-kit does not read"


@pytest.mark.parametrize("framework", sorted(PLUGINS))
def test_every_framework_is_named_wherever_the_docs_list_them(framework: str) -> None:
    display = PLUGINS[framework].display_name
    assert display in _paragraph(_doc("overview.md"), "Supported today"), f"overview.md: {display} missing"
    framework_row = next(line for line in _doc("advanced.md").splitlines() if "`SESSION_KIT_FRAMEWORK`" in line)
    assert f"`{framework}`" in framework_row, f"advanced.md: SESSION_KIT_FRAMEWORK does not allow {framework}"
    usage = _doc("usage.md")
    assert f"`{framework}`" in _paragraph(usage, "- **framework**"), f"usage.md: detection does not list {framework}"
    assert f"--framework {framework}" in usage, f"usage.md has no quick start for {framework}"


def test_every_option_is_named_wherever_the_docs_list_them() -> None:
    spec = Kit().options
    overview = _paragraph(_doc("overview.md"), "Supported today")
    asked = _paragraph(_doc("usage.md"), "With a terminal, session-kit then asks")
    for option in spec.options:
        assert f"`{option.name}`" in overview, f"overview.md does not list option {option.name}"
        if option.name != "framework":  # framework is asked only when it was not found
            assert f"`{option.name}`" in asked, f"usage.md does not say that {option.name} is asked"
    usage = _doc("usage.md")
    for former in spec.runtime_defaults:
        rows = [line for line in usage.splitlines() if line.startswith(f"| `{former.variable}` |")]
        assert rows, f"usage.md has no row for the run-time setting {former.variable}"
        assert f"`{former.name}`" in rows[0]
        assert f"`{former.constant}`" in rows[0]


def test_the_troubleshooting_message_for_an_unknown_framework_is_the_real_one() -> None:
    with pytest.raises(UserError) as caught:
        get_plugin("django")
    assert f"**`error: {caught.value}`**" in _doc("troubleshooting.md")


def test_every_option_of_the_spec_is_in_the_api_reference_or_advanced_docs() -> None:
    docs = "".join(
        (KIT_ROOT / "docs" / name).read_text(encoding="utf-8") for name in ("advanced.md", "api-reference.md")
    )
    for option in Kit().options.options:
        assert re.search(rf"\b{option.name}\b", docs), f"option {option.name} is not documented"


def test_the_readme_opens_with_the_two_commands() -> None:
    readme = (KIT_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    assert "session-kit add module session --yes" in blocks[0]
    ci = (KIT_ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert blocks[1].strip() == ci.strip(), "the README's test command must be exactly what .ci/run runs"


def test_the_documentation_map_names_every_page_in_docs() -> None:
    mapped = set(Kit().manifest.documentation.values())
    pages = {f"docs/{page.name}" for page in (KIT_ROOT / "docs").glob("*.md")}
    assert mapped == pages
