//! AI commands in store mode. Every key a command reads is fetched from the store in one round
//! trip (pipelined over the shards that hold them); a model or script comes from this node's
//! compiled cache when the id stored with it is the one the node compiled, and is fetched whole
//! and loaded otherwise. The command's own handler then runs on an overlay keyspace holding just
//! those keys, and what it wrote (and what its run produced) is written back to the store before
//! the client gets its reply: a reply always follows the store's acknowledgement.
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use parking_lot::Mutex;

use super::conn::{LinkError, Part, ReplyFn, Request};
use super::frame::{bulk_payload, error_text};
use super::join::Join;
use super::layout::{self, DecodeError, Decoded, Kind, HEADER_LEN};
use super::route::error_line;
use super::Store;
use crate::ai::{Model, ModelSpec, Script};
use crate::commands::ai_keys::{ai_keys, KeyUse};
use crate::commands::{lookup, ClientState, CommandSpec};
use crate::error::CmdError;
use crate::exec::{HostJob, LoadedModel};
use crate::keyspace::{Keyspace, Value};
use crate::persist::codec::snapshot_clone;
use crate::resp::{Arg, Args, Out, Reply};
use crate::server::Server;
use crate::session::{run_handler, Ran};
use crate::tensor::Tensor;

/// What a fetch gives: the keys that hold values, with them (or the error line to reply).
pub type Fetched = Result<Vec<(Vec<u8>, Value)>, String>;
type FetchDone = Box<dyn FnOnce(Fetched) + Send>;

/// A client waiting for the keys of its AI command (kept in its ClientState).
pub struct Wait {
    argv: Vec<Vec<u8>>,
    fetched: Arc<Mutex<Option<Fetched>>>,
}

/// What one key turned out to be.
enum Found {
    Missing,
    /// Not a value of ours: a plain string, or another type (WRONGTYPE for AI commands).
    Plain,
    Value(Value),
    /// A model or script that must be loaded (not compiled here yet, or changed since).
    Load(Kind, Vec<u8>),
}

/// Starts an AI command: fetches its keys, or runs it at once when it reads none.
pub fn start(server: &Arc<Server>, store: &Arc<Store>, client: &mut ClientState, out: &mut Out, spec: &'static CommandSpec, args: &mut Args) -> Result<Ran, CmdError> {
    if matches!(spec.name, "ai._modelscan" | "ai._scriptscan") {
        let kind = if spec.name == "ai._modelscan" { Kind::Model } else { Kind::Script };
        scan_tagged(server, store, client.info.id, client.info.resp.load(Relaxed) == 3, kind);
        return Ok((true, None));
    }
    let all = ai_keys(spec.name, args);
    let keys: Vec<(Vec<u8>, KeyUse)> = all.iter().filter(|(_, u)| *u != KeyUse::Store && *u != KeyUse::ScriptKey).cloned().collect();
    if keys.is_empty() {
        let stored = all.into_iter().find(|(_, u)| *u == KeyUse::Store).map(|(k, _)| k);
        return match (run_on(server, store, client, out, spec, args, Keyspace::new(), &[]), stored) {
            // TENSORSET/MODELSTORE/SCRIPTSTORE check the key's type when they write it; a command
            // that fails before that answers WRONGTYPE first if the key holds something else, as
            // the embedded keyspace does (a round trip on the error path only)
            (Err(e), Some(key)) => {
                wrongtype_or(server, store, client.info.id, key, kind_stored_by(spec.name), e.0);
                Ok((true, None))
            }
            (r, _) => r,
        };
    }
    let slot = Arc::new(Mutex::new(None));
    client.store_wait = Some(Wait { argv: args.to_vecs(), fetched: slot.clone() });
    let id = client.info.id;
    let server2 = server.clone();
    fetch(server, store, keys, Box::new(move |result| {
        *slot.lock() = Some(result);
        // an empty completion: the session picks up what was fetched (see `resume`)
        server2.exec.completions.push(id, Vec::new());
    }));
    Ok((true, None))
}

