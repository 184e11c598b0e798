//! One pipelined connection to a store node: any thread writes requests in order, and each reply
//! goes to the callback of the request it answers, read either by the host's event loop (the
//! loop polls the socket like its clients', so a reply costs no thread wake-up) or, for blocking
//! calls and before the loop runs, by a reader thread of its own. A broken link fails every
//! request in flight with a clear error and is opened again by the next request.
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::frame::{error_text, reply_len};
use crate::tensor::buffer::SharedBytes;

/// Where a store node listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// `host:port`
    Tcp(String),
    Unix(PathBuf),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(hp) => f.write_str(hp),
            Addr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// Why a request got no reply from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkError(pub String);

impl LinkError {
    /// The error reply a client gets (RESP line, no CRLF).
    pub fn reply_line(&self) -> String {
        format!("TRYAGAIN store link down: {}", self.0)
    }
}

/// Gets the complete raw reply (one RESP value), or why there is none.
pub type ReplyFn = Box<dyn FnOnce(Result<&[u8], LinkError>) + Send>;

/// A part of a request: bytes of its own, or stored bytes written from where they are.
#[derive(Clone)]
pub enum Part {
    Bytes(Vec<u8>),
    Shared { data: SharedBytes, off: usize, len: usize },
}

impl Part {
    fn as_slice(&self) -> &[u8] {
        match self {
            Part::Bytes(v) => v,
            Part::Shared { data, off, len } => &data.as_slice()[*off..*off + *len],
        }
    }
}

/// A request, kept whole so it can be sent again elsewhere (MOVED).
#[derive(Clone, Default)]
pub struct Request {
    pub parts: Vec<Part>,
}

impl Request {
    /// A command from its arguments.
    pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Request {
        let mut r = Request::default();
        r.push_command(args);
        r
    }

    /// Appends a command (several commands make one pipelined request).
    pub fn push_command<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let mut b = Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
        b.push(b'*');
        b.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
        b.extend_from_slice(b"\r\n");
        for a in args {
            let a = a.as_ref();
            b.push(b'$');
            b.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        self.parts.push(Part::Bytes(b));
    }

    /// Appends a command whose last argument is made of `tail` parts (a header and stored data,
    /// written without copying the data).
    pub fn push_command_with_tail<A: AsRef<[u8]>>(&mut self, args: &[A], tail: Vec<Part>) {
        self.push_command_around(args, tail, &[] as &[&[u8]]);
    }

