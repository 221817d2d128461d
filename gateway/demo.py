"""Deterministic demo data: one synthetic district and the eight demo integrations (DESIGN §7).

`load_demo` writes the whole source in one transaction, `ensure_demo` backs `gateway serve
--demo`, and `register` adds `gateway demo` to the command line. The same `people` gives the
same graph ids and values on every run: randomness comes from one seeded `random.Random`, ids
are `uuid5` of structural keys (so a school keeps its id whatever the size), and timestamps
derive from fixed dates. The calendar is the 2025-26 school year as it stood on 20 January 2026.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from gateway import models
from gateway.access.grant import IntegrationStatus, Scope, effective_status
from gateway.access.permissions import CATALOG
from gateway.admin.service import create_integration, create_source, destroy_integration
from gateway.coltypes import TagList
from gateway.errors import ValidationFailed

SOURCE_NAME = "Demo District"
PROVIDER_NAME = "Demo SIS"
PROVIDER_APPLICATION = "demo"
DEFAULT_PEOPLE = 2000
MIN_PEOPLE = 20
MAX_PEOPLE = 1_000_000
GRAPHQL_URL = "http://127.0.0.1:8000/graphql"
_TABLE_WIDTH = 100

_SEED = 20250818
_NAMESPACE = uuid.UUID("8393ff03-8c86-4510-9bc4-8de98a143dab")
_BATCH = 5000
_YIELD_EVERY = 250
_SQLITE_CACHE_KIB = 256 * 1024
_CLASS_SIZE = 25
_DOMAIN = "demo-district.example"

# ---------------------------------------------------------------- the calendar

_AS_OF = date(2026, 1, 20)  # the demo's "today": it decides which sessions are active
_CREATED = datetime(2025, 7, 1, 6, 0, tzinfo=UTC)
_YEAR = (date(2025, 8, 18), date(2026, 6, 5))
_TERMS = ((date(2025, 8, 18), date(2025, 12, 19)), (date(2026, 1, 6), date(2026, 6, 5)))
_QUARTERS = (
    (date(2025, 8, 18), date(2025, 10, 17)),
    (date(2025, 10, 20), date(2025, 12, 19)),
    (date(2026, 1, 6), date(2026, 3, 13)),
    (date(2026, 3, 23), date(2026, 6, 5)),
)
_UPDATE_WINDOW = int((datetime(2026, 1, 19, tzinfo=UTC) - _CREATED).total_seconds()) - 86_400 * 61


def _session_state(start: date, end: date) -> str:
    if end < _AS_OF:
        return "COMPLETED"
    return "UPCOMING" if start > _AS_OF else "ACTIVE"


GRADES = ("KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")


def _grade_number(grade: str) -> int:
    return 0 if grade == "KG" else int(grade)


def _grade_name(grade: str) -> str:
    return "Kindergarten" if grade == "KG" else f"Grade {int(grade)}"


# ---------------------------------------------------------------- the district's shape


@dataclass(frozen=True, slots=True)
class _School:
    key: str
    name: str
    code: str
    kind: str
    grades: tuple[str, ...]
    weight: float
    street: str
    postal_code: str
    latitude: float
    longitude: float
    phone: str
    term_type: str


SCHOOLS = (
    _School("maple-grove", "Maple Grove Elementary School", "MGE", "elementary", GRADES[0:6],
            0.27, "1200 Maple Grove Rd", "62704", 39.772104, -89.693412, "+12175550110", "TERM"),
    _School("riverside", "Riverside Elementary School", "RSE", "elementary", GRADES[0:6],
            0.23, "455 River Bend Dr", "62702", 39.815633, -89.641207, "+12175550120", "TERM"),
    _School("lincoln", "Lincoln Middle School", "LMS", "middle", GRADES[6:9],
            0.22, "800 Lincoln Ave", "62703", 39.781208, -89.630115, "+12175550130", "SEMESTER"),
    _School("jefferson", "Jefferson High School", "JHS", "high", GRADES[9:13],
            0.28, "2100 Jefferson Pkwy", "62711", 39.764517, -89.732144, "+12175550140",
            "SEMESTER"),
)  # fmt: skip
_SCHOOL_INDEX = {school.key: i for i, school in enumerate(SCHOOLS)}


@dataclass(frozen=True, slots=True)
class _Subject:
    """A line of a school's catalog; `course` is "school", "none" or "district"."""

    key: str
    code: str
    title: str
    ceds: str
    required: bool = False
    course: str = "school"
    semester: int | None = None  # None: full year; 0: fall, 1: spring; -1: both, alternating
    names: tuple[str, ...] = ()  # per grade of the school, when the title is not enough
    sections: tuple[str, ...] = ()
    locale: str = "en-US"
    seats: int = 0  # district courses: how many classes of _CLASS_SIZE seats


_ADVISORY = _Subject("advisory", "ADV", "Advisory", "CEDS.23", required=True, course="none")
_CATALOG: dict[str, tuple[_Subject, ...]] = {
    "elementary": (
        _Subject("homeroom", "HR", "Homeroom", "CEDS.23", required=True, course="none"),
        _Subject("ela", "ELA", "English Language Arts", "CEDS.01", required=True,
                 sections=("Guided Reading Blue", "Guided Reading Green")),
        _Subject("math", "MATH", "Mathematics", "CEDS.02", required=True),
        _Subject("science", "SCI", "Science", "CEDS.03"),
        _Subject("social", "SOC", "Social Studies", "CEDS.04"),
        _Subject("art", "ART", "Art", "CEDS.05"),
        _Subject("music", "MUS", "General Music", "CEDS.05"),
        _Subject("pe", "PE", "Physical Education", "CEDS.08"),
    ),
    "middle": (
        _ADVISORY,
        _Subject("ela", "ELA", "English Language Arts", "CEDS.01", required=True),
        _Subject("math", "MATH", "Mathematics", "CEDS.02", required=True),
        _Subject("science", "SCI", "Science", "CEDS.03", required=True,
                 sections=("Lab A", "Lab B")),
        _Subject("social", "SOC", "Social Studies", "CEDS.04"),
        _Subject("art", "ART", "Art", "CEDS.05", semester=-1),
        _Subject("band", "BAND", "Band", "CEDS.05"),
        _Subject("spanish", "SPAN", "Spanish", "CEDS.24", locale="es-US"),
        _Subject("pe", "PE", "Physical Education", "CEDS.08", sections=("Team 1", "Team 2")),
        _Subject("cs", "CS", "Computer Science Discoveries", "CEDS.10"),
        _Subject("digital", "DIGCIT", "Digital Citizenship", "CEDS.10", course="district",
                 semester=0, seats=2),
    ),
    "high": (
        _ADVISORY,
        _Subject("english", "ENG", "English", "CEDS.01", required=True,
                 names=("English 9", "English 10", "English 11", "English 12")),
        _Subject("math", "MATH", "Mathematics", "CEDS.02", required=True,
                 names=("Algebra I", "Geometry", "Algebra II", "Precalculus")),
        _Subject("science", "SCI", "Science", "CEDS.03", required=True,
                 names=("Biology", "Chemistry", "Physics", "Environmental Science"),
                 sections=("Lab A", "Lab B")),
        _Subject("social", "SOC", "Social Studies", "CEDS.04",
                 names=("World History", "U.S. History", "U.S. Government", "Economics")),
        _Subject("spanish", "SPAN", "Spanish", "CEDS.24", locale="es-US",
                 names=("Spanish I", "Spanish II", "Spanish III", "Spanish IV")),
        _Subject("french", "FREN", "French", "CEDS.24", locale="fr-US",
                 names=("French I", "French II", "French III", "French IV")),
        _Subject("art", "ART", "Studio Art", "CEDS.05", semester=-1),
        _Subject("choir", "CHOIR", "Concert Choir", "CEDS.05"),
        _Subject("cs", "CS", "Computer Science Principles", "CEDS.10"),
        _Subject("study", "STUDY", "Study Hall", "CEDS.23", course="none"),
        _Subject("health", "HLTH", "Health Education", "CEDS.08", course="district",
                 semester=1, seats=3),
        _Subject("driver", "DRVED", "Driver Education", "CEDS.20", course="district",
                 semester=0, seats=1),
    ),
}  # fmt: skip

