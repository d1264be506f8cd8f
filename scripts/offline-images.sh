#!/usr/bin/env bash
# Local stand-ins for the container images that docker-compose.yml and the Dockerfile
# name, for a Docker engine that cannot pull them (no registry reachable), tagged with the
# exact names and tags those files use, so that both stay unchanged for users who pull the
# real images:
#   debian:bookworm-slim    debootstrap --variant=minbase, slimmed like the official image
#                           (scripts/offline/base.sh), then `docker import`
#   rust:1.95-bookworm      that base + gcc, make, pkg-config, git + this machine's Rust
#                           toolchain (scripts/offline/rust/Dockerfile), + the crates of
#                           Cargo.lock vendored on the host with a CARGO_HOME config that
#                           replaces crates.io by them (scripts/offline/rust/vendor.Dockerfile):
#                           build containers here cannot reach crates.io
#   redis:7-alpine          Debian's redis-server 7.0 \
#   nginx:1.27-alpine       Debian's nginx 1.22        } FROM the base, with the entrypoints,
#   prom/prometheus:v2.53.0 Debian's prometheus 2.42  /  paths, users and commands of the
#                                                        official images (scripts/offline/*/)
# Grafana has no Debian package and gets no stand-in: the offline run leaves it out
# (docker-compose.offline.yml; README "Running compose offline").
#
# Idempotent and cached: every stand-in carries the label org.drift-monitor.offline-key, a
# hash of its recipe files, its parent image and its inputs (toolchain version, Cargo.lock);
# an image whose key matches is kept, a changed recipe rebuilds it and what is built on it.
# An image with that tag but without the label (a real image, pulled) is never replaced.
# A missing image is first pulled (DRIFT_OFFLINE_PULL=0 or --no-pull skips that), and built
# only when the pull fails. The debootstrap tar and the vendored crates are cached in
# $DRIFT_OFFLINE_CACHE (default ~/.cache/drift-offline-images).
#
#   scripts/offline-images.sh            make sure every image exists (root for debootstrap);
#                                        redis, nginx and prometheus are built in parallel
#                                        with the rust image
#   scripts/offline-images.sh builder    only what the Dockerfile needs (debian, rust)
#   scripts/offline-images.sh services   only redis, nginx, prometheus (and debian)
#   scripts/offline-images.sh --no-pull  never trying the registry
#   scripts/offline-images.sh --force    rebuild every stand-in (not the caches)
#   scripts/offline-images.sh --list     the images and whether each is a stand-in
#   scripts/offline-images.sh --remove   remove every stand-in image (and, with
#                                        --remove --purge, the caches): a cold start
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
HERE="$ROOT/scripts/offline"
CACHE="${DRIFT_OFFLINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drift-offline-images}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Every stand-in carries both labels; images built FROM one inherit them, so an image is
# the stand-in of a tag only when its offline-image label names that tag.
LABEL=org.drift-monitor.offline-key
LABEL_IMAGE=org.drift-monitor.offline-image
# The legacy builder: this engine's client has no buildx, and BuildKit would also try to
# pull the `# syntax=` frontend of the Dockerfile.
export DOCKER_BUILDKIT=0

PULL="${DRIFT_OFFLINE_PULL:-1}"
FORCE=0
ACTION=ensure
PURGE=0
GROUPS_WANTED=""
for arg in "$@"; do
    case "$arg" in
        builder|services) GROUPS_WANTED="$GROUPS_WANTED $arg" ;;
        --no-pull) PULL=0 ;;
        --force) FORCE=1 ;;
        --list) ACTION=list ;;
        --remove) ACTION=remove ;;
        --purge) PURGE=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[offline-images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info)"

