//! The keyspace: key -> value, expiry, WATCH bookkeeping, SCAN, access tracking (LRU/LFU) and
//! the choice of keys to evict. Commands reach storage only through these methods; nothing here
//! parses arguments or writes replies.
pub mod evict;
pub mod table;
pub mod value;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use evict::{EvictionConfig, Policy};
use table::{chained, Chained, KeyBuf, Rng, Table};
pub use value::Value;

/// A key handed out of the keyspace (RANDOMKEY, snapshots).
pub type Key = Arc<[u8]>;

/// A fast keyed hash with a random per-process seed (collisions cannot be planned from outside).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Set in `Node::meta` when the key has an entry in the TTL table.
const HAS_TTL: u32 = 1 << 31;
const ACCESS: u32 = (1 << evict::ACCESS_BITS) - 1;

/// One key: its name (inline when short), its value, and in the key's spare word Redis's 24-bit
/// access field plus flags.
pub struct Node {
    next: Option<Box<Node>>,
    key: KeyBuf,
    value: Value,
}

impl Node {
    fn meta(&self) -> u32 {
        self.key.extra()
    }

    fn set_meta(&mut self, m: u32) {
        self.key.set_extra(m);
    }

    fn has_ttl(&self) -> bool {
        self.meta() & HAS_TTL != 0
    }
}

chained!(Node);

/// A key's expiry, kept only for keys that have one.
struct TtlNode {
    next: Option<Box<TtlNode>>,
    key: KeyBuf,
    /// Absolute expiry time in ms since the epoch.
    at: u64,
}

chained!(TtlNode);

#[derive(Default, Debug, Clone, Copy)]
pub struct KeyspaceStats {
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub evicted: u64,
}

pub struct Keyspace {
    table: Table<Node>,
    /// key -> expiry for the keys that have one (active expiry and volatile-* sample this).
    ttl: Table<TtlNode>,
    /// Where the active expiry cycle goes on in `ttl`.
    expire_cursor: u64,
    /// key -> clients WATCHing it.
    watchers: Map<Key, Vec<u64>>,
    /// Clients whose watched keys were touched (EXEC fails for them).
    dirty: HashSet<u64>,
    /// Bumped on every write: `changes since last save` and `dirty` counters in INFO.
    pub changes: u64,
    pub stats: KeyspaceStats,
    eviction: EvictionConfig,
    pool: evict::Pool,
    rng: Rng,
}

impl Default for Keyspace {
    fn default() -> Self {
        let seed = std::hash::BuildHasher::hash_one(&foldhash::fast::RandomState::default(), 0x5eed_u64);
        Keyspace {
            table: Table::default(),
            ttl: Table::default(),
            expire_cursor: 0,
            watchers: Map::default(),
            dirty: HashSet::new(),
            changes: 0,
            stats: KeyspaceStats::default(),
            eviction: EvictionConfig::default(),
            pool: evict::Pool::default(),
            rng: Rng::new(seed),
        }
    }
}

impl Keyspace {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn expires_count(&self) -> usize {
        self.ttl.len()
    }

    /// Follows a new eviction configuration (CONFIG SET maxmemory-policy and friends).
    pub fn set_eviction(&mut self, cfg: EvictionConfig) {
        if cfg != self.eviction {
            self.pool.clear();
        }
        self.eviction = cfg;
    }

    pub fn eviction(&self) -> &EvictionConfig {
        &self.eviction
    }

    fn ttl_of(&self, n: &Node) -> Option<u64> {
        if n.has_ttl() {
            self.ttl.get(n.key()).map(|t| t.at)
        } else {
            None
        }
    }

    fn is_expired(&self, n: &Node, now: u64) -> bool {
        matches!(self.ttl_of(n), Some(t) if t <= now)
    }

    /// Deletes `key` if its time has come. Returns true if it was deleted.
    fn expire_if_due(&mut self, key: &[u8], now: u64) -> bool {
        let due = matches!(self.table.get(key), Some(n) if self.is_expired(n, now));
        if due {
            self.remove_entry(key);
            self.stats.expired += 1;
        }
        due
    }

    fn remove_entry(&mut self, key: &[u8]) -> Option<Value> {
        let node = self.table.remove(key)?;
        if node.has_ttl() {
            self.ttl.remove(key);
        }
        self.touch(key);
        Some(node.value)
    }

