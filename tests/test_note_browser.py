"""Two people co-edit a note in a real browser (Chromium driven by Playwright) on a real server.

The page's bundle (static/dist/note.js), the unmodified y-socket.io provider and the live
engine all take part; the test fails on any error the pages report, Content-Security-Policy
refusals included. A screenshot of each person's page is kept in the test's tmp_path.
"""

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from cop import ROOT
from cop.communities.models import Community, Role
from cop.extensions import db
from cop.notes import services
from tests.conftest import PASSWORD
from tests.test_server import free_port, server_environment, start_server  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGUMENTS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_LIMIT_MS = 20_000  # any one expectation may take this long before the test gives up

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed"
)


@pytest.fixture
def live_note(app, make, start_server):  # noqa: F811 - the fixture imported above
    """Three members of a community (one observer), a note, and a real server serving them."""
    slug = make.community()
    organisation = make.organisation("Réseau Solidaire")
    alice = make.member(
        slug, Role.PARTICIPANT, make.user("Alice Martin"), organisation_id=organisation
    )
    bob = make.member(slug, Role.EDITOR, make.user("Bob Diallo"))
    observer = make.member(slug, Role.OBSERVER, make.user("Olga Observer"))
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        note_id = services.create_note(None, community, "Shared ideas").id
        db.session.commit()
    environment = server_environment(app.config["SQLALCHEMY_DATABASE_URI"], free_port())
    server = start_server([str(ROOT / "wsgi.py")], environment)
    server.wait_until_healthy()
    return {
        "server": server,
        "path": f"/c/{slug}/notes/{note_id}",
        "alice": make.email_of(alice),
        "bob": make.email_of(bob),
        "observer": make.email_of(observer),
    }


@pytest.fixture
def browser():
    """Start Debian's Chromium headless; close it afterwards."""
    expect.set_options(timeout=WAIT_LIMIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGUMENTS
        )
        yield chromium
        chromium.close()


