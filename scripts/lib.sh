# shellcheck shell=bash disable=SC2034  # variables here are used by the scripts that source it
# Shared helpers for scripts/* and bench/*. Source it; it does not run anything by itself.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"     (from scripts/)
#
# Defines REMORA_ROOT (the repository root, whatever the caller's cwd), the build directories,
# logging, process bookkeeping with cleanup on exit, and readiness polling with deadlines.

REMORA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REMORA_ROOT

# Build directories. REMORA_BUILD_PREFIX lets an experiment use its own trees
# (REMORA_BUILD_PREFIX=build-x gives build-x/, build-x-asan/, build-x-fuzz/).
_rm_prefix="${REMORA_BUILD_PREFIX:-build}"
case "$_rm_prefix" in
/*) ;;
*) _rm_prefix="$REMORA_ROOT/$_rm_prefix" ;;
esac
RM_BUILD_DIR="$_rm_prefix"
RM_BUILD_ASAN_DIR="$_rm_prefix-asan"
RM_BUILD_FUZZ_DIR="$_rm_prefix-fuzz"
unset _rm_prefix

# ---------------------------------------------------------------------------------------------
# Output

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
    _rm_bold=$'\033[1m' _rm_red=$'\033[31m' _rm_green=$'\033[32m' _rm_dim=$'\033[2m' _rm_off=$'\033[0m'
else
    _rm_bold='' _rm_red='' _rm_green='' _rm_dim='' _rm_off=''
fi

rm_step() { printf '\n%s==> %s%s\n' "$_rm_bold" "$*" "$_rm_off"; }
rm_info() { printf '    %s\n' "$*"; }
rm_ok() { printf '    %sok%s   %s\n' "$_rm_green" "$_rm_off" "$*"; }
rm_bad() { printf '    %sFAIL%s %s\n' "$_rm_red" "$_rm_off" "$*"; }
rm_dim() { printf '%s%s%s\n' "$_rm_dim" "$*" "$_rm_off"; }
rm_warn() { printf '%swarning:%s %s\n' "$_rm_bold" "$_rm_off" "$*" >&2; }
rm_die() {
    printf '%serror:%s %s\n' "$_rm_red" "$_rm_off" "$*" >&2
    exit 1
}

# rm_now: monotonic-enough seconds with a fraction, for durations and deadlines.
rm_now() { date +%s.%N; }
# rm_elapsed START: seconds since START, one decimal.
rm_elapsed() { awk -v s="$1" -v e="$(rm_now)" 'BEGIN { printf "%.1f", e - s }'; }

# rm_usage FILE: print the comment block at the top of a script (after the #! line) as its help.
rm_usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"; }

rm_nproc() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1; }

# ---------------------------------------------------------------------------------------------
# Processes started by a script. rm_spawn records the pid; rm_cleanup (installed on EXIT by
# rm_trap_cleanup) stops them in reverse order: SIGTERM, a grace period, then SIGKILL.

RM_PIDS=()
RM_TMPDIRS=()

# rm_spawn LOGFILE CMD ARGS...: start CMD in the background with stdout+stderr to LOGFILE and no
# stdin; sets RM_LAST_PID.
rm_spawn() {
    local log="$1"
    shift
    "$@" </dev/null >"$log" 2>&1 &
    RM_LAST_PID=$!
    RM_PIDS+=("$RM_LAST_PID")
}

# rm_alive PID: true while PID runs (and is not a zombie).
rm_alive() {
    local st
    [[ -r /proc/$1/stat ]] || return 1
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# rm_stop PID [GRACE_SECONDS]: SIGTERM, wait up to GRACE (default 5), then SIGKILL; reaps it.
rm_stop() {
    local pid="$1" grace="${2:-5}" deadline
    rm_alive "$pid" || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(date +%s) + grace))
    while rm_alive "$pid" && (($(date +%s) < deadline)); do
        sleep 0.05
    done
    if rm_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

rm_cleanup() {
    local i
    for ((i = ${#RM_PIDS[@]} - 1; i >= 0; i--)); do
        rm_stop "${RM_PIDS[i]}" 5
    done
    RM_PIDS=()
    for i in "${RM_TMPDIRS[@]}"; do
        [[ -n "$i" && -d "$i" ]] && rm -rf -- "$i"
    done
    RM_TMPDIRS=()
}

# rm_trap_cleanup: stop everything we started on any exit, including Ctrl-C and SIGTERM.
rm_trap_cleanup() {
    trap 'rm_cleanup' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# rm_mktemp_dir TAG: a temp dir removed by rm_cleanup; prints its path.
rm_mktemp_dir() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/remora-$1.XXXXXX")
    RM_TMPDIRS+=("$d")
    printf '%s\n' "$d"
}

# ---------------------------------------------------------------------------------------------
# Readiness, always with a deadline and never with a fixed sleep.

# rm_wait_file PATH TIMEOUT_S [PID]: wait until PATH exists and is non-empty. Fails early when
# PID (if given) exits.
rm_wait_file() {
    local path="$1" deadline=$(($(date +%s) + $2)) pid="${3:-}"
    while (($(date +%s) < deadline)); do
        [[ -s "$path" ]] && return 0
        if [[ -n "$pid" ]] && ! rm_alive "$pid"; then
            return 1
        fi
        sleep 0.05
    done
    [[ -s "$path" ]]
}

# rm_wait_http URL TIMEOUT_S [PID]: wait until URL answers 200. Fails early when PID exits.
rm_wait_http() {
    local url="$1" deadline=$(($(date +%s) + $2)) pid="${3:-}" code
    while (($(date +%s) < deadline)); do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null) || true
        [[ "$code" == 200 ]] && return 0
        if [[ -n "$pid" ]] && ! rm_alive "$pid"; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# rm_port_free PORT [HOST]: true when nothing listens on HOST:PORT and we may bind it.
rm_port_free() {
    python3 - "$1" "${2:-127.0.0.1}" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind((sys.argv[2], int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# rm_free_port [HOST]: a port the kernel considers free right now (bind to 0, read, close).
rm_free_port() {
    python3 - "${1:-127.0.0.1}" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1])
s.close()
EOF
}

# rm_addr_port ADDR: the port of "ip:port" (also accepts "[v6]:port").
rm_addr_port() { printf '%s\n' "${1##*:}"; }

# rm_read_addr FILE: first line of an address file, trimmed ("127.0.0.1:9901").
rm_read_addr() { head -n1 "$1" | tr -d '[:space:]'; }
