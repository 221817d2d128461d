"""Made-up personal data drawn from the seeded generator: names, homes, phones, demographics."""

from __future__ import annotations

import itertools
import random
from datetime import date
from typing import Any

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


def phone_number(rng: random.Random) -> str:
    """A Springfield 555 number."""
    return f"+1217555{rng.randrange(10_000):04d}"


def slug(text: str) -> str:
    """`text` lower-cased with only its letters and digits, for usernames and emails."""
    return "".join(c for c in text.lower() if c.isalnum())


def home_address(rng: random.Random) -> dict[str, Any]:
    """A Springfield street address with its phone and coordinates."""
    return {
        "street": f"{rng.randrange(100, 9900)} {rng.choice(_STREETS)}",
        "unit": f"Apt {rng.randrange(1, 40)}{rng.choice('ABCD')}" if rng.random() < 0.25 else None,
        "city": "Springfield",
        "state": "IL",
        "postalCode": rng.choice(_POSTAL_CODES),
        "country": "US",
        "phone": phone_number(rng),
        "latitude": round(39.70 + rng.random() * 0.16, 6),
        "longitude": round(-89.75 + rng.random() * 0.16, 6),
    }


def first_name(rng: random.Random) -> tuple[str, str]:
    """A first name and the gender that goes with it."""
    roll = rng.random()
    if roll < 0.02:
        return rng.choice(_NEUTRAL), "other"
    if roll < 0.51:
        return rng.choice(_FEMALE), "female"
    return rng.choice(_MALE), "male"


def last_name(rng: random.Random) -> str:
    """A family name."""
    return rng.choice(_LAST)


def staff_title(rng: random.Random) -> str:
    """The job title of a staff member who is neither a teacher nor an administrator."""
    return rng.choice(_STAFF_TITLES)


def demographics(rng: random.Random, gender: str, birthday: date, student: bool) -> dict[str, Any]:
    """A person's demographics; program flags (IEP, 504, ...) can be true only for students."""
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
