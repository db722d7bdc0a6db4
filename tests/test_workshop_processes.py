"""The live room across two server processes sharing Redis (DESIGN.md, "Running at scale").

A facilitator on one process and a participant on the other see the same room: presence,
phase changes and cards cross through Redis, and the state each process answers comes from
the database they share.
"""

import pytest

from cop.communities.models import Role
from tests.conftest import PASSWORD, TEST_REDIS_URL
from tests.live_client import RoomScreen, login_cookie
from tests.test_live_processes import redis_url_for_these_tests
from tests.test_server import ROOT, free_port, server_environment, start_server  # noqa: F401
from tests.test_workshop_server import plan_session

pytestmark = pytest.mark.skipif(
    not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set: no Redis to share the processes' rooms"
)


def test_a_room_spans_two_processes(app, make, start_server):  # noqa: F811 - the fixture
    shared = {"REDIS_URL": redis_url_for_these_tests(), "LOGIN_RATE_LIMIT": "1000 per minute"}
    slug = make.community()
    facilitator = make.member(slug, Role.FACILITATOR)
    participant = make.member(slug, Role.PARTICIPANT)
    session_id, _note_id = plan_session(app, slug)
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    servers = [
        start_server(
            [str(ROOT / "wsgi.py")], server_environment(database_url, free_port(), **shared)
        )
        for _ in range(2)
    ]
    for server in servers:
        server.wait_until_healthy()
    hosting = RoomScreen(
        servers[0].url, login_cookie(servers[0].url, make.email_of(facilitator), PASSWORD)
    )
    joining = RoomScreen(
        servers[1].url, login_cookie(servers[1].url, make.email_of(participant), PASSWORD)
    )
    try:
        assert hosting.call("join", {"session_id": session_id})["ok"]
        state = joining.call("join", {"session_id": session_id})["state"]
        assert {person["user_id"] for person in state["present"]} == {facilitator, participant}
        hosting.wait_for("presence", lambda body: body["person"]["user_id"] == participant)

        assert hosting.call("set_phase", {"session_id": session_id, "phase": "collect"})["ok"]
        joining.wait_for("session-state", lambda body: body["phase"] == "collect")
        posted = joining.call("post_card", {"session_id": session_id, "body": "Across"})
        card = hosting.wait_for("card", lambda body: body["card"]["id"] == posted["card_id"])
        assert card["card"]["body"] == "Across"
    finally:
        hosting.client.disconnect()
        joining.client.disconnect()
