//! Durability: snapshots (SAVE, BGSAVE, save rules, shutdown) and the append-only log (logging
//! every change before its reply leaves, fsync policy, rewrite, replay at start). The keyspace is
//! captured by sharing tensors, models and scripts (Arc), so BGSAVE copies no tensor data while
//! holding the lock.
pub mod aof;
pub mod codec;
pub mod snapshot;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use self::aof::{encode_command, Aof, Fsync};
use self::codec::{snapshot_clone, Stored};
use crate::ai::{Model, Script};
use crate::exec::{HostJob, LoadedModel};
use crate::keyspace::{Key, Value};
use crate::server::{now_ms, Server};

/// Persistence state of a server.
pub struct Persist {
    aof: Mutex<Option<Aof>>,
    /// Something waits in the AOF buffer (lets the reply path skip the lock when nothing does).
    aof_pending: AtomicBool,
    /// The log is on with `appendfsync always`: replies wait for a group fsync.
    fsync_always: AtomicBool,
    pub last_save: AtomicU64,
    pub changes_at_save: AtomicU64,
    pub bgsave_running: AtomicBool,
    /// BGSAVE SCHEDULE arrived while a save ran: the cron starts one when it ends.
    pub bgsave_scheduled: AtomicBool,
    pub last_bgsave_ok: AtomicBool,
    pub rewrite_running: AtomicBool,
    pub last_rewrite_ok: AtomicBool,
    pub loading: AtomicBool,
    fsync_thread: AtomicBool,
}

impl Default for Persist {
    fn default() -> Self {
        Persist {
            aof: Mutex::new(None),
            aof_pending: AtomicBool::new(false),
            fsync_always: AtomicBool::new(false),
            last_save: AtomicU64::new(now_ms() / 1000),
            changes_at_save: AtomicU64::new(0),
            bgsave_running: AtomicBool::new(false),
            bgsave_scheduled: AtomicBool::new(false),
            last_bgsave_ok: AtomicBool::new(true),
            rewrite_running: AtomicBool::new(false),
            last_rewrite_ok: AtomicBool::new(true),
            loading: AtomicBool::new(false),
            fsync_thread: AtomicBool::new(false),
        }
    }
}

impl Persist {
    pub fn aof_enabled(&self) -> bool {
        self.aof.lock().is_some()
    }

    /// Appends a command to the log (call with the keyspace locked, so the log order is the
    /// execution order).
    pub fn log(&self, argv: &[&[u8]]) {
        let mut g = self.aof.lock();
        if let Some(a) = g.as_mut() {
            let mut b = Vec::new();
            encode_command(&mut b, argv);
            a.append(&b);
            self.aof_pending.store(true, Relaxed);
        }
    }

    /// Appends pre-encoded commands.
    pub fn log_bytes(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut g = self.aof.lock();
        if let Some(a) = g.as_mut() {
            a.append(bytes);
            self.aof_pending.store(true, Relaxed);
        }
    }

    /// With `appendfsync always` and unsynced changes, replies must wait for the next group
    /// commit (one write + fsync for every client served in an event-loop pass, as Redis does).
    pub fn reply_must_wait(&self) -> bool {
        self.fsync_always.load(Relaxed) && self.aof_pending.load(Relaxed)
    }

    /// Writes the log buffer (and fsyncs with `appendfsync always`) before replies are sent.
    pub fn flush_for_reply(&self) {
        if !self.aof_pending.swap(false, Relaxed) {
            return;
        }
        if let Some(a) = self.aof.lock().as_mut() {
            if let Err(e) = a.write_out() {
                eprintln!("redisai-fast: writing the AOF {} failed: {e}", a.path.display());
            }
        }
    }

    /// A snapshot or log rewrite is being written by a background thread.
    pub fn background_running(&self) -> bool {
        self.bgsave_running.load(Relaxed) || self.rewrite_running.load(Relaxed)
    }

    pub fn aof_size(&self) -> u64 {
        self.aof.lock().as_ref().map_or(0, |a| a.size)
    }

