//! Plain Redis commands in store mode: each goes to the store node that holds its key and its
//! reply comes back as the store wrote it; commands over the whole keyspace (DBSIZE, KEYS, SCAN,
//! FLUSHALL, ...) go to every shard and their replies are combined; MULTI ... EXEC is sent as one
//! block. Connection and server commands stay with the node (None from `forward`).
use std::sync::Arc;

use super::conn::{LinkError, ReplyFn, Request};
use super::frame::decode;
use super::join::Join;
use super::slot::key_slot;
use super::Store;
use crate::commands::{is, ClientState, CommandSpec, Multi};
use crate::resp::decode::RespValue;
use crate::resp::{Args, Out, Reply};
use crate::server::Server;

/// What to do with a command in store mode.
pub enum Route {
    /// Served by the node itself (connection state, INFO, CONFIG, ...).
    Local,
    /// Sent to the store: the client waits for the reply.
    Sent,
    /// Refused before anything was sent.
    Refused(String),
}

/// Groups of commands whose handlers act on the node, not on keys.
const LOCAL_GROUPS: &[&str] = &["connection", "cluster", "transactions"];
const LOCAL_COMMANDS: &[&str] = &["command", "info", "config", "time", "shutdown", "module", "memory"];

/// Connection and server commands (and AI.CONFIG): served by the node itself in store mode.
pub fn is_node_local(spec: &CommandSpec) -> bool {
    spec.group == "ai" || LOCAL_GROUPS.contains(&spec.group) || LOCAL_COMMANDS.contains(&spec.name)
}

/// Sends a plain command where it belongs, or says that the node serves it.
pub fn forward(server: &Arc<Server>, store: &Arc<Store>, client: u64, resp3: bool, spec: &'static CommandSpec, args: &Args) -> Route {
    if spec.group == "ai" || LOCAL_GROUPS.contains(&spec.group) || LOCAL_COMMANDS.contains(&spec.name) {
        if spec.name == "memory" && args.len() >= 3 && is(args.get(1), "USAGE") {
            send_keyed(server, store, client, resp3, spec, args, Some(2));
            return Route::Sent;
        }
        return Route::Local;
    }
    match spec.name {
        "type" => {
            type_of(server, store, client, args.get(1));
            Route::Sent
        }
        "dbsize" | "keys" | "flushall" | "flushdb" | "randomkey" | "save" | "bgsave" | "bgrewriteaof" | "lastsave" | "scan" => {
            whole_keyspace(server, store, client, resp3, spec.name, args)
        }
        _ if spec.first_key > 0 => {
            send_keyed(server, store, client, resp3, spec, args, Some(spec.first_key as usize));
            Route::Sent
        }
        _ => Route::Local,
    }
}

fn argv<'a>(args: &'a Args<'_>) -> Vec<&'a [u8]> {
    (0..args.len()).map(|i| args.get(i)).collect()
}

/// A reply for `client` from a store callback: the store's bytes, or the link error.
pub fn deliver(server: &Arc<Server>, client: u64) -> ReplyFn {
    let server = server.clone();
    Box::new(move |r: Result<&[u8], LinkError>| {
        let reply = match r {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => error_line(&e.reply_line()),
        };
        server.exec.completions.push(client, reply);
    })
}

pub fn error_line(msg: &str) -> Vec<u8> {
    let mut o = Out::new(false);
    o.error(msg);
    o.to_vec()
}

fn send_keyed(server: &Arc<Server>, store: &Arc<Store>, client: u64, resp3: bool, spec: &CommandSpec, args: &Args, key_at: Option<usize>) {
    let key = key_at.filter(|&i| i < args.len()).map(|i| args.get(i).to_vec());
    let req = Request::command(&argv(args));
    let reply = deliver(server, client);
    if spec.has(crate::commands::flags::WRITE) {
        store.send_write(key.as_deref(), req, resp3, reply);
    } else {
        store.client.send(key.as_deref(), req, resp3, reply);
    }
}

/// TYPE: the store's answer, with RedisAI's type names for our tensors, models and scripts.
fn type_of(server: &Arc<Server>, store: &Arc<Store>, client: u64, key: &[u8]) {
    let req = Request::command(&[b"EVAL".as_slice(), TYPE_SCRIPT.as_bytes(), b"1", key]);
    let server2 = server.clone();
    store.client.send(Some(key), req, false, Box::new(move |r: Result<&[u8], LinkError>| {
        let reply = match r {
            Err(e) => error_line(&e.reply_line()),
            Ok(bytes) => type_reply(bytes),
        };
        server2.exec.completions.push(client, reply);
    }));
}

