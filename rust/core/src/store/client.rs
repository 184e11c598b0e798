//! The client of the store: a Valkey/Redis node or Cluster named by one URL. It routes each
//! request by its key's slot, follows `MOVED`/`ASK`, and reads the topology again when it moved or
//! a link broke, so resharding and failover are followed without a restart.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::conn::{Addr, Conn, Handshake, LinkError, LoopHost, ReplyFn, Request};
use super::frame::{decode, error_text};
use super::slot::key_slot;
use super::topology::{parse_redirect, Topology};

/// `store URL`: `redis://[user:password@]host:port` or `unix:///path/to.sock` (a password may
/// follow as `unix://:password@/path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreUrl {
    pub addr: Addr,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, String> {
        let bad = || format!("invalid store URL '{url}': expected redis://[user:password@]host:port or unix:///path");
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let (auth, place) = match rest.rsplit_once('@') {
            Some((a, p)) => (Some(a), p),
            None => (None, rest),
        };
        let (user, password) = match auth {
            None => (None, None),
            Some(a) => match a.split_once(':') {
                Some((u, p)) => ((!u.is_empty()).then(|| u.to_string()), Some(p.to_string())),
                None => (None, Some(a.to_string())),
            },
        };
        let addr = match scheme {
            "redis" | "valkey" => {
                let hp = place.split('/').next().unwrap_or("");
                let (host, port) = hp.rsplit_once(':').ok_or_else(bad)?;
                port.parse::<u16>().map_err(|_| bad())?;
                if host.is_empty() {
                    return Err(bad());
                }
                Addr::Tcp(hp.to_string())
            }
            "unix" if place.starts_with('/') => Addr::Unix(PathBuf::from(place)),
            _ => return Err(bad()),
        };
        Ok(StoreUrl { addr, user, password })
    }
}

/// What INFO shows about the store link.
#[derive(Default)]
pub struct StoreStats {
    pub requests: AtomicU64,
    pub moved: AtomicU64,
    pub asks: AtomicU64,
    pub link_errors: AtomicU64,
    pub refreshes: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Requests sent and not answered yet (the event loop does not busy-poll while the store
    /// works: on one machine the store needs the core it would spin on).
    pub in_flight: Arc<AtomicU64>,
}

pub struct StoreClient {
    pub url: StoreUrl,
    handshake: RwLock<Handshake>,
    /// Connections by node: RESP2 and RESP3 ones read by the host's loop (replies are passed on
    /// as they are, so a RESP3 client's commands go over a RESP3 connection), and RESP2 ones with
    /// reader threads for calls that wait (`call`: worker threads, start-up, topology reads).
    conns: [RwLock<HashMap<Addr, Arc<Conn>>>; 3],
    /// The host's loop, once it runs: connections opened from then on are read by it.
    host: RwLock<Option<Arc<dyn LoopHost>>>,
    topo: RwLock<Topology>,
    /// The TCP address (as the Cluster names it) of a node reached through `url`'s Unix socket.
    unix_alias: RwLock<Option<String>>,
    refreshing: AtomicBool,
    last_refresh: Mutex<Instant>,
    /// A cluster that serves no slots yet is a valid topology (a front's own new store node).
    allow_empty: bool,
    pub stats: StoreStats,
}

/// A reply and the node that gave it.
pub type RoutedFn = Box<dyn FnOnce(Result<&[u8], LinkError>, &Addr) + Send>;

/// Redirects followed for one request before the reply is given as it is.
const MAX_REDIRECTS: u8 = 5;
/// At most one topology read per this interval, however many requests ask for one.
const REFRESH_EVERY: Duration = Duration::from_millis(100);

impl StoreClient {
    /// Connects to the seed and reads the topology (`CLUSTER SLOTS`; a node without cluster
    /// support is a standalone store).
    pub fn connect(url: StoreUrl, name: &str, allow_empty: bool) -> Result<Arc<StoreClient>, String> {
        let handshake = Handshake { user: url.user.clone(), password: url.password.clone(), resp3: false, name: name.to_string() };
        let store = Arc::new(StoreClient {
            topo: RwLock::new(Topology::standalone(url.addr.clone())),
            url,
            handshake: RwLock::new(handshake),
            conns: [RwLock::new(HashMap::new()), RwLock::new(HashMap::new()), RwLock::new(HashMap::new())],
            host: RwLock::new(None),
            unix_alias: RwLock::new(None),
            refreshing: AtomicBool::new(false),
            last_refresh: Mutex::new(Instant::now() - REFRESH_EVERY),
            allow_empty,
            stats: StoreStats::default(),
        });
        store.read_topology(&store.url.addr.clone()).map_err(|e| format!("store {}: {e}", store.url.addr))?;
        Ok(store)
    }

