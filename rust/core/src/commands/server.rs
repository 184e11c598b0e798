//! Connection and server commands: PING ECHO HELLO AUTH SELECT QUIT RESET COMMAND CLIENT INFO
//! DBSIZE CONFIG SHUTDOWN FLUSHDB FLUSHALL TIME MODULE.
use std::sync::atomic::Ordering::Relaxed;

use super::{flags, is, lookup, table::COMMANDS, CommandSpec, Ctx};
use crate::config::ConfigError;
use crate::error::{CmdError, CmdResult};
use crate::num::parse_i64;
use crate::resp::{Args, Reply};
use crate::server::{ClientInfo, ShutdownMode};

/// The Redis version we report; clients gate features on it.
pub const REDIS_VERSION: &str = "7.2.0";
/// RedisAI's module version we emulate (MAJOR*10000+MINOR*100+PATCH).
pub const RAI_MODULE_VERSION: i64 = 10207;
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// PING [message]
pub fn ping(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(args.get(1)),
        _ => return Err(CmdError::arity("ping")),
    }
    Ok(())
}

/// ECHO message
pub fn echo(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ctx.out.bulk(args.get(1));
    Ok(())
}

/// Authenticates the connection as `user` (the ACL user's passwords); a failure is logged in the
/// ACL LOG (reason `auth`), as Redis logs it.
fn authenticate(ctx: &mut Ctx, user: &[u8], pass: &[u8]) -> CmdResult {
    let name = lossy(user);
    let found = ctx.server.acl.read().user(&name);
    match found {
        Some(u) if u.check_password(pass) => {
            ctx.client.set_user(u);
            ctx.client.acl_epoch = ctx.server.acl_epoch.load(Relaxed);
            ctx.client.authenticated = true;
            Ok(())
        }
        _ => {
            let context = if ctx.client.multi.is_some() { crate::acl::LogContext::Multi } else { crate::acl::LogContext::Toplevel };
            let info = client_line(&ctx.client.info, ctx.now, ctx.spec.name);
            let max = ctx.server.config.read().acllog_max_len();
            let entry = crate::acl::LogEntry {
                count: 1,
                reason: crate::acl::Denial::Auth,
                context,
                object: "AUTH".into(),
                username: name,
                updated_ms: ctx.now,
                client_info: info,
            };
            ctx.server.acl.write().log_denial(entry, max);
            Err(CmdError::line("WRONGPASS invalid username-password pair or user is disabled."))
        }
    }
}

