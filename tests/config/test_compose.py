"""Structure of docker-compose.yml: what the stack relies on (see the comments in
docker-compose.yml), checked without a Docker engine. `--scale` must keep working, internal
services must stay internal, start-up must wait for health, and the Rust services must be
wired to Redis with the password."""
from __future__ import annotations

import os

import pytest

SERVICES = ["redis", "api", "worker", "exporter", "nginx", "prometheus", "grafana"]
# Services scaled with --scale: no host port, no fixed container name or hostname.
SCALED = ["api", "worker"]
# Internal services: never published on the host.
INTERNAL = ["redis", "api", "worker", "exporter"]
NO_HEALTHCHECK_NEEDED = {"grafana", "nginx", "prometheus"}
# (service, dependency, required condition; None: any condition)
DEPENDS = [
    ("api", "redis", "service_healthy"),
    ("worker", "redis", "service_healthy"),
    ("exporter", "redis", "service_healthy"),
    ("nginx", "api", "service_healthy"),
    ("prometheus", "exporter", "service_healthy"),
    ("grafana", "prometheus", None),
]
PUBLISHED = {"nginx": "8002", "grafana": "4000", "prometheus": "9090"}
# The Rust services: command prefix and listen address.
RUST_SERVICES = {
    "api": (["drift-api"], "0.0.0.0:8000"),
    "worker": (["drift-worker", "run"], "0.0.0.0:9101"),
    "exporter": (["drift-worker", "export"], "0.0.0.0:9102"),
}


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def command_words(svc: dict) -> list[str]:
    cmd = svc.get("command")
    if isinstance(cmd, str):
        return cmd.split()
    return [str(c) for c in as_list(cmd)]


