//! `cluster-enabled yes`: this node is the front of a store node of its own, a Valkey/Redis
//! cluster node listening on the node's port + `cluster-store-port-offset`. Cluster
//! administration (CLUSTER MEET, ADDSLOTS, NODES, ...) and plain commands go to that store node;
//! addresses are translated both ways (front port <-> store port, bus ports alike), so
//! `redis-cli --cluster`, cluster clients and MOVED redirects see only front nodes. The store's own
//! cluster bus does membership, slots and failover.
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::conn::{LinkError, ReplyFn, Request};
use super::route::{error_line, type_reply, TYPE_SCRIPT};
use super::Store;
use crate::commands::{flags, ClientState, CommandSpec};
use crate::resp::decode::RespValue;
use crate::resp::{Args, Out, Reply};
use crate::server::Server;

/// The port translation of one cluster of fronts (every front uses the same offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Front {
    pub offset: u16,
}

impl Front {
    pub fn to_store(self, port: i64) -> i64 {
        port + self.offset as i64
    }

    pub fn to_front(self, port: i64) -> i64 {
        if port > self.offset as i64 {
            port - self.offset as i64
        } else {
            port
        }
    }

    /// `ip:port[@bus][,hostname]` with both ports translated to the front's.
    fn addr_to_front(self, addr: &str) -> String {
        let (main, rest) = match addr.find(',') {
            Some(i) => addr.split_at(i),
            None => (addr, ""),
        };
        let (hp, bus) = match main.split_once('@') {
            Some((hp, bus)) => (hp, Some(bus)),
            None => (main, None),
        };
        let Some((host, port)) = hp.rsplit_once(':') else { return addr.to_string() };
        let Ok(port) = port.parse::<i64>() else { return addr.to_string() };
        let mut out = format!("{host}:{}", self.to_front(port));
        if let Some(bus) = bus {
            match bus.parse::<i64>() {
                Ok(b) => out += &format!("@{}", self.to_front(b)),
                Err(_) => out += &format!("@{bus}"),
            }
        }
        out + rest
    }

