"""Generated messages: the playbook's targeting, caps and opt-outs, and the grounding checker that blocks any
message stating a fact its sheet does not hold."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.marketing.facts import FactSheet, Offer, ProductFact, featured_products
from ml.marketing.grounding import Catalogue, check
from ml.marketing.targeting import MarketingSettings, apply_caps_and_opt_outs, assign_campaigns
from ml.marketing.writer import FAMILIES, write

DAY = date(2025, 1, 20)
SETTINGS = MarketingSettings()

CATALOGUE_FRAME = pd.DataFrame(
    {
        "sku": ["S1", "S2", "S3", "S4"],
        "title": [
            "Juniq Recycled Eco Hoodie",
            "Pelvex Spf 30 Classic Moisturiser",
            "Briax Dishwasher-Safe Classic Chopping Board",
            "Halley Slim Compact Mount",
        ],
        "category": ["apparel", "skincare", "kitchen", "phone_accessories"],
        "price": [14.99, 15.99, 50.99, 25.99],
        "promo_discount_pct": [0, 25, 0, 0],
        "on_hand": [10, 4, 0, 7],
    }
)
CATALOGUE = Catalogue.from_products(CATALOGUE_FRAME)


def product(i: int) -> ProductFact:
    r = CATALOGUE_FRAME.iloc[i]
    return ProductFact(r.sku, r.title, r.category, r.price, int(r.promo_discount_pct), int(r.on_hand))


def sheet(campaign: str = "win_back", recency: int | None = 45) -> FactSheet:
    return FactSheet(
        customer_id="C0000001",
        send_date=DAY,
        lifecycle_stage="at_risk",
        segment="bargain hunters",
        top_category="apparel",
        orders_365d=7,
        spend_365d=312.4,
        recency_days=recency,
        discount_share_365d=0.6,
        currency="GBP",
        products=(product(0), product(1)),
        offer=SETTINGS.offer(campaign, DAY),
    )


@pytest.mark.parametrize("campaign", ["member_perks", "win_back", "welcome", "discount"])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_template_writes_a_grounded_message(campaign, family):
    s = sheet(campaign)
    message = write(s, campaign, family)
    assert check(message.subject, message.body, s, CATALOGUE) == []
    assert (
        '"Juniq Recycled Eco Hoodie"' in message.body
        and '"Pelvex Spf 30 Classic Moisturiser"' in message.body
    )
    if campaign != "member_perks":
        pct = s.offer.discount_pct
        assert f"{pct}%" in message.subject + message.body
        assert f"now £{round(14.99 * (1 - pct / 100), 2):.2f} (was £14.99)" in message.body


def test_a_win_back_for_a_customer_who_never_bought_states_no_recency():
    s = sheet("win_back", recency=None)
    message = write(s, "win_back", "plain")
    assert "days since" not in message.body and check(message.subject, message.body, s, CATALOGUE) == []


def grounded_body() -> tuple[FactSheet, str, str]:
    s = sheet("win_back")
    m = write(s, "win_back", "plain")
    return s, m.subject, m.body


def test_the_checker_blocks_a_wrong_price():
    s, subject, body = grounded_body()
    bad = body.replace("(was £14.99)", "(was £19.99)")
    assert bad != body
    assert check(subject, bad, s, CATALOGUE) == [
        "price £19.99 is not a featured product's price or offer price"
    ]


def test_the_checker_blocks_an_invented_product_and_a_real_one_not_featured():
    s, subject, body = grounded_body()
    invented = body + '\n- "Zorblax Quantum Hoodie": £14.99'
    assert check(subject, invented, s, CATALOGUE) == [
        'product "Zorblax Quantum Hoodie" is not a featured product'
    ]
    other = body + "\nAlso try the Halley Slim Compact Mount."
    assert check(subject, other, s, CATALOGUE) == [
        'product "Halley Slim Compact Mount" is mentioned but not featured'
    ]


def test_the_checker_blocks_a_discount_the_offer_does_not_give():
    s, subject, body = grounded_body()  # the win-back offer is 15%
    assert check(subject.replace("15%", "30%"), body, s, CATALOGUE) == [
        "discount 30% is not what the offer gives (15%)"
    ]
    perk = sheet("member_perks")  # no discount at all: any percentage is false, so is a discounted price
    m = write(perk, "member_perks", "plain")
    failures = check(m.subject, m.body + "\nNow 15% off: £12.74", perk, CATALOGUE)
    assert failures == [
        "price £12.74 is not a featured product's price or offer price",
        "discount 15% is not what the offer gives (0%)",
    ]
    # the day's category promotion of a featured product may be stated (Pelvex is 25% off in its sale)
    assert check(subject, body + "\nSkincare is 25% off this week.", s, CATALOGUE) == []


def test_the_checker_blocks_wrong_dates_counts_categories_and_stray_numbers():
    s, subject, body = grounded_body()
    expiry = DAY + timedelta(days=SETTINGS.offer_days)
    assert f"{expiry.day} January 2025" in body
    wrong = {
        body.replace(f"until {expiry.day} January 2025", "until 31 January 2025"): [
            "date 31 January 2025 is neither the offer's expiry nor the send day"
        ],
        body.replace("45 days", "12 days"): ["count '12 days' does not match the facts"],
        body + "\nYou have 3 orders waiting.": ["count '3 orders' does not match the facts"],
        body + "\nNew in kitchen, too.": [
            "category 'kitchen' is neither the customer's top category nor a featured one"
        ],
        body + "\nBuy 3 get 1 free.": [
            "number 3 is not a recognised fact",
            "number 1 is not a recognised fact",
        ],
        body + "\nAnd free delivery!": ["free delivery is claimed but the offer does not give it"],
    }
    for text, failures in wrong.items():
        assert text != body and check(subject, text, s, CATALOGUE) == failures
    # the customer's 7 orders, 2 picks, the send day and the offer's 7 days are facts
    fine = body + f"\nYour 7 orders, 2 picks, 7 days from {DAY.isoformat()}: apparel and skincare."
    assert check(subject, fine, s, CATALOGUE) == []


def profiles() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D", "E", "F"],
            "lifecycle_stage": ["loyal", "at_risk", "new", "active", "active", "at_risk"],
            "recency_days": [3, 50, None, 10, 12, 40],
            "f_score": [5, 5, None, 2, 3, 4],
            "m_score": [4, 3, None, 2, 3, 5],
            "discount_share_365d": [0.1, 0.9, None, 0.8, 0.05, 0.0],
        }
    )


def test_the_playbook_targets_by_the_first_matching_rule():
    got = assign_campaigns(profiles(), SETTINGS).set_index("customer_id")["campaign"].to_dict()
    # A frequent and valuable; B lapsing; C new; D price-sensitive (0.8 >= the 75% quantile of the five shares, 0.8);
    # E matches nothing; F is lapsing but also frequent and valuable: member perks come first
    assert got == {"A": "member_perks", "B": "win_back", "C": "welcome", "D": "discount", "F": "member_perks"}
    rules = assign_campaigns(profiles(), SETTINGS).set_index("customer_id")["rule"]
    assert rules["D"] == "80% of units bought on discount, at or above the day's 75% quantile (80%)"
    assert rules["B"] == "lifecycle stage at_risk (last purchase 50 days ago)"


def test_caps_and_opt_outs_remove_targets_and_an_opt_out_counts_once():
    targets = assign_campaigns(profiles(), SETTINGS)
    kept, removed = apply_caps_and_opt_outs(targets, capped={"A", "D"}, opted_out={"F", "D"})
    # A is within the cap; D and F opted out (D's recent message does not matter: counted once, as an opt-out)
    assert sorted(kept["customer_id"]) == ["B", "C"]
    assert removed == {"opted_out": 2, "frequency_capped": 1}


def test_featured_products_are_the_served_list_in_stock_in_rank_order():
    lists = pd.DataFrame(
        {"customer_id": ["X"] * 4 + ["Y"], "rank": [1, 2, 3, 4, 1], "sku": ["S3", "S2", "S4", "S1", "S3"]}
    )
    got = featured_products(lists, CATALOGUE_FRAME, count=2)
    assert [p.sku for p in got["X"]] == ["S2", "S4"]  # S3 has no stock
    assert "Y" not in got  # nothing in stock to feature
    assert got["X"][0].promo_discount_pct == 25 and got["X"][0].price == 15.99


def test_an_unknown_family_or_an_empty_sheet_is_refused():
    with pytest.raises(ValueError, match="unknown template family 'shouty'"):
        write(sheet(), "win_back", "shouty")
    empty = FactSheet(**{**sheet().__dict__, "products": ()})
    with pytest.raises(ValueError, match="needs at least one featured product"):
        write(empty, "win_back", "plain")


def test_offers_follow_the_settings():
    assert SETTINGS.offer("welcome", DAY) == Offer("percent_off", 10, DAY + timedelta(days=7))
    assert SETTINGS.offer("member_perks", DAY).discount_pct == 0
    assert Offer("percent_off", 15).price_after(14.99) == 12.74


def test_opt_outs_and_recent_sends_come_from_the_warehouse():
    import duckdb

    from ml.marketing.messages import capped_customers, opted_out

    con = duckdb.connect()
    assert opted_out(con, DAY) == set() and capped_customers(con, DAY, 7) == set()  # nothing built yet
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_message_events as select * from (values "
        "('A', true, DATE '2025-01-19'), ('B', false, DATE '2025-01-19'), ('C', true, DATE '2025-01-21')) "
        "as t(customer_id, unsubscribed, send_date)"
    )
    assert opted_out(con, DAY) == {"A"}  # C unsubscribes after the day
    con.execute("create schema marketing")
    con.execute(
        "create table marketing.messages as select * from (values "
        "('A', DATE '2025-01-14', 'ready'), ('B', DATE '2025-01-13', 'ready'), ('C', DATE '2025-01-19', 'holdout'), "
        "('D', DATE '2025-01-19', 'blocked'), ('E', DATE '2025-01-20', 'ready')) as t(customer_id, as_of_date, status)"
    )
    # one message in any 7 days: A (sent 6 days before) and C (held out) are capped; B, sent 7 days before, is
    # free again; D was never sent; E's message is the day's own (a re-run replaces it, never caps it)
    assert capped_customers(con, DAY, 7) == {"A", "C"}


def test_message_metrics_measure_the_sent_against_the_held_out_on_the_send_day():
    import duckdb

    from ml.marketing.feedback import message_metrics_day, message_metrics_summary

    send = DAY + timedelta(days=1)
    con = duckdb.connect()
    con.execute("create schema marketing; create schema marts")
    # 40 sent (20 plain, 20 urgent) and 10 held out; D's blocked message and another day's are not measured
    rows = [(f"S{i}", f"C{i}", "win_back", "plain" if i < 20 else "urgent", "ready") for i in range(40)]
    rows += [(f"H{i}", f"H{i}", "win_back", "plain", "holdout") for i in range(10)]
    rows += [("B0", "B0", "win_back", "plain", "blocked")]
    con.execute(
        "create table marketing.messages (message_id varchar, customer_id varchar, campaign varchar, "
        "family varchar, status varchar, discount_pct integer, as_of_date date, send_date date)"
    )
    con.executemany(
        "insert into marketing.messages values (?, ?, ?, ?, ?, 15, ?, ?)", [(*r, DAY, send) for r in rows]
    )
    con.execute(
        "insert into marketing.messages values ('S0', 'C0', 'win_back', 'plain', 'ready', 15, ?, ?)",
        [DAY - timedelta(days=1), DAY],
    )
    # the first 8 sent customers opened, 4 of them clicked and bought 10.0 (margin 2.0) in the click's session
    con.execute(
        "create table marts.fct_message_events as select 'S' || i as message_id, i < 8 as opened, i < 4 as clicked, "
        "i = 7 as unsubscribed, case when i < 4 then 10.0 else 0 end as credited_revenue, "
        "case when i < 4 then 2.0 else 0 end as credited_margin from range(40) as t(i)"
    )
    # sales on the send day: those 4 sent customers, plus 1 held-out customer who bought 5.0 on their own
    con.execute(
        "create table marts.fct_order_items as select * from (values "
        "('O1', 'C0', 10.0, 2.0, true, ?::date), ('O2', 'C1', 10.0, 2.0, true, ?::date), "
        "('O3', 'C2', 10.0, 2.0, true, ?::date), ('O4', 'C3', 10.0, 2.0, true, ?::date), "
        "('O5', 'H0', 5.0, 2.0, true, ?::date), ('O6', 'C9', 99.0, 40.0, true, ?::date)) "
        "as t(order_id, customer_id, net_amount, margin, is_sale, order_date)",
        [send] * 5 + [DAY],
    )
    metrics, uplift = message_metrics_day(con, send, resamples=200, min_arm_customers=10)
    sent = metrics[metrics["arm"] == "treatment"].set_index("family")
    assert sent.loc["plain", "customers"] == 20 and sent.loc["urgent", "customers"] == 20
    assert sent.loc["plain", "open_rate"] == pytest.approx(8 / 20) and sent.loc["plain", "click_rate"] == 0.2
    assert sent.loc["plain", "unsubscribe_rate"] == pytest.approx(1 / 20)
    assert sent.loc["urgent", "open_rate"] == 0 and sent.loc["plain", "credited_revenue"] == pytest.approx(
        2.0
    )
    held = metrics[metrics["arm"] == "control"].iloc[0]
    assert held["customers"] == 10 and np.isnan(held["open_rate"]) and held["revenue"] == pytest.approx(0.5)
    overall = uplift[uplift["campaign"] == "all"].set_index("metric")
    assert overall.loc["revenue", "treatment"] == pytest.approx(40 / 40)
    assert overall.loc["revenue", "difference"] == pytest.approx(1.0 - 0.5)
    assert overall.loc["conversion", "difference"] == pytest.approx(4 / 40 - 1 / 10)
    assert overall.loc["revenue", "ci_low"] <= 0.5 <= overall.loc["revenue", "ci_high"]
    # with the default minimum of 30 customers per arm the 10 held out are too few for an interval
    _, default = message_metrics_day(con, send, resamples=200)
    assert default["ci_low"].isna().all() and default["difference"].tolist() == uplift["difference"].tolist()
    shown = message_metrics_summary(metrics, uplift)["metrics"]
    assert shown["customers_sent"] == 40 and shown["customers_held_out"] == 10
    assert shown["share_plain"] == 0.5 and shown["open_rate"] == pytest.approx(8 / 40)
    assert shown["revenue_uplift"] == pytest.approx(0.5)
