# Shared by the scripts here: `source "$(dirname "$0")/lib.sh"`.

# start_logged LOG CMD [ARGS...]: starts CMD (which must log JSON with an "addr" field, as
# `opretail-exporter ... --log.format json` does) in the background with its stderr in LOG,
# and waits until it reports the address it listens on. Sets PID and ADDR; on failure prints
# the log and returns 1.
start_logged() {
  local log=$1
  shift
  "$@" 2>"$log" &
  PID=$!
  ADDR=""
  for _ in $(seq 1 300); do
    ADDR=$(grep -o '"addr":"[^"]*"' "$log" | head -n1 | cut -d'"' -f4 || true)
    [ -n "$ADDR" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$log" >&2; echo "$* exited early" >&2; return 1; }
    sleep 0.1
  done
  cat "$log" >&2
  echo "$* did not report its address" >&2
  return 1
}