def env_map(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, _, val = str(item).partition("=")
            out[key] = val
        return out
    return {str(k): ("" if v is None else str(v)) for k, v in env.items()}


def host_ports(svc: dict) -> list[str]:
    """Host-side ports of a service's `ports` (short or long syntax)."""
    out = []
    for p in as_list(svc.get("ports")):
        if isinstance(p, dict):
            if p.get("published") is not None:
                out.append(str(p["published"]))
            continue
        parts = str(p).split(":")
        if len(parts) >= 2:
            out.append(parts[-2])
        else:
            out.append("(ephemeral:" + parts[0] + ")")
    return out


def bind_sources(svc: dict) -> list[str]:
    out = []
    for v in as_list(svc.get("volumes")):
        if isinstance(v, dict):
            if v.get("type") == "bind":
                out.append(v.get("source", ""))
            continue
        src = str(v).split(":")[0]
        if src.startswith(".") or src.startswith("/"):
            out.append(src)
    return out


def mounts(svc: dict) -> str:
    return " ".join(str(v) for v in as_list(svc.get("volumes")))


def flag_value(words: list[str], flag: str) -> list[str]:
    """The word after `flag` (empty when the flag or its value is missing)."""
    return words[words.index(flag) + 1:][:1] if flag in words else []


def service(services: dict, name: str) -> dict:
    assert name in services, f"compose: service `{name}` is missing"
    return services[name]


# ---- services and --scale -----------------------------------------------------------------

@pytest.mark.parametrize("name", SERVICES)
def test_service_is_defined(services, name):
    assert name in services, f"compose: service `{name}` is missing"


def test_no_service_sets_container_name(services):
    offenders = [name for name, svc in services.items() if "container_name" in svc]
    assert not offenders, (
        f"compose: service(s) {offenders} set container_name (breaks --scale and parallel stacks)"
    )


@pytest.mark.parametrize("name", SCALED)
def test_scaled_service_publishes_no_host_port(services, name):
    svc = service(services, name)
    assert not svc.get("ports"), f"compose: scaled service `{name}` must not publish host ports"


@pytest.mark.parametrize("name", SCALED)
def test_scaled_service_has_no_fixed_hostname(services, name):
    svc = service(services, name)
    assert "hostname" not in svc, f"compose: scaled service `{name}` must not set a fixed hostname"


@pytest.mark.parametrize("name", INTERNAL)
def test_internal_service_publishes_no_host_port(services, name):
    svc = service(services, name)
    assert not svc.get("ports"), f"compose: internal service `{name}` must not publish host ports"


@pytest.mark.parametrize("name,port", sorted(PUBLISHED.items()))
def test_public_service_publishes_its_host_port(services, name, port):
    ports = host_ports(service(services, name))
    assert port in ports, f"compose: `{name}` must publish host port {port} (has {ports or 'none'})"


def test_bind_mounts_exist(services, compose_path):
    missing = []
    for name, svc in services.items():
        for src in bind_sources(svc):
            full = os.path.normpath(os.path.join(os.path.dirname(compose_path), src))
            if not os.path.exists(full):
                missing.append(f"`{name}` mounts {src}")
    assert not missing, f"compose: bind mounts that do not exist: {'; '.join(missing)}"


# ---- health and start-up order ------------------------------------------------------------

def test_every_service_has_a_healthcheck(services):
    problems = []
    for name, svc in services.items():
        if name in NO_HEALTHCHECK_NEEDED:
            continue
        hc = svc.get("healthcheck")
        if not (isinstance(hc, dict) and hc.get("test") and not hc.get("disable")):
            problems.append(f"service `{name}` has no healthcheck")
        elif "NONE" in as_list(hc["test"])[:1]:
            problems.append(f"`{name}` healthcheck is NONE")
    assert not problems, "compose: " + "; ".join(problems)


def healthcheck_test(services: dict, name: str) -> str:
    hc = service(services, name).get("healthcheck")
    assert isinstance(hc, dict) and hc.get("test"), f"compose: service `{name}` has no healthcheck"
    return " ".join(str(t) for t in as_list(hc["test"]))


def test_redis_healthcheck_pings_with_the_password(services):
    test = healthcheck_test(services, "redis")
    assert "redis-cli" in test and "-a" in test.split() and "ping" in test, (
        f"compose: redis healthcheck should run `redis-cli -a <password> ping` (runs: {test})"
    )


@pytest.mark.parametrize("name", ["api", "worker", "exporter"])
def test_rust_service_healthcheck_queries_its_health_endpoint(services, name):
    test = healthcheck_test(services, name)
    assert "/healthz" in test or "/readyz" in test, (
        f"compose: `{name}` healthcheck should query /healthz or /readyz (runs: {test})"
    )


@pytest.mark.parametrize("name", sorted({d[0] for d in DEPENDS}))
def test_depends_on_uses_the_long_form(services, name):
    dep = service(services, name).get("depends_on")
    assert isinstance(dep, dict), f"compose: `{name}` needs depends_on in long form (with conditions)"


@pytest.mark.parametrize("name,target,condition", DEPENDS,
                         ids=[f"{n}->{t}" for n, t, _ in DEPENDS])
def test_depends_on_waits_for_its_dependency(services, name, target, condition):
    dep = service(services, name).get("depends_on")
    assert isinstance(dep, dict), f"compose: `{name}` needs depends_on in long form (with conditions)"
    entry = dep.get(target)
    assert isinstance(entry, dict), f"compose: `{name}` must depend on `{target}`"
    if condition:
        assert entry.get("condition") == condition, (
            f"compose: `{name}` -> `{target}` needs condition {condition} "
            f"(has {entry.get('condition')})"
        )
    else:
        assert "condition" in entry, f"compose: `{name}` -> `{target}` needs a condition"


# ---- redis --------------------------------------------------------------------------------

def test_redis_uses_a_redis7_image(services):
    image = str(service(services, "redis").get("image", ""))
    assert image.startswith("redis:7"), f"compose: redis should use a redis:7 image (has {image!r})"


def test_redis_appends_to_its_log(services):
    words = command_words(service(services, "redis"))
    assert flag_value(words, "--appendonly") == ["yes"], (
        "compose: redis must run with --appendonly yes"
    )


def test_redis_fsyncs_every_second(services):
    words = command_words(service(services, "redis"))
    assert flag_value(words, "--appendfsync") == ["everysec"], (
        "compose: redis must run with --appendfsync everysec"
    )


def test_redis_requires_the_password(services):
    words = command_words(service(services, "redis"))
    assert "--requirepass" in words and "REDIS_PASSWORD" in " ".join(words), (
        "compose: redis must take --requirepass from ${REDIS_PASSWORD...}"
    )


# ---- the Rust services --------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(RUST_SERVICES))
def test_rust_service_command(services, name):
    cmd = RUST_SERVICES[name][0]
    words = command_words(service(services, name))
    assert words[:len(cmd)] == cmd, f"compose: `{name}` command should start with {cmd} (is {words})"


@pytest.mark.parametrize("name", sorted(RUST_SERVICES))
def test_rust_service_listen_address(services, name):
    listen = RUST_SERVICES[name][1]
    env = env_map(service(services, name))
    assert env.get("DRIFT_LISTEN") == listen, (
        f"compose: `{name}` needs DRIFT_LISTEN={listen} (has {env.get('DRIFT_LISTEN')})"
    )


@pytest.mark.parametrize("name", sorted(RUST_SERVICES))
def test_rust_service_redis_url_has_the_password(services, name):
    url = env_map(service(services, name)).get("DRIFT_REDIS_URL", "")
    assert url.startswith("redis://") and "@redis:6379" in url and "REDIS_PASSWORD" in url, (
        f"compose: `{name}` needs DRIFT_REDIS_URL=redis://:${{REDIS_PASSWORD...}}@redis:6379"
    )


@pytest.mark.parametrize("name", sorted(RUST_SERVICES))
def test_rust_service_is_built_from_the_dockerfile(services, name):
    assert "build" in service(services, name), (
        f"compose: `{name}` should be built from the Dockerfile (build: .)"
    )


def test_worker_replicas_do_not_share_one_consumer_name(services):
    env = env_map(service(services, "worker"))
    assert "DRIFT_CONSUMER" not in env, (
        "compose: worker must not set one DRIFT_CONSUMER for all replicas"
    )


# ---- gateway, Prometheus and Grafana wiring -----------------------------------------------

def test_nginx_mounts_its_configs(services):
    m = mounts(service(services, "nginx"))
    assert "nginx/nginx.conf" in m and "gateway-locations.conf" in m, (
        "compose: nginx must mount nginx/nginx.conf and nginx/gateway-locations.conf"
    )


def test_prometheus_mounts_its_config_and_alerts(services):
    m = mounts(service(services, "prometheus"))
    assert "prometheus.yml" in m and "alerts.yml" in m, (
        "compose: prometheus must mount prometheus.yml and alerts.yml"
    )


def test_grafana_allows_anonymous_access(services):
    env = env_map(service(services, "grafana"))
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED", "").lower() == "true", (
        "compose: grafana needs GF_AUTH_ANONYMOUS_ENABLED=true"
    )


