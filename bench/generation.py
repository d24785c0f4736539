"""Generation speed: session-kit against copier and cookiecutter on the same templates.

Every figure is a whole process (start-up included), timed over several interleaved runs.
The peers get session-kit's own template tree, converted here at run time, so the three tools
render identical files; the benchmark checks that they do.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from session_kit.engine.context import build_context, select_templates
from session_kit.engine.kit import Kit
from session_kit.engine.options import resolve
from session_kit.engine.project import ProjectLayout
from session_kit.frameworks import get_plugin

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


@dataclass
class Timing:
    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        return (max(self.seconds) - min(self.seconds)) / self.median * 100 if self.median else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "median_s": round(self.median, 4),
            "min_s": round(min(self.seconds), 4),
            "max_s": round(max(self.seconds), 4),
            "spread_pct": round(self.spread, 1),
            "runs": len(self.seconds),
        }


def _render_plan(kit: Kit, workdir: Path) -> tuple[dict[str, object], list[tuple[str, str]]]:
    """session-kit's default context and (template, project path) pairs for a project with `app`."""
    values = dict(resolve(kit.options).values)
    plugin = get_plugin(str(values["framework"]))
    layout = ProjectLayout(workdir, "app.sessions", ".")
    context = build_context(kit, layout, plugin, values, kit.manifest.version)
    files = [(f.template, str(plugin.target_path(layout, f))) for f in select_templates(kit.manifest, plugin, values)]
    return context, files


