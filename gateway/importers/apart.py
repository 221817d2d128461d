"""enrollments.csv parsed by a process of its own, on another core, while the import goes on
(SQLite's road, large files).

`parse_apart` starts `python -m gateway.importers.apart` once orgs.csv is imported, with a
scratch file that no path names (created and unlinked at once, its descriptor inherited), in
which the import first writes what the process needs of the run (`_Plan`). The process writes
after it the identity of the file it reads (`Folder.identity`), then one pickle per batch of
`enrollments._BatchParser` with the progress calls made while reading it, then None, or the
error of a bad row in place of a batch; it exits with 0 only when all of it is written, and as
soon as it sees that the import's process has gone. When the import reaches enrollments it
waits for the process and reads the batches (`Apart.reader`) only when it exited with 0 and
read the very file the import would read now; else it parses the file itself.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, cast

import sqlalchemy as sa

from gateway.importers.enrollments import _REQUIRED, _Batch, _BatchParser
from gateway.importers.manifest import Manifest
from gateway.importers.reading import Folder, OneRosterError, Progress, Warnings
from gateway.importers.run import Org, Run

PARSE_APART_FROM = 6 * 1024 * 1024
"""From this size (bytes), on SQLite and with a second core, enrollments.csv is parsed by a
process of its own (`parse_apart`), started once orgs.csv is imported: it works on another core
while this process imports the files before it. In a worker thread here, the 1.3 s of Python
that 200,000 rows take held the GIL, which the staging's own statements wait for. The process's
start costs about a second of CPU (its imports, on the other core): the import benchmark was
0-15% faster with it at 100,000 enrollments (8 MB), 4-39% at 200,000, and no faster at 60,000
(5 MB)."""

FILE = "enrollments.csv"

_EXITED_PARENT_GONE = 5
_EXITED_FILE_CHANGED = 4
_EXITED_OTHERWISE = 3


@dataclass(frozen=True)
class _Plan:
    """What the process needs of the run to parse as `_stage` would (the orgs are imported by
    then, and nothing after them changes these), and the import's process id."""

    path: str
    manifest: Manifest
    source_id: str
    source_name: str
    today: date
    batch_size: int
    district_id: str
    orgs: dict[str, Org]
    db_schools: set[str]
    stored_orgs: dict[str, Org]
    orgs_remembered: bool
    parent: int

    def run(self, folder: Folder, progress: Progress) -> Run:
        """A Run that parses as the import's does; no connection, no store (not used)."""
        return Run(
            conn=cast(Any, None),
            store=cast(Any, None),
            folder=folder,
            manifest=self.manifest,
            warnings=Warnings(),  # the file's header is checked by the import itself
            source_id=self.source_id,
            source_name=self.source_name,
            today=self.today,
            batch_size=self.batch_size,
            progress=progress,
            district_id=self.district_id,
            orgs=self.orgs,
            db_schools=self.db_schools,
            stored_orgs=self.stored_orgs,
            orgs_remembered=self.orgs_remembered,
        )


@dataclass
class _Heard:
    """A Progress that records what it hears, to be told again in the import's process."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def start(self, name: str, total_bytes: int) -> None:
        self.calls.append(("start", (name, total_bytes)))

    def advance(self, done_bytes: int) -> None:
        self.calls.append(("advance", (done_bytes,)))

    def finish(self) -> None:
        self.calls.append(("finish", ()))

    def taken(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The calls heard since the last time, forgotten here."""
        calls, self.calls = self.calls, []
        return calls


@dataclass(frozen=True)
class _Failed:
    """A OneRosterError, as the process writes it (the exception itself does not unpickle)."""

    reason: str
    file: str
    line: int | None
    column: str | None


def _parse_into(plan: _Plan, out: IO[bytes]) -> int:
    """Parse the plan's enrollments.csv into `out` (see the module); the exit code."""
    folder = Folder(Path(plan.path))
    try:
        read = folder.identity(FILE)
        pickle.dump(read, out, pickle.HIGHEST_PROTOCOL)
        heard = _Heard()
        run = plan.run(folder, heard)
        csv_file, cells = run.open("enrollments", ("sourcedId", *_REQUIRED))
        parse_next = _BatchParser(run, csv_file, cells, run.mode("enrollments"))
        frame: _Batch | _Failed | None
        try:
            while (frame := parse_next()) is not None:
                if os.getppid() != plan.parent:
                    return _EXITED_PARENT_GONE
                pickle.dump((heard.taken(), frame), out, pickle.HIGHEST_PROTOCOL)
        except OneRosterError as error:
            frame = _Failed(error.reason, error.file, error.line, error.column)
            parse_next.close()  # as the import's, once it has given up the file
        pickle.dump((heard.taken(), frame), out, pickle.HIGHEST_PROTOCOL)
        out.flush()
        return 0 if folder.identity(FILE) == read else _EXITED_FILE_CHANGED
    finally:
        folder.close()


