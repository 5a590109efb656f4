"""The report's provenance says which source the run used: the official files or the course's CSV files."""

from __future__ import annotations

from lablib.data.fashion_mnist import FILES
from lablib.report.tables import provenance_table
from lablib.report.text import _provenance_text

COURSE = {
    "source": "course_csv",
    "location": "/data/train.csv",
    "sha256": {"/data/train.csv": "ab", "/data/test.csv": "cd"},
}


def test_course_csv_files_are_named_with_their_hashes_and_where_the_test_labels_came_from():
    assert provenance_table(COURSE).splitlines() == [
        "| File | SHA-256 |",
        "| --- | --- |",
        "| `/data/train.csv` | `ab` |",
        "| `/data/test.csv` | `cd` |",
    ]
    official = _provenance_text({**COURSE, "test_labels": "official"})
    assert official.startswith("The images came from the course's CSV files")
    assert "taken from the official test images" in official
    assert "no test accuracy" in _provenance_text({**COURSE, "test_labels": "unknown"})


def test_official_files_keep_their_published_hashes():
    provenance = {"source": "debian", "location": "/usr/share", "sha256": {n: f.sha256 for n, f in FILES.items()}}
    assert all(line.endswith("| matches |") for line in provenance_table(provenance).splitlines()[2:])
    assert _provenance_text(provenance).startswith("The files came from Debian's package dataset-fashion-mnist")
