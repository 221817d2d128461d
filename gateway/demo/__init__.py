"""Deterministic demo data: one synthetic district and the eight demo integrations (DESIGN §7).

`load_demo` writes the whole source in one transaction, `ensure_demo` backs `gateway serve
--demo`, and `cli.register` adds `gateway demo` to the command line. The same `people` gives the
same graph ids and values on every run: randomness comes from one seeded `random.Random`, ids
are `uuid5` of structural keys (so a school keeps its id whatever the size), and timestamps
derive from fixed dates. The calendar is the 2025-26 school year as it stood on 20 January 2026.

Modules, each importing only from those listed below it:

    cli            `gateway demo`
    load           load_demo, ensure_demo, find_demo_source, count_rows
    integrations   the eight demo integrations
    output         the integrations table and the load summary, on standard error
    results        DemoResult and DemoIntegration
    agents, enrollments, people, schedule, orgs: each graph table's rows, from the plan
    writer         batched inserts
    plan           who is where: students' schools, grades and subjects; classes; teachers
    rows           what every row draws from: the seeded generator, stamps, a serial number
    personal       made-up names, homes, phone numbers, demographics
    district, school_year, ids: the fixed district, its calendar, the seed and stable ids
"""

from gateway.demo.integrations import DEMO_INTEGRATIONS
from gateway.demo.load import (
    DEFAULT_PEOPLE,
    MAX_PEOPLE,
    MIN_PEOPLE,
    count_rows,
    ensure_demo,
    find_demo_source,
    load_demo,
)
from gateway.demo.output import print_integrations
from gateway.demo.results import DemoIntegration, DemoResult

__all__ = [
    "DEFAULT_PEOPLE",
    "DEMO_INTEGRATIONS",
    "MAX_PEOPLE",
    "MIN_PEOPLE",
    "DemoIntegration",
    "DemoResult",
    "count_rows",
    "ensure_demo",
    "find_demo_source",
    "load_demo",
    "print_integrations",
]
