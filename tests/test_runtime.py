"""The garbage collector's pace: an import paces it for its length and restores it after."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import runtime
from gateway.importers import oneroster
from tests.test_importers_oneroster import district_files, import_folder, write_folder

_DISTINCT = (701, 11, 12)


@pytest.fixture
def distinct_pace() -> Iterator[None]:
    """A pace no code sets, restored after the test."""
    before = gc.get_threshold()
    gc.set_threshold(*_DISTINCT)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@pytest.mark.usefixtures("distinct_pace")
def test_an_import_paces_the_collector_while_it_runs_and_restores_it(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    during: list[tuple[int, int, int]] = []
    import_orgs = oneroster.import_orgs

    async def recording(run: Any) -> None:
        during.append(gc.get_threshold())
        await import_orgs(run)

    monkeypatch.setattr(oneroster, "import_orgs", recording)

    import_folder(db_url, write_folder(tmp_path / "f", district_files()))

    assert during == [(runtime.IMPORT_YOUNG_COLLECTION_EVERY, 11, runtime.FULL_COLLECTION_EVERY)]
    assert gc.get_threshold() == _DISTINCT


@pytest.mark.usefixtures("distinct_pace")
def test_the_pace_is_restored_when_the_last_of_overlapping_imports_ends() -> None:
    paced = (runtime.IMPORT_YOUNG_COLLECTION_EVERY, 11, runtime.FULL_COLLECTION_EVERY)
    first, second = runtime.paced_for_import(), runtime.paced_for_import()

    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second runs
    assert gc.get_threshold() == paced
    with pytest.raises(ValueError, match="failed"), runtime.paced_for_import():
        raise ValueError("failed")
    assert gc.get_threshold() == paced
    second.__exit__(None, None, None)

    assert gc.get_threshold() == _DISTINCT
