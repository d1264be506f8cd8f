# Offline stand-in for the official `rust` image, second half (tagged rust:<tag> by
# scripts/offline-images.sh): the toolchain image plus the crates of Cargo.lock, vendored
# on the host (`cargo vendor`), and a cargo configuration in CARGO_HOME that replaces
# crates.io by them. Build containers here cannot reach crates.io (TLS to it fails inside
# them), so `cargo build --locked` in the project's Dockerfile takes the crates from here;
# the Dockerfile itself is the one normal users build, unchanged. The offline key of this
# image includes the hash of Cargo.lock: a changed lock file re-vendors.
ARG TOOLCHAIN
FROM ${TOOLCHAIN}
COPY vendor/ /usr/local/cargo/vendor/
COPY config.toml /usr/local/cargo/config.toml
