"""The section editor with its material panel, in a real browser on a real server.

An editor filters the material of a closed session and inserts a takeaway; a second editor
with the same section open sees the words arrive live, and both see the source reference as
a badge whose tooltip says where the words come from. Screenshots are kept in tmp_path.
"""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from cop import ROOT
from cop.communities.models import Role
from cop.drafts.models import Draft, DraftSection, SectionKind
from cop.extensions import db
from tests.test_note_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    browser,
    expect_status,
    open_as,
)
from tests.test_server import free_port, server_environment, start_server  # noqa: F401
from tests.test_session_record import Workshop

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed"
)


@pytest.fixture
def draft_world(app, make, auth, client, start_server):  # noqa: F811 - the fixture
    """A closed session, two editors, a guide draft, and a real server."""
    workshop = Workshop(app, make, auth, client)
    workshop.run()
    editors = [make.member(workshop.slug, Role.EDITOR, make.user(name)) for name in ("Eva", "Eli")]
    auth.login(editors[0])
    response = client.post(f"/c/{workshop.slug}/drafts", data={"title": "Repères"})
    assert response.status_code == 303
    with app.app_context():
        draft = db.session.scalar(select(Draft))
        section = db.session.scalar(
            select(DraftSection).filter_by(draft_id=draft.id, kind=SectionKind.LEVERS)
        )
        path = f"/c/{workshop.slug}/drafts/{draft.id}/sections/{section.id}"
    server = start_server(
        [str(ROOT / "wsgi.py")],
        server_environment(app.config["SQLALCHEMY_DATABASE_URI"], free_port()),
    )
    server.wait_until_healthy()
    return {"server": server, "path": path, "editors": [make.email_of(e) for e in editors]}


def test_an_editor_inserts_material_that_another_sees_live_with_its_badge(
    browser,  # noqa: F811 - the fixture
    draft_world,
    tmp_path,
):
    problems: list[str] = []
    url = draft_world["server"].url
    eva, eli = (
        open_as(browser, url, email, draft_world["path"], problems)
        for email in draft_world["editors"]
    )
    for page in (eva, eli):
        expect_status(page, "Connected")

    # Eva narrows the panel to takeaways with the keyboard-usable filters, then inserts one.
    eva.get_by_label("Kind").select_option("takeaway")
    eva.get_by_role("button", name="Filter").click()
    first = eva.locator(".draft-material-item").first
    quoted = first.locator(".draft-material-text").text_content().strip()
    first.get_by_role("button", name="Insert as a quote").click()
    expect(eva.locator(".flash")).to_contain_text("Inserted at the end of the section")
    expect_status(eva, "Connected")

    # Eli, who did not reload, sees the words arrive, with the reference as a badge.
    expect(eli.locator(".cm-content")).to_contain_text(quoted[:40])
    badge = eli.locator(".cm-source-ref")
    expect(badge).to_have_count(1)
    expect(badge).to_have_text("[^s1]")
    # The tooltip says where the words come from, once Eli's page knows the link (a reload).
    eli.reload()
    expect(eli.locator(".cm-source-ref")).to_have_attribute(
        "title", re.compile(r"^Day 1 \(2027-01-14\) · session .+ contributions")
    )
    # The section's sources list the passage with what stands behind it.
    expect(eli.locator(".draft-sources")).to_contain_text("Takeaway")

    for name, page in (("eva", eva), ("eli", eli)):
        path = tmp_path / f"section-editor-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
    assert problems == []
