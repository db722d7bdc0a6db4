"""Notes outside the live room: versions, comparison, restoring, exports."""

import shutil
import sqlite3
from types import SimpleNamespace

import pytest
from greenlet import GreenletExit
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text
from sqlalchemy import select

from cop import create_app
from cop.auth.models import User
from cop.communities.models import Community, Role
from cop.extensions import db
from cop.notes import services
from cop.notes.models import Note, NoteUpdate, NoteVersion
from tests.conftest import Factory, config_for_tests


def typed(doc: Doc, change) -> bytes:
    """Apply a change to a pycrdt document and return the update it made."""
    before = doc.get_state()
    change(doc.get(services.TEXT_NAME, type=Text))
    return doc.get_update(before)


class NoteWorld:
    """A community note written to through the service layer, as the live room does."""

    def __init__(self, app, make):
        self.app = app
        self.slug = make.community()
        self.writer = make.member(self.slug, Role.PARTICIPANT)
        self.observer = make.member(self.slug, Role.OBSERVER)
        self.doc = Doc()
        with app.app_context():
            community = db.session.scalar(select(Community).filter_by(slug=self.slug))
            self.note_id = services.create_note(None, community, "Plenary notes").id
            db.session.commit()

    def write(self, change, user_id=None) -> None:
        update = typed(self.doc, change)
        with self.app.app_context():
            services.append_update(self.note_id, update, {user_id or self.writer})
            db.session.commit()

    def compact(self) -> Note:
        with self.app.app_context():
            note = services.compact_note(self.note_id)
            db.session.commit()
            return note

    def versions(self) -> list[NoteVersion]:
        with self.app.app_context():
            return services.versions_of(db.session.get(Note, self.note_id))

    def text(self) -> str:
        with self.app.app_context():
            return services.current_text(db.session.get(Note, self.note_id))

    def url(self, tail: str = "") -> str:
        return f"/c/{self.slug}/notes/{self.note_id}{tail}"


def test_compaction_merges_the_log_and_keeps_a_first_version(app, make):
    world = NoteWorld(app, make)
    world.write(lambda text: text.insert(0, "Hello"))
    world.write(lambda text: text.insert(5, " world"))
    assert world.text() == "Hello world"
    world.compact()
    with app.app_context():
        note = db.session.get(Note, world.note_id)
        assert note.text == "Hello world" and services.updates_since(note.id, 0) == []
    versions = world.versions()
    assert [(v.text, v.contributors, v.label) for v in versions] == [
        ("Hello world", [world.writer], None)
    ]
    # A burst right after does not make another automatic version...
    world.write(lambda text: text.insert(0, "Oh. "))
    world.compact()
    assert len(world.versions()) == 1


def test_compactions_gather_contributors_until_a_version_keeps_them(app, make):
    world = NoteWorld(app, make)
    second = make.member(world.slug, Role.PARTICIPANT)
    world.write(lambda text: text.insert(0, "one"))
    world.compact()  # the first version, with the first writer
    world.write(lambda text: text.insert(3, " two"), user_id=second)
    world.compact()  # no version yet: too soon after the first
    with app.app_context():
        note = db.session.get(Note, world.note_id)
        assert (note.text, note.unversioned_contributors) == ("one two", [second])
        # Two compactions prepared from the same state: only the first is stored.
        world.write(lambda text: text.insert(0, "Zero, "))
        first = services.prepare_compaction(world.note_id)
        late = services.prepare_compaction(world.note_id)
        assert services.store_compaction(first) is not None
        assert services.store_compaction(late) is None
        db.session.commit()
        # Once a version is due, it keeps everyone since the last one.
        oldest = db.session.scalar(select(NoteVersion).filter_by(note_id=world.note_id))
        oldest.created_at -= services.AUTOMATIC_VERSION_INTERVAL
        db.session.commit()
    world.write(lambda text: text.insert(len("Zero, one two"), "."), user_id=second)
    world.compact()
    newest = world.versions()[0]
    assert (newest.text, sorted(newest.contributors)) == (
        "Zero, one two.",
        sorted([world.writer, second]),
    )
    with app.app_context():
        note = db.session.get(Note, world.note_id)
        assert note.unversioned_contributors == [] and note.state_seq > 0


