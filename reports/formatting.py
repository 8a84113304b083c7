"""Locale-aware formatting of the figures printed in reports (Babel).

Conventions every report follows:

- Amounts are shown in currency units (yuan for CNY) with exactly two
  decimals and grouping separators, without a currency symbol; the currency
  is stated once, in the column header (``Amount (CNY)``).
- Rounding is half-up and done here with :class:`~decimal.Decimal` before Babel
  sees the value, because Babel rounds half-even by default (0.125 -> 0.12).
- Negative values always carry the locale's minus sign; roll-forward lines
  that add or subtract carry an explicit sign (``+`` / ``-``).
- Rates arrive as numbers (floats); they are converted through their shortest
  decimal representation (``repr``) so that 0.015 is 0.015, not
  0.01499999999999999944...
- Dates use the locale's long form: ``June 30, 2025`` / ``2025年6月30日``.
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final, TypeAlias

import pycountry
from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_time, get_timezone
from babel.numbers import (
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    get_currency_symbol,
    get_minus_sign_symbol,
    get_plus_sign_symbol,
)

SUPPORTED_LOCALES: Final = ("en", "zh_CN")
"""Locales the reports are produced in (Babel identifiers)."""

MONEY_PLACES: Final = 2

Amount: TypeAlias = Decimal | int | str
"""Money as it arrives: a decimal string such as ``"1234.50"``, an int or a Decimal."""

Rate: TypeAlias = float | int | Decimal
"""A rate, share or factor as a number (0.1523 is 15.23%)."""


def check_locale(locale: str) -> str:
    """Return ``locale`` if reports are produced in it.

    Args:
        locale: A Babel locale identifier.

    Returns:
        The same identifier.

    Raises:
        ValueError: If the locale is not one of :data:`SUPPORTED_LOCALES`.
    """
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"unsupported report locale {locale!r}; use one of {SUPPORTED_LOCALES}")
    return locale


def html_lang(locale: str) -> str:
    """The BCP 47 tag for an HTML ``lang`` attribute (``zh_CN`` -> ``zh-CN``)."""
    return check_locale(locale).replace("_", "-")


def to_decimal(value: Amount) -> Decimal:
    """Parse an exact amount; floats are refused so that no binary rounding enters money.

    Args:
        value: A decimal string (``"1234.50"``), an int or a Decimal.

    Returns:
        The finite Decimal value.

    Raises:
        TypeError: If ``value`` is a float, a bool or another type.
        ValueError: If the string is not a finite decimal number.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise TypeError(f"an amount must be a decimal string, int or Decimal, not {value!r}")
    try:
        parsed = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return parsed


def rate_to_decimal(value: Rate) -> Decimal:
    """Convert a rate to Decimal through its shortest representation.

    Raises:
        TypeError: If ``value`` is a bool or not a number.
        ValueError: If ``value`` is not finite.
    """
    if isinstance(value, bool) or not isinstance(value, (float, int, Decimal)):
        raise TypeError(f"a rate must be a number, not {value!r}")
    parsed = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not parsed.is_finite():
        raise ValueError(f"not a finite rate: {value!r}")
    return parsed


def half_up(value: Decimal, places: int) -> Decimal:
    """Round ``value`` half-up to ``places`` decimals (``places`` >= 0)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _pattern(places: int) -> str:
    return "#,##0." + "0" * places if places > 0 else "#,##0"


def format_amount(value: Amount, locale: str) -> str:
    """Format an amount with two decimals, rounded half-up: ``-1,234,567.89``.

    Args:
        value: The amount in currency units (yuan).
        locale: A supported locale.

    Returns:
        The formatted amount, negative values with the locale's minus sign.
    """
    rounded = half_up(to_decimal(value), MONEY_PLACES)
    return format_decimal(rounded, format=_pattern(MONEY_PLACES), locale=check_locale(locale))


def format_signed_amount(value: Amount, locale: str) -> str:
    """Format an amount with an explicit sign: ``+1,000.00``, ``-250.00``, ``0.00``.

    Used where a line adds to or subtracts from a running total.
    """
    rounded = half_up(to_decimal(value), MONEY_PLACES)
    text = format_amount(abs(rounded), locale)
    if rounded > 0:
        return get_plus_sign_symbol(locale) + text
    if rounded < 0:
        return get_minus_sign_symbol(locale) + text
    return text


def format_number(value: Rate, locale: str, places: int) -> str:
    """Format a plain number with ``places`` decimals, rounded half-up: ``8.4``, ``0.812345``."""
    rounded = half_up(rate_to_decimal(value), places)
    return format_decimal(rounded, format=_pattern(places), locale=check_locale(locale))


def format_count(value: int, locale: str) -> str:
    """Format a count with grouping: ``12,345``.

    Raises:
        TypeError: If ``value`` is not an int (a bool is refused too).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a count must be an int, not {value!r}")
    return format_decimal(value, format="#,##0", locale=check_locale(locale))


