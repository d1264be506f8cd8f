#!/usr/bin/env python3
"""The baseline: the Python prototype's metric server, rebuilt for comparisons.

The prototype this project replaces was a FastAPI + scipy server holding a rolling window
of the last 10 rows per feature in each replica's memory. This is that design, deliberately
naive: `POST /datadrift` appends the rows of the request to the in-process windows and, on
every request once the windows are full, runs one `scipy.stats.ks_2samp(window,
reference[feature])` per feature (30 for the default data set, scipy's default method)
and answers with the p-values and drift flags. One process, one event loop (`uvicorn`,
no access log), the same request body as our `POST /datadrift`:

    {"features": {"columns": ["mean radius", ...30 names...], "data": [[17.99, ...], ...]}}

(scikit-learn names with spaces or ours with underscores; other fields such as pandas'
`index` are ignored). The answer has our /datadrift shape without `seq`: status
(accumulating | drift_checked), samples_in_window, window_size, drift_share, dataset_drift,
number_of_drifted_columns, drifted_features, feature_pvalues. A feature is flagged when its
p-value is below --alpha (0.05), the data set when at least --dataset-drift-share (0.5) of
the features are. `GET /healthz` answers {"status": "ok"}.

Usage:
    scripts/prototype_server.py [--host 127.0.0.1] [--port 8010] [--window 10]
                                [--reference data/breast_cancer.csv] [--alpha 0.05]
                                [--http auto|h11|httptools] [--loop auto|asyncio|uvloop]
    scripts/prototype_server.py --setup      # only install the dependencies, print the
                                             # interpreter that has them
Dependencies (fastapi, uvicorn[standard], scipy, numpy): when this interpreter lacks them,
the script creates a venv in $PROTO_VENV (default ${CARGO_TARGET_DIR:-target}/prototype-venv
in the checkout), pip-installs them there once (PyPI must be reachable then) and re-runs
itself with that venv's python. uvicorn[standard] brings uvloop and httptools, the fastest
setup uvicorn has: the baseline gets every advantage (`--http h11 --loop asyncio` is
plain `pip install uvicorn`).
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["fastapi", "uvicorn[standard]", "scipy", "numpy"]


def venv_dir():
    if os.environ.get("PROTO_VENV"):
        return os.environ["PROTO_VENV"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(os.path.abspath(target), "prototype-venv")


def have_deps():
    try:
        import fastapi  # noqa: F401
        import numpy  # noqa: F401
        import scipy.stats  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True


def ensure_deps(argv):
    """Returns when this interpreter has the dependencies; otherwise re-runs the script
    with the venv's python (created and filled first when needed)."""
    if have_deps():
        return
    if os.environ.get("PROTO_BOOTSTRAPPED"):
        sys.exit(f"prototype: {sys.executable} still lacks {' '.join(PACKAGES)} after installing")
    os.environ["PROTO_BOOTSTRAPPED"] = "1"
    venv = venv_dir()
    py = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        # Already in the venv and still missing something: install (again).
        pass
    elif os.path.exists(py) and subprocess.run(
        [py, "-c", "import fastapi, uvicorn, scipy.stats, numpy"], capture_output=True
    ).returncode == 0:
        os.execv(py, [py, os.path.abspath(__file__), *argv])
    if not os.path.exists(py):
        print(f"prototype: creating a venv in {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    print(f"prototype: installing {' '.join(PACKAGES)} into {venv}", file=sys.stderr)
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES], check=True
    )
    os.execv(py, [py, os.path.abspath(__file__), *argv])


def load_reference(path):
    """The reference CSV: header line, numeric columns; `target` is not a feature."""
    import numpy as np

    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {name: data[:, i].copy() for i, name in enumerate(header) if name != "target"}


def build_app(reference, window, alpha, dataset_drift_share):
    from collections import deque

    import numpy as np
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel
    from scipy.stats import ks_2samp

    class Frame(BaseModel):
        columns: list[str]
        data: list[list[float]]

    class DataDriftRequest(BaseModel):
        features: Frame

    app = FastAPI(title="drift prototype (baseline)")
    windows = {name: deque(maxlen=window) for name in reference}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    # async: the whole request runs on the event loop, no thread pool hop (the fastest way
    # for one process; the GIL would serialise the tests anyway).
    @app.post("/datadrift")
    async def datadrift(body: DataDriftRequest):
        cols = [c.strip().replace(" ", "_") for c in body.features.columns]
        unknown = [c for c in cols if c not in windows]
        if unknown:
            raise HTTPException(422, f"unknown columns: {unknown}")
        for row in body.features.data:
            if len(row) != len(cols):
                raise HTTPException(422, "a row does not have one value per column")
            for name, value in zip(cols, row):
                windows[name].append(value)
        filled = min(len(w) for w in windows.values())
        if filled < window:
            return {"status": "accumulating", "samples_in_window": filled,
                    "window_size": window, "drift_share": 0.0, "dataset_drift": False,
                    "number_of_drifted_columns": 0, "drifted_features": [],
                    "feature_pvalues": {}}
        pvalues, drifted = {}, []
        for client, name in zip(body.features.columns, cols):
            p = float(ks_2samp(np.fromiter(windows[name], float, window), reference[name]).pvalue)
            pvalues[client] = p
            if p < alpha:
                drifted.append(client)
        share = len(drifted) / len(pvalues)
        return {"status": "drift_checked", "samples_in_window": window, "window_size": window,
                "drift_share": share, "dataset_drift": share >= dataset_drift_share,
                "number_of_drifted_columns": len(drifted), "drifted_features": drifted,
                "feature_pvalues": pvalues}

    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8010)
    ap.add_argument("--window", type=int, default=10, help="rows per feature window (10)")
    ap.add_argument("--reference", default=os.path.join(ROOT, "data", "breast_cancer.csv"))
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--dataset-drift-share", type=float, default=0.5)
    ap.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"],
                    help="uvicorn's HTTP implementation (auto: httptools when installed)")
    ap.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                    help="uvicorn's event loop (auto: uvloop when installed)")
    ap.add_argument("--setup", action="store_true", help="install the dependencies and exit")
    args = ap.parse_args()
    ensure_deps(sys.argv[1:])
    if args.setup:
        print(sys.executable)
        return
    import uvicorn

    app = build_app(load_reference(args.reference), args.window, args.alpha,
                    args.dataset_drift_share)
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="warning",
                access_log=False, http=args.http, loop=args.loop)


if __name__ == "__main__":
    main()
