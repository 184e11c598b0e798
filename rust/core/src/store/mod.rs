//! Store mode (scale-out): the keys live in a Valkey/Redis deployment (standalone or Cluster)
//! named by `store URL`, and this node is compute in front of it. Plain commands go to the store
//! as they are (`route`); AI commands read their keys from it, run here and write their results
//! back before they answer (`ai`); models and scripts are compiled once per node and kept by key
//! and value id. The embedded keyspace is the other implementation of the same contract.
pub mod ai;
pub mod client;
pub mod conn;
pub mod frame;
pub mod front;
pub mod join;
pub mod layout;
pub mod node;
pub mod route;
pub mod slot;
pub mod topology;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;

use client::{StoreClient, StoreUrl};
use conn::{Addr, LinkError, ReplyFn, Request};
use layout::{IdMaker, ValueId};

use crate::keyspace::Value;

pub struct Store {
    pub client: Arc<StoreClient>,
    pub ids: IdMaker,
    /// Models and scripts this node compiled, by key, with the id of the stored value they came
    /// from: reused while the store holds that id (checked in the same round trip as the inputs).
    pub compiled: Mutex<HashMap<Vec<u8>, (ValueId, Value)>>,
    /// `store-wait-replicas`: writes are acknowledged after `WAIT n` confirms them.
    pub wait_replicas: AtomicU64,
    pub wait_timeout_ms: AtomicU64,
    /// The other nodes in front of this store, as the last heartbeat found them.
    pub members: node::Membership,
    /// `cluster-enabled yes`: the store is this node's own cluster node (addresses translated).
    pub front: Option<front::Front>,
}

impl Store {
    /// Connects to `url` (reads the topology) as node `name`; `front`: the store is this node's
    /// own cluster node, which may serve no slots yet.
    pub fn connect(url: &str, name: &str, seed: u64, front: Option<front::Front>) -> Result<Arc<Store>, String> {
        let url = StoreUrl::parse(url)?;
        let client = StoreClient::connect(url, name, front.is_some())?;
        Ok(Arc::new(Store {
            client,
            ids: IdMaker::new(seed),
            compiled: Mutex::new(HashMap::new()),
            wait_replicas: AtomicU64::new(0),
            wait_timeout_ms: AtomicU64::new(1000),
            members: node::Membership::default(),
            front,
        }))
    }

    /// Sends a write for `key`; with `store-wait-replicas n` the reply is given once `WAIT n`
    /// confirmed it (or `-NOREPLICAS` if fewer replicas took it in time).
    pub fn send_write(self: &Arc<Self>, key: Option<&[u8]>, req: Request, resp3: bool, on_reply: ReplyFn) {
        let addr = self.client.node_for(key);
        self.send_write_to(addr, req, resp3, on_reply);
    }

    /// `send_write` to a given node.
    pub fn send_write_to(self: &Arc<Self>, addr: Addr, req: Request, resp3: bool, on_reply: ReplyFn) {
        let n = self.wait_replicas.load(Relaxed);
        if n == 0 {
            return self.client.send_to(addr, req, resp3, on_reply, 0);
        }
        let me = self.clone();
        let timeout = self.wait_timeout_ms.load(Relaxed);
        self.client.send_routed(addr, req, resp3, Box::new(move |r: Result<&[u8], LinkError>, at: &Addr| {
            let reply = match r {
                Err(e) => return on_reply(Err(e)),
                Ok(b) if b.first() == Some(&b'-') => return on_reply(Ok(b)),
                Ok(b) => b.to_vec(),
            };
            // WAIT counts the writes of the connection it is sent on: the one to the node that
            // took this write (after any redirect)
            let wait = Request::command(&[b"WAIT".as_slice(), n.to_string().as_bytes(), timeout.to_string().as_bytes()]);
            me.client.conn(at, resp3).send(&wait, vec![Box::new(move |w: Result<&[u8], LinkError>| match w {
                Err(e) => on_reply(Err(e)),
                Ok(w) => match frame::decode(w) {
                    Some(crate::resp::decode::RespValue::Int(got)) if got as u64 >= n => on_reply(Ok(&reply)),
                    _ => on_reply(Ok(b"-NOREPLICAS Not enough good replicas to write.\r\n")),
                },
            })]);
        }), 0);
    }

    /// Forgets compiled values (FLUSHALL, or a key found gone).
    pub fn forget(&self, key: &[u8]) {
        self.compiled.lock().remove(key);
    }

    /// INFO's `# Store` section.
    pub fn info(&self) -> String {
        let c = &self.client;
        let topo = c.topology();
        let s = &c.stats;
        let (hits, misses) = (s.cache_hits.load(Relaxed), s.cache_misses.load(Relaxed));
        let rate = if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 };
        let mut t = String::from("# Store\r\n");
        t += &format!("store_address:{}\r\nstore_mode:{}\r\nstore_shards:{}\r\n", c.url.addr, if topo.cluster { "cluster" } else { "standalone" }, topo.shards.len());
        for (i, sh) in topo.shards.iter().enumerate() {
            let ranges: Vec<String> = sh.ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
            t += &format!("store_shard{i}:primary={},replicas={},slots={}\r\n", sh.primary, sh.replicas.len(), ranges.join(","));
        }
        t += &format!(
            "store_link_status:{}\r\nstore_uncovered_slots:{}\r\nstore_requests:{}\r\nstore_moved:{}\r\nstore_ask:{}\r\nstore_link_errors:{}\r\nstore_topology_reads:{}\r\nstore_compiled_cached:{}\r\nstore_cache_hits:{hits}\r\nstore_cache_misses:{misses}\r\nstore_cache_hit_rate:{rate:.4}\r\nstore_wait_replicas:{}\r\n",
            if c.links_up() { "up" } else { "down" },
            topo.uncovered(),
            s.requests.load(Relaxed),
            s.moved.load(Relaxed),
            s.asks.load(Relaxed),
            s.link_errors.load(Relaxed),
            s.refreshes.load(Relaxed),
            self.compiled.lock().len(),
            self.wait_replicas.load(Relaxed),
        );
        t
    }
}
