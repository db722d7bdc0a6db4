"""A facilitator and two participants run a short session in real browsers, on a real server.

Chromium (driven by Playwright) opens the live room of a session three times, each person
logged in in their own browser context; the page's bundle (static/dist/room.js) speaks to the
server's /workshop namespace. The facilitator moves through collect, cluster (drag and drop,
and the keyboard "move to" menu), vote and the later phases to closing; the participants post
cards and spend their dots. Every screen must show the same phase and the same counts. The
test fails on any error a page reports, Content-Security-Policy refusals included.
Screenshots of the room are kept in the test's tmp_path (its `screenshots` folder).
"""

import re
from datetime import date, time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from cop import ROOT
from cop.auth.models import User
from cop.communities.models import Community, OrganisationKind, Role
from cop.extensions import db
from cop.workshops import services
from tests.test_note_browser import CHROMIUM, browser, open_as  # noqa: F401
from tests.test_server import free_port, server_environment, start_server  # noqa: F401

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed"
)

WAIT_LIMIT_MS = 20_000  # any one expectation may take this long before the test gives up
PHASES = ["Prepare", "Collect", "Cluster", "Vote", "Discuss", "Synthesise", "Closed"]


@pytest.fixture
def live_session(app, make, start_server):  # noqa: F811 - the fixture imported above
    """A session planned with anonymous cards and 3 dots (2 per card), and a real server."""
    host = make.user("Claire Host")
    slug = make.community(host)
    network = make.organisation("Réseau Solidaire", OrganisationKind.NETWORK)
    town = make.organisation("Ville de Lyon", OrganisationKind.LOCAL_AUTHORITY)
    ngo = make.organisation("Aide Ensemble", OrganisationKind.NGO)
    fiona = make.member(slug, Role.FACILITATOR, make.user("Fiona Facil"), organisation_id=network)
    paul = make.member(slug, Role.PARTICIPANT, make.user("Paul Martin"), organisation_id=town)
    awa = make.member(slug, Role.PARTICIPANT, make.user("Awa Diallo"), organisation_id=ngo)
    with app.app_context():
        community = db.session.scalar(select(Community).filter_by(slug=slug))
        actor = db.session.get(User, fiona)
        day = services.create_day(
            actor,
            community,
            services.DayPlan("Day 1: sharing information", date(2027, 1, 14), time(9), time(12)),
        )
        session = services.add_session(
            actor,
            day,
            services.SessionPlan(
                title="What works, what blocks",
                starts_at_local=time(9, 30),
                duration_min=60,
                facilitator_id=fiona,
                question="What helps information flow between members?",
                dots_per_person=3,
                max_dots_per_card=2,
                allows_anonymous_cards=True,
            ),
        )
        db.session.commit()
        session_id = session.id
    environment = server_environment(app.config["SQLALCHEMY_DATABASE_URI"], free_port())
    server = start_server([str(ROOT / "wsgi.py")], environment)
    server.wait_until_healthy()
    return {
        "server": server,
        "path": f"/c/{slug}/sessions/{session_id}",
        "fiona": make.email_of(fiona),
        "paul": make.email_of(paul),
        "awa": make.email_of(awa),
    }


def open_room_as(browser, live_session, email: str, problems: list[str]):  # noqa: F811
    """Log in in a fresh browser context and open the room; return the page, connected."""
    url, path = live_session["server"].url, live_session["path"]
    page = open_as(browser, url, email, path, problems, viewport={"width": 1280, "height": 900})
    expect(page.locator("#room-status")).to_have_text("Connected")
    return page


def expect_phase(pages, phase: str) -> None:
    """Wait until every screen shows `phase` as the current step."""
    for page in pages:
        expect(page.locator('#room-steps [aria-current="step"]')).to_have_text(phase)


def card(page, text: str):
    """Return the card showing this text on a page."""
    return page.locator(".room-card").filter(has=page.locator(".room-card-text", has_text=text))


