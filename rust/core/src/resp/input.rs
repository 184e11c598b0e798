//! A connection's input buffer and streaming RESP request parser. It owns the bytes the socket
//! reads into, parses multibulk and inline commands across any split of the stream, and reads a
//! large bulk argument straight into its own aligned buffer (which a TENSORSET BLOB then keeps).
use super::inline::split_args;
use crate::tensor::buffer::{AlignedBuf, FillingBuf};

/// A bulk at least this big, not yet fully received, is read into its own buffer.
pub const BIG_BULK: usize = 32 * 1024;
/// Longest inline command / count line, as in Redis (PROTO_INLINE_MAX_SIZE).
const MAX_INLINE: usize = 64 * 1024;
/// Free space offered to the socket for each read in normal mode.
const READ_CHUNK: usize = 16 * 1024;
/// Largest read window offered for a whole command after a command with a big bulk.
const MAX_READ_HINT: usize = 1024 * 1024;
/// Longest command header (the bytes before its big bulk) read into a prefetch buffer.
const MAX_LEAD: usize = 4096;
/// Largest bulk a prefetch buffer is allocated for (larger ones take the header read first).
const MAX_PREFETCH: usize = 64 << 20;
/// Largest multibulk count accepted (Redis: INT_MAX).
const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// Unauthenticated clients may not send more than this (Redis 7 does the same).
const UNAUTH_MULTIBULK: i64 = 10;
const UNAUTH_BULK: i64 = 16384;

/// A protocol violation; the connection gets `-ERR Protocol error: <msg>` and is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoError(pub String);

/// One argument of the command being parsed.
#[derive(Debug)]
pub enum Arg {
    /// `len` bytes at `off`, relative to the start of the command in the buffer.
    Range { off: usize, len: usize },
    /// A large bulk received into its own buffer.
    Big(AlignedBuf),
    /// An argument of an inline command (unescaped, so it cannot point into the buffer).
    Inline(Vec<u8>),
    /// A Big argument that a command took ownership of.
    Taken,
}

/// The arguments of one complete command.
pub struct Args<'a> {
    base: &'a [u8],
    items: &'a mut [Arg],
}

impl<'a> Args<'a> {
    pub fn new(base: &'a [u8], items: &'a mut [Arg]) -> Self {
        Args { base, items }
    }

    /// Arguments `from..to` as their own argument list (a DAG op's words).
    pub fn sub(&mut self, from: usize, to: usize) -> Args<'_> {
        Args { base: self.base, items: &mut self.items[from..to] }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Argument `i` (empty if out of range or taken).
    pub fn get(&self, i: usize) -> &[u8] {
        match self.items.get(i) {
            Some(Arg::Range { off, len }) => &self.base[*off..*off + *len],
            Some(Arg::Big(b)) => b.as_slice(),
            Some(Arg::Inline(v)) => v,
            Some(Arg::Taken) | None => &[],
        }
    }

    /// Takes argument `i` as an owned aligned buffer without copying when it was received as one.
    pub fn take_owned(&mut self, i: usize) -> Option<AlignedBuf> {
        match self.items.get_mut(i) {
            Some(slot @ Arg::Big(_)) => match std::mem::replace(slot, Arg::Taken) {
                Arg::Big(b) => Some(b),
                _ => None,
            },
            _ => None,
        }
    }

    /// All arguments as slices (allocates: for rare paths such as MULTI queueing and COMMAND GETKEYS).
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        (0..self.len()).map(|i| self.get(i).to_vec()).collect()
    }
}

enum State {
    /// Between commands.
    Idle,
    /// Inside a multibulk: `left` bulks still to read.
    Multi { left: usize },
    /// Reading a large bulk into its own buffer; `left` bulks follow it.
    BigBulk { buf: FillingBuf, left: usize },
    /// The two bytes after a big bulk (CRLF) still to skip; then `left` bulks.
    SkipCrlf { skip: usize, left: usize },
}

