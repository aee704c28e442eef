#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft: broker and controller in one JVM) on 127.0.0.1, for the
# tests and for running the stream workers on one machine. Its jars come from Maven Central
# through Maven (scripts/kafka/pom.xml) and stay in Maven's cache (~/.m2): nothing to install by
# hand but Java 17+ and Maven.
#
#   scripts/kafka.sh start [--fresh]   start (idempotent), print the bootstrap address on stdout;
#                                      --fresh stops it if running and deletes its data first
#   scripts/kafka.sh stop              stop the broker this script started (SIGKILL after a timeout)
#   scripts/kafka.sh status            "running ..." (exit 0) or "not running" (exit 3)
#   scripts/kafka.sh classpath         resolve the jars and print the broker's classpath
#
# Environment:
#   FIREWATCH_KAFKA_PORT             client port (PLAINTEXT), default 39092
#   FIREWATCH_KAFKA_CONTROLLER_PORT  KRaft controller port, default client port + 1
#   FIREWATCH_KAFKA_DIR              config, data, logs and pidfile, default var/kafka
#   FIREWATCH_KAFKA_PARTITIONS       num.partitions of auto-created topics, default 1
#   FIREWATCH_KAFKA_HEAP             the JVM's -Xmx, default 512m
#   FIREWATCH_KAFKA_START_TIMEOUT    seconds to wait for the broker to answer, default 90
#   FIREWATCH_KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL, default 30
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POM=$ROOT/scripts/kafka/pom.xml
LOG4J=$ROOT/scripts/kafka/log4j2.yaml
# The resolved classpath is shared by every state dir: it depends on the pom only.
CLASSPATH_FILE=$ROOT/var/kafka/classpath.txt