    /// A command `args..., <tail parts as one argument>, after...`.
    pub fn push_command_around<A: AsRef<[u8]>, B: AsRef<[u8]>>(&mut self, args: &[A], tail: Vec<Part>, after: &[B]) {
        let tail_len: usize = tail.iter().map(|p| p.as_slice().len()).sum();
        let mut b = Vec::new();
        let arg = |b: &mut Vec<u8>, a: &[u8]| {
            b.push(b'$');
            b.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        };
        b.push(b'*');
        b.extend_from_slice(itoa::Buffer::new().format(args.len() + 1 + after.len()).as_bytes());
        b.extend_from_slice(b"\r\n");
        for a in args {
            arg(&mut b, a.as_ref());
        }
        b.push(b'$');
        b.extend_from_slice(itoa::Buffer::new().format(tail_len).as_bytes());
        b.extend_from_slice(b"\r\n");
        self.parts.push(Part::Bytes(b));
        self.parts.extend(tail);
        let mut end = b"\r\n".to_vec();
        for a in after {
            arg(&mut end, a.as_ref());
        }
        self.parts.push(Part::Bytes(end));
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.as_slice().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn open(addr: &Addr, timeout: Duration) -> io::Result<Stream> {
        match addr {
            Addr::Tcp(hp) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{hp}: no address"));
                for sa in hp.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&sa, timeout) {
                        Ok(s) => {
                            s.set_nodelay(true)?;
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            Addr::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
        }
    }

    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The callbacks of one open stream, in the order their requests were written.
struct Link {
    pending: Mutex<(VecDeque<ReplyFn>, Option<LinkError>)>,
    /// Requests of this store's connections waiting for replies (shared by all of them).
    in_flight: Arc<AtomicU64>,
}

impl Link {
    /// Queues `f`, or gives it back when the link is already closed.
    fn push(&self, f: ReplyFn) -> Result<(), (ReplyFn, LinkError)> {
        let mut p = self.pending.lock();
        match &p.1 {
            Some(e) => Err((f, e.clone())),
            None => {
                p.0.push_back(f);
                self.in_flight.fetch_add(1, Relaxed);
                Ok(())
            }
        }
    }

    fn pop(&self) -> Option<ReplyFn> {
        let f = self.pending.lock().0.pop_front();
        if f.is_some() {
            self.in_flight.fetch_sub(1, Relaxed);
        }
        f
    }

    /// Closes the link: every request in flight fails with `why`.
    fn close(&self, why: LinkError) {
        let waiting = {
            let mut p = self.pending.lock();
            if p.1.is_none() {
                p.1 = Some(why.clone());
            }
            std::mem::take(&mut p.0)
        };
        self.in_flight.fetch_sub(waiting.len() as u64, Relaxed);
        for f in waiting {
            f(Err(why.clone()));
        }
    }
}

struct Open {
    stream: Stream,
    link: Arc<Link>,
}

/// How a connection introduces itself after connecting (AUTH, HELLO 3, a client name).
#[derive(Clone, Default)]
pub struct Handshake {
    pub user: Option<String>,
    pub password: Option<String>,
    pub resp3: bool,
    pub name: String,
}

/// The host's event loop, which can watch a connection's socket and read its replies.
pub trait LoopHost: Send + Sync {
    /// Have the loop call `reader.pump()` whenever `reader`'s socket is readable (from any
    /// thread: the host registers it on its next pass), until `pump` says the link closed.
    fn watch(&self, reader: Arc<LoopReader>);
}

/// A pipelined connection to one store node (opened on first use).
pub struct Conn {
    pub addr: Addr,
    handshake: Handshake,
    /// Who reads replies: the host's loop, or a thread of this connection's own.
    host: Option<Arc<dyn LoopHost>>,
    in_flight: Arc<AtomicU64>,
    writer: Mutex<Option<Open>>,
    /// When the last connect attempt failed (to not hammer a dead node).
    failed_at: Mutex<Option<(Instant, LinkError)>>,
    /// A reconnect runs in the background.
    reconnecting: AtomicBool,
    pub requests: AtomicU64,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, another is tried (in the background) at most this often.
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// A store that takes no bytes for this long is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

impl Conn {
    pub fn new(addr: Addr, handshake: Handshake, host: Option<Arc<dyn LoopHost>>, in_flight: Arc<AtomicU64>) -> Arc<Conn> {
        Arc::new(Conn { addr, handshake, host, in_flight, writer: Mutex::new(None), failed_at: Mutex::new(None), reconnecting: AtomicBool::new(false), requests: AtomicU64::new(0) })
    }

    /// Whether the link broke or could not be opened, and has not been opened since.
    pub fn is_down(&self) -> bool {
        match self.writer.lock().as_ref() {
            Some(o) => o.link.pending.lock().1.is_some(),
            None => self.failed_at.lock().is_some(),
        }
    }

    /// Sends `req` (one or more commands) and calls `on_reply` once per command, in order.
    /// `on_reply` has as many entries as `req` has commands.
    pub fn send(self: &Arc<Self>, req: &Request, on_reply: Vec<ReplyFn>) {
        self.requests.fetch_add(on_reply.len() as u64, Relaxed);
        let mut w = self.writer.lock();
        if w.as_ref().is_some_and(|o| o.link.pending.lock().1.is_some()) {
            *w = None;
        }
        if w.is_none() {
            match self.open() {
                Ok(o) => *w = Some(o),
                Err(e) => {
                    drop(w);
                    for f in on_reply {
                        f(Err(e.clone()));
                    }
                    return;
                }
            }
        }
        let Some(open) = w.as_mut() else { return };
        let mut refused: Vec<(ReplyFn, LinkError)> = Vec::new();
        for f in on_reply {
            if let Err(back) = open.link.push(f) {
                refused.push(back);
            }
        }
        if refused.is_empty() {
            if let Err(e) = write_all_parts(&mut open.stream, &req.parts) {
                let why = LinkError(format!("{}: {e}", self.addr));
                open.stream.shutdown();
                let link = open.link.clone();
                *w = None;
                drop(w);
                link.close(why);
            }
        } else {
            drop(w);
        }
        for (f, e) in refused {
            f(Err(e));
        }
    }

    /// Sends one command and waits for its reply (worker threads only, never the event loop).
    pub fn call(self: &Arc<Self>, req: &Request) -> Result<Vec<u8>, LinkError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send(req, vec![Box::new(move |r: Result<&[u8], LinkError>| {
            let _ = tx.send(r.map(<[u8]>::to_vec));
        })]);
        rx.recv().unwrap_or_else(|_| Err(LinkError("no reply".into())))
    }

    /// Opens the link now when it never failed; after a failure, reconnects in the background
    /// (at most every RETRY_AFTER) and fails this request at once, so a store that is down or
    /// unreachable never holds up the caller (the event loop, often) for a connect timeout.
    fn open(self: &Arc<Self>) -> Result<Open, LinkError> {
        let failed = self.failed_at.lock().clone();
        let Some((at, e)) = failed else {
            let result = self.try_open();
            *self.failed_at.lock() = result.as_ref().err().map(|e| (Instant::now(), e.clone()));
            return result;
        };
        if at.elapsed() >= RETRY_AFTER && !self.reconnecting.swap(true, Relaxed) {
            let me = self.clone();
            let spawned = std::thread::Builder::new().name("store-reconnect".into()).spawn(move || {
                let result = me.try_open();
                *me.failed_at.lock() = result.as_ref().err().map(|e| (Instant::now(), e.clone()));
                if let Ok(open) = result {
                    let mut w = me.writer.lock();
                    if w.as_ref().is_none_or(|o| o.link.pending.lock().1.is_some()) {
                        *w = Some(open);
                    }
                }
                me.reconnecting.store(false, Relaxed);
            });
            if spawned.is_err() {
                self.reconnecting.store(false, Relaxed);
            }
        }
        Err(e)
    }

    fn try_open(self: &Arc<Self>) -> Result<Open, LinkError> {
        let err = |e: io::Error| LinkError(format!("{}: {e}", self.addr));
        let mut stream = Stream::open(&self.addr, CONNECT_TIMEOUT).map_err(err)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(err)?;
        // the handshake runs before any request: its replies are read here, synchronously
        let mut hello = Request::default();
        if self.handshake.resp3 {
            match (&self.handshake.user, &self.handshake.password) {
                (u, Some(p)) => hello.push_command(&[b"HELLO".as_slice(), b"3", b"AUTH", u.as_deref().unwrap_or("default").as_bytes(), p.as_bytes()]),
                _ => hello.push_command(&[b"HELLO".as_slice(), b"3"]),
            }
        } else if let Some(p) = &self.handshake.password {
            match &self.handshake.user {
                Some(u) => hello.push_command(&[b"AUTH".as_slice(), u.as_bytes(), p.as_bytes()]),
                None => hello.push_command(&[b"AUTH".as_slice(), p.as_bytes()]),
            }
        }
        if !self.handshake.name.is_empty() {
            hello.push_command(&[b"CLIENT".as_slice(), b"SETNAME", self.handshake.name.as_bytes()]);
        }
        let expected = hello.parts.len();
        if expected > 0 {
            write_all_parts(&mut stream, &hello.parts).map_err(err)?;
            let mut buf = Vec::new();
            let mut pos = 0;
            for _ in 0..expected {
                let n = read_reply(&mut stream, &mut buf, pos).map_err(err)?;
                if let Some(e) = error_text(&buf[pos..pos + n]) {
                    return Err(LinkError(format!("{}: {e}", self.addr)));
                }
                pos += n;
            }
        }
        let link = Arc::new(Link { pending: Mutex::new((VecDeque::new(), None)), in_flight: self.in_flight.clone() });
        let reader = stream.try_clone().map_err(err)?;
        let (l, addr) = (link.clone(), self.addr.to_string());
        match &self.host {
            Some(host) => {
                // the two descriptors share the open file: both are non-blocking from here on
                reader.set_nonblocking(true).map_err(err)?;
                host.watch(Arc::new(LoopReader { link: l, addr, state: Mutex::new(ReadState::new(reader)) }));
            }
            None => {
                std::thread::Builder::new().name(format!("store-{addr}")).spawn(move || read_replies(reader, l, addr)).map_err(err)?;
            }
        }
        Ok(Open { stream, link })
    }
}

impl Drop for Conn {
    /// Closes the stream, so its reader thread sees the end and stops.
    fn drop(&mut self) {
        if let Some(open) = self.writer.get_mut().take() {
            open.stream.shutdown();
        }
    }
}

/// Writes every part, vectored.
fn write_all_parts(stream: &mut Stream, parts: &[Part]) -> io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts[index..]
            .iter()
            .take(64)
            .enumerate()
            .map(|(i, p)| IoSlice::new(if i == 0 { &p.as_slice()[offset..] } else { p.as_slice() }))
            .collect();
        let mut n = match stream.write_vectored(&slices) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(stream.fd())?;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "store closed the connection"));
        }
        while n > 0 && index < parts.len() {
            let left = parts[index].as_slice().len() - offset;
            if n >= left {
                n -= left;
                index += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
        while index < parts.len() && parts[index].as_slice().len() == offset {
            index += 1;
            offset = 0;
        }
    }
    Ok(())
}

