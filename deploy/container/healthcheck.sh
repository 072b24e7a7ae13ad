#!/bin/bash
# The image's HEALTHCHECK: GET /healthz on amldns's metrics listener, with
# nothing but bash (its /dev/tcp), so the runtime image needs no curl.
# "degraded" (a failed reload; the last good table serves) is still 200 and
# healthy here: restarting would not fix the config.
# Usage: healthcheck.sh [PORT]   (default 9153, the image's [metrics] listen)
set -eu
port="${1:-9153}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
status=""
IFS= read -r -t 5 status <&3 || true
case "$status" in
  "HTTP/1."?" 200 "*) exit 0 ;;
esac
echo "amldns unhealthy: ${status:-no answer from 127.0.0.1:${port}}" >&2
exit 1