/// The input buffer plus parser state of one connection.
pub struct Input {
    buf: Vec<u8>,
    /// Start of the command being parsed (arguments' offsets are relative to it).
    start: usize,
    /// Parse position.
    pos: usize,
    /// End of received data.
    end: usize,
    state: State,
    args: Vec<Arg>,
    max_bulk: usize,
    /// Unauthenticated clients get the stricter limits.
    pub authenticated: bool,
    /// Bytes buffered by completed-but-unexecuted and partial commands, for CLIENT LIST `qbuf`.
    big_pending: usize,
    /// Refuse inline commands (the append-only log holds only multibulks; anything else is damage).
    pub multibulk_only: bool,
    /// The command being parsed: header length before its last big bulk, and that bulk's length.
    cmd_big: Option<(usize, usize)>,
    /// The same for the last complete command: the next one is expected to look alike.
    last_big: Option<(usize, usize)>,
    /// A whole command being read into a buffer laid out for its big bulk (see `read_window`).
    prefetch: Option<Prefetch>,
}

/// A command read ahead into a buffer where its big bulk, `lead` bytes in, lands 64-byte
/// aligned: when the header is what the last big command's was, the bulk becomes the tensor's
/// buffer without a copy (redis-server gets the same effect by reading a big argument into a
/// buffer of its own; we do it in one read, header included).
struct Prefetch {
    buf: FillingBuf,
    lead: usize,
    /// Bytes received, from the start of the header.
    got: usize,
}

/// What `header_layout` found in a command header that ends where a big bulk's data starts.
struct HeaderLayout {
    /// Bulks in the whole command.
    count: usize,
    /// The complete arguments before the big bulk: offset and length from the header's start.
    args: Vec<(usize, usize)>,
    /// The big bulk's length.
    big_len: usize,
}

impl Input {
    pub fn new(max_bulk: usize) -> Self {
        Input {
            buf: vec![0; READ_CHUNK],
            start: 0,
            pos: 0,
            end: 0,
            state: State::Idle,
            args: Vec::new(),
            max_bulk,
            authenticated: true,
            big_pending: 0,
            multibulk_only: false,
            cmd_big: None,
            last_big: None,
            prefetch: None,
        }
    }

    pub fn set_max_bulk(&mut self, n: usize) {
        self.max_bulk = n;
    }

    /// Bytes received but not yet consumed by a command.
    pub fn pending_bytes(&self) -> usize {
        self.end - self.start + self.big_pending
    }

    /// Capacity of the input buffer (CLIENT LIST `qbuf`-style accounting).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Where the next socket read should land: a pointer and the number of writable bytes.
    pub fn read_window(&mut self) -> (*mut u8, usize) {
        if let State::BigBulk { buf, .. } = &mut self.state {
            return buf.window();
        }
        if self.prefetch.is_none() {
            self.start_prefetch();
        }
        if let Some(pf) = &mut self.prefetch {
            return pf.buf.lead_window(pf.lead, pf.got);
        }
        self.make_room(self.read_hint());
        let len = self.buf.len() - self.end;
        // SAFETY: end <= buf.len().
        (unsafe { self.buf.as_mut_ptr().add(self.end) }, len)
    }

    /// Records that the socket wrote `n` bytes into the last `read_window`.
    pub fn commit(&mut self, n: usize) {
        if let State::BigBulk { buf, .. } = &mut self.state {
            // SAFETY: the reader wrote n bytes into buf.window().
            unsafe { buf.advance(n) };
            self.big_pending += n;
            return;
        }
        if let Some(mut pf) = self.prefetch.take() {
            pf.got += n;
            self.finish_prefetch(pf);
            return;
        }
        self.end = (self.end + n).min(self.buf.len());
    }

    /// How many bytes a read into the normal buffer should be able to take. After a command
    /// carrying a big bulk that was not prefetched (see `start_prefetch`), it is that command's
    /// size, so the next such command, usually already complete in the socket, arrives in one
    /// read instead of a header read plus a read of the rest.
    fn read_hint(&self) -> usize {
        match self.last_big {
            Some((lead, len)) => (lead + len + 2 + 512).clamp(READ_CHUNK, MAX_READ_HINT),
            None => READ_CHUNK,
        }
    }

