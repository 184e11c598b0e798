//! The append-only log: commands as RESP, appended before replies leave, fsynced per the
//! `appendfsync` policy; replay with torn-tail truncation; rewrite from a snapshot while writes go
//! on; and the check/repair used by `redisai-fast check-aof`.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::ai::Backend;
use crate::keyspace::Value;
use crate::resp::Input;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    Always,
    EverySec,
    No,
}

impl Fsync {
    pub fn parse(s: &str) -> Fsync {
        match s {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::EverySec,
        }
    }
}

/// Appends one command (RESP multibulk) to `buf`.
pub fn encode_command(buf: &mut Vec<u8>, argv: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

/// The commands that recreate `value` at `key` (snapshot-to-AOF rewrite; model outputs).
pub fn value_commands(buf: &mut Vec<u8>, key: &[u8], value: &Value, expire_at: Option<u64>) {
    match value {
        Value::Str(s) => encode_command(buf, &[b"SET", key, s]),
        Value::Hash(h) => {
            let pairs: Vec<(&Vec<u8>, &Vec<u8>)> = h.iter().collect();
            for chunk in pairs.chunks(512) {
                let mut argv: Vec<&[u8]> = vec![b"HSET", key];
                for (f, v) in chunk {
                    argv.push(f);
                    argv.push(v);
                }
                encode_command(buf, &argv);
            }
        }
        Value::List(l) => {
            let items: Vec<&Vec<u8>> = l.iter().collect();
            for chunk in items.chunks(512) {
                let mut argv: Vec<&[u8]> = vec![b"RPUSH", key];
                argv.extend(chunk.iter().map(|v| v.as_slice()));
                encode_command(buf, &argv);
            }
        }
        Value::Tensor(t) => tensor_command(buf, key, t),
        Value::Model(m) => {
            let s = &m.spec;
            let nums = [s.batchsize.to_string(), s.minbatchsize.to_string(), s.minbatchtimeout.to_string()];
            let (ni, no) = (s.inputs.len().to_string(), s.outputs.len().to_string());
            let mut argv: Vec<&[u8]> = vec![b"AI.MODELSTORE", key, s.backend.name().as_bytes(), s.device.as_bytes(), b"TAG", &s.tag];
            if s.backend != Backend::TfLite || s.batchsize > 0 {
                argv.extend([&b"BATCHSIZE"[..], nums[0].as_bytes(), b"MINBATCHSIZE", nums[1].as_bytes(), b"MINBATCHTIMEOUT", nums[2].as_bytes()]);
            }
            if s.backend == Backend::Tf {
                argv.push(b"INPUTS");
                argv.push(ni.as_bytes());
                argv.extend(s.inputs.iter().map(|n| n.as_bytes()));
                argv.push(b"OUTPUTS");
                argv.push(no.as_bytes());
                argv.extend(s.outputs.iter().map(|n| n.as_bytes()));
            }
            argv.push(b"BLOB");
            argv.push(s.blob.as_slice());
            encode_command(buf, &argv);
        }
        Value::Script(sc) => {
            let s = &sc.spec;
            if s.entry_points.is_empty() {
                encode_command(buf, &[b"AI.SCRIPTSET", key, s.device.as_bytes(), b"TAG", &s.tag, b"SOURCE", s.source.as_bytes()]);
            } else {
                let n = s.entry_points.len().to_string();
                let mut argv: Vec<&[u8]> = vec![b"AI.SCRIPTSTORE", key, s.device.as_bytes(), b"TAG", &s.tag, b"ENTRY_POINTS", n.as_bytes()];
                argv.extend(s.entry_points.iter().map(|e| e.as_bytes()));
                argv.push(b"SOURCE");
                argv.push(s.source.as_bytes());
                encode_command(buf, &argv);
            }
        }
    }
    if let Some(at) = expire_at {
        encode_command(buf, &[b"PEXPIREAT", key, at.to_string().as_bytes()]);
    }
}

/// `AI.TENSORSET key TYPE dims... BLOB data`
pub fn tensor_command(buf: &mut Vec<u8>, key: &[u8], t: &crate::tensor::Tensor) {
    let dims: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let mut argv: Vec<&[u8]> = vec![b"AI.TENSORSET", key, t.dtype().name().as_bytes()];
    argv.extend(dims.iter().map(|d| d.as_bytes()));
    argv.push(b"BLOB");
    argv.push(t.bytes());
    encode_command(buf, &argv);
}

/// Microseconds each fsync of the log took (the metrics' fsync latency histogram).
pub static FSYNC_US: std::sync::LazyLock<crate::stats::Histogram> = std::sync::LazyLock::new(Default::default);

/// The open log.
pub struct Aof {
    pub path: PathBuf,
    file: File,
    pub fsync: Fsync,
    /// Bytes appended but not yet written to the file.
    pub buf: Vec<u8>,
    /// While BGREWRITEAOF runs: what was appended since its snapshot.
    pub rewrite_buf: Option<Vec<u8>>,
    pub size: u64,
    /// Written since the last fsync.
    pub unsynced: bool,
    pub last_fsync: Instant,
    pub last_write_ok: bool,
}

impl Aof {
    pub fn open(path: &Path, fsync: Fsync) -> io::Result<Aof> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Aof {
            path: path.to_path_buf(),
            file,
            fsync,
            buf: Vec::new(),
            rewrite_buf: None,
            size,
            unsynced: false,
            last_fsync: Instant::now(),
            last_write_ok: true,
        })
    }

    pub fn append(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if let Some(r) = self.rewrite_buf.as_mut() {
            r.extend_from_slice(bytes);
        }
    }

    /// Writes what is buffered; with `appendfsync always`, also fsyncs.
    pub fn write_out(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let r = self.file.write_all(&self.buf);
            self.last_write_ok = r.is_ok();
            r?;
            self.size += self.buf.len() as u64;
            self.buf.clear();
            self.unsynced = true;
        }
        if self.fsync == Fsync::Always && self.unsynced {
            self.sync()?;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        self.file.sync_data()?;
        FSYNC_US.observe(started.elapsed().as_micros() as u64);
        self.unsynced = false;
        self.last_fsync = Instant::now();
        Ok(())
    }

    /// Switches to the rewritten file (after the rewrite buffer was appended to it).
    pub fn replace_file(&mut self, file: File, size: u64) {
        self.file = file;
        self.size = size;
        self.unsynced = false;
    }
}