say() { echo "kafka.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

HOST=127.0.0.1
PORT=${FIREWATCH_KAFKA_PORT:-39092}
[[ $PORT =~ ^[0-9]+$ ]] || die "FIREWATCH_KAFKA_PORT must be a port number, not '$PORT'"
CONTROLLER_PORT=${FIREWATCH_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
STATE=${FIREWATCH_KAFKA_DIR:-$ROOT/var/kafka}
PARTITIONS=${FIREWATCH_KAFKA_PARTITIONS:-1}
HEAP=${FIREWATCH_KAFKA_HEAP:-512m}
START_TIMEOUT=${FIREWATCH_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${FIREWATCH_KAFKA_STOP_TIMEOUT:-30}

CONFIG=$STATE/server.properties
DATA=$STATE/data
LOGS=$STATE/logs
PIDFILE=$STATE/kafka.pid
JVM_OPTS=(-Djava.awt.headless=true -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$LOGS")
NEED_TOOLS="Kafka needs Java 17+ and Maven on PATH (apt-get install openjdk-17-jre-headless maven)"

need_java() {
    command -v java >/dev/null 2>&1 || die "java not found. $NEED_TOOLS"
    local version major
    version=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
    major=${version%%.*}
    [[ $major =~ ^[0-9]+$ && $major -ge 17 ]] ||
        die "java is version '${version:-unknown}'. $NEED_TOOLS"
}

need_mvn() {
    command -v mvn >/dev/null 2>&1 || die "mvn not found. $NEED_TOOLS"
}

# The classpath file is current when it is newer than the pom and all its jars are still there.
classpath_current() {
    [[ -s $CLASSPATH_FILE && $CLASSPATH_FILE -nt $POM ]] || return 1
    local jar jars
    IFS=: read -r -a jars <"$CLASSPATH_FILE" || true # no final newline: read says EOF
    for jar in "${jars[@]}"; do
        [[ -f $jar ]] || return 1
    done
}

# Offline first (Maven's cache), online when the cache misses. The jars stay in ~/.m2.
resolve_classpath() {
    classpath_current && return 0
    need_mvn
    mkdir -p "$(dirname "$CLASSPATH_FILE")"
    local tmp=$CLASSPATH_FILE.tmp log=$CLASSPATH_FILE.mvn.log
    local goal=(-B -q -f "$POM" dependency:build-classpath -Dmdep.outputFile="$tmp")
    if ! mvn -o "${goal[@]}" >"$log" 2>&1; then
        say "fetching the Kafka jars from Maven Central into Maven's cache (first run only)"
        if ! mvn "${goal[@]}" >"$log" 2>&1; then
            cat "$log" >&2
            die "Maven could not resolve the Kafka jars (scripts/kafka/pom.xml); output above"
        fi
    fi
    mv "$tmp" "$CLASSPATH_FILE"
}

pid_of_ours() {
    # The pid in the pidfile, if that process is alive and is our broker (not a recycled pid).
    [[ -f $PIDFILE ]] || return 1
    local pid args
    pid=$(cat "$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    args=$(ps -ww -p "$pid" -o args= 2>/dev/null) || return 1
    [[ $args == *kafka.Kafka*"$CONFIG"* ]] || return 1
    echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

write_config() {
    mkdir -p "$DATA" "$LOGS"
    cat >"$CONFIG" <<EOF
# Written by scripts/kafka.sh at each start: edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA
num.partitions=$PARTITIONS
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# A restarted broker registers again only once its previous session has expired: 9 s by default.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=2000
num.network.threads=2
num.io.threads=4
EOF
}

# A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
new_cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ $id != -* ]] && break
    done
    echo "$id"
}

format_storage() {
    local classpath id
    classpath=$(cat "$CLASSPATH_FILE")
    id=$(new_cluster_id)
    # The tool logs its whole config: into logs/format/, not the broker's server.log.
    if ! java -Xmx256m "${JVM_OPTS[@]}" -Dkafka.logs.dir="$LOGS/format" -cp "$classpath" \
        kafka.tools.StorageTool format --cluster-id "$id" --config "$CONFIG" \
        >"$LOGS/format.log" 2>&1; then
        cat "$LOGS/format.log" >&2
        die "formatting $DATA failed; output above"
    fi
}

kafka_version() {
    local jar
    jar=$(tr ':' '\n' <"$CLASSPATH_FILE" | grep '/kafka_2\.13-.*\.jar$' | head -n 1)
    jar=${jar##*/kafka_2.13-}
    echo "${jar%.jar}"
}

cluster_id() {
    sed -n 's/^cluster\.id=//p' "$DATA/meta.properties"
}

# Exit 0 when the broker answers a Metadata request (v4) listing itself at HOST:PORT with our
# cluster id, 2 when another cluster answers there, 1 when nothing answers yet. Standard library
# only, so that it works before the project's virtualenv has a Kafka client.
probe() {
    python3 - "$HOST" "$PORT" "$1" <<'PY'
import socket
import struct
import sys

host, port, cluster = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def string(text):
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


# header: api_key 3 (Metadata), version 4, correlation id, client id; body: all topics, no creation
request = struct.pack(">hhi", 3, 4, 7) + string("firewatch-kafka-sh") + struct.pack(">ib", -1, 0)
try:
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.settimeout(5)
        sock.sendall(struct.pack(">i", len(request)) + request)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
            chunk = sock.recv(65536)
            if not chunk:
                sys.exit(1)
            data += chunk
except OSError:
    sys.exit(1)
pos = 4
correlation, _throttle, count = struct.unpack_from(">iii", data, pos)
pos += 12
brokers = []
for _ in range(count):
    _node, length = struct.unpack_from(">ih", data, pos)
    pos += 6
    name = data[pos : pos + length].decode()
    pos += length
    (broker_port, rack) = struct.unpack_from(">ih", data, pos)
    pos += 6 + max(rack, 0)
    brokers.append((name, broker_port))
(length,) = struct.unpack_from(">h", data, pos)
answered = data[pos + 2 : pos + 2 + length].decode() if length >= 0 else None
if correlation != 7:
    sys.exit(1)
if answered is not None and answered != cluster:
    print(f"cluster {answered} answers on {host}:{port}, not ours ({cluster})", file=sys.stderr)
    sys.exit(2)
sys.exit(0 if answered == cluster and (host, port) in brokers else 1)
PY
}

show_logs() {
    say "last lines of $LOGS/kafka.out and $LOGS/server.log:"
    tail -n 20 "$LOGS/kafka.out" >&2 2>/dev/null || true
    tail -n 30 "$LOGS/server.log" >&2 2>/dev/null || true
}

wait_ready() {
    local pid=$1 cluster status
    cluster=$(cluster_id)
    local deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            show_logs
            die "the broker exited while starting"
        fi
        status=0
        probe "$cluster" || status=$?
        [[ $status -eq 0 ]] && return 0
        if [[ $status -eq 2 ]]; then
            stop_pid "$pid"
            die "another Kafka cluster answers on $HOST:$PORT: set FIREWATCH_KAFKA_PORT"
        fi
        if ((SECONDS >= deadline)); then
            show_logs
            stop_pid "$pid"
            die "the broker did not answer on $HOST:$PORT within ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
}

stop_pid() {
    local pid=$1 waited=0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= STOP_TIMEOUT * 10)); then
            say "no exit ${STOP_TIMEOUT}s after SIGTERM: SIGKILL $pid"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$PIDFILE"
}

cmd_start() {
    local fresh=0 pid
    case ${1:-} in
        --fresh) fresh=1 ;;
        "") ;;
        *) die "unknown option '$1' (usage: kafka.sh start [--fresh])" ;;
    esac
    if pid=$(pid_of_ours); then
        if ((fresh == 0)); then
            # Already running (perhaps still starting, from another call): its own port counts.
            PORT=$(sed -n 's/^listeners=PLAINTEXT:\/\/[^:]*:\([0-9]*\),.*/\1/p' "$CONFIG")
            wait_ready "$pid"
            echo "$HOST:$PORT"
            return 0
        fi
        say "stopping the running broker (pid $pid) for --fresh"
        stop_pid "$pid"
    fi
    need_java
    local port
    for port in "$PORT" "$CONTROLLER_PORT"; do
        if port_open "$port"; then
            die "$HOST:$port is in use by another process: set FIREWATCH_KAFKA_PORT"
        fi
    done
    resolve_classpath
    if ((fresh == 1)); then
        rm -rf "$DATA" "$LOGS"
    fi
    write_config
    [[ -f $DATA/meta.properties ]] || format_storage
    local classpath
    classpath=$(cat "$CLASSPATH_FILE")
    # nohup execs java: $! is the broker itself. Its own output (JVM errors) goes to kafka.out.
    nohup java "${JVM_OPTS[@]}" -cp "$classpath" -Xms128m -Xmx"$HEAP" \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent \
        kafka.Kafka "$CONFIG" </dev/null >"$LOGS/kafka.out" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    wait_ready "$pid"
    say "Apache Kafka $(kafka_version) running (pid $pid); logs in $LOGS"
    echo "$HOST:$PORT"
}

cmd_stop() {
    local pid
    if ! pid=$(pid_of_ours); then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    stop_pid "$pid"
    say "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid=$(pid_of_ours); then
        local listeners
        listeners=$(sed -n 's/^listeners=PLAINTEXT:\/\/\([^,]*\),.*/\1/p' "$CONFIG")
        echo "running: pid $pid, bootstrap $listeners, data $DATA"
        return 0
    fi
    echo "not running"
    return 3
}

cmd_classpath() {
    resolve_classpath
    cat "$CLASSPATH_FILE"
}

case ${1:-} in
    start) cmd_start "${@:2}" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    classpath) cmd_classpath ;;
    *)
        echo "usage: scripts/kafka.sh start [--fresh] | stop | status | classpath" >&2
        exit 2
        ;;
esac