_FEMALE = ("Olivia", "Emma", "Ava", "Sophia", "Isabella", "Mia", "Amelia", "Harper", "Evelyn",
           "Abigail", "Emily", "Ella", "Elizabeth", "Camila", "Luna", "Sofia", "Avery", "Mila",
           "Aria", "Scarlett", "Penelope", "Layla", "Chloe", "Victoria", "Madison", "Eleanor",
           "Grace", "Nora", "Riley", "Zoey", "Hannah", "Hazel", "Lily", "Ellie", "Violet",
           "Lillian", "Zoe", "Stella", "Aurora", "Natalie", "Maya", "Priya", "Aaliyah", "Ximena",
           "Mei", "Fatima", "Nadia", "Leah")  # fmt: skip
_MALE = ("Liam", "Noah", "Oliver", "Elijah", "James", "William", "Benjamin", "Lucas", "Henry",
         "Theodore", "Jack", "Levi", "Alexander", "Jackson", "Mateo", "Daniel", "Michael",
         "Mason", "Sebastian", "Ethan", "Logan", "Owen", "Samuel", "Jacob", "Asher", "Aiden",
         "John", "Joseph", "Wyatt", "David", "Leo", "Luke", "Julian", "Hudson", "Grayson",
         "Matthew", "Ezra", "Gabriel", "Carter", "Isaac", "Jayden", "Luca", "Santiago", "Omar",
         "Arjun", "Wei", "Kwame", "Diego")  # fmt: skip
_NEUTRAL = ("Alex", "Jordan", "Taylor", "Morgan", "Casey", "Quinn", "Rowan", "Sage")
_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
         "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
         "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
         "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
         "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
         "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
         "Roberts", "Patel", "Kim", "Chen", "O'Brien", "Okafor", "Novak", "Kowalski", "Haddad",
         "Yamamoto", "Singh", "Schmidt", "Murphy", "Cohen", "Dubois")  # fmt: skip
_STREETS = ("Oak St", "Maple Ave", "Cedar Ln", "Elm St", "Pine Rd", "Walnut St", "Birch Dr",
            "Spruce Ct", "Washington St", "Lake Shore Dr", "Prairie View Rd", "Sunset Blvd",
            "Meadow Ln", "Hillcrest Ave", "Park Pl", "Church St", "Mill Rd",
            "Orchard Way")  # fmt: skip
_POSTAL_CODES = ("62701", "62702", "62703", "62704", "62707", "62711", "62712")
_RACES = ("White", "BlackOrAfricanAmerican", "Asian", "AmericanIndianOrAlaskaNative",
          "NativeHawaiianOrOtherPacificIslander")  # fmt: skip
_RACE_WEIGHTS = tuple(itertools.accumulate((62, 18, 12, 5, 3)))
_BIRTH_PLACES = (("US", "IL", "Springfield"), ("US", "IL", "Chicago"), ("US", "IL", "Peoria"),
                 ("US", "MO", "St. Louis"), ("US", "IN", "Indianapolis"), ("US", "TX", "Houston"),
                 ("MX", None, "Guadalajara"), ("IN", None, "Pune"), ("PH", None, "Manila"),
                 ("VN", None, "Da Nang"), ("NG", None, "Lagos"),
                 ("PL", None, "Krakow"))  # fmt: skip
_BIRTH_WEIGHTS = tuple(itertools.accumulate((40, 14, 8, 6, 5, 5, 8, 3, 3, 3, 3, 2)))
_LANGUAGES = ("es", "vi", "zh", "ar", "pl", "hi")
_STAFF_TITLES = ("School Counselor", "Librarian", "School Nurse", "Office Manager",
                 "Custodian", "Social Worker", "Speech-Language Pathologist",
                 "IT Technician")  # fmt: skip
_ENROLLMENT_STATUS = {"ACTIVE": "active", "COMPLETED": "inactive", "INACTIVE": "inactive",
                      "DROPPED": "tobedeleted"}  # fmt: skip
_AGENT_FLAGS = ("primary_contact", "emergency_contact", "lives_with", "pickup_authorized",
                "receives_mail")  # fmt: skip

# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class DemoIntegration:
    """One demo integration as `gateway demo --json` prints it (token shown only here)."""

    name: str
    id: str
    status: str
    scope: str
    targets: list[str]
    permissions: list[str]
    token: str

    def as_json(self) -> dict[str, Any]:
        """The integration in DESIGN §7's shape."""
        return {
            "name": self.name,
            "id": self.id,
            "status": self.status,
            "scope": self.scope,
            "targets": list(self.targets),
            "permissions": list(self.permissions),
            "token": self.token,
        }


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The demo source, its integrations with their tokens, and its row counts per table."""

    source_id: str
    source_name: str
    integrations: list[DemoIntegration]
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Exactly DESIGN §7's `gateway demo --json` object."""
        return {
            "source": {"id": self.source_id, "name": self.source_name},
            "integrations": [i.as_json() for i in self.integrations],
        }


