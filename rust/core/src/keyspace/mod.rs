//! The keyspace: key -> value, expiry, WATCH bookkeeping and stable iteration for SCAN. Commands
//! reach storage only through these methods; nothing here parses arguments or writes replies.
pub mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

pub use value::Value;

/// Keys are shared between the map and the iteration index.
pub type Key = Arc<[u8]>;

/// A fast keyed hash with a random per-process seed (collisions cannot be planned from outside).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

struct Entry {
    value: Value,
    /// Absolute expiry time in ms since the epoch.
    expire_at: Option<u64>,
    /// Position in `order` (stable while the key exists; SCAN cursors are these numbers).
    seq: u64,
}

#[derive(Default, Debug, Clone, Copy)]
pub struct KeyspaceStats {
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
}

#[derive(Default)]
pub struct Keyspace {
    map: Map<Key, Entry>,
    /// Keys in creation order: SCAN walks this, so a key present for the whole scan is returned once.
    order: BTreeMap<u64, Key>,
    next_seq: u64,
    /// (expire_at, key) for active expiry.
    expiry: BTreeSet<(u64, Key)>,
    /// key -> clients WATCHing it.
    watchers: Map<Key, Vec<u64>>,
    /// Clients whose watched keys were touched (EXEC fails for them).
    dirty: HashSet<u64>,
    /// Bumped on every write: `changes since last save` and `dirty` counters in INFO.
    pub changes: u64,
    pub stats: KeyspaceStats,
}

impl Keyspace {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn expires_count(&self) -> usize {
        self.expiry.len()
    }

    fn is_expired(e: &Entry, now: u64) -> bool {
        matches!(e.expire_at, Some(t) if t <= now)
    }

    /// Deletes `key` if its time has come. Returns true if it was deleted.
    fn expire_if_due(&mut self, key: &[u8], now: u64) -> bool {
        let due = matches!(self.map.get(key), Some(e) if Self::is_expired(e, now));
        if due {
            self.remove_entry(key);
            self.stats.expired += 1;
        }
        due
    }

