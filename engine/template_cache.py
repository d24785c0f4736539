"""Compiled templates kept between runs, so a generation does not recompile every template.

Compiling the templates costs more than rendering them. Jinja can keep the compiled code in
files: each entry is keyed by the template's path and checked against a hash of its source,
so an edited template is always recompiled. The directory is also keyed by everything else
that shapes the compiled code (the kit version, Jinja's version, the environment's options),
so a cached entry can never change what a template renders. A cache that cannot be created,
read or written is skipped: it only ever saves time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket

from .. import __version__


def user_cache_root() -> Path:
    """The per-user cache directory of session-kit (XDG on POSIX, LOCALAPPDATA on Windows)."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "session-kit" / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "session-kit"


class SafeBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache, except that an unreadable or unwritable cache is a miss, not an error."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):  # read-only home, full disk: the next run compiles again
            super().dump_bytecode(bucket)


def bytecode_cache(options: dict[str, object], root: Path | None = None) -> SafeBytecodeCache | None:
    """A cache for an environment built with `options`, or None when no directory is usable."""
    key = repr((__version__, jinja2.__version__, sorted(options.items())))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    directory = (root or user_cache_root()) / f"templates-{digest}"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.W_OK | os.R_OK | os.X_OK):
        return None
    return SafeBytecodeCache(str(directory))