    /// A copy of the current topology.
    pub fn topology(&self) -> Topology {
        self.topo.read().clone()
    }

    pub fn is_cluster(&self) -> bool {
        self.topo.read().cluster
    }

    /// The host's event loop reads the connections opened from now on; the ones opened before
    /// it ran (at start-up) are let go, so the hot path uses loop-read ones.
    pub fn set_loop_host(&self, host: Arc<dyn LoopHost>) {
        *self.host.write() = Some(host);
        self.conns[0].write().clear();
        self.conns[1].write().clear();
    }

    /// The shared connection to `addr` (opened on first use): `pool` 0/1 are RESP2/RESP3 ones
    /// read by the loop, 2 the blocking calls' ones.
    fn pooled(&self, addr: &Addr, pool: usize) -> Arc<Conn> {
        let map = &self.conns[pool];
        if let Some(c) = map.read().get(addr) {
            return c.clone();
        }
        let mut hs = self.handshake.read().clone();
        hs.resp3 = pool == 1;
        let host = if pool == 2 { None } else { self.host.read().clone() };
        map.write().entry(addr.clone()).or_insert_with(|| Conn::new(addr.clone(), hs, host, self.stats.in_flight.clone())).clone()
    }

    /// The connection to `addr` for requests answered by callbacks.
    pub fn conn(&self, addr: &Addr, resp3: bool) -> Arc<Conn> {
        self.pooled(addr, resp3 as usize)
    }

    /// A connection of its own to `addr`, outside the shared pool (a client's WATCH).
    pub fn own_conn(&self, addr: &Addr, resp3: bool) -> Arc<Conn> {
        let mut hs = self.handshake.read().clone();
        hs.resp3 = resp3;
        Conn::new(addr.clone(), hs, self.host.read().clone(), self.stats.in_flight.clone())
    }

    /// The node serving `key` (the seed for keyless requests in a standalone store).
    pub fn node_for(&self, key: Option<&[u8]>) -> Addr {
        let topo = self.topo.read();
        let slot = key.map_or(0, key_slot);
        topo.shard_of(slot).or_else(|| topo.shards.first()).map_or_else(|| self.url.addr.clone(), |s| s.primary.clone())
    }

    /// Sends one command for `key` and gives `on_reply` its reply, following redirects.
    pub fn send(self: &Arc<Self>, key: Option<&[u8]>, req: Request, resp3: bool, on_reply: ReplyFn) {
        let addr = self.node_for(key);
        self.send_to(addr, req, resp3, on_reply, 0);
    }

    /// Sends one command to `addr`; `MOVED`/`ASK` send it on, a broken link asks for a new topology.
    pub fn send_to(self: &Arc<Self>, addr: Addr, req: Request, resp3: bool, on_reply: ReplyFn, hops: u8) {
        self.send_routed(addr, req, resp3, Box::new(move |r, _| on_reply(r)), hops);
    }

    /// `send_to` whose callback also learns which node answered (after redirects).
    pub fn send_routed(self: &Arc<Self>, addr: Addr, req: Request, resp3: bool, on_reply: RoutedFn, hops: u8) {
        self.send_pooled(addr, req, resp3 as usize, on_reply, hops);
    }

