"""Configuration from the environment (DESIGN.md, "Architecture")."""

import os
import secrets
from pathlib import Path

INSTANCE_PATH = Path(__file__).resolve().parent.parent / "instance"


def load_secret_key(instance_path: Path) -> str:
    """Return SECRET_KEY from the environment, or one generated once into instance/."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def normalise_database_url(url: str) -> str:
    """Use psycopg2 (which psycogreen makes cooperative) for a PostgreSQL URL with no driver.

    SQLAlchemy 2.1 would pick psycopg 3 for a bare "postgresql://"; "postgres://" is the
    scheme some hosting platforms still hand out.
    """
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url.removeprefix(bare)
    return url


def _database_url() -> str:
    return normalise_database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_PATH / 'cop.sqlite'}")
    )


class Config:
    """Settings read from the environment, with defaults for `make run`."""

    SQLALCHEMY_DATABASE_URI = _database_url()
    # A PostgreSQL connection left in the pool may have been dropped by the server or the
    # network: it is tested before use (not on SQLite, see create_app).
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL") or None
    # The Redis Pub/Sub channel of Socket.IO broadcasts: distinct per site sharing a Redis.
    SOCKETIO_CHANNEL = os.environ.get("SOCKETIO_CHANNEL", "cop")
    PREFERRED_URL_SCHEME = os.environ.get("PREFERRED_URL_SCHEME", "http")
    SERVER_NAME = os.environ.get("SERVER_NAME") or None
    # Behind N reverse proxies, trust the last N X-Forwarded-* headers (client address for
    # the login throttle, https for secure cookies). 0 when cop faces the clients itself.
    PROXY_COUNT = int(os.environ.get("PROXY_COUNT", "0"))

    # eventlet by default (DESIGN.md); gevent or threading by configuration.
    ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet")

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

    LANGUAGES = ("en", "fr")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = os.environ.get("DEFAULT_TIME_ZONE", "Europe/Paris")

    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute; 50 per hour")
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    RATELIMIT_HEADERS_ENABLED = True

    # Password hashing cost (argon2id, the argon2-cffi defaults: RFC 9106 low-memory profile).
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 65536
    ARGON2_PARALLELISM = 4
    PASSWORD_RESET_MAX_AGE = 3600  # seconds

    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_USE_TLS = os.environ.get("MAIL_USE_TLS", "").lower() in {"1", "true", "yes"}
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_SENDER = os.environ.get("MAIL_SENDER", "cop@localhost")

    # Live notes (docs/live-protocol.md).
    LIVE_MAX_UPDATE_BYTES = int(os.environ.get("LIVE_MAX_UPDATE_BYTES", 256 * 1024))
    LIVE_MAX_NOTE_BYTES = int(os.environ.get("LIVE_MAX_NOTE_BYTES", 1024 * 1024))  # UTF-8
    LIVE_MAX_AWARENESS_BYTES = int(os.environ.get("LIVE_MAX_AWARENESS_BYTES", 4 * 1024))
    LIVE_MAX_UPDATES_PER_SECOND = int(os.environ.get("LIVE_MAX_UPDATES_PER_SECOND", 100))
    LIVE_RIGHTS_CHECK_SECONDS = float(os.environ.get("LIVE_RIGHTS_CHECK_SECONDS", 2))
    # A room broadcasts at most once per window. With none (0), each broadcast goes out as
    # soon as the room's flusher gets its turn, with whatever arrived while the last one was
    # logged and sent (docs/live-protocol.md, "Persistence").
    LIVE_GROUP_COMMIT_SECONDS = float(os.environ.get("LIVE_GROUP_COMMIT_SECONDS", 0))
    # If set, a crowded room's window widens so that it sends its clients about this many
    # messages a second at most: with 10000, 100 clients get a 10 ms window, 200 clients 20 ms.
    LIVE_ROOM_DELIVERIES_PER_SECOND = float(os.environ.get("LIVE_ROOM_DELIVERIES_PER_SECOND", 0))
    LIVE_COMPACT_AFTER_IDLE_SECONDS = float(os.environ.get("LIVE_COMPACT_AFTER_IDLE_SECONDS", 2))
    LIVE_COMPACT_AT_LEAST_EVERY_SECONDS = float(
        os.environ.get("LIVE_COMPACT_AT_LEAST_EVERY_SECONDS", 5)
    )

    COMPRESS_MIMETYPES = [
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/json",
        "text/calendar",
        "text/markdown",
    ]
    COMPRESS_ALGORITHM = ["br", "gzip"]
    COMPRESS_MIN_SIZE = 256
    COMPRESS_REGISTER = False  # cop.register_compression applies it
