#!/bin/sh
# Test application for docker-watcher's own tests. One image, several behaviours,
# chosen by $MODE (baked in at build time, overridable at run time):
#   healthy    serves /health at once
#   slow       serves /health after $SLOW_SECONDS (default 4)
#   crash      exits with status 3 straight away
#   unhealthy  serves, but /health answers 404 forever
# The images dw-test/app:healthcheck and :healthcheck-unhealthy add a HEALTHCHECK
# (--interval=30s, wget /health) to the healthy and unhealthy modes (see Dockerfile).
# Every mode serves /id (the container's hostname, i.e. its short id) and /tag
# ($DW_TAG when the deployer sets it), so a test can tell which instance answered,
# and /cgi-bin/slow: the tag after $SLOW_REQUEST_SECONDS (default 1), a request that is
# still in flight when a test moves traffic away.
mkdir -p /www
hostname > /www/id
echo "${DW_TAG:-unknown}" > /www/tag
echo "hello from $(hostname)" > /www/index.html
mkdir -p /www/cgi-bin
printf '#!/bin/sh\nsleep "${SLOW_REQUEST_SECONDS:-1}"\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\ncat /www/tag\n' \
  > /www/cgi-bin/slow
chmod +x /www/cgi-bin/slow
case "$MODE" in
  healthy) echo ok > /www/health ;;
  slow) (sleep "${SLOW_SECONDS:-4}"; echo ok > /www/health) & ;;
  crash) echo "test app: crashing on purpose" >&2; exit 3 ;;
  unhealthy) ;;
  *) echo "test app: unknown MODE '$MODE'" >&2; exit 2 ;;
esac
# busybox httpd as PID 1 ignores SIGTERM; trap it so `docker stop` is quick.
trap 'exit 0' TERM INT
httpd -f -p "${PORT:-8080}" -h /www &
wait