def test_a_kept_document_reads_the_text_of_each_compaction_as_a_fresh_merge_would(app, make):
    world = NoteWorld(app, make)
    document = services.CompactedDocument()
    pauses = []

    def compact_with_the_kept_document() -> str:
        with app.app_context():
            compaction = services.prepare_compaction(
                world.note_id, pause=lambda: pauses.append(1), document=document
            )
            services.store_compaction(compaction)
            db.session.commit()
            assert compaction.text == services.text_of_update(compaction.state)
            return compaction.text

    # More updates than one step, some waiting for an update logged after them.
    other = Doc()
    first = typed(other, lambda text: text.insert(0, "[first]"))
    waiting = typed(other, lambda text: text.insert(7, "[built on first]"))
    world.write(lambda text: text.insert(0, "start "))
    with app.app_context():
        services.append_update(world.note_id, waiting, {world.writer})
        db.session.commit()
    for index in range(services.COMPACTION_STEP + 10):
        world.write(lambda text, index=index: text.insert(len(text), f"<{index}>"))
    text = compact_with_the_kept_document()
    assert "[built on first]" not in text and text.endswith(f"<{services.COMPACTION_STEP + 9}>")
    assert len(pauses) >= 4  # the merge and the integration went step by step
    kept = document.doc

    with app.app_context():
        services.append_update(world.note_id, first, {world.writer})
        db.session.commit()
    assert "[first][built on first]" in compact_with_the_kept_document()
    assert document.doc is kept  # only the new update was integrated

    # A compaction not stored (another process stored one first) leaves the document right.
    world.write(lambda text: text.insert(0, "A "))
    with app.app_context():
        services.prepare_compaction(world.note_id, document=document)
    world.write(lambda text: text.insert(0, "B "))
    assert "B A start " in compact_with_the_kept_document()  # the other writer's may go first
    assert document.doc is kept

    # Another process compacted updates that the kept document never saw: it starts afresh.
    world.write(lambda text: text.insert(0, "C "))
    world.compact()
    world.write(lambda text: text.insert(0, "D "))
    assert compact_with_the_kept_document() == world.text()
    assert "D C B A start " in world.text() and "[first][built on first]" in world.text()
    assert document.doc is not kept


def test_a_kept_document_starts_afresh_after_pycrdt_refuses_an_update(app, make):
    world = NoteWorld(app, make)
    document = services.CompactedDocument()
    world.write(lambda text: text.insert(0, "fine"))
    with app.app_context():
        state, state_seq, rows = services.read_state_and_log(world.note_id)
        assert document.text_after(state, state_seq, rows, lambda: None) == "fine"
    assert document.seq == rows[-1].seq
    truncated = SimpleNamespace(seq=rows[-1].seq + 1, update=b"\x01\xff\xff\xff")
    with pytest.raises(ValueError):
        document.text_after(b"", 0, [truncated], lambda: None)
    assert document.seq is None


def test_a_live_window_is_logged_as_the_session_would_log_it(app, make):
    world = NoteWorld(app, make)
    first = typed(world.doc, lambda text: text.insert(0, "Ordre du jour"))
    second = typed(world.doc, lambda text: text.insert(0, "# "))
    with app.app_context():
        note = db.session.get(Note, world.note_id)
        created = note.last_activity_at
        db.session.rollback()  # let the driver's connection write the note's row

        log = services.LiveLog()
        log.append(world.note_id, first, {world.observer, world.writer}, True)
        marked = db.session.get(Note, world.note_id).last_activity_at
        db.session.rollback()
        log.append(world.note_id, second, {world.writer}, False)
        log.close()

        rows = db.session.execute(
            select(NoteUpdate.update, NoteUpdate.author_ids, NoteUpdate.created_at)
            .filter_by(note_id=world.note_id)
            .order_by(NoteUpdate.seq)
        ).all()
        assert [(row.update, row.author_ids) for row in rows] == [
            (first, sorted([world.observer, world.writer])),
            (second, [world.writer]),
        ]
        assert created < marked == rows[0].created_at <= rows[1].created_at
        assert db.session.get(Note, world.note_id).last_activity_at == marked  # not marked again
    assert world.text() == "# Ordre du jour"