def cluster(page, label: str):
    """Return the cluster headed by this label on a page."""
    return page.locator(".room-cluster").filter(has=page.get_by_role("heading", name=label))


def post(page, text: str, anonymous: bool = False) -> None:
    """Post a card, and wait for the form to be empty again (the server accepted it)."""
    page.get_by_label("Your idea (one per card)").fill(text)
    if page.get_by_label("Post without my name").count():
        page.get_by_label("Post without my name").set_checked(anonymous)  # the choice stays
    page.get_by_role("button", name="Post the card").click()
    expect(page.get_by_label("Your idea (one per card)")).to_have_value("")


def click_phase(page, name: str) -> None:
    """Press the facilitator's phase button named `name`."""
    page.locator("#room-phase-controls").get_by_role("button", name=name).click()


def screenshot(page, folder, name: str) -> None:
    """Keep a picture of the whole page and say where it is."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_a_facilitator_and_two_participants_run_a_session(browser, live_session, tmp_path):  # noqa: F811
    problems: list[str] = []
    shots = tmp_path / "screenshots"
    fiona = open_room_as(browser, live_session, live_session["fiona"], problems)
    paul = open_room_as(browser, live_session, live_session["paul"], problems)
    awa = open_room_as(browser, live_session, live_session["awa"], problems)
    everyone = (fiona, paul, awa)
    expect_phase(everyone, "Prepare")

    # Who is here, with their organisation.
    for page in everyone:
        present = page.locator("#room-present")
        for name, organisation in (
            ("Fiona Facil", "Réseau Solidaire"),
            ("Paul Martin", "Ville de Lyon"),
            ("Awa Diallo", "Aide Ensemble"),
        ):
            expect(present.locator("li", has_text=name)).to_contain_text(organisation)
        expect(page.locator("#room-present-count")).to_have_text("3 people here")
    # Only the facilitator has the controls.
    expect(fiona.locator("#room-phase-controls")).to_be_visible()
    assert paul.locator("#room-phase-controls").count() == 0

    # Collect, with a countdown every screen shows alike.
    click_phase(fiona, "Next: Collect")
    expect_phase(everyone, "Collect")
    fiona.get_by_label("Minutes", exact=True).fill("5")
    fiona.get_by_role("button", name="Start the countdown").click()
    for page in everyone:
        expect(page.locator("#room-clock")).to_have_text(re.compile(r"^(5:00|4:5\d)$"))

    typed = "Share a <b>monthly</b> newsletter"
    paul.get_by_label("Your idea (one per card)").fill(typed)
    expect(paul.locator("#room-post-count")).to_have_text(f"{500 - len(typed)} characters left")
    paul.get_by_role("button", name="Post the card").click()
    expect(paul.get_by_label("Your idea (one per card)")).to_have_value("")
    post(awa, "Regional contact points", anonymous=True)
    post(awa, "Too many mailing lists")
    post(paul, "A shared calendar of evnts")
    # An author corrects their own card during collect.
    mistake = card(paul, "A shared calendar of evnts")
    mistake.get_by_role("button", name="Edit").click()
    paul.get_by_label("Your card").fill("A shared calendar of events")
    paul.get_by_role("button", name="Save").click()

    for page in everyone:
        expect(page.locator(".room-card")).to_have_count(4)
        expect(card(page, "A shared calendar of events")).to_have_count(1)
        # Markup stays as it was typed, shown as text.
        expect(card(page, "Share a <b>monthly</b> newsletter")).to_have_count(1)
    assert paul.locator(".room-card-text b").count() == 0
    expect(card(paul, "Regional contact points").locator(".room-card-author")).to_have_text(
        "Anonymous"
    )
    expect(card(fiona, "Regional contact points").locator(".room-card-author")).to_have_text(
        "Anonymous"
    )
    expect(card(awa, "Regional contact points").locator(".room-card-author")).to_have_text(
        "Anonymous (your card)"
    )
    expect(card(fiona, "Too many mailing lists").locator(".room-card-author")).to_have_text(
        "Awa Diallo · Aide Ensemble"
    )
    screenshot(paul, shots, "1-collect-seen-by-paul")

    # Cluster: the facilitator names two clusters and sorts the cards into them.
    click_phase(fiona, "Next: Cluster")
    expect_phase(everyone, "Cluster")
    for label in ("Channels", "People"):
        fiona.get_by_label("New cluster").fill(label)
        fiona.get_by_role("button", name="Add the cluster").click()
        expect(cluster(fiona, label)).to_have_count(1)

    # With the keyboard alone: the card's "Move to" menu, then its Move button.
    menu = card(fiona, "monthly").get_by_label("Move to")
    menu.focus()
    fiona.keyboard.press("ArrowDown")  # "No cluster" -> "Channels"
    expect(menu).to_have_value(re.compile(r"^\d+$"))
    fiona.keyboard.press("Tab")
    expect(card(fiona, "monthly").get_by_role("button", name="Move")).to_be_focused()
    fiona.keyboard.press("Enter")
    expect(cluster(fiona, "Channels").locator(".room-card")).to_have_count(1)
    # The focus stays on the card's menu, in its new place.
    expect(card(fiona, "monthly").get_by_role("button", name="Move")).to_be_focused()

    card(fiona, "calendar").get_by_label("Move to").select_option(label="Channels")
    card(fiona, "calendar").get_by_role("button", name="Move").click()
    expect(cluster(fiona, "Channels").locator(".room-card")).to_have_count(2)
    # By drag and drop.
    card(fiona, "Regional contact points").locator(".room-card-text").drag_to(
        cluster(fiona, "People").get_by_role("heading")
    )
    for page in everyone:
        expect(cluster(page, "Channels").locator(".room-card")).to_have_count(2)
        expect(cluster(page, "People").locator(".room-card")).to_have_count(1)
        expect(cluster(page, "Not in a cluster").locator(".room-card")).to_have_count(1)
    screenshot(fiona, shots, "2-cluster-seen-by-fiona")

    # Vote: three dots each, at most two on one card; nobody sees the others' dots.
    click_phase(fiona, "Next: Vote")
    expect_phase(everyone, "Vote")
    expect(paul.locator("#room-dots")).to_have_text("3 dots left")
    monthly = card(paul, "monthly")
    monthly.get_by_role("button", name="Add a dot").click()
    expect(monthly.locator(".room-vote-count")).to_have_text("1 of your dots")
    monthly.get_by_role("button", name="Add a dot").click()
    expect(monthly.locator(".room-vote-count")).to_have_text("2 of your dots")
    expect(monthly.get_by_role("button", name="Add a dot")).to_have_attribute(
        "aria-disabled", "true"
    )
    card(paul, "Too many mailing lists").get_by_role("button", name="Add a dot").click()
    expect(paul.locator("#room-dots")).to_have_text("0 dots left")
    calendar_dot = card(paul, "calendar").get_by_role("button", name="Add a dot")
    expect(calendar_dot).to_have_attribute("aria-disabled", "true")
    # Pressed anyway: the server refuses and the page says why.
    calendar_dot.click(force=True)
    expect(paul.locator("#room-errors")).not_to_be_empty()
    expect(card(paul, "calendar").locator(".room-vote-count")).to_have_text("0 of your dots")
    # A dot taken back can be spent elsewhere.
    card(paul, "Too many mailing lists").get_by_role("button", name="Remove a dot").click()
    expect(paul.locator("#room-dots")).to_have_text("1 dot left")
    card(paul, "calendar").get_by_role("button", name="Add a dot").click()
    expect(paul.locator("#room-dots")).to_have_text("0 dots left")

    card(awa, "monthly").get_by_role("button", name="Add a dot").click()
    card(awa, "Regional contact points").get_by_role("button", name="Add a dot").click()
    expect(awa.locator("#room-dots")).to_have_text("1 dot left")
    for page in everyone:
        expect(page.locator(".room-card-votes")).to_have_count(0)
    screenshot(paul, shots, "3-vote-seen-by-paul")

    # Discuss: the totals show on every screen.
    click_phase(fiona, "Next: Discuss")
    expect_phase(everyone, "Discuss")
    totals = {
        "monthly": "3 dots",
        "calendar": "1 dot",
        "Regional contact points": "1 dot",
        "Too many mailing lists": "0 dots",
    }
    for page in everyone:
        for text, total in totals.items():
            expect(card(page, text).locator(".room-card-votes")).to_have_text(total)
        expect(page.get_by_role("button", name="Add a dot")).to_have_count(0)
    screenshot(awa, shots, "4-discuss-seen-by-awa")

    # Synthesise: a typed takeaway tied to a cluster.
    click_phase(fiona, "Next: Synthesise")
    expect_phase(everyone, "Synthesise")
    fiona.get_by_label("Kind").select_option("lever")
    fiona.get_by_label("Takeaway", exact=True).fill("One calendar for the whole network")
    fiona.locator("#room-takeaway-clusters").get_by_label("Channels").check()
    fiona.get_by_role("button", name="Add the takeaway").click()
    for page in everyone:
        takeaways = page.locator("#room-takeaways")
        expect(takeaways).to_contain_text("Levers")
        expect(takeaways).to_contain_text("One calendar for the whole network")
        expect(takeaways).to_contain_text("From: Channels")
    fiona.locator("#room-takeaways").get_by_role("button", name="Edit").click()
    expect(fiona.get_by_label("Takeaway", exact=True)).to_have_value(
        "One calendar for the whole network"
    )
    fiona.get_by_label("Takeaway", exact=True).fill("One shared calendar for the whole network")
    fiona.get_by_role("button", name="Save the takeaway").click()
    for page in everyone:
        expect(page.locator("#room-takeaways")).to_contain_text("One shared calendar")
        expect(page.locator("#room-takeaways")).to_contain_text("From: Channels")

    # Closing: every screen shows it, and the controls are gone.
    click_phase(fiona, "Close the session")
    expect_phase(everyone, "Closed")
    expect(fiona.locator("#room-phase-controls")).to_be_hidden()
    for page in everyone:
        expect(page.locator(".room-card")).to_have_count(4)
        expect(page.locator("#room-post")).to_be_hidden()
    screenshot(fiona, shots, "5-closed-seen-by-fiona")
    screenshot(paul, shots, "5-closed-seen-by-paul")

    # The record: every card with the dots it got, and the takeaway.
    response = paul.goto(live_session["path"] + "/record")
    assert response.status == 200
    for text, total in totals.items():
        expect(paul.locator("ol.cards li", has_text=text).locator("strong")).to_have_text(total)
    expect(paul.locator("main")).to_contain_text("Share a <b>monthly</b> newsletter")
    expect(paul.locator("main")).to_contain_text("One shared calendar for the whole network")
    screenshot(paul, shots, "6-record-seen-by-paul")
    assert problems == []


def test_the_facilitators_tools_reach_every_screen(browser, live_session, tmp_path):  # noqa: F811
    problems: list[str] = []
    shots = tmp_path / "screenshots"
    fiona = open_room_as(browser, live_session, live_session["fiona"], problems)
    paul = open_room_as(browser, live_session, live_session["paul"], problems)
    awa = open_room_as(browser, live_session, live_session["awa"], problems)
    everyone = (fiona, paul, awa)

    click_phase(fiona, "Next: Collect")
    expect_phase(everyone, "Collect")
    expect(paul.locator("#room-announcer")).to_have_text("Phase: Collect.")
    post(paul, "Card one")
    post(paul, "Card two")
    card(paul, "Card two").get_by_role("button", name="Withdraw").click()
    for page in everyone:
        expect(page.locator(".room-card")).to_have_count(1)

    # The countdown: paused, every screen shows the same time; the last minute is announced.
    fiona.get_by_label("Minutes", exact=True).fill("1")
    fiona.get_by_role("button", name="Start the countdown").click()
    expect(awa.locator("#room-announcer")).to_have_text("One minute left.")
    fiona.get_by_role("button", name="Pause").click()
    for page in everyone:
        expect(page.locator("#room-clock-state")).to_have_text("paused")
    paused = fiona.locator("#room-clock").text_content()
    assert re.fullmatch(r"[01]:\d\d", paused)
    for page in (paul, awa):
        expect(page.locator("#room-clock")).to_have_text(paused)
    fiona.get_by_role("button", name="Resume").click()
    fiona.get_by_role("button", name="Add 5 minutes").click()
    for page in everyone:
        expect(page.locator("#room-clock-state")).to_be_hidden()
        expect(page.locator("#room-clock")).to_have_text(re.compile(r"^[56]:\d\d$"))

    # Hands: a queue in order; a facilitator lowers one.
    paul.get_by_role("button", name="Raise my hand").click()
    expect(paul.get_by_role("button", name="Lower my hand")).to_have_attribute(
        "aria-pressed", "true"
    )
    awa.get_by_role("button", name="Raise my hand").click()
    expect(fiona.locator("#room-hands li")).to_have_text(
        [re.compile("Paul Martin"), re.compile("Awa Diallo")]
    )
    fiona.get_by_role("button", name="Lower the hand of Paul Martin").click()
    for page in everyone:
        expect(page.locator("#room-hands li")).to_have_text([re.compile("Awa Diallo")])
    expect(paul.get_by_role("button", name="Raise my hand")).to_be_visible()

    # Spotlight on a card, then cleared.
    card(fiona, "Card one").get_by_role("button", name="Spotlight").click()
    for page in (paul, awa):
        expect(page.locator("#room-spotlight")).to_be_visible()
        expect(page.locator("#room-spotlight-body")).to_contain_text("Card one")
    fiona.get_by_role("button", name="Clear the spotlight").click()
    expect(paul.locator("#room-spotlight")).to_be_hidden()

    # Moderation: hidden with a reason the facilitators see; shown again.
    card(fiona, "Card one").get_by_role("button", name="Hide").click()
    fiona.get_by_label("Why hide it?").fill("Names a person")
    fiona.get_by_label("Why hide it?").press("Enter")
    expect(card(fiona, "Card one").locator(".room-card-hidden")).to_have_text(
        "Hidden from participants: Names a person"
    )
    expect(awa.locator(".room-card-text")).to_have_text(["Hidden by a facilitator."])
    expect(card(fiona, "Card one").get_by_role("button", name="Show again")).to_be_focused()
    fiona.keyboard.press("Enter")
    expect(awa.locator(".room-card-text")).to_have_text(["Card one"])

    # The note's lock.
    fiona.get_by_role("button", name="Lock the note").click()
    expect(paul.locator("#room-note-state")).to_have_text(
        "The note is locked: only facilitators can write in it."
    )
    fiona.get_by_role("button", name="Unlock the note").click()
    expect(paul.locator("#room-note-state")).to_have_text(
        "Everyone taking part can write in the note."
    )

    # Breakout groups: each participant works in a group, with its own note and cards.
    fiona.get_by_label("Number of groups").fill("2")
    fiona.get_by_role("button", name="Open groups at random").click()
    for page in (paul, awa):
        expect(page.locator("#room-groups-where")).to_have_text(re.compile(r"^You are in .+\.$"))
        expect(page.locator("#room-note-link")).to_have_text("Open your group's note")
    expect(fiona.locator("#room-groups li")).to_have_count(2)
    assert (
        paul.locator("#room-groups-where").text_content()
        != awa.locator("#room-groups-where").text_content()
    )
    expect(paul.locator(".room-card")).to_have_count(0)  # the plenary's card stays there
    post(paul, "Idea from a group")
    expect(paul.locator(".room-card")).to_have_count(1)
    expect(awa.locator(".room-card")).to_have_count(0)
    expect(fiona.locator(".room-card")).to_have_count(1)  # the plenary's
    screenshot(paul, shots, "groups-seen-by-paul")
    # By hand: Awa joins Paul's group, and sees its card.
    pauls_group = re.fullmatch(
        r"You are in (.+)\.", paul.locator("#room-groups-where").text_content()
    )
    fiona.get_by_label("Group of Awa Diallo").select_option(label=pauls_group.group(1))
    expect(awa.locator("#room-groups-where")).to_have_text(f"You are in {pauls_group.group(1)}.")
    expect(awa.locator(".room-card")).to_have_count(1)
    fiona.get_by_role("button", name="Everyone back").click()
    for page in everyone:
        expect(page.locator("#room-groups-where")).to_have_text("Everyone is in the plenary.")
        expect(page.locator(".room-card")).to_have_count(1)
        expect(page.locator("#room-note-link")).to_have_text("Open the shared note")

    # Clusters: named, renamed with the keyboard, removed.
    click_phase(fiona, "Next: Cluster")
    expect_phase(everyone, "Cluster")
    fiona.get_by_label("New cluster").fill("Tools")
    fiona.get_by_label("New cluster").press("Enter")
    expect(cluster(paul, "Tools")).to_have_count(1)
    cluster(fiona, "Tools").get_by_role("button", name="Rename").click()
    fiona.get_by_label("New name of the cluster").fill("Shared tools")
    fiona.get_by_label("New name of the cluster").press("Enter")
    expect(cluster(paul, "Shared tools")).to_have_count(1)
    cluster(fiona, "Shared tools").get_by_role("button", name="Remove").click()
    expect(paul.locator(".room-cluster")).to_have_count(0)
    screenshot(fiona, shots, "tools-seen-by-fiona")
    assert problems == []


class HeldJoinAnswer:
    """Forward a page's Socket.IO frames to the real server, but hold back its `join` answer.

    Frames are Engine.IO text frames: `42/workshop,...` is an event, `43/workshop,<id>[...]`
    the answer (ack) to the page's event number <id>; the page's first event is its join.
    """

    def __init__(self):
        self.held: list[str] = []
        self.events: list[str] = []
        self.to_page = None

    def route(self, ws) -> None:
        server = ws.connect_to_server()
        self.to_page = ws
        ws.on_message(server.send)
        server.on_message(self.from_server)

    def from_server(self, frame) -> None:
        if isinstance(frame, str) and frame.startswith("43/workshop,") and not self.held:
            self.held.append(frame)
            return
        if isinstance(frame, str) and frame.startswith("42/workshop,"):
            self.events.append(frame)
        self.to_page.send(frame)

    def release(self) -> None:
        self.to_page.send(self.held[0])


def run_routes_until(page, condition, what: str) -> None:
    """Let Playwright run the page's routing until `condition()` holds."""
    for _ in range(WAIT_LIMIT_MS // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"gave up waiting for {what}")


def test_a_change_broadcast_before_the_join_answer_is_not_lost(browser, live_session):  # noqa: F811
    """The answer to `join` may describe the room from before a change the page already got.

    Paul's join is answered (the server read the room: Prepare), but the proxy holds that
    answer back while Fiona moves to Collect. Paul's page receives the broadcast first and
    the stale answer afterwards; it must show Collect.
    """
    problems: list[str] = []
    fiona = open_room_as(browser, live_session, live_session["fiona"], problems)
    url, path = live_session["server"].url, live_session["path"]
    paul = open_as(browser, url, live_session["paul"], "/", problems)
    proxy = HeldJoinAnswer()
    paul.route_web_socket(re.compile(r"/socket\.io/"), proxy.route)
    paul.goto(path)
    run_routes_until(paul, lambda: proxy.held, "the server's answer to Paul's join")
    assert '"phase":"prepare"' in proxy.held[0].replace(" ", "")

    click_phase(fiona, "Next: Collect")
    expect_phase([fiona], "Collect")
    run_routes_until(
        paul, lambda: any("session-state" in frame for frame in proxy.events), "the change"
    )
    proxy.release()
    expect_phase([paul], "Collect")
    expect(paul.locator("#room-post")).to_be_visible()
    assert problems == []