def test_grafana_anonymous_role_is_viewer(services):
    env = env_map(service(services, "grafana"))
    assert env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer", (
        "compose: grafana anonymous role must be Viewer (read-only)"
    )


def test_grafana_mounts_provisioning_and_dashboards(services):
    m = mounts(service(services, "grafana"))
    assert "grafana/provisioning" in m and "grafana/dashboards" in m, (
        "compose: grafana must mount grafana/provisioning and grafana/dashboards"
    )


# ---- docker-compose 1.x and the offline override --------------------------------------------

def test_no_top_level_name(compose):
    # docker-compose 1.x (Debian's package) rejects the whole file over a top-level `name`.
    assert "name" not in compose, (
        "compose: no top-level `name:` (docker-compose 1.x refuses the file); "
        "the project name comes from the directory, COMPOSE_PROJECT_NAME or -p"
    )


def test_offline_override_only_moves_grafana_to_a_profile(load_yaml, root):
    doc = load_yaml(root / "docker-compose.offline.yml")
    assert set(doc) == {"services"}, f"docker-compose.offline.yml: unexpected keys {sorted(doc)}"
    assert doc["services"] == {"grafana": {"profiles": ["grafana"]}}, (
        "docker-compose.offline.yml must only move grafana (no stand-in image) to a profile, "
        f"has {doc['services']}"
    )


