//! Decodes one RESP2 reply (what the server itself produced) into a value: used where a command
//! runs on behalf of server-side code (`redis.execute` in scripts) instead of a socket client.

#[derive(Debug, Clone, PartialEq)]
pub enum RespValue {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<RespValue>),
}

fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let end = memchr::memchr(b'\r', b)?;
    Some((&b[..end], end + 2))
}

/// Decodes the reply at the start of `b`; returns it and the bytes it used.
pub fn decode(b: &[u8]) -> Option<(RespValue, usize)> {
    let (&t, rest) = b.split_first()?;
    let (text, used) = line(rest)?;
    let used = used + 1;
    let s = || String::from_utf8_lossy(text).into_owned();
    let n = || std::str::from_utf8(text).ok()?.parse::<i64>().ok();
    match t {
        b'+' => Some((RespValue::Simple(s()), used)),
        b'-' => Some((RespValue::Error(s()), used)),
        b':' => Some((RespValue::Int(n()?), used)),
        b'$' => {
            let len = n()?;
            if len < 0 {
                return Some((RespValue::Null, used));
            }
            let len = len as usize;
            let data = b.get(used..used + len)?;
            Some((RespValue::Bulk(data.to_vec()), used + len + 2))
        }
        b'*' => {
            let count = n()?;
            if count < 0 {
                return Some((RespValue::Null, used));
            }
            let mut items = Vec::with_capacity(count.min(1024) as usize);
            let mut pos = used;
            for _ in 0..count {
                let (v, k) = decode(&b[pos..])?;
                items.push(v);
                pos += k;
            }
            Some((RespValue::Array(items), pos))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_nested() {
        let (v, n) = decode(b"*3\r\n$1\r\na\r\n:5\r\n*1\r\n$-1\r\n").expect("a complete reply");
        assert_eq!(v, RespValue::Array(vec![RespValue::Bulk(b"a".to_vec()), RespValue::Int(5), RespValue::Array(vec![RespValue::Null])]));
        assert_eq!(n, 24);
        assert_eq!(decode(b"-ERR x\r\n").expect("a complete reply").0, RespValue::Error("ERR x".into()));
        assert_eq!(decode(b"+OK\r\n").expect("a complete reply").0, RespValue::Simple("OK".into()));
    }
}
