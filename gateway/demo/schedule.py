"""The demo's schedule: sessions, courses, classes, the classes' sessions and their sections."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

from gateway.demo.district import SCHOOLS, grade_name
from gateway.demo.ids import stable_id
from gateway.demo.orgs import district_id, school_id
from gateway.demo.plan import Plan, PlannedClass
from gateway.demo.rows import RowMaker, iso
from gateway.demo.school_year import QUARTERS, TERMS, YEAR, session_state


class Schedule:
    """Builds the schedule's rows from the plan, sessions first (courses and classes use them).

    `class_sessions` and `sections` fill up as the classes' rows are iterated, so they are
    written after the classes.
    """

    def __init__(self, plan: Plan, rows: RowMaker) -> None:
        self.plan = plan
        self.rows = rows
        self.rng = rows.rng
        self.district_id = district_id()
        self.sessions: dict[tuple[int, str], tuple[str, date, date]] = {}
        self.session_sis: dict[str, str] = {}
        self.year_id = stable_id("session:year")
        self.courses: list[dict[str, Any]] = []
        self.chunks: Counter[str] = Counter()
        self.class_sessions: list[dict[str, Any]] = []
        self.sections: list[dict[str, Any]] = []

    def _session(
        self,
        key: str,
        school: int | None,
        name: str,
        kind: str,
        dates: tuple[date, date],
    ) -> dict[str, Any]:
        sis = f"TRM-{len(self.session_sis) + 1:04d}"
        self.session_sis[key] = sis
        row = self.rows.base(key, [{"type": "sis_id", "value": sis}])
        row["properties"] = {
            "title": name,
            "type": kind.lower(),
            "schoolYear": "2026",
            "dateLastModified": iso(row["updated_date"]),
        }
        row.update(
            district_id=self.district_id,
            school_id=None if school is None else school_id(SCHOOLS[school]),
            name=name,
            start_date=dates[0],
            end_date=dates[1],
            state=session_state(*dates),
            type=kind,
        )
        if school is not None:
            self.sessions[school, key.rsplit(":", 1)[1]] = (row["id"], *dates)
        return row

    def session_rows(self) -> Iterator[dict[str, Any]]:
        """The school year, then each school's two terms and four quarters."""
        year = "session:year"
        yield self._session(year, None, "2025-26 School Year", "SCHOOL_YEAR", YEAR)
        for s, school in enumerate(SCHOOLS):
            semester = school.term_type == "SEMESTER"
            for t, dates in enumerate(TERMS):
                name = f"{('Fall', 'Spring')[t]} Semester" if semester else f"Term {t + 1}"
                key = f"session:{school.key}:t{t}"
                yield self._session(key, s, f"{name} 2025-26", school.term_type, dates)
            for q, dates in enumerate(QUARTERS):
                key = f"session:{school.key}:q{q}"
                name = f"Quarter {q + 1} 2025-26"
                yield self._session(key, s, name, "GRADING_PERIOD", dates)

    def _class_name(self, cls: PlannedClass) -> str:
        subject, school = cls.subject, SCHOOLS[cls.school]
        if cls.grade is None:
            return subject.title
        if subject.names:
            return subject.names[school.grades.index(cls.grade)]
        return f"{subject.title} {grade_name(cls.grade)}"

    def course_and_class_rows(self) -> tuple[list[dict[str, Any]], Iterator[dict[str, Any]]]:
        """Group each unit's classes into courses of 1-3 classes; return courses, then classes."""
        for (s, grade, _j), unit in self.plan.units.items():
            if not unit or unit[0].subject.course == "none":
                continue
            subject = unit[0].subject
            if subject.course == "district":
                self._course(unit, s, grade, district=True)
                continue
            for semester in sorted(
                {c.semester for c in unit}, key=lambda v: -1 if v is None else v
            ):
                group = [c for c in unit if c.semester == semester]
                while group:
                    size = self.rng.choice((1, 2, 2, 3))
                    self._course(group[:size], s, grade, district=False)
                    group = group[size:]
        return self.courses, self._classes()

    def _course(
        self, classes: list[PlannedClass], s: int, grade: str | None, *, district: bool
    ) -> None:
        first, school, subject = classes[0], SCHOOLS[s], classes[0].subject
        key = f"course:{'district' if district else school.key}:{grade or 'all'}:{subject.key}"
        chunk = self.chunks[key]
        self.chunks[key] += 1
        code = f"{'DIST' if district else school.code}-{subject.code}-{grade or 'ALL'}"
        code += "" if chunk == 0 else f"-{chunk + 1}"
        name = self._class_name(first)
        if chunk:
            name += f" ({chr(ord('A') + chunk % 26)}{chunk // 26 or ''} Team)"
        if first.semester is None:
            session_id = None
        elif district:
            session_id = self.year_id
        else:
            session_id = self.sessions[s, f"t{first.semester}"][0]
        row = self.rows.base(f"{key}:{chunk}", [{"type": "sis_id", "value": code}])
        row["properties"] = {
            "courseCode": code,
            "credits": 0.5 if first.semester is not None else 1.0,
            "department": subject.title,
            "dateLastModified": iso(row["updated_date"]),
        }
        row.update(
            district_id=self.district_id,
            school_id=None if district else school_id(school),
            session_id=session_id,
            name=name,
            code=code,
            grade_levels=list(school.grades if grade is None else (grade,)),
            subjects=[subject.ceds],
        )
        self.courses.append(row)
        for cls in classes:
            cls.course_id = row["id"]

    def _classes(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for n, cls in enumerate(self.plan.classes, start=1):
            school, subject = SCHOOLS[cls.school], cls.subject
            base = self._class_name(cls)
            if subject.key == "homeroom":
                period = "AM"
                room = f"{100 + n % 40}"
            elif subject.key == "advisory":
                period = "ADV"
                room = f"{100 + n % 60}"
            else:
                period = str(rng.randint(1, 7 if school.kind == "high" else 6))
                room = f"{rng.randint(1, 3)}{rng.randint(0, 40):02d}"
            semesters = (0, 1) if cls.semester is None else (cls.semester,)
            term = "full year" if cls.semester is None else ("fall", "spring")[cls.semester]
            grades = list(school.grades if cls.grade is None else (cls.grade,))
            sis = f"CLS-{n:06d}"
            class_code = f"{school.code}-{subject.code}-{cls.grade or 'ALL'}-{cls.instance}"
            row = self.rows.base(
                cls.key,
                [{"type": "sis_id", "value": sis}, {"type": "classCode", "value": class_code}],
            )
            state = "COMPLETED" if cls.semester == 0 else "ACTIVE"
            row["properties"] = {
                "room": room,
                "status": "active",
                "dateLastModified": iso(row["updated_date"]),
            }
            row.update(
                school_id=school_id(school),
                course_id=cls.course_id,
                name=f"{base} - Period {period}" if period.isdigit() else f"{base} - Room {room}",
                description=f"{base} at {school.name}, {term}, room {room}.",
                state=state,
                grade_levels=grades,
                subjects=[subject.ceds],
                periods=[period],
                locale=subject.locale,
                time_zone="America/Chicago",
            )
            for t in semesters:
                self.class_sessions.append(
                    {
                        "class_id": cls.id,
                        "session_id": self.sessions[cls.school, f"t{t}"][0],
                        "source_id": self.rows.source_id,
                    }
                )
            if subject.sections and rng.random() < 0.5:
                for k, section_name in enumerate(subject.sections):
                    self._section(cls, k, section_name, period, state, base)
            yield row

    def _section(
        self, cls: PlannedClass, k: int, name: str, period: str, state: str, base: str
    ) -> None:
        sis = f"SEC-{len(self.sections) + 1:06d}"
        row = self.rows.base(f"section:{cls.key}:{k}", [{"type": "sis_id", "value": sis}])
        row["properties"] = {
            "dateLastModified": iso(row["updated_date"]),
        }
        row.update(
            class_id=cls.id,
            name=name,
            description=f"{name} of {base}",
            state=state,
            periods=[period],
        )
        self.sections.append(row)
        cls.sections.append(row["id"])