    pub fn aof_last_write_ok(&self) -> bool {
        self.aof.lock().as_ref().is_none_or(|a| a.last_write_ok)
    }
}

fn path_of(server: &Server, name: &str) -> PathBuf {
    let cfg = server.config.read();
    let dir = cfg.get("dir").unwrap_or(".").to_string();
    let file = cfg.get(name).unwrap_or("").to_string();
    PathBuf::from(dir).join(file)
}

pub fn snapshot_path(server: &Server) -> PathBuf {
    path_of(server, "dbfilename")
}

pub fn aof_path(server: &Server) -> PathBuf {
    path_of(server, "appendfilename")
}

type Captured = Vec<(Key, Value, Option<u64>)>;

/// Everything in the keyspace, sharing what is immutable; and the change count it reflects.
fn capture(server: &Server) -> (Captured, u64) {
    capture_from(&server.ks.lock())
}

pub fn capture_from(ks: &crate::keyspace::Keyspace) -> (Captured, u64) {
    let items = ks.iter().map(|(k, v, e)| (Key::from(k), snapshot_clone(v), e)).collect();
    (items, ks.changes)
}

fn write_snapshot(server: &Server, items: &Captured) -> std::io::Result<u64> {
    let path = snapshot_path(server);
    snapshot::write(&path, items.iter().map(|(k, v, e)| (&k[..], v, *e)))
}

/// SAVE: writes the snapshot now (the caller waits).
pub fn save(server: &Server) -> Result<(), String> {
    let (items, changes) = capture(server);
    save_captured(server, items, changes)
}

/// Writes a captured keyspace as the snapshot.
pub fn save_captured(server: &Server, items: Captured, changes: u64) -> Result<(), String> {
    match write_snapshot(server, &items) {
        Ok(_) => {
            server.persist.last_save.store(now_ms() / 1000, Relaxed);
            server.persist.changes_at_save.store(changes, Relaxed);
            Ok(())
        }
        Err(e) => Err(format!("ERR writing the snapshot failed: {e}")),
    }
}

/// BGSAVE: captures now, writes in a background thread. Err if one is already running.
pub fn bgsave(server: &Arc<Server>) -> Result<(), &'static str> {
    if server.persist.bgsave_running.swap(true, Relaxed) {
        return Err("ERR Background save already in progress");
    }
    let (items, changes) = capture(server);
    let s = server.clone();
    std::thread::Builder::new()
        .name("bgsave".into())
        .spawn(move || {
            let ok = write_snapshot(&s, &items);
            if let Err(e) = &ok {
                eprintln!("redisai-fast: background save failed: {e}");
            } else {
                s.persist.last_save.store(now_ms() / 1000, Relaxed);
                s.persist.changes_at_save.store(changes, Relaxed);
            }
            drop(items);
            s.persist.last_bgsave_ok.store(ok.is_ok(), Relaxed);
            s.persist.bgsave_running.store(false, Relaxed);
        })
        .map_err(|_| "ERR cannot start the background save")?;
    Ok(())
}

/// Save rules (`save <seconds> <changes> ...`): starts a BGSAVE when one is due.
pub fn cron(server: &Arc<Server>) {
    if let Some(store) = server.store.get() {
        // store mode: persistence is the store's; the node beats and syncs shared settings
        return crate::store::node::tick(server, store);
    }
    if server.persist.bgsave_running.load(Relaxed) {
        return;
    }
    if server.persist.bgsave_scheduled.swap(false, Relaxed) {
        let _ = bgsave(server);
        return;
    }
    let rules = crate::config::parse_save_rules(server.config.read().get("save").unwrap_or("")).unwrap_or_default();
    if rules.is_empty() {
        return;
    }
    let changes = server.ks.lock().changes.saturating_sub(server.persist.changes_at_save.load(Relaxed));
    let elapsed = (now_ms() / 1000).saturating_sub(server.persist.last_save.load(Relaxed));
    if rules.iter().any(|&(secs, n)| changes >= n && changes > 0 && elapsed >= secs) {
        let _ = bgsave(server);
    }
}

