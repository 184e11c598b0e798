//! The keyspace's hash table: a chained table (as Redis's dict) of boxed nodes that hold their key
//! inline, with Redis's reverse-binary SCAN cursor and random sampling. It knows keys and nodes
//! only: values, expiry and eviction are the keyspace's business.
use std::hash::BuildHasher;

/// Keys up to this many bytes live inside the node; longer ones get their own allocation.
const INLINE_KEY: usize = 18;
/// The smallest bucket array once the table holds anything.
const MIN_BUCKETS: usize = 4;

/// A key as a node stores it: inline when short (no allocation of its own), with a 32-bit word
/// its owner may use in what would be padding (the keyspace keeps a key's access field there).
#[derive(Clone)]
pub enum KeyBuf {
    Inline { extra: u32, len: u8, bytes: [u8; INLINE_KEY] },
    Heap { extra: u32, bytes: Box<[u8]> },
}

impl KeyBuf {
    pub fn new(key: &[u8]) -> KeyBuf {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            KeyBuf::Inline { extra: 0, len: key.len() as u8, bytes }
        } else {
            KeyBuf::Heap { extra: 0, bytes: key.into() }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            KeyBuf::Inline { len, bytes, .. } => &bytes[..*len as usize],
            KeyBuf::Heap { bytes, .. } => bytes,
        }
    }

    pub fn extra(&self) -> u32 {
        match self {
            KeyBuf::Inline { extra, .. } | KeyBuf::Heap { extra, .. } => *extra,
        }
    }

    pub fn set_extra(&mut self, v: u32) {
        match self {
            KeyBuf::Inline { extra, .. } | KeyBuf::Heap { extra, .. } => *extra = v,
        }
    }
}

/// What the table needs from the nodes it chains.
pub trait Chained: Sized {
    fn key(&self) -> &[u8];
    fn next(&mut self) -> &mut Option<Box<Self>>;
    fn next_ref(&self) -> Option<&Self>;
}

/// `Chained` for a node type with `next: Option<Box<Self>>` and `key: KeyBuf` fields.
macro_rules! chained {
    ($t:ty) => {
        impl $crate::keyspace::table::Chained for $t {
            fn key(&self) -> &[u8] {
                self.key.as_bytes()
            }
            fn next(&mut self) -> &mut Option<Box<Self>> {
                &mut self.next
            }
            fn next_ref(&self) -> Option<&Self> {
                self.next.as_deref()
            }
        }
    };
}
pub(crate) use chained;

