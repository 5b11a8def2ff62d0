"""What every command shares: exit codes, one-line errors, and options made from the settings' metadata."""

from __future__ import annotations

import dataclasses
import shlex
import signal
import sys
import threading
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from ..cache import cache_dir
from ..config import ModelSettings, settings_classes, spec_of
from ..errors import AuditError
from ..files import WRITE_ERRNOS, atomic_write_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 128 + signal.SIGTERM
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
MODEL_OPTIONS = ("model", "device", "dtype", "trust_remote_code", "batch_size")


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def flag_of(name: str) -> str:
    """How the command line spells setting `name`: the running command's option for it (`--max` for max_scores),
    else `--name-with-dashes` for any settings field; other words are left as they are."""
    context = click.get_current_context(silent=True)
    for param in context.command.params if context else ():
        if param.name == name and isinstance(param, click.Option):
            return next((o for o in param.opts if o.startswith("--")), param.opts[0])
    known = {f.name for cls in settings_classes() for f in dataclasses.fields(cls)}
    return f"--{name.replace('_', '-')}" if name in known else name


def worded(exc: AuditError) -> str:
    """An AuditError as the command line words it: `--engine ray: ...`."""
    return exc.worded(flag_of, lambda value: shlex.quote(str(value)), " ")


class Terminated(KeyboardInterrupt):
    """SIGTERM (what CI runners and schedulers send on cancel), raised in the main thread like Ctrl-C."""


def _terminate(_signum, _frame) -> NoReturn:
    raise Terminated


@contextmanager
def user_errors(cached: str | None = None) -> Iterator[None]:
    """An AuditError, or an OS error that only writing raises (a full disk), becomes `error: ...` and exit 2.
    With `cached` (what an interrupted run keeps, e.g. "finished batches are"), Ctrl-C and SIGTERM say so and
    exit 130 and 143."""
    handles_term = cached is not None and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if handles_term else None
    try:
        yield
    except AuditError as exc:
        fail(worded(exc))
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        fail(f"cannot write {exc.filename or 'an output'}: {exc.strerror}")
    except KeyboardInterrupt as exc:
        if cached is None:
            raise
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        click.echo(f"\n{what}: {cached} cached in {cache_dir()}; run the same command again to resume", err=True)
        sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
    finally:
        if handles_term:
            signal.signal(signal.SIGTERM, previous)


def write_text(path: str, text: str) -> None:
    """A command's `--json FILE` output: the file, or stdout for '-'."""
    if path == "-":
        click.echo(text, nl=False)
    else:
        with user_errors():
            atomic_write_text(Path(path), text)


def as_settings(given: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """Click's values as settings: its tuples (repeated options) as lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}


def split_commas(_ctx, _param, value: str) -> list[str]:
    return [item for item in value.split(",") if item]


def _click_type(hint: object, spec) -> tuple[object, bool]:
    """The click type of a field, and whether it is a repeatable (list) option."""
    if isinstance(hint, types.UnionType):  # X | None
        hint = next(arm for arm in typing.get_args(hint) if arm is not type(None))
    if typing.get_origin(hint) is list:
        return (str if spec.commas else typing.get_args(hint)[0]), not spec.commas
    if spec.choices:
        return click.Choice(spec.choices), False
    bounded = spec.min is not None or spec.max is not None
    if hint is int:
        return (click.IntRange(spec.min, spec.max) if bounded else int), False
    if hint is float:
        return (click.FloatRange(spec.min, spec.max, min_open=spec.min_open) if bounded else float), False
    return hint, False


class Option(click.Option):
    """A click option whose `hidden_decls` (old spellings kept for one release) work but are not shown in --help."""

    def __init__(self, *args, hidden_decls: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.hidden_decls = hidden_decls

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [o for o in self.opts if o not in self.hidden_decls]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


class Command(click.Command):
    """A command whose --help lists its options under headings: `groups` is (heading, option names) pairs;
    options in none of them come last, under "Other options"."""

    def __init__(self, *args, groups: tuple[tuple[str, tuple[str, ...]], ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.groups = groups

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if not self.groups:
            return super().format_options(ctx, formatter)
        records = {p.name: p.get_help_record(ctx) for p in self.get_params(ctx)}
        grouped = {name for _, names in self.groups for name in names}
        sections = [*self.groups, ("Other options", tuple(n for n in records if n not in grouped))]
        for heading, names in sections:
            rows = [row for n in names if (row := records.get(n))]
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)


def option(cls: type, name: str, *decls: str, **overrides) -> Callable:
    """A click option for field `name` of settings dataclass `cls`: its type, range, choices, default and help
    come from the field. `decls` replace the flag names; `overrides` go to click.option."""
    spec = spec_of(cls, name)
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    hint = typing.get_type_hints(cls)[name]
    default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    flag = "--" + name.replace("_", "-")
    kind, multiple = _click_type(hint, spec)
    kwargs: dict = {"help": spec.help, "metavar": spec.metavar, "cls": Option}
    if default is dataclasses.MISSING:  # a setting without a default: the option is required
        kwargs.update(type=kind, required=True)
    elif hint is bool:
        decls = decls or (f"{flag}/--no-{flag[2:]}",)
        kwargs.update(default=default, show_default=True)
    elif multiple:
        kwargs.update(multiple=True, type=kind)
    else:
        kwargs.update(type=kind, default=",".join(default) if spec.commas else default,
                      show_default=default is not None, callback=split_commas if spec.commas else None)
    kwargs.update(overrides)
    return click.option(*(decls or (flag,)), name, **kwargs)


def options(cls: type, *names: str, **overrides: dict) -> Callable:
    """Options for several fields of `cls`, in the given order; `overrides[name]` go to that field's option
    (`decls`: its flag names)."""

    def wrap(command):
        for name in reversed(names):
            extra = dict(overrides.get(name, {}))
            command = option(cls, name, *extra.pop("decls", ()), **extra)(command)
        return command

    return wrap


def model_options(**overrides: dict) -> Callable:
    """--model, --device, --dtype, --trust-remote-code and --batch-size, as every model command has them."""
    return options(ModelSettings, *MODEL_OPTIONS, **overrides)