def test_on_sqlite_the_live_log_leaves_checkpoints_to_the_background(tmp_path):
    # Its own SQLite file, whatever TEST_DATABASE_URL says: checkpoints are SQLite's.
    database = tmp_path / "log.sqlite"
    app = create_app(
        config_for_tests(tmp_path) | {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}
    )
    with app.app_context():
        db.create_all()
    world = NoteWorld(app, Factory(app))
    with app.app_context():
        db.engine.dispose()  # the last connection closed moves the tables into the file
    every = services.LiveLog.CHECKPOINT_EVERY_COMMITS
    jobs = []  # started in the background: here, when the test says

    def rows_in_the_file_alone() -> int:
        """The log's rows that the database file holds, without its write-ahead log."""
        copy = tmp_path / "copy.sqlite"
        shutil.copyfile(database, copy)
        with sqlite3.connect(copy) as connection:
            return connection.execute("SELECT count(*) FROM note_update").fetchone()[0]

    with app.app_context():
        log = services.LiveLog(in_background=jobs.append)
        for _ in range(4 * every):  # some 3,000 pages of write-ahead log
            log.append(world.note_id, b"\x00" * 30, {world.writer}, False)
        # SQLite would have checkpointed at 1,000 pages, in a commit; one job waits instead.
        assert len(jobs) == 1
        assert rows_in_the_file_alone() == 0

        jobs.pop()()
        assert rows_in_the_file_alone() == 4 * every
        for _ in range(every):
            log.append(world.note_id, b"\x00" * 30, {world.writer}, False)
        assert len(jobs) == 1  # the next one, now that the first is done
        log.close()
        db.engine.dispose()


