//! Which store node serves which slots: read from `CLUSTER SLOTS` (a Cluster) or a single node
//! (standalone), and updated from `MOVED` replies between full reads. No I/O here.
use super::conn::Addr;
use super::slot::SLOTS;
use crate::resp::decode::RespValue;

/// One shard: its primary, replicas and slot ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub primary: Addr,
    pub primary_id: String,
    pub replicas: Vec<Addr>,
    pub ranges: Vec<(u16, u16)>,
}

/// The store's layout.
#[derive(Clone, Debug)]
pub struct Topology {
    /// A Redis/Valkey Cluster (false: one standalone node holds every key).
    pub cluster: bool,
    pub shards: Vec<Shard>,
    /// Slot -> index into `shards` (NONE: nobody serves it).
    slots: Vec<u16>,
}

const NONE: u16 = u16::MAX;

impl Topology {
    /// One standalone node.
    pub fn standalone(addr: Addr) -> Topology {
        let shard = Shard { primary: addr, primary_id: String::new(), replicas: Vec::new(), ranges: vec![(0, SLOTS as u16 - 1)] };
        Topology { cluster: false, shards: vec![shard], slots: vec![0; SLOTS] }
    }

    /// Reads a `CLUSTER SLOTS` reply. `unix` replaces the TCP address of the node it names
    /// (`host:port` -> the socket a local store node also listens on).
    pub fn from_cluster_slots(reply: &RespValue, unix: Option<(&str, &Addr)>) -> Result<Topology, String> {
        let RespValue::Array(ranges) = reply else { return Err(format!("CLUSTER SLOTS: unexpected reply {reply:?}")) };
        let mut shards: Vec<Shard> = Vec::new();
        let mut slots = vec![NONE; SLOTS];
        for r in ranges {
            let RespValue::Array(items) = r else { return Err("CLUSTER SLOTS: a range is not an array".into()) };
            let (Some(RespValue::Int(lo)), Some(RespValue::Int(hi))) = (items.first(), items.get(1)) else {
                return Err("CLUSTER SLOTS: a range has no bounds".into());
            };
            let (lo, hi) = (*lo as usize, *hi as usize);
            if lo > hi || hi >= SLOTS {
                return Err(format!("CLUSTER SLOTS: bad range {lo}-{hi}"));
            }
            let mut nodes = items[2..].iter().filter_map(|n| node_of(n, unix));
            let Some((primary, primary_id)) = nodes.next() else { continue };
            let replicas: Vec<Addr> = nodes.map(|(a, _)| a).collect();
            let index = match shards.iter().position(|s| s.primary == primary) {
                Some(i) => i,
                None => {
                    shards.push(Shard { primary, primary_id, replicas: Vec::new(), ranges: Vec::new() });
                    shards.len() - 1
                }
            };
            let shard = &mut shards[index];
            for a in replicas {
                if !shard.replicas.contains(&a) {
                    shard.replicas.push(a);
                }
            }
            shard.ranges.push((lo as u16, hi as u16));
            slots[lo..=hi].fill(index as u16);
        }
        for s in &mut shards {
            s.ranges.sort_unstable();
        }
        Ok(Topology { cluster: true, shards, slots })
    }

    /// The shard serving `slot`.
    pub fn shard_of(&self, slot: u16) -> Option<&Shard> {
        match self.slots.get(slot as usize) {
            Some(&i) if i != NONE => self.shards.get(i as usize),
            _ => None,
        }
    }

    /// A `MOVED slot addr` reply: `addr` serves `slot` now.
    pub fn moved(&mut self, slot: u16, addr: Addr) {
        let index = match self.shards.iter().position(|s| s.primary == addr) {
            Some(i) => i,
            None => {
                self.shards.push(Shard { primary: addr, primary_id: String::new(), replicas: Vec::new(), ranges: Vec::new() });
                self.shards.len() - 1
            }
        };
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = index as u16;
        }
    }

    /// Every store node this topology knows (primaries first).
    pub fn nodes(&self) -> Vec<Addr> {
        let mut out: Vec<Addr> = self.shards.iter().map(|s| s.primary.clone()).collect();
        for s in &self.shards {
            for r in &s.replicas {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }

    /// Slots nobody serves.
    pub fn uncovered(&self) -> usize {
        self.slots.iter().filter(|&&s| s == NONE).count()
    }
}

fn node_of(n: &RespValue, unix: Option<(&str, &Addr)>) -> Option<(Addr, String)> {
    let RespValue::Array(f) = n else { return None };
    let host = match f.first()? {
        RespValue::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        RespValue::Simple(s) => s.clone(),
        _ => return None,
    };
    let RespValue::Int(port) = f.get(1)? else { return None };
    let id = match f.get(2) {
        Some(RespValue::Bulk(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let hp = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    if let Some((tcp, sock)) = unix {
        if tcp == hp {
            return Some((sock.clone(), id));
        }
    }
    Some((Addr::Tcp(hp), id))
}

/// Parses `MOVED 3999 127.0.0.1:6381` / `ASK 3999 127.0.0.1:6381` (error text without the dash).
pub fn parse_redirect(text: &str) -> Option<(bool, u16, Addr)> {
    let mut w = text.split(' ');
    let ask = match w.next()? {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let slot: u16 = w.next()?.parse().ok()?;
    let addr = w.next()?;
    Some((ask, slot, Addr::Tcp(addr.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64, id: &str) -> RespValue {
        RespValue::Array(vec![RespValue::Bulk(host.into()), RespValue::Int(port), RespValue::Bulk(id.into())])
    }

    #[test]
    fn cluster_slots_and_moves() {
        let reply = RespValue::Array(vec![
            RespValue::Array(vec![RespValue::Int(0), RespValue::Int(5460), node("127.0.0.1", 7000, "a"), node("127.0.0.1", 7003, "d")]),
            RespValue::Array(vec![RespValue::Int(5461), RespValue::Int(10922), node("127.0.0.1", 7001, "b")]),
            RespValue::Array(vec![RespValue::Int(10923), RespValue::Int(16383), node("127.0.0.1", 7002, "c")]),
        ]);
        let sock = Addr::Unix("/tmp/s.sock".into());
        let mut t = Topology::from_cluster_slots(&reply, Some(("127.0.0.1:7001", &sock))).expect("a valid reply");
        assert_eq!(t.shards.len(), 3);
        assert_eq!(t.shard_of(0).map(|s| s.primary.clone()), Some(Addr::Tcp("127.0.0.1:7000".into())));
        assert_eq!(t.shard_of(5461).map(|s| s.primary.clone()), Some(sock.clone()));
        assert_eq!(t.shards[0].replicas, vec![Addr::Tcp("127.0.0.1:7003".into())]);
        assert_eq!(t.uncovered(), 0);
        t.moved(0, Addr::Tcp("127.0.0.1:7002".into()));
        assert_eq!(t.shard_of(0).map(|s| s.primary_id.as_str()), Some("c"));
        assert_eq!(parse_redirect("MOVED 3999 127.0.0.1:6381"), Some((false, 3999, Addr::Tcp("127.0.0.1:6381".into()))));
        assert_eq!(parse_redirect("ASK 1 h:2"), Some((true, 1, Addr::Tcp("h:2".into()))));
        assert_eq!(parse_redirect("ERR x"), None);
    }
}
