//! The command table (name, arity, flags, key positions, handler) and the context a handler
//! runs in. Every command the server knows is listed in `table.rs`; each family's handlers
//! live in their own module.
pub mod acl;
pub mod ai_admin;
pub mod ai_common;
pub mod ai_keys;
pub mod dag;
pub mod diag;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod model;
pub mod persist;
pub mod script;
pub mod server;
pub mod strings;
pub mod table;
pub mod tensor;
pub mod transactions;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::error::{CmdError, CmdResult};
use crate::keyspace::Keyspace;
use crate::resp::{Args, Out};
use crate::server::{ClientInfo, Server};

/// Command flags (COMMAND INFO shows their names).
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    /// Allowed before AUTH.
    pub const NOAUTH: u32 = 1 << 4;
    /// Refused inside MULTI ("Command not allowed inside a transaction"), as Redis flags it.
    pub const NOMULTI: u32 = 1 << 5;
    pub const FAST: u32 = 1 << 6;
    /// Runs a model/script/DAG: refused inside MULTI, as RedisAI does.
    pub const AI_RUN: u32 = 1 << 7;
    pub const LOADING: u32 = 1 << 8;
    pub const STALE: u32 = 1 << 9;
    /// Cannot be called from a script (`redis.execute`): connection state, transactions, admin.
    pub const NOSCRIPT: u32 = 1 << 10;
    /// Runs immediately inside MULTI instead of being queued (MULTI EXEC DISCARD WATCH QUIT RESET,
    /// the commands Redis singles out). Internal: COMMAND INFO does not show it.
    pub const TXCONTROL: u32 = 1 << 11;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOAUTH, "no_auth"),
        (NOMULTI, "no_multi"),
        (FAST, "fast"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (NOSCRIPT, "noscript"),
    ];
}

pub type Handler = fn(&mut Ctx, &mut Args) -> CmdResult;

pub struct CommandSpec {
    /// Lower case, as COMMAND shows it.
    pub name: &'static str,
    /// Redis convention: n exact, -n at least n (the name counts).
    pub arity: i32,
    pub flags: u32,
    /// ACL categories (`crate::acl::cat`).
    pub acl: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub summary: &'static str,
    pub run: Handler,
}

/// A subcommand of a container command (`config|get`): its own ACL categories and statistics.
pub struct SubSpec {
    pub parent: &'static str,
    pub name: &'static str,
    pub acl: u32,
}

/// Number of command ids: every table entry, then every subcommand.
pub fn id_count() -> usize {
    table::COMMANDS.len() + table::SUBCOMMANDS.len()
}

/// The full name of command id `id` (`get`, `config|get`), as ACL rules and INFO name it.
pub fn id_name(id: usize) -> String {
    match table::COMMANDS.get(id) {
        Some(c) => c.name.to_string(),
        None => table::SUBCOMMANDS.get(id - table::COMMANDS.len()).map(|s| format!("{}|{}", s.parent, s.name)).unwrap_or_default(),
    }
}

/// ACL categories of command id `id`.
pub fn id_acl(id: usize) -> u32 {
    match table::COMMANDS.get(id) {
        Some(c) => c.acl,
        None => table::SUBCOMMANDS.get(id - table::COMMANDS.len()).map_or(0, |s| s.acl),
    }
}

/// Ids of the subcommands of `parent` (empty for plain commands).
pub fn subcommand_ids(parent: &str) -> impl Iterator<Item = usize> + '_ {
    let base = table::COMMANDS.len();
    table::SUBCOMMANDS.iter().enumerate().filter(move |(_, s)| s.parent == parent).map(move |(i, _)| base + i)
}

/// Finds a command or subcommand id by its full name (`get`, `config|get`), case-insensitively.
pub fn id_by_name(name: &str) -> Option<usize> {
    match name.split_once('|') {
        None => lookup(name.as_bytes()).map(|c| c.id()),
        Some((parent, sub)) => {
            let p = lookup(parent.as_bytes())?;
            let base = table::COMMANDS.len();
            table::SUBCOMMANDS.iter().position(|s| s.parent == p.name && s.name.eq_ignore_ascii_case(sub)).map(|i| base + i)
        }
    }
}