    /// Between commands, with nothing buffered, after a command with a big bulk: the next read
    /// goes into a buffer laid out for a command of the same shape.
    fn start_prefetch(&mut self) {
        let Some((lead, len)) = self.last_big else { return };
        let idle = matches!(self.state, State::Idle) && self.start == self.end && self.pos == self.end;
        if !idle || !self.authenticated || lead > MAX_LEAD || len < BIG_BULK || len > self.max_bulk.min(MAX_PREFETCH) {
            return;
        }
        if let Ok(buf) = FillingBuf::with_lead(lead, len, READ_CHUNK) {
            self.prefetch = Some(Prefetch { buf, lead, got: 0 });
        }
    }

    /// After a read into the prefetch buffer: if it holds a header like the last big command's,
    /// the parser continues inside the big bulk (whose bytes are already in place); otherwise the
    /// bytes go to the normal buffer, as if read there.
    fn finish_prefetch(&mut self, mut pf: Prefetch) {
        // SAFETY: the reader wrote pf.got bytes from the start of lead_window(lead, 0).
        let bytes = unsafe { pf.buf.lead_bytes(pf.lead, pf.got) };
        let layout = if pf.got >= pf.lead { header_layout(&bytes[..pf.lead], self.max_bulk) } else { None };
        match layout {
            Some(h) if h.big_len == pf.buf.len() && h.args.len() < h.count => {
                self.make_room(pf.lead);
                let at = self.end;
                self.buf[at..at + pf.lead].copy_from_slice(&bytes[..pf.lead]);
                self.start = at;
                self.end = at + pf.lead;
                self.pos = self.end;
                self.args.clear();
                self.args.extend(h.args.iter().map(|&(off, len)| Arg::Range { off, len }));
                let data = pf.got - pf.lead;
                // SAFETY: the bytes after the header were read into the data part.
                unsafe { pf.buf.assume_filled(data) };
                self.big_pending = data;
                self.cmd_big = Some((pf.lead, h.big_len));
                self.state = State::BigBulk { buf: pf.buf, left: h.count - h.args.len() - 1 };
            }
            _ => {
                self.make_room(bytes.len());
                let at = self.end;
                self.buf[at..at + bytes.len()].copy_from_slice(bytes);
                self.end = at + bytes.len();
            }
        }
    }

