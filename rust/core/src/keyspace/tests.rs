//! Unit tests of the keyspace: storage, expiry, SCAN, WATCH, access tracking and eviction choices.
use super::*;

fn s(v: &str) -> Value {
    Value::string(v.as_bytes())
}

fn with_policy(p: Policy) -> Keyspace {
    let mut ks = Keyspace::new();
    ks.set_eviction(EvictionConfig { policy: p, ..Default::default() });
    ks
}

/// With more samples than keys, the choice is exact (with Redis's default of 5 it is an approximation).
fn exact(p: Policy) -> Keyspace {
    let mut ks = Keyspace::new();
    ks.set_eviction(EvictionConfig { policy: p, samples: 64, ..Default::default() });
    ks
}

#[test]
fn node_stays_small() {
    // the per-key cost the memory benchmark measures starts here
    assert!(std::mem::size_of::<Node>() <= 48, "{}", std::mem::size_of::<Node>());
    assert!(std::mem::size_of::<Value>() <= 16, "{}", std::mem::size_of::<Value>());
}

#[test]
fn insert_get_remove() {
    let mut ks = Keyspace::new();
    ks.insert(b"a", s("1"));
    assert!(matches!(ks.get(b"a", 0), Some(Value::Str(v)) if &v[..] == b"1"));
    assert!(ks.remove(b"a", 0).is_some());
    assert!(ks.get(b"a", 0).is_none());
    assert_eq!(ks.len(), 0);
    assert_eq!(ks.stats.hits, 1);
    assert_eq!(ks.stats.misses, 1);
    let long = vec![b'x'; 100];
    ks.insert(&long, s("2"));
    assert!(ks.contains(&long, 0));
}

#[test]
fn expiry_lazy_and_active() {
    let mut ks = Keyspace::new();
    ks.insert_with_ttl(b"a", s("1"), Some(100));
    ks.insert_with_ttl(b"b", s("1"), Some(200));
    ks.insert(b"c", s("1"));
    assert!(ks.contains(b"a", 99));
    assert!(!ks.contains(b"a", 100));
    assert_eq!(ks.expire_cycle(250, 10), 1);
    assert_eq!(ks.len(), 1);
    assert_eq!(ks.expires_count(), 0);
    assert_eq!(ks.stats.expired, 2);
}