/// AUTH [username] password
pub fn auth(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (user, pass) = match args.len() {
        2 => {
            let d = ctx.server.default_user();
            if d.nopass {
                return Err(CmdError::err(
                    "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ));
            }
            (&b"default"[..], args.get(1))
        }
        3 => (args.get(1), args.get(2)),
        _ => return Err(CmdError::syntax()),
    };
    authenticate(ctx, user, pass)?;
    ctx.out.ok();
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut proto = None;
    let mut i = 1;
    if args.len() > 1 {
        let v = parse_i64(args.get(1)).ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::line("NOPROTO unsupported protocol version"));
        }
        proto = Some(v);
        i = 2;
    }
    let mut setname = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(args.get(i), "AUTH") && more >= 2 {
            authenticate(ctx, args.get(i + 1), args.get(i + 2))?;
            i += 3;
        } else if is(args.get(i), "SETNAME") && more >= 1 {
            let name = args.get(i + 1);
            validate_client_name(name)?;
            setname = Some(lossy(name));
            i += 2;
        } else {
            return Err(CmdError::err(format!("Syntax error in HELLO option '{}'", lossy(args.get(i)))));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::line(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = setname {
        *ctx.client.info.name.lock() = name;
    }
    if let Some(p) = proto {
        ctx.out.resp3 = p == 3;
        ctx.client.info.resp.store(p as u64, Relaxed);
    }
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk_str("server");
    out.bulk_str("redis");
    out.bulk_str("version");
    out.bulk_str(REDIS_VERSION);
    out.bulk_str("proto");
    out.int(if out.resp3 { 3 } else { 2 });
    out.bulk_str("id");
    out.int(ctx.client.info.id as i64);
    out.bulk_str("mode");
    out.bulk_str("standalone");
    out.bulk_str("role");
    out.bulk_str("master");
    out.bulk_str("modules");
    reply_modules(out);
    Ok(())
}

fn reply_modules(out: &mut dyn Reply) {
    out.array(1);
    out.map(4);
    out.bulk_str("name");
    out.bulk_str("ai");
    out.bulk_str("ver");
    out.int(RAI_MODULE_VERSION);
    out.bulk_str("path");
    out.bulk_str("redisai_fast (built in)");
    out.bulk_str("args");
    out.array(0);
}

/// MODULE LIST (RedisAI appears as the module `ai`; nothing can be loaded).
pub fn module(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if is(args.get(1), "LIST") && args.len() == 2 {
        reply_modules(ctx.out);
        return Ok(());
    }
    Err(CmdError::err("MODULE LOAD is not supported: the RedisAI commands are built in"))
}

/// SELECT index (only database 0 exists)
pub fn select(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    match parse_i64(args.get(1)) {
        Some(0) => {
            ctx.out.ok();
            Ok(())
        }
        Some(_) => Err(CmdError::err("DB index is out of range")),
        None => Err(CmdError::not_integer()),
    }
}

/// QUIT
pub fn quit(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// RESET: back to a fresh connection's state.
pub fn reset(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    ctx.client.multi = None;
    let keys = std::mem::take(&mut ctx.client.watched);
    ctx.ks.unwatch_all(&keys, ctx.client.info.id);
    ctx.out.resp3 = false;
    ctx.client.info.resp.store(2, Relaxed);
    ctx.client.info.name.lock().clear();
    let d = ctx.server.default_user();
    ctx.client.authenticated = d.enabled && d.nopass;
    ctx.client.set_user(d);
    ctx.client.acl_epoch = ctx.server.acl_epoch.load(Relaxed);
    ctx.client.info.no_evict.store(false, Relaxed);
    ctx.out.simple("RESET");
    Ok(())
}

/// DBSIZE
pub fn dbsize(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    ctx.out.int(ctx.ks.len() as i64);
    Ok(())
}

/// FLUSHDB / FLUSHALL [ASYNC | SYNC]
pub fn flush(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() > 2 || (args.len() == 2 && !is(args.get(1), "ASYNC") && !is(args.get(1), "SYNC")) {
        return Err(CmdError::syntax());
    }
    ctx.ks.flush();
    ctx.out.ok();
    Ok(())
}

/// TIME
pub fn time(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk(now.as_secs().to_string().as_bytes());
    ctx.out.bulk(now.subsec_micros().to_string().as_bytes());
    Ok(())
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE]
pub fn shutdown(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut mode = ShutdownMode::Default;
    for i in 1..args.len() {
        let a = args.get(i);
        if is(a, "NOSAVE") {
            mode = ShutdownMode::NoSave;
        } else if is(a, "SAVE") {
            mode = ShutdownMode::Save;
        } else if !(is(a, "NOW") || is(a, "FORCE")) {
            return Err(CmdError::syntax());
        }
    }
    ctx.server.request_shutdown(mode);
    // like Redis, a successful SHUTDOWN answers nothing: the connection just closes
    ctx.client.close_after_reply = true;
    Ok(())
}

// ---------------------------------------------------------------- COMMAND

fn flag_names(c: &CommandSpec) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = flags::NAMES.iter().filter(|(f, _)| c.flags & f != 0).map(|(_, n)| *n).collect();
    if has_movable_keys(c) {
        names.push("movablekeys");
    }
    names
}

/// DAGs name their keys in LOAD/PERSIST and their ops: clients ask COMMAND GETKEYS for them.
fn has_movable_keys(c: &CommandSpec) -> bool {
    c.group == "ai" && c.name.starts_with("ai.dag")
}

fn reply_command_info(out: &mut dyn Reply, c: &CommandSpec) {
    out.array(10);
    out.bulk_str(c.name);
    out.int(c.arity as i64);
    let fl = flag_names(c);
    out.set(fl.len());
    for f in fl {
        out.simple(f);
    }
    out.int(c.first_key as i64);
    out.int(c.last_key as i64);
    out.int(c.step as i64);
    let cats: Vec<&str> = crate::acl::cat::NAMES.iter().filter(|(_, f)| c.acl & f != 0).map(|(n, _)| *n).collect();
    out.set(cats.len());
    for n in cats {
        out.simple(&format!("@{n}"));
    }
    out.set(0); // tips
    out.array(0); // key specs
    out.array(0); // subcommands
}

fn reply_command_doc(out: &mut dyn Reply, c: &CommandSpec) {
    out.map(4);
    out.bulk_str("summary");
    out.bulk_str(c.summary);
    out.bulk_str("since");
    out.bulk_str("1.0.0");
    out.bulk_str("group");
    out.bulk_str(c.group);
    out.bulk_str("complexity");
    out.bulk_str("O(1)");
}

/// COMMAND [COUNT | INFO name... | DOCS [name...] | LIST | GETKEYS cmd args...]
pub fn command(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let out = &mut *ctx.out;
    if args.len() == 1 {
        out.array(COMMANDS.len());
        COMMANDS.iter().for_each(|c| reply_command_info(out, c));
        return Ok(());
    }
    let sub = args.get(1);
    if is(sub, "COUNT") {
        out.int(COMMANDS.len() as i64);
    } else if is(sub, "LIST") {
        out.array(COMMANDS.len());
        COMMANDS.iter().for_each(|c| out.bulk_str(c.name));
    } else if is(sub, "INFO") {
        let names: Vec<Vec<u8>> = (2..args.len()).map(|i| args.get(i).to_vec()).collect();
        if names.is_empty() {
            out.array(COMMANDS.len());
            COMMANDS.iter().for_each(|c| reply_command_info(out, c));
        } else {
            out.array(names.len());
            for n in names {
                match lookup(&n) {
                    Some(c) => reply_command_info(out, c),
                    None => out.null_array(),
                }
            }
        }
    } else if is(sub, "DOCS") {
        let specs: Vec<&CommandSpec> =
            if args.len() == 2 { COMMANDS.iter().collect() } else { (2..args.len()).filter_map(|i| lookup(args.get(i))).collect() };
        out.map(specs.len());
        for c in specs {
            out.bulk_str(c.name);
            reply_command_doc(out, c);
        }
    } else if is(sub, "GETKEYS") {
        if args.len() < 3 {
            return Err(CmdError::arity("command|getkeys"));
        }
        let spec = lookup(args.get(2)).ok_or_else(|| CmdError::err("Invalid command specified"))?;
        let argc = args.len() - 2;
        if !spec.arity_ok(argc) {
            return Err(CmdError::err("Invalid number of arguments specified for command"));
        }
        let keys: Vec<Vec<u8>> = if has_movable_keys(spec) {
            let cmd = args.sub(2, args.len());
            let mut keys: Vec<Vec<u8>> = Vec::new();
            for (k, _) in crate::commands::ai_keys::ai_keys(spec.name, &cmd) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            // store mode: any node serves keys of any shard, so one key is enough to route by
            // (a cluster client would refuse a DAG whose keys hash to several slots)
            if ctx.server.store.get().is_some() {
                keys.truncate(1);
            }
            keys
        } else {
            spec.key_positions(argc).into_iter().map(|k| args.get(k + 2).to_vec()).collect()
        };
        if keys.is_empty() {
            return Err(CmdError::err("The command has no key arguments"));
        }
        out.array(keys.len());
        for k in keys {
            out.bulk(&k);
        }
    } else {
        return Err(unknown_subcommand(sub, "COMMAND"));
    }
    Ok(())
}

/// CLUSTER <subcommand>, READONLY, READWRITE, ASKING: this is a single server, answered as a
/// redis-server started without cluster support answers (clients probe with CLUSTER INFO).
pub fn cluster(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    const DISABLED: &str = "This instance has cluster support disabled";
    if let Some(store) = ctx.server.store.get().cloned() {
        return cluster_in_store_mode(ctx, args, &store);
    }
    if ctx.spec.name != "cluster" {
        return Err(CmdError::err(DISABLED));
    }
    // (subcommand, arity as Redis counts it: negative = at least)
    const SUBCOMMANDS: &[(&str, i32)] = &[
        ("ADDSLOTS", -3), ("ADDSLOTSRANGE", -4), ("BUMPEPOCH", 2), ("COUNT-FAILURE-REPORTS", 3),
        ("COUNTKEYSINSLOT", 3), ("DELSLOTS", -3), ("DELSLOTSRANGE", -4), ("FAILOVER", -2), ("FLUSHSLOTS", 2),
        ("FORGET", 3), ("GETKEYSINSLOT", 4), ("HELP", 2), ("INFO", 2), ("KEYSLOT", 3), ("LINKS", 2), ("MEET", -4),
        ("MYID", 2), ("MYSHARDID", 2), ("NODES", 2), ("REPLICAS", 3), ("REPLICATE", 3), ("RESET", -2),
        ("SAVECONFIG", 2), ("SET-CONFIG-EPOCH", 3), ("SETSLOT", -4), ("SHARDS", 2), ("SLAVES", 3), ("SLOTS", 2),
    ];
    let sub = args.get(1);
    let Some(&(name, arity)) = SUBCOMMANDS.iter().find(|(n, _)| is(sub, n)) else {
        return Err(unknown_subcommand(sub, "CLUSTER"));
    };
    let n = args.len() as i32;
    if (arity >= 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(CmdError::err(format!("wrong number of arguments for 'cluster|{}' command", name.to_lowercase())));
    }
    Err(CmdError::err(DISABLED))
}

/// Store mode: the node answers as a Redis Cluster node would, with the map of the nodes in
/// front of the store (store::node); slot administration belongs to the store's own cluster.
fn cluster_in_store_mode(ctx: &mut Ctx, args: &mut Args, store: &std::sync::Arc<crate::store::Store>) -> CmdResult {
    use crate::store::node;
    if ctx.spec.name != "cluster" {
        ctx.out.ok(); // READONLY, READWRITE, ASKING: any node serves any key
        return Ok(());
    }
    let sub = args.get(1).to_ascii_uppercase();
    let argc = args.len();
    match (sub.as_slice(), argc) {
        (b"SLOTS", 2) => node::reply_slots(store, ctx.out),
        (b"SHARDS", 2) => node::reply_shards(store, ctx.out),
        (b"NODES", 2) => ctx.out.verbatim(&node::nodes_text(store, &ctx.server.run_id)),
        (b"INFO", 2) => ctx.out.verbatim(&node::info_text(store)),
        (b"MYID", 2) => ctx.out.bulk(ctx.server.run_id.as_bytes()),
        (b"MYSHARDID", 2) => ctx.out.bulk(ctx.server.run_id.as_bytes()),
        (b"KEYSLOT", 3) => ctx.out.int(crate::store::slot::key_slot(args.get(2)) as i64),
        (b"HELP", 2) => {
            let lines = ["CLUSTER SLOTS | SHARDS | NODES | INFO | MYID | KEYSLOT <key>", "(store mode: the store's own cluster manages slots)"];
            ctx.out.array(lines.len());
            for l in lines {
                ctx.out.simple(l);
            }
        }
        _ => {
            return Err(CmdError::err(format!(
                "CLUSTER {} is not available in store mode: the store's own cluster manages its slots",
                lossy(&sub)
            )))
        }
    }
    Ok(())
}

pub fn unknown_subcommand(sub: &[u8], cmd: &str) -> CmdError {
    CmdError::err(format!("unknown subcommand '{}'. Try {cmd} HELP.", lossy(sub)))
}

// ---------------------------------------------------------------- CLIENT

fn validate_client_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

/// The CLIENT LIST line of a connection (also the ACL LOG's `client-info`).
pub fn client_line(c: &ClientInfo, now: u64, cmd: &str) -> String {
    let last = c.last_ms.load(Relaxed);
    let mut flags = String::new();
    if c.monitor.load(Relaxed) {
        flags.push('O');
    }
    if c.in_multi.load(Relaxed) {
        flags.push('x');
    }
    if c.blocked.load(Relaxed) {
        flags.push('b');
    }
    if c.is_unix() {
        flags.push('U');
    }
    if c.no_evict.load(Relaxed) {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.name.lock(),
        now.saturating_sub(c.created_ms) / 1000,
        now.saturating_sub(last) / 1000,
        flags,
        if c.in_multi.load(Relaxed) { 0 } else { -1 },
        c.qbuf.load(Relaxed),
        cmd,
        c.user.lock(),
        c.resp.load(Relaxed),
        c.lib_name.lock(),
        c.lib_ver.lock(),
    )
}

/// CLIENT ID | GETNAME | SETNAME | SETINFO | LIST | INFO | NO-EVICT | NO-TOUCH | REPLY
pub fn client(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let sub = args.get(1).to_ascii_uppercase();
    let argc = args.len();
    let me = ctx.client.info.clone();
    match (sub.as_slice(), argc) {
        (b"ID", 2) => ctx.out.int(me.id as i64),
        (b"GETNAME", 2) => {
            let n = me.name.lock().clone();
            if n.is_empty() {
                ctx.out.null()
            } else {
                ctx.out.bulk_str(&n)
            }
        }
        (b"SETNAME", 3) => {
            validate_client_name(args.get(2))?;
            *me.name.lock() = lossy(args.get(2));
            ctx.out.ok();
        }
        (b"SETINFO", 4) => {
            let attr = args.get(2).to_ascii_uppercase();
            let val = args.get(3);
            if val.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                return Err(CmdError::err(format!(
                    "{} cannot contain spaces, newlines or special characters.",
                    lossy(&attr)
                )));
            }
            match attr.as_slice() {
                b"LIB-NAME" => *me.lib_name.lock() = lossy(val),
                b"LIB-VER" => *me.lib_ver.lock() = lossy(val),
                _ => return Err(CmdError::err(format!("Unrecognized option '{}'", lossy(args.get(2))))),
            }
            ctx.out.ok();
        }
        (b"INFO", 2) => {
            let line = client_line(&me, ctx.now, "client|info") + "\n";
            ctx.out.verbatim(&line);
        }
        (b"LIST", _) => {
            let mut ids: Option<Vec<u64>> = None;
            let mut i = 2;
            while i < argc {
                if is(args.get(i), "TYPE") && i + 1 < argc {
                    let t = args.get(i + 1);
                    if !(is(t, "normal") || is(t, "master") || is(t, "replica") || is(t, "pubsub")) {
                        return Err(CmdError::err(format!("Unknown client type '{}'", lossy(t))));
                    }
                    if !is(t, "normal") {
                        ids = Some(vec![]);
                    }
                    i += 2;
                } else if is(args.get(i), "ID") && i + 1 < argc {
                    let mut v = Vec::new();
                    for j in i + 1..argc {
                        match parse_i64(args.get(j)) {
                            Some(n) if n > 0 => v.push(n as u64),
                            _ => return Err(CmdError::err("Invalid client ID")),
                        }
                    }
                    ids = Some(v);
                    i = argc;
                } else {
                    return Err(CmdError::syntax());
                }
            }
            let mut text = String::new();
            for c in ctx.server.clients() {
                if ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
                    continue;
                }
                let cmd = if c.id == me.id { "client|list".to_string() } else { c.last_cmd.lock().to_string() };
                text.push_str(&client_line(&c, ctx.now, &cmd));
                text.push('\n');
            }
            ctx.out.verbatim(&text);
        }
        (b"NO-EVICT", 3) | (b"NO-TOUCH", 3) => {
            let on = if is(args.get(2), "ON") {
                true
            } else if is(args.get(2), "OFF") {
                false
            } else {
                return Err(CmdError::syntax());
            };
            if sub == b"NO-EVICT" {
                me.no_evict.store(on, Relaxed);
            }
            ctx.out.ok()
        }
        (b"KILL", _) if argc >= 3 => client_kill(ctx, args)?,
        (b"PAUSE", 3 | 4) => {
            let ms = parse_i64(args.get(2)).filter(|&v| v >= 0).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
            let writes_only = if argc == 4 {
                if is(args.get(3), "WRITE") {
                    true
                } else if is(args.get(3), "ALL") {
                    false
                } else {
                    return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL"));
                }
            } else {
                false
            };
            let s = &ctx.server;
            let until = ctx.now + ms as u64;
            // a pause in force only lengthens, and ALL wins over WRITE (as Redis combines them)
            if s.pause_until_ms.load(Relaxed) < ctx.now {
                s.pause_writes_only.store(writes_only, Relaxed);
            } else if !writes_only {
                s.pause_writes_only.store(false, Relaxed);
            }
            s.pause_until_ms.fetch_max(until, Relaxed);
            ctx.out.ok()
        }
        (b"UNPAUSE", 2) => {
            ctx.server.pause_until_ms.store(0, Relaxed);
            ctx.out.ok()
        }
        (b"REPLY", 3) if is(args.get(2), "ON") => ctx.out.ok(),
        (b"ID" | b"GETNAME" | b"SETNAME" | b"SETINFO" | b"INFO" | b"NO-EVICT" | b"NO-TOUCH" | b"REPLY" | b"KILL" | b"PAUSE" | b"UNPAUSE", _) => {
            return Err(CmdError::arity(&format!("client|{}", lossy(&sub).to_lowercase())));
        }
        _ => return Err(unknown_subcommand(args.get(1), "CLIENT")),
    }
    Ok(())
}

