#!/usr/bin/env bash
# Gateway benchmark: the shape of The Guild's federation gateway benchmark (four subgraphs,
# accounts/inventory/products/reviews, and its nested query) with our router, Hive Router,
# Apollo Gateway and Hive Gateway side by side, one after the other on 127.0.0.1:4000, over the
# same subgraphs, on this machine. Figures are comparable within one run only.
#
#   bash benches/gateway/run.sh          (make bench-gateway)
#
# Environment: DURATION (seconds of load per gateway, default 30), WARMUP (default 5),
# CONNECTIONS (default 50), THREADS (wrk threads, default 2), HIVE_ROUTER_BIN (a hive_router
# binary; else <target>/peers/hive/bin/hive_router, else it is built), GATEWAYS (which to run, a
# space-separated subset of "pyairtable hive-router apollo-gateway hive-gateway"),
# CARGO_TARGET_DIR (where the builds and the installed peers go, default target/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/benches/gateway
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PEERS=$TARGET/peers
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
GATEWAYS=${GATEWAYS:-pyairtable hive-router apollo-gateway hive-gateway}
PORT=4000
URL=http://127.0.0.1:$PORT/graphql
PRODUCTS_URL=http://127.0.0.1:4203/graphql
SUPERGRAPH=$HERE/supergraph.graphql
WORK=$(mktemp -d)
PIDS=()

log() { printf '==> %s\n' "$*" >&2; }

stop() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- tools -----------------------------------------------------------------------------------
command -v node >/dev/null || { echo "node (20 or later) is needed for the Node gateways and the checks" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian package)"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

# --- builds ----------------------------------------------------------------------------------
log "building pyairtable and bench-subgraphs (release)"
(cd "$ROOT" && cargo build --release --locked -p pyairtable -p bench-subgraphs)
PYAIRTABLE=$TARGET/release/pyairtable
SUBGRAPHS=$TARGET/release/bench-subgraphs

HIVE_ROUTER=${HIVE_ROUTER_BIN:-}
if [[ -z $HIVE_ROUTER && -x $PEERS/hive/bin/hive_router ]]; then
    HIVE_ROUTER=$PEERS/hive/bin/hive_router
fi
if [[ -z $HIVE_ROUTER && " $GATEWAYS " == *" hive-router "* ]]; then
    log "building Hive Router 0.2.0 from crates.io into $PEERS/hive (once; long)"
    if cargo install hive-router --version 0.2.0 --locked --features graphiql --root "$PEERS/hive" \
        >"$PEERS/hive-build.log" 2>&1; then
        HIVE_ROUTER=$PEERS/hive/bin/hive_router
    else
        log "Hive Router did not build (see $PEERS/hive-build.log); going on without it"
    fi
fi