/// The TYPE reply for what TYPE_SCRIPT answered (errors, MOVED included, as they are).
pub(crate) fn type_reply(bytes: &[u8]) -> Vec<u8> {
    match decode(bytes) {
        Some(RespValue::Array(v)) => {
            let name = match (v.first(), v.get(1)) {
                (Some(RespValue::Bulk(t)), Some(RespValue::Bulk(prefix))) if t == b"string" && super::layout::is_ours(prefix) => {
                    match prefix.get(5) {
                        Some(1) => "AI_TENSOR".to_string(),
                        Some(2) => "AI__MODEL".to_string(),
                        Some(3) => "AI_SCRIPT".to_string(),
                        _ => "string".to_string(),
                    }
                }
                (Some(RespValue::Bulk(t)), _) => String::from_utf8_lossy(t).into_owned(),
                _ => "none".to_string(),
            };
            let mut o = Out::new(false);
            o.simple(&name);
            o.to_vec()
        }
        _ => bytes.to_vec(),
    }
}

/// TYPE of a key and, for strings, its first bytes (one round trip).
pub(crate) const TYPE_SCRIPT: &str = "local t = redis.call('TYPE', KEYS[1])['ok'] \
    if t == 'string' then return {t, redis.call('GETRANGE', KEYS[1], 0, 7)} end return {t}";

/// Commands over the whole keyspace: sent to every primary, replies combined.
fn whole_keyspace(server: &Arc<Server>, store: &Arc<Store>, client: u64, resp3: bool, name: &str, args: &Args) -> Route {
    let mut shards: Vec<super::conn::Addr> = store.client.topology().shards.iter().map(|s| s.primary.clone()).collect();
    if name == "scan" {
        let mine = super::node::answered_shards(store);
        shards = mine.into_iter().filter_map(|i| shards.get(i).cloned()).collect();
    }
    let mut argv: Vec<Vec<u8>> = (0..args.len()).map(|i| args.get(i).to_vec()).collect();
    // SCAN: the shard is in the low bits of the cursor, the shard's own cursor above them
    let mut targets: Vec<super::conn::Addr> = shards.clone();
    let mut scan_shard = 0usize;
    if name == "scan" {
        let Some(cursor) = std::str::from_utf8(&argv[1]).ok().and_then(|s| s.parse::<u64>().ok()) else {
            return Route::Refused("ERR invalid cursor".into());
        };
        scan_shard = (cursor & SHARD_MASK) as usize;
        let Some(t) = shards.get(scan_shard) else { return Route::Refused("ERR invalid cursor".into()) };
        targets = vec![t.clone()];
        argv[1] = (cursor >> SHARD_BITS).to_string().into_bytes();
    }
    if name == "randomkey" || name == "lastsave" {
        targets.truncate(1);
    }
    let total_shards = shards.len();
    let is_flush = matches!(name, "flushall" | "flushdb");
    if is_flush {
        store.compiled.lock().clear();
    }
    let (server2, name2) = (server.clone(), name.to_string());
    let join: Join<Result<Vec<u8>, LinkError>> = Join::new(targets.len(), Box::new(move |all| {
        server2.exec.completions.push(client, combine(&name2, all, resp3, scan_shard, total_shards));
    }));
    for (i, addr) in targets.into_iter().enumerate() {
        let j = join.clone();
        let cb: ReplyFn = Box::new(move |r: Result<&[u8], LinkError>| j.put(i, r.map(<[u8]>::to_vec)));
        let req = Request::command(&argv);
        if is_flush {
            store.send_write_to(addr, req, resp3, cb);
        } else {
            store.client.send_to(addr, req, resp3, cb, 0);
        }
    }
    Route::Sent
}

const SHARD_BITS: u32 = 10;
const SHARD_MASK: u64 = (1 << SHARD_BITS) - 1;

