//! Eviction as Redis does it: the eight `maxmemory-policy` choices, per-key LRU clock and LFU
//! counter (logarithmic increment, decay per `lfu-decay-time` minutes), sampling of
//! `maxmemory-samples` keys into a pool of the best candidates. It picks victims; deleting them
//! and deciding when to stop belong to the keyspace and the session.
use super::table::{KeyBuf, Rng};

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

/// Policy names in the order Redis lists them in its CONFIG SET error message.
pub const POLICY_NAMES: &[&str] =
    &["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"];

impl Policy {
    pub fn parse(name: &str) -> Option<Policy> {
        Some(match name.to_ascii_lowercase().as_str() {
            "noeviction" => Policy::NoEviction,
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => return None,
        })
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }

    /// Only keys with a TTL may go.
    pub fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    pub fn random(self) -> bool {
        matches!(self, Policy::AllkeysRandom | Policy::VolatileRandom)
    }
}

/// The eviction settings the keyspace follows (copied from the configuration when it changes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvictionConfig {
    pub policy: Policy,
    pub samples: usize,
    pub lfu_log_factor: f64,
    /// Minutes for the LFU counter to lose one (0: never decays).
    pub lfu_decay_time: u64,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig { policy: Policy::NoEviction, samples: 5, lfu_log_factor: 10.0, lfu_decay_time: 1 }
    }
}

/// The per-key access field: 24 bits as in Redis's `robj.lru`. Under LRU it is a clock in
/// seconds; under LFU the time of the last decrement in minutes (16 bits) and the counter (8 bits).
pub const ACCESS_BITS: u32 = 24;
const ACCESS_MASK: u32 = (1 << ACCESS_BITS) - 1;
/// A new key's LFU counter, so it is not evicted before it had a chance to be used.
pub const LFU_INIT_VAL: u8 = 5;

fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & ACCESS_MASK
}

fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xFFFF
}

impl EvictionConfig {
    /// The access field of a key created now.
    pub fn fresh(&self, now_ms: u64) -> u32 {
        if self.policy.is_lfu() {
            (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL as u32
        } else {
            lru_clock(now_ms)
        }
    }

    /// The access field after the key was used now.
    pub fn accessed(&self, access: u32, now_ms: u64, rng: &mut Rng) -> u32 {
        if !self.policy.is_lfu() {
            return lru_clock(now_ms);
        }
        let counter = self.lfu_decayed(access, now_ms);
        let counter = self.lfu_log_incr(counter, rng);
        (lfu_minutes(now_ms) << 8) | counter as u32
    }

    /// Redis's LFULogIncr: the counter grows with probability 1 / ((counter - 5) * factor + 1).
    fn lfu_log_incr(&self, counter: u8, rng: &mut Rng) -> u8 {
        if counter == 255 {
            return 255;
        }
        let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
        let p = 1.0 / (base * self.lfu_log_factor + 1.0);
        if rng.unit() < p {
            counter + 1
        } else {
            counter
        }
    }

    /// Redis's LFUDecrAndReturn: the counter less one per `lfu-decay-time` minutes since the last
    /// access (what OBJECT FREQ shows).
    pub fn lfu_decayed(&self, access: u32, now_ms: u64) -> u8 {
        let (then, counter) = ((access & ACCESS_MASK) >> 8, (access & 0xFF) as u8);
        let now = lfu_minutes(now_ms);
        let elapsed = if now >= then { now - then } else { 65535 - then + now } as u64;
        let periods = elapsed.checked_div(self.lfu_decay_time).unwrap_or(0);
        counter.saturating_sub(periods.min(255) as u8)
    }

    /// Milliseconds since the key was last used (LRU clock; wraps after 194 days as Redis's does).
    pub fn idle_ms(&self, access: u32, now_ms: u64) -> u64 {
        let (now, then) = (lru_clock(now_ms), access & ACCESS_MASK);
        let secs = if now >= then { now - then } else { ACCESS_MASK - then + now };
        secs as u64 * 1000
    }

    /// How much a key deserves to go (higher first): idle time, rarity, or nearness of expiry.
    pub fn score(&self, access: u32, expire_at: Option<u64>, now_ms: u64) -> u64 {
        match self.policy {
            Policy::VolatileTtl => u64::MAX - expire_at.unwrap_or(u64::MAX),
            p if p.is_lfu() => 255 - self.lfu_decayed(access, now_ms) as u64,
            _ => self.idle_ms(access, now_ms),
        }
    }
}

/// Redis's eviction pool: the best candidates seen by recent samplings, best last.
pub const POOL_SIZE: usize = 16;

#[derive(Default)]
pub struct Pool {
    entries: Vec<(u64, KeyBuf)>,
}

impl Pool {
    /// Offers a sampled key with its score.
    pub fn offer(&mut self, score: u64, key: &[u8]) {
        if let Some(i) = self.entries.iter().position(|(_, k)| k.as_bytes() == key) {
            self.entries.remove(i);
        }
        if self.entries.len() >= POOL_SIZE {
            if score <= self.entries[0].0 {
                return;
            }
            self.entries.remove(0);
        }
        let at = self.entries.partition_point(|(s, _)| *s <= score);
        self.entries.insert(at, (score, KeyBuf::new(key)));
    }

