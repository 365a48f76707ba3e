"""The Dagster UI as ops see it, driven by a real browser: Debian's Chromium under Playwright, against a real
`dagster dev` (webserver + daemon + queued run coordinator) over a temporary DAGSTER_HOME holding two
materialised days. Screenshots land in test-output/browser/ (AIGC_TEST_OUTPUT overrides the folder).

Run by `make test-e2e` (which `.ci/run` calls after `make test`). The browser must start: if Chromium is missing
or cannot launch, the tests fail and say how to install it; they never skip.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml.settings import REPO_ROOT
from orchestration.instance import prepare_instance
from tests.pipeline_helpers import FOUNDATION_GROUPS, all_assets, landing_rows, resources_for
from tests.ui_server import LOCATION, DagsterUI, start_dagster_dev, stop

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

DAYS = ("2025-01-01", "2025-01-02")
NEXT_DAY = "2025-01-03"
GROUPS = ("landing", "ingest", "staging", "intermediate", "marts", "quality", "features", "people", "goods",
          "place", "supply", "recommend")  # fmt: skip
CHROMIUM = os.environ.get("AIGC_CHROMIUM", "/usr/bin/chromium")
# Headless as root in a container: no sandbox; no background networking (this machine's network is closed and
# Chromium's calls home would only fail and slow it down).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
OUTPUT = Path(os.environ.get("AIGC_TEST_OUTPUT") or REPO_ROOT / "test-output") / "browser"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> DagsterUI:
    """`dagster dev` over two days materialised the way the daily schedule does it (one run per day)."""
    data_dir = tmp_path_factory.mktemp("ui") / "data"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIGC_DATA_DIR", str(data_dir))
        env.delenv("DAGSTER_HOME", raising=False)
        home = prepare_instance()  # what `make ui` does: the shipped dagster.yaml and the warehouse pool
    instance = dg.DagsterInstance.from_config(str(home))
    for day in DAYS:
        result = dg.materialize(
            all_assets(),
            selection=dg.AssetSelection.groups(*FOUNDATION_GROUPS, "supply"),
            resources=resources_for(data_dir),
            partition_key=day,
            instance=instance,
        )
        assert result.success
    instance.dispose()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    server = start_dagster_dev(data_dir, home, OUTPUT / "dagster_dev.log")
    yield server
    stop(server)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import Error, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's package (`apt-get install -y chromium`) or set "
            "AIGC_CHROMIUM to a Chromium binary. The browser test does not skip."
        )
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Error as error:
            pytest.fail(f"Chromium at {CHROMIUM} could not start headless: {error}")
        yield browser
        browser.close()


@pytest.fixture
def page(browser, ui):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def open_page(page, ui: DagsterUI, path: str) -> None:
    page.goto(ui.url + path)
    page.wait_for_load_state("networkidle")


def shot(page, name: str) -> Path:
    path = OUTPUT / name
    page.wait_for_timeout(700)  # let dialogs and toasts finish their fade-in
    # The shipped instance turns the first visit's "Join the Dagster community" dialog off (nux: enabled: false).
    assert page.get_by_role("button", name="Skip").count() == 0, "a dialog covers the page"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


def test_asset_graph_shows_the_groups_and_the_lineage_from_landing_to_recommendations(page, ui):
    open_page(page, ui, "/asset-groups")
    sidebar = page.get_by_text(re.compile(r"^(" + "|".join(GROUPS) + r")$"))
    sidebar.first.wait_for()
    shown = {t.strip() for t in sidebar.all_inner_texts()}
    assert set(GROUPS) <= shown, f"groups missing from the asset graph: {set(GROUPS) - shown}"
    shot(page, "01_asset_graph.png")

    # Everything upstream of the recommendations: from the landing files through raw, dbt and the marts.
    open_page(
        page, ui, "/assets/recommend/recommendations?view=lineage&lineageScope=upstream&lineageDepth=20"
    )
    for node in ("candidate_models", "champion", "fct_order_items", "int_order_lines", "stg_orders"):
        page.get_by_text(node, exact=True).first.wait_for()
    graph = page.inner_text("body")
    for group in ("landing", "ingest", "staging", "intermediate", "marts", "recommend"):
        assert re.search(rf"^{group}$", graph, re.M), f"group {group} not in the upstream lineage"
    shot(page, "02_lineage_to_recommendations.png")


def test_partitions_view_shows_the_two_materialised_days(page, ui):
    open_page(page, ui, "/assets/raw/orders?view=partitions")
    page.get_by_text("Materialized (2)").wait_for()
    page.get_by_text("Failed (0)").wait_for()
    shot(page, "03_partitions_raw_orders.png")


def test_launch_one_more_partition_from_the_ui_and_it_succeeds(page, ui):
    open_page(page, ui, "/assets/landing/orders")
    page.get_by_role("button", name="Materialize…").first.click()
    # Landing is one multi-asset (every table of the drop): the UI asks to confirm the whole set.
    page.get_by_role("button", name="Confirm").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Show all partitions").click()
    partition_box = dialog.locator("input[type=text]").first
    partition_box.fill(NEXT_DAY)
    partition_box.press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for()
    shot(page, "04_launch_dialog.png")
    dialog.get_by_role("button", name="Launch 1 run").click()

    page.get_by_text("Launched run").wait_for()  # the toast, with a button to the run
    page.get_by_text("View", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+"))
    run_id = re.search(r"/runs/([0-9a-f-]+)", page.url).group(1)
    finished = ui.wait_for_runs([run_id], timeout=300)[run_id]
    assert finished["status"] == "SUCCESS", ui.failure(run_id)
    assert {"key": "dagster/partition", "value": NEXT_DAY} in finished["tags"]
    page.get_by_text("Success", exact=True).first.wait_for()
    shot(page, "05_run_succeeded.png")

    open_page(page, ui, "/assets/landing/orders?view=partitions")
    page.get_by_text("Materialized (3)").wait_for()


def test_an_asset_check_shows_its_result_and_metadata(page, ui):
    open_page(page, ui, "/assets/raw/orders?view=checks&checkDetail=reconciles_with_landing")
    page.get_by_text("blocking", exact=True).first.wait_for()
    page.get_by_text("Passed", exact=True).first.wait_for()
    for key in ("landed", "quarantined", "difference"):
        page.get_by_text(key, exact=True).first.wait_for()
    shot(page, "06_check_reconciles_with_landing.png")


def test_the_forecast_chart_is_an_image_in_the_ui(page, ui):
    open_page(page, ui, "/assets/supply/demand_forecast")
    row = page.locator("tr", has_text="forecast_chart")
    row.get_by_text("[Show Markdown]").click()
    image = page.get_by_role("dialog").locator("img").first
    image.wait_for()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    width, height = image.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert width == 576 and height > 300, "the chart did not decode"
    shot(page, "07_forecast_chart.png")


def test_two_warehouse_runs_are_queued_and_run_one_after_the_other(ui):
    """The shipped dagster.yaml: runs go through the queue; both re-ingest days write DuckDB (pool limit 1), so the
    second starts only after the first has finished, and both succeed without duplicating a row."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=int(ui.url.rsplit(":", 1)[1]))
    run_ids = [
        client.submit_job_execution(
            "raw_ingest", repository_location_name=LOCATION, tags={"dagster/partition": day}
        )
        for day in DAYS
    ]
    runs = ui.wait_for_runs(run_ids, timeout=420)
    for run_id in run_ids:
        assert runs[run_id]["status"] == "SUCCESS", ui.failure(run_id)
    first, second = sorted(runs.values(), key=lambda r: r["startTime"])
    assert second["startTime"] >= first["endTime"], "two warehouse writers ran at the same time"

    with duckdb.connect(str(ui.data_dir / "warehouse.duckdb"), read_only=True) as con:
        # raw holds only these two days (the UI test above landed a third day but did not ingest it).
        raw, quarantined = (
            con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0]
            for t in ("orders", "quarantine_orders")
        )
    assert raw + quarantined == landing_rows(ui.data_dir / "landing", "simulated", "orders", list(DAYS))
