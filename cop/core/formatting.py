"""Locale-aware display of dates and countries."""

from datetime import UTC, datetime

from babel import Locale
from flask_babel import format_date, format_datetime, format_time, get_locale, get_timezone


def local_datetime(value: datetime | None, format: str = "medium") -> str:
    """Format a stored UTC datetime in the viewer's time zone and language."""
    if value is None:
        return ""
    return format_datetime(value.replace(tzinfo=UTC), format)


def local_date(value: datetime | None, format: str = "long") -> str:
    """Format the date of a stored UTC datetime as it is in the viewer's time zone."""
    if value is None:
        return ""
    return format_date(value.replace(tzinfo=UTC), format)


def viewer_date(moment: datetime, format: str = "full") -> str:
    """Format the date of an aware datetime as it is in the viewer's time zone."""
    return format_date(moment, format)


def viewer_time(moment: datetime, format: str = "short") -> str:
    """Format the time of an aware datetime in the viewer's time zone."""
    return format_time(moment, format)


def viewer_time_zone() -> str:
    """Return the name of the time zone times are shown in."""
    return str(get_timezone())


# Two-letter CLDR territories that are not countries (unknown region, EU, UN, pseudo-locales).
NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})


def country_choices() -> list[tuple[str, str]]:
    """Return (ISO 3166 code, name in the viewer's language) pairs, sorted by name."""
    territories = Locale.parse(str(get_locale())).territories
    return sorted(
        ((code, name) for code, name in territories.items() if is_country_code(code)),
        key=lambda pair: pair[1],
    )


def is_country_code(code: str) -> bool:
    """Tell whether `code` is a two-letter ISO 3166 country code known to Babel."""
    code = code.upper()
    return (
        len(code) == 2
        and code.isalpha()
        and code not in NOT_COUNTRIES
        and code in Locale("en").territories
    )


def country_name(code: str | None) -> str:
    """Return the country's name in the viewer's language."""
    if not code:
        return ""
    return Locale.parse(str(get_locale())).territories.get(code, code)
