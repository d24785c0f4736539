"""The `session-kit` command: a thin typer + rich layer over generate.py and the engine.

Only what a command needs is imported inside it, so `--help` stays fast.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from .engine.spec import OptionSpec
    from .generate import GenerateReport


class _Group(typer.core.TyperGroup):
    """The root group; before parsing, it gives plain parameters a coercion without pydantic."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        if parent is None:
            # It reaches into typer's internals: on any other typer it steps aside, and
            # typer's own coercion works as before, only slower.
            with suppress(AttributeError, TypeError):
                _plain_coercion(self)
            with suppress(AttributeError, TypeError, ImportError):
                _plain_help_types(self)
        return super().make_context(info_name, args, parent, **extra)


def _plain_help_types(command: Any) -> None:
    """--help shows a value's name only where one is typed: none for flags, MODULE, not `<str>`.

    Recent typer versions print a type such as `<bool>` beside every parameter, which
    reads as if `--yes` took a value; an explicit metavar replaces it, and an empty one
    hides it. Older typer prints no type for flags, and this changes nothing there.
    """
    import importlib

    try:  # recent typer vendors click; older ones use it directly
        context_type: Any = importlib.import_module("typer._click").Context
    except ImportError:
        context_type = importlib.import_module("click").Context
    stack = [command]
    while stack:
        current = stack.pop()
        stack.extend(getattr(current, "commands", {}).values())
        for param in [*current.params, current.get_help_option(context_type(current))]:
            if param is None:
                continue
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
            elif param.param_type_name == "argument" and param.metavar is not None:
                # The name column already shows the metavar; the type column would repeat it as <str>.
                param.display_type_rich = lambda ctx: None