fn combine(name: &str, all: Vec<Result<Vec<u8>, LinkError>>, resp3: bool, scan_shard: usize, shards: usize) -> Vec<u8> {
    let mut replies = Vec::with_capacity(all.len());
    for r in all {
        match r {
            Err(e) => return error_line(&e.reply_line()),
            Ok(b) if b.first() == Some(&b'-') => return b,
            Ok(b) => replies.push(b),
        }
    }
    let mut o = Out::new(resp3);
    match name {
        "dbsize" => {
            let total: i64 = replies.iter().filter_map(|b| match decode(b) {
                Some(RespValue::Int(n)) => Some(n),
                _ => None,
            }).sum();
            o.int(total);
        }
        "keys" => {
            let keys: Vec<Vec<u8>> = replies.iter().flat_map(|b| bulks(b)).collect();
            o.array(keys.len());
            for k in keys {
                o.bulk(&k);
            }
        }
        "scan" => {
            let Some(RespValue::Array(parts)) = replies.first().and_then(|b| decode(b)) else { return replies.swap_remove(0) };
            let cursor: u64 = match parts.first() {
                Some(RespValue::Bulk(c)) => std::str::from_utf8(c).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
                _ => 0,
            };
            let next = if cursor != 0 {
                (cursor << SHARD_BITS) | scan_shard as u64
            } else if scan_shard + 1 < shards {
                (scan_shard + 1) as u64
            } else {
                0
            };
            let keys = match parts.get(1) {
                Some(RespValue::Array(k)) => k.iter().filter_map(|v| if let RespValue::Bulk(b) = v { Some(b.clone()) } else { None }).collect(),
                _ => Vec::new(),
            };
            o.array(2);
            o.bulk(next.to_string().as_bytes());
            o.array(keys.len());
            for k in keys {
                o.bulk(&k);
            }
        }
        // FLUSHALL, SAVE, BGSAVE, ...: every shard answered alike; the first reply stands for all
        _ => return replies.swap_remove(0),
    }
    o.to_vec()
}

fn bulks(b: &[u8]) -> Vec<Vec<u8>> {
    match decode(b) {
        Some(RespValue::Array(items)) => items.into_iter().filter_map(|v| if let RespValue::Bulk(b) = v { Some(b) } else { None }).collect(),
        _ => Vec::new(),
    }
}

/// EXEC in store mode: MULTI, the queued commands and EXEC go to the node of their keys as one
/// block (all keys in one slot, as Redis Cluster requires); AI commands are translated or
/// answered here (`ai::in_transaction`); the client gets one array, in the order queued.
pub fn exec(server: &Arc<Server>, store: &Arc<Store>, state: &mut ClientState, resp3: bool, multi: Multi, link: Option<Arc<super::conn::Conn>>) -> Result<(), String> {
    use super::ai::{format_tensorget, in_transaction, InTx};
    let client = state.info.id;
    let mut slot: Option<u16> = None;
    let mut req = Request::command(&[b"MULTI"]);
    let mut plan: Vec<InTx> = Vec::with_capacity(multi.queued.len());
    let mut sent = 0usize;
    for cmd in &multi.queued {
        let Some(spec) = cmd.first().and_then(|n| crate::commands::lookup(n)) else { continue };
        let local = spec.group != "ai" && (LOCAL_GROUPS.contains(&spec.group) || LOCAL_COMMANDS.contains(&spec.name));
        let item = if spec.group == "ai" {
            in_transaction(server, spec, cmd)
        } else if local {
            // connection and server commands run here, in their place in the transaction
            InTx::Answer(run_here(server, state, spec, cmd, resp3))
        } else {
            InTx::Send(Request::command(cmd), cmd.get(spec.first_key.max(0) as usize).filter(|_| spec.first_key > 0).cloned())
        };
        let key = match &item {
            InTx::Send(_, key) => key.clone(),
            InTx::Get { key, .. } => Some(key.clone()),
            InTx::Answer(_) => None,
        };
        for k in key.iter().chain(spec.key_positions(cmd.len()).iter().skip(1).map(|&i| &cmd[i])) {
            let s = key_slot(k);
            if store.client.is_cluster() && slot.is_some_and(|x| x != s) {
                return Err("CROSSSLOT Keys in request don't hash to the same slot".into());
            }
            slot = Some(s);
        }
        match &item {
            InTx::Send(r, _) => {
                req.parts.extend(r.parts.iter().cloned());
                sent += 1;
            }
            InTx::Get { key, .. } => {
                req.push_command(&[b"GET".as_slice(), key]);
                sent += 1;
            }
            InTx::Answer(_) => {}
        }
        plan.push(item);
    }
    req.push_command(&[b"EXEC"]);
    let server2 = server.clone();
    let finish = move |exec_reply: Option<Vec<u8>>| {
        let elements: Vec<Vec<u8>> = match &exec_reply {
            Some(b) => match super::frame::array_elements(b) {
                Some(e) => e.into_iter().map(<[u8]>::to_vec).collect(),
                // nil (a WATCHed key changed), EXECABORT: the store's answer is the whole reply
                None => return server2.exec.completions.push(client, b.clone()),
            },
            None => Vec::new(),
        };
        let mut from_store = elements.into_iter();
        let mut o = Out::new(resp3);
        o.array(plan.len());
        for item in plan {
            match item {
                InTx::Answer(bytes) => o.raw(&bytes),
                InTx::Send(..) => o.raw(&from_store.next().unwrap_or_else(|| error_line("ERR no reply"))),
                InTx::Get { argv, .. } => {
                    let got = from_store.next().unwrap_or_else(|| error_line("ERR no reply"));
                    o.raw(&format_tensorget(&server2, &argv, &got, resp3));
                }
            }
        }
        server2.exec.completions.push(client, o.to_vec());
    };
    if sent == 0 && link.is_none() {
        finish(None);
        return Ok(());
    }
    let mut cbs: Vec<ReplyFn> = (0..sent + 1).map(|_| Box::new(|_: Result<&[u8], LinkError>| {}) as ReplyFn).collect();
    let server3 = server.clone();
    // the client's own link lives until EXEC is answered, then closes (its WATCHes end with it)
    let keep = link.clone();
    cbs.push(Box::new(move |r: Result<&[u8], LinkError>| {
        match r {
            Ok(b) => finish(Some(b.to_vec())),
            Err(e) => server3.exec.completions.push(client, error_line(&e.reply_line())),
        }
        drop(keep);
    }));
    match link {
        // the client WATCHed keys: its own link carries the transaction (and closes after it)
        Some(conn) => conn.send(&req, cbs),
        None => {
            let topo = store.client.topology();
            let addr = match store.front {
                Some(_) => store.client.url.addr.clone(), // a front's transactions are its own store node's
                None => topo.shard_of(slot.unwrap_or(0)).or(topo.shards.first()).map(|s| s.primary.clone()).unwrap_or_else(|| store.client.url.addr.clone()),
            };
            store.client.send_pipeline(&addr, req, resp3, cbs);
        }
    }
    Ok(())
}

