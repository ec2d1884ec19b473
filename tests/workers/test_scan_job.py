"""ScanJob and ImportJob on the job runner: results, cancel keeps what was done, problems."""

from __future__ import annotations

import pytest

from craftstudio.domain.cancel import Cancelled, CancelToken
from craftstudio.library.catalog import Catalog
from craftstudio.workers.scan_job import ImportJob, ScanJob
from tests.kit.library_files import CORRUPT, write_lora_folder, write_many


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog.open(tmp_path / "home")
    yield cat
    cat.close()


def test_scan_job_reports_and_keeps_work_done_before_a_cancel(catalog, tmp_path):
    folder = write_many(tmp_path / "many", 12)
    token = CancelToken()
    events = []

    def progress(event):
        events.append(event)
        if len(events) == 5:
            token.cancel()

    with pytest.raises(Cancelled):
        ScanJob(catalog, [folder]).run(progress, token)
    assert catalog.items.count("lora") == 5
    report = ScanJob(catalog, [folder]).run(lambda e: None, CancelToken())
    assert (report.added, report.unchanged) == (7, 5)


def test_scan_job_names_a_folder_that_is_gone(catalog, tmp_path):
    with pytest.raises(Exception, match="does not exist any more"):
        ScanJob(catalog, [tmp_path / "unplugged"]).run(lambda e: None, CancelToken())


def test_import_job_adds_what_it_can_and_says_why_not(catalog, tmp_path):
    folder = write_lora_folder(tmp_path / "drop")
    outcome = ImportJob(catalog, [folder / "watercolor.safetensors", folder / CORRUPT],
                        copy=True).run(lambda e: None, CancelToken())
    assert len(outcome.item_ids) == 1
    assert catalog.items.get(outcome.item_ids[0]).path.startswith(str(catalog.paths.loras))
    (path, reason), = outcome.problems
    assert path.endswith(CORRUPT) and "too short" in reason
