"""The read API's protections (api/security.py, api/store.py) against a real server on loopback: token, rate
limit, size caps, errors without internals, an access log without personal data, exports reloaded when a day is
written, and hostile input to every endpoint answered without a 5xx (a property-based fuzz run)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.security import RateLimiter, SecuritySettings, check_bind
from ml.exports import write_export
from tests.api_server import get, get_full, running_api
from tests.test_api import _write_exports, _write_messages

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    _write_exports(root)
    _write_messages(root)
    # every output present, so that a 5xx in the fuzz run can only be a fault (a missing one answers 503)
    alerts = pd.DataFrame({"sku": ["S1"], "warehouse_id": ["WH1"], "revenue_at_risk": [12.5]})
    write_export(alerts, root, "stockout_alerts", date(2025, 1, 14))
    return root


@pytest.fixture(scope="module")
def guarded(exports):
    with running_api(
        exports, {"AIGC_API_TOKEN": TOKEN, "AIGC_API_RATE": "1000", "AIGC_API_BURST": "1000"}
    ) as api:
        yield api


def test_a_token_is_required_for_personal_data_but_not_for_health(guarded):
    assert get(guarded + "/health")[0] == 200
    status, body, headers = get_full(guarded + "/recommendations/C1")
    assert status == 401 and "Bearer" in body["detail"] and headers["WWW-Authenticate"] == "Bearer"
    assert get(guarded + "/recommendations/C1", {"Authorization": "Bearer wrong"})[0] == 401
    assert get(guarded + "/recommendations/C1", {"Authorization": TOKEN})[0] == 401  # no scheme
    status, body = get(guarded + "/recommendations/C1", AUTH)
    assert status == 200 and [i["sku"] for i in body["items"]] == ["S9", "S4", "S7"]
    assert get(guarded + "/messages/C1", AUTH)[0] == 200 and get(guarded + "/messages/C1")[0] == 401


def test_health_shows_no_server_paths(guarded, exports):
    _, body = get(guarded + "/health")
    assert str(exports) not in str(body) and set(body) == {"status", "latest_as_of"}


def test_it_refuses_to_listen_beyond_loopback_without_a_token():
    with pytest.raises(SystemExit, match="without a token"):
        check_bind("0.0.0.0", SecuritySettings())
    check_bind("0.0.0.0", SecuritySettings(token="t"))  # with a token it may
    check_bind("127.0.0.1", SecuritySettings())
    check_bind("::1", SecuritySettings())
    env = {k: v for k, v in __import__("os").environ.items() if k != "AIGC_API_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "api.app", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "refusing to listen on '0.0.0.0' without a token" in done.stderr


def test_the_rate_limit_refills_at_its_rate():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == pytest.approx(0.5)  # one token comes back in half a second
    assert limiter.take("b", now=0.0) == 0.0  # another client has its own bucket
    assert limiter.take("a", now=0.5) == 0.0
    assert limiter.take("a", now=0.5) > 0


def test_a_client_over_its_rate_gets_429_with_retry_after(exports):
    with running_api(exports, {"AIGC_API_RATE": "2", "AIGC_API_BURST": "5"}) as api:
        answers = [get_full(api + "/recommendations/C1") for _ in range(12)]
    statuses = [a[0] for a in answers]
    assert statuses[:4] == [200] * 4 and statuses.count(429) >= 5
    refused = next(a for a in answers if a[0] == 429)
    assert "rate limit" in refused[1]["detail"] and int(refused[2]["Retry-After"]) >= 1


def test_oversized_requests_and_responses_are_refused_with_a_message(exports):
    with running_api(exports, {"AIGC_API_MAX_RESPONSE_BYTES": "300"}) as api:
        assert get(api + "/recommendations/" + "x" * 3000)[0] == 414
        status, body = get(api + "/recommendations/C1?k=1")  # about 180 bytes
        assert status == 200
        status, body = get(api + "/recommendations/C1?k=3")  # about 450
        assert status == 413 and "narrow the query" in body["detail"]
        request = urllib.request.Request(api + "/health", data=b"x" * 5000, method="GET")
        try:
            urllib.request.urlopen(request, timeout=10)
            code = 200
        except urllib.error.HTTPError as e:
            code = e.code
        assert code == 413


def test_a_failure_answers_500_with_a_request_id_and_no_trace(tmp_path):
    root = tmp_path / "exports"
    _write_exports(root)
    broken = root / "recommendations" / "date=2025-01-15"
    broken.mkdir()
    (broken / "recommendations.parquet").write_bytes(b"not a parquet file")
    with running_api(root) as api:
        status, body, headers = get_full(api + "/recommendations/C1")
        log = api.log()
    assert status == 500 and set(body) == {"detail", "request_id"} and body["detail"] == "internal error"
    assert headers["x-request-id"] == body["request_id"]
    assert "Traceback" in log and f"request {body['request_id']} failed" in log  # the trace stays in the log


def test_the_access_log_names_routes_not_people(exports):
    with running_api(exports) as api:
        get(api + "/recommendations/C1?k=2")
        get(api + "/messages/C2")
        get(api + "/forecast/S1")
        time.sleep(0.2)
        log = api.log()
    lines = [line for line in log.splitlines() if "aigc.api.access" in line]
    assert len(lines) >= 4  # the three and the start-up health probe
    assert '"route": "/recommendations/{customer_id}"' in log and '"status": 404' in log
    for personal in ("C1", "C2", "S1", "k=2", "127.0.0.1"):
        assert not any(personal in line for line in lines), personal


def test_a_new_day_and_a_rewritten_day_are_served_on_the_next_request(tmp_path):
    root = tmp_path / "exports"
    _write_exports(root)
    frame = pd.DataFrame(
        {
            "customer_id": ["C1"],
            "rank": [1],
            "sku": ["S5"],
            "score": [1.0],
            "model_name": ["ease"],
            "model_version": ["v"],
            "reason": ["r"],
        }
    )
    with running_api(root) as api:
        assert get(api + "/recommendations/C1")[1]["as_of"] == "2025-01-14"
        write_export(frame, root, "recommendations", date(2025, 1, 15))
        status, body = get(api + "/recommendations/C1")
        assert status == 200 and body["as_of"] == "2025-01-15" and [i["sku"] for i in body["items"]] == ["S5"]
        write_export(frame.assign(sku="S6"), root, "recommendations", date(2025, 1, 15))
        assert [i["sku"] for i in get(api + "/recommendations/C1")[1]["items"]] == ["S6"]
        assert get(api + "/recommendations/C2")[0] == 404  # the new day has no C2


HOSTILE = st.one_of(
    st.text(min_size=1, max_size=60),
    st.sampled_from(
        [
            "../../etc/passwd",
            "..%2F..%2Fetc%2Fpasswd",
            "C1' OR '1'='1",
            "C1; DROP TABLE x; --",
            "%00",
            "\x00",
            "💥" * 20,
            "9" * 400,
            "-1",
            "NaN",
            "{customer_id}",
            "*",
            "C1\r\nX-Injected: 1",
        ]
    ),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str), st.text(max_size=12), st.just("1e309")
)
ENDPOINTS = [
    ("/recommendations/{}", "k"),
    ("/forecast/{}", "horizon"),
    ("/messages/{}", None),
    ("/replenishment?sku={}", "limit"),
    ("/allocation?region={}", "limit"),
    ("/allocation?demand={}", "limit"),
    ("/stockout-alerts?x={}", "limit"),
    ("/transfer-orders?x={}", "limit"),
    ("/service-levels?x={}", None),
]


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(ENDPOINTS), value=HOSTILE, number=NUMBERS, extra=HOSTILE)
def test_hostile_input_never_gets_a_server_error(guarded, endpoint, value, number, extra):
    template, param = endpoint
    path = template.format(urllib.parse.quote(value, safe=""))
    joiner = "&" if "?" in path else "?"
    if param:
        path += f"{joiner}{param}={urllib.parse.quote(number, safe='')}"
        joiner = "&"
    path += f"{joiner}{urllib.parse.quote(extra, safe='')}={urllib.parse.quote(value, safe='')}"
    status, body = get(guarded + path, AUTH)
    assert status < 500, (path, status, body)
    assert "Traceback" not in str(body)


def test_the_load_bench_drives_real_requests_and_counts_answers(exports, tmp_path):
    from bench.api_load import main as load

    out = load(
        ["--exports", str(exports), "--clients", "5", "--seconds", "2", "--out", str(tmp_path / "l.json")]
    )
    assert out["requests"] > 20 and out["errors"] == 0
    assert set(out["answers_by_status"]) <= {"200", "404"} and out["answers_by_status"]["200"] > 0
    assert out["answers_by_status"].get("404", 0) > 0  # the unknown customers of the mix
    assert 0 < out["latency_ms"]["p50"] <= out["latency_ms"]["p95"] <= out["latency_ms"]["p99"]