/// A chained hash table with a power-of-two bucket array. It grows when it holds as many nodes as
/// buckets and shrinks when under an eighth full, rehashing at once (like the std HashMap it
/// replaced; Redis spreads this over later commands).
pub struct Table<N: Chained> {
    buckets: Vec<Option<Box<N>>>,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

impl<N: Chained> Default for Table<N> {
    fn default() -> Self {
        Table { buckets: Vec::new(), len: 0, hasher: foldhash::fast::RandomState::default() }
    }
}

/// Reverses the bits of a cursor (SCAN's reverse-binary increment).
fn rev(v: u64) -> u64 {
    v.reverse_bits()
}

impl<N: Chained> Table<N> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Buckets in the array (0 when nothing was ever stored).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    fn index(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) & (self.buckets.len() - 1)
    }

    pub fn get(&self, key: &[u8]) -> Option<&N> {
        if self.len == 0 {
            return None;
        }
        let mut cur = self.buckets[self.index(key)].as_deref();
        while let Some(n) = cur {
            if n.key() == key {
                return Some(n);
            }
            cur = n.next_ref();
        }
        None
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut N> {
        if self.len == 0 {
            return None;
        }
        let i = self.index(key);
        let mut cur = self.buckets[i].as_deref_mut();
        while let Some(n) = cur {
            if n.key() == key {
                return Some(n);
            }
            cur = n.next().as_deref_mut();
        }
        None
    }

    /// Adds a node whose key is not in the table yet (the caller checked).
    pub fn insert_new(&mut self, mut node: Box<N>) -> &mut N {
        if self.len >= self.buckets.len() {
            self.resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let i = self.index(node.key());
        *node.next() = self.buckets[i].take();
        self.len += 1;
        self.buckets[i].insert(node)
    }

    /// Unlinks the node with `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<Box<N>> {
        if self.len == 0 {
            return None;
        }
        let i = self.index(key);
        let mut link = &mut self.buckets[i];
        loop {
            match link {
                None => return None,
                Some(n) if n.key() == key => {
                    let mut node = link.take()?;
                    *link = node.next().take();
                    self.len -= 1;
                    self.maybe_shrink();
                    return Some(node);
                }
                Some(n) => link = n.next(),
            }
        }
    }

    fn maybe_shrink(&mut self) {
        let n = self.buckets.len();
        if n > MIN_BUCKETS && self.len * 8 < n {
            self.resize((self.len * 2).next_power_of_two().max(MIN_BUCKETS));
        }
    }

    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.buckets, (0..size).map(|_| None).collect());
        let mask = size - 1;
        for mut chain in old {
            while let Some(mut node) = chain {
                chain = node.next().take();
                let i = (self.hasher.hash_one(node.key()) as usize) & mask;
                *node.next() = self.buckets[i].take();
                self.buckets[i] = Some(node);
            }
        }
    }

    /// Drops every node.
    pub fn clear(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        self.len = 0;
        for mut chain in old {
            // unlink one by one: dropping a long chain recursively could overflow the stack
            while let Some(mut node) = chain {
                chain = node.next().take();
            }
        }
    }

    /// Visits the nodes of bucket `cursor` (taken modulo the array size) and returns the next
    /// cursor, 0 when the walk is complete. Redis's reverse-binary cursor: a key present for the
    /// whole walk is visited at least once even when the table grows or shrinks in between.
    pub fn scan_bucket(&self, cursor: u64, mut visit: impl FnMut(&N)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut cur = self.buckets[(cursor & mask) as usize].as_deref();
        while let Some(n) = cur {
            visit(n);
            cur = n.next_ref();
        }
        let mut v = cursor | !mask;
        v = rev(v);
        v = v.wrapping_add(1);
        rev(v)
    }

    /// A node chosen at random: a random non-empty bucket, then a random node of its chain.
    pub fn random(&self, rng: &mut Rng) -> Option<&N> {
        if self.len == 0 {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let mut i = rng.next_u64() as usize & mask;
        // the table is at least an eighth full, so a few draws find a node; then walk on
        for _ in 0..32 {
            if self.buckets[i].is_some() {
                break;
            }
            i = rng.next_u64() as usize & mask;
        }
        while self.buckets[i].is_none() {
            i = (i + 1) & mask;
        }
        let mut chain = Vec::new();
        let mut cur = self.buckets[i].as_deref();
        while let Some(n) = cur {
            chain.push(n);
            cur = n.next_ref();
        }
        let pick = rng.next_u64() as usize % chain.len();
        Some(chain[pick])
    }

    /// Up to `count` nodes from consecutive buckets starting at a random one (Redis's
    /// dictGetSomeKeys: cheap, not uniform, good enough for eviction sampling).
    pub fn sample(&self, rng: &mut Rng, count: usize, mut visit: impl FnMut(&N)) {
        if self.len == 0 || count == 0 {
            return;
        }
        let mask = self.buckets.len() - 1;
        let mut i = rng.next_u64() as usize & mask;
        let (mut got, mut empty_run) = (0, 0);
        for _ in 0..self.buckets.len().min(count * 10) {
            let mut cur = self.buckets[i].as_deref();
            if cur.is_none() {
                empty_run += 1;
                // a long empty run: jump elsewhere, as Redis does
                if empty_run >= 5 && empty_run > count {
                    i = rng.next_u64() as usize & mask;
                    empty_run = 0;
                    continue;
                }
            } else {
                empty_run = 0;
            }
            while let Some(n) = cur {
                visit(n);
                got += 1;
                if got >= count {
                    return;
                }
                cur = n.next_ref();
            }
            i = (i + 1) & mask;
        }
    }

    /// Every node, in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = &N> {
        self.buckets.iter().flat_map(|b| {
            let mut cur = b.as_deref();
            std::iter::from_fn(move || {
                let n = cur?;
                cur = n.next_ref();
                Some(n)
            })
        })
    }
}

