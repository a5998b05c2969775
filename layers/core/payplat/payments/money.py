"""Amounts are integers in minor units of an ISO 4217 currency (JPY 0 decimals, USD 2,
KWD 3). Codes are upper case, as ISO 4217 writes them."""

from __future__ import annotations

from payplat.errors import InvalidRequest

# ISO 4217 minor-unit exponents of the currencies payplat settles.
EXPONENTS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
    "GBP": 2, "HKD": 2, "HUF": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0,
    "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2, "SEK": 2,
    "SGD": 2, "TND": 3, "TRY": 2, "USD": 2, "ZAR": 2,
}  # fmt: skip
# The largest single movement, in major units: no real payment comes near it, and it keeps
# every sum of amounts far inside DynamoDB's 38 digits.
MAX_MAJOR_UNITS = 10**9


def check_currency(currency: str, param: str = "currency") -> str:
    if currency not in EXPONENTS:
        hint = " (codes are upper case)" if currency.upper() in EXPONENTS else ""
        raise InvalidRequest(f"Unsupported currency: '{currency[:8]}'{hint}.", param=param)
    return currency


def check_amount(amount: int, currency: str, param: str = "amount") -> int:
    """A positive integer of minor units within the currency's maximum."""
    exponent = EXPONENTS[currency]
    if amount <= 0:
        raise InvalidRequest("The amount must be a positive integer.", param=param)
    if amount > MAX_MAJOR_UNITS * 10**exponent:
        raise InvalidRequest(
            f"The amount exceeds the maximum of {MAX_MAJOR_UNITS:,} {currency}.", param=param
        )
    return amount


def minor_units_hint(currency: str) -> str:
    exponent = EXPONENTS.get(currency, 2)
    example = 10 * 10**exponent + (5 * 10 ** (exponent - 1) if exponent else 0)
    return (
        f"amount is an integer in minor units: {example} is "
        f"{example / 10**exponent:.{exponent}f} {currency}"
    )
