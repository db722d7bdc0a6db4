"""Accounts: users and their personal API tokens."""

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cop.core.time import utcnow
from cop.extensions import db

EMAIL_MAX = 254
NAME_MAX = 200
PASSWORD_MIN = 10
PASSWORD_MAX = 128


class User(UserMixin, db.Model):
    """A person with an account; a deleted account keeps its row so contributions stay."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX), unique=True)
    display_name: Mapped[str] = mapped_column(String(NAME_MAX))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(10))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # Rotated on password change and account deletion: every session cookie carries it,
    # so old sessions stop working at once.
    session_nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    memberships: Mapped[list["Membership"]] = relationship(  # noqa: F821
        back_populates="user", cascade="all, delete-orphan"
    )
    api_tokens: Mapped[list["ApiToken"]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def is_deleted(self) -> bool:
        """Tell whether the account was deleted (its contributions remain)."""
        return self.deleted_at is not None

    @property
    def is_active(self) -> bool:
        """Refuse logins to deleted accounts (Flask-Login asks this)."""
        return not self.is_deleted

    def get_id(self) -> str:
        """Identify the user in the session cookie together with the session nonce."""
        return f"{self.id}:{self.session_nonce}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class EndedLogin(db.Model):
    """A browser session that logged out: its cookie, even replayed, no longer logs anyone in.

    Each login gets a random `login_id` in its session; live sockets opened with that
    cookie are disconnected within seconds once it appears here.
    """

    login_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ended_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(db.Model):
    """A personal API token; only its SHA-256 digest is stored."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="api_tokens")