/// What reading a log found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    Clean,
    /// The last command is incomplete from this offset on (a crash mid-write).
    TornTail { valid_len: u64 },
}

/// Reads every complete command of the log at `path` in order. A protocol error is corruption:
/// reported with its offset (the offset of the command that could not be read).
pub fn read_commands(path: &Path, mut each: impl FnMut(Vec<Vec<u8>>, u64) -> Result<(), String>) -> Result<ReadEnd, String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut input = Input::new(usize::MAX / 4);
    input.multibulk_only = true;
    let mut chunk = vec![0u8; 1 << 20];
    let mut fed: u64 = 0;
    loop {
        let n = f.read(&mut chunk).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        input.push(&chunk[..n]);
        fed += n as u64;
        loop {
            let start = fed - input.pending_bytes() as u64;
            match input.next_command() {
                Ok(Some(args)) => {
                    each(args.to_vecs(), start).map_err(|e| format!("{} at offset {start}: {e}", path.display()))?;
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(format!("{}: corrupt at offset {start}: {}", path.display(), e.0));
                }
            }
        }
    }
    if input.pending_bytes() > 0 {
        return Ok(ReadEnd::TornTail { valid_len: fed - input.pending_bytes() as u64 });
    }
    Ok(ReadEnd::Clean)
}

/// Cuts the log at `len` (dropping a torn last command).
pub fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

/// `redisai-fast check-aof [--fix]`: a one-line verdict; with `fix`, a torn tail is cut off.
pub fn check(path: &Path, fix: bool) -> Result<String, String> {
    let mut count = 0u64;
    let mut open_multi = 0u64;
    match read_commands(path, |argv, _| {
        count += 1;
        match argv.first().map(|a| a.to_ascii_uppercase()) {
            Some(c) if c == b"MULTI" => open_multi = 1,
            Some(c) if c == b"EXEC" => open_multi = 0,
            _ => {}
        }
        Ok(())
    })? {
        ReadEnd::Clean if open_multi == 0 => Ok(format!("AOF {} is valid: {count} commands", path.display())),
        ReadEnd::Clean => Ok(format!("AOF {} is valid: {count} commands (a MULTI at the end has no EXEC; replay skips it)", path.display())),
        ReadEnd::TornTail { valid_len } => {
            if fix {
                truncate(path, valid_len).map_err(|e| e.to_string())?;
                Ok(format!("AOF {}: truncated the incomplete last command at offset {valid_len} ({count} commands kept)", path.display()))
            } else {
                Err(format!("AOF {}: the last command is incomplete from offset {valid_len} (run with --fix to truncate it)", path.display()))
            }
        }
    }
}

/// Removes a file if it exists.
pub fn remove_if_exists(path: &Path) {
    let _ = fs::remove_file(path);
}
