//! One connection's protocol state machine (sans I/O): bytes in, replies out. It parses every
//! complete command in the input, checks auth/arity/ACL/MULTI, runs the handler under the
//! keyspace lock, counts it (commandstats, slow log, latency monitor, MONITOR feed) and maps
//! errors to replies in one place. A command that queued work (a model run, a model load) blocks
//! the session until `resume` brings its reply; later commands wait. A command held back by
//! CLIENT PAUSE waits in `postponed` until `retry_postponed` finds the pause over.
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::acl::{Denial, LogContext};
use crate::commands::{flags, id_name, lookup, unknown_command, ClientState, CommandSpec, Ctx, Multi};
use crate::error::CmdError;
use crate::exec::{RunQueue, RunRequest};
use crate::resp::{Args, Input, Out, Reply};
use crate::server::{now_ms, ClientInfo, Server};

pub struct Session {
    pub server: Arc<Server>,
    pub input: Input,
    pub out: Out,
    pub client: ClientState,
    /// Waiting for queued work; no further command runs until `resume`.
    pub blocked: bool,
    /// A run the last command prepared, for the owner to queue (`submit_run`) or run inline.
    pub pending_run: Option<(Arc<RunQueue>, RunRequest)>,
}

impl Session {
    pub fn new(server: Arc<Server>, info: Arc<ClientInfo>) -> Session {
        let max_bulk = server.config.read().proto_max_bulk_len();
        let client = ClientState::new(&server, info);
        let mut input = Input::new(max_bulk);
        input.authenticated = client.authenticated;
        Session {
            server,
            input,
            out: Out::default(),
            client,
            blocked: false,
            pending_run: None,
        }
    }

    /// Queues the prepared run for the device's workers.
    pub fn submit_run(&mut self) {
        if let Some((q, r)) = self.pending_run.take() {
            q.push(r);
        }
    }

    /// Runs every complete command received so far, until one blocks. Replies accumulate in `self.out`.
    pub fn process(&mut self) {
        self.input.set_max_bulk(self.server.config.read().proto_max_bulk_len());
        while !self.client.close_after_reply && !self.blocked && self.client.postponed.is_none() {
            match self.input.next_command() {
                Ok(Some(mut args)) => {
                    let (blocked, run) = run_command(&self.server, &mut self.client, &mut self.out, &mut args);
                    self.blocked = blocked;
                    self.pending_run = run;
                }
                Ok(None) => break,
                Err(e) => {
                    self.out.error(&format!("ERR Protocol error: {}", e.0));
                    self.server.stats.error_replies.fetch_add(1, Relaxed);
                    self.client.close_after_reply = true;
                }
            }
            self.input.authenticated = self.client.authenticated;
        }
        self.client.info.blocked.store(self.blocked, Relaxed);
        self.client.info.qbuf.store(self.input.pending_bytes() as u64, Relaxed);
    }

    /// Runs the command CLIENT PAUSE held back once the pause is over, then what followed it.
    /// Returns whether it ran.
    pub fn retry_postponed(&mut self) -> bool {
        let Some(argv) = self.client.postponed.take() else { return false };
        let mut items: Vec<crate::resp::Arg> = argv.into_iter().map(crate::resp::Arg::Inline).collect();
        let mut args = Args::new(&[], &mut items);
        let (blocked, run) = run_command(&self.server, &mut self.client, &mut self.out, &mut args);
        if self.client.postponed.is_some() {
            return false;
        }
        self.blocked = blocked;
        self.pending_run = run;
        self.process();
        true
    }