impl CommandSpec {
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// This command's position in the table (its id for ACL bits and statistics).
    pub fn id(&self) -> usize {
        (self as *const CommandSpec as usize - table::COMMANDS.as_ptr() as usize) / std::mem::size_of::<CommandSpec>()
    }

    /// The id a concrete invocation is counted and permitted under: the subcommand's when this is
    /// a container command and `sub` names one of its subcommands, else the command's own.
    pub fn id_for(&self, sub: Option<&[u8]>) -> usize {
        if let Some(sub) = sub {
            let first = SUBCOMMAND_START.get_or_init(subcommand_starts);
            if let Some(&(start, end)) = first.get(self.id()) {
                for i in start..end {
                    if table::SUBCOMMANDS[i].name.as_bytes().eq_ignore_ascii_case(sub) {
                        return table::COMMANDS.len() + i;
                    }
                }
            }
        }
        self.id()
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a >= 0 && argc == a as usize) || (a < 0 && argc >= (-a) as usize)
    }

    /// Key arguments of a concrete invocation (COMMAND GETKEYS, WATCH-style bookkeeping).
    pub fn key_positions(&self, argc: usize) -> Vec<usize> {
        if self.first_key <= 0 {
            return vec![];
        }
        let last = if self.last_key < 0 { argc as i32 + self.last_key } else { self.last_key };
        (self.first_key..=last.min(argc as i32 - 1)).step_by(self.step.max(1) as usize).map(|i| i as usize).collect()
    }
}

/// An open MULTI block.
#[derive(Default)]
pub struct Multi {
    pub queued: Vec<Vec<Vec<u8>>>,
    /// A queued command was refused: EXEC answers EXECABORT.
    pub failed: bool,
}

/// Per-connection state commands may read and change.
pub struct ClientState {
    pub info: Arc<ClientInfo>,
    /// Set when the connection closes: its queued runs are dropped.
    pub cancel: crate::exec::CancelFlag,
    pub authenticated: bool,
    pub multi: Option<Multi>,
    pub watched: Vec<Vec<u8>>,
    /// QUIT, protocol errors: close once the pending output is written.
    pub close_after_reply: bool,
    /// Store mode: an AI command waiting for its keys.
    pub store_wait: Option<crate::store::ai::Wait>,
    /// Store mode: this client's own link to the store while it WATCHes keys (a WATCH belongs to
    /// a connection of the store), and the node it goes to.
    pub store_link: Option<(std::sync::Arc<crate::store::conn::Conn>, Option<u16>)>,
    /// `cluster-enabled yes`: ASKING was sent; the next command goes to the store after one.
    pub asking: bool,
    /// The ACL user commands run as (the default user until AUTH).
    pub user: Arc<crate::acl::User>,
    /// `Server::acl_epoch` when `user` was read: a change means re-read it.
    pub acl_epoch: u64,
    /// The user may run everything on every key: the per-command ACL check is skipped.
    pub unrestricted: bool,
    /// The command CLIENT PAUSE held back (run by `Session::retry_postponed`).
    pub postponed: Option<Vec<Vec<u8>>>,
}

impl ClientState {
    /// A connection running as the default user; authenticated when it needs no password.
    pub fn new(server: &Server, info: Arc<ClientInfo>) -> ClientState {
        let epoch = server.acl_epoch.load(std::sync::atomic::Ordering::Relaxed);
        let user = server.default_user();
        let authenticated = user.enabled && user.nopass;
        ClientState::with_user(info, authenticated, user, epoch)
    }

    /// Server-side code (AOF replay, scripts' commands): authenticated, every permission.
    pub fn internal(info: Arc<ClientInfo>) -> ClientState {
        ClientState::with_user(info, true, Arc::new(crate::acl::User::default_user(0)), u64::MAX)
    }