/// CLIENT KILL addr:port | CLIENT KILL [ID id] [ADDR addr] [LADDR addr] [USER name] [SKIPME yes|no]
fn client_kill(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let me = ctx.client.info.id;
    let clients = ctx.server.clients();
    if args.len() == 3 {
        // the old form: one address, +OK or an error
        let addr = args.get(2);
        let Some(c) = clients.iter().find(|c| c.addr.as_bytes() == addr) else { return Err(CmdError::err("No such client")) };
        kill(ctx, c.id, me);
        ctx.out.ok();
        return Ok(());
    }
    let (mut id, mut addr, mut laddr, mut user, mut skipme) = (None, None, None, None, true);
    let mut i = 2;
    while i + 1 < args.len() {
        let (opt, val) = (args.get(i), args.get(i + 1));
        if is(opt, "ID") {
            id = Some(parse_i64(val).filter(|&v| v > 0).ok_or_else(|| CmdError::err("client-id should be greater than 0"))? as u64);
        } else if is(opt, "ADDR") {
            addr = Some(val.to_vec());
        } else if is(opt, "LADDR") {
            laddr = Some(val.to_vec());
        } else if is(opt, "USER") {
            let name = lossy(val);
            if ctx.server.acl.read().user(&name).is_none() {
                return Err(CmdError::err(format!("No such user '{name}'")));
            }
            user = Some(name);
        } else if is(opt, "SKIPME") {
            skipme = if is(val, "yes") {
                true
            } else if is(val, "no") {
                false
            } else {
                return Err(CmdError::syntax());
            };
        } else if is(opt, "TYPE") {
            if !(is(val, "normal") || is(val, "master") || is(val, "replica") || is(val, "slave") || is(val, "pubsub")) {
                return Err(CmdError::err(format!("Unknown client type '{}'", lossy(val))));
            }
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    if i != args.len() {
        return Err(CmdError::syntax());
    }
    let mut n = 0;
    for c in &clients {
        let matches = id.is_none_or(|v| v == c.id)
            && addr.as_ref().is_none_or(|a| a == c.addr.as_bytes())
            && laddr.as_ref().is_none_or(|a| a == c.laddr.as_bytes())
            && user.as_ref().is_none_or(|u| *u == *c.user.lock());
        if matches && !(skipme && c.id == me) {
            kill(ctx, c.id, me);
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// Closes connection `id`: this one after its reply, another through the host.
fn kill(ctx: &mut Ctx, id: u64, me: u64) {
    if id == me {
        ctx.client.close_after_reply = true;
    } else {
        ctx.server.kill_client(id);
    }
}

// ---------------------------------------------------------------- CONFIG

/// CONFIG GET pattern... | SET name value... | RESETSTAT | REWRITE
pub fn config(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let sub = args.get(1);
    if is(sub, "GET") {
        if args.len() < 3 {
            return Err(CmdError::arity("config|get"));
        }
        let cfg = ctx.server.config.read();
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for i in 2..args.len() {
            for (n, v) in cfg.matching(args.get(i)) {
                if !pairs.iter().any(|(m, _)| *m == n) {
                    pairs.push((n, v.to_string()));
                }
            }
        }
        drop(cfg);
        ctx.out.map(pairs.len());
        for (n, v) in pairs {
            ctx.out.bulk_str(n);
            ctx.out.bulk_str(&v);
        }
    } else if is(sub, "SET") {
        if args.len() < 4 || !args.len().is_multiple_of(2) {
            return Err(CmdError::arity("config|set"));
        }
        let mut cfg = ctx.server.config.write();
        let mut candidate = cfg.clone();
        for i in (2..args.len()).step_by(2) {
            let name = lossy(args.get(i));
            let value = lossy(args.get(i + 1));
            match candidate.set(&name, &value, false) {
                Ok(()) => {}
                Err(ConfigError::Unknown | ConfigError::Arity) => {
                    return Err(CmdError::err(format!("Unknown option or number of arguments for CONFIG SET - '{name}'")))
                }
                Err(ConfigError::Immutable) => {
                    return Err(CmdError::err(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                    )))
                }
                Err(ConfigError::Invalid(why)) => {
                    return Err(CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - {why}")))
                }
            }
        }
        *cfg = candidate;
        ctx.ks.set_eviction(cfg.eviction());
        ctx.server.cmd_stats.configure(&cfg);
        drop(cfg);
        for i in (2..args.len()).step_by(2) {
            match crate::config::Config::canonical(&lossy(args.get(i))) {
                Some("appendonly") => {
                    let on = ctx.server.config.read().get("appendonly") == Some("yes");
                    let server = ctx.server.clone();
                    // turning the log on writes the keyspace into it: after this command's lock
                    ctx.deferred = Some(Box::new(move || {
                        if let Err(e) = crate::persist::set_aof(&server, on) {
                            eprintln!("redisai-fast: {e}");
                        }
                    }));
                }
                Some(name @ ("store-wait-replicas" | "store-wait-timeout")) => {
                    if let Some(store) = ctx.server.store.get() {
                        let v: u64 = ctx.server.config.read().get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
                        let target = if name == "store-wait-replicas" { &store.wait_replicas } else { &store.wait_timeout_ms };
                        target.store(v, Relaxed);
                    }
                }
                Some("requirepass") => {
                    let pass = ctx.server.config.read().get("requirepass").unwrap_or("").to_string();
                    ctx.server.change_acl(|acl| acl.set_default_password(&pass));
                }
                Some("appendfsync") => {
                    let p = ctx.server.config.read().get("appendfsync").unwrap_or("everysec").to_string();
                    crate::persist::set_fsync_policy(ctx.server, &p);
                }
                _ => {}
            }
        }
        ctx.out.ok();
    } else if is(sub, "RESETSTAT") && args.len() == 2 {
        let s = &ctx.server.stats;
        for c in [&s.commands_processed, &s.connections_received, &s.rejected_connections, &s.error_replies, &s.net_input_bytes, &s.net_output_bytes] {
            c.store(0, Relaxed);
        }
        ctx.ks.stats = Default::default();
        ctx.server.cmd_stats.reset();
        ctx.out.ok();
    } else if is(sub, "REWRITE") && args.len() == 2 {
        return Err(CmdError::err("CONFIG REWRITE is not supported: put options in the file given to --config"));
    } else {
        return Err(unknown_subcommand(sub, "CONFIG"));
    }
    Ok(())
}

// ---------------------------------------------------------------- INFO

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2}G", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.2}M", b / (1u64 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else {
        format!("{bytes}B")
    }
}

fn cpu_times() -> (f64, f64) {
    // utime and stime are fields 14 and 15 of /proc/self/stat, in clock ticks (100 Hz on Linux)
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

/// MemTotal of /proc/meminfo in bytes (0 when unreadable), as Redis's total_system_memory.
fn total_system_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = info.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    kib.unwrap_or(0) * 1024
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 4096
}

/// The text of one INFO section, or None if there is no such section.
pub fn info_section(ctx: &mut Ctx, name: &str) -> Option<String> {
    let s = ctx.server;
    let mut t = String::new();
    let cfg = s.config.read();
    match name {
        "server" => {
            let up = s.uptime_secs();
            t += "# Server\r\n";
            t += &format!("redis_version:{REDIS_VERSION}\r\nredisai_fast_version:{VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{}\r\nexecutable:redisai-fast\r\n",
                std::env::consts::OS, std::process::id(), s.run_id, cfg.port(), up / 86400);
        }
        "clients" => {
            let clients = s.clients();
            let blocked = clients.iter().filter(|c| c.blocked.load(Relaxed)).count();
            t += &format!("# Clients\r\nconnected_clients:{}\r\nblocked_clients:{blocked}\r\nmaxclients:{}\r\n", clients.len(), cfg.maxclients());
        }
        "memory" => {
            let used = s.used_memory() as u64;
            let peak = s.peak_memory();
            let total = total_system_memory();
            let max = cfg.maxmemory();
            t += &format!("# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n",
                human(used), rss_bytes(), human(peak), human(total), human(max), cfg.get("maxmemory-policy").unwrap_or("noeviction"));
        }
        "persistence" => {
            let p = &s.persist;
            let ok = |b: bool| if b { "ok" } else { "err" };
            t += &format!(
                "# Persistence\r\nloading:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\naof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_last_bgrewrite_status:{}\r\naof_last_write_status:{}\r\naof_current_size:{}\r\n",
                p.loading.load(Relaxed) as u8,
                ctx.ks.changes.saturating_sub(p.changes_at_save.load(Relaxed)),
                p.bgsave_running.load(Relaxed) as u8,
                p.last_save.load(Relaxed),
                ok(p.last_bgsave_ok.load(Relaxed)),
                p.aof_enabled() as u8,
                p.rewrite_running.load(Relaxed) as u8,
                ok(p.last_rewrite_ok.load(Relaxed)),
                ok(p.aof_last_write_ok()),
                p.aof_size(),
            );
        }
        "stats" => {
            let st = &s.stats;
            let ks = ctx.ks.stats;
            t += &format!("# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\ntotal_error_replies:{}\r\nbusy_poll_passes:{}\r\n",
                st.connections_received.load(Relaxed), st.commands_processed.load(Relaxed), st.net_input_bytes.load(Relaxed),
                st.net_output_bytes.load(Relaxed), st.rejected_connections.load(Relaxed), ks.expired, ks.evicted, ks.hits, ks.misses, st.error_replies.load(Relaxed), s.exec.poll.passes.load(Relaxed));
        }
        "replication" => t += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
        "cpu" => {
            let (u, sy) = cpu_times();
            t += &format!("# CPU\r\nused_cpu_sys:{sy:.6}\r\nused_cpu_user:{u:.6}\r\n");
        }
        "modules" => {
            t += &format!("# Modules\r\nmodule:name=ai,ver={RAI_MODULE_VERSION},api=1,filters=0,usedby=[],using=[],options=[]\r\n\r\n");
            drop(cfg);
            t += &ai_section(s);
        }
        "ai" => {
            drop(cfg);
            t += &ai_section(s);
        }
        "cluster" => t += &format!("# Cluster\r\ncluster_enabled:{}\r\n", s.store.get().is_some() as u8),
        "store" => t += &s.store.get()?.info(),
        "errorstats" => {
            t += "# Errorstats\r\n";
            for (code, n) in s.cmd_stats.errors() {
                t += &format!("errorstat_{code}:count={n}\r\n");
            }
        }
        "commandstats" => {
            t += "# Commandstats\r\n";
            for (id, st) in s.cmd_stats.by_id.iter().enumerate() {
                let calls = st.calls();
                let (rejected, failed) = (st.rejected.load(Relaxed), st.failed.load(Relaxed));
                if calls == 0 && rejected == 0 && failed == 0 {
                    continue;
                }
                let usec = st.usec();
                let per = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
                t += &format!(
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                    super::id_name(id)
                );
            }
        }
        "latencystats" => {
            t += "# Latencystats\r\n";
            for (id, st) in s.cmd_stats.by_id.iter().enumerate() {
                let (Some(p50), Some(p99), Some(p999)) = (st.latency.percentile(50.0), st.latency.percentile(99.0), st.latency.percentile(99.9)) else {
                    continue;
                };
                t += &format!("latency_percentiles_usec_{}:p50={p50:.3},p99={p99:.3},p99.9={p999:.3}\r\n", super::id_name(id));
            }
        }
        "keyspace" => {
            t += "# Keyspace\r\n";
            if !ctx.ks.is_empty() {
                t += &format!("db0:keys={},expires={},avg_ttl=0\r\n", ctx.ks.len(), ctx.ks.expires_count());
            }
        }
        other => {
            let extra = s.extra_info.read();
            t += extra.get(other)?;
        }
    }
    Some(t)
}

/// RedisAI's INFO MODULES fields (`ai_` prefixed), plus run-queue and batching counters.
fn ai_section(s: &crate::server::Server) -> String {
    let cfg = s.config.read();
    let mut t = String::from("# ai_versions\r\nai_RedisAI_version:1.2.7\r\nai_low_level_API_version:1\r\nai_rdb_version:4\r\n");
    t += &format!("ai_redisai_fast_version:{VERSION}\r\n\r\n# ai_load_time_configs\r\n");
    for name in ["threads_per_queue", "inter_op_parallelism", "intra_op_parallelism", "model_execution_timeout", "backend_memory_limit"] {
        t += &format!("ai_{name}:{}\r\n", cfg.get(name).unwrap_or("0"));
    }
    t += "\r\n# ai_backends_info\r\n";
    for (backend, version) in s.backend_versions.read().iter() {
        t += &format!("ai_{backend}_version:{version}\r\n");
    }
    t += "\r\n# ai_queues\r\n";
    for q in s.exec.queues() {
        let d = &q.device;
        t += &format!(
            "ai_queue_{d}_pending:{}\r\nai_queue_{d}_requests:{}\r\nai_queue_{d}_runs:{}\r\n",
            q.len(),
            q.queued_total.load(Relaxed),
            q.batches_total.load(Relaxed)
        );
    }
    t
}

const DEFAULT_SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats", "cluster", "keyspace"];

/// INFO [section ...]
pub fn info(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut names: Vec<String> = Vec::new();
    let extra: Vec<String> = ctx.server.extra_info.read().keys().cloned().collect();
    let store = if ctx.server.store.get().is_some() { vec!["store".to_string()] } else { Vec::new() };
    if args.len() == 1 {
        names.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
        names.extend(store.iter().cloned());
        names.extend(extra.iter().cloned());
    }
    for i in 1..args.len() {
        let s = lossy(args.get(i)).to_lowercase();
        match s.as_str() {
            "all" | "everything" | "default" => {
                names.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
                names.extend(store.iter().cloned());
                if s != "default" {
                    // as Redis: not in the default INFO, but in ALL and EVERYTHING
                    names.extend(["commandstats", "latencystats"].map(String::from));
                }
                names.extend(extra.iter().cloned());
            }
            _ => names.push(s),
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut parts = Vec::new();
    for n in names {
        if seen.insert(n.clone()) {
            if let Some(t) = info_section(ctx, &n) {
                parts.push(t);
            }
        }
    }
    ctx.out.verbatim(&parts.join("\r\n"));
    Ok(())
}
