"""The seeded plan of who is where: students' schools, grades and subjects, classes, teachers."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.demo.district import CLASS_SIZE, SCHOOL_INDEX, SCHOOLS, SUBJECTS, Subject
from gateway.demo.ids import stable_id


@dataclass(slots=True)
class PlannedClass:
    """A class of the plan; rows fill in its course and sections as they are built."""

    id: str
    key: str
    school: int
    grade: str | None  # None: a district course's class, open to every grade of its school
    subject: Subject
    instance: int
    semester: int | None
    course_id: str | None = None
    teacher: int = 0
    sections: list[str] = field(default_factory=list)


def role_counts(people: int) -> dict[str, int]:
    """How many people of each role; students are what is left of `people`."""
    counts = {
        "DISTRICT_ADMINISTRATOR": 1,
        "ADMINISTRATOR": len(SCHOOLS),
        "TEACHER": max(len(SCHOOLS), round(people * 0.05)),
        "STAFF": max(1, round(people * 0.015)),
        "TA": max(1, round(people * 0.003)),
        "AIDE": max(1, round(people * 0.003)),
        "DESIGNER": max(1, round(people * 0.001)),
        "MEMBER": max(1, round(people * 0.002)),
        "OBSERVER": max(1, round(people * 0.001)),
        "PARENT": max(1, round(people * 0.06)),
        "GUARDIAN": max(1, round(people * 0.015)),
    }
    counts["STUDENT"] = people - sum(counts.values())
    return counts


class Plan:
    """Who is where: students' schools, grades and subjects, the classes, their teachers."""

    def __init__(self, rng: random.Random, people: int) -> None:
        self.roles = role_counts(people)
        students = self.roles["STUDENT"]
        weights = list(itertools.accumulate(s.weight for s in SCHOOLS))
        self.school: list[int] = []
        self.grade: list[str] = []
        self.subjects: list[tuple[int, ...]] = []
        self.household: list[int] = []
        self.households = 0
        seats = {
            (s, j): subject.seats * CLASS_SIZE
            for s, school in enumerate(SCHOOLS)
            for j, subject in enumerate(SUBJECTS[school.kind])
            if subject.course == "district"
        }
        takers: Counter[tuple[int, str | None, int]] = Counter()
        left_in_household = 0
        for i in range(students):
            s = i if i < len(SCHOOLS) else rng.choices(range(len(SCHOOLS)), cum_weights=weights)[0]
            grade = rng.choice(SCHOOLS[s].grades)
            catalog = SUBJECTS[SCHOOLS[s].kind]
            chosen = [j for j, subject in enumerate(catalog) if subject.required]
            electives = [j for j, subject in enumerate(catalog) if not subject.required]
            rng.shuffle(electives)
            wanted = rng.randint(5, 7)
            for j in electives:
                if len(chosen) >= wanted:
                    break
                if (s, j) in seats:
                    if seats[s, j] <= 0:
                        continue
                    seats[s, j] -= 1
                chosen.append(j)
            chosen.sort()
            for j in chosen:
                takers[s, None if (s, j) in seats else grade, j] += 1
            if left_in_household == 0:
                self.households += 1
                left_in_household = rng.choice((1, 1, 1, 2, 2, 2, 3))
            left_in_household -= 1
            self.school.append(s)
            self.grade.append(grade)
            self.subjects.append(tuple(chosen))
            self.household.append(self.households - 1)
        self.classes: list[PlannedClass] = []
        self.units: dict[tuple[int, str | None, int], list[PlannedClass]] = {}
        for s, school in enumerate(SCHOOLS):
            for j, subject in enumerate(SUBJECTS[school.kind]):
                grades: Sequence[str | None] = (
                    [None] if subject.course == "district" else school.grades
                )
                for unit_grade in grades:
                    self._plan_unit(s, unit_grade, j, subject, takers[s, unit_grade, j])
        self.by_school: list[list[PlannedClass]] = [[] for _ in SCHOOLS]
        for cls in self.classes:
            self.by_school[cls.school].append(cls)
        self.teachers = self._assign_teachers()
        self.dual_teachers = self._share_teachers()
        self.dual_students = self._dual_students()

    def _plan_unit(self, s: int, grade: str | None, j: int, subject: Subject, takers: int) -> None:
        if subject.course == "district":
            count = subject.seats
        else:
            count = math.ceil(takers / CLASS_SIZE)
            if subject.required:
                count = max(1, count)
        unit: list[PlannedClass] = []
        for n in range(count):
            semester = n % 2 if subject.semester == -1 else subject.semester
            key = f"class:{SCHOOLS[s].key}:{grade or 'all'}:{subject.key}:{n}"
            cls = PlannedClass(stable_id(key), key, s, grade, subject, n, semester)
            unit.append(cls)
            self.classes.append(cls)
        self.units[s, grade, j] = unit

    def _assign_teachers(self) -> list[int]:
        """Split each school's classes into contiguous blocks, one per teacher."""
        total = self.roles["TEACHER"]
        sizes = [len(c) for c in self.by_school]
        shares = [max(1, math.floor(total * n / sum(sizes))) for n in sizes]
        while sum(shares) > total:
            shares[shares.index(max(shares))] -= 1
        for k in range(total - sum(shares)):
            shares[k % len(shares)] += 1
        home: list[int] = []
        for s, classes in enumerate(self.by_school):
            first = len(home)
            home.extend([s] * shares[s])
            for k, cls in enumerate(classes):
                cls.teacher = first + k * shares[s] // len(classes)
        return home

    def _share_teachers(self) -> dict[int, int]:
        """A few teachers also teach one class at the next school: teacher -> that school."""
        wanted = max(1, round(len(self.teachers) * 0.03))
        shared: dict[int, int] = {}
        for n in range(wanted):
            s = n % len(SCHOOLS)
            other = (s + 1) % len(SCHOOLS)
            teacher = self.teachers.index(s) + n // len(SCHOOLS)
            target = self.by_school[other][-(1 + n // len(SCHOOLS))]
            load = sum(1 for c in self.by_school[other] if c.teacher == target.teacher)
            if teacher >= len(self.teachers) or self.teachers[teacher] != s or load < 2:
                continue
            target.teacher = teacher
            shared[teacher] = other
        return shared

    def _dual_students(self) -> dict[int, PlannedClass]:
        """A few students also take one class at another school (8th graders take Algebra I)."""
        wanted = max(1, round(len(self.school) * 0.01))
        middle, high = SCHOOL_INDEX["lincoln"], SCHOOL_INDEX["jefferson"]
        ordered = [i for i, s in enumerate(self.school) if s == middle and self.grade[i] == "08"]
        if len(ordered) < wanted:
            taken = set(ordered)
            ordered += [i for i in range(len(self.school)) if i not in taken]
        dual: dict[int, PlannedClass] = {}
        for n, i in enumerate(ordered[:wanted]):
            other = high if self.school[i] == middle else (self.school[i] + 1) % len(SCHOOLS)
            grade = SCHOOLS[other].grades[0]
            j = next(j for j, sub in enumerate(SUBJECTS[SCHOOLS[other].kind]) if sub.key == "math")
            unit = self.units[other, grade, j]
            dual[i] = unit[n % len(unit)]
        return dual