def test_merging_in_steps_gives_what_one_merge_gives():
    step = services.COMPACTION_STEP
    doc = Doc()
    state = typed(doc, lambda text: text.insert(0, "state "))
    updates = [
        typed(doc, lambda text, index=index: text.insert(len(text) // 2, f"<{index}>"))
        for index in range(step * step + 3)  # groups, then groups of groups
    ]
    pauses = []

    merged = services.merge_in_steps(state, updates, lambda: pauses.append(1))
    assert services.text_of_update(merged) == str(doc.get(services.TEXT_NAME, type=Text))
    assert len(pauses) == (step + 1) + 2 + 1  # the updates, the groups, the last group


def test_the_log_is_read_a_page_at_a_time_with_what_comes_meanwhile(app, make):
    world = NoteWorld(app, make)
    count = 2 * services.LOG_PAGE + 10
    for index in range(count):
        world.write(lambda text: text.insert(0, "x"), world.observer if index % 2 else None)
    pauses = []

    def pause():
        pauses.append(len(pauses))
        if len(pauses) == 1:  # a row committed between two pages is read too
            world.write(lambda text: text.insert(0, "late"))

    with app.app_context():
        rows = services.updates_since(world.note_id, 0, pause)
    assert pauses == [0, 1]  # after each full page
    assert len(rows) == count + 1
    assert [row.seq for row in rows] == sorted({row.seq for row in rows})
    assert [row.author_ids for row in rows[:3]] == [
        [world.writer],
        [world.observer],
        [world.writer],
    ]
    with app.app_context():
        logged = db.session.scalars(
            select(NoteUpdate.update).filter_by(note_id=world.note_id).order_by(NoteUpdate.seq)
        ).all()
    assert [row.update for row in rows] == logged


def test_pycrdt_refusals_are_told_apart_from_a_green_thread_being_stopped():
    with pytest.raises(ValueError) as refused:
        Doc().apply_update(b"\x01\xff\xff\xff")
    panic = type("PanicException", (BaseException,), {})()  # pyo3's, raised from Rust
    assert services.is_pycrdt_refusal(refused.value)
    assert services.is_pycrdt_refusal(panic)
    assert not services.is_pycrdt_refusal(GreenletExit())
    assert not services.is_pycrdt_refusal(KeyboardInterrupt())


def test_saving_restoring_and_comparing_versions(client, auth, make, app):
    world = NoteWorld(app, make)
    world.write(lambda text: text.insert(0, "The quick brown fox"))
    auth.login(world.writer)
    assert client.post(world.url("/versions"), data={"label": "draft one"}).status_code == 302
    world.write(lambda text: text.insert(len("The quick brown fox"), " jumps é😀"))
    client.post(world.url("/versions"), data={"label": "draft two"})
    labels = [v.label for v in world.versions()]
    assert labels == ["draft two", "draft one"]

    page = client.get(world.url("/history")).get_data(as_text=True)
    assert "draft one" in page and "draft two" in page and "Participant" in page

    older, newer = world.versions()[1], world.versions()[0]
    page = client.get(world.url(f"/compare?from={older.id}&to={newer.id}")).get_data(as_text=True)
    assert "<ins> jumps é😀</ins>" in page

    response = client.post(world.url(f"/versions/{older.id}/restore"))
    assert response.status_code == 302
    assert world.text() == "The quick brown fox"
    assert [v.label for v in world.versions()] == ["draft two", "draft one"]  # not rewritten
    page = client.get(world.url("/compare?from=" + str(newer.id) + "&to=current"))
    assert "<del> jumps é😀</del>" in page.get_data(as_text=True)


def test_a_restored_version_merges_with_concurrent_edits(app, make):
    world = NoteWorld(app, make)
    world.write(lambda text: text.insert(0, "alpha beta"))
    with app.app_context():
        note = db.session.get(Note, world.note_id)
        services.compact_note(note.id)
        target = services.save_version(note, "start", None)
        db.session.commit()
        target_id = target.id
    world.write(lambda text: text.insert(len("alpha beta"), " gamma"))
    with app.app_context():
        note = db.session.get(Note, world.note_id)
        version = db.session.get(NoteVersion, target_id)
        change = services.restore_version(note, version, db.session.get(User, world.writer))
        db.session.commit()
    # Someone who had not seen the restore keeps typing; both changes survive.
    world.write(lambda text: text.insert(0, ">> "))
    with app.app_context():
        assert change is not None
    assert world.text() == ">> alpha beta"


def test_readers_cannot_save_or_restore(client, auth, make, app):
    world = NoteWorld(app, make)
    world.write(lambda text: text.insert(0, "x"))
    world.compact()
    version_id = world.versions()[0].id
    auth.login(world.observer)
    assert client.get(world.url("/history")).status_code == 200
    assert client.post(world.url("/versions"), data={"label": "mine"}).status_code == 403
    assert client.post(world.url(f"/versions/{version_id}/restore")).status_code == 403
    assert len(world.versions()) == 1


def test_versions_of_another_note_are_not_found(client, auth, make, app):
    world, other = NoteWorld(app, make), None
    world.write(lambda text: text.insert(0, "mine"))
    world.compact()
    other = NoteWorld(app, make)
    other.write(lambda text: text.insert(0, "theirs"))
    other.compact()
    auth.login(world.writer)
    foreign = other.versions()[0].id
    assert client.get(world.url(f"/versions/{foreign}")).status_code == 404
    assert client.post(world.url(f"/versions/{foreign}/restore")).status_code == 404
    assert client.get(world.url(f"/compare?from={foreign}")).status_code == 404
    assert client.get(world.url("/compare?from=../x")).status_code == 400
    assert world.text() == "mine"


PAYLOAD = (
    "# Title\n\n<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>"
)


def test_exports_are_markdown_and_sanitised_html(client, auth, make, app):
    world = NoteWorld(app, make)
    world.write(lambda text: text.insert(0, PAYLOAD))
    auth.login(world.writer)
    markdown = client.get(world.url("/export.md"))
    assert markdown.get_data(as_text=True) == PAYLOAD
    assert markdown.headers["Content-Disposition"] == (
        f'attachment; filename="plenary-notes-{world.note_id}.md"'
    )
    html = client.get(world.url("/export.html")).get_data(as_text=True)
    assert "<h1>Title</h1>" in html
    for danger in ("<script", 'href="javascript:', "<img"):
        assert danger not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as typed, inert
    assert client.get(world.url("/export.pdf")).status_code == 404


def test_the_api_lists_creates_and_reads_notes_and_versions(client, auth, make, app):
    world = NoteWorld(app, make)
    world.write(lambda text: text.insert(0, "live words"))
    auth.login(world.writer)
    created = client.post(f"/api/v1/communities/{world.slug}/notes", json={"title": "  API  "})
    assert created.status_code == 201
    new_id = created.get_json()["id"]
    assert created.headers["Location"].endswith(f"/api/v1/notes/{new_id}")
    listed = client.get(f"/api/v1/communities/{world.slug}/notes").get_json()["notes"]
    assert {note["title"] for note in listed} == {"API", "Plenary notes"}
    # The text is the live document's, log included, even before any compaction.
    note = client.get(f"/api/v1/notes/{world.note_id}").get_json()
    assert note["text"] == "live words" and note["community"] == world.slug
    world.compact()
    versions = client.get(f"/api/v1/notes/{world.note_id}/versions").get_json()["versions"]
    assert len(versions) == 1 and "text" not in versions[0]
    one = client.get(f"/api/v1/notes/{world.note_id}/versions/{versions[0]['id']}").get_json()
    assert one["text"] == "live words" and one["contributors"] == [world.writer]


def test_the_api_refuses_bad_notes(client, auth, make, app):
    world = NoteWorld(app, make)
    auth.login(world.writer)
    for body in ({}, {"title": ""}, {"title": 5}, {"title": "x" * 201}, {"title": "t", "x": 1}):
        response = client.post(f"/api/v1/communities/{world.slug}/notes", json=body)
        assert response.status_code == 400 and response.get_json()["fields"]
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Note)) == 1
    assert client.get("/api/v1/notes/999999").status_code == 404
    other = NoteWorld(app, make)
    assert client.get(f"/api/v1/notes/{other.note_id}").status_code == 404  # private, not mine


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["un ", "deux ", "trois\n", "\n", "quatre. ", "é ", "5\n\n"])),
    st.lists(st.sampled_from(["un ", "deux ", "trois\n", "\n", "cinq ", "é ", "5\n\n"])),
)
def test_a_word_diff_gives_back_both_texts(old_words, new_words):
    old, new = "".join(old_words), "".join(new_words)
    parts = services.word_diff(old, new)
    assert "".join(text for kind, text in parts if kind != "added") == old
    assert "".join(text for kind, text in parts if kind != "removed") == new
    assert all(kind in {"same", "removed", "added"} for kind, _text in parts)


def test_a_word_diff_marks_only_the_changed_words_of_a_changed_line():
    old = "First line stays.\nThe cat sat on the mat.\nLast line.\n"
    new = "First line stays.\nThe dog sat on the mat.\nLast line.\nAn added line.\n"
    parts = services.word_diff(old, new)
    assert ("removed", "cat") in parts and ("added", "dog") in parts
    assert ("added", "An added line.\n") in parts
    assert parts[0] == ("same", "First line stays.\nThe ")
