//! This node among the others in front of one store: it names its store connections
//! `rf|<id>|<ip>|<port>|<near>` and PINGs every primary each second (its heartbeat), so every node
//! finds the live ones with `CLIENT LIST` (a node that stops beating is idle, then gone); the
//! settings AI.CONFIG changes are shared through the store. From the members it builds the map
//! cluster-aware clients get (CLUSTER SLOTS/SHARDS/NODES/INFO): each shard's slots point at the
//! node(s) next to it. Nothing here keeps keys.
use std::sync::Arc;

use parking_lot::Mutex;

use super::conn::{Addr, LinkError, Request};
use super::frame::decode;
use super::topology::Topology;
use super::Store;
use crate::resp::decode::RespValue;
use crate::resp::Reply;
use crate::server::{now_ms, Server};

/// A node in front of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub ip: String,
    pub port: u16,
    /// The store node it is next to (its store URL's address), or `-`.
    pub near: String,
}

impl Member {
    /// The name its store connections carry.
    pub fn conn_name(&self) -> String {
        format!("rf|{}|{}|{}|{}", self.id, self.ip, self.port, self.near)
    }

    fn parse(name: &str) -> Option<Member> {
        let mut f = name.split('|');
        if f.next()? != "rf" {
            return None;
        }
        let id = f.next()?.to_string();
        let ip = f.next()?.to_string();
        let port = f.next()?.parse().ok()?;
        let near = f.next().unwrap_or("-").to_string();
        Some(Member { id, ip, port, near })
    }
}

/// A node that has not spoken to the store for longer than this (seconds of CLIENT LIST's
/// `idle`) is left out of the map.
pub const HEARTBEAT_TIMEOUT_S: u64 = 3;

/// The store key holding the AI.CONFIG settings shared by every node.
pub const CONFIG_KEY: &[u8] = b"{redisai-fast}:config";

/// Which settings AI.CONFIG shares (CONFIG names).
const SHARED: &[&str] = &["backendspath", "model_chunk_size"];

/// Members seen at the last tick, with this node first.
#[derive(Default)]
pub struct Membership {
    pub me: Mutex<Option<Member>>,
    pub others: Mutex<Vec<Member>>,
}

/// This node's identity, once it listens (the tick starts naming connections then).
pub fn announce(server: &Server, store: &Store) {
    if store.front.is_some() {
        return; // a front is known by its store node's cluster, not by named connections
    }
    let cfg = server.config.read();
    let ip = match cfg.get("cluster-announce-ip").filter(|s| !s.is_empty()) {
        Some(ip) => ip.to_string(),
        None => cfg
            .bind()
            .split_whitespace()
            .map(|a| a.trim_start_matches('-'))
            .find(|a| !matches!(*a, "*" | "::*" | "0.0.0.0" | "::"))
            .unwrap_or("127.0.0.1")
            .to_string(),
    };
    let port = match cfg.get("cluster-announce-port").and_then(|p| p.parse::<u16>().ok()) {
        Some(p) if p > 0 => p,
        _ => cfg.port(),
    };
    let near = match &store.client.url.addr {
        Addr::Tcp(hp) => hp.clone(),
        Addr::Unix(_) => store.client.topology().shards.first().map_or("-".into(), |s| s.primary.to_string()),
    };
    let me = Member { id: server.run_id.clone(), ip, port, near };
    store.client.set_name(&me.conn_name());
    *store.members.me.lock() = Some(me);
}

/// Once a second: PING every primary (naming the connection first), read the members from the
/// first primary's CLIENT LIST, and apply the shared settings. Asynchronous: nothing waits.
pub fn tick(server: &Arc<Server>, store: &Arc<Store>) {
    if store.client.is_cluster() || store.front.is_some() {
        // a Cluster's slots move (failover, resharding): read them once a second, as well as on
        // every MOVED and broken link
        store.client.refresh_soon();
    }
    if store.front.is_some() {
        return; // a front's map is its store node's cluster
    }
    let Some(me) = store.members.me.lock().clone() else { return };
    let topo = store.client.topology();
    let name = me.conn_name();
    for (i, shard) in topo.shards.iter().enumerate() {
        let mut req = Request::command(&[b"CLIENT".as_slice(), b"SETNAME", name.as_bytes()]);
        req.push_command(&[b"PING"]);
        let mut cbs: Vec<super::conn::ReplyFn> = vec![Box::new(|_| {}), Box::new(|_| {})];
        if i == 0 {
            req.push_command(&[b"CLIENT".as_slice(), b"LIST", b"TYPE", b"normal"]);
            let store2 = store.clone();
            cbs.push(Box::new(move |r: Result<&[u8], LinkError>| {
                if let Ok(bytes) = r {
                    if let Some(RespValue::Bulk(text)) = decode(bytes) {
                        *store2.members.others.lock() = members_in(&String::from_utf8_lossy(&text), &store2);
                    }
                }
            }));
        }
        store.client.send_pipeline(&shard.primary, req, false, cbs);
    }
    let server2 = server.clone();
    store.client.send(Some(CONFIG_KEY), Request::command(&[b"HGETALL".as_slice(), CONFIG_KEY]), false, Box::new(move |r: Result<&[u8], LinkError>| {
        if let Ok(bytes) = r {
            apply_shared(&server2, bytes);
        }
    }));
}

