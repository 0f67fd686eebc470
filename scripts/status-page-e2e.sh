#!/usr/bin/env bash
# The status page in a real browser. Starts `opretail-exporter demo` with one shop failing
# (`--demo.failing-shop 9605`: polled by its own S_ id, refused by the simulated gateway),
# waits for its first poll, opens `/` in headless Chromium, and checks the DOM the browser
# built: the targets table has one row per target the demo polls (2 organisations, 10
# devices and the failing shop; at most a page of 100), the failing shop is the first row,
# down, with its error name, and the summary counts it. Saves a screenshot to
# docs/img/status-page.png (the README shows it). Exit 0 when every check holds, 1 otherwise.
#
# Usage: scripts/status-page-e2e.sh [BINARY]   (default target/debug/opretail-exporter,
# built with `cargo build` when missing). Needs Debian's `chromium` and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/debug/opretail-exporter}
if [ ! -x "$bin" ]; then
  cargo build
fi
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "status-page-e2e: chromium not found (apt-get install -y --no-install-recommends chromium)" >&2
  exit 1
fi

work=$(mktemp -d)
demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ]; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

failing=9605
"$bin" demo --web.listen-address 127.0.0.1:0 --demo.failing-shop "$failing" --log.format json \
  2> "$work/demo.log" &
demo_pid=$!

# The listening address from the log, then readiness (the first poll has completed).
addr=$(python3 - "$work/demo.log" "$demo_pid" <<'PY'
import json, os, sys, time, urllib.request
log, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 60
addr = None
while time.time() < deadline and addr is None:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("status-page-e2e: the demo exited:\n" + open(log).read())
    for line in open(log):
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if fields.get("message") == "serving /metrics" and fields.get("addr"):
            addr = fields["addr"]
            break
    else:
        time.sleep(0.1)
if addr is None:
    sys.exit("status-page-e2e: the demo logged no address within 60 s")
while time.time() < deadline:
    try:
        if urllib.request.urlopen(f"http://{addr}/-/ready", timeout=2).status == 200:
            print(addr)
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("status-page-e2e: the demo was not ready within 60 s")
PY
)
echo "status-page-e2e: demo ready at http://$addr/" >&2

chrome() {
  "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage "$@" 2>> "$work/chromium.log"
}
chrome --dump-dom "http://$addr/" > "$work/dom.html"
mkdir -p docs/img
chrome --hide-scrollbars --screenshot=docs/img/status-page.png --window-size=1400,900 "http://$addr/" > /dev/null
[ -s docs/img/status-page.png ] || { echo "status-page-e2e: no screenshot" >&2; cat "$work/chromium.log" >&2; exit 1; }

python3 - "$work/dom.html" "$addr" "$failing" <<'PY'
import json, sys, urllib.request
from html.parser import HTMLParser

dom_file, addr, failing = sys.argv[1], sys.argv[2], sys.argv[3]

class Targets(HTMLParser):
    """The rows of <table id="targets">'s <tbody>, and the summary's targets-up text."""
    def __init__(self):
        super().__init__()
        self.in_table = self.in_body = False
        self.rows = []          # (attrs, text)
        self.row = None
        self.up_text = None
        self.in_up = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "targets":
            self.in_table = True
        elif self.in_table and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.row = [a, ""]
        elif tag == "dd" and a.get("id") == "targets-up":
            self.in_up, self.up_text = True, ""
    def handle_endtag(self, tag):
        if tag == "tr" and self.row is not None:
            self.rows.append(tuple(self.row))
            self.row = None
        elif tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.in_table = False
        elif tag == "dd":
            self.in_up = False
    def handle_data(self, data):
        if self.row is not None:
            self.row[1] += data
        if self.in_up:
            self.up_text += data

page = Targets()
page.feed(open(dom_file, encoding="utf-8").read())
api = json.load(urllib.request.urlopen(f"http://{addr}/api/v1/targets", timeout=5))
problems = []
# The demo polls O_1001, O_1002, 10 devices and the failing shop's own S_ id.
polled = 2 + 10 + 1
if api["summary"]["targets"] != polled:
    problems.append(f"the API lists {api['summary']['targets']} targets, the demo polls {polled}")
expected_rows = min(polled, api["per_page"])
if len(page.rows) != expected_rows:
    problems.append(f"the targets table has {len(page.rows)} rows, expected {expected_rows}")
if page.rows:
    attrs, text = page.rows[0]
    if attrs.get("data-target") != f"S_{failing}":
        problems.append(f"the first row is {attrs.get('data-target')}, not the failing S_{failing}")
    if "down" not in attrs.get("class", "").split():
        problems.append("the first row is not marked down")
    for needed in ("DOWN", "400003", "ID_NOT_ALLOWED"):
        if needed not in text:
            problems.append(f"the first row does not show {needed}: {text!r}")
    others = [a.get("data-target") for a, _ in page.rows[1:] if "down" in a.get("class", "").split()]
    if others:
        problems.append(f"other rows are down: {others}")
if (page.up_text or "").strip() != f"{polled - 1} of {polled}":
    problems.append(f"the summary says {page.up_text!r}, expected '{polled - 1} of {polled}'")
if [r[0].get("data-target") for r in page.rows] != [r["id"] for r in api["rows"]]:
    problems.append("the page's rows and the API's differ")
if problems:
    print("status-page-e2e: FAIL", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"status-page-e2e: ok: {len(page.rows)} rows, first S_{failing} down with 400003 ID_NOT_ALLOWED; "
      f"summary '{page.up_text.strip()}'; screenshot docs/img/status-page.png")
PY
