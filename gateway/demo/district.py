"""The demo district's fixed shape: its grades, its four schools and the subjects each teaches."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_NAME = "Demo District"
DOMAIN = "demo-district.example"
CLASS_SIZE = 25

GRADES = ("KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")


def grade_number(grade: str) -> int:
    """0 for kindergarten, else the grade's number."""
    return 0 if grade == "KG" else int(grade)


def grade_name(grade: str) -> str:
    """Kindergarten, or Grade N."""
    return "Kindergarten" if grade == "KG" else f"Grade {int(grade)}"


@dataclass(frozen=True, slots=True)
class School:
    """One of the district's schools; `weight` is its share of the students."""

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
    School("maple-grove", "Maple Grove Elementary School", "MGE", "elementary", GRADES[0:6],
           0.27, "1200 Maple Grove Rd", "62704", 39.772104, -89.693412, "+12175550110", "TERM"),
    School("riverside", "Riverside Elementary School", "RSE", "elementary", GRADES[0:6],
           0.23, "455 River Bend Dr", "62702", 39.815633, -89.641207, "+12175550120", "TERM"),
    School("lincoln", "Lincoln Middle School", "LMS", "middle", GRADES[6:9],
           0.22, "800 Lincoln Ave", "62703", 39.781208, -89.630115, "+12175550130", "SEMESTER"),
    School("jefferson", "Jefferson High School", "JHS", "high", GRADES[9:13],
           0.28, "2100 Jefferson Pkwy", "62711", 39.764517, -89.732144, "+12175550140",
           "SEMESTER"),
)  # fmt: skip
SCHOOL_INDEX = {school.key: i for i, school in enumerate(SCHOOLS)}


@dataclass(frozen=True, slots=True)
class Subject:
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
    seats: int = 0  # district courses: how many classes of CLASS_SIZE seats


_ADVISORY = Subject("advisory", "ADV", "Advisory", "CEDS.23", required=True, course="none")
SUBJECTS: dict[str, tuple[Subject, ...]] = {
    "elementary": (
        Subject("homeroom", "HR", "Homeroom", "CEDS.23", required=True, course="none"),
        Subject("ela", "ELA", "English Language Arts", "CEDS.01", required=True,
                sections=("Guided Reading Blue", "Guided Reading Green")),
        Subject("math", "MATH", "Mathematics", "CEDS.02", required=True),
        Subject("science", "SCI", "Science", "CEDS.03"),
        Subject("social", "SOC", "Social Studies", "CEDS.04"),
        Subject("art", "ART", "Art", "CEDS.05"),
        Subject("music", "MUS", "General Music", "CEDS.05"),
        Subject("pe", "PE", "Physical Education", "CEDS.08"),
    ),
    "middle": (
        _ADVISORY,
        Subject("ela", "ELA", "English Language Arts", "CEDS.01", required=True),
        Subject("math", "MATH", "Mathematics", "CEDS.02", required=True),
        Subject("science", "SCI", "Science", "CEDS.03", required=True,
                sections=("Lab A", "Lab B")),
        Subject("social", "SOC", "Social Studies", "CEDS.04"),
        Subject("art", "ART", "Art", "CEDS.05", semester=-1),
        Subject("band", "BAND", "Band", "CEDS.05"),
        Subject("spanish", "SPAN", "Spanish", "CEDS.24", locale="es-US"),
        Subject("pe", "PE", "Physical Education", "CEDS.08", sections=("Team 1", "Team 2")),
        Subject("cs", "CS", "Computer Science Discoveries", "CEDS.10"),
        Subject("digital", "DIGCIT", "Digital Citizenship", "CEDS.10", course="district",
                semester=0, seats=2),
    ),
    "high": (
        _ADVISORY,
        Subject("english", "ENG", "English", "CEDS.01", required=True,
                names=("English 9", "English 10", "English 11", "English 12")),
        Subject("math", "MATH", "Mathematics", "CEDS.02", required=True,
                names=("Algebra I", "Geometry", "Algebra II", "Precalculus")),
        Subject("science", "SCI", "Science", "CEDS.03", required=True,
                names=("Biology", "Chemistry", "Physics", "Environmental Science"),
                sections=("Lab A", "Lab B")),
        Subject("social", "SOC", "Social Studies", "CEDS.04",
                names=("World History", "U.S. History", "U.S. Government", "Economics")),
        Subject("spanish", "SPAN", "Spanish", "CEDS.24", locale="es-US",
                names=("Spanish I", "Spanish II", "Spanish III", "Spanish IV")),
        Subject("french", "FREN", "French", "CEDS.24", locale="fr-US",
                names=("French I", "French II", "French III", "French IV")),
        Subject("art", "ART", "Studio Art", "CEDS.05", semester=-1),
        Subject("choir", "CHOIR", "Concert Choir", "CEDS.05"),
        Subject("cs", "CS", "Computer Science Principles", "CEDS.10"),
        Subject("study", "STUDY", "Study Hall", "CEDS.23", course="none"),
        Subject("health", "HLTH", "Health Education", "CEDS.08", course="district",
                semester=1, seats=3),
        Subject("driver", "DRVED", "Driver Education", "CEDS.20", course="district",
                semester=0, seats=1),
    ),
}  # fmt: skip