/// Opens (or closes) the log per the `appendonly` option. Turning it on for a running server
/// first writes the current keyspace into it (as Redis does).
pub fn set_aof(server: &Arc<Server>, on: bool) -> Result<(), String> {
    if !on {
        if let Some(mut a) = server.persist.aof.lock().take() {
            let _ = a.write_out();
            let _ = a.sync();
        }
        server.persist.fsync_always.store(false, Relaxed);
        return Ok(());
    }
    if server.persist.aof_enabled() {
        return Ok(());
    }
    let fsync = Fsync::parse(server.config.read().get("appendfsync").unwrap_or("everysec"));
    let path = aof_path(server);
    let fresh = !path.exists();
    let aof = Aof::open(&path, fsync).map_err(|e| format!("ERR cannot open the AOF {}: {e}", path.display()))?;
    *server.persist.aof.lock() = Some(aof);
    server.persist.fsync_always.store(fsync == Fsync::Always, Relaxed);
    start_fsync_thread(server);
    if fresh && !server.persist.loading.load(Relaxed) {
        // the log must start with what already exists
        let (items, _) = capture(server);
        let mut buf = Vec::new();
        for (k, v, e) in &items {
            aof::value_commands(&mut buf, k, v, *e);
        }
        server.persist.log_bytes(&buf);
        server.persist.flush_for_reply();
    }
    Ok(())
}

/// `appendfsync everysec`: a thread that fsyncs the log once a second when it has unsynced data.
fn start_fsync_thread(server: &Arc<Server>) {
    if server.persist.fsync_thread.swap(true, Relaxed) {
        return;
    }
    let weak = Arc::downgrade(server);
    let _ = std::thread::Builder::new().name("aof-fsync".into()).spawn(move || loop {
        std::thread::sleep(Duration::from_millis(1000));
        let Some(s) = weak.upgrade() else { return };
        let mut g = s.persist.aof.lock();
        if let Some(a) = g.as_mut() {
            if a.fsync == Fsync::EverySec {
                let _ = a.write_out();
                if a.unsynced {
                    let _ = a.sync();
                }
            }
        }
    });
}

/// Follows `appendfsync` changes made with CONFIG SET.
pub fn set_fsync_policy(server: &Server, policy: &str) {
    if let Some(a) = server.persist.aof.lock().as_mut() {
        a.fsync = Fsync::parse(policy);
        server.persist.fsync_always.store(a.fsync == Fsync::Always, Relaxed);
    }
}

/// BGREWRITEAOF: rewrites the log from a snapshot in the background; writes made meanwhile are
/// kept in a buffer and appended before the new file replaces the old one.
pub fn rewrite_aof(server: &Arc<Server>) -> Result<(), &'static str> {
    if !server.persist.aof_enabled() {
        return Err("ERR BGREWRITEAOF needs appendonly yes");
    }
    if server.persist.rewrite_running.swap(true, Relaxed) {
        return Err("ERR Background append only file rewriting already in progress");
    }
    let items = {
        let ks = server.ks.lock();
        if let Some(a) = server.persist.aof.lock().as_mut() {
            a.rewrite_buf = Some(Vec::new());
        }
        ks.iter().map(|(k, v, e)| (Key::from(k), snapshot_clone(v), e)).collect::<Captured>()
    };
    let s = server.clone();
    std::thread::Builder::new()
        .name("aof-rewrite".into())
        .spawn(move || {
            let ok = do_rewrite(&s, items);
            if let Err(e) = &ok {
                eprintln!("redisai-fast: AOF rewrite failed: {e}");
                if let Some(a) = s.persist.aof.lock().as_mut() {
                    a.rewrite_buf = None;
                }
            }
            s.persist.last_rewrite_ok.store(ok.is_ok(), Relaxed);
            s.persist.rewrite_running.store(false, Relaxed);
        })
        .map_err(|_| "ERR cannot start the AOF rewrite")?;
    Ok(())
}