def format_rate(value: Rate, locale: str, places: int = 2, max_places: int | None = None) -> str:
    """Format a ratio as a percentage, rounded half-up: 0.015 -> ``1.50%``.

    Args:
        value: The ratio (0.1523 is 15.23%).
        locale: A supported locale.
        places: Decimals always shown after the percent point.
        max_places: Decimals shown at most (trailing zeros beyond ``places``
            dropped), for terms such as coupons: 0.03355 -> ``3.355%``. Defaults
            to ``places``.

    Returns:
        The percentage in the locale's percent format.
    """
    upto = places if max_places is None else max_places
    if upto < places:
        raise ValueError("max_places must not be below places")
    # Quantised to the shown precision first: Babel then has nothing left to round.
    ratio = half_up(rate_to_decimal(value), upto + 2)
    pattern = "#,##0." + "0" * places + "#" * (upto - places) if upto > 0 else "#,##0"
    return format_percent(ratio, format=pattern + "%", locale=check_locale(locale))


def format_long_date(value: date, locale: str) -> str:
    """Format a date in the locale's long form: ``June 30, 2025`` / ``2025年6月30日``."""
    if isinstance(value, datetime):
        raise TypeError("format_long_date takes a date, not a datetime")
    return babel_format_date(value, format="long", locale=check_locale(locale))


def format_timestamp(value: datetime) -> str:
    """Format a timezone-aware instant as ISO 8601 to the second (locale-independent).

    Raises:
        ValueError: If ``value`` has no timezone (a naive time is ambiguous).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("generated_at must be timezone-aware")
    return value.isoformat(timespec="seconds")


# --- any currency and region (servicer tapes) --------------------------------------------------

_CURRENCY_LOCALES: Final = {"en": "en_001", "zh_CN": "zh_CN"}
"""Symbols come from world English in English reports, so USD is US$ (never a bare $)."""

NOT_AVAILABLE: Final = {"en": "not available from this source", "zh_CN": "该数据源未提供"}
"""What a report prints for a figure the pool's data source cannot give (never 0)."""


def format_money(value: Amount, currency: str, locale: str) -> str:
    """An amount with its currency's symbol: ``US$1,234.50``, ``NT$1,234.50``, ``¥1,234.50``.

    Args:
        value: The amount in the currency's main unit (``"1234.50"``).
        currency: ISO 4217 code of the deal's currency.
        locale: A supported report locale.

    Returns:
        The amount as Babel formats it for the locale, rounded half-up to the
        currency's minor unit.
    """
    amount = half_up(to_decimal(value), get_currency_precision(currency))
    return format_currency(
        amount,
        currency,
        locale=_CURRENCY_LOCALES[check_locale(locale)],
        currency_digits=True,
        decimal_quantization=True,
    )


def currency_symbol(currency: str, locale: str) -> str:
    """The currency's symbol as the report shows it (``US$``, ``NT$``, ``¥``)."""
    return get_currency_symbol(currency, locale=_CURRENCY_LOCALES[check_locale(locale)])


def region_name(code: str, locale: str) -> str:
    """The name of an ISO 3166 region in the report's language, from maintained sources.

    Countries (``TW``) are named by Babel's territory data; subdivisions
    (``CN-GD``, ``US-CA``) by pycountry's ISO 3166-2 list and its translations.
    An unknown code is returned as it is.
    """
    language = check_locale(locale)
    if "-" not in code:
        territories = Locale.parse(language).territories
        return str(territories.get(code, code))
    subdivision = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]  # pycountry is untyped
    if subdivision is None:
        return code
    name = str(subdivision.name)
    if language == "en":
        return name
    translation = gettext.translation(
        "iso3166-2", pycountry.LOCALES_DIR, languages=[language], fallback=True
    )
    return translation.gettext(name)


BEIJING: Final = "Asia/Shanghai"
"""Reports print times in Beijing time (UTC+8), the exchange's."""


def format_beijing_time(value: datetime, locale: str) -> str:
    """Format an instant in Beijing time: ``2025年7月1日 02:00（北京时间）`` /
    ``July 1, 2025, 02:00 (Beijing time)``.

    Raises:
        ValueError: If ``value`` has no timezone (a naive time is ambiguous).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("generated_at must be timezone-aware")
    zone = get_timezone(BEIJING)
    local = value.astimezone(zone)
    day = babel_format_date(local.date(), format="long", locale=check_locale(locale))
    clock = format_time(local, "HH:mm", tzinfo=zone, locale=locale)
    if locale.startswith("zh"):
        return f"{day} {clock}（北京时间）"
    return f"{day}, {clock} (Beijing time)"
