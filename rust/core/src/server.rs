//! State shared by all connections: the keyspace behind its lock, the configuration, the
//! client registry and server-wide statistics. No command logic here.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::acl::{Acl, User};
use crate::config::Config;
use crate::exec::Exec;
use crate::persist::Persist;
use crate::keyspace::Keyspace;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Server-wide counters (INFO stats).
#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub error_replies: AtomicU64,
}

/// What CLIENT LIST / CLIENT INFO show about a connection.
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created_ms: u64,
    pub last_ms: AtomicU64,
    pub name: Mutex<String>,
    pub lib_name: Mutex<String>,
    pub lib_ver: Mutex<String>,
    /// Name of the last command run (a table entry, so no allocation per command).
    pub last_cmd: Mutex<&'static str>,
    pub resp: AtomicU64,
    pub in_multi: AtomicBool,
    pub blocked: AtomicBool,
    pub qbuf: AtomicU64,
    /// The ACL user the connection is authenticated as (CLIENT LIST `user=`).
    pub user: Mutex<String>,
    /// CLIENT KILL or a deleted user: the host closes the connection.
    pub killed: AtomicBool,
    /// CLIENT NO-EVICT (shown in CLIENT LIST flags as `e`).
    pub no_evict: AtomicBool,
    /// MONITOR: the connection only receives the feed of commands.
    pub monitor: AtomicBool,
}

impl ClientInfo {
    pub fn new(id: u64, addr: String, laddr: String, name: &str, now: u64) -> ClientInfo {
        ClientInfo {
            id,
            addr,
            laddr,
            created_ms: now,
            last_ms: AtomicU64::new(now),
            name: Mutex::new(name.to_string()),
            lib_name: Mutex::new(String::new()),
            lib_ver: Mutex::new(String::new()),
            last_cmd: Mutex::new("NULL"),
            resp: AtomicU64::new(2),
            in_multi: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            qbuf: AtomicU64::new(0),
            user: Mutex::new("default".to_string()),
            killed: AtomicBool::new(false),
            no_evict: AtomicBool::new(false),
            monitor: AtomicBool::new(false),
        }
    }
}

impl ClientInfo {
    /// Connected through the Unix socket (its address is the socket's path, as Redis shows it).
    pub fn is_unix(&self) -> bool {
        self.addr.starts_with('/')
    }

    /// Whether protected mode counts this client as local: the Unix socket, 127.0.0.1 or ::1
    /// (Redis 7 compares the address exactly: 127.0.0.2 is not local).
    pub fn is_local(&self) -> bool {
        if self.is_unix() || self.addr == IN_PROCESS_ADDR {
            return true;
        }
        let ip = self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(ip, _)| ip);
        matches!(ip, "127.0.0.1" | "::1" | "::ffff:127.0.0.1")
    }
}

/// The address CLIENT LIST shows for an in-process client (`crate::local`): local for protected mode.
pub const IN_PROCESS_ADDR: &str = "in-process:0";

/// Redis's reply to a non-local client in protected mode (sent before the connection closes).
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// A request for the hosting process to stop (SHUTDOWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Save if persistence is configured (the default).
    Default,
    Save,
    NoSave,
}

pub struct Server {
    pub ks: Mutex<Keyspace>,
    pub config: RwLock<Config>,
    pub stats: Stats,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    next_client_id: AtomicU64,
    pub started: Instant,
    pub run_id: String,
    pub shutdown: Mutex<Option<ShutdownMode>>,
    /// Bytes allocated by Rust (the py crate installs a counting allocator; 0 in pure Rust tests).
    pub allocated: fn() -> usize,
    /// Text lines the host adds to INFO (e.g. the `ai` section), keyed by section name.
    pub extra_info: RwLock<BTreeMap<String, String>>,
    pub exec: Exec,
    pub persist: Persist,
    /// The client identity server-side code (scripts) runs commands as.
    pub internal_client: Arc<ClientInfo>,
    /// Framework versions of the backends loaded so far (INFO ai), e.g. "TORCH" -> "2.15.0".
    pub backend_versions: RwLock<BTreeMap<String, String>>,
    /// Store mode (`store URL`): where the keys live instead of `ks`. Set once at start.
    pub store: std::sync::OnceLock<Arc<crate::store::Store>>,
    peak_memory: AtomicU64,
    /// ACL users and the ACL LOG.
    pub acl: RwLock<Acl>,
    /// Bumped whenever users change: sessions then re-read their user.
    pub acl_epoch: AtomicU64,
    pub cmd_stats: crate::stats::CommandStats,
    pub slowlog: crate::stats::SlowLog,
    pub latency: crate::stats::LatencyMonitor,
    /// Connections the host must close (CLIENT KILL, deleted users), by client id.
    pub kills: Mutex<Vec<u64>>,
    /// CLIENT PAUSE: until this many ms since the epoch (0 = not paused), and whether only writes pause.
    pub pause_until_ms: AtomicU64,
    pub pause_writes_only: AtomicBool,
    /// MONITOR clients and the feed lines waiting for each (the host writes them out).
    pub monitors: Mutex<Vec<(u64, Vec<u8>)>>,
    pub monitor_count: std::sync::atomic::AtomicUsize,
    /// Clients with a command CLIENT PAUSE held back (run once the pause is over).
    pub postponed_clients: Mutex<Vec<u64>>,
    /// Kills, postponed commands or MONITOR feeds wait for the host (`service`).
    pub service_pending: AtomicBool,
}