    /// Copies bytes in (tests, and callers that do not read into `read_window`).
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (p, room) = self.read_window();
            let n = room.min(data.len());
            // SAFETY: p is valid for `room` bytes and does not alias `data`.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, n) };
            self.commit(n);
            data = &data[n..];
            // a big bulk that just completed must be folded into the command before more bytes land
            self.settle_big();
        }
    }

    /// Moves unconsumed bytes to the front and makes sure `want` bytes are free after `end`.
    fn make_room(&mut self, want: usize) {
        if self.start > 0 && (self.start == self.end || self.buf.len() - self.end < want) {
            self.buf.copy_within(self.start..self.end, 0);
            self.pos -= self.start;
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < want {
            let new_len = (self.end + want).max(self.buf.len() * 2);
            self.buf.resize(new_len, 0);
        } else if self.start == self.end && self.buf.len() > (16 * READ_CHUNK).max(2 * self.read_hint()) {
            // an idle connection gives back a buffer that once held a large command
            self.buf = vec![0; READ_CHUNK];
            self.start = 0;
            self.pos = 0;
            self.end = 0;
        }
    }

    /// If a big bulk is complete, turns it into an argument; bytes a read put past its end (the
    /// CRLF and whatever follows) move to the normal buffer.
    fn settle_big(&mut self) {
        match &self.state {
            State::BigBulk { buf, .. } if buf.remaining() == 0 => {}
            _ => return,
        }
        if let State::BigBulk { buf, left } = std::mem::replace(&mut self.state, State::Idle) {
            self.big_pending = 0;
            let extra = buf.overflow();
            if !extra.is_empty() {
                self.make_room(extra.len());
                self.buf[self.end..self.end + extra.len()].copy_from_slice(extra);
                self.end += extra.len();
            }
            match buf.finish() {
                Ok(b) => self.args.push(Arg::Big(b)),
                Err(buf) => {
                    // cannot happen (remaining() was 0); keep waiting rather than lose the bytes
                    self.state = State::BigBulk { buf, left };
                    return;
                }
            }
            self.state = State::SkipCrlf { skip: 2, left };
        }
    }

    fn find_crlf(&self, from: usize) -> Option<usize> {
        memchr::memchr(b'\r', &self.buf[from..self.end]).map(|i| from + i)
    }

    fn parse_count(line: &[u8]) -> Option<i64> {
        if line.is_empty() || line.len() > 20 {
            return None;
        }
        let (neg, digits) = match line[0] {
            b'-' => (true, &line[1..]),
            _ => (false, line),
        };
        if digits.is_empty() {
            return None;
        }
        let mut v: i64 = 0;
        for &c in digits {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
        }
        Some(if neg { -v } else { v })
    }

    /// Parses the next complete command, if the buffer holds one. After an error the connection
    /// must be closed (the parser state is not meaningful any more).
    pub fn next_command(&mut self) -> Result<Option<Args<'_>>, ProtoError> {
        self.settle_big();
        loop {
            match &mut self.state {
                State::BigBulk { .. } => return Ok(None),
                State::SkipCrlf { skip, left } => {
                    let n = (*skip).min(self.end - self.pos);
                    self.pos += n;
                    *skip -= n;
                    if *skip > 0 {
                        return Ok(None);
                    }
                    let left = *left;
                    self.state = State::Multi { left };
                }
                State::Idle => {
                    // a new command starts here
                    self.start = self.pos;
                    self.args.clear();
                    if self.pos >= self.end {
                        return Ok(None);
                    }
                    if self.buf[self.pos] == b'*' {
                        let Some(cr) = self.find_crlf(self.pos) else {
                            if self.end - self.pos > MAX_INLINE {
                                return Err(ProtoError("too big mbulk count string".into()));
                            }
                            return Ok(None);
                        };
                        if cr + 1 >= self.end {
                            return Ok(None);
                        }
                        let n = Self::parse_count(&self.buf[self.pos + 1..cr]);
                        let n = match n {
                            Some(n) if n <= MAX_MULTIBULK => n,
                            _ => return Err(ProtoError("invalid multibulk length".into())),
                        };
                        if !self.authenticated && n > UNAUTH_MULTIBULK {
                            return Err(ProtoError("unauthenticated multibulk length".into()));
                        }
                        self.pos = cr + 2;
                        if n <= 0 {
                            continue; // Redis ignores empty multibulks
                        }
                        self.args.reserve((n as usize).min(1024));
                        self.state = State::Multi { left: n as usize };
                    } else if self.multibulk_only {
                        return Err(ProtoError(format!("expected '*', got '{}'", self.buf[self.pos].escape_ascii())));
                    } else {
                        let Some(nl) = memchr::memchr(b'\n', &self.buf[self.pos..self.end]) else {
                            if self.end - self.pos > MAX_INLINE {
                                return Err(ProtoError("too big inline request".into()));
                            }
                            return Ok(None);
                        };
                        let mut line = &self.buf[self.pos..self.pos + nl];
                        if line.last() == Some(&b'\r') {
                            line = &line[..line.len() - 1];
                        }
                        let words = split_args(line)
                            .map_err(|_| ProtoError("unbalanced quotes in request".into()))?;
                        self.pos += nl + 1;
                        if words.is_empty() {
                            continue;
                        }
                        self.args.extend(words.into_iter().map(Arg::Inline));
                        return Ok(Some(self.finish_command()));
                    }
                }
                State::Multi { left } => {
                    let left = *left;
                    if left == 0 {
                        self.state = State::Idle;
                        return Ok(Some(self.finish_command()));
                    }
                    if self.pos >= self.end {
                        return Ok(None);
                    }
                    if self.buf[self.pos] != b'$' {
                        let c = self.buf[self.pos] as char;
                        return Err(ProtoError(format!("expected '$', got '{c}'")));
                    }
                    let Some(cr) = self.find_crlf(self.pos) else {
                        if self.end - self.pos > MAX_INLINE {
                            return Err(ProtoError("too big bulk count string".into()));
                        }
                        return Ok(None);
                    };
                    if cr + 1 >= self.end {
                        return Ok(None);
                    }
                    let len = match Self::parse_count(&self.buf[self.pos + 1..cr]) {
                        Some(n) if n >= 0 && (n as u64) <= self.max_bulk as u64 => n as usize,
                        _ => return Err(ProtoError("invalid bulk length".into())),
                    };
                    if !self.authenticated && len as i64 > UNAUTH_BULK {
                        return Err(ProtoError("unauthenticated bulk length".into()));
                    }
                    let data = cr + 2;
                    if len >= BIG_BULK {
                        self.cmd_big = Some((data - self.start, len));
                    }
                    let avail = self.end - data;
                    if avail >= len + 2 {
                        self.args.push(Arg::Range { off: data - self.start, len });
                        self.pos = data + len + 2;
                        self.state = State::Multi { left: left - 1 };
                    } else if len >= BIG_BULK && avail < len {
                        // read the rest of this bulk straight into its own buffer
                        let mut big = FillingBuf::with_slack(len, READ_CHUNK)
                            .map_err(|_| ProtoError("invalid bulk length".into()))?;
                        let took = big.extend_from_slice(&self.buf[data..self.end]);
                        let left = left - 1;
                        self.pos = data + took; // == end: everything received so far belongs to the bulk
                        self.big_pending = took;
                        self.state = State::BigBulk { buf: big, left };
                        self.settle_big();
                    } else {
                        // wait for the whole bulk; make sure it will fit
                        let need = data + len + 2 - self.start;
                        if self.buf.len() - self.start < need {
                            let have = self.end - self.start;
                            self.make_room(need - have);
                        }
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn finish_command(&mut self) -> Args<'_> {
        self.last_big = self.cmd_big.take();
        let base_start = self.start;
        self.start = self.pos;
        Args::new(&self.buf[base_start..], &mut self.args)
    }
}

/// Reads `h` as the start of a multibulk command that ends exactly where a bulk's data starts:
/// `*<count>`, complete bulks, then `$<len>` of the bulk whose data follows. None if it is not
/// exactly that (the bytes are then parsed the normal way).
fn header_layout(h: &[u8], max_bulk: usize) -> Option<HeaderLayout> {
    let line_end = |from: usize| memchr::memchr(b'\r', h.get(from..)?).map(|i| from + i).filter(|&cr| h.get(cr + 1) == Some(&b'\n'));
    if h.first() != Some(&b'*') {
        return None;
    }
    let cr = line_end(1)?;
    let count = Input::parse_count(&h[1..cr]).filter(|&n| n > 0 && n <= MAX_MULTIBULK)? as usize;
    let mut p = cr + 2;
    let mut args = Vec::new();
    while args.len() < count {
        if h.get(p) != Some(&b'$') {
            return None;
        }
        let cr = line_end(p + 1)?;
        let len = Input::parse_count(&h[p + 1..cr]).filter(|&n| n >= 0 && n as u64 <= max_bulk as u64)? as usize;
        let data = cr + 2;
        if data == h.len() {
            return Some(HeaderLayout { count, args, big_len: len });
        }
        if data + len + 2 > h.len() {
            return None;
        }
        args.push((data, len));
        p = data + len + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_commands(inp: &mut Input) -> Result<Vec<Vec<Vec<u8>>>, ProtoError> {
        let mut out = Vec::new();
        while let Some(a) = inp.next_command()? {
            out.push(a.to_vecs());
        }
        Ok(out)
    }

    fn cmd(words: &[&[u8]]) -> Vec<u8> {
        let mut v = format!("*{}\r\n", words.len()).into_bytes();
        for w in words {
            v.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
            v.extend_from_slice(w);
            v.extend_from_slice(b"\r\n");
        }
        v
    }

    #[test]
    fn multibulk_and_inline() {
        let mut inp = Input::new(512 << 20);
        inp.push(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n\r\n*0\r\n");
        let got = all_commands(&mut inp).expect("a valid stream");
        assert_eq!(got, vec![vec![b"ECHO".to_vec(), b"hi".to_vec()], vec![b"PING".to_vec()]]);
        assert_eq!(inp.pending_bytes(), 0);
    }

    #[test]
    fn partial_then_rest() {
        let mut inp = Input::new(512 << 20);
        let c = cmd(&[b"SET", b"k", b"v"]);
        inp.push(&c[..7]);
        assert!(all_commands(&mut inp).expect("a valid stream").is_empty());
        inp.push(&c[7..]);
        assert_eq!(all_commands(&mut inp).expect("a valid stream").len(), 1);
    }

    #[test]
    fn read_window_grows_after_a_big_command_and_shrinks_after_a_small_one() {
        let mut inp = Input::new(512 << 20);
        assert_eq!(inp.read_window().1, READ_CHUNK);
        let payload = vec![1u8; 256 * 1024];
        let big = cmd(&[b"SET", b"k", &payload]);
        inp.push(&big);
        assert_eq!(all_commands(&mut inp).expect("a valid stream").len(), 1);
        // the next command of that size fits in one read
        assert!(inp.read_window().1 >= big.len());
        inp.push(&big);
        let got = all_commands(&mut inp).expect("a valid stream");
        assert_eq!(got, vec![vec![b"SET".to_vec(), b"k".to_vec(), payload.clone()]]);
        inp.push(&cmd(&[b"PING"]));
        assert_eq!(all_commands(&mut inp).expect("a valid stream").len(), 1);
        // an idle connection after small commands goes back to the small buffer
        assert_eq!(inp.read_window().1, READ_CHUNK);
        assert_eq!(inp.capacity(), READ_CHUNK);
    }

    #[test]
    fn big_bulk_goes_to_own_buffer() {
        let mut inp = Input::new(512 << 20);
        let payload = vec![7u8; BIG_BULK * 3 + 5];
        let c = cmd(&[b"AI.TENSORSET", b"t", b"UINT8", b"98309", b"BLOB", &payload]);
        let c2 = cmd(&[b"PING"]);
        let mut all = c.clone();
        all.extend_from_slice(&c2);
        // feed in small pieces
        let mut cmds = Vec::new();
        for chunk in all.chunks(1000) {
            inp.push(chunk);
            while let Some(mut a) = inp.next_command().expect("a valid stream") {
                if a.len() == 6 {
                    let owned = a.take_owned(5).expect("big arg is owned");
                    assert_eq!(owned.as_slice(), &payload[..]);
                    assert_eq!(a.get(5), b"");
                }
                cmds.push(a.get(0).to_vec());
            }
        }
        assert_eq!(cmds, vec![b"AI.TENSORSET".to_vec(), b"PING".to_vec()]);
    }

    #[test]
    fn protocol_errors() {
        for (bytes, msg) in [
            (&b"*x\r\n"[..], "invalid multibulk length"),
            (b"*1\r\n+OK\r\n", "expected '$', got '+'"),
            (b"*1\r\n$-5\r\n", "invalid bulk length"),
            (b"*1\r\n$600000000\r\n", "invalid bulk length"),
            (b"SET \"a\r\n", "unbalanced quotes in request"),
        ] {
            let mut inp = Input::new(512 << 20);
            inp.push(bytes);
            assert_eq!(all_commands(&mut inp), Err(ProtoError(msg.into())), "{bytes:?}");
        }
    }

    #[test]
    fn too_big_inline() {
        let mut inp = Input::new(512 << 20);
        inp.push(&vec![b'a'; MAX_INLINE + 10]);
        assert_eq!(all_commands(&mut inp), Err(ProtoError("too big inline request".into())));
    }

    #[test]
    fn multibulk_only_refuses_inline() {
        let mut inp = Input::new(512 << 20);
        inp.multibulk_only = true;
        inp.push(b"*1\r\n$4\r\nPING\r\n#3\r\n");
        assert_eq!(all_commands(&mut inp), Err(ProtoError("expected '*', got '#'".into())));
    }

    #[test]
    fn unauthenticated_limits() {
        let mut inp = Input::new(512 << 20);
        inp.authenticated = false;
        inp.push(b"*11\r\n");
        assert_eq!(all_commands(&mut inp), Err(ProtoError("unauthenticated multibulk length".into())));
    }
}