    /// The blocking command finished with `reply`: send it and go on with buffered commands.
    /// (In store mode an AI command waiting for its keys gets an empty completion: it runs now.)
    pub fn resume(&mut self, reply: &[u8]) {
        if self.client.store_wait.is_some() {
            if let Some(store) = self.server.store.get().cloned() {
                let (blocked, run) = crate::store::ai::resume(&self.server, &store, &mut self.client, &mut self.out);
                self.blocked = blocked;
                self.pending_run = run;
                if !blocked {
                    self.process();
                }
                return;
            }
        }
        self.out.raw(reply);
        if reply.first() == Some(&b'-') {
            self.server.stats.error_replies.fetch_add(1, Relaxed);
        }
        self.blocked = false;
        self.process();
    }

    /// Forgets per-connection registrations (WATCHes, queued work, the client registry entry).
    pub fn close(&mut self) {
        self.client.cancel.store(true, Relaxed);
        let me = self.client.info.id;
        if self.client.info.monitor.load(Relaxed) {
            self.server.monitors.lock().retain(|(id, _)| *id != me);
            self.server.monitor_count.fetch_sub(1, Relaxed);
        }
        if !self.client.watched.is_empty() {
            let keys = std::mem::take(&mut self.client.watched);
            self.server.ks.lock().unwatch_all(&keys, self.client.info.id);
        }
        self.server.unregister_client(self.client.info.id);
    }
}

/// Whether the client must wait (work was queued or prepared), and the run it prepared.
pub type Ran = (bool, Option<(Arc<RunQueue>, RunRequest)>);

/// What a handler left to do once the keyspace is released.
pub struct Handled {
    pub blocked: bool,
    pub run: Option<(Arc<RunQueue>, RunRequest)>,
    deferred: Option<Box<dyn FnOnce() + Send>>,
    host_job: Option<crate::exec::HostJob>,
}

impl Handled {
    /// Starts the deferred work and the host job (after the keyspace lock is released).
    pub fn start(self, server: &Server) -> Ran {
        if let Some(start) = self.deferred {
            start();
        }
        if let Some(job) = self.host_job {
            server.exec.host.push(job);
        }
        (self.blocked, self.run)
    }
}

/// Runs `spec`'s handler against `ks` (the embedded keyspace under its lock, or store mode's
/// overlay); on success logs the write to the AOF when `aof`. On an error its partial reply is
/// taken back.
pub fn run_handler(server: &Arc<Server>, client: &mut ClientState, out: &mut Out, spec: &'static CommandSpec, args: &mut Args, ks: &mut crate::keyspace::Keyspace, aof: bool) -> Result<Handled, CmdError> {
    let mark = out.len();
    let changes = ks.changes;
    let mut ctx = Ctx { server, ks, client, out, now: now_ms(), spec, blocked: false, run: None, in_exec: false, deferred: None, host_job: None };
    let r = (spec.run)(&mut ctx, args);
    if r.is_ok() && aof && !ctx.blocked && ctx.ks.changes != changes {
        log_write(server, ctx.ks, spec, args);
    }
    if let Err(e) = r {
        ctx.out.truncate(mark);
        return Err(e);
    }
    Ok(Handled { blocked: ctx.blocked, run: ctx.run.take(), deferred: ctx.deferred.take(), host_job: ctx.host_job.take() })
}

/// Checks and runs one command, writing its reply (or error) to `out`. Returns whether the client
/// must wait (work was queued or prepared) and the run the command prepared, if any.
pub fn run_command(server: &Arc<Server>, client: &mut ClientState, out: &mut Out, args: &mut Args) -> Ran {
    server.stats.commands_processed.fetch_add(1, Relaxed);
    match try_run(server, client, out, args) {
        Ok(ran) => ran,
        Err(e) => {
            server.stats.error_replies.fetch_add(1, Relaxed);
            server.cmd_stats.error(&e.0);
            out.error(&e.0);
            (false, None)
        }
    }
}

/// The id a command is permitted and counted under (its subcommand's for container commands).
#[inline]
fn command_id(spec: &CommandSpec, args: &Args) -> usize {
    spec.id_for(if args.len() > 1 { Some(args.get(1)) } else { None })
}

