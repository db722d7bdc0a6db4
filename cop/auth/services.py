"""Account rules: registration, passwords, sessions, API tokens, deletion."""

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, request, session
from flask_babel import gettext as _
from sqlalchemy import func, select

from cop.auth.models import ApiToken, EndedLogin, User
from cop.core.errors import ConflictError
from cop.core.time import utcnow
from cop.extensions import db

API_TOKEN_PREFIX = "cop_"


def _hasher() -> PasswordHasher:
    config = current_app.config
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"],
        memory_cost=config["ARGON2_MEMORY_COST"],
        parallelism=config["ARGON2_PARALLELISM"],
    )


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher().hash(password)


def normalise_email(email: str) -> str:
    """Return the form of an email address used to compare and store it."""
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    """Return the live account with this email (case-insensitive), or None."""
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def register_user(email: str, display_name: str, password: str, locale: str | None = None) -> User:
    """Create an account; refuse an email already in use."""
    if find_user_by_email(email) is not None:
        raise ConflictError(
            _("An account already uses this email address."),
            {"email": [_("An account already uses this email address.")]},
        )
    user = User(
        email=normalise_email(email),
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        locale=locale,
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the account matching email and password, or None (same cost either way)."""
    user = find_user_by_email(email)
    hasher = _hasher()
    if user is None or user.password_hash is None:
        # Spend the same time as a real check, so timing does not reveal accounts.
        try:
            hasher.verify(_dummy_hash(), password)
        except VerificationError:
            pass
        return None
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return user


_DUMMY_HASHES: dict[tuple[int, int, int], str] = {}


def _dummy_hash() -> str:
    config = current_app.config
    key = (config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_COST"], config["ARGON2_PARALLELISM"])
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = _hasher().hash(secrets.token_hex(16))
    return _DUMMY_HASHES[key]


def check_password(user: User, password: str) -> bool:
    """Tell whether `password` is the user's current password."""
    try:
        return user.password_hash is not None and _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_password(user: User, password: str) -> None:
    """Change the password and end every other session of the account."""
    user.password_hash = hash_password(password)
    user.session_nonce = secrets.token_hex(16)


def load_user_from_session(session_id: str) -> User | None:
    """Return the user a session cookie names, if its nonce is current and it did not log out."""
    user_id, _sep, nonce = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.is_deleted or not secrets.compare_digest(user.session_nonce, nonce):
        return None
    if login_has_ended(session.get("login_id")):
        return None
    return user


def new_login_id() -> str:
    """Return a fresh identifier for one browser session's login."""
    return secrets.token_hex(16)


def login_has_ended(login_id: str | None) -> bool:
    """Tell whether the browser session with this login id logged out."""
    return login_id is not None and db.session.get(EndedLogin, login_id) is not None


def end_login(login_id: str | None) -> None:
    """Record that a browser session logged out."""
    if login_id and not login_has_ended(login_id):
        db.session.add(EndedLogin(login_id=login_id))
        db.session.flush()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create a personal API token; return the row and the secret, shown only once."""
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name.strip(), token_hash=_digest(secret))
    db.session.add(token)
    db.session.flush()
    return token, secret


def api_token_for(secret: str) -> ApiToken | None:
    """Return the API token with this secret, if its owner's account is live; note its use."""
    token = db.session.scalar(select(ApiToken).filter_by(token_hash=_digest(secret)))
    if token is None or token.user.is_deleted:
        return None
    token.last_used_at = utcnow()
    return token


def user_for_api_token(secret: str) -> User | None:
    """Return the live user owning this API token secret, or None."""
    token = api_token_for(secret)
    return token.user if token is not None else None


def load_user_from_api_token(req) -> User | None:
    """Authenticate an API request from `Authorization: Bearer <token>` (Flask-Login hook)."""
    header = req.headers.get("Authorization", "")
    scheme, _sep, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    user = user_for_api_token(secret.strip())
    if user is not None:
        db.session.commit()  # record last_used_at; nothing else is pending yet
        request.environ["cop.api_token"] = True
    return user


def authenticated_by_api_token() -> bool:
    """Tell whether the current request was authenticated by an API token."""
    return bool(request.environ.get("cop.api_token"))


def _reset_serializer():
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def _password_fingerprint(user: User) -> str:
    # Changes with the password, so a reset link works once.
    return hashlib.sha256(f"{user.password_hash}:{user.session_nonce}".encode()).hexdigest()[:16]


def make_password_reset_token(user: User) -> str:
    """Return a signed, single-use, time-limited password reset token."""
    return _reset_serializer().dumps({"user": user.id, "fp": _password_fingerprint(user)})


def user_for_password_reset(token: str) -> User | None:
    """Return the user a reset token was made for, if it is valid, fresh and unused."""
    from itsdangerous import BadSignature

    try:
        data = _reset_serializer().loads(
            token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"]
        )
    except BadSignature:  # also covers SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int):
        return None
    user = db.session.get(User, data["user"])
    if user is None or user.is_deleted or data.get("fp") != _password_fingerprint(user):
        return None
    return user


def delete_account(user: User) -> None:
    """Delete an account: personal data goes, contributions stay as a former member's."""
    from cop.communities.services import communities_where_last_host

    stranded = communities_where_last_host(user)
    if stranded:
        names = ", ".join(community.name for community in stranded)
        raise ConflictError(
            _(
                "You are the last host of %(names)s. Make another member a host first.",
                names=names,
            )
        )
    for membership in list(user.memberships):
        db.session.delete(membership)
    for token in list(user.api_tokens):
        db.session.delete(token)
    user.email = f"deleted-{user.id}@deleted.invalid"
    user.display_name = ""
    user.password_hash = None
    user.locale = None
    user.time_zone = None
    user.session_nonce = secrets.token_hex(16)
    user.deleted_at = utcnow()
    db.session.flush()


def export_personal_data(user: User) -> dict:
    """Return everything cop holds about a person, as JSON-ready data."""
    return {
        "account": {
            "id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "locale": user.locale,
            "time_zone": user.time_zone,
            "created_at": user.created_at.isoformat() + "Z",
        },
        "memberships": [
            {
                "community": membership.community.slug,
                "community_name": membership.community.name,
                "role": membership.role.value,
                "organisation": membership.organisation.name if membership.organisation else None,
                "joined_at": membership.joined_at.isoformat() + "Z",
            }
            for membership in user.memberships
        ],
        "api_tokens": [
            {
                "name": token.name,
                "created_at": token.created_at.isoformat() + "Z",
                "last_used_at": token.last_used_at.isoformat() + "Z"
                if token.last_used_at
                else None,
            }
            for token in user.api_tokens
        ],
    }