/// AI._MODELSCAN / AI._SCRIPTSCAN: every shard SCANned for strings, their first bytes read, and
/// `[key, tag]` given for each model (or script).
fn scan_tagged(server: &Arc<Server>, store: &Arc<Store>, client: u64, resp3: bool, kind: Kind) {
    let shards: Vec<super::conn::Addr> = store.client.topology().shards.iter().map(|s| s.primary.clone()).collect();
    let (server2, store2) = (server.clone(), store.clone());
    let join: Join<Vec<Vec<u8>>> = Join::new(shards.len(), Box::new(move |per_shard| {
        let keys: Vec<Vec<u8>> = per_shard.into_iter().flatten().collect();
        let (server3, keys2) = (server2.clone(), keys.clone());
        let heads: Join<Option<Vec<u8>>> = Join::new(keys.len(), Box::new(move |tags| {
            let found: Vec<(Vec<u8>, Vec<u8>)> = keys2.into_iter().zip(tags).filter_map(|(k, t)| t.map(|t| (k, t))).collect();
            let mut o = Out::new(resp3);
            o.array(found.len());
            for (k, t) in found {
                o.array(2);
                o.bulk(&k);
                o.bulk(&t);
            }
            server3.exec.completions.push(client, o.to_vec());
        }));
        for (i, k) in keys.into_iter().enumerate() {
            let j = heads.clone();
            store2.client.send(Some(&k), Request::command(&[b"GETRANGE".as_slice(), &k, b"0", b"65535"]), false, Box::new(move |r: Result<&[u8], LinkError>| {
                let tag = r.ok().and_then(bulk_payload).and_then(|p| layout::tag_of(p, kind));
                j.put(i, tag);
            }));
        }
    }));
    for (i, addr) in shards.into_iter().enumerate() {
        scan_shard(store, addr, 0, Vec::new(), join.clone(), i);
    }
}

/// SCANs one shard for strings to its end, then gives the keys to `join`.
fn scan_shard(store: &Arc<Store>, addr: super::conn::Addr, cursor: u64, mut keys: Vec<Vec<u8>>, join: Join<Vec<Vec<u8>>>, i: usize) {
    let req = Request::command(&[b"SCAN".as_slice(), cursor.to_string().as_bytes(), b"COUNT", b"1000", b"TYPE", b"string"]);
    let (store2, at) = (store.clone(), addr.clone());
    store.client.send_to(addr, req, false, Box::new(move |r: Result<&[u8], LinkError>| {
        let Some(crate::resp::decode::RespValue::Array(parts)) = r.ok().and_then(super::frame::decode) else { return join.put(i, keys) };
        let next = match parts.first() {
            Some(crate::resp::decode::RespValue::Bulk(c)) => std::str::from_utf8(c).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
            _ => 0,
        };
        if let Some(crate::resp::decode::RespValue::Array(ks)) = parts.get(1) {
            keys.extend(ks.iter().filter_map(|k| if let crate::resp::decode::RespValue::Bulk(b) = k { Some(b.clone()) } else { None }));
        }
        if next == 0 {
            join.put(i, keys);
        } else {
            scan_shard(&store2, at, next, keys, join, i);
        }
    }), 0);
}

/// The model at `key` for a script's `redisAI.model_execute` (a worker thread that waits; the
/// caller releases the GIL: a model not compiled here yet is loaded by the host's loaders).
pub fn model_now(server: &Arc<Server>, store: &Arc<Store>, key: &[u8]) -> Result<Value, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    fetch(server, store, vec![(key.to_vec(), KeyUse::RunModel)], Box::new(move |r| {
        let _ = tx.send(r);
    }));
    let entries = rx.recv().map_err(|_| "ERR no reply from the store".to_string())??;
    match entries.into_iter().next() {
        Some((_, v)) => Ok(v),
        None => Err("ERR model key is empty".into()),
    }
}