/// Re-reads the client's user after the users changed; a deleted or replaced user's connection
/// is closed (as Redis disconnects them).
fn refresh_user(server: &Server, client: &mut ClientState) {
    let epoch = server.acl_epoch.load(Relaxed);
    let current = server.acl.read().user(&client.user.name);
    client.acl_epoch = epoch;
    match current {
        Some(u) if u.serial == client.user.serial => client.set_user(u),
        _ => {
            client.close_after_reply = true;
            client.info.killed.store(true, Relaxed);
        }
    }
}

/// The ACL check of a command and its keys: Ok, or the NOPERM error (logged in the ACL LOG).
pub fn acl_check(server: &Server, client: &ClientState, spec: &CommandSpec, id: usize, args: &Args, context: LogContext) -> Result<(), CmdError> {
    let user = &client.user;
    if !user.can_run(id) {
        let name = id_name(id);
        log_denial(server, client, Denial::Command, context, &name);
        return Err(CmdError::line(format!("NOPERM this user has no permissions to run the '{name}' command")));
    }
    if user.allkeys {
        return Ok(());
    }
    let mut denied = None;
    crate::acl::keys::for_each_key(spec, args, &mut |key, need| {
        if user.can_access_key(key, need) {
            true
        } else {
            denied = Some(String::from_utf8_lossy(key).into_owned());
            false
        }
    });
    if let Some(key) = denied {
        log_denial(server, client, Denial::Key, context, &key);
        return Err(CmdError::line("NOPERM this user has no permissions to access one of the keys used as arguments"));
    }
    Ok(())
}

/// Adds an ACL LOG entry for `client`.
pub fn log_denial(server: &Server, client: &ClientState, reason: Denial, context: LogContext, object: &str) {
    let info = crate::commands::server::client_line(&client.info, now_ms(), &client.info.last_cmd.lock());
    let max = server.config.read().acllog_max_len();
    let entry = crate::acl::LogEntry {
        count: 1,
        reason,
        context,
        object: object.to_string(),
        username: client.user.name.clone(),
        updated_ms: now_ms(),
        client_info: info,
    };
    server.acl.write().log_denial(entry, max);
}

fn try_run(server: &Arc<Server>, client: &mut ClientState, out: &mut Out, args: &mut Args) -> Result<Ran, CmdError> {
    let Some(spec) = lookup(args.get(0)) else {
        flag_multi_error(client);
        return Err(unknown_command(args));
    };
    *client.info.last_cmd.lock() = spec.name;
    if client.acl_epoch != u64::MAX && client.acl_epoch != server.acl_epoch.load(Relaxed) {
        refresh_user(server, client);
        if client.close_after_reply {
            return Ok((false, None));
        }
    }
    if !client.authenticated && !spec.has(flags::NOAUTH) {
        flag_multi_error(client);
        return Err(CmdError::noauth());
    }
    if !spec.arity_ok(args.len()) {
        flag_multi_error(client);
        return Err(CmdError::arity(spec.name));
    }
    let id = command_id(spec, args);
    if !client.unrestricted && !spec.has(flags::NOAUTH) {
        let context = if client.multi.is_some() { LogContext::Multi } else { LogContext::Toplevel };
        if let Err(e) = acl_check(server, client, spec, id, args, context) {
            flag_multi_error(client);
            server.cmd_stats.rejected(id);
            return Err(e);
        }
    }
    if server.pause_until_ms.load(Relaxed) != 0 && server.paused_for(spec.has(flags::WRITE)) {
        // CLIENT PAUSE: this client waits (its later commands stay in the input) until the pause ends
        client.postponed = Some(args.to_vecs());
        server.postponed_clients.lock().push(client.info.id);
        server.service_pending.store(true, Relaxed);
        return Ok((false, None));
    }
    if let Some(multi) = client.multi.as_mut() {
        if spec.has(flags::NOMULTI) {
            multi.failed = true;
            server.cmd_stats.rejected(id);
            return Err(CmdError::err("Command not allowed inside a transaction"));
        }
        if !spec.has(flags::TXCONTROL) {
            multi.queued.push(args.to_vecs());
            out.simple("QUEUED");
            return Ok((false, None));
        }
    }
    if server.monitor_count.load(Relaxed) > 0 {
        feed_monitors(server, client, args);
    }
    if let Some(store) = server.store.get() {
        // store mode: the keys, their memory and its eviction are the store's
        if let Some(ran) = run_in_store_mode(server, store, client, out, spec, args)? {
            return Ok(ran);
        }
    }
    let started = std::time::Instant::now();
    let mut ks = server.ks.lock();
    if spec.has(flags::DENYOOM) {
        let max = server.config.read().maxmemory();
        // over the limit: evict by maxmemory-policy first (Redis's performEvictions)
        if max > 0 && server.used_memory() as u64 > max && !server.evict_to_limit(&mut ks, max, now_ms()) {
            return Err(CmdError::oom());
        }
    }
    let handled = run_handler(server, client, out, spec, args, &mut ks, true);
    drop(ks);
    let us = started.elapsed().as_micros() as u64;
    server.cmd_stats.record(id, us, handled.is_err());
    note_duration(server, client, spec, args, us);
    Ok(handled?.start(server))
}

