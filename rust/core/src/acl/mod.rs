//! ACL users as in Redis 7: the rules of `ACL SETUSER` (and `user` lines), passwords, command and
//! key permissions, their description for `ACL LIST`/`GETUSER`, and the `ACL LOG`. Checking a
//! command against a user is here; the commands that manage users are in `commands::acl`.
pub mod keys;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::commands::{id_acl, id_by_name, id_count, id_name, subcommand_ids, table::COMMANDS};

/// ACL categories: Redis's, then ours (`@ai` for every RedisAI command, `@aistore` for the
/// commands that upload code: model and script stores, AI.CONFIG LOADBACKEND).
pub mod cat {
    pub const KEYSPACE: u32 = 1;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;
    pub const AI: u32 = 1 << 21;
    pub const AISTORE: u32 = 1 << 22;

    /// In Redis's order (ACL CAT lists them so, and descriptions try them so).
    pub const NAMES: &[(&str, u32)] = &[
        ("keyspace", KEYSPACE),
        ("read", READ),
        ("write", WRITE),
        ("set", SET),
        ("sortedset", SORTEDSET),
        ("list", LIST),
        ("hash", HASH),
        ("string", STRING),
        ("bitmap", BITMAP),
        ("hyperloglog", HYPERLOGLOG),
        ("geo", GEO),
        ("stream", STREAM),
        ("pubsub", PUBSUB),
        ("admin", ADMIN),
        ("fast", FAST),
        ("slow", SLOW),
        ("blocking", BLOCKING),
        ("dangerous", DANGEROUS),
        ("connection", CONNECTION),
        ("transaction", TRANSACTION),
        ("scripting", SCRIPTING),
        ("ai", AI),
        ("aistore", AISTORE),
    ];

    pub fn by_name(name: &str) -> Option<u32> {
        NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, f)| *f)
    }
}

/// Key permission bits of a pattern (`%R~`, `%W~`, `~` = both) and of a key access.
pub const KEY_READ: u8 = 1;
pub const KEY_WRITE: u8 = 2;

/// One bit per command id (table entries, then subcommands).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct CommandBits([u64; 4]);

impl CommandBits {
    #[inline]
    pub fn get(&self, id: usize) -> bool {
        self.0.get(id / 64).is_some_and(|w| w >> (id % 64) & 1 == 1)
    }
    fn set(&mut self, id: usize, on: bool) {
        if let Some(w) = self.0.get_mut(id / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
            }
        }
    }
    fn all() -> CommandBits {
        let mut b = CommandBits::default();
        (0..id_count()).for_each(|id| b.set(id, true));
        b
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub flags: u8,
    pub pattern: Vec<u8>,
}

/// A user: what `ACL SETUSER` built. Connections hold an `Arc` and re-read it when the users change.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    /// Tells a user apart from an earlier one of the same name (ACL LOAD, DELUSER + SETUSER):
    /// connections of a replaced user are closed.
    pub serial: u64,
    pub enabled: bool,
    pub nopass: bool,
    pub sanitize_payload: bool,
    /// SHA-256 hex digests, in the order they were added.
    pub passwords: Vec<String>,
    pub commands: CommandBits,
    /// Set by `+@all`/`allcommands`, cleared by `-@all`: descriptions start from `+@all` (Redis's
    /// "future commands" bit).
    pub all_commands: bool,
    pub allkeys: bool,
    pub patterns: Vec<KeyPattern>,
    pub allchannels: bool,
    pub channels: Vec<Vec<u8>>,
}

/// The user (and connection) a running script acts for: its `redis.execute` calls are checked
/// against this user's permissions and logged with this connection's details.
#[derive(Clone)]
pub struct ScriptCaller {
    pub user: Arc<User>,
    pub info: Arc<crate::server::ClientInfo>,
}

impl ScriptCaller {
    /// The caller to record for a script run by `client`; None when its user may do anything.
    pub fn of(client: &crate::commands::ClientState) -> Option<ScriptCaller> {
        (!client.unrestricted).then(|| ScriptCaller { user: client.user.clone(), info: client.info.clone() })
    }
}

thread_local! {
    static SCRIPT_CALLER: std::cell::RefCell<Option<ScriptCaller>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a script call) with `caller` as the identity of its `redis.execute` calls on this thread.
