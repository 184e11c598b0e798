//! The snapshot file: a versioned header, one record per key, an end marker and a CRC32 of the
//! whole file. Written to a temporary file, fsynced and renamed, so a crash mid-save leaves the
//! previous snapshot intact.
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::codec::{put_bytes, put_value, put_varint, Decoder, Stored, T_END};
use crate::keyspace::Value;

pub const MAGIC: &[u8; 8] = b"RAIFSNAP";
pub const VERSION: u32 = 1;
const RECORD: u8 = 0x01;

/// A Write that feeds a CRC32 of everything written.
struct Crc<W: Write> {
    w: W,
    h: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.w.write(b)?;
        self.h.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// A Read that feeds a CRC32 of everything read and counts the offset.
pub struct CrcReader<R: Read> {
    r: R,
    h: crc32fast::Hasher,
    pub offset: u64,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(b)?;
        self.h.update(&b[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

/// Writes every entry to `path` atomically (temp file, fsync, rename, fsync of the directory).
pub fn write<'a>(path: &Path, entries: impl Iterator<Item = (&'a [u8], &'a Value, Option<u64>)>) -> io::Result<u64> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let f = File::create(&tmp)?;
        let mut w = Crc { w: BufWriter::with_capacity(1 << 20, f), h: crc32fast::Hasher::new() };
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&crate::server::now_ms().to_le_bytes())?;
        let mut n = 0u64;
        for (key, value, expire) in entries {
            w.write_all(&[RECORD])?;
            put_bytes(&mut w, key)?;
            put_varint(&mut w, expire.map_or(0, |t| t + 1))?;
            put_value(&mut w, value)?;
            n += 1;
        }
        w.write_all(&[T_END])?;
        let crc = w.h.clone().finalize();
        let mut inner = w.w;
        inner.write_all(&crc.to_le_bytes())?;
        let f = inner.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(n)
    })();
    match result {
        Ok(n) => {
            fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent() {
                let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(n)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// One key read back from a snapshot.
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Stored,
    pub expire_at: Option<u64>,
}

/// A snapshot that cannot be read: what is wrong and at which byte.
#[derive(Debug)]
pub struct SnapshotError {
    pub offset: u64,
    pub message: String,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

/// Reads and verifies a whole snapshot (header, records, CRC).
pub fn read(path: &Path) -> Result<Vec<Entry>, SnapshotError> {
    let fail = |offset: u64, m: String| SnapshotError { offset, message: m };
    let file = File::open(path).map_err(|e| fail(0, e.to_string()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let mut d = Decoder { r: CrcReader { r: BufReader::with_capacity(1 << 20, file), h: crc32fast::Hasher::new(), offset: 0 }, max_len: size };
    let mut head = [0u8; 20];
    d.r.read_exact(&mut head).map_err(|_| fail(0, "file too short for a snapshot header".into()))?;
    if &head[..8] != MAGIC {
        return Err(fail(0, "not a redisai-fast snapshot (bad magic)".into()));
    }
    let version = u32::from_le_bytes(head[8..12].try_into().unwrap_or([0; 4]));
    if version != VERSION {
        return Err(fail(8, format!("unsupported snapshot version {version} (this server reads version {VERSION})")));
    }
    let mut out = Vec::new();
    loop {
        let at = d.r.offset;
        let marker = d.u8().map_err(|_| fail(at, "truncated: the end marker is missing".into()))?;
        if marker == T_END {
            break;
        }
        if marker != RECORD {
            return Err(fail(at, format!("unexpected byte {marker:#04x} where a record starts")));
        }
        let rec = (|| -> io::Result<Entry> {
            let key = d.bytes()?;
            let exp = d.varint()?;
            let t = d.u8()?;
            let value = d.value(t)?;
            Ok(Entry { key, value, expire_at: exp.checked_sub(1) })
        })();
        out.push(rec.map_err(|e| fail(at, format!("bad record: {e}")))?);
    }
    let expected = d.r.h.clone().finalize();
    let mut crc = [0u8; 4];
    let at = d.r.offset;
    d.r.r.read_exact(&mut crc).map_err(|_| fail(at, "truncated: the checksum is missing".into()))?;
    if u32::from_le_bytes(crc) != expected {
        return Err(fail(at, "checksum mismatch: the file is corrupt".into()));
    }
    Ok(out)
}