    /// A script's caller, for checking its `redis.execute` calls.
    pub fn script(info: Arc<ClientInfo>, user: Arc<crate::acl::User>) -> ClientState {
        ClientState::with_user(info, true, user, u64::MAX)
    }

    fn with_user(info: Arc<ClientInfo>, authenticated: bool, user: Arc<crate::acl::User>, acl_epoch: u64) -> ClientState {
        let unrestricted = user.unrestricted();
        ClientState { info, cancel: Default::default(), authenticated, multi: None, watched: Vec::new(), close_after_reply: false, user, acl_epoch, unrestricted, postponed: None, store_wait: None, store_link: None, asking: false }
    }

    /// Runs as `user` from now on (AUTH, HELLO AUTH, a changed user).
    pub fn set_user(&mut self, user: Arc<crate::acl::User>) {
        self.unrestricted = user.unrestricted();
        *self.info.user.lock() = user.name.clone();
        self.user = user;
    }
}

/// What a handler works with.
pub struct Ctx<'a> {
    pub server: &'a Arc<Server>,
    pub ks: &'a mut Keyspace,
    pub client: &'a mut ClientState,
    pub out: &'a mut Out,
    /// Milliseconds since the epoch when the command started.
    pub now: u64,
    pub spec: &'static CommandSpec,
    /// Set by a handler that queued work: the client waits for its completion.
    pub blocked: bool,
    /// A model run the handler prepared; the session's owner queues it (or runs it inline).
    pub run: Option<(Arc<crate::exec::RunQueue>, crate::exec::RunRequest)>,
    /// Running inside EXEC: handlers must not block.
    pub in_exec: bool,
    /// Work to start once the keyspace lock is released (e.g. a DAG, whose first steps may need it).
    pub deferred: Option<Box<dyn FnOnce() + Send>>,
    /// Work for the host's loader threads (a model or script to load), handed over after the
    /// keyspace lock is released (AOF replay runs it synchronously instead).
    pub host_job: Option<crate::exec::HostJob>,
}

impl Ctx<'_> {
    /// Adds work to run once the keyspace lock is released, after any work already deferred
    /// (EXEC collects the deferred work of every queued command this way).
    pub fn defer(&mut self, f: Box<dyn FnOnce() + Send>) {
        self.deferred = Some(match self.deferred.take() {
            None => f,
            Some(before) => Box::new(move || {
                before();
                f();
            }),
        });
    }
}

/// For each table entry, the range of its subcommands in `SUBCOMMANDS` (they are listed together).
static SUBCOMMAND_START: OnceLock<Vec<(usize, usize)>> = OnceLock::new();

fn subcommand_starts() -> Vec<(usize, usize)> {
    table::COMMANDS
        .iter()
        .map(|c| {
            let mut it = table::SUBCOMMANDS.iter().enumerate().filter(|(_, s)| s.parent == c.name).map(|(i, _)| i);
            match it.next() {
                None => (0, 0),
                Some(first) => (first, it.next_back().unwrap_or(first) + 1),
            }
        })
        .collect()
}

static LOOKUP: OnceLock<HashMap<&'static [u8], &'static CommandSpec>> = OnceLock::new();

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let map = LOOKUP.get_or_init(|| table::COMMANDS.iter().map(|c| (c.name.as_bytes(), c)).collect());
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    map.get(&lower[..]).copied()
}

/// Redis's reply to an unknown command.
pub fn unknown_command(args: &Args) -> CmdError {
    let shown = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned();
    let mut msg = format!("ERR unknown command '{}', with args beginning with: ", shown(args.get(0)));
    for i in 1..args.len() {
        msg.push_str(&format!("'{}' ", shown(args.get(i))));
    }
    CmdError(msg)
}

/// Case-insensitive comparison of an argument with an option name.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Runs `spec` against the keyspace the caller has locked. Arity is already checked.
pub fn execute(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    (ctx.spec.run)(ctx, args)
}