def test_the_offline_images_script_knows_every_image(services, root):
    # scripts/offline-images.sh builds a stand-in for each of these by repository name;
    # a new image in the compose file needs a recipe in scripts/offline/ (or, like
    # grafana, the offline override).
    script = (root / "scripts" / "offline-images.sh").read_text(encoding="utf-8")
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        if not image or "build" in svc or name == "grafana":
            continue
        repo = image.split(":")[0]
        assert f"from_compose {repo})" in script, (
            f"compose: `{name}` uses {image}, which scripts/offline-images.sh has no stand-in for"
        )


# ---- the cluster override ---------------------------------------------------------------------

CLUSTER_NODES = [f"redis-node-{i}" for i in range(1, 7)]


def test_cluster_override_runs_the_services_on_six_cluster_nodes(load_yaml, root):
    doc = load_yaml(root / "docker-compose.cluster.yml")
    svcs = doc["services"]
    for node in CLUSTER_NODES:
        cmd = [str(a) for a in svcs[node]["command"]]
        assert cmd[0] == "redis-server", f"{node}: {cmd}"
        flags = dict(zip(cmd[1::2], cmd[2::2]))
        assert flags.get("--cluster-enabled") == "yes", f"{node}: {cmd}"
        # A failing master must not stop the monitors on the other masters.
        assert flags.get("--cluster-require-full-coverage") == "no", f"{node}: {cmd}"
        assert flags.get("--appendonly") == "yes", f"{node}: {cmd}"
        # Replicas authenticate to their master with the same password.
        assert flags.get("--requirepass") == flags.get("--masterauth") != None, f"{node}: {cmd}"
        assert flags.get("--maxmemory-policy") == "noeviction", f"{node}: {cmd}"
        assert "ports" not in svcs[node], f"{node} must stay internal"
        assert any(str(v).endswith(":/data") for v in svcs[node]["volumes"]), (
            f"{node}: nodes.conf and the append-only file need a volume"
        )
    init = svcs["redis-cluster-init"]
    assert set(init["depends_on"]) == set(CLUSTER_NODES)
    assert all(d["condition"] == "service_healthy" for d in init["depends_on"].values())
    script = root / "scripts" / "cluster" / "create.sh"
    assert any(str(v).startswith("./scripts/cluster/create.sh:") for v in init["volumes"])
    assert os.access(script, os.X_OK), f"{script} must be executable"
    text = script.read_text(encoding="utf-8")
    assert "--cluster-replicas 1" in text and "--cluster create" in text
    for name in ["api", "worker", "exporter"]:
        env = svcs[name]["environment"]
        assert str(env["DRIFT_REDIS_CLUSTER"]) == "true", name
        seeds = [u.strip() for u in str(env["DRIFT_REDIS_URL"]).split(",")]
        assert [u.rsplit("@", 1)[1] for u in seeds] == [f"{n}:6379" for n in CLUSTER_NODES], (
            f"{name}: every node is a seed: {seeds}"
        )
        assert all(u.startswith("redis://:${REDIS_PASSWORD:-changeme}@") for u in seeds), seeds
        assert svcs[name]["depends_on"]["redis-cluster-init"]["condition"] == (
            "service_completed_successfully"
        ), name
    assert set(doc["volumes"]) == {f"{n}-data" for n in CLUSTER_NODES}