def convert_templates(kit: Kit, workdir: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """Write copier and cookiecutter versions of the same tree; return them and the expected output."""
    context, files = _render_plan(kit, workdir)
    prelude = "".join(f"{{%- set {key} = ctx.{key} -%}}\n" for key in context)
    envops = {"keep_trailing_newline": True, "trim_blocks": True, "lstrip_blocks": True, "autoescape": False}
    copier_dir = workdir / "tpl-copier"
    cookie_dir = workdir / "tpl-cookiecutter"
    copier_dir.mkdir()
    (cookie_dir / "{{cookiecutter.project}}").mkdir(parents=True)
    expected: dict[str, bytes] = {}
    for template, target in files:
        source = (kit.templates_dir / template).read_text(encoding="utf-8")
        expected[target] = kit.renderer.render(template, context).encode()
        out = copier_dir / f"{target}.jinja"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(prelude + source, encoding="utf-8")
        cookie = cookie_dir / "{{cookiecutter.project}}" / target
        cookie.parent.mkdir(parents=True, exist_ok=True)
        cookie.write_text("{%- set ctx = cookiecutter._ctx -%}\n" + prelude + source, encoding="utf-8")
    plain = json.loads(json.dumps(context))
    copier_yml = {
        "_templates_suffix": ".jinja",
        "_envops": envops,
        "_jinja_extensions": ["sk_bench_filters.SessionKitFilters"],
        "ctx": {"type": "yaml", "default": yaml.safe_dump(plain), "when": False},
    }
    (copier_dir / "copier.yml").write_text(yaml.safe_dump(copier_yml, sort_keys=False))
    cookie_json = {
        "project": "out",
        "_ctx": plain,  # private (leading _): cookiecutter passes it as is, numbers stay numbers
        "_extensions": ["sk_bench_filters.SessionKitFilters"],
        # cookiecutter already sets keep_trailing_newline itself
        "_jinja2_env_vars": {k: v for k, v in envops.items() if k in ("trim_blocks", "lstrip_blocks")},
    }
    (cookie_dir / "cookiecutter.json").write_text(json.dumps(cookie_json, indent=2))
    return copier_dir, cookie_dir, expected


def _project(path: Path) -> Path:
    (path / "app").mkdir(parents=True)
    (path / "app" / "__init__.py").write_text("")
    return path


def _outputs_match(root: Path, expected: dict[str, bytes]) -> bool:
    return all((root / rel).is_file() and (root / rel).read_bytes() == data for rel, data in expected.items())


def run(runs: int, workdir: Path) -> dict[str, object]:
    kit = Kit()
    copier_tpl, cookie_tpl, expected = convert_templates(kit, workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_KIT_")}
    env["PYTHONPATH"] = str(HERE)
    # Every tool runs with compiled bytecode, as after a pip install: written once by the
    # warm-up round to a scratch tree, so nothing is written beside the sources.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    counter = iter(range(10**6))
    sk = str(BIN / "session-kit")

    def fresh() -> Path:
        return _project(workdir / f"p{next(counter)}")

    noop_project = fresh()
    subprocess.run(
        [sk, "add", "module", "session", "--yes", "--project-dir", str(noop_project)],
        check=True,
        capture_output=True,
        env=env,
    )
    edited_source = _edited_project_for_upgrade(workdir, kit, env)

    def upgrade_target() -> Path:
        target = workdir / f"u{next(counter)}"
        shutil.copytree(edited_source, target)
        return target

    commands: dict[str, Callable[[], list[str]]] = {
        "python -c pass (floor)": lambda: [sys.executable, "-c", "pass"],
        "import jinja2, yaml, typer, rich": lambda: [sys.executable, "-c", "import jinja2, yaml, typer, rich"],
        "session-kit --help": lambda: [sk, "--help"],
        "session-kit add (fresh project)": lambda: [
            sk,
            "add",
            "module",
            "session",
            "--yes",
            "--project-dir",
            str(fresh()),
        ],
        "session-kit add (up to date, no-op)": lambda: [
            sk,
            "add",
            "module",
            "session",
            "--yes",
            "--project-dir",
            str(noop_project),
        ],
        "session-kit upgrade (12 edited files)": lambda: [sk, "upgrade", "--project-dir", str(upgrade_target())],
        "copier copy --defaults": lambda: [
            str(BIN / "copier"),
            "copy",
            "--defaults",
            "--trust",
            "-q",
            str(copier_tpl),
            str(workdir / f"copier-out-{next(counter)}"),
        ],
        "cookiecutter --no-input": lambda: [
            str(BIN / "cookiecutter"),
            "--no-input",
            "-o",
            str(workdir / f"cookiecutter-out-{next(counter)}"),
            str(cookie_tpl),
        ],
    }
    timings = {name: Timing(name, []) for name in commands}
    for _ in range(runs + 1):  # the first round warms caches and is dropped
        for name, build in commands.items():
            argv = build()
            start = time.perf_counter()
            result = subprocess.run(argv, capture_output=True, env=env, cwd=workdir)
            elapsed = time.perf_counter() - start
            # An upgrade that leaves conflicts to resolve exits 1 by design; anything else must succeed.
            allowed = (0, 1) if name.startswith("session-kit upgrade") else (0,)
            if result.returncode not in allowed:
                raise RuntimeError(f"{name} failed: {result.stderr.decode()[-2000:]}")
            timings[name].seconds.append(elapsed)
    for timing in timings.values():
        timing.seconds = timing.seconds[1:]

    # Every run of a tool writes the same files; check one of each.
    copier_out = next(workdir.glob("copier-out-*"))
    cookie_out = next(workdir.glob("cookiecutter-out-*")) / "out"
    same = {"copier": _outputs_match(copier_out, expected), "cookiecutter": _outputs_match(cookie_out, expected)}
    help_imports = _help_imports(env)
    sk_add = timings["session-kit add (fresh project)"].median
    ratios = {
        "add / copier": sk_add / timings["copier copy --defaults"].median,
        "add / cookiecutter": sk_add / timings["cookiecutter --no-input"].median,
    }
    return {
        "files": len(expected),
        "lines": sum(data.count(b"\n") for data in expected.values()),
        "timings": {name: t.to_json() for name, t in timings.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "targets": {"add / copier": 0.3, "add / cookiecutter": 0.4},
        "identical_output": same,
        "help_imports_jinja2_or_yaml": help_imports,
    }


def _edited_project_for_upgrade(workdir: Path, kit: Kit, env: dict[str, str]) -> Path:
    """A project generated by an older kit (0.0.1, slightly different templates) with 12 edited files."""
    old_kit = workdir / "kit-0.0.1"
    top_level_only = {".git", "tests", "bench", ".venv", "build"}  # templates/tests/ must stay

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return skipped | (top_level_only & set(names) if Path(directory) == kit.root else set())

    shutil.copytree(kit.root, old_kit, ignore=ignore)
    (old_kit / "__init__.py").write_text('__version__ = "0.0.1"\n')
    manifest = old_kit / "module.yaml"
    manifest.write_text(manifest.read_text().replace(f"version: {kit.manifest.version}", "version: 0.0.1", 1))
    changelog = old_kit / "docs" / "changelog.md"
    changelog.write_text(changelog.read_text().replace(f"## {kit.manifest.version}", "## 0.0.1", 1))
    for template in sorted(old_kit.joinpath("templates").rglob("*.py.j2"))[::3]:
        template.write_text(template.read_text() + "# a line the next version drops\n")
    project = _project(workdir / "upgrade-source")
    from session_kit.generate import GenerateRequest, generate

    generate(GenerateRequest(project_dir=project, kit=Kit(old_kit)))
    edited = sorted((project / "app" / "sessions").rglob("*.py"))[:12]
    for path in edited:
        lines = path.read_text().splitlines(keepends=True)
        lines.insert(min(3, len(lines)), "# edited by the user\n")
        path.write_text("".join(lines))
    return project


def _help_imports(env: dict[str, str]) -> list[str]:
    probe = (
        "import sys, runpy; sys.argv = ['session-kit', '--help']\n"
        "try:\n    runpy.run_module('session_kit', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jinja2', 'yaml')), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    return json.loads(result.stderr.strip().splitlines()[-1].replace("'", '"'))
