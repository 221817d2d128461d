"""manifest.csv: which files a OneRoster folder holds, in which mode (bulk or delta), and the
OneRoster version; a misspelled key is read as the key it was meant to be, with a warning."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from gateway.errors import ValidationFailed
from gateway.importers.reading import MANIFEST, CsvFile, Folder, OneRosterError, Warnings

GRAPH_FILES = (
    "orgs",
    "academicSessions",
    "courses",
    "classes",
    "users",
    "roles",
    "demographics",
    "enrollments",
)
"""The files that feed the Graph, in the order they are imported (references point backwards)."""

OTHER_FILES = (
    "categories",
    "classResources",
    "courseResources",
    "lineItems",
    "lineItemLearningObjectiveIds",
    "lineItemScoreScales",
    "resources",
    "results",
    "resultLearningObjectiveIds",
    "resultScoreScales",
    "scoreScales",
    "userProfiles",
    "userResources",
)
"""Files of the OneRoster 1.1 and 1.2 bindings that the Graph has no place for (gradebook,
resources, login profiles): accepted and skipped with a warning."""

VERSIONS = ("1.0", "1.1", "1.2")
MODES = ("bulk", "delta", "absent")
_PLAIN_KEYS = ("manifest.version", "oneroster.version", "source.systemName", "source.systemCode")
_KNOWN_KEYS = (*_PLAIN_KEYS, *(f"file.{name}" for name in (*GRAPH_FILES, *OTHER_FILES)))


@dataclass
class Manifest:
    """The manifest's answer: each present file's mode, and the OneRoster version."""

    version: str
    modes: dict[str, str] = field(default_factory=dict)
    """File stem (`users`) → `bulk` or `delta`, for the Graph files that are present."""
    properties: dict[str, str] = field(default_factory=dict)

    def mode(self, stem: str) -> str:
        """`bulk`, `delta` or `absent` for file `stem`."""
        return self.modes.get(stem, "absent")


def read_manifest(folder: Folder, warnings: Warnings) -> Manifest:
    """Read manifest.csv (or infer one, with a warning, when the folder has none)."""
    names = folder.names()
    if MANIFEST not in names and not any(f"{stem}.csv" in names for stem in GRAPH_FILES):
        raise _not_oneroster(folder)
    if MANIFEST not in names:
        warnings.add(
            "manifest",
            "manifest.csv is missing: every OneRoster file in the folder is read in bulk mode",
        )
        found = [stem for stem in GRAPH_FILES if f"{stem}.csv" in names]
        manifest = Manifest(version=_infer_version(names), modes=dict.fromkeys(found, "bulk"))
        _warn_skipped(names, manifest, warnings)
        return manifest

    csv_file = CsvFile(folder, MANIFEST, required=("propertyName", "value"))
    properties: dict[str, tuple[str, int]] = {}
    for batch in csv_file.batches(1000):
        for row in batch:
            key = row.cells["propertyName"]
            value = row.cells["value"].strip()
            if not key:
                continue
            if key not in _KNOWN_KEYS and not key.startswith(("ext.", "file.ext")):
                meant = difflib.get_close_matches(key, _KNOWN_KEYS, n=1, cutoff=0.8)
                if meant and meant[0] not in properties:
                    warnings.add(
                        "manifest",
                        f"manifest.csv, line {row.line}: unknown key '{key}', read as '{meant[0]}'",
                    )
                    key = meant[0]
                else:
                    warnings.add(
                        "manifest", f"manifest.csv, line {row.line}: unknown key '{key}' ignored"
                    )
                    continue
            if key in properties:
                raise OneRosterError(
                    f"key '{key}' appears twice (first at line {properties[key][1]})",
                    file=MANIFEST,
                    line=row.line,
                    column="propertyName",
                )
            if key.startswith("file.") and value.lower() not in MODES:
                raise OneRosterError(
                    f"'{value}' is not a file mode; expected one of {', '.join(MODES)}",
                    file=MANIFEST,
                    line=row.line,
                    column="value",
                )
            properties[key] = (value, row.line)

    version = _read_version(properties, names, warnings)
    modes: dict[str, str] = {}
    for stem in (*GRAPH_FILES, *OTHER_FILES):
        value, line = properties.get(f"file.{stem}", ("absent", 0))
        mode = value.lower()
        present = f"{stem}.csv" in names
        if mode != "absent" and not present:
            raise OneRosterError(
                f"file.{stem} is '{mode}' but {stem}.csv is not in the folder",
                file=MANIFEST,
                line=line,
                column="value",
            )
        if mode != "absent" and stem in GRAPH_FILES:
            modes[stem] = mode
    manifest = Manifest(
        version=version, modes=modes, properties={k: v for k, (v, _) in properties.items()}
    )
    listed = {key for key in properties if key.startswith("file.")}
    _warn_skipped(names, manifest, warnings, listed)
    return manifest


def _not_oneroster(folder: Folder) -> ValidationFailed:
    """The error for a folder with neither a manifest nor a file that feeds the Graph: an empty
    folder, the parent of an export, unrelated files (it would create an empty source)."""
    entries = folder.entries()
    shown = ", ".join(entries[:_SHOWN]) + (
        f" and {len(entries) - _SHOWN} more" if len(entries) > _SHOWN else ""
    )
    found = f"it holds {shown}" if entries else "it is empty"
    expected = ", ".join(f"{stem}.csv" for stem in GRAPH_FILES)
    return ValidationFailed(
        f"{folder.path} holds no OneRoster file ({found}): expected {MANIFEST} or at least one "
        f"of {expected}"
    )


_SHOWN = 5
"""How many of a folder's entries an error message names."""


def _read_version(
    properties: dict[str, tuple[str, int]], names: set[str], warnings: Warnings
) -> str:
    if "oneroster.version" not in properties:
        version = _infer_version(names)
        warnings.add(
            "manifest", f"manifest.csv has no oneroster.version; reading the files as {version}"
        )
        return version
    value, line = properties["oneroster.version"]
    if value not in VERSIONS:
        raise OneRosterError(
            f"'{value}' is not a OneRoster version this importer reads ({', '.join(VERSIONS)})",
            file=MANIFEST,
            line=line,
            column="value",
        )
    return value


def _infer_version(names: set[str]) -> str:
    return "1.2" if "roles.csv" in names else "1.1"


def _warn_skipped(
    names: set[str], manifest: Manifest, warnings: Warnings, listed: set[str] | None = None
) -> None:
    for stem in OTHER_FILES:
        if f"{stem}.csv" in names:
            warnings.add("skipped", f"{stem}.csv has no place in the Graph and was not imported")
    if listed is None:
        return
    for stem in GRAPH_FILES:
        if f"{stem}.csv" in names and stem not in manifest.modes:
            state = "absent" if f"file.{stem}" in listed else "not listed"
            warnings.add(
                "skipped",
                f"{stem}.csv is in the folder but the manifest says file.{stem} is {state}; "
                "it was not imported",
            )