# ---- the names, read from the files that use them ---------------------------------------
from_dockerfile() {  # first FROM of the Dockerfile whose image is $1:...
    sed -nE 's/^FROM[[:space:]]+([^[:space:]]+).*/\1/p' Dockerfile | grep -m1 -E "^$1:" || true
}
from_compose() {  # first `image:` of docker-compose.yml whose image is $1:...
    sed -nE "s/^[[:space:]]+image:[[:space:]]*[\"']?([^\"'[:space:]]+).*/\1/p" docker-compose.yml \
        | grep -m1 -E "^$1:" || true
}
BASE_IMAGE="$(from_dockerfile debian)"
RUST_IMAGE="$(from_dockerfile rust)"
REDIS_IMAGE="$(from_compose redis)"
NGINX_IMAGE="$(from_compose nginx)"
PROM_IMAGE="$(from_compose prom/prometheus)"
for v in BASE_IMAGE RUST_IMAGE REDIS_IMAGE NGINX_IMAGE PROM_IMAGE; do
    [ -n "${!v}" ] || die "cannot find the $v name in the Dockerfile / docker-compose.yml"
done
SUITE="${BASE_IMAGE#debian:}"
SUITE="${SUITE%-slim}"
case "$RUST_IMAGE" in
    *-"$SUITE") ;;
    *) die "$RUST_IMAGE is not a $SUITE image like $BASE_IMAGE: scripts/offline knows only one suite" ;;
esac

# ---- helpers -----------------------------------------------------------------------------
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
image_key() {  # the offline key of TAG when it is the stand-in of TAG, else nothing
    local k img
    k="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true)"
    img="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL_IMAGE\" }}" "$1" 2>/dev/null || true)"
    [ "$img" = "$1" ] || k=""
    [ "$k" = "<no value>" ] && k=""
    printf '%s' "$k"
}
# key_of STRING... : a short hash of the strings (file contents are passed as strings).
key_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
files_hash() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16; }

# pull_real TAG: pulls TAG (a missing image) unless pulls are off; true when it worked.
pull_real() {
    [ "$PULL" = 1 ] || return 1
    if timeout 120 docker pull -q "$1" >/dev/null 2>&1; then
        log "$1: pulled"
        return 0
    fi
    log "$1: cannot be pulled: building a stand-in"
    return 1
}

# ensure TAG KEY BUILD_FUNCTION [nopull]: TAG exists afterwards, a stand-in with KEY or a
# real image.
ensure() {
    local tag="$1" key="$2" build="$3" pull="${4:-pull}" have started
    if docker image inspect "$tag" >/dev/null 2>&1; then
        have="$(image_key "$tag")"
        if [ -z "$have" ]; then
            log "$tag: present and not a stand-in (a pulled image): kept"
            return 0
        fi
        if [ "$have" = "$key" ] && [ "$FORCE" = 0 ]; then
            log "$tag: stand-in up to date (key $key)"
            return 0
        fi
        log "$tag: stand-in out of date (key $have, now $key): rebuilding"
    elif [ "$pull" = pull ] && pull_real "$tag"; then
        return 0
    fi
    started=$(date +%s)
    "$build" "$tag" "$key"
    docker image inspect "$tag" >/dev/null 2>&1 || die "$tag was not built"
    log "$tag: built in $(( $(date +%s) - started ))s"
}

build_image() {  # build_image TAG KEY CONTEXT DOCKERFILE [--build-arg ...]
    local tag="$1" key="$2" ctx="$3" file="$4"
    shift 4
    local out
    out="$(mktemp)"
    if ! docker build -q --label "$LABEL=$key" --label "$LABEL_IMAGE=$tag" -t "$tag" -f "$file" "$@" "$ctx" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        rm -f "$out"
        die "docker build of $tag failed"
    fi
    rm -f "$out"
}

# ---- debian:bookworm-slim ----------------------------------------------------------------
build_base() {
    local tag="$1" key="$2" tar="$CACHE/base-$SUITE-$2.tar"
    if [ ! -f "$tar" ]; then
        [ "$(id -u)" = 0 ] || die "debootstrap needs root: run sudo $0"
        if ! command -v debootstrap >/dev/null 2>&1; then
            command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing (apt-get install debootstrap)"
            log "installing debootstrap (Debian package)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
                || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
        fi
        mkdir -p "$CACHE"
        rm -f "$CACHE"/base-"$SUITE"-*.tar
        log "debootstrap --variant=minbase $SUITE from $MIRROR"
        "$HERE/base.sh" "$SUITE" "$tar" "$MIRROR"
    fi
    docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' \
        -c "LABEL $LABEL=$key $LABEL_IMAGE=$tag" \
        "$tar" "$tag" >/dev/null
}

