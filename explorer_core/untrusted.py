"""Reading files the app did not write itself: model folders, ``runs/`` and the data folder are untrusted.

Every such file is read through :func:`read_bytes` / :func:`read_json_object`: only a regular file (a symlink
is followed, but what it points at must be a regular file: never a device, a FIFO or a directory), at most a
size cap, opened without blocking; then it is parsed into a validated schema (:func:`check`), whose every
field has a type and a range. Anything else raises :class:`UntrustedFileError` with a message that names the
file and the field, which the pages show as one entry ("x.json: not a model file: config.latent_dim must be
...") while everything else keeps working. Paths written inside a file go through :func:`inside` so they
cannot leave their folder. Nothing here imports torch or Streamlit.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The default cap for a JSON description (models, runs, checkpoints): far above any real one.
MAX_JSON_BYTES = 8 * 2**20
#: Text fields (names, messages, tracebacks) longer than this are rejected.
MAX_TEXT = 100_000


class UntrustedFileError(ValueError):
    """A file that is not what it should be (not a regular file, too large, not JSON, a field out of range).
    The message names the file and says what is wrong, in words a page can show as they are."""


class SchemaError(ValueError):
    """A value that does not fit its schema; ``str(err)`` names the field (``config.hidden[2]``)."""


# ------------------------------------------------------------------------------------------------ files


def regular_file_size(path: str | Path) -> int:
    """The size of ``path`` when it is (or a symlink points at) a regular file.

    Raises:
        UntrustedFileError: missing, or not a regular file (a directory, a device, a FIFO, a socket).
    """
    try:
        info = os.stat(path)
    except OSError as err:
        raise UntrustedFileError(f"{Path(path).name}: cannot be read ({err.strerror or err}).") from err
    if not stat.S_ISREG(info.st_mode):
        raise UntrustedFileError(f"{Path(path).name}: not a regular file.")
    return info.st_size


def read_bytes(path: str | Path, max_bytes: int) -> bytes:
    """The content of a regular file of at most ``max_bytes`` bytes.

    The file is opened without blocking (a FIFO swapped in after the check cannot hang the server) and at most
    ``max_bytes + 1`` bytes are read, whatever its size says.

    Raises:
        UntrustedFileError: not a regular file, or larger than ``max_bytes``.
    """
    name = Path(path).name
    if regular_file_size(path) > max_bytes:
        raise UntrustedFileError(f"{name}: larger than {max_bytes:,} bytes, too large to be read.")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        raise UntrustedFileError(f"{name}: cannot be read ({err.strerror or err}).") from err
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UntrustedFileError(f"{name}: not a regular file.")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise UntrustedFileError(f"{name}: cannot be read ({err.strerror or err}).") from err
    finally:
        os.close(fd)
    if size > max_bytes:
        raise UntrustedFileError(f"{name}: larger than {max_bytes:,} bytes, too large to be read.")
    return b"".join(chunks)


def read_text(path: str | Path, max_bytes: int) -> str:
    """:func:`read_bytes` decoded as UTF-8.

    Raises:
        UntrustedFileError: see :func:`read_bytes`; or not UTF-8 text.
    """
    data = read_bytes(path, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UntrustedFileError(
            f"{Path(path).name}: not UTF-8 text ({err.reason} at byte {err.start})."
        ) from err


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not a JSON number")


def parse_json(text: str) -> Any:
    """``json.loads`` that rejects ``NaN``/``Infinity`` (not JSON) and nesting too deep to be ours.

    Raises:
        ValueError: not JSON.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as err:
        raise ValueError("nested too deeply") from err


def read_json_object(
    path: str | Path, max_bytes: int = MAX_JSON_BYTES, what: str = "JSON file"
) -> dict[str, Any]:
    """A regular file of at most ``max_bytes`` holding one JSON object.

    Raises:
        UntrustedFileError: ``"<name>: not a <what>: <why>"``.
    """
    name = Path(path).name
    try:
        data = parse_json(read_text(path, max_bytes))
    except UntrustedFileError as err:
        raise UntrustedFileError(f"{name}: not a {what}: {str(err).removeprefix(name + ': ')}") from err
    except ValueError as err:
        raise UntrustedFileError(f"{name}: not a {what}: not JSON ({err}).") from err
    if not isinstance(data, dict):
        raise UntrustedFileError(
            f"{name}: not a {what}: the top level is {type(data).__name__}, not an object."
        )
    return data


def inside(folder: str | Path, name: Any, what: str = "file") -> Path:
    """``folder / name`` for a plain file name written inside a file, checked to stay in ``folder``.

    Raises:
        UntrustedFileError: not a string, empty, a path with separators or ``..``, or resolving elsewhere.
    """
    if not isinstance(name, str) or not name or len(name) > 255:
        raise UntrustedFileError(f"the {what} name must be a non-empty file name, got {name!r:.80}.")
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise UntrustedFileError(f"the {what} {name!r:.80} is not a plain file name in its folder.")
    folder = Path(folder)
    path = folder / name
    try:
        if path.resolve().parent != folder.resolve():
            raise UntrustedFileError(f"the {what} {name!r:.80} resolves outside its folder.")
    except OSError as err:
        raise UntrustedFileError(f"the {what} {name!r:.80} cannot be resolved ({err}).") from err
    return path


# ------------------------------------------------------------------------------------------------ schema


@dataclass(frozen=True)
class Num:
    """A JSON number in [lo, hi] (finite, never a bool); ``integer`` demands an int; ``optional`` allows
    null."""

    lo: float = -math.inf
    hi: float = math.inf
    integer: bool = False
    optional: bool = False


