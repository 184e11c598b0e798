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
    Param { name: "port", kind: Kind::Int { min: 0, max: 65535 }, default: "6379", mutable: false },
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
    Param { name: "databases", kind: Kind::Int { min: 1, max: 1 }, default: "1", mutable: false },
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
    // after serving a client the event loop polls its sockets for this many µs before it sleeps,
    // so the next request finds it awake (0 = sleep at once, as Redis does)
    Param { name: "busy-poll-us", kind: Kind::Int { min: 0, max: 1_000_000 }, default: "200", mutable: true },
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
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config { values: PARAMS.iter().map(|p| p.default.to_string()).collect(), hot: Hot::default() };
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
}

fn index_of(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    PARAMS
        .iter()
        .position(|p| p.name == lower)
        .or_else(|| PARAMS.iter().position(|p| p.name == lower.replace('-', "_")))
        .or_else(|| PARAMS.iter().position(|p| p.name == lower.replace('_', "-")))
}

impl Config {
    /// The canonical name of an option (any case, `-` or `_`), if it exists.
    pub fn canonical(name: &str) -> Option<&'static str> {
        index_of(name).map(|i| PARAMS[i].name)
    }

    /// Validates and normalises `value` for option `name`; `startup` allows immutable options.
    pub fn set(&mut self, name: &str, value: &str, startup: bool) -> Result<(), ConfigError> {
        let i = index_of(name).ok_or(ConfigError::Unknown)?;
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
        };
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        index_of(name).map(|i| self.values[i].as_str())
    }

    fn num(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// (name, value) of every option whose name matches the glob `pattern` (case-insensitive).
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, &str)> {
        PARAMS
            .iter()
            .zip(&self.values)
            .filter(|(p, _)| crate::glob::glob_match(pattern, p.name.as_bytes(), true))
            .map(|(p, v)| (p.name, v.as_str()))
            .collect()
    }

    pub fn port(&self) -> u16 {
        self.num("port") as u16
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
