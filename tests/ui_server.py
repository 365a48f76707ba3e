"""A real `dagster dev` (webserver + daemon) on a free 127.0.0.1 port, over a temporary DAGSTER_HOME and data
directory that already hold materialised days: what the browser and queueing tests drive."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from api.local import free_port
from ml.settings import REPO_ROOT

DAGSTER = Path(sys.executable).with_name("dagster")
LOCATION = "aigc_commerce"
REPOSITORY = "__repository__"
LAUNCH_RUN = """mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""


@dataclass
class DagsterUI:
    url: str
    data_dir: Path
    home: Path
    log_path: Path
    process: subprocess.Popen

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def launch_run(self, job: str, keys, checks, tags: dict[str, str]) -> str:
        """Launch ``job`` on the asset ``keys`` and asset ``checks`` with ``tags`` (the partition among them), as
        the UI's launchpad does; returns the run id."""
        answer = self.graphql(
            LAUNCH_RUN,
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": LOCATION,
                        "repositoryName": REPOSITORY,
                        "jobName": job,
                        "assetSelection": [{"path": k.path} for k in keys],
                        "assetCheckSelection": [
                            {"assetKey": {"path": c.asset_key.path}, "name": c.name} for c in checks
                        ],
                    },
                    "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
                }
            },
        )["launchRun"]
        if answer["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"launch of {job} refused: {answer}")
        return answer["run"]["runId"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def runs(self, job_name: str | None = None) -> list[dict]:
        """Every run (newest first) with its status, tags and start/end times."""
        data = self.graphql(
            """query Runs($filter: RunsFilter) {
                 runsOrError(filter: $filter) {
                   ... on Runs { results { runId jobName status startTime endTime
                                           tags { key value } } }
                   ... on PythonError { message }
                 } }""",
            {"filter": {"pipelineName": job_name} if job_name else {}},
        )["runsOrError"]
        if "results" not in data:
            raise RuntimeError(data.get("message"))
        return data["results"]

    def failure(self, run_id: str) -> str:
        """The failing steps' errors and the run's failure message, for assertion messages."""
        events = self.graphql(
            """query Logs($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
                 __typename ... on MessageEvent { message }
                 ... on ExecutionStepFailureEvent { stepKey error { message causes { message } } } } } } }""",
            {"runId": run_id},
        )["logsForRun"].get("events", [])
        lines = [
            f"{e.get('stepKey') or ''}: {(e.get('error') or {}).get('message') or e.get('message')}"
            + "".join(f"\n  caused by: {c['message']}" for c in (e.get("error") or {}).get("causes") or [])
            for e in events
            if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent", "EngineEvent")
            and ("error" in e or "fail" in (e.get("message") or "").lower())
        ]
        return "\n".join(lines)[-4000:]

    def wait_for_runs(self, run_ids: list[str], timeout: float) -> dict[str, dict]:
        """Poll until every run in ``run_ids`` has finished; return them by id."""
        deadline = time.monotonic() + timeout
        while True:
            runs = {r["runId"]: r for r in self.runs() if r["runId"] in run_ids}
            done = {i: r for i, r in runs.items() if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")}
            if len(done) == len(run_ids):
                return done
            if time.monotonic() > deadline:
                states = {i: r["status"] for i, r in runs.items()}
                raise TimeoutError(f"runs not finished after {timeout:.0f}s: {states}\n{self.log_tail()}")
            time.sleep(2)


def _get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_dagster_dev(
    data_dir: Path, home: Path, log_path: Path, timeout: float = 240, env: dict[str, str] | None = None
) -> DagsterUI:
    """Start `dagster dev` on a free port and wait until the code location has loaded; ``env`` adds variables
    (the prod environment's, for example)."""
    port = free_port()
    env = {
        **os.environ,
        **(env or {}),
        "AIGC_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "TQDM_DISABLE": "1",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(DAGSTER), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one process group: webserver, daemon and code servers stop together
    )
    ui = DagsterUI(f"http://127.0.0.1:{port}", data_dir, home, log_path, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{ui.log_tail()}")
        if _get(f"{ui.url}/server_info") and _location_loaded(ui):
            return ui
        time.sleep(2)
    stop(ui)
    raise TimeoutError(f"dagster dev did not load {LOCATION} within {timeout:.0f}s:\n{ui.log_tail()}")


def _location_loaded(ui: DagsterUI) -> bool:
    try:
        data = ui.graphql(
            """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                 locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        )
    except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError):
        return False
    for entry in data["workspaceOrError"].get("locationEntries", []):
        if entry["name"] == LOCATION and entry["loadStatus"] == "LOADED":
            error = entry["locationOrLoadError"]
            if error and error["__typename"] == "PythonError":
                raise RuntimeError(f"code location failed to load: {error['message']}")
            return True
    return False


def stop(ui: DagsterUI) -> None:
    """Ctrl-C, as a user would (dagster dev shuts its webserver, daemon and code servers down on SIGINT);
    then SIGKILL to the whole process group for anything left after 30 s."""
    if ui.process.poll() is None:
        os.killpg(ui.process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            ui.process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(ui.process.pid, signal.SIGKILL)
    ui.process.wait()