/// What an AI command queued in MULTI becomes in store mode.
pub enum InTx {
    /// Sent inside the MULTI block (for this key).
    Send(Request, Option<Vec<u8>>),
    /// TENSORGET: the key's value is read in the block and formatted here.
    Get { key: Vec<u8>, argv: Vec<Vec<u8>> },
    /// Answered here (runs and loads cannot run inside a transaction).
    Answer(Vec<u8>),
}

/// An AI command queued in MULTI: TENSORSET is checked here and written in the block, TENSORGET
/// read in it; runs, loads and the rest are refused with the embedded keyspace's messages.
pub fn in_transaction(server: &Arc<Server>, spec: &'static CommandSpec, argv: &[Vec<u8>]) -> InTx {
    if spec.has(crate::commands::flags::AI_RUN) {
        return InTx::Answer(error_line("Cannot run RedisAI command within a transaction or a LUA script"));
    }
    let key = argv.get(1).cloned().unwrap_or_default();
    match spec.name {
        "ai.tensorset" => {
            let mut items: Vec<Arg> = argv.iter().cloned().map(Arg::Inline).collect();
            let mut args = Args::new(&[], &mut items);
            let mut overlay = Keyspace::new();
            let mut client = ClientState::internal(server.internal_client.clone());
            let mut out = Out::new(false);
            if let Err(e) = run_handler(server, &mut client, &mut out, spec, &mut args, &mut overlay, false) {
                return InTx::Answer(error_line(&e.0));
            }
            match overlay.peek(&key, 0) {
                Some(v) => InTx::Send(set_same_kind(server, &key, v), Some(key)),
                None => InTx::Answer(error_line("ERR internal: TENSORSET stored nothing")),
            }
        }
        "ai.tensorget" => InTx::Get { key, argv: argv.to_vec() },
        "ai.modelstore" | "ai.modelset" | "ai.scriptstore" | "ai.scriptset" => InTx::Answer(error_line(&format!(
            "ERR {} cannot run inside MULTI or a script: it completes in the background",
            spec.name.to_uppercase()
        ))),
        _ => InTx::Answer(error_line(&format!("ERR {} cannot run inside MULTI in store mode", spec.name.to_uppercase()))),
    }
}

/// TENSORGET's reply from the store's answer to GET (inside EXEC).
pub fn format_tensorget(server: &Arc<Server>, argv: &[Vec<u8>], got: &[u8], resp3: bool) -> Vec<u8> {
    let key = argv.get(1).cloned().unwrap_or_default();
    let mut overlay = Keyspace::new();
    if let Some(e) = error_text(got) {
        if !e.starts_with("WRONGTYPE") {
            return got.to_vec();
        }
        overlay.insert(&key, Value::string(Vec::new()));
    } else if let Some(payload) = bulk_payload(got) {
        match layout::decode(payload) {
            Ok((_, Decoded::Tensor(t))) => overlay.insert(&key, Value::Tensor(t)),
            _ => overlay.insert(&key, Value::string(Vec::new())),
        }
    }
    let mut items: Vec<Arg> = argv.iter().cloned().map(Arg::Inline).collect();
    let mut args = Args::new(&[], &mut items);
    let Some(spec) = lookup(b"ai.tensorget") else { return error_line("ERR internal") };
    let mut client = ClientState::internal(server.internal_client.clone());
    let mut out = Out::new(resp3);
    match run_handler(server, &mut client, &mut out, spec, &mut args, &mut overlay, false) {
        Ok(_) => out.to_vec(),
        Err(e) => error_line(&e.0),
    }
}

fn kind_stored_by(name: &str) -> Kind {
    match name {
        "ai.modelstore" | "ai.modelset" => Kind::Model,
        "ai.scriptstore" | "ai.scriptset" => Kind::Script,
        _ => Kind::Tensor,
    }
}

