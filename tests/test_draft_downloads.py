"""Downloads of drafts and published versions: kept files, names, and a failing converter.

The formats themselves are checked in tests/test_draft_exports.py.
"""

import pytest
from sqlalchemy import select, update

from cop.drafts import exports
from cop.drafts.models import Publication, PublicationFile, SourceKind
from cop.extensions import db
from tests.test_draft_review import publish, world  # noqa: F401 - the fixture


def published_guide(world) -> int:  # noqa: F811 - the fixture
    """Publish a guide with one quoted takeaway; return its id."""
    draft_id = world.guide()
    world.insert(world.section_ids(draft_id)[1], SourceKind.TAKEAWAY, world.takeaways["issue"])
    publish(world, draft_id)
    return draft_id


def test_a_published_file_is_made_once_then_served_as_kept(world, app):  # noqa: F811
    published_guide(world)
    client = world.as_(world.nadia)
    first = client.get(f"/p/{world.slug}/reperes/v1.odt")
    assert first.status_code == 200 and first.data[:2] == b"PK"
    assert first.headers["Content-Disposition"] == 'attachment; filename="reperes.odt"'
    with app.app_context():
        kept = db.session.scalars(select(PublicationFile)).all()
        assert [(row.format, row.content) for row in kept] == [("odt", first.data)]
        # What is served from now on is the kept file, not a new export.
        db.session.execute(update(PublicationFile).values(content=b"kept bytes"))
        db.session.commit()
    assert client.get(f"/p/{world.slug}/reperes/v1.odt").data == b"kept bytes"
    # The draft's own export is made afresh each time.
    draft_export = client.get(world.draft_url(1, "/export.odt"))
    assert draft_export.status_code == 200 and draft_export.data[:2] == b"PK"


def test_an_unknown_format_is_not_found_and_keeps_nothing(world, app):  # noqa: F811
    published_guide(world)
    client = world.as_(world.nadia)
    assert client.get(f"/p/{world.slug}/reperes/v1.exe").status_code == 404
    assert client.get(world.draft_url(1, "/export.tex")).status_code == 404
    assert client.get(f"/p/{world.slug}/reperes/v2.pdf").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(PublicationFile)) is None


@pytest.fixture
def broken_pandoc(monkeypatch, tmp_path):
    """Make pandoc a program that fails, as a corrupt installation would."""
    failing = tmp_path / "pandoc"
    failing.write_text("#!/bin/sh\necho 'pandoc: out of order' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.setattr(exports, "_pandoc_path", lambda: str(failing))


def test_a_converter_failure_answers_503_with_a_message_and_keeps_nothing(
    world,  # noqa: F811 - the fixture
    app,
    broken_pandoc,
    caplog,
):
    published_guide(world)
    client = world.as_(world.nadia)
    response = client.get(f"/p/{world.slug}/reperes/v1.docx")
    assert response.status_code == 503
    assert "The export could not be made" in response.get_data(as_text=True)
    assert "pandoc failed (3): pandoc: out of order" in caplog.text
    answer = client.get(world.draft_url(1, "/export.docx"), headers={"Accept": "application/json"})
    assert answer.status_code == 503 and answer.get_json()["error"] == "export_failed"
    with app.app_context():
        assert db.session.scalar(select(PublicationFile)) is None
        assert db.session.scalar(select(Publication.version)) == 1
