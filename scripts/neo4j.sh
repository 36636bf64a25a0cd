#!/usr/bin/env bash
# Run a real Neo4j Community 5.26 (LTS) server for dev/CI without Docker or a
# tarball: the jars come from Maven Central via `mvn`, and we launch the
# server entry point on the local JDK 17 the way the official launcher would.
#
# Usage: scripts/neo4j.sh install|start|stop|status
#        scripts/neo4j.sh import DATABASE [neo4j-admin database import full options]
#   import: with the server stopped, build DATABASE offline with `neo4j-admin database
#   import full` (the jars installed here include it: neo4j-import-tool) in a staging data
#   directory, and move it in place of DATABASE only when the import succeeded; a failed or
#   killed import leaves DATABASE as it was. `riskgraph load DIR --neo4j-import` drives it
#   (stop, import, start, schema); see docs/ARCHITECTURE.md, "Loading a world".
#
# Environment (all optional):
#   NEO4J_PASSWORD      password of user "neo4j"   (default: riskgraph-dev-pw)
#   NEO4J_BOLT_PORT     Bolt port on 127.0.0.1     (default: 7687)
#   NEO4J_HOME_DIR      cache/home dir             (default: <repo>/.cache/neo4j)
#   NEO4J_VERSION       org.neo4j:neo4j version    (default: 5.26.30)
#   NEO4J_START_TIMEOUT seconds to wait for Bolt   (default: 120)
#   NEO4J_HEAP_MAX / NEO4J_PAGECACHE  memory       (default: 2g / 1g)
#   NEO4J_JVM_EXTRA     more JVM flags, space-separated (e.g. GC logging)
#   JAVA_HOME, PYTHON   JDK and Python to use
# Exit codes: 0 ok; status: 3 when stopped; 1 on any error.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${NEO4J_HOME_DIR:-$REPO_ROOT/.cache/neo4j}"
VERSION="${NEO4J_VERSION:-5.26.30}"
PASSWORD="${NEO4J_PASSWORD:-riskgraph-dev-pw}"
BOLT_PORT="${NEO4J_BOLT_PORT:-7687}"
TIMEOUT="${NEO4J_START_TIMEOUT:-120}"
HEAP_MAX="${NEO4J_HEAP_MAX:-2g}"
PAGECACHE="${NEO4J_PAGECACHE:-1g}"
PYTHON="${PYTHON:-python3}"
LIB="$HOME_DIR/lib" CONF="$HOME_DIR/conf" DATA="$HOME_DIR/data" LOGS="$HOME_DIR/logs"
PID_FILE="$HOME_DIR/run/neo4j.pid" LOG="$HOME_DIR/logs/console.log"
# A hash (not the password) of the password the store was initialised with,
# so a changed NEO4J_PASSWORD is caught before starting instead of as auth errors.
PW_MARK="$DATA/.initial-password.sha256"
if [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"
elif [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
else JAVA=java; fi

# The JVM flags the official 5.26 launcher uses: the distribution's neo4j.conf
# `server.jvm.additional` defaults plus -Dfile.encoding from its Bootloader.
# The --add-opens/--enable-native-access ones are required (Netty, page cache,
# native I/O); we drop -XX:+AlwaysPreTouch so the heap isn't committed up front
# on a small machine shared with the test suite.
JVM_FLAGS=(
  -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow
  -XX:+UnlockExperimentalVMOptions -XX:+TrustFinalNonStaticFields -XX:+DisableExplicitGC
  -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true
  -Djdk.tls.ephemeralDHKeySize=2048 -Djdk.tls.rejectClientInitiatedRenegotiation=true
  -XX:FlightRecorderOptions=stackdepth=256 -XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --enable-native-access=ALL-UNNAMED
  -Dlog4j2.disable.jmx=true -Dlog4j.layout.jsonTemplate.maxStringLength=32768
  -Xms1g "-Xmx$HEAP_MAX" -Dfile.encoding=UTF-8
)
# Extra JVM flags for an operator (GC logging, a pause-time goal), space-separated.
# shellcheck disable=SC2206
if [[ -n "${NEO4J_JVM_EXTRA:-}" ]]; then JVM_FLAGS+=(${NEO4J_JVM_EXTRA}); fi

die() { echo "neo4j.sh: $*" >&2; exit 1; }
admin() { NEO4J_HOME="$HOME_DIR" NEO4J_CONF="$CONF" "$JAVA" -cp "$LIB/*" org.neo4j.cli.AdminTool "$@"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$BOLT_PORT") 2>/dev/null; }
# Where the running server listens: read from its conf, since NEO4J_BOLT_PORT
# in this shell may differ from the one it was started with.
bolt_addr() { echo "bolt://$(sed -n 's/^server.bolt.listen_address=//p' "$CONF/neo4j.conf" 2>/dev/null)"; }

# Our server's pid, or nothing. Checks the command line so a stale pid file
# whose pid got reused by another process never gets signalled.
running_pid() {
  local pid cmd; pid="$(cat "$PID_FILE" 2>/dev/null)" || return 0
  cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 0
  if [[ "$cmd" == *CommunityEntryPoint*"--home-dir=$HOME_DIR "* ]]; then echo "$pid"; fi
}

install() {
  if [[ -f "$LIB/.installed-$VERSION" ]]; then echo "Neo4j $VERSION already installed in $LIB"; return; fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  echo "Resolving org.neo4j:neo4j:$VERSION and its runtime jars from Maven Central..."
  mkdir -p "$HOME_DIR"
  cat >"$HOME_DIR/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.riskgraph</groupId><artifactId>neo4j-server</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.neo4j</groupId><artifactId>neo4j</artifactId><version>$VERSION</version></dependency>
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.8.1</version>
  </plugin></plugins></build>
</project>
EOF
  rm -rf "$LIB"   # a half-finished copy or another version must not mix in
  # Output goes to a log: Debian's mvn prints stray colour codes even with -q -B.
  mvn -q -B -f "$HOME_DIR/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" \
    -DincludeScope=runtime >"$HOME_DIR/mvn.log" 2>&1 || { cat "$HOME_DIR/mvn.log" >&2; die "mvn failed"; }
  compgen -G "$LIB/neo4j-$VERSION.jar" >/dev/null || die "neo4j-$VERSION.jar missing after mvn"
  # `import` needs neo4j-admin's importer: a runtime dependency of org.neo4j:neo4j (checked
  # with 5.26.30), so it comes with the server's jars; checked here in case that changes.
  compgen -G "$LIB/neo4j-import-tool-$VERSION.jar" >/dev/null || die "neo4j-import-tool-$VERSION.jar missing after mvn"
  touch "$LIB/.installed-$VERSION"
  write_conf
  echo "Installed Neo4j $VERSION ($(compgen -G "$LIB/*.jar" | wc -l) jars) in $LIB"
}

write_conf() {
  # Rewritten on every start so NEO4J_BOLT_PORT etc. take effect. Only Bolt on
  # loopback; HTTP/HTTPS off: nothing here is reachable from other hosts.
  mkdir -p "$CONF" "$DATA" "$LOGS" "$HOME_DIR/run" "$HOME_DIR/import" "$HOME_DIR/plugins"
  cat >"$CONF/neo4j.conf" <<EOF
# Generated by scripts/neo4j.sh -- edits are overwritten.
server.directories.data=$DATA
server.directories.logs=$LOGS
server.directories.run=$HOME_DIR/run
server.directories.lib=$LIB
server.directories.plugins=$HOME_DIR/plugins
server.directories.import=$HOME_DIR/import
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.bolt.enabled=true
server.bolt.listen_address=127.0.0.1:$BOLT_PORT
server.http.enabled=false
server.https.enabled=false
dbms.security.auth_enabled=true
dbms.usage_report.enabled=false
# Sized for a 2-core / 24 GiB machine that also runs the test suite.
server.memory.heap.initial_size=1g
server.memory.heap.max_size=$HEAP_MAX
server.memory.pagecache.size=$PAGECACHE
# Keep dev/CI disk use bounded.
db.tx_log.rotation.retention_policy=1 days 512M
# The Bolt server's Netty loops wait this many quiet seconds each on shutdown (default 5, twice):
# 10 of the 11 s a stop took. An offline import stops and starts the server.
internal.dbms.bolt.netty_server_shutdown_quiet_period=0
EOF
}

init_password() {
  local want; want="$(printf '%s' "$PASSWORD" | sha256sum | cut -d' ' -f1)"
  if [[ -d "$DATA/databases/system" ]]; then
    # The system database exists: the password lives there now and
    # set-initial-password would be silently ignored.
    [[ ! -f "$PW_MARK" || "$(cat "$PW_MARK")" == "$want" ]] || die \
      "the store in $DATA was initialised with a different password than NEO4J_PASSWORD;" \
      "use that password, or run '$0 stop' and delete $DATA to start from scratch"
    return
  fi
  admin dbms set-initial-password "$PASSWORD" >/dev/null || die "neo4j-admin set-initial-password failed"
  echo "$want" >"$PW_MARK"
}

# 0 = Bolt accepts our credentials, 1 = not ready yet, 2 = wrong password.
bolt_check() {
  port_open || return 1
  "$PYTHON" -c 'import neo4j' 2>/dev/null || return 0   # no driver: TCP answer is all we can check
  NEO4J_URI="bolt://127.0.0.1:$BOLT_PORT" NEO4J_PASSWORD="$PASSWORD" "$PYTHON" - <<'EOF' 2>/dev/null
import os, sys, neo4j
try:
    with neo4j.GraphDatabase.driver(os.environ["NEO4J_URI"], auth=("neo4j", os.environ["NEO4J_PASSWORD"])) as d:
        d.verify_connectivity()
except neo4j.exceptions.AuthError:
    sys.exit(2)
except Exception:
    sys.exit(1)
EOF
}

start() {
  local pid rc t0=$SECONDS
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then echo "Neo4j already running (pid $pid) on $(bolt_addr)"; return; fi
  install
  [[ "$("$JAVA" -version 2>&1)" =~ version\ \"(17|21)[.\"] ]] || die "$JAVA is not Java 17 or 21 (Neo4j 5.26 supports only those)"
  port_open && die "port $BOLT_PORT is already in use by another process"
  write_conf
  init_password
  rm -f "$PID_FILE"
  echo "==== $(date -u +%FT%TZ) start" >>"$LOG"
  # setsid+nohup: the server outlives this shell and CI steps; the inner bash
  # records its own pid and then becomes java, so the pid file is exact.
  # shellcheck disable=SC2016  # $$ and $0 are meant for the inner bash
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    "$JAVA" -cp "$HOME_DIR/plugins/*:$CONF:$LIB/*" "${JVM_FLAGS[@]}" \
    org.neo4j.server.CommunityEntryPoint --home-dir="$HOME_DIR" --config-dir="$CONF" \
    >>"$LOG" 2>&1 </dev/null &
  local state="did not answer on Bolt within ${TIMEOUT}s"
  while (( SECONDS - t0 < TIMEOUT )); do
    sleep 1
    if [[ -z "$(running_pid)" ]]; then
      [[ -f "$PID_FILE" ]] && { state="exited during startup"; break; }
      continue   # the launcher has not written the pid file yet
    fi
    rc=0; bolt_check || rc=$?
    if (( rc == 0 )); then
      echo "Neo4j $VERSION running (pid $(running_pid)) on bolt://127.0.0.1:$BOLT_PORT, ready in $((SECONDS - t0))s"
      return
    fi
    if (( rc == 2 )); then
      state="came up but rejects NEO4J_PASSWORD for user neo4j (store initialised with another password?)"; break
    fi
  done
  echo "neo4j.sh: Neo4j $state; last log lines:" >&2
  tail -n 30 "$LOG" "$LOGS/neo4j.log" >&2 2>/dev/null || true
  stop >/dev/null   # don't leave a half-started or unusable server behind for the next `start`
  exit 1
}

stop() {
  local pid; pid="$(running_pid)"
  if [[ -z "$pid" ]]; then echo "Neo4j not running"; rm -f "$PID_FILE"; return; fi
  kill -TERM "$pid"   # SIGTERM runs Neo4j's shutdown hook: checkpoint + clean close
  # running_pid rather than kill -0: an exited-but-unreaped (zombie) java counts as stopped.
  for _ in $(seq 60); do [[ -n "$(running_pid)" ]] || break; sleep 1; done
  if [[ -n "$(running_pid)" ]]; then echo "Neo4j did not stop within 60s, killing" >&2; kill -KILL "$pid"; fi
  rm -f "$PID_FILE"
  echo "Neo4j stopped"
}

import_database() {
  local db="${1:-}"; shift || true
  [[ "$db" =~ ^[A-Za-z][A-Za-z0-9.-]*$ ]] || die "usage: $0 import DATABASE [neo4j-admin database import full options]"
  [[ -z "$(running_pid)" ]] || die "the server is running; '$0 stop' it first (neo4j-admin imports offline)"
  [[ -f "$LIB/.installed-$VERSION" && -d "$DATA/databases/system" ]] || \
    die "no server in $HOME_DIR yet; run '$0 start' once (it installs and initialises one), then '$0 stop'"
  local stage="$HOME_DIR/import-stage"
  # NOTE: a stage left by an import that was killed holds nothing the live store needs.
  rm -rf "$stage"
  mkdir -p "$stage/conf" "$stage/data"
  # NOTE: the database name goes first: --nodes and --relationships take several values and
  # would read a name after them as one more file.
  sed "s|^server.directories.data=.*|server.directories.data=$stage/data|" "$CONF/neo4j.conf" >"$stage/conf/neo4j.conf"
  echo "==== $(date -u +%FT%TZ) import $db" >>"$LOG"
  if ! NEO4J_HOME="$HOME_DIR" NEO4J_CONF="$stage/conf" "$JAVA" -cp "$LIB/*" org.neo4j.cli.AdminTool \
      database import full "$db" --report-file="$stage/import.report" "$@" >"$stage/import.log" 2>&1; then
    cat "$stage/import.log" >>"$LOG"
    grep -v '^\s*at ' "$stage/import.log" | grep -v '^\s*$' | tail -n 12 >&2 || true
    rm -rf "$stage"
    die "neo4j-admin could not import $db (full log: $LOG); $db is as it was"
  fi
  cat "$stage/import.log" >>"$LOG"
  local part
  for part in databases transactions; do
    [[ -d "$stage/data/$part/$db" ]] || die "neo4j-admin left no $part/$db in $stage/data; $db is as it was"
  done
  # The swap: renames on one disk, instant, with Ctrl-C and TERM held off. NOTE: only a
  # kill -9 in the middle of them (a window of milliseconds) could leave a store and
  # transaction logs that do not belong together (the old ones are in $stage/replaced then):
  # delete $DATA/*/$db and import again.
  mkdir -p "$stage/replaced"
  trap '' INT TERM
  for part in databases transactions; do
    if [[ -e "$DATA/$part/$db" ]]; then mv "$DATA/$part/$db" "$stage/replaced/$part"; fi
    mv "$stage/data/$part/$db" "$DATA/$part/$db"
  done
  trap - INT TERM
  grep -E '^(IMPORT DONE|Peak memory usage)|^ +[0-9]+ (nodes|relationships|properties)' "$stage/import.log" || true
  rm -rf "$stage"
}

status() {
  local pid; pid="$(running_pid)"
  if [[ -n "$pid" ]]; then echo "Neo4j running (pid $pid) on $(bolt_addr)"; return 0; fi
  echo "Neo4j stopped"; return 3
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  import) shift; import_database "$@" ;;
  *) echo "usage: $0 install|start|stop|status|import DATABASE [options]" >&2; exit 1 ;;
esac
