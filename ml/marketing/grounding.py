"""The grounding checker: every factual span of a message must be on its fact sheet, or the message is blocked.

It reads the finished subject and body, whatever wrote them, and recognises:

- **product names**: quoted spans must be the titles of the featured products; any catalogue title appearing
  unquoted must be featured too (a real product the sheet does not feature is as wrong as an invented one);
- **prices** (a currency symbol and two decimals): a featured product's list price, its price after the
  message's offer, or after the day's promotion;
- **percentages**: the offer's discount, or a featured product's promotion;
- **dates** (``11 January 2025`` or ``2025-01-11``): the offer's expiry or the send day;
- **counts** (a number before ``orders``, ``days``, ``picks``, ``items``, ``products``): orders over 365 days,
  days since the last purchase (or the offer's length in days), the number of featured products;
- **categories**: the catalogue's category names, which must be the customer's top category or a featured
  product's;
- **free delivery**: claimed only with the member perk offer;
- **any other number** left after these is a failure: a fact the checker cannot trace is not allowed.

The limits: an invented product name that is neither quoted nor a catalogue title is not recognised as a
product (templates quote every name; a language model's output should be asked to), and words are not
checked for tone or truth beyond these spans.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from ml.marketing.facts import FactSheet

_QUOTED = re.compile(r"[\"“]([^\"”\n]+)[\"”]")
_MONEY = re.compile(r"[£€$]\s?(\d[\d,]*(?:\.\d+)?)")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?%")
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_LONG_DATE = re.compile(rf"\b(\d{{1,2}}) ({_MONTHS}) (\d{{4}})\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_COUNT = re.compile(r"\b(\d+) (orders?|days?|picks?|items?|products?)\b", re.IGNORECASE)
_FREE_DELIVERY = re.compile(r"free delivery|delivery is free|delivery is on us", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[\w'-]+")


def _tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


@dataclass
class Catalogue:
    """Every product title and category name a message could mention."""

    titles: set[str]
    categories: set[str]
    """Display forms: ``phone accessories`` for ``phone_accessories``."""
    _by_first: dict[str, list[tuple[tuple[str, ...], str]]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_products(cls, products: pd.DataFrame) -> Catalogue:
        titles = set(products["title"].dropna().astype(str))
        categories = {c.replace("_", " ").lower() for c in products["category"].dropna().astype(str)}
        by_first: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        for title in titles:
            tokens = tuple(_tokens(title))
            if tokens:
                by_first[tokens[0]].append((tokens, title))
        return cls(titles, categories, dict(by_first))

    def titles_in(self, text: str) -> set[str]:
        """Catalogue titles that appear in ``text`` as whole words (case-insensitive)."""
        words = _tokens(text)
        found = set()
        for i, word in enumerate(words):
            for tokens, title in self._by_first.get(word, ()):
                if tuple(words[i : i + len(tokens)]) == tokens:
                    found.add(title)
        return found


def _amount(text: str) -> float:
    return round(float(text.replace(",", "")), 2)


def check(subject: str, body: str, sheet: FactSheet, catalogue: Catalogue) -> list[str]:
    """The failures of a message against its sheet (empty: every recognised span is grounded)."""
    text = f"{subject}\n{body}"
    failures: list[str] = []
    featured = {p.title for p in sheet.products}
    offer = sheet.offer

    for m in _QUOTED.finditer(text):
        if m.group(1) not in featured:
            failures.append(f'product "{m.group(1)}" is not a featured product')
    rest = _QUOTED.sub(" ", text)
    for title in sorted(catalogue.titles_in(rest) - featured):
        failures.append(f'product "{title}" is mentioned but not featured')

    prices = set()
    for p in sheet.products:
        prices |= {
            round(p.price, 2),
            offer.price_after(p.price),
            round(p.price * (1 - p.promo_discount_pct / 100), 2),
        }
    for m in _MONEY.finditer(rest):
        if _amount(m.group(1)) not in prices:
            failures.append(f"price {m.group(0)} is not a featured product's price or offer price")
    rest = _MONEY.sub(" ", rest)

    percents = ({offer.discount_pct} if offer.discount_pct else set()) | {
        p.promo_discount_pct for p in sheet.products if p.promo_discount_pct
    }
    for m in _PERCENT.finditer(rest):
        if float(m.group(1)) not in percents:
            failures.append(f"discount {m.group(0)} is not what the offer gives ({offer.discount_pct}%)")
    rest = _PERCENT.sub(" ", rest)

    dates = {d for d in (offer.expires, sheet.send_date) if d is not None}
    for m in _LONG_DATE.finditer(rest):
        try:
            day = pd.Timestamp(f"{m.group(1)} {m.group(2)} {m.group(3)}").date()
        except ValueError:
            day = None
        if day not in dates:
            failures.append(f"date {m.group(0)} is neither the offer's expiry nor the send day")
    rest = _LONG_DATE.sub(" ", rest)
    for m in _ISO_DATE.finditer(rest):
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            day = None
        if day not in dates:
            failures.append(f"date {m.group(0)} is neither the offer's expiry nor the send day")
    rest = _ISO_DATE.sub(" ", rest)

    offer_days = (offer.expires - sheet.send_date).days if offer.expires else None
    for m in _COUNT.finditer(rest):
        n, noun = int(m.group(1)), m.group(2).lower().rstrip("s")
        allowed = {
            "order": {sheet.orders_365d},
            "day": {sheet.recency_days, offer_days},
            "pick": {len(sheet.products)},
            "item": {len(sheet.products)},
            "product": {len(sheet.products)},
        }[noun]
        if n not in allowed:
            failures.append(f"count '{m.group(0)}' does not match the facts")
    rest = _COUNT.sub(" ", rest)

    allowed_categories = {
        c.replace("_", " ").lower() for c in [sheet.top_category, *(p.category for p in sheet.products)] if c
    }
    lowered = rest.lower()
    for category in sorted(catalogue.categories - allowed_categories):
        if re.search(rf"\b{re.escape(category)}\b", lowered):
            failures.append(
                f"category '{category}' is neither the customer's top category nor a featured one"
            )

    if _FREE_DELIVERY.search(rest) and offer.kind != "member_perk":
        failures.append("free delivery is claimed but the offer does not give it")

    for m in _NUMBER.finditer(_FREE_DELIVERY.sub(" ", rest)):
        failures.append(f"number {m.group(0)} is not a recognised fact")
    return failures
