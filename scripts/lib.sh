# shellcheck shell=bash
# Helpers shared by scripts/*.sh. Source it; do not run it.
#
#   NC_ROOT            project root (found from this file's location)
#   log/warn/die       messages on stderr, prefixed with the calling script's name
#   run_logged F CMD   run CMD with its output in file F; show F only if CMD fails
#   free_port          print a TCP port on 127.0.0.1 that the kernel says is free
#   wait_port P [S]    wait up to S seconds (default 30) until 127.0.0.1:P accepts
#   pid_alive F        true if file F holds the pid of a live process
#   stop_pidfile F     TERM (then KILL) the process whose pid is in F; remove F
#   run_as_postgres    run a command as the `postgres` user when we are root

# shellcheck disable=SC2034  # used by the scripts that source this file
NC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
NC_SCRIPT="$(basename "${0:-nchat-rtc}" .sh)"

log()  { printf '%s: %s\n' "$NC_SCRIPT" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$NC_SCRIPT" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$NC_SCRIPT" "$*" >&2; exit 1; }

# run_logged LOGFILE CMD...: quiet on success, prints the log on failure.
run_logged() {
    local logf=$1 rc=0
    shift
    mkdir -p "$(dirname "$logf")"
    "$@" >"$logf" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '%s: command failed (exit %d): %s\n' "$NC_SCRIPT" "$rc" "$*" >&2
        printf -- '----- %s (last 60 lines) -----\n' "$logf" >&2
        tail -n 60 "$logf" >&2 || true
        printf -- '----- end of %s -----\n' "$logf" >&2
    fi
    return "$rc"
}

# free_port: bind port 0 on loopback and report what the kernel picked.
free_port() {
    local p=""
    if command -v node >/dev/null 2>&1; then
        p=$(node -e 'const s=require("net").createServer();
            s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});' 2>/dev/null) || p=""
    fi
    if [ -z "$p" ] && command -v python3 >/dev/null 2>&1; then
        p=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()' 2>/dev/null) || p=""
    fi
    [ -n "$p" ] || die "cannot find a free port (neither node nor python3 worked)"
    printf '%s\n' "$p"
}

# port_open PORT: true if something accepts connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT [SECONDS]
wait_port() {
    local port=$1 secs=${2:-30} i
    for ((i = 0; i < secs * 10; i++)); do
        port_open "$port" && return 0
        sleep 0.1
    done
    return 1
}

pid_alive() {
    local f=$1 pid
    [ -f "$f" ] || return 1
    pid=$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# stop_pidfile FILE [NAME]: stop the process recorded in FILE, wait for it to go.
stop_pidfile() {
    local f=$1 name=${2:-process} pid i
    [ -f "$f" ] || return 0
    pid=$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            warn "$name (pid $pid) ignored SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$f"
}

# run_as_postgres CMD...: PostgreSQL refuses to run as root, so when we are
# root run its server tools as the `postgres` user the Debian package creates.
# A non-root developer runs them as themselves.
run_as_postgres() {
    if [ "$(id -u)" -ne 0 ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        local q="" a
        for a in "$@"; do q+=" $(printf '%q' "$a")"; done
        su -s /bin/sh postgres -c "exec$q"
    fi
}

# as_root CMD...: run CMD as root (directly, or through sudo for a developer).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (run as root or install sudo)"
    fi
}

# load_env FILE: source an env file written by services.sh (export lines).
load_env() {
    # shellcheck disable=SC1090
    [ -f "$1" ] && . "$1"
}
