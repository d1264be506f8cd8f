#!/bin/sh
# The official redis image's entrypoint, with setpriv (util-linux) for gosu/su-exec.
set -e
# First argument an option (`--appendonly`) or a config file: run redis-server with it.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
# Started as root: own /data, then run as the redis user.
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
# Files created by Redis (the AOF, dumps) are private unless the umask says otherwise.
um="$(umask)"
if [ "$um" = '0022' ]; then
    umask 0077
fi
exec "$@"
