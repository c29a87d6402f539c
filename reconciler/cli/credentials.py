"""Where the command line's passwords come from: files and the environment, not flag values.

Edge of the CLI (used by `connect.py` for plan/apply and by `simulate_cmd.py`). A value given as a
flag (`--station-password`, `--password`) is visible to every user in `ps` and lands in shell
history, so each secret has a file flag (`--station-password-file`, `--password-file`) and an
environment variable; the old flag still works but prints a warning saying what to use instead.
A password inside a URL (`http://ops:PW@host`) is taken out of it (`transport.inject.split_credentials`)
so that the URL the rest of the program prints, logs and stores carries no secret.

Nothing here ever echoes a secret or the content of a secrets file: a file that cannot be read or
parsed is reported with its path, line and column, and the parser's words without quoted text.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import typer
import yaml

STATION_ENV = "RECONCILER_STATION_PASSWORD"
INJECT_USER_ENV = "RECONCILER_INJECT_USER"
INJECT_PASSWORD_ENV = "RECONCILER_INJECT_PASSWORD"
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class SecretSource:
    """One secret's three sources, as the command line names them."""

    flag: str  # e.g. --station-password
    file_flag: str  # e.g. --station-password-file
    env: str  # e.g. RECONCILER_STATION_PASSWORD


STATION_PASSWORD = SecretSource("--station-password", "--station-password-file", STATION_ENV)
INJECT_PASSWORD = SecretSource("--password", "--password-file", INJECT_PASSWORD_ENV)


def warn(text: str) -> None:
    typer.echo(f"warning: {text}", err=True)


def secret(source: SecretSource, flag_value: str | None, file: Path | None) -> str | None:
    """The secret from the flag (with a warning), the file, or the environment, in that order."""
    if flag_value is not None and file is not None:
        raise typer.BadParameter(f"give {source.flag} or {source.file_flag}, not both", param_hint=source.flag)
    if flag_value is not None:
        warn(
            f"{source.flag} puts the password in the process list (ps) and the shell history; "
            f"use {source.env} or {source.file_flag} FILE"
        )
        return flag_value
    if file is not None:
        return read_secret_file(file, source.file_flag)
    return os.environ.get(source.env) or None


def read_secret_file(path: Path, option: str) -> str:
    """A file holding one password (a trailing newline is not part of it)."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{path}: cannot read it ({_reason(exc)})", param_hint=option) from None
    value = text[:-1] if text.endswith("\n") else text
    value = value[:-1] if value.endswith("\r") else value
    if not value or "\n" in value:
        raise typer.BadParameter(f"{path}: expected one password on one line", param_hint=option)
    _warn_if_shared(path, mode)
    return value


def read_passwords_file(path: Path, option: str = "--passwords") -> dict[str, str]:
    """A YAML or JSON mapping station id -> password. Values are taken as written (`007` stays
    `007`); aliases, nesting and non-scalar values are refused. Errors never quote the file."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{path}: cannot read it ({_reason(exc)})", param_hint=option) from None
    shape = f"{path}: expected a mapping of station id to password, one per line (`CP-1: secret`)"
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise typer.BadParameter(f"{path}: {where}: not valid JSON ({exc.msg})", param_hint=option) from None
        except (ValueError, RecursionError):
            raise typer.BadParameter(f"{path}: not valid JSON", param_hint=option) from None
        if not isinstance(data, dict) or not all(isinstance(v, str | int) for v in data.values()):
            raise typer.BadParameter(shape, param_hint=option)
        passwords = {str(k): str(v) for k, v in data.items()}
    else:
        passwords = _yaml_passwords(path, text, shape, option)
    _warn_if_shared(path, mode)
    return passwords


def _yaml_passwords(path: Path, text: str, shape: str, option: str) -> dict[str, str]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = _QUOTED.sub("...", exc.problem or exc.context or "invalid YAML")
        raise typer.BadParameter(f"{path}: {where}not valid YAML ({problem})", param_hint=option) from None
    except yaml.YAMLError:
        raise typer.BadParameter(f"{path}: not valid YAML", param_hint=option) from None
    finally:
        loader.dispose()
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise typer.BadParameter(shape, param_hint=option)
    passwords: dict[str, str] = {}
    seen: set[int] = set()
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or not isinstance(value, yaml.ScalarNode) or id(value) in seen:
            line = key.start_mark.line + 1
            raise typer.BadParameter(f"{shape}; line {line} is not (aliases are not allowed)", param_hint=option)
        seen.add(id(value))
        if str(key.value) in passwords:
            line = key.start_mark.line + 1
            raise typer.BadParameter(f"{path}: line {line}: a station id given twice", param_hint=option)
        passwords[str(key.value)] = str(value.value)
    return passwords


def _warn_if_shared(path: Path, mode: int) -> None:
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warn(f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); chmod 600 {path}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return "not UTF-8 text"
