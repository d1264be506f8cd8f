# syntax=docker/dockerfile:1
# Image of the drift monitor: drift-api, drift-worker (run | export) and drift-sim.
#   docker build -t drift-monitor .
#   docker compose up --build --scale api=10 --scale worker=4

############################ skeleton ###########################
# The workspace's manifests and lock file with placeholder targets: every crate (whatever
# the members of Cargo.toml are) with its src/lib.rs, src/main.rs, src/bin/*, benches/*
# ... replaced by stubs and every other source file left out. Its output changes only when
# a manifest or the set of targets does, so the dependency layer below stays cached across
# source edits.
FROM rust:1.95-bookworm AS skeleton
WORKDIR /src
COPY . .
RUN set -eux; \
    find . -type f \( -name Cargo.toml -o -name Cargo.lock \) -printf '%h\n' | sort -u > /tmp/crates; \
    mkdir /skeleton; \
    while read -r dir; do \
        mkdir -p "/skeleton/$dir"; \
        cp "$dir"/Cargo.* "/skeleton/$dir/"; \
        for target in "$dir"/build.rs "$dir"/src/lib.rs "$dir"/src/main.rs "$dir"/src/bin/*.rs \
                      "$dir"/src/bin/*/main.rs "$dir"/benches/*.rs "$dir"/examples/*.rs \
                      "$dir"/tests/*.rs "$dir"/tests/*/main.rs; do \
            [ -f "$target" ] || continue; \
            mkdir -p "/skeleton/$(dirname "$target")"; \
            case "$target" in \
                */src/lib.rs) echo '// placeholder for the dependency layer' ;; \
                *) echo 'fn main() {}' ;; \
            esac > "/skeleton/$target"; \
        done; \
    done < /tmp/crates

############################ builder ############################
FROM rust:1.95-bookworm AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# 1) Dependency layer: the skeleton above, so that the (slow) build of the dependencies is
#    cached until a manifest changes.
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked -p drift-api -p drift-worker -p drift-sim

# 2) The real sources (.dockerignore keeps the deployment files, docs and tests out).
#    COPY keeps the files' original mtimes, which can be older than the placeholder build
#    above: touch them so cargo rebuilds the workspace crates.
COPY . .
RUN set -eux; \
    find . -path ./target -prune -o -type f -exec touch {} +; \
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