/// Replies WRONGTYPE if `key` holds anything but a value of `kind`, else `error`.
fn wrongtype_or(server: &Arc<Server>, store: &Arc<Store>, client: u64, key: Vec<u8>, kind: Kind, error: String) {
    let server = server.clone();
    let req = Request::command(&[b"GETRANGE".as_slice(), &key, b"0", (HEADER_LEN - 1).to_string().as_bytes()]);
    store.client.send(Some(&key), req, false, Box::new(move |r: Result<&[u8], LinkError>| {
        let other = match r {
            Ok(b) if error_text(b).is_some_and(|e| e.starts_with("WRONGTYPE")) => true,
            Ok(b) => bulk_payload(b).is_some_and(|p| !p.is_empty() && layout::header(p).is_none_or(|h| h.kind != kind)),
            Err(_) => false,
        };
        let line = if other { "WRONGTYPE Operation against a key holding the wrong kind of value".to_string() } else { error };
        server.stats.error_replies.fetch_add(1, Relaxed);
        server.exec.completions.push(client, error_line(&line));
    }));
}

/// The keys of a waiting command arrived: runs it on them.
pub fn resume(server: &Arc<Server>, store: &Arc<Store>, client: &mut ClientState, out: &mut Out) -> Ran {
    let Some(wait) = client.store_wait.take() else { return (false, None) };
    let fetched = wait.fetched.lock().take();
    let entries = match fetched {
        Some(Ok(e)) => e,
        Some(Err(msg)) => {
            out.error(&msg);
            server.stats.error_replies.fetch_add(1, Relaxed);
            return (false, None);
        }
        None => return (false, None),
    };
    let mut items: Vec<Arg> = wait.argv.into_iter().map(Arg::Inline).collect();
    let mut args = Args::new(&[], &mut items);
    let Some(spec) = lookup(args.get(0)) else { return (false, None) };
    let mut overlay = Keyspace::new();
    let present: Vec<Vec<u8>> = entries.iter().map(|(k, _)| k.clone()).collect();
    for (k, v) in entries {
        overlay.insert(&k, v);
    }
    match run_on(server, store, client, out, spec, &mut args, overlay, &present) {
        Ok(ran) => ran,
        Err(e) => {
            server.stats.error_replies.fetch_add(1, Relaxed);
            out.error(&e.0);
            (false, None)
        }
    }
}

/// Runs the handler on `overlay`; then writes back what it changed (TENSORSET, MODELDEL, ...),
/// holding the reply until the store took it.
#[allow(clippy::too_many_arguments)]
fn run_on(server: &Arc<Server>, store: &Arc<Store>, client: &mut ClientState, out: &mut Out, spec: &'static CommandSpec, args: &mut Args, mut overlay: Keyspace, present: &[Vec<u8>]) -> Result<Ran, CmdError> {
    let before = overlay.changes;
    let mark = out.len();
    let handled = run_handler(server, client, out, spec, args, &mut overlay, false)?;
    if handled.blocked || overlay.changes == before {
        return Ok(handled.start(server));
    }
    // what the handler wrote: the keys it stores or deletes, as they are now in the overlay
    let mut writes: Vec<(Vec<u8>, Option<Value>)> = Vec::new();
    for (k, u) in ai_keys(spec.name, args) {
        if matches!(u, KeyUse::Store | KeyUse::Whole) && !writes.iter().any(|(w, _)| *w == k) {
            match overlay.peek(&k, 0) {
                Some(v) => writes.push((k, Some(snapshot_clone(v)))),
                None if present.contains(&k) => writes.push((k, None)),
                None => {}
            }
        }
    }
    let reply = out.to_vec()[mark..].to_vec();
    out.truncate(mark);
    let id = client.info.id;
    let server2 = server.clone();
    commit(store, writes, Box::new(move |r| {
        server2.exec.completions.push(id, match r {
            Ok(()) => reply,
            Err(line) => error_line(&line),
        });
    }));
    Ok((true, None))
}

