"""The documentation keeps up with the kit: every override variable and every documented file."""

from __future__ import annotations

import re

from session_kit.engine.kit import KIT_ROOT, Kit
from session_kit.overrides import ENV_PREFIX, RESERVED_VARIABLES


def test_advanced_md_lists_every_override_variable_with_its_default() -> None:
    text = (KIT_ROOT / "docs" / "advanced.md").read_text(encoding="utf-8")
    for option in Kit().options.options:
        variable = f"{ENV_PREFIX}{option.name.upper()}"
        rows = [line for line in text.splitlines() if line.startswith(f"| `{variable}` |")]
        assert rows, f"docs/advanced.md has no table row for {variable}"
        default = ",".join(option.default) if isinstance(option.default, list) else str(option.default).lower()
        assert f"`{default}`" in rows[0].lower(), f"{variable}: the documented default is not {default}"
    for variable in RESERVED_VARIABLES:
        assert f"`{variable}`" in text


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