pub fn with_script_caller<T>(caller: Option<ScriptCaller>, f: impl FnOnce() -> T) -> T {
    let before = SCRIPT_CALLER.with(|c| c.replace(caller));
    let r = f();
    SCRIPT_CALLER.with(|c| *c.borrow_mut() = before);
    r
}

/// The caller of the script running on this thread, if it is restricted.
pub fn script_caller() -> Option<ScriptCaller> {
    SCRIPT_CALLER.with(|c| c.borrow().clone())
}

/// Why an `ACL SETUSER` rule was refused (the text after `modifier '...': `).
pub type RuleError = &'static str;

const SYNTAX: RuleError = "Syntax error";
const UNKNOWN: RuleError = "Unknown command or category name in ACL";
const BAD_HASH: RuleError = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
const NO_SUCH_PASS: RuleError = "The password you are trying to remove from the user does not exist";
const AFTER_ALLKEYS: RuleError = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
const AFTER_ALLCHANNELS: RuleError = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";

/// The SHA-256 of a password, in lowercase hex (how passwords are kept and shown).
pub fn hash_password(pass: &[u8]) -> String {
    let digest = Sha256::digest(pass);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl User {
    /// A new user as Redis creates one: off, no passwords, no commands, no keys.
    pub fn new(name: &str, serial: u64) -> User {
        User {
            name: name.to_string(),
            serial,
            enabled: false,
            nopass: false,
            sanitize_payload: false,
            passwords: Vec::new(),
            commands: CommandBits::default(),
            all_commands: false,
            allkeys: false,
            patterns: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
        }
    }

    /// The `default` user of a fresh server: on, nopass, every command, key and channel.
    pub fn default_user(serial: u64) -> User {
        let mut u = User::new("default", serial);
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            let _ = u.apply(rule.as_bytes());
        }
        u
    }

    /// Whether every command and key is allowed: the per-command check is skipped.
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.allkeys && self.commands == CommandBits::all()
    }

    fn set_command(&mut self, id: usize, on: bool) {
        self.commands.set(id, on);
        if let Some(c) = COMMANDS.get(id) {
            for sub in subcommand_ids(c.name) {
                self.commands.set(sub, on);
            }
        }
    }

    fn set_category(&mut self, flag: u32, on: bool) {
        for id in 0..id_count() {
            if id_acl(id) & flag != 0 {
                self.commands.set(id, on);
            }
        }
    }

    fn set_all(&mut self, on: bool) {
        self.commands = if on { CommandBits::all() } else { CommandBits::default() };
        self.all_commands = on;
    }

    /// Applies one rule (`on`, `>pass`, `~pattern`, `+@read`, ...). On error nothing changed.
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let text = String::from_utf8_lossy(rule);
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.sanitize_payload = false,
            "sanitize-payload" => self.sanitize_payload = true,
            "allkeys" => return self.apply(b"~*"),
            "resetkeys" => {
                self.allkeys = false;
                self.patterns.clear();
            }
            "allchannels" => return self.apply(b"&*"),
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            "allcommands" => self.set_all(true),
            "nocommands" => self.set_all(false),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "reset" => {
                for r in ["resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "-@all"] {
                    self.apply(r.as_bytes())?;
                }
            }
            _ => return self.apply_prefixed(rule),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let Some((&first, rest)) = rule.split_first() else { return Err(SYNTAX) };
        match first {
            b'>' => {
                let h = hash_password(rest);
                self.add_hash(h);
            }
            b'#' => {
                if rest.len() != 64 || !rest.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
                    return Err(BAD_HASH);
                }
                self.add_hash(String::from_utf8_lossy(rest).into_owned());
            }
            b'<' => self.remove_hash(&hash_password(rest))?,
            b'!' => {
                if rest.len() != 64 || !rest.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
                    return Err(BAD_HASH);
                }
                self.remove_hash(&String::from_utf8_lossy(rest))?
            }
            b'~' => self.add_pattern(KEY_READ | KEY_WRITE, rest)?,
            b'%' => {
                let tilde = rest.iter().position(|&c| c == b'~').ok_or(SYNTAX)?;
                let mut flags = 0;
                for &c in &rest[..tilde] {
                    flags |= match c.to_ascii_uppercase() {
                        b'R' => KEY_READ,
                        b'W' => KEY_WRITE,
                        _ => return Err(SYNTAX),
                    };
                }
                if flags == 0 {
                    return Err(SYNTAX);
                }
                self.add_pattern(flags, &rest[tilde + 1..])?
            }
            b'&' => {
                if rest == b"*" {
                    self.allchannels = true;
                    self.channels.clear();
                } else if self.allchannels {
                    return Err(AFTER_ALLCHANNELS);
                } else if !self.channels.iter().any(|c| c == rest) {
                    self.channels.push(rest.to_vec());
                }
            }
            b'+' | b'-' => {
                let on = first == b'+';
                let name = String::from_utf8_lossy(rest);
                if let Some(category) = name.strip_prefix('@') {
                    if category.eq_ignore_ascii_case("all") {
                        self.set_all(on);
                    } else {
                        let flag = cat::by_name(category).ok_or(UNKNOWN)?;
                        self.set_category(flag, on);
                    }
                } else {
                    let id = id_by_name(&name).ok_or(UNKNOWN)?;
                    self.set_command(id, on);
                }
            }
            _ => return Err(SYNTAX),
        }
        Ok(())
    }

    fn add_hash(&mut self, h: String) {
        self.nopass = false;
        if !self.passwords.contains(&h) {
            self.passwords.push(h);
        }
    }

    fn remove_hash(&mut self, h: &str) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| p != h);
        if self.passwords.len() == before {
            return Err(NO_SUCH_PASS);
        }
        self.nopass = false;
        Ok(())
    }

    fn add_pattern(&mut self, flags: u8, pattern: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(AFTER_ALLKEYS);
        }
        if pattern == b"*" && flags == KEY_READ | KEY_WRITE {
            self.allkeys = true;
            self.patterns.clear();
            return Ok(());
        }
        match self.patterns.iter_mut().find(|p| p.pattern == pattern) {
            Some(p) => p.flags |= flags,
            None => self.patterns.push(KeyPattern { flags, pattern: pattern.to_vec() }),
        }
        Ok(())
    }

    /// Whether `pass` opens this user (enabled, and nopass or a matching password).
    pub fn check_password(&self, pass: &[u8]) -> bool {
        self.enabled && (self.nopass || self.passwords.contains(&hash_password(pass)))
    }

    #[inline]
    pub fn can_run(&self, id: usize) -> bool {
        self.commands.get(id)
    }

    /// Whether the key may be accessed with `need` (KEY_READ/KEY_WRITE bits; 0: any pattern does).
    pub fn can_access_key(&self, key: &[u8], need: u8) -> bool {
        self.allkeys || self.patterns.iter().any(|p| p.flags & need == need && crate::glob::glob_match(&p.pattern, key, false))
    }

    /// The flags ACL GETUSER lists.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        if self.sanitize_payload {
            f.push("sanitize-payload");
        }
        f
    }

    /// The key patterns as ACL LIST shows them (`~a %R~b`), or `~*`.
    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let mut parts = Vec::new();
        for p in &self.patterns {
            let pat = String::from_utf8_lossy(&p.pattern);
            parts.push(match p.flags {
                KEY_READ => format!("%R~{pat}"),
                KEY_WRITE => format!("%W~{pat}"),
                _ => format!("~{pat}"),
            });
        }
        parts.join(" ")
    }

    /// The channel rules as ACL LIST shows them.
    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let mut s = String::from("resetchannels");
        for c in &self.channels {
            s.push_str(" &");
            s.push_str(&String::from_utf8_lossy(c));
        }
        s
    }

    /// The command rules that rebuild this user's permissions, as Redis 7.0 words them: `+@all`
    /// or `-@all`, then the categories that fit best, then single commands.
    pub fn describe_commands(&self) -> String {
        let mut rules = Vec::new();
        let additive = !self.all_commands;
        let mut fake = User::new("", 0);
        fake.set_all(!additive);
        rules.push(if additive { "-@all".to_string() } else { "+@all".to_string() });
        // greedy: the category with the most commands in common and the fewest differences
        let mut remaining = self.clone();
        let mut applied = vec![false; cat::NAMES.len()];
        loop {
            let mut best = None;
            let (mut min_diff, mut max_same) = (usize::MAX, 0usize);
            for (j, (_, flag)) in cat::NAMES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (mut on, mut off) = (0usize, 0usize);
                for id in 0..id_count() {
                    if id_acl(id) & flag != 0 {
                        if remaining.commands.get(id) {
                            on += 1;
                        } else {
                            off += 1;
                        }
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < min_diff || (diff == min_diff && same > max_same)) {
                    best = Some(j);
                    min_diff = diff;
                    max_same = same;
                }
            }
            let Some(j) = best else { break };
            let (name, flag) = cat::NAMES[j];
            fake.set_category(flag, additive);
            remaining.set_category(flag, !additive);
            rules.push(format!("{}@{name}", if additive { '+' } else { '-' }));
            applied[j] = true;
        }
        for id in 0..id_count() {
            let want = self.commands.get(id);
            if want != fake.commands.get(id) {
                rules.push(format!("{}{}", if want { '+' } else { '-' }, id_name(id)));
                fake.set_command(id, want);
            }
        }
        rules.join(" ")
    }

    /// The user as one `ACL LIST` / ACL file line.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("user {}", self.name)];
        parts.extend(self.flag_names().iter().map(|s| s.to_string()));
        for p in &self.passwords {
            parts.push(format!("#{p}"));
        }
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        parts.push(self.describe_channels());
        parts.push(self.describe_commands());
        parts.join(" ")
    }
}

