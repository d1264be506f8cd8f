#!/bin/sh
# The official nginx image's entrypoint: before starting nginx, runs the executable
# /docker-entrypoint.d/*.sh (and sources *.envsh) in version order. The official image's
# own scripts there (envsubst of /etc/nginx/templates, IPv6 listen, worker tuning) are not
# reproduced: the drift monitor mounts a complete nginx.conf and uses none of them.
set -e
entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    if find /docker-entrypoint.d/ -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null | read -r _; then
        entrypoint_log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"
        find /docker-entrypoint.d/ -follow -type f -print | sort -V | while read -r f; do
            case "$f" in
                *.envsh) if [ -x "$f" ]; then . "$f"; fi ;;
                *.sh) if [ -x "$f" ]; then "$f"; fi ;;
                *) ;;
            esac
        done
        entrypoint_log "$0: Configuration complete; ready for start up"
    else
        entrypoint_log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi
exec "$@"