    fn send_pooled(self: &Arc<Self>, addr: Addr, req: Request, pool: usize, on_reply: RoutedFn, hops: u8) {
        self.stats.requests.fetch_add(1, Relaxed);
        let me = self.clone();
        let again = req.clone();
        let conn = self.pooled(&addr, pool);
        let handle: ReplyFn = Box::new(move |r: Result<&[u8], LinkError>| match r {
            Ok(bytes) if hops < MAX_REDIRECTS && (bytes.starts_with(b"-MOVED ") || bytes.starts_with(b"-ASK ")) => {
                match error_text(bytes).and_then(parse_redirect) {
                    Some((false, slot, to)) => {
                        me.stats.moved.fetch_add(1, Relaxed);
                        let to = me.resolve(to);
                        me.topo.write().moved(slot, to.clone());
                        me.refresh_soon();
                        me.send_pooled(to, again, pool, on_reply, hops + 1);
                    }
                    Some((true, _, to)) => {
                        me.stats.asks.fetch_add(1, Relaxed);
                        let to = me.resolve(to);
                        let mut asking = Request::command(&[b"ASKING"]);
                        asking.parts.extend(again.parts);
                        let at = to.clone();
                        me.pooled(&to, pool).send(&asking, vec![Box::new(|_| {}), Box::new(move |r| on_reply(r, &at))]);
                    }
                    None => on_reply(Ok(bytes), &addr),
                }
            }
            Err(e) => {
                me.stats.link_errors.fetch_add(1, Relaxed);
                me.refresh_soon();
                on_reply(Err(e), &addr);
            }
            other => on_reply(other, &addr),
        });
        conn.send(&req, vec![handle]);
    }