/// Fetches `keys` and gives what they hold (absent keys are left out), or the error to reply.
pub fn fetch(server: &Arc<Server>, store: &Arc<Store>, keys: Vec<(Vec<u8>, KeyUse)>, done: FetchDone) {
    // one request per key: the whole value where the command reads it, else its header
    let mut plan: Vec<(Vec<u8>, KeyUse)> = Vec::new();
    for (k, u) in keys {
        match plan.iter_mut().find(|(p, _)| *p == k) {
            Some(p) if matches!(u, KeyUse::Tensor | KeyUse::Whole) => p.1 = u,
            Some(_) => {}
            None => plan.push((k, u)),
        }
    }
    let plan = Arc::new(plan);
    let (server2, store2, plan2) = (server.clone(), store.clone(), plan.clone());
    let join: Join<Result<Found, String>> = Join::new(plan.len(), Box::new(move |all| settle(&server2, &store2, &plan2, all, done)));
    for (i, (key, u)) in plan.iter().cloned().enumerate() {
        let whole = matches!(u, KeyUse::Tensor | KeyUse::Whole);
        let req = if whole {
            Request::command(&[b"GET".as_slice(), &key])
        } else {
            Request::command(&[b"GETRANGE".as_slice(), &key, b"0", (HEADER_LEN - 1).to_string().as_bytes()])
        };
        let (j, store2) = (join.clone(), store.clone());
        let route = key.clone();
        store.client.send_read(Some(&route), req, false, Box::new(move |r: Result<&[u8], LinkError>| {
            j.put(i, read_found(&store2, &key, u, whole, r));
        }));
    }
}

/// Reads one fetched key: a value, its header checked against the compiled cache, or an error.
fn read_found(store: &Store, key: &[u8], u: KeyUse, whole: bool, r: Result<&[u8], LinkError>) -> Result<Found, String> {
    let bytes = r.map_err(|e| e.reply_line())?;
    if let Some(e) = error_text(bytes) {
        return if e.starts_with("WRONGTYPE") { Ok(Found::Plain) } else { Err(e.to_string()) };
    }
    let Some(payload) = bulk_payload(bytes) else { return Ok(Found::Missing) };
    if payload.is_empty() && !whole {
        return Ok(Found::Missing); // GETRANGE of a missing key
    }
    if !layout::is_ours(payload) {
        return Ok(Found::Plain);
    }
    let damaged = |why: String| format!("ERR the store's value at '{}' cannot be read: {why}", String::from_utf8_lossy(key));
    let header = layout::header(payload).ok_or_else(|| damaged("unknown store layout version".into()))?;
    if header.kind != Kind::Tensor {
        if let Some((id, v)) = store.compiled.lock().get(key) {
            if *id == header.id {
                store.client.stats.cache_hits.fetch_add(1, Relaxed);
                return Ok(Found::Value(snapshot_clone(v)));
            }
        }
    }
    if !whole {
        return Ok(match (u, header.kind) {
            (KeyUse::RunModel, Kind::Model) | (KeyUse::RunScript, Kind::Script) => {
                store.client.stats.cache_misses.fetch_add(1, Relaxed);
                Found::Load(header.kind, key.to_vec())
            }
            // an output key holding a tensor: the run may replace it, as if it were free
            (_, Kind::Tensor) => Found::Missing,
            _ => Found::Plain,
        });
    }
    match layout::decode(payload) {
        Ok((_, Decoded::Tensor(t))) => Ok(Found::Value(Value::Tensor(t))),
        // read for MODELGET, SCRIPTGET, MODELDEL, AI.INFO: described, not run
        Ok((_, Decoded::Model(spec))) => Ok(Found::Value(spec_only_model(spec))),
        Ok((_, Decoded::Script(spec))) => Ok(Found::Value(Value::Script(Arc::new(Script::new(spec, Arc::new(())))))),
        Err(DecodeError::NotOurs) => Ok(Found::Plain),
        Err(DecodeError::Damaged(why)) => Err(damaged(why)),
    }
}

fn spec_only_model(spec: ModelSpec) -> Value {
    let (i, o) = (spec.inputs.clone(), spec.outputs.clone());
    Value::Model(Arc::new(Model::new(spec, i, o, Arc::new(()))))
}