    /// Marks `key` as modified for WATCH and the change counter.
    pub fn touch(&mut self, key: &[u8]) {
        self.changes += 1;
        if !self.watchers.is_empty() {
            if let Some(ids) = self.watchers.get(key) {
                self.dirty.extend(ids.iter().copied());
            }
        }
    }

    /// Read access (counts hits/misses; the key counts as used for LRU/LFU).
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Value> {
        self.expire_if_due(key, now);
        match self.table.get_mut(key) {
            Some(n) => {
                stamp(&self.eviction, &mut self.rng, n, now);
                self.stats.hits += 1;
                Some(&n.value)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Read access without touching the hit/miss statistics or the access time (TYPE, EXISTS,
    /// OBJECT, internal lookups).
    pub fn peek(&mut self, key: &[u8], now: u64) -> Option<&Value> {
        self.expire_if_due(key, now);
        self.table.get(key).map(|n| &n.value)
    }

    /// Write access to an existing value: the key counts as modified.
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Value> {
        self.expire_if_due(key, now);
        self.table.get(key)?;
        self.touch(key);
        let n = self.table.get_mut(key)?;
        stamp(&self.eviction, &mut self.rng, n, now);
        Some(&mut n.value)
    }

    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.expire_if_due(key, now);
        self.table.get(key).is_some()
    }

    /// Stores `value` under `key`, dropping any TTL (like SET without KEEPTTL).
    pub fn insert(&mut self, key: &[u8], value: Value) {
        self.insert_with_ttl(key, value, None);
    }

    /// Stores `value`; `keep_ttl` keeps the old key's expiry.
    pub fn insert_keep_ttl(&mut self, key: &[u8], value: Value, now: u64) {
        self.expire_if_due(key, now);
        let ttl = self.table.get(key).and_then(|n| self.ttl_of(n));
        self.insert_with_ttl(key, value, ttl);
    }

    /// Stores `value` with the given absolute expiry.
    pub fn insert_with_ttl(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) {
        self.touch(key);
        let now = crate::server::now_ms();
        let (old, had_ttl) = match self.table.get_mut(key) {
            Some(n) => {
                // an overwrite is a use of the key: LFU keeps its counter, LRU restarts the clock
                stamp(&self.eviction, &mut self.rng, n, now);
                (Some(std::mem::replace(&mut n.value, value)), n.has_ttl())
            }
            None => {
                let mut k = KeyBuf::new(key);
                k.set_extra(self.eviction.fresh(now));
                self.table.insert_new(Box::new(Node { next: None, key: k, value }));
                (None, false)
            }
        };
        if expire_at.is_some() || had_ttl {
            self.put_ttl(key, expire_at);
        }
        drop(old); // the old value is dropped after the swap
    }

    /// Sets (Some) or clears (None) the TTL entry of an existing key.
    fn put_ttl(&mut self, key: &[u8], at: Option<u64>) {
        let Some(n) = self.table.get_mut(key) else { return };
        match at {
            Some(t) => {
                n.set_meta(n.meta() | HAS_TTL);
                match self.ttl.get_mut(key) {
                    Some(e) => e.at = t,
                    None => {
                        self.ttl.insert_new(Box::new(TtlNode { next: None, key: KeyBuf::new(key), at: t }));
                    }
                }
            }
            None => {
                if n.has_ttl() {
                    n.set_meta(n.meta() & !HAS_TTL);
                    self.ttl.remove(key);
                }
            }
        }
    }

    pub fn remove(&mut self, key: &[u8], now: u64) -> Option<Value> {
        if self.expire_if_due(key, now) {
            return None;
        }
        self.remove_entry(key)
    }

    /// Absolute expiry of `key` (None: no key; Some(None): no TTL).
    pub fn expire_at(&mut self, key: &[u8], now: u64) -> Option<Option<u64>> {
        self.expire_if_due(key, now);
        self.table.get(key).map(|n| self.ttl_of(n))
    }

    /// Sets or clears the expiry of an existing key; false if there is no such key.
    pub fn set_expire(&mut self, key: &[u8], at: Option<u64>, now: u64) -> bool {
        self.expire_if_due(key, now);
        if self.table.get(key).is_none() {
            return false;
        }
        self.put_ttl(key, at);
        self.touch(key);
        true
    }

    /// Deletes keys whose time has passed, walking the TTL table from where the last cycle
    /// stopped: `max` keys looked at, more while over a quarter of them were due. Returns how
    /// many were deleted.
    pub fn expire_cycle(&mut self, now: u64, max: usize) -> usize {
        let (mut checked, mut deleted) = (0usize, 0usize);
        let mut due: Vec<Vec<u8>> = Vec::new();
        let limit = max.saturating_mul(10);
        let start_len = self.ttl.len();
        loop {
            let cursor = self.ttl.scan_bucket(self.expire_cursor, |t| {
                checked += 1;
                if t.at <= now {
                    due.push(t.key().to_vec());
                }
            });
            self.expire_cursor = cursor;
            for k in due.drain(..) {
                self.remove_entry(&k);
                self.stats.expired += 1;
                deleted += 1;
            }
            let enough = checked >= max && deleted * 4 <= checked;
            if cursor == 0 || enough || checked >= limit || checked >= start_len.max(1) * 2 {
                break;
            }
        }
        deleted
    }

    /// Removes everything. Watched keys that existed are touched.
    pub fn flush(&mut self) {
        let watched: Vec<Key> = self.watchers.keys().filter(|k| self.table.get(k).is_some()).cloned().collect();
        for k in watched {
            self.touch(&k);
        }
        self.changes += self.table.len() as u64;
        self.table.clear();
        self.ttl.clear();
        self.pool.clear();
        self.expire_cursor = 0;
    }

    /// Keys from cursor position `cursor`, about `count` of them (Redis's SCAN: whole buckets,
    /// so a few more or fewer); returns the next cursor (0 when done). A key present for the
    /// whole scan is returned at least once.
    pub fn scan(&mut self, cursor: u64, count: usize, now: u64, mut visit: impl FnMut(&[u8], &Value)) -> u64 {
        let mut cursor = cursor;
        let (mut got, mut steps) = (0usize, 0usize);
        let mut expired = Vec::new();
        loop {
            cursor = self.table.scan_bucket(cursor, |n| {
                if self.is_expired(n, now) {
                    expired.push(n.key().to_vec());
                } else {
                    visit(n.key(), &n.value);
                    got += 1;
                }
            });
            steps += 1;
            if cursor == 0 || got >= count || steps >= count.saturating_mul(10) {
                break;
            }
        }
        for k in expired {
            self.expire_if_due(&k, now);
        }
        cursor
    }

    /// A key chosen at random (RANDOMKEY).
    pub fn random_key(&mut self, now: u64, seed: u64) -> Option<Key> {
        self.rng.mix(seed);
        for _ in 0..100 {
            let k: Key = Key::from(self.table.random(&mut self.rng)?.key());
            if !self.expire_if_due(&k, now) {
                return Some(k);
            }
        }
        None
    }

    /// Registers a WATCH by `client` on `key`.
    pub fn watch(&mut self, key: &[u8], client: u64) {
        let ids = self.watchers.entry(Arc::from(key)).or_default();
        if !ids.contains(&client) {
            ids.push(client);
        }
    }

    /// Forgets all of `client`'s watches; returns whether any watched key was touched.
    pub fn unwatch_all(&mut self, keys: &[Vec<u8>], client: u64) -> bool {
        for k in keys {
            if let Some(ids) = self.watchers.get_mut(&k[..]) {
                ids.retain(|&c| c != client);
                if ids.is_empty() {
                    self.watchers.remove(&k[..]);
                }
            }
        }
        self.dirty.remove(&client)
    }

    /// Whether a key watched by `client` was touched since it was watched.
    pub fn is_dirty(&self, client: u64) -> bool {
        self.dirty.contains(&client)
    }

    /// Marks `client` dirty directly (a watched key expired before EXEC, etc.).
    pub fn mark_dirty(&mut self, client: u64) {
        self.dirty.insert(client);
    }

    /// Every key with its value and expiry (snapshots, AOF rewrites, AI._MODELSCAN).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value, Option<u64>)> {
        self.table.iter().map(|n| (n.key(), &n.value, self.ttl_of(n)))
    }

    /// OBJECT IDLETIME: seconds since the key was used (meaningful unless an LFU policy is on).
    pub fn idle_secs(&mut self, key: &[u8], now: u64) -> Option<u64> {
        self.expire_if_due(key, now);
        let n = self.table.get(key)?;
        Some(self.eviction.idle_ms(n.meta() & ACCESS, now) / 1000)
    }

    /// OBJECT FREQ: the decayed LFU counter (meaningful under an LFU policy).
    pub fn frequency(&mut self, key: &[u8], now: u64) -> Option<u8> {
        self.expire_if_due(key, now);
        let n = self.table.get(key)?;
        Some(self.eviction.lfu_decayed(n.meta() & ACCESS, now))
    }

    /// Deletes one key chosen by the eviction policy and returns its name; None when the policy
    /// is `noeviction` or nothing can go. Models and scripts go only when no other candidate is
    /// left. The deletion touches the key (WATCH) like any other.
    pub fn evict_one(&mut self, now: u64) -> Option<Vec<u8>> {
        let policy = self.eviction.policy;
        if policy == Policy::NoEviction {
            return None;
        }
        let victim = self.pick_victim(now, false).or_else(|| self.pick_victim(now, true))?;
        self.remove_entry(&victim)?;
        self.stats.evicted += 1;
        Some(victim)
    }

    fn candidate(&self, key: &[u8], with_ai: bool) -> Option<&Node> {
        let n = self.table.get(key)?;
        let ok = (with_ai || !n.value.is_ai_object()) && (!self.eviction.policy.volatile() || n.has_ttl());
        ok.then_some(n)
    }

    /// A victim for the current policy among the non-AI keys (or, `with_ai`, among all).
    fn pick_victim(&mut self, now: u64, with_ai: bool) -> Option<Vec<u8>> {
        let cfg = self.eviction;
        if cfg.policy.random() {
            for _ in 0..cfg.samples.max(1) * 4 {
                let k = if cfg.policy.volatile() {
                    self.ttl.random(&mut self.rng)?.key().to_vec()
                } else {
                    self.table.random(&mut self.rng)?.key().to_vec()
                };
                if self.candidate(&k, with_ai).is_some() {
                    return Some(k);
                }
            }
            return self.first_candidate(with_ai);
        }
        self.fill_pool(now, with_ai);
        if self.pool.is_empty() {
            // sampling found only protected keys: look at all of them once
            self.fill_pool_from_all(now, with_ai);
        }
        while let Some(k) = self.pool.pop_best() {
            if self.candidate(k.as_bytes(), with_ai).is_some() {
                return Some(k.as_bytes().to_vec());
            }
        }
        None
    }

    fn fill_pool(&mut self, now: u64, with_ai: bool) {
        let cfg = self.eviction;
        let mut sampled: Vec<Vec<u8>> = Vec::with_capacity(cfg.samples);
        if cfg.policy.volatile() {
            self.ttl.sample(&mut self.rng, cfg.samples, |t| sampled.push(t.key().to_vec()));
        } else {
            self.table.sample(&mut self.rng, cfg.samples, |n| sampled.push(n.key().to_vec()));
        }
        for k in sampled {
            if let Some(n) = self.candidate(&k, with_ai) {
                let score = cfg.score(n.meta() & ACCESS, self.ttl_of(n), now);
                self.pool.offer(score, &k);
            }
        }
    }

    fn fill_pool_from_all(&mut self, now: u64, with_ai: bool) {
        let cfg = self.eviction;
        let mut scored = Vec::new();
        for n in self.table.iter() {
            if self.candidate(n.key(), with_ai).is_some() {
                scored.push((cfg.score(n.meta() & ACCESS, self.ttl_of(n), now), n.key().to_vec()));
            }
        }
        for (score, k) in scored {
            self.pool.offer(score, &k);
        }
    }

    fn first_candidate(&self, with_ai: bool) -> Option<Vec<u8>> {
        self.table.iter().find(|n| self.candidate(n.key(), with_ai).is_some()).map(|n| n.key().to_vec())
    }
}

/// Records a use of `n` now in its access field.
fn stamp(cfg: &EvictionConfig, rng: &mut Rng, n: &mut Node, now: u64) {
    let access = cfg.accessed(n.meta() & ACCESS, now, rng);
    n.set_meta((n.meta() & !ACCESS) | access);
}

#[cfg(test)]
mod tests;
