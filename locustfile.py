"""Load test of the drift monitor through the gateway.

    pip install locust
    locust -f locustfile.py                                   # web UI on :8089
    locust -f locustfile.py --headless -u 50 -r 10 -t 2m      # headless, against :8002
    locust -f locustfile.py --host http://127.0.0.1:8002 ...

Two kinds of simulated clients, weighted 3:1:
  PredictUser  the model's callers: POST /get-prediction (and the /v1/predict alias)
               with one row as {"columns": [...30 features...], "data": [[...]]}
  IngestUser   a batch logger: POST /v1/monitors/{monitor}/rows with 10 rows per request
Rows are sampled from data/breast_cancer.csv (next to this file) and perturbed by about
1 % so that requests are not identical but the stream does not drift.
Any non-2xx answer counts as a failure.

Environment: DRIFT_LOCUST_MONITOR (default breast_cancer), DRIFT_LOCUST_BATCH (default 10).
"""
from __future__ import annotations

import csv
import json
import os
import random

from locust import HttpUser, between, task

HERE = os.path.dirname(os.path.abspath(__file__))
CSV_PATH = os.path.join(HERE, "data", "breast_cancer.csv")
MONITOR = os.environ.get("DRIFT_LOCUST_MONITOR", "breast_cancer")
BATCH = int(os.environ.get("DRIFT_LOCUST_BATCH", "10"))


def _load_reference(path: str) -> tuple[list[str], list[list[float]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        keep = [i for i, h in enumerate(header) if h != "target"]
        columns = [header[i] for i in keep]
        rows = [[float(r[i]) for i in keep] for r in reader if r]
    return columns, rows


COLUMNS, ROWS = _load_reference(CSV_PATH)


def sample_row(rng: random.Random) -> list[float]:
    """A reference row with every value scaled by 1 + N(0, 0.01), never negative."""
    base = rng.choice(ROWS)
    return [float(f"{max(0.0, v * (1.0 + rng.gauss(0.0, 0.01))):.6g}") for v in base]


def _check(resp) -> None:
    """Marks the request failed unless it answered 2xx (catch_response mode)."""
    if 200 <= resp.status_code < 300:
        resp.success()
    else:
        body = (resp.text or "")[:200]
        resp.failure(f"HTTP {resp.status_code}: {body}")


class PredictUser(HttpUser):
    """A caller of the model's prediction endpoint (one row per request)."""

    host = "http://localhost:8002"
    weight = 3
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.rng = random.Random()

    def _predict(self, path: str) -> None:
        body = {"columns": COLUMNS, "data": [sample_row(self.rng)]}
        with self.client.post(path, data=json.dumps(body), name=path, catch_response=True,
                              headers={"Content-Type": "application/json"}) as resp:
            _check(resp)

    @task(3)
    def get_prediction(self) -> None:
        self._predict("/get-prediction")

    @task(1)
    def v1_predict(self) -> None:
        self._predict("/v1/predict")


class IngestUser(HttpUser):
    """A batch logger sending the model's inputs to the drift monitor."""

    host = "http://localhost:8002"
    weight = 1
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def ingest_rows(self) -> None:
        body = {"columns": COLUMNS, "data": [sample_row(self.rng) for _ in range(BATCH)]}
        path = f"/v1/monitors/{MONITOR}/rows"
        with self.client.post(path, data=json.dumps(body), name="/v1/monitors/{monitor}/rows",
                              catch_response=True, headers={"Content-Type": "application/json"}) as resp:
            _check(resp)