    /// `send` for a read that may be sent twice: when the link breaks (a primary failed over), the
    /// topology is read again and the read sent once more before its caller sees the error.
    pub fn send_read(self: &Arc<Self>, key: Option<&[u8]>, req: Request, resp3: bool, on_reply: ReplyFn) {
        let me = self.clone();
        let again = req.clone();
        let key2 = key.map(<[u8]>::to_vec);
        self.send(key, req, resp3, Box::new(move |r: Result<&[u8], LinkError>| match r {
            Err(_) => {
                // off the loop: reading the topology waits for the store
                let spawned = std::thread::Builder::new().name("store-retry".into()).spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = me.refresh_now();
                    me.send(key2.as_deref(), again, resp3, on_reply);
                });
                if let Err(e) = spawned {
                    eprintln!("redisai-fast: cannot retry a store read: {e}");
                }
            }
            ok => on_reply(ok),
        }));
    }

    /// Sends several commands to one node as one write, in order, without redirects (a
    /// transaction: MULTI ... EXEC must stay together on one connection).
    pub fn send_pipeline(self: &Arc<Self>, addr: &Addr, req: Request, resp3: bool, on_reply: Vec<ReplyFn>) {
        self.stats.requests.fetch_add(on_reply.len() as u64, Relaxed);
        self.conn(addr, resp3).send(&req, on_reply);
    }

    /// Sends one command and waits for its reply (worker threads; never the event loop).
    pub fn call(self: &Arc<Self>, key: Option<&[u8]>, req: Request) -> Result<Vec<u8>, LinkError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let addr = self.node_for(key);
        self.send_pooled(addr, req, 2, Box::new(move |r: Result<&[u8], LinkError>, _: &Addr| {
            let _ = tx.send(r.map(<[u8]>::to_vec));
        }), 0);
        rx.recv().unwrap_or_else(|_| Err(LinkError("no reply".into())))
    }

    /// Sends one command to one node and waits.
    pub fn call_node(self: &Arc<Self>, addr: &Addr, req: Request) -> Result<Vec<u8>, LinkError> {
        self.stats.requests.fetch_add(1, Relaxed);
        self.pooled(addr, 2).call(&req)
    }

    /// A node named by the Cluster: the Unix socket of `url` if it names the seed itself.
    fn resolve(&self, addr: Addr) -> Addr {
        if let (Addr::Tcp(hp), Some(alias)) = (&addr, self.unix_alias.read().as_ref()) {
            if hp == alias {
                return self.url.addr.clone();
            }
        }
        addr
    }

    /// Reads the topology now from `from` (then from any other known node if that fails).
    fn read_topology(&self, from: &Addr) -> Result<(), String> {
        let mut candidates = vec![from.clone()];
        for a in self.topo.read().nodes() {
            if !candidates.contains(&a) {
                candidates.push(a);
            }
        }
        let mut last = String::from("no store node answered");
        for addr in candidates {
            self.stats.refreshes.fetch_add(1, Relaxed);
            let conn = self.pooled(&addr, 2);
            let reply = match conn.call(&Request::command(&[b"CLUSTER".as_slice(), b"SLOTS"])) {
                Ok(r) => r,
                Err(e) => {
                    last = e.0;
                    continue;
                }
            };
            if let Some(err) = error_text(&reply) {
                if err.contains("cluster support disabled") {
                    *self.topo.write() = Topology::standalone(self.url.addr.clone());
                    return Ok(());
                }
                last = err.to_string();
                continue;
            }
            if let (Addr::Unix(_), true) = (&self.url.addr, addr == self.url.addr) {
                // which TCP address the Cluster gives the node behind our Unix socket
                if let Ok(me) = conn.call(&Request::command(&[b"CLUSTER".as_slice(), b"MYID"])) {
                    if let Some(crate::resp::decode::RespValue::Bulk(id)) = decode(&me) {
                        *self.unix_alias.write() = alias_of(&decode(&reply), &String::from_utf8_lossy(&id));
                    }
                }
            }
            let alias = self.unix_alias.read().clone();
            let parsed = decode(&reply).ok_or_else(|| "CLUSTER SLOTS: unreadable reply".to_string()).and_then(|v| {
                Topology::from_cluster_slots(&v, alias.as_deref().map(|a| (a, &self.url.addr)))
            });
            match parsed {
                Ok(t) if !t.shards.is_empty() || self.allow_empty => {
                    *self.topo.write() = t;
                    return Ok(());
                }
                Ok(_) => last = "the cluster serves no slots yet".into(),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Reads the topology again in the background (at most once per REFRESH_EVERY).
    pub fn refresh_soon(self: &Arc<Self>) {
        {
            let mut at = self.last_refresh.lock();
            if at.elapsed() < REFRESH_EVERY || self.refreshing.swap(true, Relaxed) {
                return;
            }
            *at = Instant::now();
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("store-topology".into()).spawn(move || {
            let seed = me.url.addr.clone();
            let _ = me.read_topology(&seed);
            me.refreshing.store(false, Relaxed);
        });
        if spawned.is_err() {
            self.refreshing.store(false, Relaxed);
        }
    }

    /// Reads the topology now (the caller waits).
    pub fn refresh_now(&self) -> Result<(), String> {
        let seed = self.url.addr.clone();
        self.read_topology(&seed)
    }

    /// Whether no primary's link is down (INFO's link status; a link not opened yet is not down).
    pub fn links_up(&self) -> bool {
        let topo = self.topo.read();
        topo.shards.iter().all(|s| !self.pooled(&s.primary, 0).is_down())
    }

    /// The client name connections opened from now on give themselves (CLIENT SETNAME).
    pub fn set_name(&self, name: &str) {
        self.handshake.write().name = name.to_string();
    }
}

/// The `host:port` of node `id` in a CLUSTER SLOTS reply.
fn alias_of(reply: &Option<crate::resp::decode::RespValue>, id: &str) -> Option<String> {
    use crate::resp::decode::RespValue;
    let Some(RespValue::Array(ranges)) = reply else { return None };
    for r in ranges {
        let RespValue::Array(items) = r else { continue };
        for n in items.iter().skip(2) {
            let RespValue::Array(f) = n else { continue };
            if matches!(f.get(2), Some(RespValue::Bulk(b)) if b == id.as_bytes()) {
                if let (Some(RespValue::Bulk(h)), Some(RespValue::Int(p))) = (f.first(), f.get(1)) {
                    return Some(format!("{}:{p}", String::from_utf8_lossy(h)));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            StoreUrl::parse("redis://127.0.0.1:6379").expect("valid"),
            StoreUrl { addr: Addr::Tcp("127.0.0.1:6379".into()), user: None, password: None }
        );
        assert_eq!(
            StoreUrl::parse("redis://bob:s3cret@h:1/0").expect("valid"),
            StoreUrl { addr: Addr::Tcp("h:1".into()), user: Some("bob".into()), password: Some("s3cret".into()) }
        );
        assert_eq!(StoreUrl::parse("redis://:pw@h:1").expect("valid").password.as_deref(), Some("pw"));
        assert_eq!(StoreUrl::parse("unix:///tmp/v.sock").expect("valid").addr, Addr::Unix("/tmp/v.sock".into()));
        for bad in ["h:1", "redis://h", "redis://h:x", "http://h:1", "unix://rel.sock", "redis://:1"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
