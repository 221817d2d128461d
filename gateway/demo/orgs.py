"""The demo's organisations: the district's row and its four schools' rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.demo.district import DOMAIN, SCHOOLS, SOURCE_NAME, School
from gateway.demo.ids import stable_id
from gateway.demo.rows import RowMaker, iso


def district_id() -> str:
    """The demo district's id, the same in every demo database."""
    return stable_id("district")


def school_id(school: School) -> str:
    """A demo school's id, the same in every demo database."""
    return stable_id(f"school:{school.key}")


def district_rows(rows: RowMaker) -> Iterator[dict[str, Any]]:
    """The one district."""
    row = rows.base("district", [
        {"type": "sis_id", "value": "DD-0001"},
        {"type": "state_id", "value": "15-016-1860-26"},
        {"type": "nces_id", "value": "1799990"},
    ])  # fmt: skip
    row["properties"] = {
        "superintendent": "Dr. Renee Okafor",
        "website": f"https://www.{DOMAIN}",
        "dateLastModified": iso(row["updated_date"]),
    }
    row.update(
        name=SOURCE_NAME,
        locale="en-US",
        time_zone="America/Chicago",
        address=_org_address("100 Capitol Ave", "62701", 39.798363, -89.654961, "+12175550100"),
    )
    yield row


def school_rows(rows: RowMaker) -> Iterator[dict[str, Any]]:
    """The schools of SCHOOLS, in order."""
    for n, school in enumerate(SCHOOLS, start=1):
        code = f"{n:04d}"
        row = rows.base(f"school:{school.key}", [
            {"type": "sis_id", "value": school.code},
            {"type": "state_id", "value": f"15-016-1860-26-{code}"},
            {"type": "nces_id", "value": f"17999900{n:04d}"},
        ])  # fmt: skip
        row["properties"] = {
            "schoolType": school.kind.title(),
            "title1": n % 2 == 1,
            "dateLastModified": iso(row["updated_date"]),
        }
        row.update(
            district_id=district_id(),
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
