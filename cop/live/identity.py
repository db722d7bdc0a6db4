"""Who is behind each open socket, checked again while it stays open.

A socket is opened with a login cookie or a personal API token; either can end while the
socket lives (logging out, a token revoked, an account deleted), and the person's
membership can change. The live notes and the live rooms re-check their sockets every few
seconds (LIVE_RIGHTS_CHECK_SECONDS) with these two lookups, one query per kind of row.
"""

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import select, tuple_

from cop.auth.models import ApiToken, EndedLogin, User
from cop.communities.models import Membership
from cop.extensions import db


class SocketIdentity(Protocol):
    """What a socket remembers of how its person logged in."""

    user_id: int
    session_nonce: str | None  # the cookie's, for a socket opened with one
    login_id: str | None
    api_token_id: int | None  # the token's, for a socket opened with one


def lasting_users(
    identities: list[SocketIdentity], pause: Callable[[], None] = lambda: None
) -> list[User | None]:
    """Return each socket's person, or None where the login or token behind it has ended.

    `pause` is called between the lookups (the live server lets other work run there).
    """
    login_ids = {each.login_id for each in identities if each.login_id}
    ended = set(
        db.session.scalars(select(EndedLogin.login_id).where(EndedLogin.login_id.in_(login_ids)))
    )
    pause()
    token_ids = {each.api_token_id for each in identities if each.api_token_id}
    live_tokens = set(db.session.scalars(select(ApiToken.id).where(ApiToken.id.in_(token_ids))))
    pause()
    users = {
        user.id: user
        for user in db.session.scalars(
            select(User).where(User.id.in_({each.user_id for each in identities}))
        )
    }
    lasting = []
    for each in identities:
        user = users.get(each.user_id)
        holds = (
            user is not None
            and not user.is_deleted
            and each.login_id not in ended
            and each.session_nonce in (None, user.session_nonce)
            and each.api_token_id in (None, *live_tokens)
        )
        lasting.append(user if holds else None)
    return lasting


def memberships_of(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], Membership]:
    """Return the memberships of these (user id, community id) pairs that exist."""
    if not pairs:
        return {}
    return {
        (membership.user_id, membership.community_id): membership
        for membership in db.session.scalars(
            select(Membership).where(tuple_(Membership.user_id, Membership.community_id).in_(pairs))
        )
    }