# ---- rust:<version>-bookworm -------------------------------------------------------------
SYSROOT=""
RUST_VERSION=""
TOOLCHAIN_IMAGE=""
rust_inputs() {
    command -v rustc >/dev/null 2>&1 || die "rustc is not installed: the rust stand-in copies this machine's toolchain"
    SYSROOT="$(rustc --print sysroot)"
    RUST_VERSION="$(rustc -vV | sed -n 's/^release: //p')"
    HOST_TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
    local want="${RUST_IMAGE#rust:}"
    want="${want%%-*}"
    case "$RUST_VERSION." in
        "$want".*) ;;
        *) die "$RUST_IMAGE needs Rust $want, this machine has $RUST_VERSION" ;;
    esac
    TOOLCHAIN_IMAGE="drift-offline/rust-toolchain:$RUST_VERSION-$SUITE"
}

build_toolchain() {
    local tag="$1" key="$2" ctx="$CACHE/rust-context"
    rm -rf "$ctx"
    mkdir -p "$ctx/toolchain"
    cp "$HERE/rust/Dockerfile" "$ctx/Dockerfile"
    # No documentation (share/): 800 MB the build never reads. Hard links when possible.
    local part
    for part in bin lib libexec etc; do
        [ -e "$SYSROOT/$part" ] || continue
        cp -al "$SYSROOT/$part" "$ctx/toolchain/" 2>/dev/null || cp -a "$SYSROOT/$part" "$ctx/toolchain/"
    done
    build_image "$tag" "$key" "$ctx" "$ctx/Dockerfile" \
        --build-arg "BASE=$BASE_IMAGE" \
        --build-arg "TOOLCHAIN_NAME=$RUST_VERSION-$HOST_TRIPLE" \
        --build-arg "RUST_VERSION=$RUST_VERSION"
    rm -rf "$ctx"
}

LOCK_HASH=""
build_rust() {
    local tag="$1" key="$2" ctx="$CACHE/vendor-$LOCK_HASH"
    if [ ! -f "$ctx/.complete" ]; then
        command -v cargo >/dev/null 2>&1 || die "cargo is not installed (needed for cargo vendor)"
        rm -rf "$CACHE"/vendor-*
        mkdir -p "$ctx"
        log "cargo vendor (the crates of Cargo.lock, $LOCK_HASH)"
        cargo vendor --locked --versioned-dirs -q "$ctx/vendor" >/dev/null \
            || die "cargo vendor failed (does this machine reach crates.io?)"
        touch "$ctx/.complete"
    fi
    cat >"$ctx/config.toml" <<'EOF'
# Written by scripts/offline-images.sh: crates come from the directory vendored on the host.
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "/usr/local/cargo/vendor"
EOF
    cp "$HERE/rust/vendor.Dockerfile" "$ctx/Dockerfile"
    printf '.complete\n' >"$ctx/.dockerignore"
    build_image "$tag" "$key" "$ctx" "$ctx/Dockerfile" --build-arg "TOOLCHAIN=$TOOLCHAIN_IMAGE"
}

# ---- redis, nginx, prom/prometheus ---------------------------------------------------------
build_service() {  # TAG KEY: the recipe directory is chosen by the tag's repository
    local tag="$1" key="$2" dir
    case "$tag" in
        redis:*) dir=redis ;;
        nginx:*) dir=nginx ;;
        prom/prometheus:*) dir=prometheus ;;
        *) die "no recipe for $tag" ;;
    esac
    build_image "$tag" "$key" "$HERE/$dir" "$HERE/$dir/Dockerfile" --build-arg "BASE=$BASE_IMAGE"
}