@dataclass(frozen=True)
class Text:
    """A string of at most ``max_len`` characters, one of ``choices`` when given; ``optional`` allows null."""

    choices: tuple[str, ...] | None = None
    max_len: int = 1000
    optional: bool = False


@dataclass(frozen=True)
class Flag:
    """A JSON boolean; ``optional`` allows null."""

    optional: bool = False


@dataclass(frozen=True)
class ListOf:
    """A list of ``min_len``..``max_len`` items, each of schema ``item``; ``optional`` allows null."""

    item: Any
    max_len: int = 10_000
    min_len: int = 0
    optional: bool = False


@dataclass(frozen=True)
class MapOf:
    """An object with any string keys (at most ``max_len`` of them), each value of schema ``value``."""

    value: Any
    max_len: int = 1000
    optional: bool = False


@dataclass(frozen=True)
class Obj:
    """An object with the given ``fields`` (name -> schema); those in ``required`` must be there. Keys that
    are not in ``fields`` are dropped (``extra="drop"``), rejected (``"reject"``), kept as they are
    (``"keep"``: parts no page reads, bounded by the file's size cap) or kept when their value is
    a number, a string, a bool or null (``"scalars"``). ``check``, when given, sees the validated dict and
    raises ``SchemaError`` for rules across fields."""

    fields: Mapping[str, Any]
    required: frozenset[str] = field(default_factory=frozenset)
    extra: str = "drop"
    optional: bool = False
    check: Callable[[dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class AnyJSON:
    """Any JSON value (already bounded by the file's size cap); for free-form parts nothing reads."""

    optional: bool = True


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _fail(where: str, message: str) -> SchemaError:
    return SchemaError(f"{where or 'the file'} {message}")


def check(value: Any, schema: Any, where: str = "") -> Any:
    """Validate ``value`` (parsed JSON) against ``schema`` (:class:`Num`, :class:`Text`, :class:`Flag`,
    :class:`ListOf`, :class:`MapOf`, :class:`Obj`, :class:`AnyJSON`) and return the validated value (objects
    without their dropped keys; ints given for a float field stay ints).

    Raises:
        SchemaError: the first field that does not fit, named by its path (``training.history[3].val_elbo``).
    """
    if value is None:
        if getattr(schema, "optional", False):
            return None
        raise _fail(where, "is missing or null")
    if isinstance(schema, AnyJSON):
        return value
    if isinstance(schema, Num):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(where, f"must be a number, got {_kind(value)} {value!r:.40}")
        if schema.integer and not isinstance(value, int):
            raise _fail(where, f"must be a whole number, got {value!r:.40}")
        if not math.isfinite(value):
            raise _fail(where, f"must be finite, got {value!r}")
        if not schema.lo <= value <= schema.hi:
            raise _fail(where, f"must be between {schema.lo:g} and {schema.hi:g}, got {value!r:.40}")
        return value
    if isinstance(schema, Text):
        if not isinstance(value, str):
            raise _fail(where, f"must be a string, got {_kind(value)} {value!r:.40}")
        if len(value) > schema.max_len:
            raise _fail(where, f"is longer than {schema.max_len:,} characters")
        if schema.choices is not None and value not in schema.choices:
            raise _fail(where, f"must be one of {list(schema.choices)}, got {value!r:.40}")
        return value
    if isinstance(schema, Flag):
        if not isinstance(value, bool):
            raise _fail(where, f"must be true or false, got {_kind(value)} {value!r:.40}")
        return value
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            raise _fail(where, f"must be a list, got {_kind(value)}")
        if not schema.min_len <= len(value) <= schema.max_len:
            raise _fail(where, f"must have {schema.min_len} to {schema.max_len:,} items, got {len(value):,}")
        return [check(item, schema.item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            raise _fail(where, f"must be an object, got {_kind(value)}")
        if len(value) > schema.max_len:
            raise _fail(where, f"has more than {schema.max_len:,} keys")
        return {str(k): check(v, schema.value, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(schema, Obj):
        if not isinstance(value, dict):
            raise _fail(where, f"must be an object, got {_kind(value)} {value!r:.40}")
        out: dict[str, Any] = {}
        for key in sorted(schema.required):
            if key not in value:
                raise _fail(f"{where}.{key}" if where else key, "is missing")
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if key in schema.fields:
                out[key] = check(item, schema.fields[key], path)
            elif schema.extra == "reject":
                raise _fail(path, "is not a known field")
            elif schema.extra == "keep":
                out[key] = item
            elif schema.extra == "scalars":
                if item is not None and not isinstance(item, bool | int | float | str):
                    raise _fail(path, f"must be a number, a string or a bool, got {_kind(item)}")
                if isinstance(item, float) and not math.isfinite(item):
                    raise _fail(path, f"must be finite, got {item!r}")
                if isinstance(item, str) and len(item) > 1000:
                    raise _fail(path, "is longer than 1,000 characters")
                out[key] = item
        if schema.check is not None:
            schema.check(out)
        return out
    raise TypeError(f"unknown schema {schema!r}")


def walk_fields(schema: Any, prefix: Sequence[str | int] = ()) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every field path of ``schema`` (objects' fields, lists' first item), with its schema; for tests that
    generate malformed files field by field."""
    found: list[tuple[tuple[str | int, ...], Any]] = []
    if isinstance(schema, Obj):
        for key, sub in schema.fields.items():
            found.append(((*prefix, key), sub))
            found.extend(walk_fields(sub, (*prefix, key)))
    elif isinstance(schema, ListOf):
        found.extend(walk_fields(schema.item, (*prefix, 0)))
    return found
