//! Per-command statistics (INFO commandstats / latencystats / errorstats, the metrics endpoint),
//! the slow log and the latency monitor. Counting a command is a few relaxed atomic adds into
//! slots indexed by its command id: no allocation, no lock on the hot path.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

/// Latency buckets: upper bounds in microseconds, powers of two from 1 µs to about 33 s, then +Inf.
pub const BUCKETS: usize = 27;

/// Upper bound of bucket `i` in microseconds (the last is +Inf).
pub fn bucket_le_us(i: usize) -> f64 {
    if i + 1 >= BUCKETS {
        // prometheus-client writes f64::MAX as `+Inf`
        f64::MAX
    } else {
        (1u64 << i) as f64
    }
}

#[inline]
fn bucket_of(us: u64) -> usize {
    // the smallest power of two >= us
    let b = if us <= 1 { 0 } else { 64 - (us - 1).leading_zeros() as usize };
    b.min(BUCKETS - 1)
}

/// A latency histogram of fixed power-of-two buckets (non-cumulative counts).
pub struct Histogram {
    pub counts: [AtomicU64; BUCKETS],
    pub sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_us: AtomicU64::new(0) }
    }
}

impl Histogram {
    #[inline]
    pub fn observe(&self, us: u64) {
        self.counts[bucket_of(us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    pub fn snapshot(&self) -> ([u64; BUCKETS], u64) {
        (std::array::from_fn(|i| self.counts[i].load(Relaxed)), self.sum_us.load(Relaxed))
    }

    /// The upper bound (µs) of the bucket holding the `p`-th percentile, or None when empty.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let (counts, _) = self.snapshot();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(if i + 1 >= BUCKETS { bucket_le_us(BUCKETS - 2) * 2.0 } else { bucket_le_us(i) });
            }
        }
        None
    }

    pub fn reset(&self) {
        self.counts.iter().for_each(|c| c.store(0, Relaxed));
        self.sum_us.store(0, Relaxed);
    }
}

/// One command's (or subcommand's) counters. Its calls and microseconds are the latency
/// histogram's count and sum (two atomic adds per command in all).
#[derive(Default)]
pub struct CommandStat {
    /// Refused before running (ACL, arity inside MULTI, OOM, ...).
    pub rejected: AtomicU64,
    /// Ran and answered an error.
    pub failed: AtomicU64,
    pub latency: Histogram,
}

impl CommandStat {
    pub fn calls(&self) -> u64 {
        self.latency.counts.iter().map(|c| c.load(Relaxed)).sum()
    }
    pub fn usec(&self) -> u64 {
        self.latency.sum_us.load(Relaxed)
    }
}

/// Counters for every command id, plus error replies by their first word (errorstats), and the
/// slow log's and latency monitor's thresholds (copied from the config, read per command).
pub struct CommandStats {
    pub by_id: Vec<CommandStat>,
    errors: Mutex<BTreeMap<String, u64>>,
    /// `slowlog-log-slower-than` in µs (-1: off).
    pub slowlog_threshold_us: std::sync::atomic::AtomicI64,
    /// `latency-monitor-threshold` in ms (0: off).
    pub latency_threshold_ms: AtomicU64,
}

impl CommandStats {
    pub fn new(ids: usize) -> CommandStats {
        CommandStats {
            by_id: (0..ids).map(|_| CommandStat::default()).collect(),
            errors: Mutex::new(BTreeMap::new()),
            slowlog_threshold_us: std::sync::atomic::AtomicI64::new(10_000),
            latency_threshold_ms: AtomicU64::new(0),
        }
    }

    /// Copies the thresholds from the config (at start and after CONFIG SET).
    pub fn configure(&self, cfg: &crate::config::Config) {
        self.slowlog_threshold_us.store(cfg.slowlog_log_slower_than(), Relaxed);
        self.latency_threshold_ms.store(cfg.latency_monitor_threshold(), Relaxed);
    }

    #[inline]
    pub fn record(&self, id: usize, us: u64, failed: bool) {
        if let Some(s) = self.by_id.get(id) {
            s.latency.observe(us);
            if failed {
                s.failed.fetch_add(1, Relaxed);
            }
        }
    }

    pub fn rejected(&self, id: usize) {
        if let Some(s) = self.by_id.get(id) {
            s.rejected.fetch_add(1, Relaxed);
        }
    }