def _plain_coercion(command: Any) -> None:
    """Coerce flag, text and path parameters directly instead of through pydantic.

    Recent typer versions coerce every parameter through a pydantic TypeAdapter, and
    importing pydantic and building the adapters costs more than rendering all the
    templates. Values click already parsed as bool, str or paths are kept as typer would
    keep them; anything else goes to typer's own coercion. A typer without this machinery
    coerces through click and is left alone.
    """
    try:
        from typer._click import Context
        from typer._coercion import RuntimeParam, build_runtime_param, resolve_type_descriptor
        from typer._param_types import coerce_cli_path
    except ImportError:
        return

    class Plain(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = self.annotation
            if (kind is bool and isinstance(value, bool)) or (kind is str and isinstance(value, str)):
                return value
            if kind is Path and isinstance(value, str):
                return coerce_cli_path(Path(value), self.parameter_info, path_type=Path, param=param, ctx=ctx)
            if kind == list[str] and isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
                return list(value)
            typer_own = build_runtime_param(resolve_type_descriptor(kind, self.parameter_info))
            return typer_own._coerce_value(value, param, ctx)

    stack = [command]
    while stack:
        current = stack.pop()
        stack.extend(getattr(current, "commands", {}).values())
        # --help is built on first use and then kept: build it now, with the default names.
        for param in [*current.params, current.get_help_option(Context(current))]:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None or descriptor.annotation not in (bool, str, Path, list[str]):
                continue
            if getattr(param, "_runtime_param", "absent") is None:  # not built yet
                param._runtime_param = Plain(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)


app = typer.Typer(
    cls=_Group,
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
    Path,
    typer.Option("--project-dir", metavar="DIR", help="The project to work in.", show_default="current directory"),
]
# Kept in step with config/base.yaml by tests/test_cli.py (building it here would load the kit for --help).
ADD_EPILOG = (
    "Options, set with --set KEY=VALUE, an --answers FILE or SESSION_KIT_<KEY>: "
    "framework (fastapi, starlette, litestar, flask), "
    "stores (memory, file, sql, redis; comma-separated), "
    "token_format (opaque, jwt), transport (cookie, header), csrf (true, false), "
    "management_routes (true, false), audit (none, logger, sql, metrics). "
    "Lifetimes, cookie attributes and limits are run-time settings (SESSION_TTL, SESSION_COOKIE_NAME, ...) "
    "of the generated code, not questions; docs/usage.md lists them."
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a machine-readable report instead of tables.")]


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


# --debug: show the traceback of an unexpected error instead of saving it to a file.
_DEBUG = {"on": False}
INTERNAL_ERROR_EXIT = 3


@contextmanager
def _user_errors(project_dir: Path | None = None) -> Iterator[None]:
    """Typed errors become a message and an exit code, never a traceback.

    With `project_dir`, an interrupted transaction there is finished (or undone) first, and
    the user is told which, before the command does its own work.
    """
    from .errors import KitError

    try:
        if project_dir is not None:
            _recover(project_dir)
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KitError as exc:
        # markup=False: messages quote paths and extras such as [crypto] that are not rich markup.
        _console(stderr=True).print(f"error: {exc}", markup=False, style="bold red")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted; an unfinished change is completed or undone by the next command")
        raise typer.Exit(130) from None
    except Exception as exc:
        if _DEBUG["on"]:
            raise
        saved = _save_traceback(exc)
        where = f"the full traceback is in {saved}" if saved else "re-run with --debug to see the traceback"
        _console(stderr=True).print(
            f"internal error: {type(exc).__name__}: {exc}; {where}. Please report it.", markup=False
        )
        raise typer.Exit(INTERNAL_ERROR_EXIT) from None


def _save_traceback(exc: BaseException) -> Path | None:
    """Write the traceback where the user can attach it to a report; None when nowhere is writable."""
    import os
    import tempfile
    import time
    import traceback

    from .engine.template_cache import user_cache_root

    text = "".join(traceback.format_exception(exc))
    name = f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for folder in (user_cache_root() / "errors", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(f"session-kit {__version__}\n{' '.join(sys.argv)}\n\n{text}", encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _recover(project_dir: Path) -> None:
    """Finish or undo what an interrupted command left, and say which."""
    if not project_dir.is_dir():
        return  # the command itself reports a missing project
    from .engine.guard import guarded

    with guarded(project_dir.resolve(), write=False) as recovery:
        if recovery is not None:
            _console(stderr=True).print(f"recovered: {recovery.message()}", markup=False, style="cyan")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"session-kit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error instead of saving it.")
    ] = False,
) -> None:
    """Generate production-grade session management into your project, and keep it upgradable."""
    _DEBUG["on"] = debug


@add_app.command("module", epilog=ADD_EPILOG)
def add_module(
    name: Annotated[str, typer.Argument(metavar="MODULE", help="Module to add: session.", show_default=False)],
    framework: Annotated[
        str | None,
        typer.Option(
            "--framework",
            metavar="NAME",
            help="Web framework: fastapi, starlette, litestar or flask (default: detected from the project).",
        ),
    ] = None,
    project_dir: ProjectDir = Path("."),
    package: Annotated[
        str | None,
        typer.Option(
            "--package",
            metavar="NAME",
            help="Dotted import path of the generated package, e.g. app.sessions (default: detected from the layout).",
        ),
    ] = None,
    assignments: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Set an option (repeatable).")
    ] = None,
    answers: Annotated[
        Path | None, typer.Option("--answers", metavar="FILE", help="YAML file of option: value answers.")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Ask nothing; use what was detected, given or default.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and a diff; write nothing.")] = False,
    as_json: JsonFlag = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite edited or foreign files, keeping the old copy as <name>.orig.")
    ] = False,
) -> None:
    """Generate a module (code you own) into the project; on a generated project, upgrade it (merge)."""
    with _user_errors(project_dir):
        from .generate import GenerateRequest, generate

        interactive = not yes and not as_json and sys.stdin.isatty()
        request = GenerateRequest(
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
        if not force and _already_generated(project_dir, name):
            # A re-run merges like `upgrade`, so edits survive and deleted files stay deleted;
            # --force keeps its meaning (overwrite, keeping <name>.orig) through generate().
            _run_upgrade(request, as_json=as_json, allow_framework_change=False)
        report = generate(request)
        if as_json:
            payload = report.to_json()
            if dry_run:
                payload["diff"] = report.diff()
            typer.echo(json.dumps(payload, indent=2, sort_keys=True))
        else:
            _print_report(report)
        raise typer.Exit(report.exit_code)


def _already_generated(project_dir: Path, module: str) -> bool:
    """Whether the project's lock records `module`: then `add` is an upgrade."""
    from .engine.project import check_project_dir, read_lock

    lock = read_lock(check_project_dir(project_dir))
    return lock is not None and module in lock.modules


def _prompt(option: OptionSpec, default: Any) -> Any:
    """Ask for one option on the terminal until the answer is valid; `?` shows the details."""
    from rich.markup import escape
    from rich.prompt import Prompt

    from .engine.options import coerce_text, validate_value

    console = _console(stderr=True)
    more = "  (? for details)" if option.details else ""
    console.print(f"[dim]{escape(option.help)}{more}[/]")
    if option.type == "boolean":
        choices, shown = "y/n", "y" if default else "n"
    else:
        choices = ("/" if option.type == "choice" else ", ").join(option.choices)
        shown = ",".join(default) if isinstance(default, list) else str(default)
    label = f"{escape(option.prompt)} [magenta]{escape(f'[{choices}]')}[/]" if choices else escape(option.prompt)
    while True:
        text = Prompt.ask(label, default=shown, console=console)
        if text.strip() == "?":
            console.print(escape(option.details or option.help), style="dim")
            continue
        if option.type == "boolean":
            text = {"y": "yes", "n": "no"}.get(text.strip().lower(), text)
        value = coerce_text(option, text)
        problem = validate_value(option, value)
        if problem is None:
            return value
        console.print(f"[red]{escape(problem)}[/]")


_ACTION_STYLE = {
    "create": "green",
    "update": "cyan",
    "unchanged": "dim",
    "skipped (modified)": "yellow",
    "overwrite (--force)": "magenta",
    "refused (not written by session-kit)": "bold red",
}


def _print_report(report: GenerateReport) -> None:
    from rich.table import Table

    console = _console()
    for warning in report.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {warning}")
    # markup=False: evidence quotes code such as Flask(...) and paths.
    for subject, line in report.detected.items():
        console.print(f"detected {subject}: {line}", markup=False, style="cyan")
    for note in report.notes:
        console.print(f"note: {note}", markup=False, style="cyan")
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
        _print_dry_run(console, report.diff())
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
    # markup=False: extras such as PyJWT[crypto] are not rich markup.
    console.print("  pip install " + " ".join(shlex.quote(r) for r in report.requirements), markup=False)
    if report.test_requirements:
        tests_line = " ".join(shlex.quote(r) for r in report.test_requirements)
        console.print(f"  for the generated tests: pip install {tests_line}", markup=False)
    console.print("\n[bold]Next steps[/]")
    for step in report.next_steps:
        console.print(f"  • {step}")


@app.command("upgrade")
def upgrade_command(
    project_dir: ProjectDir = Path("."),
    assignments: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Change an option (repeatable).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and a diff; write nothing.")] = False,
    as_json: JsonFlag = False,
    resume: Annotated[bool, typer.Option("--continue", help="Finish an upgrade whose conflicts you resolved.")] = False,
) -> None:
    """Re-render with the installed kit and merge into the project, three-way."""
    with _user_errors(project_dir):
        from .generate import GenerateRequest

        if resume:
            from .upgrade import continue_upgrade

            resolved = continue_upgrade(project_dir)
            if as_json:
                typer.echo(json.dumps({"status": "upgraded", "resolved": resolved}, indent=2))
            else:
                _console().print(f"[green]upgraded:[/] {len(resolved)} resolved files accepted; lock rewritten")
            raise typer.Exit(0)
        request = GenerateRequest(project_dir=project_dir, assignments=tuple(assignments or ()), dry_run=dry_run)
        _run_upgrade(request, as_json=as_json)


def _run_upgrade(request: Any, *, as_json: bool, allow_framework_change: bool = True) -> None:
    """Run an upgrade, print its report, and exit with its code."""
    from .upgrade import upgrade

    report = upgrade(request, allow_framework_change=allow_framework_change)
    if as_json:
        payload = report.to_json()
        if request.dry_run:
            payload["diff"] = report.diff()
        typer.echo(json.dumps(payload, indent=2, sort_keys=True))
        raise typer.Exit(report.exit_code)
    from rich.table import Table

    console = _console()
    for warning in report.warnings:
        _console(stderr=True).print(f"[yellow]warning:[/] {warning}")
    for note in report.notes:
        console.print(f"[cyan]note:[/] {note}")
    table = Table(title=f"{report.module} {report.from_version} → {report.to_version}")
    table.add_column("File")
    table.add_column("Outcome")
    for item in report.files:
        style = "bold red" if item.outcome.blocking else "green" if item.write is not None or item.delete else "dim"
        where = item.path if item.target == item.path else f"{item.path} → {item.target}"
        table.add_row(where, f"[{style}]{item.outcome.value}[/]")
    console.print(table)
    if request.dry_run:
        _print_dry_run(console, report.diff())
    elif report.conflicts:
        console.print(
            f"[bold red]conflicts:[/] {len(report.conflicts)} files hold conflict markers: "
            + ", ".join(report.conflicts)
            + ". Resolve them, then run `session-kit upgrade --continue`; the lock keeps the old version until then."
        )
    else:
        console.print(f"[green]{report.status}:[/] {report.module} {report.to_version}")
    console.print("  pip install " + " ".join(shlex.quote(r) for r in report.requirements), markup=False)
    raise typer.Exit(report.exit_code)


@app.command("diff")
def diff_command(project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """Show, per generated file, how the project differs from what the installed kit renders."""
    with _user_errors(project_dir):
        from rich.syntax import Syntax

        from .generate import GenerateRequest
        from .upgrade import diff

        files = diff(GenerateRequest(project_dir=project_dir))
        if as_json:
            rows = [{"path": f.path, "status": f.status, "diff": f.diff} for f in files]
            typer.echo(json.dumps(rows, indent=2, sort_keys=True))
            return
        console = _console()
        changed = [f for f in files if f.status != "same"]
        for item in changed:
            console.print(f"[bold]{item.path}[/] [yellow]{item.status}[/]")
            if item.diff:
                console.print(Syntax(item.diff, "diff", theme="ansi_dark", background_color="default"))
        console.print(f"{len(changed)} of {len(files)} generated files differ from the installed kit's render.")


@app.command("rollback")
def rollback_command(project_dir: ProjectDir = Path(".")) -> None:
    """Restore the project to its state before the last upgrade."""
    with _user_errors(project_dir):
        from .upgrade import rollback

        entry = rollback(project_dir)
        _console().print(
            f"[green]rolled back:[/] the upgrade {entry.from_version} → {entry.to_version} is undone; "
            "session-kit.lock and every file it touched are as they were."
        )


def _print_dry_run(console: Console, diff: str) -> None:
    from rich.syntax import Syntax

    if diff:
        console.print(Syntax(diff, "diff", theme="ansi_dark", background_color="default"))
    console.print("[bold]dry run:[/] nothing was written.")


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
    with _user_errors(project_dir):
        from .engine.apply import Write, apply_writes
        from .engine.guard import guarded
        from .engine.kit import Kit
        from .engine.project import LOCK_NAME, check_project_dir
        from .engine.state import relock

        root = check_project_dir(project_dir)
        with guarded(root, write=True):
            lock = relock(root, Kit().package_version, overwrite=overwrite)
            apply_writes(root, [Write(LOCK_NAME, lock.text().encode("utf-8"))], kind="lock", label="modules lock")
        count = sum(len(module.files) for module in lock.modules.values())
        _console().print(f"[green]locked:[/] {count} files recorded in {root / LOCK_NAME}")


@modules_app.command("verify")
def modules_verify(project_dir: ProjectDir = Path("."), as_json: JsonFlag = False) -> None:
    """Re-hash every generated file and its vendor copy; exit 1 on any drift. Lists upgradable files too."""
    with _user_errors(project_dir):
        from rich.table import Table

        from .engine.guard import guarded
        from .engine.project import check_project_dir
        from .generate import GenerateRequest
        from .upgrade import verify_project

        root = check_project_dir(project_dir)
        with guarded(root, write=False):
            result = verify_project(GenerateRequest(project_dir=root))
        report = result.report
        if as_json:
            payload = report.to_json()
            payload["notes"] = result.notes
            typer.echo(json.dumps(payload, indent=2, sort_keys=True))
            raise typer.Exit(report.exit_code)
        console = _console()
        for note in result.notes:
            console.print(f"[cyan]note:[/] {note}")
        if report.upgradable:
            console.print(
                f"[cyan]upgradable:[/] {len(report.upgradable)} files you have not edited are older than what "
                f"the installed kit renders; `session-kit upgrade` replaces them: "
                + ", ".join(f.path for f in report.upgradable),
                markup=True,
                highlight=False,
            )
        if not report.drift:
            console.print(f"[green]verified:[/] {report.checked} files match session-kit.lock")
            raise typer.Exit(0)
        table = Table(title="Drift from session-kit.lock")
        table.add_column("File")
        table.add_column("Status")
        for finding in report.drift:
            detail = f" ({finding.detail})" if finding.detail else ""
            table.add_row(finding.path, f"[yellow]{finding.status}[/]{detail}")
        console.print(table)
        console.print(
            f"[bold red]drift:[/] {len(report.drift)} of the files differ. "
            "Accept your edits with `session-kit modules lock --overwrite`."
        )
        raise typer.Exit(report.exit_code)


@modules_app.command("vet")
def modules_vet(
    record_fingerprint: Annotated[
        bool,
        typer.Option(
            "--record-fingerprint",
            help="Record the templates' fingerprint for the current version in config/releases.yaml "
            "(refused for a released version whose templates differ).",
        ),
    ] = False,
    release: Annotated[
        bool, typer.Option("--release", help="With --record-fingerprint: mark the version released (frozen).")
    ] = False,
) -> None:
    """Validate the kit itself: YAML files, templates, documentation map, versions, template fingerprint."""
    with _user_errors():
        from .engine.kit import Kit
        from .engine.vet import vet
        from .errors import UserError

        if release and not record_fingerprint:
            raise UserError("--release needs --record-fingerprint")
        console = _console()
        if record_fingerprint:
            from .engine.fingerprint import RELEASES
            from .engine.fingerprint import record_fingerprint as record

            entry = record(Kit(), release=release)
            state = "released" if entry.released else "unreleased"
            console.print(f"recorded {entry.version} ({state}): {entry.templates} in {RELEASES}", markup=False)
        report = vet(Kit())
        for line in report.passed:
            console.print(f"[green]ok[/]   {line}")
        for line in report.problems:
            console.print(f"[red]fail[/] {line}")
        raise typer.Exit(report.exit_code)


def main() -> None:
    """Console-script entry point."""
    app()