fn do_rewrite(server: &Server, items: Captured) -> std::io::Result<()> {
    use std::io::Write;
    let path = aof_path(server);
    let tmp = path.with_extension(format!("rewrite-{}", std::process::id()));
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut buf = Vec::new();
    for (k, v, e) in &items {
        buf.clear();
        aof::value_commands(&mut buf, k, v, *e);
        f.write_all(&buf)?;
    }
    drop(items);
    f.flush()?;
    // the tail written meanwhile, then the switch, under the log's lock
    let mut g = server.persist.aof.lock();
    let Some(a) = g.as_mut() else {
        let _ = std::fs::remove_file(&tmp);
        return Ok(());
    };
    a.write_out()?;
    let tail = a.rewrite_buf.take().unwrap_or_default();
    f.write_all(&tail)?;
    let file = f.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    let appender = std::fs::OpenOptions::new().append(true).open(&path)?;
    let size = appender.metadata()?.len();
    a.replace_file(appender, size);
    Ok(())
}

/// What loading at start found.
#[derive(Default, Debug)]
pub struct LoadSummary {
    pub source: String,
    pub keys: usize,
    pub commands: u64,
    pub truncated_at: Option<u64>,
}

/// Loads the AOF (when `appendonly yes` and it exists) or else the snapshot. Models and scripts
/// are handed to `host` to load synchronously before the server accepts clients. Any failure is
/// an error that names the file (and offset): the server must not start with lost data.
pub fn load(server: &Arc<Server>, host: &mut dyn FnMut(HostJob)) -> Result<LoadSummary, String> {
    server.persist.loading.store(true, Relaxed);
    let r = load_inner(server, host);
    server.persist.loading.store(false, Relaxed);
    let changes = server.ks.lock().changes;
    server.persist.changes_at_save.store(changes, Relaxed);
    r
}

fn load_inner(server: &Arc<Server>, host: &mut dyn FnMut(HostJob)) -> Result<LoadSummary, String> {
    let aof_on = server.config.read().get("appendonly") == Some("yes");
    let aof = aof_path(server);
    if aof_on && aof.exists() {
        return replay_aof(server, &aof, host);
    }
    let snap = snapshot_path(server);
    if !snap.exists() {
        return Ok(LoadSummary { source: "none".into(), ..Default::default() });
    }
    let entries = snapshot::read(&snap).map_err(|e| format!("{}: {e}", snap.display()))?;
    let n = entries.len();
    let now = now_ms();
    for e in entries {
        if e.expire_at.is_some_and(|t| t <= now) {
            continue;
        }
        match e.value {
            Stored::Value(v) => server.ks.lock().insert_with_ttl(&e.key, v, e.expire_at),
            Stored::Model(spec) => {
                let (server2, key, expire) = (server.clone(), e.key.clone(), e.expire_at);
                let failed: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
                let f2 = failed.clone();
                host(HostJob::LoadModel {
                    spec,
                    done: Box::new(move |spec, r| match r {
                        Ok(LoadedModel { handle, input_names, output_names }) => {
                            let (i, o) = if spec.backend == crate::ai::Backend::Tf {
                                (spec.inputs.clone(), spec.outputs.clone())
                            } else {
                                (input_names, output_names)
                            };
                            let m = Model::new(spec, i, o, handle);
                            server2.ks.lock().insert_with_ttl(&key, Value::Model(Arc::new(m)), expire);
                        }
                        Err(msg) => *f2.lock() = Some(msg),
                    }),
                });
                let msg = failed.lock().take();
                if let Some(msg) = msg {
                    return Err(format!("{}: model '{}' could not be loaded: {msg}", snap.display(), String::from_utf8_lossy(&e.key)));
                }
            }
            Stored::Script(spec) => {
                let (server2, key, expire) = (server.clone(), e.key.clone(), e.expire_at);
                let failed: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
                let f2 = failed.clone();
                host(HostJob::CompileScript {
                    spec,
                    done: Box::new(move |spec, r| match r {
                        Ok(handle) => {
                            server2.ks.lock().insert_with_ttl(&key, Value::Script(Arc::new(Script::new(spec, handle))), expire);
                        }
                        Err(msg) => *f2.lock() = Some(msg),
                    }),
                });
                let msg = failed.lock().take();
                if let Some(msg) = msg {
                    return Err(format!("{}: script '{}' could not be compiled: {msg}", snap.display(), String::from_utf8_lossy(&e.key)));
                }
            }
        }
    }
    server.persist.last_save.store(now_ms() / 1000, Relaxed);
    Ok(LoadSummary { source: snap.display().to_string(), keys: n, ..Default::default() })
}