/// Why a command was refused (ACL LOG `reason`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Denial {
    Command,
    Key,
    Auth,
}

impl Denial {
    pub fn reason(self) -> &'static str {
        match self {
            Denial::Command => "command",
            Denial::Key => "key",
            Denial::Auth => "auth",
        }
    }
}

/// Where the refused command ran (ACL LOG `context`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogContext {
    Toplevel,
    Multi,
    /// `redis.execute` inside a TorchScript script.
    Script,
}

impl LogContext {
    pub fn name(self) -> &'static str {
        match self {
            LogContext::Toplevel => "toplevel",
            LogContext::Multi => "multi",
            LogContext::Script => "script",
        }
    }
}

/// One ACL LOG entry; repeats within a minute are counted in the same entry, as Redis does.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub reason: Denial,
    pub context: LogContext,
    pub object: String,
    pub username: String,
    /// Milliseconds since the epoch of the latest occurrence.
    pub updated_ms: u64,
    pub client_info: String,
}

/// Entries that repeat within this many milliseconds are grouped (Redis's 60 s).
const LOG_GROUPING_MS: u64 = 60_000;

/// The users and the ACL LOG.
pub struct Acl {
    pub users: BTreeMap<String, Arc<User>>,
    pub log: VecDeque<LogEntry>,
    next_serial: u64,
}