def main() -> None:
    """The process: `python -m gateway.importers.apart FD`, FD the scratch file, which holds
    the plan at its start."""
    with os.fdopen(int(sys.argv[1]), "r+b") as scratch:
        try:
            scratch.seek(0)
            plan = pickle.load(scratch)  # noqa: S301 - the import wrote it; no path names the file
            scratch.truncate(scratch.tell())
            code = _parse_into(plan, scratch)
        except Exception:
            code = _EXITED_OTHERWISE  # the import parses the file itself, and says what is wrong
    sys.exit(code)


@dataclass
class Apart:
    """enrollments.csv being parsed by a process of its own (`parse_apart`); `close` ends the
    process and the scratch file."""

    process: subprocess.Popen[bytes]
    scratch: IO[bytes]
    folder: Folder
    start: int
    """Where the process's part of the scratch file starts (after the plan)."""

    def wait(self) -> bool:
        """Wait for the process to end (blocking: call it in a worker thread); whether it parsed
        all of the file that the import would read now (the same file, unchanged since)."""
        if self.process.wait() != 0:
            return False
        self.scratch.seek(self.start)
        try:
            read = pickle.load(self.scratch)  # noqa: S301 - our own process's; no path names it
            return bool(read == self.folder.identity(FILE))
        except (OSError, EOFError, pickle.UnpicklingError):
            return False

    def reader(self, progress: Progress | None) -> Callable[[], _Batch | None]:
        """A function that gives the written batches one by one as `_BatchParser`'s does (the
        error of a bad row raised in its place, None after the last), `progress` told what the
        reading of each told the process; only after `wait` said yes."""
        scratch = self.scratch

        def read_next() -> _Batch | None:
            calls, frame = pickle.load(scratch)  # noqa: S301 - as in `wait`
            if progress is not None:
                for method, args in calls:
                    getattr(progress, method)(*args)
            if isinstance(frame, _Failed):
                raise OneRosterError(
                    frame.reason, file=frame.file, line=frame.line, column=frame.column
                )
            return cast(_Batch | None, frame)

        return read_next

    def close(self) -> None:
        """End the process (when the import stopped before it was needed) and close the scratch
        file (it goes with its last descriptor)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.scratch.close()


def _cores() -> int:
    """How many cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def parse_apart(run: Run) -> Apart | None:
    """Start parsing enrollments.csv in a process of its own, when the file is large enough for
    that to pay (`PARSE_APART_FROM`), the road is SQLite's and a second core is there to run it;
    else None (`_stage` parses it in a worker thread, as it goes), also when the process cannot
    be started. The batches wait in a scratch file beside the database (some 160 bytes per
    row), which goes with the import."""
    if (
        run.conn.dialect.name != "sqlite"
        or run.mode("enrollments") == "absent"
        or FILE not in run.folder.names()
        or run.folder.size(FILE) < PARSE_APART_FROM
        or _cores() < 2
    ):
        return None
    plan = _Plan(
        path=str(run.folder.path),
        manifest=run.manifest,
        source_id=run.source_id,
        source_name=run.source_name,
        today=run.today,
        batch_size=run.batch_size,
        district_id=run.district_id,
        orgs=run.orgs,
        db_schools=run.db_schools,
        stored_orgs=run.stored_orgs,
        orgs_remembered=run.orgs_remembered,
        parent=os.getpid(),
    )
    # Beside the database, not in /tmp (often kept in memory); unlinked at once.
    database = sa.make_url(str(run.conn.engine.url)).database
    directory = None
    if database not in (None, "", ":memory:"):
        directory = str(Path(database).resolve().parent)
    try:
        handle, name = tempfile.mkstemp(prefix="gateway-enrollments-", dir=directory)
    except OSError:
        return None
    os.unlink(name)
    scratch = os.fdopen(handle, "w+b")
    try:
        pickle.dump(plan, scratch, pickle.HIGHEST_PROTOCOL)
        scratch.flush()
        start = scratch.tell()
        process = subprocess.Popen(  # noqa: S603 - this Python, this package's module
            [sys.executable, "-m", "gateway.importers.apart", str(handle)],
            pass_fds=(handle,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not interrupted by the terminal's Ctrl-C: `close` ends it
        )
    except OSError:
        scratch.close()
        return None
    return Apart(process, scratch, run.folder, start)


if __name__ == "__main__":
    # Run as the package's module, not as __main__: what it pickles must unpickle in the import.
    from gateway.importers.apart import main as run_as_module

    run_as_module()