    /// An error reply `-MOVED slot ip:port` / `-ASK ...` pointing at the front; other bytes as they are.
    pub fn redirect_to_front(self, bytes: &[u8]) -> Vec<u8> {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) if t.starts_with("-MOVED ") || t.starts_with("-ASK ") => t.trim_end_matches("\r\n"),
            _ => return bytes.to_vec(),
        };
        let mut w: Vec<&str> = text.splitn(3, ' ').collect();
        let addr = w.pop().map(|a| self.addr_to_front(a)).unwrap_or_default();
        format!("{} {addr}\r\n", w.join(" ")).into_bytes()
    }

    /// CLUSTER NODES / REPLICAS / SLAVES text with every address translated.
    pub fn nodes_text_to_front(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let mut f: Vec<String> = line.split(' ').map(str::to_string).collect();
            if let Some(a) = f.get_mut(1) {
                *a = self.addr_to_front(a);
            }
            out += &f.join(" ");
            out.push('\n');
        }
        out
    }

    /// Arguments the client gave in front ports, in store ports: CLUSTER MEET ip port [bus],
    /// MIGRATE host port ...
    pub fn args_to_store(self, argv: &mut [Vec<u8>]) {
        let name = argv.first().map(|a| a.to_ascii_uppercase()).unwrap_or_default();
        let positions: &[usize] = match name.as_slice() {
            b"CLUSTER" if argv.get(1).is_some_and(|s| s.eq_ignore_ascii_case(b"MEET")) => &[3, 4],
            b"MIGRATE" => &[2],
            _ => &[],
        };
        for &i in positions {
            if let Some(p) = argv.get(i).and_then(|a| std::str::from_utf8(a).ok()).and_then(|s| s.parse::<i64>().ok()) {
                argv[i] = self.to_store(p).to_string().into_bytes();
            }
        }
    }

    /// A CLUSTER reply as the front gives it (`sub` upper case), in the client's protocol.
    pub fn reply_to_front(self, sub: &str, reply: &[u8], resp3: bool) -> Vec<u8> {
        if reply.first() == Some(&b'-') {
            return self.redirect_to_front(reply);
        }
        let Some(v) = super::frame::decode(reply) else { return reply.to_vec() };
        let mut o = Out::new(resp3);
        match (sub, v) {
            ("NODES" | "REPLICAS" | "SLAVES", RespValue::Bulk(b)) => o.verbatim(&self.nodes_text_to_front(&String::from_utf8_lossy(&b))),
            ("SLOTS", RespValue::Array(ranges)) => {
                o.array(ranges.len());
                for r in ranges {
                    let RespValue::Array(items) = r else { continue };
                    o.array(items.len());
                    for (i, it) in items.into_iter().enumerate() {
                        match (i, it) {
                            (0 | 1, v) => encode(&mut o, v),
                            (_, RespValue::Array(node)) => {
                                o.array(node.len());
                                for (j, f) in node.into_iter().enumerate() {
                                    match (j, f) {
                                        (1, RespValue::Int(p)) => o.int(self.to_front(p)),
                                        (_, v) => encode(&mut o, v),
                                    }
                                }
                            }
                            (_, v) => encode(&mut o, v),
                        }
                    }
                }
            }
            ("SHARDS", RespValue::Array(shards)) => {
                o.array(shards.len());
                for sh in shards {
                    self.encode_map(&mut o, sh, 0);
                }
            }
            (_, v) => return encode_alone(v, resp3, reply),
        }
        o.to_vec()
    }

    /// CLUSTER SHARDS entries are maps (RESP2: flat arrays), their `nodes` maps too.
    fn encode_map(self, o: &mut Out, v: RespValue, depth: u8) {
        let RespValue::Array(items) = v else { return encode(o, v) };
        o.map(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(val)) = (it.next(), it.next()) {
            let key = if let RespValue::Bulk(b) = &k { String::from_utf8_lossy(b).into_owned() } else { String::new() };
            encode(o, k);
            match (key.as_str(), val) {
                ("port" | "tls-port", RespValue::Int(p)) => o.int(self.to_front(p)),
                ("nodes", RespValue::Array(nodes)) if depth == 0 => {
                    o.array(nodes.len());
                    for n in nodes {
                        self.encode_map(o, n, depth + 1);
                    }
                }
                (_, val) => encode(o, val),
            }
        }
    }
}

/// A reply kept until the one after it (WAIT's) arrives.
type Owned = Result<Vec<u8>, LinkError>;