/// Store mode: AI commands and plain commands on keys go through the store; None leaves the
/// command to the node's own handler (connection and server commands).
fn run_in_store_mode(server: &Arc<Server>, store: &Arc<crate::store::Store>, client: &mut ClientState, out: &mut Out, spec: &'static CommandSpec, args: &mut Args) -> Result<Option<Ran>, CmdError> {
    use crate::store::route::{forward, is_node_local, Route};
    if spec.group == "ai" && !matches!(spec.name, "ai.config") {
        return crate::store::ai::start(server, store, client, out, spec, args).map(Some);
    }
    let resp3 = client.info.resp.load(Relaxed) == 3;
    match spec.name {
        "exec" if client.multi.is_some() => {
            let multi = client.multi.take().unwrap_or_default();
            client.info.in_multi.store(false, Relaxed);
            let link = client.store_link.take();
            if multi.failed {
                return Err(CmdError::line("EXECABORT Transaction discarded because of previous errors."));
            }
            crate::store::route::exec(server, store, client, resp3, multi, link.map(|(c, _)| c)).map_err(CmdError::line)?;
            return Ok(Some((true, None)));
        }
        "watch" if client.multi.is_none() => {
            crate::store::route::watch(server, store, client, resp3, args).map_err(CmdError::line)?;
            return Ok(Some((true, None)));
        }
        "unwatch" | "discard" | "reset" => {
            // the client's own store link goes, and its WATCHes with it
            client.store_link = None;
        }
        "asking" if store.front.is_some() => {
            client.asking = true;
            out.ok();
            return Ok(Some((false, None)));
        }
        _ => {}
    }
    if let Some(front) = store.front {
        // `cluster-enabled yes`: plain commands and cluster administration go to this node's own
        // store node (MOVED for keys it does not serve); connection and server commands stay
        if spec.name == "cluster" || !is_node_local(spec) {
            crate::store::front::forward(server, store, front, client, spec, args);
            return Ok(Some((true, None)));
        }
        return Ok(None);
    }
    match forward(server, store, client.info.id, resp3, spec, args) {
        Route::Local => Ok(None),
        Route::Sent => Ok(Some((true, None))),
        Route::Refused(msg) => Err(CmdError::line(&msg)),
    }
}

