"""Benchmark of the OneRoster import: generate a folder of a given size, import it into a fresh
SQLite file, and print rows per second and peak memory.

    .venv/bin/python benchmarks/import_oneroster.py --users 100000 --enrollments 1000000
    .venv/bin/python benchmarks/import_oneroster.py --sizes 20000/200000 100000/1000000

With --sizes each size runs in its own process (so that each peak RSS is that size's alone) and
a table compares them: memory that stays flat as the files grow shows as equal peaks.

With --repeat N the generated folder is imported N times, each time into a new database file,
and the median and the best of the N runs are printed beside each run: on a shared machine the
speed of one run moves by a quarter or more from minute to minute. Peak RSS is then the largest
of the runs; the parsing process's can include this process's own at the moment it was started
(forked before it runs the parser), as large as the import before it.

The folder is a deterministic OneRoster 1.2 bulk export (or 1.1 with --version 1.1): one
district, a school per 1,000 users, a year and two semesters, 20 courses per school, a class per
25 enrollments, and users that are 85% students (with demographics), 5% teachers and 10%
guardians (each the agent of one student). --reimport also times a second import of the same
folder, which must change nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.db import engine_for
from gateway.importers.oneroster import ImportResult, import_oneroster


def _write(folder: Path, stem: str, header: list[str], rows: Iterator[list[str]]) -> int:
    count = 0
    with (folder / f"{stem}.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def generate(folder: Path, users: int, enrollments: int, version: str, seed: int = 7) -> int:
    """Write the folder; return how many data rows it holds."""
    rng = random.Random(seed)
    schools = max(1, users // 1000)
    courses = schools * 20
    classes = max(1, enrollments // 25)
    teachers = max(1, users // 20)
    guardians = users // 10
    students = max(1, users - teachers - guardians)
    modern = version == "1.2"

    def school(n: int) -> str:
        return f"S{n % schools:05d}"

    def student_id(n: int) -> str:
        return f"ST{n:07d}"

    def teacher_id(n: int) -> str:
        return f"TE{n:06d}"

    def guardian_id(n: int) -> str:
        return f"GU{n:06d}"

    meta = ["active", "2025-01-15T08:00:00Z"]
    total = _write(
        folder,
        "orgs",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "name",
            "type",
            "identifier",
            "parentSourcedId",
        ],
        iter(
            [["D1", *meta, "Benchmark District", "district", "NCES-1", ""]]
            + [
                [school(n), *meta, f"School {n}", "school", f"NCES-{n + 2}", "D1"]
                for n in range(schools)
            ]
        ),
    )
    total += _write(
        folder,
        "academicSessions",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "type",
            "startDate",
            "endDate",
            "parentSourcedId",
            "schoolYear",
        ],
        iter(
            [
                ["Y", *meta, "2024-2025", "schoolYear", "2024-08-15", "2025-06-15", "", "2025"],
                ["F", *meta, "Fall", "semester", "2024-08-15", "2024-12-20", "Y", "2025"],
                ["W", *meta, "Spring", "semester", "2025-01-06", "2025-06-15", "Y", "2025"],
            ]
        ),
    )
    total += _write(
        folder,
        "courses",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "schoolYearSourcedId",
            "title",
            "courseCode",
            "grades",
            "orgSourcedId",
            "subjects",
            "subjectCodes",
        ],
        (
            [f"C{n:06d}", *meta, "Y", f"Course {n}", f"CC{n}", "09,10", school(n), "Math", ""]
            for n in range(courses)
        ),
    )
    total += _write(
        folder,
        "classes",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
            "subjects",
            "subjectCodes",
            "periods",
        ],
        (
            [
                f"K{n:07d}",
                *meta,
                f"Class {n}",
                "09",
                f"C{n % courses:06d}",
                f"K{n}",
                "scheduled",
                f"Room {n % 300}",
                school(n % courses),
                "F" if n % 2 else "W",
                "Math",
                "",
                str(n % 8),
            ]
            for n in range(classes)
        ),
    )

    def people() -> Iterator[tuple[str, str, str, str]]:
        for n in range(students):
            agent = guardian_id(n) if n < guardians else ""
            yield student_id(n), "student", school(n), agent
        for n in range(teachers):
            yield teacher_id(n), "teacher", school(n), ""
        for n in range(guardians):
            yield guardian_id(n), "parent" if n % 3 else "guardian", school(n), ""

    header = ["sourcedId", "status", "dateLastModified", "enabledUser"]
    header += [] if modern else ["orgSourcedIds", "role"]
    header += [
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ]
    header += (
        [
            "userMasterIdentifier",
            "preferredGivenName",
            "preferredMiddleName",
            "preferredFamilyName",
            "primaryOrgSourcedId",
            "pronouns",
        ]
        if modern
        else []
    )

    def user_rows() -> Iterator[list[str]]:
        for sid, role, org, agent in people():
            row = [sid, *meta, "true"]
            row += [] if modern else [org, role]
            row += [
                sid.lower(),
                f"{{LDAP:{sid.lower()}}}",
                f"Given{sid}",
                f"Family{sid}",
                "",
                sid[2:],
                f"{sid.lower()}@example.org",
                "",
                "",
                agent,
                "09" if role == "student" else "",
                "",
            ]
            row += ["", "", "", "", org, ""] if modern else []
            yield row

    total += _write(folder, "users", header, user_rows())
    if modern:
        total += _write(
            folder,
            "roles",
            [
                "sourcedId",
                "status",
                "dateLastModified",
                "userSourcedId",
                "roleType",
                "role",
                "beginDate",
                "endDate",
                "orgSourcedId",
                "userProfileSourcedId",
            ],
            (
                [f"R{sid}", *meta, sid, "primary", role, "", "", org, ""]
                for sid, role, org, _ in people()
            ),
        )
    total += _write(
        folder,
        "demographics",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "birthDate",
            "sex",
            "americanIndianOrAlaskaNative",
            "asian",
            "blackOrAfricanAmerican",
            "nativeHawaiianOrOtherPacificIslander",
            "white",
            "demographicRaceTwoOrMoreRaces",
            "hispanicOrLatinoEthnicity",
            "countryOfBirthCode",
            "stateOfBirthAbbreviation",
            "cityOfBirth",
            "publicSchoolResidenceStatus",
        ],
        (
            [
                student_id(n),
                *meta,
                f"2010-{1 + n % 12:02d}-{1 + n % 28:02d}",
                rng.choice(("female", "male")),
                "false",
                rng.choice(("true", "false")),
                "false",
                "false",
                rng.choice(("true", "false")),
                "false",
                rng.choice(("true", "false")),
                "US",
                "OR",
                "Portland",
                "",
            ]
            for n in range(students)
        ),
    )

    def enrollment_rows() -> Iterator[list[str]]:
        for n in range(enrollments):
            class_n = n % classes
            klass, org = f"K{class_n:07d}", school(class_n % courses)
            if n < classes:
                user, role, primary = teacher_id(class_n % teachers), "teacher", "true"
            else:
                user, role, primary = student_id(rng.randrange(students)), "student", "false"
            yield [f"E{n:08d}", *meta, klass, org, user, role, primary, "", ""]

    total += _write(
        folder,
        "enrollments",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
            "primary",
            "beginDate",
            "endDate",
        ],
        enrollment_rows(),
    )
    stems = [
        "orgs",
        "academicSessions",
        "courses",
        "classes",
        "users",
        "demographics",
        "enrollments",
    ] + (["roles"] if modern else [])
    _write(
        folder,
        "manifest",
        ["propertyName", "value"],
        iter(
            [["manifest.version", "1.0"], ["oneroster.version", version]]
            + [[f"file.{stem}", "bulk"] for stem in stems]
        ),
    )
    return total


async def _import(url: str, folder: Path) -> tuple[ImportResult, float, float, str]:
    """Import `folder`; return the result, the wall-clock seconds and the CPU seconds (the
    process's, SQLite's thread included, and the process that parses a large enrollments.csv:
    on a busy machine the fairer measure), and `_mapped` before the connections close."""
    async with engine_for(url) as engine:
        started, cpu = time.perf_counter(), _cpu()
        result = await import_oneroster(engine, folder, source_name="Benchmark")
        return result, time.perf_counter() - started, _cpu() - cpu, _mapped()


def _cpu() -> float:
    """CPU seconds of this process and of its ended child processes."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak RSS of this process (or the largest of its ended child processes)."""
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(who).ru_maxrss / 1024


