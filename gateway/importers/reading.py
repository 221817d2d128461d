"""Reading a OneRoster CSV folder or zip: the files, streamed rows with their line numbers, and
the errors and warnings that name the file, line and column they are about."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn, Protocol

from gateway.errors import ValidationFailed

# A OneRoster cell may hold a long list of sourcedIds; the csv module's default limit is 128 KiB.
csv.field_size_limit(16 * 1024 * 1024)

MANIFEST = "manifest.csv"


class OneRosterError(ValidationFailed):
    """A folder that cannot be imported; the message names the file, line and column."""

    def __init__(
        self, message: str, *, file: str, line: int | None = None, column: str | None = None
    ) -> None:
        where = file
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.column = column
        self.reason = message


class Warnings:
    """Tolerable oddities, at most `limit` messages per category plus a count of the rest."""

    def __init__(self, limit: int = 10) -> None:
        self.limit = limit
        self._messages: list[str] = []
        self._counts: dict[str, int] = {}
        self._shown: dict[str, int] = {}
        self._keys: set[tuple[str, object]] = set()

    def add(
        self, category: str, message: str, *, key: object = None, repeats: bool = False
    ) -> None:
        """Record `message`; a repeated `key` within a category is recorded once, and with
        `repeats` (the same bad value on many rows) counted with the rest (`as_list`)."""
        if key is not None:
            if (category, key) in self._keys:
                if repeats:
                    self._counts[category] += 1
                return
            if len(self._keys) < 100_000:
                self._keys.add((category, key))
        self._counts[category] = self._counts.get(category, 0) + 1
        shown = self._shown.get(category, 0)
        if shown < self.limit:
            self._shown[category] = shown + 1
            self._messages.append(message)

    def as_list(self) -> list[str]:
        """The recorded messages, then one line per category with more than it shows."""
        overflow = [
            f"{count - self._shown.get(category, 0)} more warnings like the above ({category})"
            for category, count in self._counts.items()
            if count > self._shown.get(category, 0)
        ]
        return [*self._messages, *overflow]


class DeferredWarnings(Warnings):
    """Warnings recorded away from the import (a batch read ahead in a worker thread), to be
    replayed into its Warnings in order when the batch's turn comes."""

    def __init__(self) -> None:
        super().__init__()
        self._calls: list[tuple[str, str, object, bool]] = []

    def add(
        self, category: str, message: str, *, key: object = None, repeats: bool = False
    ) -> None:
        """Record the call."""
        self._calls.append((category, message, key, repeats))

    def recorded(self) -> bool:
        """Whether any call was recorded."""
        return bool(self._calls)

    def replay(self, into: Warnings) -> None:
        """Make the recorded calls on `into`."""
        for category, message, key, repeats in self._calls:
            into.add(category, message, key=key, repeats=repeats)


class Progress(Protocol):
    """Receives how far the reading of each file has got (a terminal progress bar)."""

    def start(self, name: str, total_bytes: int) -> None: ...

    def advance(self, done_bytes: int) -> None: ...

    def finish(self) -> None: ...


