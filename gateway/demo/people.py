"""The demo's people: students by household, staff, contacts, and the schools each belongs to."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from gateway.demo import personal
from gateway.demo.district import DOMAIN, GRADES, SCHOOLS, grade_number
from gateway.demo.ids import SEED
from gateway.demo.orgs import district_id, school_id
from gateway.demo.plan import Plan
from gateway.demo.rows import RowMaker, iso


class People:
    """Builds people's rows; keeps their ids by role for enrollments and agents."""

    def __init__(self, plan: Plan, rows: RowMaker) -> None:
        self.plan = plan
        self.rows = rows
        self.rng = rows.rng
        self.district_id = district_id()
        self.person_ids: dict[str, list[str]] = {}
        self.student_ids: list[str] = []
        # (contact id, role, household, primary contact of the household)
        self.household_contacts: list[tuple[str, str, int, bool]] = []

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
        serial = self.rows.next_serial()
        first, gender = personal.first_name(rng)
        last = last or personal.last_name(rng)
        middle = personal.first_name(rng)[0] if rng.random() < 0.7 else None
        student = role == "STUDENT"
        contact = role in ("PARENT", "GUARDIAN", "OBSERVER")
        if birthday is None:
            birthday = date(1962, 1, 1) + timedelta(days=rng.randrange(365 * 36))
        prefix = "S" if student else "C" if contact else "E"
        sis = f"{prefix}{serial:07d}"
        username = f"{personal.slug(first)[:1]}{personal.slug(last)}{serial}"
        if student:
            email = f"{username}@students.{DOMAIN}"
        elif contact:
            email = f"{personal.slug(first)}.{personal.slug(last)}{serial}@mail.example.com"
        else:
            email = f"{personal.slug(first)}.{personal.slug(last)}{serial}@{DOMAIN}"
        identifiers = [{"type": "sis_id", "value": sis}]
        if student:
            identifiers.append({"type": "state_id", "value": f"{rng.randrange(10**9, 10**10)}"})
        if not contact:
            identifiers.append({"type": "username", "value": username})
        row = self.rows.base(key, identifiers)
        demographics = personal.demographics(rng, gender, birthday, student)
        row["properties"] = {
            "status": "active",
            "enabledUser": not contact,
            "role": role.lower(),
            "dateLastModified": iso(row["updated_date"]),
        }
        row.update(
            district_id=self.district_id,
            first_name=first,
            middle_name=middle,
            last_name=last,
            display_name=f"{first} {last}",
            picture_url=None if contact else f"https://avatars.{DOMAIN}/{row['id']}.png",
            roles=[role],
            email=email,
            phone=personal.phone_number(rng),
            locale="es-US" if demographics["primaryLanguage"] == "es" else "en-US",
            time_zone="America/Chicago",
            graduation_year=None,
            grade_levels=[],
            demographics=demographics,
            address=address or personal.home_address(rng),
        )
        self.person_ids.setdefault(role, []).append(row["id"])
        return row

    def _household(self, h: int) -> tuple[str, dict[str, Any]]:
        # Its own generator, so a household's name and home are the same whoever asks first.
        rng = random.Random(SEED * 7_919 + h)  # noqa: S311 (demo data is seeded on purpose)
        return personal.last_name(rng), personal.home_address(rng)

    def students(self) -> Iterator[dict[str, Any]]:
        """Students in plan order; each takes its household's family name and home."""
        plan = self.plan
        for i in range(len(plan.school)):
            grade = plan.grade[i]
            n = grade_number(grade)
            last, address = self._household(plan.household[i])
            birthday = date(2019 - n, 9, 2) + timedelta(days=self.rng.randrange(365))
            row = self._person(f"person:student:{i}", "STUDENT", last=last, address=address,
                               birthday=birthday)  # fmt: skip
            row["graduation_year"] = 2026 + 12 - n
            row["grade_levels"] = [grade]
            # Drawn, though no longer stored (a PIN is a credential), so that the seeded
            # generator gives every later row what it gave before.
            self.rng.randrange(10_000)
            self.student_ids.append(row["id"])
            yield row

    def staff(self) -> Iterator[dict[str, Any]]:
        """Administrators, teachers and the other staff roles, role by role."""
        counts = self.plan.roles
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
                title = titles.get(role) or personal.staff_title(self.rng)
                if role == "TEACHER":
                    title = "Teacher"
                    row["grade_levels"] = sorted(grades_taught.get(k, ()), key=GRADES.index)
                row["properties"]["title"] = title
                yield row

    def contacts(self) -> Iterator[dict[str, Any]]:
        """Parents, guardians and observers: no school, no enrollment, only agents."""
        counts = self.plan.roles
        roles = ["PARENT"] * counts["PARENT"] + ["GUARDIAN"] * counts["GUARDIAN"]
        self.rng.shuffle(roles)
        roles[:2] = ["PARENT", "GUARDIAN"]  # both kinds exist even in the smallest demo
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
        """The schools of students, administrators, teachers and school staff."""
        plan = self.plan

        def member(person_id: str, s: int) -> dict[str, Any]:
            return {
                "person_id": person_id,
                "school_id": school_id(SCHOOLS[s]),
                "source_id": self.rows.source_id,
            }

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