#[test]
fn active_expiry_reaches_every_due_key() {
    let mut ks = Keyspace::new();
    for i in 0..5000 {
        ks.insert_with_ttl(format!("k{i}").as_bytes(), s("1"), Some(if i % 2 == 0 { 10 } else { 1_000_000 }));
    }
    let mut deleted = 0;
    for _ in 0..100 {
        deleted += ks.expire_cycle(20, 1000);
    }
    assert_eq!(deleted, 2500);
    assert_eq!(ks.expires_count(), 2500);
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
    assert!(ks.set_expire(b"a", Some(50), 0));
    assert_eq!(ks.expires_count(), 1);
    assert!(ks.set_expire(b"a", None, 0));
    assert_eq!(ks.expires_count(), 0);
    assert!(!ks.set_expire(b"nope", Some(5), 0));
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
fn scan_returns_stable_keys_while_the_table_grows() {
    let mut ks = Keyspace::new();
    for i in 0..200 {
        ks.insert(format!("stay{i}").as_bytes(), s("x"));
    }
    let mut seen = std::collections::HashSet::new();
    let (mut cursor, mut round) = (0, 0);
    loop {
        cursor = ks.scan(cursor, 10, 0, |k, _| {
            seen.insert(k.to_vec());
        });
        for j in 0..50 {
            ks.insert(format!("more{round}-{j}").as_bytes(), s("y"));
        }
        round += 1;
        if cursor == 0 {
            break;
        }
    }
    for i in 0..200 {
        assert!(seen.contains(format!("stay{i}").as_bytes()), "stay{i}");
    }
}

#[test]
fn random_key_skips_expired() {
    let mut ks = Keyspace::new();
    assert!(ks.random_key(0, 1).is_none());
    ks.insert_with_ttl(b"gone", s("1"), Some(5));
    ks.insert(b"here", s("1"));
    for seed in 0..20 {
        assert_eq!(ks.random_key(10, seed).as_deref(), Some(&b"here"[..]));
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

#[test]
fn iter_reports_expiry() {
    let mut ks = Keyspace::new();
    ks.insert_with_ttl(b"a", s("1"), Some(100));
    ks.insert(b"b", s("2"));
    let mut all: Vec<(Vec<u8>, Option<u64>)> = ks.iter().map(|(k, _, e)| (k.to_vec(), e)).collect();
    all.sort();
    assert_eq!(all, vec![(b"a".to_vec(), Some(100)), (b"b".to_vec(), None)]);
}

#[test]
fn noeviction_evicts_nothing() {
    let mut ks = Keyspace::new();
    ks.insert(b"a", s("1"));
    assert_eq!(ks.evict_one(0), None);
    assert_eq!(ks.len(), 1);
}

#[test]
fn volatile_policies_keep_keys_without_ttl() {
    for p in [Policy::VolatileLru, Policy::VolatileLfu, Policy::VolatileRandom, Policy::VolatileTtl] {
        let mut ks = with_policy(p);
        for i in 0..20 {
            ks.insert(format!("keep{i}").as_bytes(), s("1"));
        }
        for i in 0..5 {
            ks.insert_with_ttl(format!("ttl{i}").as_bytes(), s("1"), Some(u64::MAX / 2));
        }
        let mut gone = Vec::new();
        while let Some(k) = ks.evict_one(0) {
            gone.push(String::from_utf8_lossy(&k).into_owned());
        }
        gone.sort();
        assert_eq!(gone, (0..5).map(|i| format!("ttl{i}")).collect::<Vec<_>>(), "{p:?}");
        assert_eq!(ks.len(), 20);
        assert_eq!(ks.stats.evicted, 5);
    }
}

#[test]
fn volatile_ttl_drops_the_nearest_expiry_first() {
    let mut ks = exact(Policy::VolatileTtl);
    for i in 0..10u64 {
        ks.insert_with_ttl(format!("t{i}").as_bytes(), s("1"), Some(1_000_000 + i * 1000));
    }
    assert_eq!(ks.evict_one(0), Some(b"t0".to_vec()));
    assert_eq!(ks.evict_one(0), Some(b"t1".to_vec()));
}

#[test]
fn lru_keeps_recently_read_keys() {
    let mut ks = exact(Policy::AllkeysLru);
    for i in 0..50 {
        ks.insert(format!("k{i}").as_bytes(), s("1"));
    }
    // every key was created "now" (the clock); read half of them a minute later
    for i in 0..25 {
        ks.get(format!("k{i}").as_bytes(), crate::server::now_ms() + 60_000);
    }
    let later = crate::server::now_ms() + 61_000;
    for _ in 0..20 {
        let k = ks.evict_one(later).expect("a victim");
        let i: usize = String::from_utf8_lossy(&k[1..]).parse().expect("a number");
        assert!(i >= 25, "evicted recently read k{i}");
    }
}

#[test]
fn lfu_keeps_frequently_read_keys() {
    let mut ks = exact(Policy::AllkeysLfu);
    let now = crate::server::now_ms();
    for i in 0..50 {
        ks.insert(format!("k{i}").as_bytes(), s("1"));
    }
    for _ in 0..200 {
        for i in 0..10 {
            ks.get(format!("k{i}").as_bytes(), now);
        }
    }
    assert!(ks.frequency(b"k0", now).unwrap_or(0) > evict::LFU_INIT_VAL);
    for _ in 0..35 {
        let k = ks.evict_one(now).expect("a victim");
        let i: usize = String::from_utf8_lossy(&k[1..]).parse().expect("a number");
        assert!(i >= 10, "evicted frequently read k{i}");
    }
}

#[test]
fn random_policy_evicts_until_empty() {
    let mut ks = with_policy(Policy::AllkeysRandom);
    for i in 0..30 {
        ks.insert(format!("k{i}").as_bytes(), s("1"));
    }
    let mut n = 0;
    while ks.evict_one(0).is_some() {
        n += 1;
    }
    assert_eq!(n, 30);
    assert!(ks.is_empty());
}

#[test]
fn eviction_touches_watched_keys() {
    let mut ks = with_policy(Policy::AllkeysRandom);
    ks.insert(b"w", s("1"));
    ks.watch(b"w", 3);
    assert_eq!(ks.evict_one(0), Some(b"w".to_vec()));
    assert!(ks.is_dirty(3));
}

#[test]
fn models_and_scripts_go_last_under_allkeys() {
    use crate::ai::{Script, ScriptSpec};
    for p in [Policy::AllkeysLru, Policy::AllkeysLfu, Policy::AllkeysRandom] {
        let mut ks = with_policy(p);
        let spec = ScriptSpec { device: "CPU".into(), queue: "CPU".into(), tag: vec![], entry_points: vec![], source: String::new() };
        ks.insert(b"script", Value::Script(Arc::new(Script::new(spec, Arc::new(())))));
        for i in 0..10 {
            ks.insert(format!("k{i}").as_bytes(), s("1"));
        }
        for _ in 0..10 {
            assert_ne!(ks.evict_one(0).as_deref(), Some(&b"script"[..]), "{p:?}");
        }
        assert_eq!(ks.evict_one(0).as_deref(), Some(&b"script"[..]), "{p:?}");
        assert_eq!(ks.evict_one(0), None);
    }
}
