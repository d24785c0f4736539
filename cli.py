"""The `session-kit` command: a thin typer + rich layer over generate.py and the engine.

Only what a command needs is imported inside it, so `--help` stays fast.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from .engine.spec import OptionSpec
    from .generate import GenerateReport

app = typer.Typer(
    name="session-kit",
    help="Generate production-grade session management into your project, and keep it upgradable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
add_app = typer.Typer(help="Add a module to a project.", no_args_is_help=True)
modules_app = typer.Typer(help="List, lock, verify and vet modules.", no_args_is_help=True)
app.add_typer(add_app, name="add")
app.add_typer(modules_app, name="modules")

ProjectDir = Annotated[
    Path, typer.Option("--project-dir", help="The project to work in.", show_default="current directory")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a machine-readable report instead of tables.")]


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Typed errors become a message and an exit code, never a traceback."""
    from .errors import KitError

    try:
        yield
    except KitError as exc:
        _console(stderr=True).print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted; nothing was written")
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"session-kit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Generate production-grade session management into your project, and keep it upgradable."""


@add_app.command("module")
def add_module(
    name: Annotated[str, typer.Argument(help="Module to add (session).")],
    framework: Annotated[str | None, typer.Option("--framework", help="Web framework (fastapi).")] = None,
    project_dir: ProjectDir = Path("."),
    package: Annotated[
        str | None,
        typer.Option(
            "--package", help="Dotted import path of the generated package (default: found from the project)."
        ),
    ] = None,
    assignments: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Set an option (repeatable).")
    ] = None,
    answers: Annotated[Path | None, typer.Option("--answers", help="YAML file of option: value answers.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Ask nothing; use defaults and given values.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and a diff; write nothing.")] = False,
    as_json: JsonFlag = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite edited or foreign files, keeping the old copy as <name>.orig.")
    ] = False,
) -> None:
    """Generate a module (code you own) into the project."""
    with _user_errors():
        from .generate import GenerateRequest, generate

        interactive = not yes and not as_json and sys.stdin.isatty()
        report = generate(
            GenerateRequest(
                project_dir=project_dir,
                module=name,
                framework=framework,
                package=package,
                assignments=tuple(assignments or ()),
                answers_file=answers,
                force=force,
                dry_run=dry_run,
                prompter=_prompt if interactive else None,
            )
        )
        if as_json:
            payload = report.to_json()
            if dry_run:
                payload["diff"] = report.diff()
            typer.echo(json.dumps(payload, indent=2, sort_keys=True))
        else:
            _print_report(report)
        raise typer.Exit(report.exit_code)


def _prompt(option: OptionSpec, default: Any) -> Any:
    """Ask for one option on the terminal until the answer is valid."""
    from rich.prompt import Confirm, Prompt

    from .engine.options import coerce_text, validate_value

    console = _console(stderr=True)
    console.print(f"[dim]{option.help}[/]")
    while True:
        if option.type == "boolean":
            return Confirm.ask(option.prompt, default=bool(default), console=console)
        shown = ",".join(default) if isinstance(default, list) else str(default)
        choices = list(option.choices) if option.type == "choice" else None
        label = option.prompt if option.type != "multichoice" else f"{option.prompt} [{', '.join(option.choices)}]"
        text = Prompt.ask(label, default=shown, choices=choices, console=console)
        value = coerce_text(option, text)
        problem = validate_value(option, value)
        if problem is None:
            return value
        console.print(f"[red]{problem}[/]")


_ACTION_STYLE = {
    "create": "green",
    "update": "cyan",
    "unchanged": "dim",
    "skipped (modified)": "yellow",
    "overwrite (--force)": "magenta",
    "refused (not written by session-kit)": "bold red",
}