fn replay_aof(server: &Arc<Server>, path: &std::path::Path, host: &mut dyn FnMut(HostJob)) -> Result<LoadSummary, String> {
    let mut summary = LoadSummary { source: path.display().to_string(), ..Default::default() };
    let mut multi: Option<Vec<Vec<Vec<u8>>>> = None;
    let mut run = |argv: Vec<Vec<u8>>| -> Result<(), String> {
        let job = crate::session::execute_replay(server, argv)?;
        if let Some(job) = job {
            let failed: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
            let job = watch_failure(job, failed.clone());
            host(job);
            let msg = failed.lock().take();
            if let Some(msg) = msg {
                return Err(msg);
            }
        }
        Ok(())
    };
    let end = aof::read_commands(path, |argv, _offset| {
        summary.commands += 1;
        let name = argv.first().map(|a| a.to_ascii_uppercase()).unwrap_or_default();
        match name.as_slice() {
            b"MULTI" => {
                multi = Some(Vec::new());
                Ok(())
            }
            b"EXEC" => {
                for cmd in multi.take().unwrap_or_default() {
                    run(cmd)?;
                }
                Ok(())
            }
            _ => match multi.as_mut() {
                Some(q) => {
                    q.push(argv);
                    Ok(())
                }
                None => run(argv),
            },
        }
    })?;
    if multi.is_some() {
        eprintln!("redisai-fast: {}: a transaction at the end has no EXEC (a crash mid-write); it was not applied", path.display());
    }
    if let aof::ReadEnd::TornTail { valid_len } = end {
        eprintln!(
            "redisai-fast: {}: the last command is incomplete (a crash mid-write); truncating the log at offset {valid_len}",
            path.display()
        );
        aof::truncate(path, valid_len).map_err(|e| format!("{}: cannot truncate: {e}", path.display()))?;
        summary.truncated_at = Some(valid_len);
    }
    summary.keys = server.ks.lock().len();
    Ok(summary)
}

/// Wraps a host job so that a failure is recorded in `failed` (replay must stop on it).
fn watch_failure(job: HostJob, failed: Arc<Mutex<Option<String>>>) -> HostJob {
    match job {
        HostJob::LoadModel { spec, done } => HostJob::LoadModel {
            spec,
            done: Box::new(move |spec, r| {
                if let Err(m) = &r {
                    *failed.lock() = Some(format!("a model could not be loaded: {m}"));
                }
                done(spec, r)
            }),
        },
        HostJob::CompileScript { spec, done } => HostJob::CompileScript {
            spec,
            done: Box::new(move |spec, r| {
                if let Err(m) = &r {
                    *failed.lock() = Some(format!("a script could not be compiled: {m}"));
                }
                done(spec, r)
            }),
        },
        other => other,
    }
}

/// Writes the snapshot and syncs the log at shutdown (per `save` rules unless told otherwise).
pub fn on_shutdown(server: &Server, mode: crate::server::ShutdownMode) -> Result<(), String> {
    use crate::server::ShutdownMode;
    if let Some(a) = server.persist.aof.lock().as_mut() {
        a.write_out().map_err(|e| e.to_string())?;
        a.sync().map_err(|e| e.to_string())?;
    }
    let rules = !server.config.read().get("save").unwrap_or("").trim().is_empty();
    match mode {
        ShutdownMode::NoSave => Ok(()),
        ShutdownMode::Save => save(server),
        ShutdownMode::Default if rules => save(server),
        ShutdownMode::Default => Ok(()),
    }
}