/// A plain command or a CLUSTER subcommand at a front: sent to its own store node only (a key
/// it does not serve answers MOVED, pointing at the front that does, as Redis Cluster does), after
/// ASKING if the client asked; a write waits for `store-wait-replicas` on the same connection.
pub fn forward(server: &Arc<Server>, store: &Arc<Store>, front: Front, client: &mut ClientState, spec: &'static CommandSpec, args: &Args) {
    let resp3 = client.info.resp.load(Relaxed) == 3;
    let mut argv = args.to_vecs();
    front.args_to_store(&mut argv);
    let cluster_sub = (spec.name == "cluster").then(|| String::from_utf8_lossy(&argv[1]).to_ascii_uppercase());
    let is_type = spec.name == "type";
    // CLUSTER replies are rewritten here: they come over RESP2 and go out in the client's protocol
    let wire_resp3 = resp3 && cluster_sub.is_none() && !is_type;
    let mut req = Request::default();
    let mut cbs: Vec<ReplyFn> = Vec::new();
    if std::mem::take(&mut client.asking) {
        req.push_command(&[b"ASKING"]);
        cbs.push(Box::new(|_| {}));
    }
    if is_type {
        req.push_command(&[b"EVAL".as_slice(), TYPE_SCRIPT.as_bytes(), b"1", &argv[1]]);
    } else {
        req.push_command(&argv);
    }
    let wait = store.wait_replicas.load(Relaxed);
    let waits = wait > 0 && spec.has(flags::WRITE);
    let id = client.info.id;
    let server2 = server.clone();
    let finish = move |reply: Result<&[u8], LinkError>, wait_reply: Option<Result<&[u8], LinkError>>| {
        let out = match reply {
            Err(e) => error_line(&e.reply_line()),
            Ok(b) => match (&cluster_sub, is_type) {
                (Some(sub), _) => front.reply_to_front(sub, b, resp3),
                (None, true) => type_reply(b),
                _ => front.redirect_to_front(b),
            },
        };
        let out = match wait_reply {
            Some(Ok(w)) if out.first() != Some(&b'-') && !matches!(super::frame::decode(w), Some(RespValue::Int(n)) if n as u64 >= wait) => {
                b"-NOREPLICAS Not enough good replicas to write.\r\n".to_vec()
            }
            Some(Err(e)) => error_line(&e.reply_line()),
            _ => out,
        };
        server2.exec.completions.push(id, out);
    };
    if waits {
        req.push_command(&[b"WAIT".as_slice(), wait.to_string().as_bytes(), store.wait_timeout_ms.load(Relaxed).to_string().as_bytes()]);
        let first: Arc<parking_lot::Mutex<Option<Owned>>> = Arc::default();
        let f2 = first.clone();
        cbs.push(Box::new(move |r: Result<&[u8], LinkError>| *f2.lock() = Some(r.map(<[u8]>::to_vec))));
        cbs.push(Box::new(move |w: Result<&[u8], LinkError>| {
            let r = first.lock().take().unwrap_or_else(|| Err(LinkError("no reply".into())));
            match r {
                Ok(b) => finish(Ok(&b), Some(w)),
                Err(e) => finish(Err(e), None),
            }
        }));
    } else {
        cbs.push(Box::new(move |r: Result<&[u8], LinkError>| finish(r, None)));
    }
    store.client.send_pipeline(&store.client.url.addr, req, wire_resp3, cbs);
}

fn encode(o: &mut Out, v: RespValue) {
    match v {
        RespValue::Simple(s) => o.simple(&s),
        RespValue::Error(e) => o.error(&e),
        RespValue::Int(i) => o.int(i),
        RespValue::Bulk(b) => o.bulk(&b),
        RespValue::Null => o.null(),
        RespValue::Array(items) => {
            o.array(items.len());
            for it in items {
                encode(o, it);
            }
        }
    }
}

fn encode_alone(v: RespValue, resp3: bool, raw: &[u8]) -> Vec<u8> {
    if !resp3 {
        return raw.to_vec();
    }
    let mut o = Out::new(true);
    encode(&mut o, v);
    o.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_both_ways() {
        let f = Front { offset: 10000 };
        assert_eq!(f.redirect_to_front(b"-MOVED 3999 127.0.0.1:16780\r\n"), b"-MOVED 3999 127.0.0.1:6780\r\n".to_vec());
        assert_eq!(f.redirect_to_front(b"-ASK 1 10.0.0.2:16781\r\n"), b"-ASK 1 10.0.0.2:6781\r\n".to_vec());
        assert_eq!(f.redirect_to_front(b"+OK\r\n"), b"+OK\r\n".to_vec());
        let nodes = "abc 127.0.0.1:16780@26780 myself,master - 0 0 1 connected 0-5460\ndef 127.0.0.1:16781@26781,host slave abc 0 1 1 connected\n";
        assert_eq!(f.nodes_text_to_front(nodes),
            "abc 127.0.0.1:6780@16780 myself,master - 0 0 1 connected 0-5460\ndef 127.0.0.1:6781@16781,host slave abc 0 1 1 connected\n");
        let mut meet: Vec<Vec<u8>> = ["CLUSTER", "MEET", "127.0.0.1", "6781"].iter().map(|s| s.as_bytes().to_vec()).collect();
        f.args_to_store(&mut meet);
        assert_eq!(meet[3], b"16781");
        let mut migrate: Vec<Vec<u8>> = ["MIGRATE", "h", "6782", "k", "0", "5000"].iter().map(|s| s.as_bytes().to_vec()).collect();
        f.args_to_store(&mut migrate);
        assert_eq!(migrate[2], b"16782");
    }
}