/// Loads what must be loaded (whole value, then the host's loader), caches it, and hands the
/// overlay's entries to `done`.
fn settle(server: &Arc<Server>, store: &Arc<Store>, plan: &[(Vec<u8>, KeyUse)], all: Vec<Result<Found, String>>, done: FetchDone) {
    let mut entries = Vec::new();
    let mut loads = Vec::new();
    for ((key, _), f) in plan.iter().zip(all) {
        match f {
            Err(e) => return done(Err(e)),
            Ok(Found::Missing) => {}
            Ok(Found::Plain) => entries.push((key.clone(), Value::string(Vec::new()))),
            Ok(Found::Value(v)) => entries.push((key.clone(), v)),
            Ok(Found::Load(kind, k)) => loads.push((kind, k)),
        }
    }
    let join: Join<Result<(Vec<u8>, Value), String>> = Join::new(loads.len(), Box::new(move |loaded| {
        for r in loaded {
            match r {
                Ok(entry) => entries.push(entry),
                Err(e) => return done(Err(e)),
            }
        }
        done(Ok(entries))
    }));
    for (i, (kind, key)) in loads.into_iter().enumerate() {
        let j = join.clone();
        let k = key.clone();
        load_into_cache(server, store, key, kind, Box::new(move |r: Result<Value, String>| j.put(i, r.map(|v| (k, v)))));
    }
}

/// Fetches a model or script whole, has the host load it, and caches it under its value id.
fn load_into_cache(server: &Arc<Server>, store: &Arc<Store>, key: Vec<u8>, kind: Kind, done: Box<dyn FnOnce(Result<Value, String>) + Send>) {
    let (store2, server2) = (store.clone(), server.clone());
    let k = key.clone();
    store.client.send(Some(&key), Request::command(&[b"GET".as_slice(), &key]), false, Box::new(move |r: Result<&[u8], LinkError>| {
        let bytes = match r {
            Ok(b) => b,
            Err(e) => return done(Err(e.reply_line())),
        };
        let Some(payload) = bulk_payload(bytes) else {
            // gone since its header was read: as if it had been missing
            return done(Err(match kind {
                Kind::Script => "ERR script key is empty".into(),
                _ => "ERR model key is empty".into(),
            }));
        };
        let (header, decoded) = match layout::decode(payload) {
            Ok(d) => d,
            Err(_) => return done(Err("WRONGTYPE Operation against a key holding the wrong kind of value".into())),
        };
        let host = match decoded {
            Decoded::Model(spec) => {
                let store3 = store2.clone();
                HostJob::LoadModel {
                    spec,
                    done: Box::new(move |spec, result: Result<LoadedModel, String>| match result {
                        Ok(loaded) => {
                            let v = crate::commands::model::model_value(spec, loaded);
                            store3.compiled.lock().insert(k, (header.id, snapshot_clone(&v)));
                            done(Ok(v))
                        }
                        Err(msg) => done(Err(msg)),
                    }),
                }
            }
            Decoded::Script(spec) => {
                let store3 = store2.clone();
                HostJob::CompileScript {
                    spec,
                    done: Box::new(move |spec, result| match result {
                        Ok(handle) => {
                            let v = Value::Script(Arc::new(Script::new(spec, handle)));
                            store3.compiled.lock().insert(k, (header.id, snapshot_clone(&v)));
                            done(Ok(v))
                        }
                        Err(msg) => done(Err(msg)),
                    }),
                }
            }
            Decoded::Tensor(_) => return done(Err("WRONGTYPE Operation against a key holding the wrong kind of value".into())),
        };
        server2.exec.host.push(host);
    }));
}

