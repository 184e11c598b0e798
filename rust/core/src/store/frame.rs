//! Finds where one RESP2/RESP3 reply ends in a buffer without copying or allocating, so replies
//! from the store can be passed on as they are; and decodes the few replies the node reads itself.
use crate::resp::decode::RespValue;

/// The store sent bytes that are not RESP.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFrame(pub String);

fn line_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let cr = memchr::memchr(b'\r', b.get(i..)?)? + i;
        if b.get(cr + 1) == Some(&b'\n') {
            return Some(cr);
        }
        if cr + 1 >= b.len() {
            return None;
        }
        i = cr + 1;
    }
}

fn number(b: &[u8]) -> Result<i64, BadFrame> {
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| BadFrame(format!("bad length {:?}", String::from_utf8_lossy(b))))
}

/// The length of the complete reply at `b[from..]`, or None when more bytes are needed.
pub fn reply_len(b: &[u8], from: usize) -> Result<Option<usize>, BadFrame> {
    // an explicit stack of element counts keeps deep nesting off the call stack
    let mut pos = from;
    let mut pending: Vec<u64> = Vec::new();
    loop {
        let Some(&t) = b.get(pos) else { return Ok(None) };
        let Some(end) = line_end(b, pos + 1) else { return Ok(None) };
        let header = &b[pos + 1..end];
        pos = end + 2;
        let mut children: u64 = 0;
        match t {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'=' | b'!' => {
                let n = number(header)?;
                if n >= 0 {
                    let need = pos + n as usize + 2;
                    if b.len() < need {
                        return Ok(None);
                    }
                    pos = need;
                }
            }
            b'*' | b'~' | b'>' => children = number(header)?.max(0) as u64,
            b'%' | b'|' => children = (number(header)?.max(0) as u64) * 2,
            _ => return Err(BadFrame(format!("unexpected reply type byte {t:#x}"))),
        }
        if t == b'|' {
            // an attribute map comes before the reply it describes: that reply follows
            pending.push(children + 1);
            continue;
        }
        if children > 0 {
            pending.push(children);
            continue;
        }
        loop {
            match pending.last_mut() {
                None => return Ok(Some(pos - from)),
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    pending.pop();
                }
            }
        }
    }
}

/// The elements of a complete array reply (`*n` or RESP3 `~n`/`>n`), each a complete reply.
pub fn array_elements(b: &[u8]) -> Option<Vec<&[u8]>> {
    if !matches!(b.first(), Some(b'*' | b'~' | b'>')) {
        return None;
    }
    let end = line_end(b, 1)?;
    let n: i64 = std::str::from_utf8(&b[1..end]).ok()?.parse().ok()?;
    if n < 0 {
        return None; // a nil array
    }
    let mut pos = end + 2;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let len = reply_len(b, pos).ok()??;
        out.push(&b[pos..pos + len]);
        pos += len;
    }
    Some(out)
}

/// Decodes one complete RESP2 reply (the node's own requests: topology, values it reads).
pub fn decode(b: &[u8]) -> Option<RespValue> {
    crate::resp::decode::decode(b).map(|(v, _)| v)
}

/// The bulk payload of a complete `$<n>` reply (None for a nil or another type).
pub fn bulk_payload(b: &[u8]) -> Option<&[u8]> {
    if b.first() != Some(&b'$') {
        return None;
    }
    let end = line_end(b, 1)?;
    let n: usize = std::str::from_utf8(&b[1..end]).ok()?.parse().ok()?;
    b.get(end + 2..end + 2 + n)
}

/// The text of an error reply (`-ERR ...` -> `ERR ...`).
pub fn error_text(b: &[u8]) -> Option<&str> {
    if b.first() != Some(&b'-') {
        return None;
    }
    let end = line_end(b, 1)?;
    std::str::from_utf8(&b[1..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_of_complete_and_partial_replies() {
        let r = b"*3\r\n$1\r\na\r\n:5\r\n*1\r\n$-1\r\n+OK\r\n";
        assert_eq!(reply_len(r, 0), Ok(Some(24)));
        assert_eq!(reply_len(r, 24), Ok(Some(5)));
        for cut in 0..24 {
            assert_eq!(reply_len(&r[..cut], 0), Ok(None), "cut at {cut}");
        }
        assert_eq!(reply_len(b"$5\r\na\r\nbc\r\n", 0), Ok(Some(11)));
        assert_eq!(reply_len(b"*0\r\n", 0), Ok(Some(4)));
        assert_eq!(reply_len(b"%1\r\n+a\r\n:1\r\n", 0), Ok(Some(12)));
        assert_eq!(reply_len(b"|1\r\n+k\r\n+v\r\n+OK\r\n", 0), Ok(Some(17)));
        assert_eq!(reply_len(b"_\r\n,1.5\r\n", 0), Ok(Some(3)));
        assert!(reply_len(b"?x\r\n", 0).is_err());
        let deep = "*1\r\n".repeat(100_000) + ":1\r\n";
        assert_eq!(reply_len(deep.as_bytes(), 0), Ok(Some(deep.len())));
    }

    #[test]
    fn payloads() {
        assert_eq!(bulk_payload(b"$3\r\nabc\r\n"), Some(&b"abc"[..]));
        assert_eq!(bulk_payload(b"$-1\r\n"), None);
        assert_eq!(error_text(b"-MOVED 1 h:2\r\n"), Some("MOVED 1 h:2"));
        assert_eq!(array_elements(b"*2\r\n+OK\r\n*1\r\n:1\r\n"), Some(vec![&b"+OK\r\n"[..], &b"*1\r\n:1\r\n"[..]]));
        assert_eq!(array_elements(b"+OK\r\n"), None);
    }
}