/// The slow log and the latency monitor, for a command that took `us` microseconds.
#[inline]
fn note_duration(server: &Server, client: &ClientState, spec: &CommandSpec, args: &Args, us: u64) {
    let (slower_than, latency_ms) = (server.cmd_stats.slowlog_threshold_us.load(Relaxed), server.cmd_stats.latency_threshold_ms.load(Relaxed));
    if slower_than >= 0 && us >= slower_than as u64 {
        let max = server.config.read().slowlog_max_len();
        server.slowlog.push(shown_args(args), us, client.info.addr.clone(), client.info.name.lock().clone(), max);
    }
    if latency_ms > 0 && us / 1000 >= latency_ms {
        server.latency.add(if spec.has(flags::FAST) { "fast-command" } else { "command" }, us / 1000);
    }
}

/// Sends one line per command to every MONITOR client, as Redis words it:
/// `+<unix time.µs> [0 <addr>] "cmd" "arg"...` (passwords redacted, see `shown_args`).
fn feed_monitors(server: &Server, client: &ClientState, args: &Args) {
    if client.info.monitor.load(Relaxed) {
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut line = format!("+{}.{:06} [0 {}]", now.as_secs(), now.subsec_micros(), client.info.addr).into_bytes();
    for a in shown_args(args) {
        line.extend_from_slice(b" ");
        quote_into(&mut line, &a);
    }
    line.extend_from_slice(b"\r\n");
    for (_, pending) in server.monitors.lock().iter_mut() {
        pending.extend_from_slice(&line);
    }
    server.service_pending.store(true, Relaxed);
}

/// Redis's `sdscatrepr`: a double-quoted string with escapes.
pub fn quote_into(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

fn flag_multi_error(client: &mut ClientState) {
    if let Some(m) = client.multi.as_mut() {
        m.failed = true;
    }
}

/// Commands whose expiry is relative to "now": the log also records the resulting absolute expiry.
const RELATIVE_EXPIRY: &[&str] = &["expire", "pexpire", "setex", "psetex", "set", "getex"];

/// Appends a successful write to the AOF (the keyspace is locked by the caller).
pub fn log_write(server: &Server, ks: &mut crate::keyspace::Keyspace, spec: &CommandSpec, args: &Args) {
    if !spec.has(flags::WRITE) || !server.persist.aof_enabled() {
        return;
    }
    if spec.name == "ai.tensorset" {
        // a large BLOB has moved into the tensor (Args::take_owned): log the tensor as stored
        if let Some(crate::keyspace::Value::Tensor(t)) = ks.peek(args.get(1), now_ms()) {
            let mut log = Vec::new();
            crate::persist::aof::tensor_command(&mut log, args.get(1), t);
            server.persist.log_bytes(&log);
        }
        return;
    }
    let argv: Vec<&[u8]> = (0..args.len()).map(|i| args.get(i)).collect();
    server.persist.log(&argv);
    if RELATIVE_EXPIRY.contains(&spec.name) {
        let key = args.get(1);
        match ks.expire_at(key, now_ms()) {
            Some(Some(at)) => server.persist.log(&[b"PEXPIREAT", key, at.to_string().as_bytes()]),
            Some(None) => {}
            None => server.persist.log(&[b"DEL", key]),
        }
    }
}

/// Runs one command from the AOF at start-up, through the same handlers as a client's. A model
/// or script store comes back as the host job to run before the next command.
pub fn execute_replay(server: &Arc<Server>, argv: Vec<Vec<u8>>) -> Result<Option<crate::exec::HostJob>, String> {
    let mut client = ClientState::internal(server.internal_client.clone());
    let mut out = Out::new(false);
    let mut items: Vec<crate::resp::Arg> = argv.into_iter().map(crate::resp::Arg::Inline).collect();
    let mut args = Args::new(&[], &mut items);
    let spec = lookup(args.get(0)).ok_or_else(|| unknown_command(&args).0)?;
    if !spec.arity_ok(args.len()) {
        return Err(CmdError::arity(spec.name).0);
    }
    let mut ks = server.ks.lock();
    let mut ctx = Ctx { server, ks: &mut ks, client: &mut client, out: &mut out, now: now_ms(), spec, blocked: false, run: None, in_exec: false, deferred: None, host_job: None };
    (spec.run)(&mut ctx, &mut args).map_err(|e| e.0)?;
    Ok(ctx.host_job.take())
}

/// Runs one command for server-side code (`redis.execute` in a script) through the same path as
/// a network client's, and gives back its reply. Commands that would block, open transactions
/// or change connection state are refused, and so is what the script's caller may not run or
/// touch (ACL, logged with context `script`).
pub fn execute_internal(server: &Arc<Server>, argv: Vec<Vec<u8>>) -> Result<crate::resp::decode::RespValue, String> {
    use crate::resp::decode::{decode, RespValue};
    let name = argv.first().map(|a| String::from_utf8_lossy(a).to_uppercase()).unwrap_or_default();
    let spec = lookup(argv.first().map_or(&b""[..], |a| a.as_slice()));
    if let Some(spec) = spec {
        if spec.has(flags::AI_RUN) {
            return Err(format!("ERR {name} cannot be called from a script; use redisAI.model_execute"));
        }
        if spec.has(flags::NOSCRIPT) {
            return Err(format!("ERR This Redis command is not allowed from script: {name}"));
        }
    }
    if let (Some(spec), Some(caller)) = (spec, crate::acl::script_caller()) {
        // the script's caller's permissions, before the command goes anywhere (store mode included)
        let mut items: Vec<crate::resp::Arg> = argv.iter().cloned().map(crate::resp::Arg::Inline).collect();
        let args = Args::new(&[], &mut items);
        if spec.arity_ok(args.len()) {
            let as_caller = ClientState::script(caller.info.clone(), caller.user.clone());
            *caller.info.last_cmd.lock() = spec.name;
            acl_check(server, &as_caller, spec, command_id(spec, &args), &args, LogContext::Script).map_err(|e| {
                server.cmd_stats.error(&e.0);
                e.0
            })?;
        }
    }
    if let (Some(store), Some(spec)) = (server.store.get(), spec) {
        if let Some(reply) = crate::store::route::call(store, spec, &argv) {
            return reply;
        }
    }
    let mut client = ClientState::internal(server.internal_client.clone());
    let mut out = Out::new(false);
    let mut items: Vec<crate::resp::Arg> = argv.into_iter().map(crate::resp::Arg::Inline).collect();
    let mut args = Args::new(&[], &mut items);
    match try_run_internal(server, &mut client, &mut out, &mut args) {
        Err(e) => Err(e.0),
        Ok(()) => {
            let bytes = out.to_vec();
            match decode(&bytes) {
                Some((RespValue::Error(e), _)) => Err(e),
                Some((v, _)) => Ok(v),
                None => Err("ERR internal: unreadable reply".into()),
            }
        }
    }
}

/// `redisAI.model_execute(key, ...)` from a script: the script's caller must be allowed to run
/// AI.MODELEXECUTE and to read `key` (as a top-level AI.MODELEXECUTE would be checked).
pub fn check_script_model_run(server: &Server, key: &[u8]) -> Result<(), String> {
    let Some(caller) = crate::acl::script_caller() else { return Ok(()) };
    let Some(spec) = lookup(b"ai.modelexecute") else { return Ok(()) };
    let as_caller = ClientState::script(caller.info.clone(), caller.user.clone());
    if !caller.user.can_run(spec.id()) {
        log_denial(server, &as_caller, Denial::Command, LogContext::Script, spec.name);
        return Err(format!("NOPERM this user has no permissions to run the '{}' command", spec.name));
    }
    if !caller.user.can_access_key(key, crate::acl::KEY_READ) {
        log_denial(server, &as_caller, Denial::Key, LogContext::Script, &String::from_utf8_lossy(key));
        return Err("NOPERM this user has no permissions to access one of the keys used as arguments".into());
    }
    Ok(())
}

/// Arguments as the slow log and MONITOR show them: passwords of AUTH, HELLO ... AUTH and the
/// rules of ACL SETUSER are replaced by `(redacted)`.
pub fn shown_args(args: &Args) -> Vec<Vec<u8>> {
    let first = args.get(0);
    let hidden_from = if crate::commands::is(first, "AUTH") {
        1
    } else if crate::commands::is(first, "HELLO") {
        (1..args.len()).find(|&i| crate::commands::is(args.get(i), "AUTH")).map_or(usize::MAX, |i| i + 1)
    } else if crate::commands::is(first, "ACL") && crate::commands::is(args.get(1), "SETUSER") {
        3
    } else {
        usize::MAX
    };
    (0..args.len()).map(|i| if i >= hidden_from { b"(redacted)".to_vec() } else { args.get(i).to_vec() }).collect()
}

fn try_run_internal(server: &Arc<Server>, client: &mut ClientState, out: &mut Out, args: &mut Args) -> Result<(), CmdError> {
    let Some(spec) = lookup(args.get(0)) else { return Err(unknown_command(args)) };
    if !spec.arity_ok(args.len()) {
        return Err(CmdError::arity(spec.name));
    }
    server.stats.commands_processed.fetch_add(1, Relaxed);
    let started = std::time::Instant::now();
    let mut ks = server.ks.lock();
    let changes = ks.changes;
    // in_exec: a handler that would block (model loads, runs) refuses instead
    let mut ctx = Ctx { server, ks: &mut ks, client, out, now: now_ms(), spec, blocked: false, run: None, in_exec: true, deferred: None, host_job: None };
    let r = (spec.run)(&mut ctx, args);
    server.cmd_stats.record(command_id(spec, args), started.elapsed().as_micros() as u64, r.is_err());
    if r.is_ok() && ctx.ks.changes != changes {
        log_write(server, ctx.ks, spec, args);
    }
    r
}

/// Runs the commands queued by MULTI (EXEC), with the keyspace already locked by the caller.
pub fn run_queued(ctx: &mut Ctx, multi: Multi) {
    ctx.out.array(multi.queued.len());
    let logging = ctx.server.persist.aof_enabled();
    let mut opened = false;
    for cmd in multi.queued {
        let mut items: Vec<crate::resp::Arg> = cmd.into_iter().map(crate::resp::Arg::Inline).collect();
        let mut args = Args::new(&[], &mut items);
        let Some(spec) = lookup(args.get(0)) else { continue };
        let acl = if ctx.client.unrestricted { Ok(()) } else { acl_check(ctx.server, ctx.client, spec, command_id(spec, &args), &args, LogContext::Multi) };
        let r = if let Err(e) = acl {
            // the user changed since the command was queued
            Err(e)
        } else if spec.has(flags::AI_RUN) {
            Err(CmdError::err("Cannot run RedisAI command within a transaction or a LUA script"))
        } else {
            let mark = ctx.out.len();
            let changes = ctx.ks.changes;
            let mut sub = Ctx { server: ctx.server, ks: ctx.ks, client: ctx.client, out: ctx.out, now: ctx.now, spec, blocked: false, run: None, in_exec: true, deferred: None, host_job: None };
            let r = (spec.run)(&mut sub, &mut args);
            if let Some(work) = sub.deferred.take() {
                // e.g. BGSAVE, CONFIG SET appendonly: started after EXEC releases the lock
                ctx.defer(work);
            }
            if r.is_err() {
                ctx.out.truncate(mark);
            } else if logging && ctx.ks.changes != changes && spec.has(flags::WRITE) {
                if !opened {
                    ctx.server.persist.log(&[b"MULTI"]);
                    opened = true;
                }
                log_write(ctx.server, ctx.ks, spec, &args);
            }
            r
        };
        if let Err(e) = r {
            ctx.server.stats.error_replies.fetch_add(1, Relaxed);
            ctx.out.error(&e.0);
        }
    }
    if opened {
        ctx.server.persist.log(&[b"EXEC"]);
    }
}