/// Sets a value only if the key is free or holds a value of the same kind (our layout, same
/// kind byte), atomically: `KEYS[1]`, `ARGV[1]` magic, `ARGV[2]` kind, `ARGV[3]` the value.
const SET_SAME_KIND: &str = "local t = redis.call('TYPE', KEYS[1])['ok'] \
    if t ~= 'none' then \
      local h = '' \
      if t == 'string' then h = redis.call('GETRANGE', KEYS[1], 0, 5) end \
      if string.sub(h, 1, 4) ~= ARGV[1] or string.byte(h, 6) ~= tonumber(ARGV[2]) then \
        return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value') \
      end \
    end \
    return redis.call('SET', KEYS[1], ARGV[3])";

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Model(_) => Kind::Model,
        Value::Script(_) => Kind::Script,
        _ => Kind::Tensor,
    }
}

/// The EVAL that writes `v` under `key` with a new value id, if the key is free or of its kind.
fn set_request(key: &[u8], v: &Value, kind: Kind, id: layout::ValueId) -> Request {
    let parts: Vec<Part> = layout::encode(v, id);
    let kind_arg = (kind as u8).to_string();
    let mut req = Request::default();
    req.push_command_with_tail(&[b"EVAL".as_slice(), SET_SAME_KIND.as_bytes(), b"1", key, &layout::MAGIC, kind_arg.as_bytes()], parts);
    req
}

fn set_same_kind(server: &Server, key: &[u8], v: &Value) -> Request {
    let id = server.store.get().map(|s| s.ids.next()).unwrap_or([0; 16]);
    set_request(key, v, kind_of(v), id)
}

/// Values at least this big reach the store as a plain SET of a temporary key that a small
/// script then renames over the key (a value passed through a script is copied twice more: a
/// 256 KiB SET took 64 µs, an EVAL carrying it 360 µs).
const SET_DIRECTLY_ABOVE: usize = 32 * 1024;

/// `KEYS[1]` the key, `KEYS[2]` the temporary key holding the new value; ARGV as SET_SAME_KIND.
/// The type check and the rename are one atomic step; the temporary key's TTL is dropped.
const RENAME_SAME_KIND: &str = "local t = redis.call('TYPE', KEYS[1])['ok'] \
    if t ~= 'none' then \
      local h = '' \
      if t == 'string' then h = redis.call('GETRANGE', KEYS[1], 0, 5) end \
      if string.sub(h, 1, 4) ~= ARGV[1] or string.byte(h, 6) ~= tonumber(ARGV[2]) then \
        redis.call('DEL', KEYS[2]) \
        return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value') \
      end \
    end \
    if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('ERR the value did not reach the store') end \
    redis.call('RENAME', KEYS[2], KEYS[1]) \
    redis.call('PERSIST', KEYS[1]) \
    return 'OK'";