    fn remove_entry(&mut self, key: &[u8]) -> Option<Value> {
        let (k, e) = self.map.remove_entry(key)?;
        self.order.remove(&e.seq);
        if let Some(t) = e.expire_at {
            self.expiry.remove(&(t, k.clone()));
        }
        self.touch(key);
        Some(e.value)
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

    /// Read access (counts hits/misses).
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Value> {
        self.expire_if_due(key, now);
        match self.map.get(key) {
            Some(e) => {
                self.stats.hits += 1;
                Some(&e.value)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Read access without touching the hit/miss statistics (TYPE, EXISTS, internal lookups).
    pub fn peek(&mut self, key: &[u8], now: u64) -> Option<&Value> {
        self.expire_if_due(key, now);
        self.map.get(key).map(|e| &e.value)
    }

    /// Write access to an existing value: the key counts as modified.
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Value> {
        self.expire_if_due(key, now);
        if self.map.contains_key(key) {
            self.touch(key);
        }
        self.map.get_mut(key).map(|e| &mut e.value)
    }

    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.expire_if_due(key, now);
        self.map.contains_key(key)
    }

    /// Stores `value` under `key`, dropping any TTL (like SET without KEEPTTL).
    pub fn insert(&mut self, key: &[u8], value: Value) {
        self.insert_with_ttl(key, value, None);
    }

    /// Stores `value`; `keep_ttl` keeps the old key's expiry.
    pub fn insert_keep_ttl(&mut self, key: &[u8], value: Value, now: u64) {
        self.expire_if_due(key, now);
        let ttl = self.map.get(key).and_then(|e| e.expire_at);
        self.insert_with_ttl(key, value, ttl);
    }

    /// Stores `value` with the given absolute expiry.
    pub fn insert_with_ttl(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) {
        self.touch(key);
        if let Some(e) = self.map.get_mut(key) {
            if e.expire_at != expire_at {
                if let Some(t) = e.expire_at {
                    let k: Key = self.order[&e.seq].clone();
                    self.expiry.remove(&(t, k));
                }
                if let Some(t) = expire_at {
                    self.expiry.insert((t, self.order[&e.seq].clone()));
                }
                e.expire_at = expire_at;
            }
            e.value = value; // the old value is dropped after the swap
            return;
        }
        let k: Key = Arc::from(key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, k.clone());
        if let Some(t) = expire_at {
            self.expiry.insert((t, k.clone()));
        }
        self.map.insert(k, Entry { value, expire_at, seq });
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
        self.map.get(key).map(|e| e.expire_at)
    }

    /// Sets or clears the expiry of an existing key; false if there is no such key.
    pub fn set_expire(&mut self, key: &[u8], at: Option<u64>, now: u64) -> bool {
        self.expire_if_due(key, now);
        let Some(e) = self.map.get_mut(key) else { return false };
        let k = self.order[&e.seq].clone();
        if let Some(t) = e.expire_at {
            self.expiry.remove(&(t, k.clone()));
        }
        if let Some(t) = at {
            self.expiry.insert((t, k));
        }
        e.expire_at = at;
        self.touch(key);
        true
    }

    /// Deletes up to `max` keys whose time has passed; returns how many.
    pub fn expire_cycle(&mut self, now: u64, max: usize) -> usize {
        let mut due = Vec::new();
        for (t, k) in self.expiry.iter() {
            if *t > now || due.len() >= max {
                break;
            }
            due.push(k.clone());
        }
        for k in &due {
            self.remove_entry(k);
            self.stats.expired += 1;
        }
        due.len()
    }

    /// Removes everything. Watched keys that existed are touched.
    pub fn flush(&mut self) {
        let watched: Vec<Key> = self.watchers.keys().filter(|k| self.map.contains_key(&k[..])).cloned().collect();
        for k in watched {
            self.touch(&k);
        }
        self.changes += self.map.len() as u64;
        // Drop the values outside the maps' own destructors (large tensors free quickly either way).
        self.map = Map::default();
        self.order = BTreeMap::new();
        self.expiry = BTreeSet::new();
    }

    /// Up to `count` keys from cursor position `cursor`; returns the next cursor (0 when done).
    pub fn scan(&mut self, cursor: u64, count: usize, now: u64, mut visit: impl FnMut(&[u8], &Value)) -> u64 {
        let mut next = 0;
        let mut expired = Vec::new();
        for (seen, (&seq, k)) in self.order.range(cursor..).enumerate() {
            if seen >= count {
                next = seq;
                break;
            }
            if let Some(e) = self.map.get(&k[..]) {
                if Self::is_expired(e, now) {
                    expired.push(k.clone());
                } else {
                    visit(k, &e.value);
                }
            }
        }
        for k in expired {
            self.expire_if_due(&k, now);
        }
        next
    }

    /// A key chosen at random (RANDOMKEY).
    pub fn random_key(&mut self, now: u64, seed: u64) -> Option<Key> {
        for attempt in 0..100u64 {
            let (&lo, _) = self.order.first_key_value()?;
            let (&hi, _) = self.order.last_key_value()?;
            let pick = lo + (seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15))) % (hi - lo + 1);
            let k = self.order.range(pick..).next().map(|(_, k)| k.clone())?;
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

    /// Sum of the values' estimated sizes (INFO, MEMORY USAGE totals).
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value, Option<u64>)> {
        self.order.values().filter_map(|k| self.map.get(&k[..]).map(|e| (k, &e.value, e.expire_at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::string(v.as_bytes().to_vec())
    }

    #[test]
    fn insert_get_remove() {
        let mut ks = Keyspace::new();
        ks.insert(b"a", s("1"));
        assert!(matches!(ks.get(b"a", 0), Some(Value::Str(v)) if v.as_slice() == b"1"));
        assert!(ks.remove(b"a", 0).is_some());
        assert!(ks.get(b"a", 0).is_none());
        assert_eq!(ks.len(), 0);
        assert_eq!(ks.order.len(), 0);
    }

    #[test]
    fn expiry_lazy_and_active() {
        let mut ks = Keyspace::new();
        ks.insert_with_ttl(b"a", s("1"), Some(100));
        ks.insert_with_ttl(b"b", s("1"), Some(200));
        assert!(ks.contains(b"a", 99));
        assert!(!ks.contains(b"a", 100));
        assert_eq!(ks.expire_cycle(250, 10), 1);
        assert_eq!(ks.len(), 0);
        assert_eq!(ks.expires_count(), 0);
    }

    #[test]
    fn overwrite_drops_ttl_unless_kept() {
        let mut ks = Keyspace::new();
        ks.insert_with_ttl(b"a", s("1"), Some(100));
        ks.insert_keep_ttl(b"a", s("2"), 0);
        assert_eq!(ks.expire_at(b"a", 0), Some(Some(100)));
        ks.insert(b"a", s("3"));
        assert_eq!(ks.expire_at(b"a", 0), Some(None));
        assert_eq!(ks.expires_count(), 0);
    }

    #[test]
    fn scan_returns_stable_keys_once() {
        let mut ks = Keyspace::new();
        for i in 0..100 {
            ks.insert(format!("k{i}").as_bytes(), s("x"));
        }
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = ks.scan(cursor, 7, 0, |k, _| seen.push(k.to_vec()));
            // churn: delete and add keys during the scan
            ks.remove(b"k99", 0);
            ks.insert(b"new", s("y"));
            if cursor == 0 {
                break;
            }
        }
        for i in 0..99 {
            let k = format!("k{i}").into_bytes();
            assert_eq!(seen.iter().filter(|x| **x == k).count(), 1);
        }
    }

    #[test]
    fn watch_marks_dirty() {
        let mut ks = Keyspace::new();
        ks.watch(b"w", 7);
        ks.insert(b"other", s("1"));
        assert!(!ks.is_dirty(7));
        ks.insert(b"w", s("1"));
        assert!(ks.is_dirty(7));
        assert!(ks.unwatch_all(&[b"w".to_vec()], 7));
        assert!(!ks.is_dirty(7));
    }
}