all_tags() {
    printf '%s\n' "$BASE_IMAGE" "$RUST_IMAGE" "$REDIS_IMAGE" "$NGINX_IMAGE" "$PROM_IMAGE"
    docker image ls --filter "label=$LABEL_IMAGE" --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' || true
}

case "$ACTION" in
    list)
        all_tags | sort -u | while read -r tag; do
            if ! docker image inspect "$tag" >/dev/null 2>&1; then
                printf '%-44s missing\n' "$tag"
            elif [ -n "$(image_key "$tag")" ]; then
                printf '%-44s stand-in (key %s)\n' "$tag" "$(image_key "$tag")"
            else
                printf '%-44s real image\n' "$tag"
            fi
        done
        exit 0
        ;;
    remove)
        mapfile -t stand_ins < <(all_tags | sort -u | while read -r tag; do
            [ -n "$(image_key "$tag")" ] && echo "$tag"; done)
        if [ ${#stand_ins[@]} -gt 0 ]; then
            log "removing ${stand_ins[*]}"
            docker image rm "${stand_ins[@]}" >/dev/null
        fi
        if [ "$PURGE" = 1 ]; then
            log "removing the caches in $CACHE"
            rm -rf "$CACHE"
        fi
        exit 0
        ;;
esac

started=$(date +%s)
mkdir -p "$CACHE"
GROUPS_WANTED="${GROUPS_WANTED:- builder services}"
wanted() { case " $GROUPS_WANTED " in *" $1 "*) return 0 ;; esac; return 1; }

ensure "$BASE_IMAGE" "$(key_of "$(cat "$HERE/base.sh")" "$SUITE" "$MIRROR")" build_base
BASE_ID="$(image_id "$BASE_IMAGE")"

# redis, nginx, prometheus: mostly apt downloads, in the background while the rust image
# (mostly copying the toolchain and the crates) is built; each logs to its own file.
SERVICE_JOBS=()
if wanted services; then
    for tag in "$REDIS_IMAGE" "$NGINX_IMAGE" "$PROM_IMAGE"; do
        case "$tag" in
            redis:*) dir=redis ;;
            nginx:*) dir=nginx ;;
            *) dir=prometheus ;;
        esac
        ensure "$tag" "$(key_of "$(files_hash "$HERE/$dir")" "$BASE_ID")" build_service \
            >"$CACHE/build-$dir.log" 2>&1 &
        SERVICE_JOBS+=("$!:$dir")
    done
fi

if ! wanted builder; then
    :
elif docker image inspect "$RUST_IMAGE" >/dev/null 2>&1 && [ -z "$(image_key "$RUST_IMAGE")" ]; then
    log "$RUST_IMAGE: present and not a stand-in (a pulled image): kept"
elif docker image inspect "$RUST_IMAGE" >/dev/null 2>&1 || ! pull_real "$RUST_IMAGE"; then
    rust_inputs
    ensure "$TOOLCHAIN_IMAGE" \
        "$(key_of "$(cat "$HERE/rust/Dockerfile")" "$BASE_ID" "$(rustc -vV)" "$SYSROOT")" \
        build_toolchain nopull
    LOCK_HASH="$(sha256sum Cargo.lock | cut -c1-16)"
    ensure "$RUST_IMAGE" \
        "$(key_of "$(cat "$HERE/rust/vendor.Dockerfile")" "$(image_id "$TOOLCHAIN_IMAGE")" "$LOCK_HASH")" \
        build_rust nopull
fi

failed=()
for job in "${SERVICE_JOBS[@]}"; do
    pid="${job%%:*}"
    dir="${job#*:}"
    if ! wait "$pid"; then
        failed+=("$dir")
    fi
    cat "$CACHE/build-$dir.log" >&2
    rm -f "$CACHE/build-$dir.log"
done
[ ${#failed[@]} -eq 0 ] || die "building the stand-in(s) for ${failed[*]} failed (see above)"
log "images ready in $(( $(date +%s) - started ))s"
