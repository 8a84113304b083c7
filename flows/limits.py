"""Resource limits for hostile or careless input, and the guarded reads that enforce them.

Every limit is checked before the expensive step it protects: a file's size before
it is read, its decompressed size while it is inflated (a stream with a cap), its
column count before the header is split, its row count before rows are parsed,
JSON nesting before a line is parsed, and a YAML document's size, anchors and
aliases before it becomes Python objects. Going over a limit refuses the file with
the limit and its setting named (``ABS_PIPELINE_<NAME>``).

Paths: landing files and deal files are read only as regular files inside the data
root. A symbolic link, a device, a FIFO, a socket or a directory with a file-like
name is refused by name and never opened (``os.lstat`` decides, and the file is
opened with ``O_NOFOLLOW`` so a link swapped in afterwards is refused as well).
"""

from __future__ import annotations

import os
import re
import stat
import zlib
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Final

from flows.errors import InputRejectedError, SettingsError

MiB: Final = 1 << 20


@dataclass(frozen=True)
class Limits:
    """How much one input may hold; the defaults keep any single file well under 1 GiB."""

    max_file_bytes: int = 256 * MiB
    """A landing file's size on disk."""
    max_decompressed_bytes: int = 256 * MiB
    """A compressed landing file's size once inflated."""
    max_columns: int = 256
    """Columns in a landing file's header."""
    max_field_bytes: int = 4096
    """Bytes of one value of a landing file."""
    max_rows: int = 5_000_000
    """Rows of one landing file."""
    max_json_depth: int = 16
    """Nesting of arrays and objects in one JSON Lines record."""
    max_yaml_bytes: int = 1 * MiB
    """Size of a deal or mapping YAML file."""
    max_yaml_aliases: int = 32
    """Aliases (``*name``) in one YAML document."""
    max_yaml_nodes: int = 100_000
    """Nodes of a YAML document with every alias expanded (stops "billion laughs")."""
    max_yaml_depth: int = 32
    """Nesting of sequences and mappings in a YAML document."""
    min_date: date = date(1990, 1, 1)
    """The earliest plausible date of a loan, payment, pool event or deal."""
    max_date: date = date(2100, 12, 31)
    """The latest plausible date."""

    @staticmethod
    def setting(name: str) -> str:
        """The environment variable that sets the limit ``name``."""
        return f"ABS_PIPELINE_{name.upper()}"

    def describe(self, name: str) -> str:
        """``the limit max_rows = 5000000 (raise ABS_PIPELINE_MAX_ROWS if the file is genuine)``."""
        return (
            f"the limit {name} = {getattr(self, name)} "
            f"(raise {self.setting(name)} if the file is genuine)"
        )


DEFAULT_LIMITS: Final = Limits()
LIMIT_NAMES: Final = tuple(f.name for f in fields(Limits))


def current_limits() -> Limits:
    """The limits in force: ``ABS_PIPELINE_*`` settings over the defaults.

    Raises:
        SettingsError: naming the setting whose value is not valid.
    """
    from pydantic import ValidationError  # noqa: PLC0415 (settings import this module)

    from flows.settings import Settings  # noqa: PLC0415

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        raise SettingsError(first["msg"], where=Limits.setting(name)) from exc
    limits = Limits(**{name: getattr(settings, name) for name in LIMIT_NAMES})
    if limits.min_date > limits.max_date:
        raise SettingsError(
            f"min_date {limits.min_date} is after max_date {limits.max_date}",
            where=Limits.setting("min_date"),
        )
    return limits


# -- paths -----------------------------------------------------------------------------------