fn members_in(client_list: &str, store: &Store) -> Vec<Member> {
    let me = store.members.me.lock().as_ref().map(|m| m.id.clone()).unwrap_or_default();
    let mut out: Vec<Member> = Vec::new();
    for line in client_list.lines() {
        let field = |k: &str| line.split(' ').find_map(|f| f.strip_prefix(k));
        let (Some(name), Some(idle)) = (field("name="), field("idle=").and_then(|v| v.parse::<u64>().ok())) else { continue };
        if idle > HEARTBEAT_TIMEOUT_S {
            continue;
        }
        if let Some(m) = Member::parse(name) {
            if m.id != me && !out.iter().any(|o| o.id == m.id) {
                out.push(m);
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Applies the settings another node shared (an HGETALL reply of CONFIG_KEY).
fn apply_shared(server: &Server, reply: &[u8]) {
    let Some(RespValue::Array(items)) = decode(reply) else { return };
    let text = |v: &RespValue| if let RespValue::Bulk(b) = v { Some(String::from_utf8_lossy(b).into_owned()) } else { None };
    let mut pairs = items.chunks(2).filter_map(|c| Some((text(c.first()?)?, text(c.get(1)?)?)));
    pairs.try_for_each(|(name, value)| {
        if SHARED.contains(&name.as_str()) && server.config.read().get(&name) != Some(value.as_str()) {
            let _ = server.config.write().set(&name, &value, true);
        }
        Some(())
    });
}

/// AI.CONFIG changed a shared setting here: writes it to the store, waiting (an admin command)
/// so that a node asked next sees it.
pub fn share(store: &Arc<Store>, name: &str, value: &str) -> Result<(), String> {
    let req = Request::command(&[b"HSET".as_slice(), CONFIG_KEY, name.as_bytes(), value.as_bytes()]);
    let reply = store.client.call(Some(CONFIG_KEY), req).map_err(|e| e.reply_line())?;
    match super::frame::error_text(&reply) {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    }
}

/// Reads the shared settings now (before AI.CONFIG GET answers).
pub fn sync(server: &Server, store: &Arc<Store>) {
    if let Ok(reply) = store.client.call(Some(CONFIG_KEY), Request::command(&[b"HGETALL".as_slice(), CONFIG_KEY])) {
        apply_shared(server, &reply);
    }
}

/// Every member, this node included, sorted by id.
pub fn members(store: &Store) -> Vec<Member> {
    let mut all = store.members.others.lock().clone();
    if let Some(me) = store.members.me.lock().clone() {
        all.push(me);
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all.dedup_by(|a, b| a.id == b.id);
    all
}

/// One shard in the map: its slot ranges and the members serving them.
pub type MapEntry = (Vec<(u16, u16)>, Vec<Member>);

/// For each store shard: its slot ranges and the members serving them, first the one that
/// clients should route to (nodes next to the shard, else one picked round robin).
pub fn slot_map(store: &Store) -> Vec<MapEntry> {
    let topo: Topology = store.client.topology();
    let all = members(store);
    topo.shards
        .iter()
        .enumerate()
        .map(|(i, shard)| {
            let primary = shard.primary.to_string();
            let mut near: Vec<Member> = all.iter().filter(|m| m.near == primary).cloned().collect();
            if near.is_empty() && !all.is_empty() {
                near.push(all[i % all.len()].clone());
            }
            (shard.ranges.clone(), near)
        })
        .collect()
}

/// The store shards this node's SCAN walks: those it is first for in the map when the map
/// spreads them over several nodes (a cluster-aware client scans every primary in the map, as
/// with Redis Cluster: redis-py's `scan_iter`), else all of them. DBSIZE, KEYS and RANDOMKEY
/// answer for the whole store (clients send them to one node).
pub fn answered_shards(store: &Store) -> Vec<usize> {
    let map = slot_map(store);
    let firsts: Vec<Option<&str>> = map.iter().map(|(_, n)| n.first().map(|m| m.id.as_str())).collect();
    let spread = firsts.iter().flatten().collect::<std::collections::HashSet<_>>().len() > 1;
    let me = store.members.me.lock().as_ref().map(|m| m.id.clone());
    let all: Vec<usize> = (0..map.len()).collect();
    if !spread || me.is_none() {
        return all;
    }
    let mine: Vec<usize> = all.iter().copied().filter(|&i| firsts[i] == me.as_deref()).collect();
    // a node first for no shard is a replica in the map: clients fan out to primaries only
    if mine.is_empty() {
        all
    } else {
        mine
    }
}

fn node_entry(out: &mut dyn Reply, m: &Member) {
    out.array(4);
    out.bulk(m.ip.as_bytes());
    out.int(m.port as i64);
    out.bulk(m.id.as_bytes());
    out.array(0);
}

/// CLUSTER SLOTS.
pub fn reply_slots(store: &Store, out: &mut dyn Reply) {
    let map = slot_map(store);
    let ranges: Vec<(u16, u16, &Vec<Member>)> = map.iter().flat_map(|(r, m)| r.iter().map(move |(a, b)| (*a, *b, m))).collect();
    out.array(ranges.len());
    for (lo, hi, nodes) in ranges {
        out.array(2 + nodes.len());
        out.int(lo as i64);
        out.int(hi as i64);
        for m in nodes {
            node_entry(out, m);
        }
    }
}

/// CLUSTER SHARDS.
pub fn reply_shards(store: &Store, out: &mut dyn Reply) {
    let map = slot_map(store);
    out.array(map.len());
    for (ranges, nodes) in &map {
        out.map(2);
        out.bulk(b"slots");
        out.array(ranges.len() * 2);
        for (lo, hi) in ranges {
            out.int(*lo as i64);
            out.int(*hi as i64);
        }
        out.bulk(b"nodes");
        out.array(nodes.len());
        for (j, m) in nodes.iter().enumerate() {
            out.map(7);
            for (k, v) in [("id", m.id.as_str()), ("ip", m.ip.as_str()), ("endpoint", m.ip.as_str())] {
                out.bulk(k.as_bytes());
                out.bulk(v.as_bytes());
            }
            out.bulk(b"port");
            out.int(m.port as i64);
            out.bulk(b"role");
            out.bulk(if j == 0 { b"master" } else { b"replica" });
            out.bulk(b"replication-offset");
            out.int(0);
            out.bulk(b"health");
            out.bulk(b"online");
        }
    }
}

/// CLUSTER NODES: one line per member; a member first for some shard is a master with those
/// slots, the others replicas of the master next to their shard.
pub fn nodes_text(store: &Store, my_id: &str) -> String {
    let map = slot_map(store);
    let now = now_ms();
    let mut text = String::new();
    for m in members(store) {
        let mine: Vec<String> = map
            .iter()
            .filter(|(_, nodes)| nodes.first().is_some_and(|f| f.id == m.id))
            .flat_map(|(r, _)| r.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }))
            .collect();
        let myself = if m.id == my_id { "myself," } else { "" };
        let (role, master) = if mine.is_empty() {
            let master = map.iter().find(|(_, n)| n.iter().any(|x| x.id == m.id)).and_then(|(_, n)| n.first()).map_or("-".to_string(), |f| f.id.clone());
            ("slave", master)
        } else {
            ("master", "-".to_string())
        };
        text += &format!("{} {}:{}@{} {myself}{role} {master} 0 {now} 1 connected", m.id, m.ip, m.port, m.port as u32 + 10000);
        for r in mine {
            text += " ";
            text += &r;
        }
        text += "\n";
    }
    text
}

/// CLUSTER INFO.
pub fn info_text(store: &Store) -> String {
    let topo = store.client.topology();
    let covered = 16384 - topo.uncovered();
    let ok = covered == 16384 && store.client.links_up();
    let known = members(store).len();
    format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{covered}\r\ncluster_slots_ok:{covered}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{known}\r\ncluster_size:{}\r\ncluster_current_epoch:1\r\ncluster_my_epoch:1\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        if ok { "ok" } else { "fail" },
        topo.shards.len()
    )
}