# ---------------------------------------------------------------- ids, stamps, small values


def _id(key: str) -> str:
    """`str(uuid.uuid5(_NAMESPACE, key))`, computed without the UUID objects (hot path)."""
    digest = hashlib.sha1(_NAMESPACE.bytes + key.encode(), usedforsecurity=False).hexdigest()
    variant = "89ab"[int(digest[16], 16) & 3]
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


def _stamps(rng: random.Random, count: int = 4096) -> list[tuple[datetime, datetime]]:
    """`count` (created, updated) pairs: rows draw from them instead of doing date arithmetic."""
    pairs = []
    for _ in range(count):
        created = _CREATED + timedelta(seconds=int(rng.random() * 86_400 * 60))
        pairs.append((created, created + timedelta(seconds=int(rng.random() * _UPDATE_WINDOW))))
    return pairs


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _phone(rng: random.Random) -> str:
    return f"+1217555{rng.randrange(10_000):04d}"


def _slug(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _address(rng: random.Random) -> dict[str, Any]:
    return {
        "street": f"{rng.randrange(100, 9900)} {rng.choice(_STREETS)}",
        "unit": f"Apt {rng.randrange(1, 40)}{rng.choice('ABCD')}" if rng.random() < 0.25 else None,
        "city": "Springfield",
        "state": "IL",
        "postalCode": rng.choice(_POSTAL_CODES),
        "country": "US",
        "phone": _phone(rng),
        "latitude": round(39.70 + rng.random() * 0.16, 6),
        "longitude": round(-89.75 + rng.random() * 0.16, 6),
    }


def _org_address(
    street: str, postal_code: str, lat: float, lon: float, phone: str
) -> dict[str, Any]:
    return {
        "street": street,
        "unit": None,
        "city": "Springfield",
        "state": "IL",
        "postalCode": postal_code,
        "country": "US",
        "phone": phone,
        "latitude": lat,
        "longitude": lon,
    }


def _name(rng: random.Random) -> tuple[str, str]:
    """A first name and the gender that goes with it."""
    roll = rng.random()
    if roll < 0.02:
        return rng.choice(_NEUTRAL), "other"
    if roll < 0.51:
        return rng.choice(_FEMALE), "female"
    return rng.choice(_MALE), "male"


def _demographics(rng: random.Random, gender: str, birthday: date, student: bool) -> dict[str, Any]:
    country, state, city = rng.choices(_BIRTH_PLACES, cum_weights=_BIRTH_WEIGHTS)[0]
    races = rng.choices(_RACES, cum_weights=_RACE_WEIGHTS, k=2 if rng.random() < 0.06 else 1)
    ell = student and ((country != "US" and rng.random() < 0.6) or rng.random() < 0.04)
    return {
        "birthday": birthday.isoformat(),
        "gender": gender,
        "races": sorted(set(races)),
        "hispanicOrLatinoEthnicity": country == "MX" or rng.random() < 0.12,
        "englishLanguageLearner": ell,
        "individualizedEducationPlan": student and rng.random() < 0.14,
        "economicallyDisadvantaged": student and rng.random() < 0.38,
        "section504": student and rng.random() < 0.04,
        "giftedTalented": student and rng.random() < 0.07,
        "migrant": student and rng.random() < 0.01,
        "homeless": student and rng.random() < 0.01,
        "fosterCare": student and rng.random() < 0.01,
        "militaryConnected": student and rng.random() < 0.03,
        "primaryLanguage": rng.choice(_LANGUAGES) if ell else "en",
        "countryOfBirth": country,
        "stateOfBirth": state,
        "cityOfBirth": city,
    }


# ---------------------------------------------------------------- the plan


@dataclass(slots=True)
class _Class:
    id: str
    key: str
    school: int
    grade: str | None  # None: a district course's class, open to every grade of its school
    subject: _Subject
    instance: int
    semester: int | None
    course_id: str | None = None
    teacher: int = 0
    sections: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Roles:
    """How many people of each role; students are what is left of `people`."""

    people: int
    counts: dict[str, int]

    @classmethod
    def for_people(cls, people: int) -> _Roles:
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
        return cls(people, counts)


class _Plan:
    """Who is where: students' schools, grades and subjects, the classes, their teachers."""

    def __init__(self, rng: random.Random, people: int) -> None:
        self.rng = rng
        self.roles = _Roles.for_people(people)
        students = self.roles.counts["STUDENT"]
        weights = list(itertools.accumulate(s.weight for s in SCHOOLS))
        self.school: list[int] = []
        self.grade: list[str] = []
        self.subjects: list[tuple[int, ...]] = []
        self.household: list[int] = []
        self.households = 0
        seats = {
            (s, j): subject.seats * _CLASS_SIZE
            for s, school in enumerate(SCHOOLS)
            for j, subject in enumerate(_CATALOG[school.kind])
            if subject.course == "district"
        }
        takers: Counter[tuple[int, str | None, int]] = Counter()
        left_in_household = 0
        for i in range(students):
            s = i if i < len(SCHOOLS) else rng.choices(range(len(SCHOOLS)), cum_weights=weights)[0]
            grade = rng.choice(SCHOOLS[s].grades)
            catalog = _CATALOG[SCHOOLS[s].kind]
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
        self.classes: list[_Class] = []
        self.units: dict[tuple[int, str | None, int], list[_Class]] = {}
        for s, school in enumerate(SCHOOLS):
            for j, subject in enumerate(_CATALOG[school.kind]):
                grades: Sequence[str | None] = (
                    [None] if subject.course == "district" else school.grades
                )
                for unit_grade in grades:
                    self._plan_unit(s, unit_grade, j, subject, takers[s, unit_grade, j])
        self.by_school: list[list[_Class]] = [[] for _ in SCHOOLS]
        for cls in self.classes:
            self.by_school[cls.school].append(cls)
        self.teachers = self._assign_teachers()
        self.dual_teachers = self._share_teachers()
        self.dual_students = self._dual_students()

    def _plan_unit(self, s: int, grade: str | None, j: int, subject: _Subject, takers: int) -> None:
        if subject.course == "district":
            count = subject.seats
        else:
            count = math.ceil(takers / _CLASS_SIZE)
            if subject.required:
                count = max(1, count)
        unit: list[_Class] = []
        for n in range(count):
            semester = n % 2 if subject.semester == -1 else subject.semester
            key = f"class:{SCHOOLS[s].key}:{grade or 'all'}:{subject.key}:{n}"
            cls = _Class(_id(key), key, s, grade, subject, n, semester)
            unit.append(cls)
            self.classes.append(cls)
        self.units[s, grade, j] = unit

    def _assign_teachers(self) -> list[int]:
        """Split each school's classes into contiguous blocks, one per teacher."""
        total = self.roles.counts["TEACHER"]
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

    def _dual_students(self) -> dict[int, _Class]:
        """A few students also take one class at another school (8th graders take Algebra I)."""
        wanted = max(1, round(len(self.school) * 0.01))
        middle, high = _SCHOOL_INDEX["lincoln"], _SCHOOL_INDEX["jefferson"]
        ordered = [i for i, s in enumerate(self.school) if s == middle and self.grade[i] == "08"]
        if len(ordered) < wanted:
            taken = set(ordered)
            ordered += [i for i in range(len(self.school)) if i not in taken]
        dual: dict[int, _Class] = {}
        for n, i in enumerate(ordered[:wanted]):
            other = high if self.school[i] == middle else (self.school[i] + 1) % len(SCHOOLS)
            grade = SCHOOLS[other].grades[0]
            j = next(j for j, sub in enumerate(_CATALOG[SCHOOLS[other].kind]) if sub.key == "math")
            unit = self.units[other, grade, j]
            dual[i] = unit[n % len(unit)]
        return dual


# ---------------------------------------------------------------- rows


class _Builder:
    """Produces the rows of each table from the plan, in an order foreign keys accept."""

    def __init__(self, plan: _Plan, source_id: str) -> None:
        self.plan = plan
        self.rng = plan.rng
        self.source_id = source_id
        self.district_id = _id("district")
        self.sessions: dict[tuple[int, str], tuple[str, date, date]] = {}
        self.session_sis: dict[str, str] = {}
        self.year_id = _id("session:year")
        self.courses: list[dict[str, Any]] = []
        self.chunks: Counter[str] = Counter()
        self.class_sessions: list[dict[str, Any]] = []
        self.sections: list[dict[str, Any]] = []
        self.person_ids: dict[str, list[str]] = {}
        self.student_ids: list[str] = []
        self.serial = 0
        self.stamps = _stamps(self.rng)

    def _base(self, key: str, identifiers: list[dict[str, str]]) -> dict[str, Any]:
        created, updated = self.stamps[int(self.rng.random() * len(self.stamps))]
        return {
            "id": _id(key),
            "source_id": self.source_id,
            "created_date": created,
            "updated_date": updated,
            "identifiers": identifiers,
        }

    def district(self) -> Iterator[dict[str, Any]]:
        row = self._base("district", [
            {"type": "sis_id", "value": "DD-0001"},
            {"type": "state_id", "value": "15-016-1860-26"},
        ])  # fmt: skip
        row["id"] = self.district_id
        row["properties"] = {
            "sourcedId": "DD-0001",
            "ncesId": "1799990",
            "superintendent": "Dr. Renee Okafor",
            "website": f"https://www.{_DOMAIN}",
            "dateLastModified": _iso(row["updated_date"]),
        }
        row.update(
            name=SOURCE_NAME,
            locale="en-US",
            time_zone="America/Chicago",
            address=_org_address("100 Capitol Ave", "62701", 39.798363, -89.654961, "+12175550100"),
        )
        yield row

    def schools(self) -> Iterator[dict[str, Any]]:
        for n, school in enumerate(SCHOOLS, start=1):
            code = f"{n:04d}"
            row = self._base(f"school:{school.key}", [
                {"type": "sis_id", "value": school.code},
                {"type": "state_id", "value": f"15-016-1860-26-{code}"},
            ])  # fmt: skip
            row["properties"] = {
                "sourcedId": school.code,
                "schoolNumber": code,
                "ncesId": f"17999900{n:04d}",
                "schoolType": school.kind.title(),
                "title1": n % 2 == 1,
                "dateLastModified": _iso(row["updated_date"]),
            }
            row.update(
                district_id=self.district_id,
                name=school.name,
                grade_levels=list(school.grades),
                locale="en-US",
                time_zone="America/Chicago",
                address=_org_address(
                    school.street,
                    school.postal_code,
                    school.latitude,
                    school.longitude,
                    school.phone,
                ),
            )
            yield row

    def _session(
        self,
        key: str,
        school: int | None,
        name: str,
        kind: str,
        dates: tuple[date, date],
        parent: str | None,
    ) -> dict[str, Any]:
        sis = f"TRM-{len(self.session_sis) + 1:04d}"
        self.session_sis[key] = sis
        row = self._base(key, [{"type": "sis_id", "value": sis}])
        row["properties"] = {
            "sourcedId": sis,
            "title": name,
            "type": kind.lower(),
            "schoolYear": "2026",
            "parentSourcedId": None if parent is None else self.session_sis[parent],
            "dateLastModified": _iso(row["updated_date"]),
        }
        row.update(
            district_id=self.district_id,
            school_id=None if school is None else _id(f"school:{SCHOOLS[school].key}"),
            name=name,
            start_date=dates[0],
            end_date=dates[1],
            state=_session_state(*dates),
            type=kind,
        )
        if school is not None:
            self.sessions[school, key.rsplit(":", 1)[1]] = (row["id"], *dates)
        return row

    def session_rows(self) -> Iterator[dict[str, Any]]:
        year = "session:year"
        yield self._session(year, None, "2025-26 School Year", "SCHOOL_YEAR", _YEAR, None)
        for s, school in enumerate(SCHOOLS):
            semester = school.term_type == "SEMESTER"
            for t, dates in enumerate(_TERMS):
                name = f"{('Fall', 'Spring')[t]} Semester" if semester else f"Term {t + 1}"
                key = f"session:{school.key}:t{t}"
                yield self._session(key, s, f"{name} 2025-26", school.term_type, dates, year)
            for q, dates in enumerate(_QUARTERS):
                key, term = f"session:{school.key}:q{q}", f"session:{school.key}:t{q // 2}"
                name = f"Quarter {q + 1} 2025-26"
                yield self._session(key, s, name, "GRADING_PERIOD", dates, term)

    def _class_name(self, cls: _Class) -> str:
        subject, school = cls.subject, SCHOOLS[cls.school]
        if cls.grade is None:
            return subject.title
        if subject.names:
            return subject.names[school.grades.index(cls.grade)]
        return f"{subject.title} {_grade_name(cls.grade)}"

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

    def _course(self, classes: list[_Class], s: int, grade: str | None, *, district: bool) -> None:
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
        row = self._base(f"{key}:{chunk}", [{"type": "sis_id", "value": code}])
        row["properties"] = {
            "sourcedId": code,
            "courseCode": code,
            "credits": 0.5 if first.semester is not None else 1.0,
            "department": subject.title,
            "dateLastModified": _iso(row["updated_date"]),
        }
        row.update(
            district_id=self.district_id,
            school_id=None if district else _id(f"school:{school.key}"),
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
            row = self._base(cls.key, [{"type": "sis_id", "value": sis}])
            row["id"] = cls.id
            state = "COMPLETED" if cls.semester == 0 else "ACTIVE"
            row["properties"] = {
                "sourcedId": sis,
                "classCode": f"{school.code}-{subject.code}-{cls.grade or 'ALL'}-{cls.instance}",
                "room": room,
                "status": "active",
                "dateLastModified": _iso(row["updated_date"]),
            }
            row.update(
                school_id=_id(f"school:{school.key}"),
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
                        "source_id": self.source_id,
                    }
                )
            if subject.sections and rng.random() < 0.5:
                for k, section_name in enumerate(subject.sections):
                    self._section(cls, k, section_name, period, state, base)
            yield row

    def _section(self, cls: _Class, k: int, name: str, period: str, state: str, base: str) -> None:
        sis = f"SEC-{len(self.sections) + 1:06d}"
        row = self._base(f"section:{cls.key}:{k}", [{"type": "sis_id", "value": sis}])
        row["properties"] = {
            "sourcedId": sis,
            "classSourcedId": cls.key,
            "dateLastModified": _iso(row["updated_date"]),
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

    # people -------------------------------------------------------------------------------

    def _person(
        self,
        key: str,
        role: str,
        *,
        last: str | None = None,
        address: dict[str, Any] | None = None,
        birthday: date | None = None,
    ) -> dict[str, Any]:
        rng = self.rng
        self.serial += 1
        first, gender = _name(rng)
        last = last or rng.choice(_LAST)
        middle = _name(rng)[0] if rng.random() < 0.7 else None
        student = role == "STUDENT"
        contact = role in ("PARENT", "GUARDIAN", "OBSERVER")
        if birthday is None:
            birthday = date(1962, 1, 1) + timedelta(days=rng.randrange(365 * 36))
        prefix = "S" if student else "C" if contact else "E"
        sis = f"{prefix}{self.serial:07d}"
        username = f"{_slug(first)[:1]}{_slug(last)}{self.serial}"
        if student:
            email = f"{username}@students.{_DOMAIN}"
        elif contact:
            email = f"{_slug(first)}.{_slug(last)}{self.serial}@mail.example.com"
        else:
            email = f"{_slug(first)}.{_slug(last)}{self.serial}@{_DOMAIN}"
        identifiers = [{"type": "sis_id", "value": sis}]
        if student:
            identifiers.append({"type": "state_id", "value": f"{rng.randrange(10**9, 10**10)}"})
        if not contact:
            identifiers.append({"type": "username", "value": username})
        identifiers.append({"type": "email", "value": email})
        row = self._base(key, identifiers)
        demographics = _demographics(rng, gender, birthday, student)
        row["properties"] = {
            "sourcedId": sis,
            "status": "active",
            "enabledUser": not contact,
            "username": None if contact else username,
            "role": role.lower(),
            "dateLastModified": _iso(row["updated_date"]),
        }
        row.update(
            district_id=self.district_id,
            first_name=first,
            middle_name=middle,
            last_name=last,
            display_name=f"{first} {last}",
            picture_url=None if contact else f"https://avatars.{_DOMAIN}/{row['id']}.png",
            roles=[role],
            email=email,
            phone=_phone(rng),
            locale="es-US" if demographics["primaryLanguage"] == "es" else "en-US",
            time_zone="America/Chicago",
            graduation_year=None,
            grade_levels=[],
            demographics=demographics,
            address=address or _address(rng),
        )
        self.person_ids.setdefault(role, []).append(row["id"])
        return row

    def _household(self, h: int) -> tuple[str, dict[str, Any]]:
        # Its own generator, so a household's name and home are the same whoever asks first.
        rng = random.Random(_SEED * 7_919 + h)  # noqa: S311 (demo data is seeded on purpose)
        return rng.choice(_LAST), _address(rng)

    def students(self) -> Iterator[dict[str, Any]]:
        plan = self.plan
        for i in range(len(plan.school)):
            grade = plan.grade[i]
            n = _grade_number(grade)
            last, address = self._household(plan.household[i])
            birthday = date(2019 - n, 9, 2) + timedelta(days=self.rng.randrange(365))
            row = self._person(f"person:student:{i}", "STUDENT", last=last, address=address,
                               birthday=birthday)  # fmt: skip
            row["graduation_year"] = 2026 + 12 - n
            row["grade_levels"] = [grade]
            row["properties"]["studentNumber"] = row["properties"]["sourcedId"]
            row["properties"]["lunchPin"] = f"{self.rng.randrange(10_000):04d}"
            self.student_ids.append(row["id"])
            yield row

    def staff(self) -> Iterator[dict[str, Any]]:
        counts = self.plan.roles.counts
        titles = {"DISTRICT_ADMINISTRATOR": "Superintendent", "ADMINISTRATOR": "Principal",
                  "TA": "Teaching Assistant", "AIDE": "Paraprofessional",
                  "DESIGNER": "Instructional Designer",
                  "MEMBER": "Volunteer Coordinator"}  # fmt: skip
        grades_taught: dict[int, set[str]] = {}
        for cls in self.plan.classes:
            grades_taught.setdefault(cls.teacher, set()).update(
                SCHOOLS[cls.school].grades if cls.grade is None else (cls.grade,)
            )
        for role in ("DISTRICT_ADMINISTRATOR", "ADMINISTRATOR", "TEACHER", "STAFF", "TA", "AIDE",
                     "DESIGNER", "MEMBER"):  # fmt: skip
            for k in range(counts[role]):
                row = self._person(f"person:{role.lower()}:{k}", role)
                title = titles.get(role) or self.rng.choice(_STAFF_TITLES)
                if role == "TEACHER":
                    title = "Teacher"
                    row["grade_levels"] = sorted(grades_taught.get(k, ()), key=GRADES.index)
                row["properties"]["title"] = title
                row["properties"]["employeeId"] = row["properties"]["sourcedId"]
                yield row

    def contacts(self) -> Iterator[dict[str, Any]]:
        """Parents, guardians and observers: no school, no enrollment, only agents."""
        counts = self.plan.roles.counts
        roles = ["PARENT"] * counts["PARENT"] + ["GUARDIAN"] * counts["GUARDIAN"]
        self.rng.shuffle(roles)
        roles[:2] = ["PARENT", "GUARDIAN"]  # both kinds exist even in the smallest demo
        self.household_contacts: list[tuple[str, str, int, bool]] = []
        h, in_household = 0, 0
        for k, role in enumerate(roles):
            if in_household >= (2 if self.rng.random() < 0.4 else 1):
                h, in_household = (h + 1) % max(1, self.plan.households), 0
            last, address = self._household(h)
            own_last = last if self.rng.random() < 0.85 else None
            row = self._person(f"person:{role.lower()}:{k}", role, last=own_last, address=address)
            row["properties"]["contactType"] = role.lower()
            self.household_contacts.append((row["id"], role, h, in_household == 0))
            in_household += 1
            yield row
        for k in range(counts["OBSERVER"]):
            row = self._person(f"person:observer:{k}", "OBSERVER")
            row["properties"]["contactType"] = "case worker"
            yield row

    def person_schools(self) -> Iterator[dict[str, Any]]:
        plan = self.plan

        def member(person_id: str, s: int) -> dict[str, Any]:
            school_id = _id(f"school:{SCHOOLS[s].key}")
            return {"person_id": person_id, "school_id": school_id, "source_id": self.source_id}

        for i, person_id in enumerate(self.student_ids):
            yield member(person_id, plan.school[i])
            if i in plan.dual_students:
                yield member(person_id, plan.dual_students[i].school)
        for k, person_id in enumerate(self.person_ids.get("ADMINISTRATOR", [])):
            yield member(person_id, k % len(SCHOOLS))
        for k, person_id in enumerate(self.person_ids.get("TEACHER", [])):
            yield member(person_id, plan.teachers[k])
            if k in plan.dual_teachers:
                yield member(person_id, plan.dual_teachers[k])
        for role in ("STAFF", "TA", "AIDE", "MEMBER"):
            for k, person_id in enumerate(self.person_ids.get(role, [])):
                yield member(person_id, k % len(SCHOOLS))

    # enrollments and agents ---------------------------------------------------------------

    def _enrollment(
        self, key: str, person_id: str, cls: _Class, role: str, *, student: bool
    ) -> dict[str, Any]:
        # The hot path of a large demo (about six rows per student): one dict, few calls.
        rng = self.rng
        self.serial += 1
        start, end = _YEAR if cls.semester is None else _TERMS[cls.semester]
        state = "COMPLETED" if cls.semester == 0 else "ACTIVE"
        section = None
        if student:
            roll = rng.random()
            if state == "ACTIVE" and roll < 0.03:
                state = "DROPPED"
                end = start + timedelta(days=1 + int(roll * 1000) % (_AS_OF - start).days)
            elif state == "ACTIVE" and roll < 0.04:
                state = "INACTIVE"
            if cls.sections and rng.random() < 0.7:
                section = cls.sections[int(rng.random() * len(cls.sections))]
        sis = f"ENR-{self.serial:08d}"
        created, updated = self.stamps[int(rng.random() * len(self.stamps))]
        return {
            "id": _id(key),
            "source_id": self.source_id,
            "created_date": created,
            "updated_date": updated,
            "identifiers": [{"type": "sis_id", "value": sis}],
            "properties": {"sourcedId": sis, "status": _ENROLLMENT_STATUS[state]},
            "person_id": person_id,
            "class_id": cls.id,
            "section_id": section,
            "role": role,
            "primary": role == "TEACHER",
            "state": state,
            "start_date": start,
            "end_date": end,
        }

    def enrollments(self) -> Iterator[dict[str, Any]]:
        plan, rng = self.plan, self.rng
        turn: Counter[tuple[int, str | None, int]] = Counter()
        district = {
            (s, j)
            for s, school in enumerate(SCHOOLS)
            for j, subject in enumerate(_CATALOG[school.kind])
            if subject.course == "district"
        }
        for i, person_id in enumerate(self.student_ids):
            s = plan.school[i]
            for j in plan.subjects[i]:
                unit_key = (s, None if (s, j) in district else plan.grade[i], j)
                unit = plan.units[unit_key]
                cls = unit[turn[unit_key] % len(unit)]
                turn[unit_key] += 1
                yield self._enrollment(f"enrollment:{cls.key}:{i}", person_id, cls, "STUDENT",
                                       student=True)  # fmt: skip
            if i in plan.dual_students:
                cls = plan.dual_students[i]
                yield self._enrollment(f"enrollment:{cls.key}:{i}", person_id, cls, "STUDENT",
                                       student=True)  # fmt: skip
        teachers = self.person_ids.get("TEACHER", [])
        for cls in plan.classes:
            yield self._enrollment(f"enrollment:{cls.key}:teacher", teachers[cls.teacher], cls,
                                   "TEACHER", student=False)  # fmt: skip
        for role, most in (("TA", 3), ("DESIGNER", 2)):
            for k, person_id in enumerate(self.person_ids.get(role, [])):
                pool = plan.by_school[k % len(SCHOOLS)]
                for cls in rng.sample(pool, min(len(pool), rng.randint(1, most))):
                    yield self._enrollment(f"enrollment:{cls.key}:{role.lower()}:{k}", person_id,
                                           cls, role, student=False)  # fmt: skip

    def _agent(
        self, observer: str, target: str, relationship: str, flags: list[str]
    ) -> dict[str, Any]:
        self.serial += 1
        sis = f"CT-{self.serial:07d}"
        row = self._base(f"agent:{observer}:{target}", [{"type": "sis_id", "value": sis}])
        row["properties"] = {
            "sourcedId": sis,
            "relationshipCode": relationship.lower(),
            "contactPriority": 1 if "primary_contact" in flags else 2,
        }
        row.update(observer_id=observer, target_id=target, relationship=relationship, flags=flags)
        return row

    def agents(self) -> Iterator[dict[str, Any]]:
        plan, rng = self.plan, self.rng
        by_household: dict[int, list[str]] = {}
        for i, h in enumerate(plan.household):
            by_household.setdefault(h, []).append(self.student_ids[i])
        for observer, role, h, primary in self.household_contacts:
            for target in by_household.get(h, ()):
                flags = [f for f in _AGENT_FLAGS[1:] if rng.random() < 0.6]
                yield self._agent(observer, target, role, ["primary_contact"] * primary + flags)
        by_school: list[list[str]] = [[] for _ in SCHOOLS]
        for i, s in enumerate(plan.school):
            by_school[s].append(self.student_ids[i])
        for role, relationship, most in (("AIDE", "AIDE", 3), ("OBSERVER", "OTHER", 1)):
            for k, observer in enumerate(self.person_ids.get(role, [])):
                pool = by_school[k % len(SCHOOLS)] or self.student_ids
                for target in rng.sample(pool, min(len(pool), rng.randint(1, most))):
                    yield self._agent(observer, target, relationship, [])


# ---------------------------------------------------------------- writing


_COUNTED = (
    models.District,
    models.School,
    models.Session,
    models.Course,
    models.Class,
    models.ClassSession,
    models.Section,
    models.Person,
    models.PersonSchool,
    models.Enrollment,
    models.Agent,
)


class _Inserter:
    """An INSERT of one table for `executemany`, with the values already in database form.

    SQLAlchemy would run every column's bind processor on every value of every row, and that
    costs more than building the rows (a timestamp alone takes microseconds on SQLite). Demo rows
    repeat most values (the source, a class, a person, a timestamp from a small table), so each
    distinct value is processed once here. The statement and the processors come from the
    connection's dialect, exactly as SQLAlchemy would use them, so any engine works.
    """

    def __init__(self, table: sa.Table, dialect: Dialect) -> None:
        compiled = table.insert().compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = compiled.positional
        self.names = list(compiled.positiontup or compiled.binds)
        self.columns: list[tuple[str, Callable[[Any], Any] | None, dict[Any, Any] | None]] = []
        for name in self.names:
            column = table.c[compiled.binds[name].key]
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            # Unique (ids) or unhashable (JSON, lists) values gain nothing from a memo.
            repeats = not column.primary_key and not isinstance(column.type, (sa.JSON, TagList))
            self.columns.append((column.key, process, {} if repeats and process else None))

    def values(self, row: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """`row` (column key -> Python value) as the driver's parameters."""
        out = []
        for key, process, memo in self.columns:
            value = row[key]
            if value is not None and process is not None:
                if memo is None:
                    value = process(value)
                elif value in memo:
                    value = memo[value]
                else:
                    memo[value] = processed = process(value)
                    value = processed
            out.append(value)
        return tuple(out) if self.positional else dict(zip(self.names, out, strict=True))


async def _insert(
    conn: AsyncConnection,
    model: type[SQLModel],
    rows: Iterable[dict[str, Any]],
    counts: Counter[str],
) -> None:
    """Bulk-insert `rows` with one executemany per batch of `_BATCH` rows.

    The next batch is built while the database writes the previous one: the async driver waits
    on another thread (aiosqlite) or a socket, so handing the event loop back every few hundred
    rows lets the pending statement move on.
    """
    table = models.table_of(model)
    inserter = _Inserter(table, conn.dialect)
    writing: asyncio.Task[Any] | None = None
    batch: list[Any] = []
    try:
        for row in rows:
            batch.append(inserter.values(row))
            if len(batch) % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if len(batch) >= _BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.create_task(conn.exec_driver_sql(inserter.sql, batch))
                counts[table.name] += len(batch)
                batch = []
        if writing is not None:
            await writing
        if batch:
            await conn.exec_driver_sql(inserter.sql, batch)
            counts[table.name] += len(batch)
    finally:
        if writing is not None and not writing.done():
            # Building a row failed while a batch was being written: let the write finish
            # before the transaction rolls back; the build error is the one to report.
            await asyncio.wait([writing])


@asynccontextmanager
async def _sqlite_page_cache(conn: AsyncConnection) -> AsyncIterator[None]:
    """On SQLite, a page cache that holds the indexes being filled, for as long as the load runs.

    Random UUID keys land all over every index; with SQLite's 2 MB default cache each insert
    rereads and rewrites index pages, which makes a large demo three times slower.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    await conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
    await conn.commit()
    try:
        yield
    finally:
        await conn.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")
        await conn.commit()


async def find_demo_source(conn: AsyncConnection) -> tuple[str, str] | None:
    """The id and name of the demo source (the owner of the demo district), or None."""
    districts, sources = models.table_of(models.District), models.table_of(models.Source)
    row = (
        await conn.execute(
            sa.select(sources.c.id, sources.c.name)
            .join(districts, districts.c.source_id == sources.c.id)
            .where(districts.c.id == _id("district"))
        )
    ).first()
    return None if row is None else (str(row.id), str(row.name))


async def count_rows(conn: AsyncConnection, source_id: str) -> dict[str, int]:
    """Rows per graph table of `source_id`."""
    counts: dict[str, int] = {}
    for model in _COUNTED:
        table = models.table_of(model)
        counts[table.name] = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.source_id == source_id)
            )
        ).scalar_one()
    return counts


async def load_demo(engine: AsyncEngine, *, people: int = DEFAULT_PEOPLE) -> DemoResult:
    """Create the demo source with `people` people and the eight demo integrations.

    Everything is one transaction: on any error (or when the demo source exists already, which
    raises ValidationFailed) the database is left as it was.
    """
    if not MIN_PEOPLE <= people <= MAX_PEOPLE:
        raise ValidationFailed(
            f"--people {people} is out of range; the demo needs {MIN_PEOPLE} to {MAX_PEOPLE:,}"
        )
    async with engine.connect() as conn, _sqlite_page_cache(conn), conn.begin():
        existing = await find_demo_source(conn)
        if existing is not None:
            counts = await count_rows(conn, existing[0])
            raise ValidationFailed(
                f"this database already holds the demo source {existing[1]!r} (id {existing[0]}, "
                f"{counts['people']:,} people); the demo loads only into a database without it. "
                "To start over, point GATEWAY_DATABASE_URL at a new database (or delete the "
                "SQLite file); to get fresh demo tokens for the existing data, run "
                "`gateway serve --demo`"
            )
        source = await create_source(
            conn,
            SOURCE_NAME,
            provider_name=PROVIDER_NAME,
            provider_application=PROVIDER_APPLICATION,
            team_name=SOURCE_NAME,
            entity_name=SOURCE_NAME,
            entity_type="DISTRICT",
        )
        plan = _Plan(random.Random(_SEED), people)  # noqa: S311 (demo data is seeded on purpose)
        build = _Builder(plan, source.id)
        written: Counter[str] = Counter()
        await _insert(conn, models.District, build.district(), written)
        await _insert(conn, models.School, build.schools(), written)
        await _insert(conn, models.Session, build.session_rows(), written)
        courses, classes = build.course_and_class_rows()
        await _insert(conn, models.Course, courses, written)
        await _insert(conn, models.Class, classes, written)
        await _insert(conn, models.ClassSession, build.class_sessions, written)
        await _insert(conn, models.Section, build.sections, written)
        await _insert(conn, models.Person, build.students(), written)
        await _insert(conn, models.Person, build.staff(), written)
        await _insert(conn, models.Person, build.contacts(), written)
        await _insert(conn, models.PersonSchool, build.person_schools(), written)
        await _insert(conn, models.Enrollment, build.enrollments(), written)
        await _insert(conn, models.Agent, build.agents(), written)
        integrations = await _create_integrations(conn, source.id)
    counts = {models.table_of(m).name: written[models.table_of(m).name] for m in _COUNTED}
    return DemoResult(source.id, source.name, integrations, counts)


# ---------------------------------------------------------------- integrations

_PRIVATE = (
    "emails:read",
    "phones:read",
    "demographics:read",
    "addresses:read",
    "identifiers:read",
    "properties:read",
)
DEMO_INTEGRATIONS = (
    "all",
    "selected-schools",
    "selected-courses",
    "selected-classes",
    "partial-permissions",
    "inactive",
    "disabled",
    "scheduled",
)


def _demo_targets() -> dict[str, list[str]]:
    # Keys that exist at every size: required subjects always get at least one class.
    return {
        "selected-schools": [_id("school:lincoln")],
        "selected-courses": [
            _id("course:maple-grove:03:math:0"),
            _id("course:jefferson:09:math:0"),
        ],
        "selected-classes": [
            _id("class:maple-grove:KG:homeroom:0"),
            _id("class:riverside:02:ela:0"),
            _id("class:jefferson:10:science:0"),
        ],
    }


async def _create_integrations(conn: AsyncConnection, source_id: str) -> list[DemoIntegration]:
    every = [spec.slug for spec in CATALOG]
    partial = [slug for slug in every if slug not in _PRIVATE]
    targets = _demo_targets()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
    kinds: dict[str, tuple[Scope, list[str], IntegrationStatus, datetime | None]] = {
        "all": (Scope.ALL, every, IntegrationStatus.ACTIVE, None),
        "selected-schools": (Scope.SELECTED, every, IntegrationStatus.ACTIVE, None),
        "selected-courses": (Scope.SELECTED, every, IntegrationStatus.ACTIVE, None),
        "selected-classes": (Scope.SELECTED, every, IntegrationStatus.ACTIVE, None),
        "partial-permissions": (Scope.ALL, partial, IntegrationStatus.ACTIVE, None),
        "inactive": (Scope.ALL, every, IntegrationStatus.INACTIVE, None),
        "disabled": (Scope.ALL, every, IntegrationStatus.DISABLED, None),
        "scheduled": (Scope.ALL, every, IntegrationStatus.ACTIVE, start),
    }
    created: list[DemoIntegration] = []
    for name in DEMO_INTEGRATIONS:
        scope, permissions, status, start_date = kinds[name]
        chosen = targets.get(name, [])
        made = await create_integration(
            conn,
            source_id=source_id,
            scope=scope,
            permissions=permissions,
            targets=chosen,
            status=status,
            start_date=start_date,
            name=name,
        )
        created.append(
            DemoIntegration(
                name=name,
                id=made.id,
                status=effective_status(status, start_date).value,
                scope=scope.value,
                targets=chosen,
                permissions=permissions,
                token=made.token,
            )
        )
    return created


async def _destroy_integrations(conn: AsyncConnection, source_id: str) -> None:
    """Destroy the demo source's integrations named like the demo's (others are left alone).

    Through the admin service, so each destruction is audited like any other.
    """
    table = models.table_of(models.Integration)
    found = await conn.execute(
        sa.select(table.c.id)
        .where(table.c.source_id == source_id, table.c.name.in_(DEMO_INTEGRATIONS))
        .order_by(table.c.created_date, table.c.id)
    )
    for integration_id in list(found.scalars()):
        await destroy_integration(conn, integration_id)


async def ensure_demo(engine: AsyncEngine, *, echo: bool) -> DemoResult:
    """Load the demo when it is missing, else recreate its eight integrations for new tokens.

    Tokens are stored only hashed, so printing them again means creating the integrations
    again (the old tokens stop working). With `echo`, the tokens go to standard error.
    """
    async with engine.begin() as conn:
        existing = await find_demo_source(conn)
        result = None
        if existing is not None:
            source_id, source_name = existing
            await _destroy_integrations(conn, source_id)
            integrations = await _create_integrations(conn, source_id)
            counts = await count_rows(conn, source_id)
            result = DemoResult(source_id, source_name, integrations, counts)
    if result is None:
        result = await load_demo(engine)
    if echo:
        print_integrations(result)
    return result


# ---------------------------------------------------------------- output


def print_integrations(result: DemoResult) -> None:
    """A table of the demo integrations and a curl example, on standard error."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    # Tokens must stay whole to be copied: never let a narrow (or absent) terminal crop them.
    console.width = max(console.width, _TABLE_WIDTH)
    table = Table(title=f"Demo integrations of {result.source_name!r}", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("scope", no_wrap=True)
    table.add_column("token", no_wrap=True, min_width=43)
    for integration in result.integrations:
        table.add_row(integration.name, integration.status, integration.scope, integration.token)
    console.print(table)
    token = next(i.token for i in result.integrations if i.name == "all")
    console.print(
        f"curl -s {GRAPHQL_URL} -H 'Authorization: Bearer {token}' "
        "-H 'Content-Type: application/json' "
        """-d '{"query": "{ schools { nodes { id name } } }"}'""",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _print_summary(result: DemoResult, seconds: float) -> None:
    counts = ", ".join(f"{n:,} {table}" for table, n in result.counts.items())
    sys.stderr.write(
        f"Loaded the demo source {result.source_name!r} (id {result.source_id}) "
        f"in {seconds:.1f} s: {counts}.\n"
    )
    print_integrations(result)


def register(app: typer.Typer) -> None:
    """Add `gateway demo` to the command line."""
    from gateway.cli import emit_json, run, with_engine

    @app.command("demo")
    def demo(
        people: Annotated[
            int,
            typer.Option(
                "--people", min=MIN_PEOPLE, max=MAX_PEOPLE, help="How many people to create."
            ),
        ] = DEFAULT_PEOPLE,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object with the tokens on stdout.")
        ] = False,
    ) -> None:
        """Create the deterministic demo source and one integration of each kind."""
        started = time.perf_counter()
        result = run(with_engine(lambda engine: load_demo(engine, people=people)))
        if as_json:
            emit_json(result.as_json())
        else:
            _print_summary(result, time.perf_counter() - started)