impl<N: Chained> Drop for Table<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// xorshift64*: sampling and LFU's coin flips (not for anything security-relevant).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Mixes outside entropy in (a caller's seed).
    pub fn mix(&mut self, seed: u64) {
        self.0 ^= seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if self.0 == 0 {
            self.0 = 1;
        }
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N {
        next: Option<Box<N>>,
        key: KeyBuf,
    }

    chained!(N);

    fn node(k: &str) -> Box<N> {
        Box::new(N { next: None, key: KeyBuf::new(k.as_bytes()) })
    }

    #[test]
    fn keys_inline_and_on_the_heap() {
        assert!(matches!(KeyBuf::new(&[7; 18]), KeyBuf::Inline { .. }));
        assert!(matches!(KeyBuf::new(&[7; 19]), KeyBuf::Heap { .. }));
        let mut k = KeyBuf::new(b"x");
        k.set_extra(77);
        assert_eq!((k.extra(), k.as_bytes()), (77, &b"x"[..]));
        assert_eq!(KeyBuf::new(b"abc").as_bytes(), b"abc");
        assert_eq!(KeyBuf::new(&[9; 40]).as_bytes(), &[9; 40]);
        assert_eq!(std::mem::size_of::<KeyBuf>(), 24);
    }

    #[test]
    fn insert_get_remove_grow_shrink() {
        let mut t: Table<N> = Table::default();
        for i in 0..1000 {
            t.insert_new(node(&format!("k{i}")));
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(t.bucket_count(), 1024);
        assert!(t.get(b"k999").is_some());
        assert!(t.get(b"nope").is_none());
        for i in 0..990 {
            assert!(t.remove(format!("k{i}").as_bytes()).is_some());
        }
        assert!(t.remove(b"k0").is_none());
        assert_eq!(t.len(), 10);
        assert!(t.bucket_count() <= 64);
        assert_eq!(t.iter().count(), 10);
        assert!(t.get(b"k995").is_some());
    }

    #[test]
    fn scan_survives_growth_and_shrinking() {
        let mut t: Table<N> = Table::default();
        for i in 0..100 {
            t.insert_new(node(&format!("stay{i}")));
        }
        let mut seen = std::collections::HashSet::new();
        let (mut cursor, mut round) = (0u64, 0);
        loop {
            cursor = t.scan_bucket(cursor, |n| {
                seen.insert(n.key().to_vec());
            });
            round += 1;
            // grow a lot, then shrink back, while the walk goes on
            if round == 5 {
                for i in 0..2000 {
                    t.insert_new(node(&format!("tmp{i}")));
                }
            }
            if round == 400 {
                for i in 0..2000 {
                    t.remove(format!("tmp{i}").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..100 {
            assert!(seen.contains(format!("stay{i}").as_bytes()), "stay{i} missed");
        }
    }

    #[test]
    fn random_and_sample_find_nodes() {
        let mut t: Table<N> = Table::default();
        let mut rng = Rng::new(42);
        assert!(t.random(&mut rng).is_none());
        for i in 0..50 {
            t.insert_new(node(&format!("k{i}")));
        }
        let mut picked = std::collections::HashSet::new();
        for _ in 0..2000 {
            picked.insert(t.random(&mut rng).map(|n| n.key().to_vec()));
        }
        assert!(picked.len() > 40, "{}", picked.len());
        let mut got = 0;
        t.sample(&mut rng, 5, |_| got += 1);
        assert_eq!(got, 5);
    }
}