class Folder:
    """The CSV files of a OneRoster export: a directory, or a zip file (as exchanged)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._zip_names: dict[str, zipfile.ZipInfo] = {}
        self._zip_entries: list[str] = []
        if path.is_dir():
            return
        if path.is_file() and zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            infos = [
                i
                for i in self._zip.infolist()
                if not i.is_dir() and not i.filename.startswith("__MACOSX/")  # macOS's forks
            ]
            try:
                prefix = _export_in_zip(path, [i.filename for i in infos])
            except ValidationFailed:
                self._zip.close()
                raise
            inside = [
                (i.filename[len(prefix) :], i) for i in infos if i.filename.startswith(prefix)
            ]
            self._zip_names = {name: i for name, i in inside if "/" not in name}
            self._zip_entries = sorted(
                {name if "/" not in name else name.split("/", 1)[0] + "/" for name, _ in inside}
            )
            return
        if not path.exists():
            raise ValidationFailed(f"{path} does not exist; pass a folder of OneRoster CSV files")
        raise ValidationFailed(f"{path} is neither a folder nor a zip file of OneRoster CSV files")

    def names(self) -> set[str]:
        """The names of the files at the top of the folder."""
        if self._zip is not None:
            return set(self._zip_names)
        return {p.name for p in self.path.iterdir() if p.is_file()}

    def entries(self) -> list[str]:
        """Everything at the top of the folder, sorted; sub-folders end with a slash."""
        if self._zip is not None:
            return list(self._zip_entries)
        return sorted(p.name + "/" if p.is_dir() else p.name for p in self.path.iterdir())

    def size(self, name: str) -> int:
        """The size of file `name` in bytes (uncompressed)."""
        if self._zip is not None:
            return self._zip_names[name].file_size
        return (self.path / name).stat().st_size

    def identity(self, name: str) -> tuple[int, int, int, int]:
        """What reading file `name` reads now, to tell whether another reading read the same
        bytes: the zip file this folder holds open, or the file itself (its device, inode, size
        and time of change)."""
        if self._zip is not None and self._zip.fp is not None:
            found = os.fstat(self._zip.fp.fileno())
        else:
            found = (self.path / name).stat()
        return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns

    def open(self, name: str) -> IO[bytes]:
        """File `name`, opened for binary reading."""
        if self._zip is not None:
            return self._zip.open(self._zip_names[name])
        return (self.path / name).open("rb")

    def close(self) -> None:
        """Release the zip file, if any."""
        if self._zip is not None:
            self._zip.close()


def _export_in_zip(path: Path, names: list[str]) -> str:
    """Where in the zip file at `path` (its files' `names`) the export is, as a prefix ("" for
    its top). Exports are zipped flat or inside one folder: the folder of the manifest; without
    one, the top when files are there, else the one folder everything is in (`zip -r x.zip x`).
    Two manifests are two exports, and which one was meant is not for the import to guess."""
    manifests = sorted(n.removesuffix(MANIFEST) for n in names if n.rsplit("/", 1)[-1] == MANIFEST)
    if len(manifests) > 1:
        shown = " and ".join(prefix or "its top" for prefix in manifests[:3])
        if len(manifests) > 3:
            shown += f" and {len(manifests) - 3} more"
        raise ValidationFailed(
            f"{path} holds more than one OneRoster export (a {MANIFEST} in {shown}); zip one "
            "export alone, or unzip it and import the folder of the one you mean"
        )
    if manifests:
        return manifests[0]
    folders = {name.split("/", 1)[0] + "/" if "/" in name else "" for name in names}
    return folders.pop() if len(folders) == 1 else ""


@dataclass(slots=True)
class Row:
    """One data row: its first physical line in the file and its cells by column name."""

    line: int
    cells: dict[str, str]


class CsvFile:
    """A CSV file of the folder, read as a stream of batches of rows."""

    def __init__(
        self,
        folder: Folder,
        name: str,
        *,
        required: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> None:
        self.name = name
        self._folder = folder
        self._progress = progress
        with self._open() as (reader, _binary):
            self.header = self._read_header(reader)
        missing = [c for c in required if c not in self.header]
        if missing:
            raise OneRosterError(
                f"missing required column '{missing[0]}' "
                f"(the header has: {', '.join(self.header)})",
                file=name,
                line=1,
                column=missing[0],
            )

    def has(self, column: str) -> bool:
        """Whether the header has `column`."""
        return column in self.header

    def batches(self, size: int) -> Iterator[list[Row]]:
        """The data rows, `size` at a time, read lazily (memory does not grow with the file)."""
        header = self.header
        for batch in self.records(size):
            yield [Row(line, dict(zip(header, record, strict=True))) for line, record in batch]

    def records(self, size: int) -> Generator[list[tuple[int, list[str]]], None, None]:
        """The data rows as `(line, cells in header order)`, `size` at a time, read lazily:
        the cheap form, for a pass that reads its cells by position."""
        progress = self._progress
        if progress is not None:
            progress.start(self.name, self._folder.size(self.name))
        try:
            with self._open() as (reader, binary):
                header = self._read_header(reader)
                width = len(header)
                batch: list[tuple[int, list[str]]] = []
                line = reader.line_num + 1
                try:
                    for record in reader:
                        start, line = line, reader.line_num + 1
                        if len(record) != width:
                            if not any(cell.strip() for cell in record):
                                continue
                            raise OneRosterError(
                                f"the row has {len(record)} fields but the header has {width}",
                                file=self.name,
                                line=start,
                            )
                        if "\x00" in "".join(record):
                            raise OneRosterError(
                                "the cell holds a NUL character (U+0000), which no text column "
                                "can store; remove it",
                                file=self.name,
                                line=start,
                                column=header[next(i for i, c in enumerate(record) if "\x00" in c)],
                            )
                        batch.append((start, record))
                        if len(batch) >= size:
                            yield batch
                            batch = []
                            if progress is not None:
                                progress.advance(binary.tell())
                except csv.Error as exc:
                    raise OneRosterError(
                        f"not valid CSV ({exc})", file=self.name, line=line
                    ) from None
                except UnicodeDecodeError:
                    self._locate_bad_bytes()
                if progress is not None:
                    progress.advance(binary.tell())
                if batch:
                    yield batch
        finally:
            if progress is not None:
                progress.finish()

    def _read_header(self, reader: Iterator[list[str]]) -> list[str]:
        try:
            header = [cell.strip() for cell in next(reader)]
        except StopIteration:
            raise OneRosterError(
                "the file is empty; it needs a header row", file=self.name
            ) from None
        except csv.Error as exc:
            raise OneRosterError(f"unreadable header ({exc})", file=self.name, line=1) from None
        except UnicodeDecodeError:
            self._locate_bad_bytes()
        seen: set[str] = set()
        for column in header:
            if column in seen:
                raise OneRosterError(
                    "the column appears twice in the header", file=self.name, line=1, column=column
                )
            seen.add(column)
        return header

    def _locate_bad_bytes(self) -> NoReturn:
        """Raise for the first cell holding bytes that are not UTF-8 (read again, leniently)."""
        with self._folder.open(self.name) as binary:
            text = io.TextIOWrapper(
                binary, encoding="utf-8-sig", errors="surrogateescape", newline=""
            )
            reader = csv.reader(text)
            header: list[str] = []
            line = 1
            for record in reader:
                for index, cell in enumerate(record):
                    try:
                        cell.encode()
                    except UnicodeEncodeError as exc:
                        raise OneRosterError(
                            f"not UTF-8 text (byte 0x{ord(cell[exc.start]) - 0xDC00:02x} at "
                            f"character {exc.start + 1} of the cell)",
                            file=self.name,
                            line=line,
                            column=header[index].strip() if index < len(header) else None,
                        ) from None
                header = header or record
                line = reader.line_num + 1
        raise OneRosterError("not UTF-8 text", file=self.name)

    def _open(self) -> _Opened:
        return _Opened(self._folder.open(self.name))


class _Opened:
    """A csv reader over a binary stream, closing the stream on exit."""

    def __init__(self, binary: IO[bytes]) -> None:
        self.binary = binary
        self.text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")

    def __enter__(self) -> tuple[_CsvReader, IO[bytes]]:
        return csv.reader(self.text), self.binary

    def __exit__(self, *exc: object) -> None:
        self.text.close()


class _CsvReader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...