# npm_peer DIR PACKAGE... : installs the packages into $PEERS/DIR once; 1 when npm fails.
npm_peer() {
    local dir=$PEERS/$1
    shift
    [[ -f $dir/.installed ]] && return 0
    mkdir -p "$dir"
    [[ -f $dir/package.json ]] || echo '{"name":"bench-peer","private":true}' >"$dir/package.json"
    log "npm install $* (into $dir)"
    if (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$@" >"$dir/install.log" 2>&1); then
        touch "$dir/.installed"
    else
        log "npm install failed: $(tail -n 5 "$dir/install.log" | tr '\n' ' ')"
        return 1
    fi
}

APOLLO_OK=0
HIVE_GATEWAY_OK=0
if [[ " $GATEWAYS " == *" apollo-gateway "* ]] &&
    npm_peer apollo @apollo/gateway@2.14.4 @apollo/server@5.5.1 graphql@16; then
    cp "$HERE/apollo-gateway.mjs" "$PEERS/apollo/"
    APOLLO_OK=1
fi
if [[ " $GATEWAYS " == *" hive-gateway "* ]] && npm_peer hive-gateway @graphql-hive/gateway@2.15.1 graphql@16; then
    if [[ -x $PEERS/hive-gateway/node_modules/.bin/hive-gateway ]]; then
        HIVE_GATEWAY_OK=1
    else
        log "@graphql-hive/gateway installed without its hive-gateway command; going on without it"
    fi
fi

# --- helpers ---------------------------------------------------------------------------------
node "$HERE/tool.mjs" body "$HERE/query.graphql" >"$WORK/query.json"
node "$HERE/tool.mjs" body "$HERE/one-subgraph.graphql" >"$WORK/one.json"
echo '{"query":"{ __typename }"}' >"$WORK/typename.json"

# post URL BODY_FILE OUT_FILE -> HTTP status on stdout
post() {
    curl -s -o "$3" -w '%{http_code}' -H 'content-type: application/json' --data-binary "@$2" "$1" || true
}

# wait_ready URL PID NAME: until a `{ __typename }` POST answers 200 (60 s at most).
wait_ready() {
    local url=$1 pid=$2 name=$3
    for _ in $(seq 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before it was ready; its log:"
            tail -n 20 "$WORK/$name.log" >&2
            return 1
        fi
        [[ $(post "$url" "$WORK/typename.json" /dev/null) == 200 ]] && return 0
        sleep 0.1
    done
    log "$name was not ready after 60 s"
    return 1
}

# load URL BODY_FILE SECONDS OUT_FILE: constant load with wrk (a slow answer counts as latency,
# not as a failure, up to 30 s).
load() {
    BODY_FILE=$2 wrk -t "$THREADS" -c "$CONNECTIONS" -d "${3}s" --timeout 30s --latency -s "$HERE/post.lua" "$1" \
        >"$4" 2>&1
}

peak_rss_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

RESULTS=$WORK/results   # name rps p50 p99 non2xx socket_errors rss_mib note
ONE=$WORK/one           # name rps p50 p99 non2xx socket_errors
: >"$RESULTS"
: >"$ONE"

# measure NAME: the gateway started as $GATEWAY_PID answers the query correctly, then is timed.
measure() {
    local name=$1 status
    status=$(post "$URL" "$WORK/query.json" "$WORK/$name.response.json")
    local verdict
    if [[ $status != 200 ]]; then
        verdict="HTTP $status"
    elif ! verdict=$(node "$HERE/tool.mjs" check "$WORK/$name.response.json" "$HERE/expected.json"); then
        :
    fi
    if [[ $verdict != ok ]]; then
        log "$name answered the benchmark query wrongly ($verdict); timed anyway, marked WRONG"
        cp "$WORK/$name.response.json" "$PEERS/$name.wrong-response.json" 2>/dev/null || true
    fi
    log "$name: warm-up ${WARMUP}s"
    load "$URL" "$WORK/query.json" "$WARMUP" "$WORK/$name.warmup.txt"
    log "$name: ${DURATION}s of load, $CONNECTIONS connections, $THREADS wrk threads"
    load "$URL" "$WORK/query.json" "$DURATION" "$WORK/$name.wrk.txt"
    local rss note=""
    rss=$(peak_rss_mib "$GATEWAY_PID")
    [[ $verdict == ok ]] || note="WRONG"
    echo "$name $(node "$HERE/tool.mjs" wrk "$WORK/$name.wrk.txt") $rss $note" >>"$RESULTS"
}

# measure_one NAME URL: the one-subgraph query (products' topProducts) at URL.
measure_one() {
    local name=$1 url=$2 status
    status=$(post "$url" "$WORK/one.json" "$WORK/$name.one.json")
    if [[ $status != 200 ]] || grep -q '"errors"' "$WORK/$name.one.json"; then
        log "$name: the one-subgraph query failed (HTTP $status): $(head -c 300 "$WORK/$name.one.json")"
        return 0
    fi
    load "$url" "$WORK/one.json" "$WARMUP" "$WORK/$name.one-warmup.txt"
    log "$name: one-subgraph query, ${DURATION}s"
    load "$url" "$WORK/one.json" "$DURATION" "$WORK/$name.one-wrk.txt"
    echo "$name $(node "$HERE/tool.mjs" wrk "$WORK/$name.one-wrk.txt")" >>"$ONE"
}

# start NAME CMD...: starts a gateway on :4000 as GATEWAY_PID; 1 when it does not get ready.
start() {
    local name=$1
    shift
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/"; then
        log "something already listens on :$PORT; stop it first"
        exit 1
    fi
    log "starting $name"
    "$@" >"$WORK/$name.log" 2>&1 &
    GATEWAY_PID=$!
    PIDS+=("$GATEWAY_PID")
    wait_ready "$URL" "$GATEWAY_PID" "$name"
}

finish() {
    stop "$GATEWAY_PID"
    local pid kept=()
    for pid in "${PIDS[@]}"; do [[ $pid == "$GATEWAY_PID" ]] || kept+=("$pid"); done
    PIDS=("${kept[@]}")
}

# --- subgraphs -------------------------------------------------------------------------------
log "starting the subgraphs on :4201-4204"
"$SUBGRAPHS" >"$WORK/subgraphs.log" 2>&1 &
SUBGRAPHS_PID=$!
PIDS+=("$SUBGRAPHS_PID")
wait_ready "$PRODUCTS_URL" "$SUBGRAPHS_PID" subgraphs
measure_one "products subgraph directly" "$PRODUCTS_URL"

# --- gateways --------------------------------------------------------------------------------
for gateway in $GATEWAYS; do
    case $gateway in
    pyairtable)
        # Budgets that would refuse a load test from one IP are off; depth, cost and token limits
        # stay on (the benchmark query passes them with a raised cost ceiling).
        if start pyairtable env PYAIRTABLE_LISTEN=127.0.0.1:$PORT PYAIRTABLE_LOG=warn \
            PYAIRTABLE_RATE_LIMIT_IP=off PYAIRTABLE_RATE_LIMIT_CALLER=off \
            PYAIRTABLE_RATE_LIMIT_TENANT=off PYAIRTABLE_COST_BUDGET=off PYAIRTABLE_MAX_COST=1000000 \
            PYAIRTABLE_SUPERGRAPH_POLL_MS=0 "$PYAIRTABLE" router --supergraph "$SUPERGRAPH"; then
            measure pyairtable
            measure_one "pyairtable router" "$URL"
        fi
        finish
        ;;
    hive-router)
        if [[ -z $HIVE_ROUTER ]]; then
            log "no Hive Router binary; skipped"
            continue
        fi
        if start hive-router env -C "$WORK" HOST=127.0.0.1 PORT=$PORT LOG_LEVEL=warn \
            SUPERGRAPH_FILE_PATH="$SUPERGRAPH" "$HIVE_ROUTER"; then
            measure hive-router
            measure_one "hive router" "$URL"
        fi
        finish
        ;;
    apollo-gateway)
        if [[ $APOLLO_OK != 1 ]]; then
            log "Apollo Gateway is not installed; skipped"
            continue
        fi
        if start apollo-gateway env -C "$PEERS/apollo" NODE_ENV=production \
            node apollo-gateway.mjs "$SUPERGRAPH" "$PORT"; then
            measure apollo-gateway
        fi
        finish
        ;;
    hive-gateway)
        if [[ $HIVE_GATEWAY_OK != 1 ]]; then
            log "Hive Gateway is not installed; skipped"
            continue
        fi
        # One process (--fork 1), like the Apollo Gateway here.
        if start hive-gateway env -C "$PEERS/hive-gateway" NODE_ENV=production \
            node_modules/.bin/hive-gateway supergraph "$SUPERGRAPH" --host 127.0.0.1 --port "$PORT" \
            --fork 1 --jit; then
            measure hive-gateway
        fi
        finish
        ;;
    *)
        log "unknown gateway $gateway (one of: pyairtable hive-router apollo-gateway hive-gateway)"
        ;;
    esac