/// A connection or server command queued in MULTI, run on the node; its reply.
fn run_here(server: &Arc<Server>, state: &mut ClientState, spec: &'static CommandSpec, cmd: &[Vec<u8>], resp3: bool) -> Vec<u8> {
    let mut items: Vec<crate::resp::Arg> = cmd.iter().cloned().map(crate::resp::Arg::Inline).collect();
    let mut args = Args::new(&[], &mut items);
    let mut out = Out::new(resp3);
    let mut ks = server.ks.lock();
    match crate::session::run_handler(server, state, &mut out, spec, &mut args, &mut ks, false) {
        Ok(_) => out.to_vec(),
        Err(e) => error_line(&e.0),
    }
}

/// WATCH in store mode: the client gets a store link of its own (to the node of its keys, which
/// must share a slot in a Cluster), where the WATCH and later its MULTI ... EXEC go.
pub fn watch(server: &Arc<Server>, store: &Arc<Store>, state: &mut ClientState, resp3: bool, args: &Args) -> Result<(), String> {
    let mut slot = state.store_link.as_ref().and_then(|(_, s)| *s);
    for i in 1..args.len() {
        let s = key_slot(args.get(i));
        if store.client.is_cluster() && slot.is_some_and(|x| x != s) {
            return Err("CROSSSLOT Keys in request don't hash to the same slot".into());
        }
        slot = Some(s);
    }
    let conn = match &state.store_link {
        Some((c, _)) => c.clone(),
        None if store.front.is_some() => store.client.own_conn(&store.client.url.addr, resp3),
        None => store.client.own_conn(&store.client.node_for(Some(args.get(1))), resp3),
    };
    state.store_link = Some((conn.clone(), slot));
    conn.send(&Request::command(&argv(args)), vec![deliver(server, state.info.id)]);
    Ok(())
}

/// A command from server-side code (`redis.execute` in a script, on a worker thread) in store
/// mode: sent to the store and waited for. None for the commands the node serves itself.
pub fn call(store: &Arc<Store>, spec: &CommandSpec, argv: &[Vec<u8>]) -> Option<Result<RespValue, String>> {
    if spec.group == "ai" {
        return Some(Err(format!("ERR {} cannot be called from a script in store mode", spec.name.to_uppercase())));
    }
    if LOCAL_GROUPS.contains(&spec.group) || LOCAL_COMMANDS.contains(&spec.name) {
        return None;
    }
    // keyless commands (SCAN, KEYS, DBSIZE ...) go to the first shard: a script sees one shard
    // of a Cluster store, as a script inside a Cluster node does
    let key = argv.get(spec.first_key.max(0) as usize).filter(|_| spec.first_key > 0).map(Vec::as_slice);
    let reply = match store.client.call(key, Request::command(argv)) {
        Ok(r) => r,
        Err(e) => return Some(Err(e.reply_line())),
    };
    Some(match decode(&reply) {
        Some(RespValue::Error(e)) => Err(e),
        Some(v) => Ok(v),
        None => Err("ERR unreadable reply from the store".into()),
    })
}