_KINDS: Final = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refusal(path: Path, root: Path, *, directory: bool = False) -> str | None:
    """Why ``path`` may not be read, or None for a regular file (``directory``: a real
    directory) inside ``root``.

    Decided from ``lstat`` alone: nothing is opened and no link is followed. The
    folders between ``root`` and ``path`` must be real directories too.
    """
    try:
        relative = path.relative_to(root)
    except ValueError:
        return "outside the data root"
    if ".." in relative.parts:
        return "outside the data root"
    current = root
    for part in relative.parts[:-1]:
        current = current / part
        try:
            mode = current.lstat().st_mode
        except OSError as exc:
            return f"folder {part} cannot be examined ({exc.strerror})"
        if not stat.S_ISDIR(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
            return f"folder {current.relative_to(root).as_posix()} is {kind}, not read"
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    return _kind_refusal(mode, directory=directory)


def _kind_refusal(mode: int, *, directory: bool) -> str | None:
    if directory and stat.S_ISDIR(mode):
        return None
    if not directory and stat.S_ISREG(mode):
        return None
    wanted = "a directory" if directory else "a regular file"
    kind = next((kind for test, kind in _KINDS if test(mode)), "something else")
    return f"{kind}, not {wanted}: refused and not opened (deliver the {wanted[2:]} itself)"


def read_regular(path: Path, root: Path, max_bytes: int, limit_name: str, limits: Limits) -> bytes:
    """The bytes of a regular file inside ``root``, at most ``max_bytes`` of them.

    Raises:
        InputRejectedError: the file is not a regular file inside ``root``, is larger
            than the limit (checked before reading), or cannot be read.
    """
    where = _shown(path, root)
    reason = refusal(path, root)
    if reason is not None:
        raise InputRejectedError(reason, where=where)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputRejectedError(f"cannot be opened ({exc.strerror})", where=where) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputRejectedError("not a regular file: refused", where=where)
        if info.st_size > max_bytes:
            raise InputRejectedError(
                f"{info.st_size} bytes is over {limits.describe(limit_name)}", where=where
            )
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise InputRejectedError(
                    f"grew past {limits.describe(limit_name)} while being read", where=where
                )
    except OSError as exc:
        raise InputRejectedError(f"cannot be read ({exc.strerror})", where=where) from exc
    finally:
        os.close(fd)
    return b"".join(chunks)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


# -- content ---------------------------------------------------------------------------------


class LimitExceededError(ValueError):
    """Content over a limit; the message names the limit and its setting."""


_NAMED_LIMIT: Final = re.compile(r"the limit (\w+)")


def limit_named(message: str) -> str | None:
    """The limit an error message names (as :meth:`Limits.describe` writes it), if any."""
    found = _NAMED_LIMIT.search(message)
    return found[1] if found else None


def gunzip_capped(data: bytes, limits: Limits) -> bytes:
    """Inflate every gzip member of ``data``, stopping as soon as the output passes the cap.

    Raises:
        LimitExceededError: the output would pass ``max_decompressed_bytes``.
        ValueError: not a gzip stream, or one cut short (naming the line it ends in).
    """
    cap = limits.max_decompressed_bytes
    out: list[bytes] = []
    total = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = rest
        while True:
            try:
                chunk = inflater.decompress(pending, min(1 << 20, cap + 1 - total))
            except zlib.error as exc:
                raise ValueError(f"not a valid gzip stream ({exc})") from exc
            out.append(chunk)
            total += len(chunk)
            if total > cap:
                raise LimitExceededError(
                    f"decompresses to over {limits.describe('max_decompressed_bytes')}"
                )
            pending = inflater.unconsumed_tail
            if not pending or inflater.eof:
                break
        if not inflater.eof:
            line = sum(c.count(b"\n") for c in out) + 1
            raise ValueError(f"truncated gzip stream: the data ends inside line {line}")
        rest = inflater.unused_data
    return b"".join(out)


_JSON_STRING: Final = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_JSON_STRUCTURE: Final = re.compile(r"[\[\]{}:\n]")


def json_shape(text: str) -> tuple[int, int]:
    """How deep arrays and objects nest, and how many keys, in the worst line of JSON Lines text.

    Linear and without recursion (strings are cut out first), so it is safe to run
    on any input before the parser.
    """
    depth = deepest = keys = most_keys = 0
    for char in _JSON_STRUCTURE.findall(_JSON_STRING.sub("", text)):
        if char == "\n":
            depth = keys = 0
        elif char == ":":
            keys += 1
            most_keys = max(most_keys, keys)
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest, most_keys