def _print_report(report: GenerateReport) -> None:
    from rich.syntax import Syntax
    from rich.table import Table

    console = _console()
    for warning in report.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {warning}")
    verb = "would write" if report.dry_run else "wrote"
    table = Table(title=f"{report.module} {report.version} · {report.framework} · {report.package}")
    table.add_column("File")
    table.add_column("Action")
    for plan in report.files:
        action = plan.action.value
        if report.dry_run and plan.action.writes:
            action = f"would {action}"
        table.add_row(plan.path, f"[{_ACTION_STYLE.get(plan.action.value, '')}]{action}[/]")
    console.print(table)
    if report.dry_run:
        diff = report.diff()
        if diff:
            console.print(Syntax(diff, "diff", theme="ansi_dark", background_color="default"))
        console.print("[bold]dry run:[/] nothing was written.")
    if report.status == "refused":
        console.print(
            "[bold red]refused:[/] files that session-kit did not write are in the way; nothing was written. "
            "Move them, or pass --force to overwrite them (each is kept as <name>.orig)."
        )
        return
    if report.status == "up to date":
        console.print(f"[green]up to date:[/] {report.module} {report.version} matches the project.")
    elif not report.dry_run:
        written = sum(1 for plan in report.files if plan.action.writes)
        console.print(f"[green]{report.status}:[/] {verb} {written} files; lock: session-kit.lock")
    if any(plan.blocking for plan in report.files):
        console.print(
            "[yellow]kept your edits:[/] files marked 'skipped (modified)' were edited and not overwritten; "
            "`session-kit modules verify` lists them, --force overwrites them (keeping <name>.orig)."
        )
    console.print("\n[bold]Requirements[/] (pip):")
    console.print("  pip install " + " ".join(shlex.quote(r) for r in report.requirements), soft_wrap=True)
    if report.test_requirements:
        console.print(
            "  for the generated tests: pip install " + " ".join(shlex.quote(r) for r in report.test_requirements)
        )
    console.print("\n[bold]Next steps[/]")
    for step in report.next_steps:
        console.print(f"  • {step}")


@modules_app.command("list")
def modules_list(as_json: JsonFlag = False) -> None:
    """List the modules this kit can generate, with versions and frameworks."""
    with _user_errors():
        from rich.table import Table

        from .engine.kit import Kit

        manifest = Kit().manifest
        row: dict[str, Any] = {
            "module": manifest.name,
            "version": manifest.version,
            "summary": manifest.summary,
            "frameworks": dict(manifest.frameworks),
            "python": manifest.python,
        }
        if as_json:
            typer.echo(json.dumps([row], indent=2, sort_keys=True))
            return
        table = Table(title="session-kit modules")
        for column in ("Module", "Version", "Frameworks", "Python", "Summary"):
            table.add_column(column)
        frameworks = ", ".join(f"{name} {spec}" for name, spec in manifest.frameworks.items())
        table.add_row(manifest.name, manifest.version, frameworks, manifest.python, manifest.summary)
        _console().print(table)


@modules_app.command("lock")
def modules_lock(
    project_dir: ProjectDir = Path("."),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Rewrite an existing lock.")] = False,
) -> None:
    """Write session-kit.lock from the files on disk (accepting their current content)."""
    with _user_errors():
        from .engine.apply import Write, apply_writes
        from .engine.kit import Kit
        from .engine.project import LOCK_NAME, check_project_dir
        from .engine.state import relock

        root = check_project_dir(project_dir)
        lock = relock(root, Kit().package_version, overwrite=overwrite)
        apply_writes(root, [Write(LOCK_NAME, lock.text().encode("utf-8"))])
        count = sum(len(module.files) for module in lock.modules.values())
        _console().print(f"[green]locked:[/] {count} files recorded in {root / LOCK_NAME}")


@modules_app.command("verify")
def modules_verify(project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """Re-hash every generated file and its vendor copy; exit 1 on any drift."""
    with _user_errors():
        from rich.table import Table

        from .engine.project import check_project_dir
        from .engine.state import verify

        report = verify(check_project_dir(project_dir))
        if as_json:
            typer.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
            raise typer.Exit(report.exit_code)
        console = _console()
        if not report.findings:
            console.print(f"[green]verified:[/] {report.checked} files match session-kit.lock")
            raise typer.Exit(0)
        table = Table(title="Drift from session-kit.lock")
        table.add_column("File")
        table.add_column("Status")
        for finding in report.findings:
            table.add_row(finding.path, f"[yellow]{finding.status}[/]")
        console.print(table)
        console.print(
            f"[bold red]drift:[/] {len(report.findings)} of the files differ. "
            "Accept your edits with `session-kit modules lock --overwrite`."
        )
        raise typer.Exit(report.exit_code)


@modules_app.command("vet")
def modules_vet() -> None:
    """Validate the kit itself: YAML files, templates, documentation map, versions."""
    with _user_errors():
        from .engine.kit import Kit
        from .engine.vet import vet

        report = vet(Kit())
        console = _console()
        for line in report.passed:
            console.print(f"[green]ok[/]   {line}")
        for line in report.problems:
            console.print(f"[red]fail[/] {line}")
        raise typer.Exit(report.exit_code)


def main() -> None:
    """Console-script entry point."""
    app()
