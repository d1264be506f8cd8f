# syntax=docker/dockerfile:1
# Image of the drift monitor: drift-api, drift-worker (run | export) and drift-sim.
#   docker build -t drift-monitor .
#   docker compose up --build --scale api=10 --scale worker=4

############################ builder ############################
FROM rust:1.95-bookworm AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# 1) Dependency layer: only the manifests and the lock file, with placeholder sources, so
#    that the (slow) build of the dependencies is cached until a manifest changes.
COPY Cargo.toml Cargo.lock ./
COPY core/Cargo.toml core/Cargo.toml
COPY api/Cargo.toml api/Cargo.toml
COPY worker/Cargo.toml worker/Cargo.toml
COPY simulator/Cargo.toml simulator/Cargo.toml
COPY testkit/Cargo.toml testkit/Cargo.toml
RUN set -eux; \
    for crate in core api worker simulator testkit; do \
        mkdir -p "$crate/src"; \
        echo '// placeholder for the dependency layer' > "$crate/src/lib.rs"; \
    done; \
    for crate in api worker simulator; do \
        echo 'fn main() {}' > "$crate/src/main.rs"; \
    done; \
    mkdir -p core/benches && echo 'fn main() {}' > core/benches/ks.rs; \
    cargo build --release --locked -p drift-api -p drift-worker -p drift-sim; \
    rm -rf core/src api/src worker/src simulator/src testkit/src core/benches

# 2) The real sources. COPY keeps the files' original mtimes, which can be older than the
#    placeholder build above: touch them so cargo rebuilds the workspace crates.
COPY core core
COPY api api
COPY worker worker
COPY simulator simulator
COPY testkit testkit
COPY data data
RUN set -eux; \
    find core api worker simulator testkit -type f -exec touch {} +; \
    cargo build --release --locked -p drift-api -p drift-worker -p drift-sim; \
    mkdir -p /out; \
    for bin in drift-api drift-worker drift-sim; do \
        install -m 0755 "target/release/$bin" "/out/$bin"; \
    done; \
    /out/drift-api --help >/dev/null; \
    /out/drift-worker --help >/dev/null

############################ runtime ############################
FROM debian:bookworm-slim AS runtime
# ca-certificates for TLS to Redis (rediss://); curl for the compose health checks.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 drift; \
    useradd --system --uid 10001 --gid drift --home-dir /app --shell /usr/sbin/nologin drift

COPY --from=builder /out/ /usr/local/bin/
# Reference data of the default monitor, at the relative path data/breast_cancer.csv.
COPY --chown=root:root data/breast_cancer.csv /app/data/breast_cancer.csv

WORKDIR /app
USER drift:drift
# DRIFT_LISTEN is not set here because all three programs read it: docker-compose.yml
# sets it per service. The default command listens on all interfaces for `docker run`.
ENV DRIFT_LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8000 9101 9102
STOPSIGNAL SIGTERM
CMD ["drift-api", "--listen", "0.0.0.0:8000"]