def _mapped() -> str:
    """How much of the resident memory is the database file's pages, which SQLite reads through
    a memory map (up to `SQLITE_MMAP_BYTES`): counted in RSS, but the kernel's page cache, not
    the import's own memory; empty where /proc does not say."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return ""
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        anonymous, mapped = (int(fields[k].split()[0]) / 1024 for k in ("RssAnon", "RssFile"))
    except (KeyError, ValueError):
        return ""
    return (
        f", at its end {anonymous:.0f} MiB of its own and {mapped:.0f} MiB of mapped files (the "
        "database's pages that it read, through SQLite's memory map)"
    )


def _size(text: str) -> tuple[int, int]:
    users, _, enrollments = text.partition("/")
    try:
        return int(users), int(enrollments)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not USERS/ENROLLMENTS (e.g. 20000/200000)"
        ) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of runs (1 or more)")
    return value


def _compare(args: argparse.Namespace) -> None:
    """Run each of `args.sizes` in a child process and print the figures side by side."""
    figures: list[dict[str, float]] = []
    for users, enrollments in args.sizes:
        command = [sys.executable, __file__, "--users", str(users)]
        command += ["--enrollments", str(enrollments), "--version", args.version, "--figures"]
        command += ["--repeat", str(args.repeat)]
        if args.reimport:
            command.append("--reimport")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"{users}/{enrollments} failed:\n{done.stderr}")
        lines = done.stdout.splitlines()
        print("\n".join(line for line in lines if not line.startswith("{")), flush=True)
        figures.append(json.loads(next(line for line in lines if line.startswith("{"))))
    print(f"rows/s and rows per CPU second: the median of {args.repeat} run(s) (the best)")
    print(
        f"{'users/enrollments':>20} {'rows':>10} {'rows/s':>18} {'rows/CPU s':>18} "
        f"{'peak RSS':>9} {'parser RSS':>11}"
    )
    for (users, enrollments), f in zip(args.sizes, figures, strict=True):
        per_s = f"{f['rows_per_s']:,.0f} ({f['best_rows_per_s']:,.0f})"
        per_cpu_s = f"{f['rows_per_cpu_s']:,.0f} ({f['best_rows_per_cpu_s']:,.0f})"
        print(
            f"{f'{users}/{enrollments}':>20} {f['rows']:>10,.0f} {per_s:>18} {per_cpu_s:>18} "
            f"{f['peak_rss_mib']:>5,.0f} MiB {f['parser_peak_rss_mib']:>7,.0f} MiB"
        )


def main() -> None:
    """Parse the arguments, generate, import, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument(
        "--sizes",
        type=_size,
        nargs="+",
        metavar="USERS/ENROLLMENTS",
        help="Run each size in its own process and compare rows/s and peak RSS.",
    )
    parser.add_argument("--version", choices=("1.1", "1.2"), default="1.2")
    parser.add_argument("--reimport", action="store_true", help="Time a second, no-op import.")
    parser.add_argument(
        "--repeat",
        type=_positive,
        default=1,
        metavar="N",
        help="Import the folder N times, each into a new database; print the median and best.",
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="Also trace Python allocations (slower)."
    )
    parser.add_argument("--keep", type=Path, help="Generate into this folder and keep it.")
    parser.add_argument("--figures", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sizes:
        _compare(args)
        return

    with tempfile.TemporaryDirectory(prefix="oneroster-bench-") as scratch:
        folder = args.keep or Path(scratch) / "export"
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        rows = generate(folder, args.users, args.enrollments, args.version)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        print(
            f"generated OneRoster {args.version}: {args.users:,} users, {args.enrollments:,} "
            f"enrollments, {rows:,} rows, {size:,.0f} MiB in {time.perf_counter() - started:.1f} s"
        )
        database = Path(scratch) / "bench.db"
        url = f"sqlite+aiosqlite:///{database}"
        before = _rss_mib()
        if args.tracemalloc:
            tracemalloc.start()
        runs: list[tuple[float, float]] = []  # (seconds, CPU seconds) of each import
        for n in range(args.repeat):
            for leftover in Path(scratch).glob("bench.db*"):  # the last run's file, WAL and all
                leftover.unlink()
            result, seconds, cpu, _ = asyncio.run(_import(url, folder))
            runs.append((seconds, cpu))
            print(
                f"import{f' {n + 1}/{args.repeat}' if args.repeat > 1 else ''}: {rows:,} rows in "
                f"{seconds:.1f} s = {rows / seconds:,.0f} rows/s ({cpu:.1f} CPU s = "
                f"{rows / cpu:,.0f} rows per CPU second)",
                flush=True,
            )
        traced = ""
        if args.tracemalloc:
            traced = (
                f", Python allocations peak {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB"
            )
            tracemalloc.stop()
        per_s = statistics.median(rows / seconds for seconds, _ in runs)
        per_cpu_s = statistics.median(rows / cpu for _, cpu in runs)
        best_per_s = max(rows / seconds for seconds, _ in runs)
        best_per_cpu_s = max(rows / cpu for _, cpu in runs)
        if args.repeat > 1:
            print(
                f"median of {args.repeat}: {per_s:,.0f} rows/s ({per_cpu_s:,.0f} rows per CPU "
                f"second); best: {best_per_s:,.0f} rows/s ({best_per_cpu_s:,.0f})"
            )
        print(
            f"peak RSS {_rss_mib():.0f} MiB (before the import {before:.0f} MiB; the process "
            f"that parsed enrollments.csv {_rss_mib(resource.RUSAGE_CHILDREN):.0f} MiB){traced}"
        )
        if args.figures:
            figures = {
                "rows": rows,
                "rows_per_s": per_s,
                "rows_per_cpu_s": per_cpu_s,
                "best_rows_per_s": best_per_s,
                "best_rows_per_cpu_s": best_per_cpu_s,
                "peak_rss_mib": _rss_mib(),
                "parser_peak_rss_mib": _rss_mib(resource.RUSAGE_CHILDREN),
            }
            print(json.dumps(figures))
        print("counts: " + ", ".join(f"{k} {v:,}" for k, v in result.counts.items()))
        if result.warnings:
            print("warnings: " + "; ".join(result.warnings))
        if args.reimport:
            again, seconds, cpu, mapped = asyncio.run(_import(url, folder))
            changed = sum(again.inserted.values()) + sum(again.updated.values())
            changed += sum(again.deleted.values())
            print(
                f"re-import: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s "
                f"({cpu:.1f} CPU s), {changed} rows changed; peak RSS {_rss_mib():.0f} MiB"
                f"{mapped}"
            )
        print(f"database: {database.stat().st_size / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