/// Waits until a non-blocking socket takes bytes again (a loop-read connection whose store is
/// slow to read a big value), at most WRITE_TIMEOUT.
fn wait_writable(fd: RawFd) -> io::Result<()> {
    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call
    let r = unsafe { libc::poll(&mut p, 1, WRITE_TIMEOUT.as_millis() as libc::c_int) };
    match r {
        1.. => Ok(()),
        0 => Err(io::Error::new(io::ErrorKind::TimedOut, "the store took no bytes for 30 s")),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// Reads until one complete reply starts at `buf[pos..]`; returns its length.
fn read_reply(stream: &mut Stream, buf: &mut Vec<u8>, pos: usize) -> io::Result<usize> {
    loop {
        match reply_len(buf, pos) {
            Ok(Some(n)) => return Ok(n),
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.0)),
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the store closed the connection"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A stream's read buffer: `buf[..filled]` holds what was read, `start` where the next reply
/// begins; the rest of `buf` is zeroed space for the next read, so reads go straight into it (a
/// big value arrives in a few reads, without copies).
struct ReadState {
    stream: Stream,
    buf: Vec<u8>,
    filled: usize,
    start: usize,
}

impl ReadState {
    fn new(stream: Stream) -> ReadState {
        ReadState { stream, buf: vec![0; 64 * 1024], filled: 0, start: 0 }
    }

    /// Hands every complete reply to its callback; Err when the data is not RESP.
    fn dispatch(&mut self, link: &Link, addr: &str) -> Result<(), LinkError> {
        loop {
            match reply_len(&self.buf[..self.filled], self.start) {
                Ok(Some(n)) => {
                    let Some(f) = link.pop() else { return Ok(()) };
                    f(Ok(&self.buf[self.start..self.start + n]));
                    self.start += n;
                }
                Ok(None) => break,
                Err(e) => return Err(LinkError(format!("{addr}: {}", e.0))),
            }
        }
        if self.start == self.filled {
            self.filled = 0;
            self.start = 0;
            if self.buf.len() > 4 << 20 {
                self.buf = vec![0; 64 * 1024]; // grown for one big reply, now consumed
            }
        } else if self.start > 0 && (self.start > self.buf.len() / 2 || self.buf.len() - self.filled < 16384) {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.filled < 16384 {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        Ok(())
    }

    /// One read into the free space: Ok(false) when there was nothing to read (non-blocking).
    fn read(&mut self, addr: &str) -> Result<bool, LinkError> {
        match self.stream.read(&mut self.buf[self.filled..]) {
            Ok(0) => Err(LinkError(format!("{addr}: the store closed the connection"))),
            Ok(n) => {
                self.filled += n;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(LinkError(format!("{addr}: {e}"))),
        }
    }
}

/// A connection read by the host's event loop.
pub struct LoopReader {
    link: Arc<Link>,
    addr: String,
    state: Mutex<ReadState>,
}

impl LoopReader {
    /// The socket to watch.
    pub fn fd(&self) -> RawFd {
        self.state.lock().stream.fd()
    }

    /// Reads what the socket holds and hands out the complete replies. false once the link is
    /// closed: the host stops watching and drops the reader (which closes the socket).
    pub fn pump(&self) -> bool {
        let mut st = self.state.lock();
        loop {
            let step = match st.read(&self.addr) {
                Ok(true) => st.dispatch(&self.link, &self.addr).map(|()| true),
                other => other,
            };
            match step {
                Ok(true) => continue,
                Ok(false) => return true,
                Err(why) => {
                    st.stream.shutdown();
                    drop(st);
                    self.link.close(why);
                    return false;
                }
            }
        }
    }
}

/// The reader thread of one stream: replies go to their callbacks until the stream ends.
fn read_replies(stream: Stream, link: Arc<Link>, addr: String) {
    let mut st = ReadState::new(stream);
    let why = loop {
        if let Err(e) = st.dispatch(&link, &addr) {
            st.stream.shutdown();
            break e;
        }
        if let Err(e) = st.read(&addr) {
            break e;
        }
    };
    link.close(why);
}
