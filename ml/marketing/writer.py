"""The words of a message: template families x campaigns, filled from the fact sheet and nothing else.

A family is a tone (``plain``, ``personal``, ``urgent``); the bandit of the feedback loop chooses among them.
Every value a template can print is a field computed here from the sheet, so a template cannot state a fact
the sheet lacks; the grounding checker still reads the finished text (the words may one day come from a
language model, and a template edited by hand can be wrong). Product names are quoted, prices carry the
currency symbol with two decimals, dates are written ``11 January 2025``, counts are digits before their noun:
the shapes the checker recognises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ml.marketing.facts import FactSheet

FAMILIES: tuple[str, ...] = ("plain", "personal", "urgent")

_SUBJECTS = {
    ("member_perks", "plain"): "Free delivery for members until {expires}",
    ("member_perks", "personal"): "Thank you for {orders} orders: delivery is on us",
    ("member_perks", "urgent"): "Members only: free delivery ends {expires}",
    ("win_back", "plain"): "{pct}% off your next order",
    ("win_back", "personal"): "We saved you {pct}% off {category} favourites",
    ("win_back", "urgent"): "Last chance: {pct}% off ends {expires}",
    ("welcome", "plain"): "Welcome: {pct}% off your first order",
    ("welcome", "personal"): "Welcome! {pct}% off picks chosen for you",
    ("welcome", "urgent"): "Your welcome {pct}% off ends {expires}",
    ("discount", "plain"): "{pct}% off {category} picks",
    ("discount", "personal"): "Your {category} picks, now {pct}% off",
    ("discount", "urgent"): "{pct}% off until {expires} only",
}

_OPENINGS = {
    "member_perks": "You have placed {orders} orders with us this year. As a member, your delivery is free until "
    "{expires}.",
    "win_back": "It has been {recency} days since your last order, so here is {pct}% off everything below until "
    "{expires}.",
    "win_back_browsed": "We have missed you at the checkout, so here is {pct}% off everything below until {expires}.",
    "welcome": "Thanks for joining us. Take {pct}% off your first order until {expires}.",
    "discount": "Good news for your basket: {pct}% off the {count} picks below until {expires}.",
}

_CLOSINGS = {
    "plain": "See them in the shop.",
    "personal": "Picked for you from what you have been browsing.",
    "urgent": "The offer ends on {expires}; stock is limited.",
}


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def money(sheet: FactSheet, amount: float) -> str:
    return f"{sheet.symbol}{amount:,.2f}"


def product_line(sheet: FactSheet, index: int) -> str:
    product = sheet.products[index]
    line = f'- "{product.title}": '
    if sheet.offer.discount_pct:
        now = sheet.offer.price_after(product.price)
        return line + f"now {money(sheet, now)} (was {money(sheet, product.price)})"
    return line + money(sheet, product.price)


def fields(sheet: FactSheet) -> dict[str, str]:
    offer = sheet.offer
    recency = "" if sheet.recency_days is None else str(int(sheet.recency_days))
    return {
        "expires": long_date(offer.expires) if offer.expires else "",
        "pct": str(offer.discount_pct),
        "orders": str(int(sheet.orders_365d)),
        "recency": recency,
        "count": str(len(sheet.products)),
        "category": (sheet.top_category or (sheet.products[0].category if sheet.products else "")).replace(
            "_", " "
        ),
    }


def write(sheet: FactSheet, campaign: str, family: str) -> Message:
    """The message of ``campaign`` in the tone of ``family`` for ``sheet`` (which must feature a product)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown template family {family!r}; known: {', '.join(FAMILIES)}")
    if not sheet.products:
        raise ValueError(f"{sheet.customer_id}: a message needs at least one featured product")
    values = fields(sheet)
    opening = "win_back_browsed" if campaign == "win_back" and not values["recency"] else campaign
    lines = [_OPENINGS[opening].format(**values), ""]
    lines += [product_line(sheet, i) for i in range(len(sheet.products))]
    lines += ["", _CLOSINGS[family].format(**values)]
    return Message(subject=_SUBJECTS[(campaign, family)].format(**values), body="\n".join(lines))
