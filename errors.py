"""Typed errors of the kit.

KitError
├── UserError            bad input; the CLI exits 2 and prints the message, never a traceback
│   ├── SpecError        module.yaml or config/base.yaml is invalid (file, line, key)
│   ├── OptionError      an option value is not allowed
│   ├── AnswersFileError the --answers file cannot be read or parsed
│   └── ProjectError     the project directory or package path cannot be used
│       └── DamagedState a file under .session-kit/ or the lock fails to parse or validate
├── ProjectBusy          another session-kit process holds the project's lock (exit 75)
├── RefusedOverwrite     a file in the way was not written by session-kit (exit 1)
├── VersionDrift         package, module.yaml and changelog versions disagree (exit 1)
├── ApplyError           writing failed; the project was restored (exit 2)
└── ReleaseError         a released version's template fingerprint would change (exit 1)
"""

from __future__ import annotations

from pathlib import Path


class KitError(Exception):
    """Root of every error session-kit reports to its user."""

    exit_code = 2


class UserError(KitError):
    """Input the user can fix; shown without a traceback."""


class SpecError(UserError):
    """A kit YAML file breaks its schema."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None, key: str = "") -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        where = self.path if line is None else f"{self.path}:{line}"
        prefix = f"{where}: {key}: " if key else f"{where}: "
        super().__init__(prefix + message)


class OptionError(UserError):
    """An option value (from any source) is not allowed by the spec."""


class AnswersFileError(UserError):
    """The answers file is missing, unreadable or not a mapping."""


class ProjectError(UserError):
    """The project directory, layout or package path cannot be used."""


class DamagedState(ProjectError):
    """A state file of the project cannot be trusted; nothing is written while it is so.

    The message names the file, the key inside it and what the user can do, because a
    hand-edited or half-restored state file is fixed by a person, not by a retry.
    """

    def __init__(self, path: Path | str, key: str, problem: str, remedy: str) -> None:
        self.path = str(path)
        self.key = key
        self.remedy = remedy
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(f"{where}{problem}; nothing was written. {remedy}")


class ProjectBusy(KitError):
    """Another session-kit process works on the project and did not finish in time."""

    # EX_TEMPFAIL: the same command succeeds when retried later.
    exit_code = 75


class RefusedOverwrite(KitError):
    """A file session-kit did not write, or the user edited, is in the way."""

    exit_code = 1


class VersionDrift(KitError):
    """The kit's own versions disagree with each other."""

    exit_code = 1


class ApplyError(KitError):
    """Writing into the project failed; every change was rolled back."""


class ReleaseError(KitError):
    """Recording a fingerprint would rewrite what a released version shipped."""

    exit_code = 1
