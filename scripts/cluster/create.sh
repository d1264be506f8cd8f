#!/bin/sh
# Joins the six redis-node-* containers of docker-compose.cluster.yml into a cluster of
# three masters with one replica each, once: a node that already belongs to a cluster
# (its nodes.conf survived on its volume) means the cluster exists, and nothing is done.
# redis-cli --cluster create wants addresses, so the service names are resolved first.
set -eu
PORT=6379
AUTH="-a ${REDIS_PASSWORD} --no-auth-warning"
resolve() {
  getent hosts "$1" 2>/dev/null | awk '{print $1; exit}' ||
    nslookup "$1" 2>/dev/null | awk '/^Address: / {print $2; exit}'
}
addrs=""
for i in 1 2 3 4 5 6; do
  host="redis-node-$i"
  for _ in $(seq 60); do
    # shellcheck disable=SC2086
    redis-cli -h "$host" -p "$PORT" $AUTH ping 2>/dev/null | grep -q PONG && break
    sleep 1
  done
  ip=$(resolve "$host")
  [ -n "$ip" ] || { echo "cannot resolve $host" >&2; exit 1; }
  addrs="$addrs $ip:$PORT"
done
# shellcheck disable=SC2086
if redis-cli -h redis-node-1 -p "$PORT" $AUTH cluster info | grep -q 'cluster_known_nodes:6'; then
  echo "the cluster exists already"
  exit 0
fi
# shellcheck disable=SC2086
redis-cli $AUTH --cluster create $addrs --cluster-replicas 1 --cluster-yes
for _ in $(seq 60); do
  # shellcheck disable=SC2086
  redis-cli -h redis-node-1 -p "$PORT" $AUTH cluster info | grep -q 'cluster_state:ok' && exit 0
  sleep 1
done
echo "the cluster did not reach cluster_state:ok" >&2
exit 1