impl Server {
    /// `allocated` reports the bytes in use (a counting allocator's total; `|| 0` in tests).
    pub fn new(config: Config, allocated: fn() -> usize) -> Arc<Server> {
        let seed = now_ms() ^ (std::process::id() as u64).rotate_left(32);
        let mut x = seed | 1;
        let run_id: String = (0..40)
            .map(|_| {
                // xorshift: a run id only needs to differ between runs
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap_or('0')
            })
            .collect();
        let mut ks = Keyspace::new();
        ks.set_eviction(config.eviction());
        let server = Arc::new(Server {
            ks: Mutex::new(ks),
            config: RwLock::new(config),
            stats: Stats::default(),
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            run_id,
            shutdown: Mutex::new(None),
            allocated,
            extra_info: RwLock::new(BTreeMap::new()),
            exec: Exec::default(),
            persist: Persist::default(),
            internal_client: Arc::new(ClientInfo::new(0, "internal".into(), "internal".into(), "script", now_ms())),
            backend_versions: RwLock::new(BTreeMap::new()),
            store: std::sync::OnceLock::new(),
            peak_memory: AtomicU64::new(0),
            acl: RwLock::new(Acl::default()),
            acl_epoch: AtomicU64::new(0),
            cmd_stats: crate::stats::CommandStats::new(crate::commands::id_count()),
            slowlog: Default::default(),
            latency: Default::default(),
            kills: Mutex::new(Vec::new()),
            pause_until_ms: AtomicU64::new(0),
            pause_writes_only: AtomicBool::new(false),
            monitors: Mutex::new(Vec::new()),
            monitor_count: Default::default(),
            postponed_clients: Mutex::new(Vec::new()),
            service_pending: AtomicBool::new(false),
        });
        server.cmd_stats.configure(&server.config.read());
        let pass = server.config.read().requirepass().unwrap_or("").to_string();
        server.acl.write().set_default_password(&pass);
        server
    }

    /// Registers a new connection, or says why it is refused (the reply to send before closing):
    /// `maxclients` reached, or protected mode with a non-local client.
    pub fn register_client(&self, addr: String, laddr: String) -> Result<Arc<ClientInfo>, &'static str> {
        let mut clients = self.clients.lock();
        let (max, protected) = {
            let c = self.config.read();
            (c.maxclients(), c.get("protected-mode") == Some("yes") && c.requirepass().is_none())
        };
        if clients.len() >= max {
            self.stats.rejected_connections.fetch_add(1, Relaxed);
            return Err("-ERR max number of clients reached\r\n");
        }
        let id = self.next_client_id.fetch_add(1, Relaxed);
        let info = Arc::new(ClientInfo::new(id, addr, laddr, "", now_ms()));
        if protected && !info.is_local() {
            self.stats.rejected_connections.fetch_add(1, Relaxed);
            return Err(PROTECTED_MODE_DENIED);
        }
        clients.insert(id, info.clone());
        self.stats.connections_received.fetch_add(1, Relaxed);
        Ok(info)
    }

    pub fn unregister_client(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn clients(&self) -> Vec<Arc<ClientInfo>> {
        self.clients.lock().values().cloned().collect()
    }

    pub fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn request_shutdown(&self, mode: ShutdownMode) {
        *self.shutdown.lock() = Some(mode);
    }

    /// Used memory as INFO reports it (and the peak INFO shows, updated on each look).
    pub fn used_memory(&self) -> usize {
        let used = (self.allocated)();
        self.peak_memory.fetch_max(used as u64, Relaxed);
        used
    }

    /// The most `used_memory` seen (INFO's used_memory_peak; looked at by INFO, the eviction
    /// check and the host's periodic expiry tick, as Redis samples it in its cron).
    pub fn peak_memory(&self) -> u64 {
        self.peak_memory.load(Relaxed).max(self.used_memory() as u64)
    }

    /// Evicts keys by `maxmemory-policy` until used memory is at most `maxmemory` (the keyspace
    /// is locked by the caller); each eviction goes to the AOF as a DEL. False when over the
    /// limit with nothing left to evict.
    pub fn evict_to_limit(&self, ks: &mut Keyspace, max: u64, now: u64) -> bool {
        while self.used_memory() as u64 > max {
            let Some(key) = ks.evict_one(now) else { return false };
            if self.persist.aof_enabled() {
                self.persist.log(&[b"DEL", &key]);
            }
        }
        true
    }

    /// Runs `f` on the users and tells every session to re-read its user.
    pub fn change_acl<T>(&self, f: impl FnOnce(&mut Acl) -> T) -> T {
        let r = f(&mut self.acl.write());
        self.acl_epoch.fetch_add(1, Relaxed);
        r
    }

    /// The `default` user (new connections run as it).
    pub fn default_user(&self) -> Arc<User> {
        self.acl.read().default_user()
    }

    /// Asks the host to close connection `id` (CLIENT KILL).
    pub fn kill_client(&self, id: u64) {
        if let Some(c) = self.clients.lock().get(&id) {
            c.killed.store(true, Relaxed);
        }
        self.kills.lock().push(id);
        self.service_pending.store(true, Relaxed);
    }

    /// Whether a CLIENT PAUSE holds back this command now (`write`: the command writes).
    #[inline]
    pub fn paused_for(&self, write: bool) -> bool {
        let until = self.pause_until_ms.load(Relaxed);
        until != 0 && (write || !self.pause_writes_only.load(Relaxed)) && now_ms() < until
    }
}