    /// The best candidate, removed from the pool.
    pub fn pop_best(&mut self) -> Option<KeyBuf> {
        self.entries.pop().map(|(_, k)| k)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lfu() -> EvictionConfig {
        EvictionConfig { policy: Policy::AllkeysLfu, ..Default::default() }
    }

    #[test]
    fn policy_names_round_trip() {
        for name in POLICY_NAMES {
            assert!(Policy::parse(name).is_some(), "{name}");
        }
        assert_eq!(Policy::parse("ALLKEYS-LRU"), Some(Policy::AllkeysLru));
        assert_eq!(Policy::parse("lru"), None);
        assert!(Policy::VolatileTtl.volatile() && !Policy::AllkeysLfu.volatile());
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let c = lfu();
        let mut rng = Rng::new(7);
        let now = 10 * 60_000;
        let mut a = c.fresh(now);
        assert_eq!(c.lfu_decayed(a, now), LFU_INIT_VAL);
        for _ in 0..100 {
            a = c.accessed(a, now, &mut rng);
        }
        let after_100 = c.lfu_decayed(a, now);
        // with factor 10, 100 hits take the counter to about 10 (Redis's table: 100 hits -> 10)
        assert!((8..=14).contains(&after_100), "{after_100}");
        // three minutes idle with lfu-decay-time 1: three less
        assert_eq!(c.lfu_decayed(a, now + 3 * 60_000), after_100 - 3);
        let never = EvictionConfig { lfu_decay_time: 0, ..c };
        assert_eq!(never.lfu_decayed(a, now + 3 * 60_000), after_100);
    }

    #[test]
    fn lru_idle_time_and_scores() {
        let c = EvictionConfig { policy: Policy::AllkeysLru, ..Default::default() };
        let a = c.fresh(5_000);
        assert_eq!(c.idle_ms(a, 65_000), 60_000);
        assert!(c.score(a, None, 65_000) > c.score(c.fresh(60_000), None, 65_000));
        let t = EvictionConfig { policy: Policy::VolatileTtl, ..Default::default() };
        assert!(t.score(0, Some(100), 0) > t.score(0, Some(200), 0));
    }

    #[test]
    fn pool_keeps_the_best() {
        let mut p = Pool::default();
        for i in 0..40u64 {
            p.offer(i, format!("k{i}").as_bytes());
        }
        p.offer(39, b"k39"); // a key offered again is not doubled
        assert_eq!(p.pop_best().map(|k| k.as_bytes().to_vec()), Some(b"k39".to_vec()));
        assert_eq!(p.pop_best().map(|k| k.as_bytes().to_vec()), Some(b"k38".to_vec()));
        let mut n = 0;
        while p.pop_best().is_some() {
            n += 1;
        }
        assert_eq!(n, POOL_SIZE - 2);
    }
}