impl Default for Acl {
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user(1)));
        Acl { users, log: VecDeque::new(), next_serial: 2 }
    }
}

/// The error of a whole `ACL SETUSER` (or `user` line): the rule and why.
pub fn setuser_error(rule: &[u8], why: RuleError) -> String {
    format!("Error in ACL SETUSER modifier '{}': {why}", String::from_utf8_lossy(rule))
}

impl Acl {
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.users.get("default").cloned().unwrap_or_else(|| Arc::new(User::default_user(1)))
    }

    fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// Creates or changes `name` with `rules`, all or nothing. Errors are ACL SETUSER's message.
    pub fn set_user(&mut self, name: &str, rules: &[&[u8]]) -> Result<(), String> {
        if name.is_empty() || name.bytes().any(|c| c == b' ' || c == 0) {
            return Err("Usernames can't contain spaces or null characters".into());
        }
        let mut user = match self.users.get(name) {
            Some(u) => (**u).clone(),
            None => User::new(name, self.serial()),
        };
        for rule in rules {
            user.apply(rule).map_err(|why| setuser_error(rule, why))?;
        }
        self.users.insert(name.to_string(), Arc::new(user));
        Ok(())
    }

    /// `requirepass`: the default user's only password (or nopass when empty).
    pub fn set_default_password(&mut self, pass: &str) {
        let rules: Vec<Vec<u8>> = if pass.is_empty() { vec![b"nopass".to_vec()] } else { vec![b"resetpass".to_vec(), [b">", pass.as_bytes()].concat()] };
        let refs: Vec<&[u8]> = rules.iter().map(|r| r.as_slice()).collect();
        let _ = self.set_user("default", &refs);
    }

    /// Deletes users; returns how many existed. `default` cannot be deleted.
    pub fn del_users(&mut self, names: &[String]) -> Result<usize, String> {
        if names.iter().any(|n| n == "default") {
            return Err("The 'default' user cannot be removed".into());
        }
        Ok(names.iter().filter(|n| self.users.remove(n.as_str()).is_some()).count())
    }

    /// Adds a denial (`new`, with count 1) to the ACL LOG, grouped with an equal entry of the
    /// last minute.
    pub fn log_denial(&mut self, new: LogEntry, max_len: usize) {
        let found = self.log.iter().position(|e| {
            new.updated_ms.saturating_sub(e.updated_ms) < LOG_GROUPING_MS
                && e.reason == new.reason
                && e.context == new.context
                && e.object == new.object
                && e.username == new.username
        });
        let entry = match found.and_then(|i| self.log.remove(i)) {
            Some(mut e) => {
                e.count += 1;
                e.updated_ms = new.updated_ms;
                e.client_info = new.client_info;
                e
            }
            None => new,
        };
        self.log.push_front(entry);
        while self.log.len() > max_len {
            self.log.pop_back();
        }
    }

    /// Every user as its `user ...` line, sorted by name (ACL LIST, ACL SAVE).
    pub fn lines(&self) -> Vec<String> {
        self.users.values().map(|u| u.describe()).collect()
    }

    /// Parses ACL file text: every line must be valid, else nothing is loaded and the error names
    /// the line. Returns the new users; a missing `default` user is created as on a fresh server.
    pub fn parse_file(&mut self, text: &str) -> Result<BTreeMap<String, Arc<User>>, String> {
        let mut users = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if words[0] != "user" || words.len() < 2 {
                return Err(format!("/{}: line should start with user keyword", i + 1));
            }
            let name = words[1];
            if users.contains_key(name) {
                return Err(format!("{}: Duplicate user '{name}' found", i + 1));
            }
            // the default user keeps its serial (its connections stay); others are new users
            let serial = if name == "default" { self.default_user().serial } else { self.serial() };
            let mut u = User::new(name, serial);
            for w in &words[2..] {
                u.apply(w.as_bytes()).map_err(|why| format!("{}: {}", i + 1, setuser_error(w.as_bytes(), why)))?;
            }
            users.insert(name.to_string(), Arc::new(u));
        }
        if !users.contains_key("default") {
            users.insert("default".to_string(), Arc::new(User::default_user(self.default_user().serial)));
        }
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new("u", 1);
        for r in rules.split_whitespace() {
            u.apply(r.as_bytes()).expect("valid rule");
        }
        u
    }

    #[test]
    fn describes_like_redis() {
        assert_eq!(User::default_user(1).describe(), "user default on nopass ~* &* +@all");
        let u = user("on >pw ~cache:* %R~ro:* +get +@string -set");
        assert_eq!(
            u.describe(),
            "user u on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~cache:* %R~ro:* resetchannels -@all +@string -set"
        );
        assert_eq!(user("reset").describe(), "user u off sanitize-payload resetchannels -@all");
        assert_eq!(user("~a %R~b %W~c %RW~d &* +@all nopass on").describe(), "user u on nopass ~a %R~b %W~c ~d &* +@all");
    }

    #[test]
    fn permissions() {
        let u = user("on nopass %R~r:* ~rw:* +@all -@aistore -config|set");
        assert!(u.can_access_key(b"r:1", KEY_READ));
        assert!(!u.can_access_key(b"r:1", KEY_WRITE));
        assert!(u.can_access_key(b"rw:1", KEY_READ | KEY_WRITE));
        assert!(!u.can_access_key(b"x", 0));
        let id = |n: &str| id_by_name(n).expect("known command");
        assert!(!u.can_run(id("ai.modelstore")));
        assert!(!u.can_run(id("ai.config|loadbackend")));
        assert!(u.can_run(id("ai.config|get")));
        assert!(u.can_run(id("config|get")));
        assert!(!u.can_run(id("config|set")));
        assert!(u.can_run(id("ai.tensorset")));
        assert!(!u.unrestricted());
        assert!(User::default_user(1).unrestricted());
    }

    #[test]
    fn rule_errors_change_nothing() {
        let mut acl = Acl::default();
        acl.set_user("e", &[b"on", b"allkeys"]).expect("valid");
        let err = acl.set_user("e", &[b"off", b"~x"]).expect_err("after allkeys");
        assert!(err.contains("Adding a pattern after the * pattern"), "{err}");
        assert!(acl.user("e").is_some_and(|u| u.enabled));
        assert_eq!(acl.set_user("e", &[b"+nosuch"]), Err("Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL".into()));
    }
}
