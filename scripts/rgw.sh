#!/usr/bin/env bash
# A throwaway single-node Ceph cluster with the RADOS Gateway (S3) on 127.0.0.1, for tests and for
# trying edgectl against a real S3-compatible server. Uses Debian's packages (radosgw, ceph-mon,
# ceph-osd; install them with `apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd`):
# one monitor, one OSD on `memstore` (RAM, nothing on disk but logs), cephx auth off, no manager,
# no systemd. Everything (config, monitor store, logs, pid files, sockets) lives under one directory.
#
#   scripts/rgw.sh start   starts the cluster and RGW, creates the S3 user; prints the env lines
#   scripts/rgw.sh env     prints AWS_ENDPOINT_URL_S3=... lines for a running cluster
#   scripts/rgw.sh stop    stops every daemon it started and removes the directory
#   scripts/rgw.sh status  exit 0 when RGW answers
#
# Settings (env): EDGECTL_RGW_DIR (default /tmp/edgectl-rgw), EDGECTL_RGW_PORT (S3 port, default: a
# free port), EDGECTL_RGW_ACCESS_KEY / EDGECTL_RGW_SECRET_KEY (the S3 user's keys). `start` on a running
# cluster only prints its env (idempotent); a half-started one is stopped and started again. When a
# step fails the script exits 1 with the step and the tail of the daemon's log.
set -euo pipefail

DIR="${EDGECTL_RGW_DIR:-/tmp/edgectl-rgw}"
ACCESS_KEY="${EDGECTL_RGW_ACCESS_KEY:-EDGECTLTESTACCESSKEY}"
SECRET_KEY="${EDGECTL_RGW_SECRET_KEY:-edgectl-test-secret-key-0000000000000000}"
CONF="$DIR/ceph.conf"
BINARIES=(ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool)

die() {
  echo "rgw.sh: $1" >&2
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    echo "--- last lines of $2 ---" >&2
    tail -n 30 "$2" >&2
  fi
  exit 1
}

missing_binaries() {
  local b out=()
  for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null 2>&1 || out+=("$b"); done
  echo "${out[*]}"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

print_env() {
  local port
  port="$(cat "$DIR/rgw.port")"
  echo "AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port"
  echo "AWS_REGION=us-east-1"
  echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
  echo "EDGECTL_RGW_DIR=$DIR"
}

rgw_answers() {
  [ -f "$DIR/rgw.port" ] || return 1
  python3 - "$(cat "$DIR/rgw.port")" <<'EOF' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2)
except urllib.error.HTTPError:
    pass  # any HTTP answer (403 for an anonymous list) means RGW is serving
EOF
}

stop_all() {
  local f pid
  for f in "$DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  # Give daemons a moment to exit cleanly, then make sure none is left.
  for _ in $(seq 1 50); do
    local alive=0
    for f in "$DIR"/run/*.pid; do
      [ -f "$f" ] || continue
      pid="$(cat "$f" 2>/dev/null || true)"
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for f in "$DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

write_conf() {
  local fsid="$1" mon_port="$2" rgw_port="$3"
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = none
auth service required = none
auth client required = none
# With auth off the connection modes must allow crc, or clients fail with EACCES (-13).
ms mon client mode = crc
ms client mode = crc
ms cluster mode = crc
ms service mode = crc
# Fail in seconds, not the default 5 minutes, when the monitor does not answer.
client mount timeout = 20
rados mon op timeout = 20
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
mon cluster log file = $DIR/log/cluster.log
keyring = $DIR/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd objectstore = memstore
memstore device bytes = 1073741824
osd data = $DIR/osd/\$cluster-\$id
mon data = $DIR/mon/\$cluster-\$id
osd op num shards = 1
osd op num threads per shard = 2
[client.rgw.edgectl]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $DIR/rgw
rgw thread pool size = 64
rgw dynamic resharding = false
rgw enable usage log = false
rgw lc debug interval = -1
EOF
}

wait_for() {
  # wait_for <seconds> <what> <log> <command...>
  local seconds="$1" what="$2" log="$3"
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what did not come up within ${seconds}s (logs in $DIR/log)" "$log"
    sleep 0.2
  done
}

osd_up() { ceph -c "$CONF" osd dump 2>/dev/null | grep -q '^osd.0 up'; }

start() {
  local missing
  missing="$(missing_binaries)"
  [ -z "$missing" ] || die "missing $missing: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common"
  if rgw_answers; then
    print_env
    return 0
  fi
  [ -d "$DIR" ] && stop_all
  mkdir -p "$DIR"/{run,log,mon,osd/ceph-0,rgw}
  local fsid mon_port rgw_port
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  mon_port="${EDGECTL_RGW_MON_PORT:-$(free_port)}"
  rgw_port="${EDGECTL_RGW_PORT:-$(free_port)}"
  echo "$rgw_port" >"$DIR/rgw.port"
  write_conf "$fsid" "$mon_port" "$rgw_port"

  # Monitor: a keyring is still required by mkfs even with auth off.
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >"$DIR/log/setup.log" 2>&1 ||
    die "ceph-authtool failed" "$DIR/log/setup.log"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >>"$DIR/log/setup.log" 2>&1 ||
    die "monmaptool failed" "$DIR/log/setup.log"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >>"$DIR/log/setup.log" 2>&1 ||
    die "ceph-mon --mkfs failed" "$DIR/log/mon.a.log"
  ceph-mon -c "$CONF" -i a >>"$DIR/log/setup.log" 2>&1 || die "ceph-mon failed to start" "$DIR/log/mon.a.log"
  wait_for 30 "the monitor" "$DIR/log/mon.a.log" ceph -c "$CONF" --connect-timeout 2 mon stat

  # One OSD on memstore.
  local osd_uuid
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  ceph -c "$CONF" osd new "$osd_uuid" >>"$DIR/log/setup.log" 2>&1 || die "ceph osd new failed" "$DIR/log/setup.log"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/setup.log" 2>&1 ||
    die "ceph-osd --mkfs failed" "$DIR/log/osd.0.log"
  ceph-osd -c "$CONF" -i 0 >>"$DIR/log/setup.log" 2>&1 || die "ceph-osd failed to start" "$DIR/log/osd.0.log"
  wait_for 30 "the OSD" "$DIR/log/osd.0.log" osd_up

  # The gateway creates its pools on first start; then the S3 user.
  radosgw -c "$CONF" -n client.rgw.edgectl >>"$DIR/log/setup.log" 2>&1 ||
    die "radosgw failed to start" "$DIR/log/client.rgw.edgectl.log"
  wait_for 60 "radosgw on 127.0.0.1:$rgw_port" "$DIR/log/client.rgw.edgectl.log" rgw_answers
  radosgw-admin -c "$CONF" user create --uid=edgectl --display-name=edgectl \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$DIR/log/setup.log" 2>&1 ||
    die "radosgw-admin user create failed" "$DIR/log/setup.log"
  print_env
}

case "${1:-}" in
start) start ;;
stop) [ -d "$DIR" ] && stop_all || true ;;
env)
  rgw_answers || die "no RGW is running under $DIR (scripts/rgw.sh start)"
  print_env
  ;;
status) rgw_answers ;;
check)
  # Exit 0 when the binaries are installed; otherwise print what is missing.
  missing="$(missing_binaries)"
  [ -z "$missing" ] || {
    echo "missing: $missing"
    exit 1
  }
  ;;
*)
  echo "usage: scripts/rgw.sh start|stop|env|status|check" >&2
  exit 2
  ;;
esac