    /// Counts an error reply under its code (`ERR`, `WRONGTYPE`, `NOPERM`, ...), as Redis does
    /// (at most 128 distinct codes are kept; replies with further codes are not counted by code).
    pub fn error(&self, line: &str) {
        let code = line.split(' ').next().unwrap_or("ERR");
        let mut e = self.errors.lock();
        if let Some(n) = e.get_mut(code) {
            *n += 1;
        } else if e.len() < 128 {
            e.insert(code.to_string(), 1);
        }
    }

    pub fn errors(&self) -> Vec<(String, u64)> {
        self.errors.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn reset(&self) {
        for s in &self.by_id {
            s.rejected.store(0, Relaxed);
            s.failed.store(0, Relaxed);
            s.latency.reset();
        }
        self.errors.lock().clear();
    }
}

/// One SLOWLOG entry.
#[derive(Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub unix_secs: u64,
    pub duration_us: u64,
    pub argv: Vec<Vec<u8>>,
    pub addr: String,
    pub name: String,
}

/// Most arguments and characters per argument a slow log entry keeps (as Redis).
const SLOWLOG_MAX_ARGC: usize = 32;
const SLOWLOG_MAX_ARGLEN: usize = 128;

#[derive(Default)]
pub struct SlowLog {
    pub entries: Mutex<VecDeque<SlowEntry>>,
    next_id: AtomicU64,
}

impl SlowLog {
    /// Adds an entry; `argv` is shortened as Redis shortens it.
    pub fn push(&self, argv: Vec<Vec<u8>>, duration_us: u64, addr: String, name: String, max_len: usize) {
        let argc = argv.len();
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(argc.min(SLOWLOG_MAX_ARGC));
        for (i, a) in argv.into_iter().enumerate() {
            if i == SLOWLOG_MAX_ARGC - 1 && argc > SLOWLOG_MAX_ARGC {
                kept.push(format!("... ({} more arguments)", argc - SLOWLOG_MAX_ARGC + 1).into_bytes());
                break;
            }
            if a.len() > SLOWLOG_MAX_ARGLEN {
                let mut s = a[..SLOWLOG_MAX_ARGLEN].to_vec();
                s.extend_from_slice(format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_ARGLEN).as_bytes());
                kept.push(s);
            } else {
                kept.push(a);
            }
        }
        let unix_secs = crate::server::now_ms() / 1000;
        let id = self.next_id.fetch_add(1, Relaxed);
        let mut e = self.entries.lock();
        e.push_front(SlowEntry { id, unix_secs, duration_us, argv: kept, addr, name });
        while e.len() > max_len {
            e.pop_back();
        }
    }
}

/// Samples the latency monitor keeps per event (Redis's 160).
const LATENCY_SAMPLES: usize = 160;

/// An event's samples (unix seconds, milliseconds) and its all-time maximum.
#[derive(Default, Clone)]
pub struct LatencyEvent {
    pub samples: VecDeque<(u64, u64)>,
    pub max_ms: u64,
}

/// The latency monitor: events (`command`, `fast-command`) slower than
/// `latency-monitor-threshold` ms, one sample per second per event (the largest).
#[derive(Default)]
pub struct LatencyMonitor {
    pub events: Mutex<BTreeMap<&'static str, LatencyEvent>>,
}

impl LatencyMonitor {
    pub fn add(&self, event: &'static str, ms: u64) {
        let now = crate::server::now_ms() / 1000;
        let mut events = self.events.lock();
        let e = events.entry(event).or_default();
        e.max_ms = e.max_ms.max(ms);
        match e.samples.back_mut() {
            Some((t, m)) if *t == now => *m = (*m).max(ms),
            _ => {
                e.samples.push_back((now, ms));
                if e.samples.len() > LATENCY_SAMPLES {
                    e.samples.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_percentiles() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(1024), 10);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let h = Histogram::default();
        for us in [1, 2, 3, 100] {
            h.observe(us);
        }
        assert_eq!(h.percentile(50.0), Some(2.0));
        assert_eq!(h.percentile(100.0), Some(128.0));
    }

    #[test]
    fn slowlog_shortens() {
        let log = SlowLog::default();
        log.push(vec![vec![b'x'; 200]; 40], 5, "a".into(), "".into(), 2);
        let e = log.entries.lock();
        assert_eq!(e[0].argv.len(), 32);
        assert_eq!(e[0].argv[31], b"... (9 more arguments)");
        assert!(e[0].argv[0].ends_with(b"... (72 more bytes)"));
    }
}