def open_as(browser, base_url: str, email: str, path: str, problems: list[str], **options):
    """Log in in a fresh browser context (English) and open `path`; return the page.

    Console errors and uncaught exceptions of the page are added to `problems`.
    """
    context = browser.new_context(base_url=base_url, locale="en-GB", **options)
    page = context.new_page()
    page.set_default_timeout(WAIT_LIMIT_MS)
    page.on("console", lambda message: note_console_error(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$|/c/"))
    page.goto(path)
    return page


def open_note_as(browser, live_note, email: str, problems: list[str]):
    """Log in in a fresh browser context and open the note; return the page."""
    page = open_as(browser, live_note["server"].url, email, live_note["path"], problems)
    expect_status(page, "Connected")
    page.locator(".cm-content").wait_for()
    return page


def note_console_error(message, problems: list[str]) -> None:
    """Keep an error the page logged (CSP refusals included), with where it came from."""
    where = message.location.get("url", "")
    # The browser asks for /favicon.ico by itself; cop has none, and the page did not ask.
    if message.type == "error" and not where.endswith("/favicon.ico"):
        problems.append(f"{message.text} ({where})")


# The note's text as the editor shows it, without the other people's cursor labels.
SHOWN_TEXT = """() => Array.from(document.querySelectorAll(".cm-content .cm-line"), (line) => {
    const copy = line.cloneNode(true);
    copy.querySelectorAll(".cm-ySelectionCaret").forEach((caret) => caret.remove());
    return copy.textContent;
}).join("\\n")"""


def expect_text(page, expected: str) -> None:
    """Wait until the editor shows exactly `expected`.

    Polled from here: the page's CSP forbids the string evaluation of wait_for_function.
    """
    deadline = time.monotonic() + WAIT_LIMIT_MS / 1000
    while (shown := page.evaluate(SHOWN_TEXT)) != expected:
        if time.monotonic() > deadline:
            errors = page.locator("#note-errors").text_content()
            pytest.fail(f"the editor shows {shown!r}, not {expected!r} (errors: {errors!r})")
        page.wait_for_timeout(50)


def expect_status(page, text: str) -> None:
    """Wait until the page's connection status reads `text`."""
    expect(page.locator("#note-status")).to_have_text(text)


def test_two_people_see_each_others_text_and_named_cursor(browser, live_note, tmp_path):
    problems: list[str] = []
    alice = open_note_as(browser, live_note, live_note["alice"], problems)
    bob = open_note_as(browser, live_note, live_note["bob"], problems)

    alice.locator(".cm-content").click()
    alice.keyboard.type("Alice writes the first line.")
    expect(bob.locator(".cm-content")).to_contain_text("Alice writes the first line.")

    # Bob writes above Alice's line: had he written after it, at the very place of Alice's
    # cursor, where her next words land would depend on whether his arrived first.
    bob.locator(".cm-content").click()
    bob.keyboard.press("Control+Home")
    bob.keyboard.type("Bob adds a line above.")
    bob.keyboard.press("Enter")
    alice.keyboard.type(" Then more.")  # at the same time, at Alice's own place
    for page in (alice, bob):
        expect_text(page, "Bob adds a line above.\nAlice writes the first line. Then more.")

    # Each sees the other's cursor, labelled with the name the server knows.
    expect(alice.locator(".cm-ySelectionInfo")).to_have_text("Bob Diallo")
    expect(bob.locator(".cm-ySelectionInfo")).to_have_text("Alice Martin")
    # And who is here, with their organisation.
    expect(bob.locator("#note-presence")).to_contain_text("Alice Martin")
    expect(bob.locator("#note-presence")).to_contain_text("Réseau Solidaire")
    expect(alice.locator("#note-presence")).to_contain_text("Bob Diallo")

    for name, page in (("alice", alice), ("bob", bob)):
        path = tmp_path / f"note-seen-by-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
    assert problems == []


def test_undo_offline_edits_preview_and_a_read_only_observer(browser, live_note, tmp_path):
    problems: list[str] = []
    alice = open_note_as(browser, live_note, live_note["alice"], problems)
    bob = open_note_as(browser, live_note, live_note["bob"], problems)
    observer = open_note_as(browser, live_note, live_note["observer"], problems)
    observer_text = observer.locator(".cm-content")
    expect(observer_text).to_have_attribute("contenteditable", "false")
    expect(observer_text).to_have_attribute("aria-readonly", "true")

    bob.locator(".cm-content").click()
    bob.keyboard.type("# Plan")
    expect(alice.locator(".cm-content")).to_contain_text("# Plan")
    alice.locator(".cm-content").click()
    alice.keyboard.press("Control+End")
    alice.keyboard.type(" *now*")
    expect_text(observer, "# Plan *now*")

    # Undo takes back Alice's words only, for everyone; redo brings them back.
    alice.keyboard.press("Control+z")
    expect_text(observer, "# Plan")
    alice.keyboard.press("Control+y")
    expect_text(observer, "# Plan *now*")

    # Edits made offline stay on screen and reach the others once back online.
    alice.context.set_offline(True)
    expect_status(alice, "Offline")
    alice.keyboard.press("Control+End")
    alice.keyboard.type(" (written offline)")
    expect_text(alice, "# Plan *now* (written offline)")
    bob.wait_for_timeout(1000)
    expect_text(bob, "# Plan *now*")  # nothing went through while offline
    alice.context.set_offline(False)
    expect_status(alice, "Connected")
    # socket.io's attempts to reconnect while offline fail, as they should.
    problems[:] = [problem for problem in problems if "ERR_INTERNET_DISCONNECTED" not in problem]
    expect_text(bob, "# Plan *now* (written offline)")

    # The preview shows the server's rendering, and follows the text.
    observer.get_by_role("button", name="Preview").click()
    expect(observer.get_by_role("button", name="Preview")).to_have_attribute("aria-pressed", "true")
    preview = observer.locator("#note-preview")
    expect(preview.locator("h1")).to_have_text("Plan now (written offline)")
    expect(preview.locator("h1 em")).to_have_text("now")
    bob.keyboard.press("Control+End")
    bob.keyboard.type("\n\n[link](javascript:alert(1))")
    expect(preview.locator("p")).to_have_text("[link](javascript:alert(1))")
    assert preview.locator("a").count() == 0

    path = tmp_path / "note-seen-by-observer.png"
    observer.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")

    # Logging out in another tab closes the live connection for good, and the page says so.
    other_tab = alice.context.new_page()
    other_tab.goto("/")
    other_tab.get_by_role("button", name="Log out").click()
    expect_status(alice, "Offline")
    expect(alice.locator("#note-errors")).to_have_text(
        "The server closed the live connection. Reload the page to try again."
    )
    assert problems == []


def test_a_person_who_comes_back_online_is_shown_present_again(browser, live_note):
    problems: list[str] = []
    alice = open_note_as(browser, live_note, live_note["alice"], problems)
    bob = open_note_as(browser, live_note, live_note["bob"], problems)
    presence = bob.locator("#note-presence")
    expect(presence).to_contain_text("Alice Martin")

    alice.context.set_offline(True)
    expect(presence).not_to_contain_text("Alice Martin")
    alice.context.set_offline(False)
    expect_status(alice, "Connected")
    expect(presence).to_contain_text("Alice Martin")  # without Alice touching anything