/// A temporary key in the slot of `key` (its hash tag, or the whole key as the tag).
fn temporary_key(key: &[u8], id: &layout::ValueId) -> Vec<u8> {
    let mut t = Vec::with_capacity(key.len() + 48);
    t.push(b'{');
    t.extend_from_slice(super::slot::hash_part(key));
    t.extend_from_slice(b"}:redisai-fast:incoming:");
    for b in id {
        t.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    t
}

/// Writes values (None: delete) to the store; `done` gets Ok once every write was acknowledged,
/// or the first error line. Models and scripts written are cached under their new ids.
pub fn commit(store: &Arc<Store>, writes: Vec<(Vec<u8>, Option<Value>)>, done: Box<dyn FnOnce(Result<(), String>) + Send>) {
    let join: Join<Option<String>> = Join::new(writes.len(), Box::new(move |errors| {
        done(match errors.into_iter().flatten().next() {
            None => Ok(()),
            Some(line) => Err(line),
        })
    }));
    for (i, (key, value)) in writes.into_iter().enumerate() {
        let mut req = Request::default();
        let mut cache = None;
        match &value {
            None => {
                store.forget(&key);
                req.push_command(&[b"DEL".as_slice(), &key]);
            }
            Some(v) => {
                let id = store.ids.next();
                let kind = kind_of(v);
                if kind != Kind::Tensor {
                    cache = Some((id, snapshot_clone(v)));
                }
                req = set_request(&key, v, kind, id);
            }
        }
        // a big value: SET of a temporary key first, on the same connection (so before the rename)
        let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        if let Some(v) = value.as_ref().filter(|v| req.len() >= SET_DIRECTLY_ABOVE + HEADER_LEN && !matches!(v, Value::Str(_))) {
            let id = cache.as_ref().map(|c| c.0).unwrap_or_else(|| store.ids.next());
            let tmp = temporary_key(&key, &id);
            // expires by itself if this node dies before the rename
            let mut set = Request::default();
            set.push_command_around(&[b"SET".as_slice(), &tmp], layout::encode(v, id), &[b"PX".as_slice(), b"60000"]);
            let fe = first_error.clone();
            store.client.send(Some(&key), set, false, Box::new(move |r: Result<&[u8], LinkError>| {
                let err = match r {
                    Err(e) => Some(e.reply_line()),
                    Ok(b) => error_text(b).map(str::to_string),
                };
                *fe.lock() = err;
            }));
            let kind_arg = (kind_of(v) as u8).to_string();
            req = Request::command(&[b"EVAL".as_slice(), RENAME_SAME_KIND.as_bytes(), b"2", &key, &tmp, &layout::MAGIC, kind_arg.as_bytes()]);
        }
        let (store2, j, k) = (store.clone(), join.clone(), key.clone());
        let on_reply: ReplyFn = Box::new(move |r: Result<&[u8], LinkError>| {
            let err = match r {
                Err(e) => Some(e.reply_line()),
                Ok(b) => error_text(b).map(str::to_string),
            };
            // the temporary key's own error (OOM, say) explains the rename's
            let err = err.map(|e| first_error.lock().take().unwrap_or(e));
            match (&err, cache) {
                (None, Some(c)) => {
                    store2.compiled.lock().insert(k, c);
                }
                (Some(_), _) => store2.forget(&k),
                _ => {}
            }
            j.put(i, err);
        });
        store.send_write(Some(&key), req, false, on_reply);
    }
}

/// Writes a run's output tensors (or a DAG's PERSIST) and then gives `client` `reply`.
pub fn commit_tensors(server: &Arc<Server>, store: &Arc<Store>, client: u64, tensors: Vec<(Vec<u8>, Tensor)>, reply: Vec<u8>) {
    let server = server.clone();
    let writes = tensors.into_iter().map(|(k, t)| (k, Some(Value::Tensor(t)))).collect();
    commit(store, writes, Box::new(move |r| {
        server.exec.completions.push(client, match r {
            Ok(()) => reply,
            Err(line) => error_line(&line),
        });
    }));
}

/// A DAG's PERSIST tensors: written, then the DAG's reply (its op replies, plus the write's error
/// as a last element if the store refused one, as the embedded keyspace answers a clash).
pub fn commit_dag(server: &Arc<Server>, store: &Arc<Store>, client: u64, tensors: Vec<(Vec<u8>, Tensor)>, statuses: Vec<Vec<u8>>, resp3: bool) {
    let server = server.clone();
    let writes = tensors.into_iter().map(|(k, t)| (k, Some(Value::Tensor(t)))).collect();
    commit(store, writes, Box::new(move |r| {
        let mut out = Out::new(resp3);
        out.array(statuses.len() + r.is_err() as usize);
        for s in &statuses {
            out.raw(s);
        }
        if let Err(line) = r {
            out.error(&line);
        }
        server.exec.completions.push(client, out.to_vec());
    }));
}

/// A model or script just loaded for MODELSTORE/SCRIPTSTORE: written to the store, then `+OK`.
pub fn commit_loaded(store: &Arc<Store>, key: Vec<u8>, value: Value, reply: Box<dyn FnOnce(Vec<u8>) + Send>) {
    commit(store, vec![(key, Some(value))], Box::new(move |r| {
        reply(match r {
            Ok(()) => b"+OK\r\n".to_vec(),
            Err(line) => error_line(&line),
        })
    }));
}