done

# --- report ----------------------------------------------------------------------------------
echo
echo "gateway benchmark: The Guild's query over 4 subgraphs, ${DURATION}s per gateway after ${WARMUP}s"
echo "of warm-up, wrk -c $CONNECTIONS -t $THREADS, all on this $(nproc)-core machine (load generator included)"
echo
awk -v hive="$(awk '$1 == "hive-router" { print $2 }' "$RESULTS")" '
BEGIN { printf "%-16s %10s %9s %9s %9s %9s %s\n", "gateway", "req/s", "p50 ms", "p99 ms", "peak RSS", "vs Hive", "failed" }
{
    ratio = (hive > 0) ? sprintf("%.2fx", $2 / hive) : "-"
    failed = $5 + $6
    printf "%-16s %10.0f %9.2f %9.2f %6s MiB %9s %s%s\n", $1, $2, $3, $4, $7, ratio, failed, ($8 != "" ? "  " $8 : "")
}' "$RESULTS"
if [[ -s $ONE ]]; then
    echo
    echo "one subgraph: { topProducts(first: 5) { upc name price weight } } (products only)"
    awk -F' ' -v OFS=' ' '{ n = NF; name = $1; for (i = 2; i <= n - 5; i++) name = name " " $i;
        rps = $(n - 4); p50 = $(n - 3); p99 = $(n - 2)
        if (NR == 1) direct = rps
        printf "%-28s %10.0f req/s  p50 %7.2f ms  p99 %7.2f ms  %s\n", name, rps, p50, p99,
            (NR == 1 ? "" : sprintf("%.2fx the direct throughput", rps / direct)) }' "$ONE"
fi
