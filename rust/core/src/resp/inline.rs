//! Splits an inline command line into arguments the way Redis's `sdssplitargs` does (quotes, escapes).

/// Why an inline line could not be split.
#[derive(Debug, PartialEq, Eq)]
pub struct UnbalancedQuotes;

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Separators between inline arguments (C's isspace, plus NUL, which ends a C string).
fn is_sep(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0 | 0x0b | 0x0c)
}

/// Splits `line` (without its line terminator) into arguments.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, UnbalancedQuotes> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_sep(line[i]) {
            i += 1;
        }
        if i >= n {
            return Ok(out);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return Err(UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(line[i + 2]), hex_val(line[i + 3])) {
                        cur.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < n {
                    let e = match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    };
                    cur.push(e);
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    // a closing quote must be followed by a space or the end
                    if i + 1 < n && !is_sep(line[i + 1]) {
                        return Err(UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else if in_sq {
                if i >= n {
                    return Err(UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if i + 1 < n && !is_sep(line[i + 1]) {
                        return Err(UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    c if is_sep(c) => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|x| x.as_bytes().to_vec()).collect()
    }

    #[test]
    fn plain_words() {
        assert_eq!(split_args(b"  SET a  b ").expect("a valid inline command"), s(&["SET", "a", "b"]));
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(split_args(br#"SET "a b" 'c d' "\x41\n""#).expect("a valid inline command"), s(&["SET", "a b", "c d", "A\n"]));
        assert_eq!(split_args(br#"x 'it\'s'"#).expect("a valid inline command"), s(&["x", "it's"]));
        assert_eq!(split_args(br#""""#).expect("a valid inline command"), s(&[""]));
    }

    #[test]
    fn unbalanced() {
        assert_eq!(split_args(br#"SET "a"#), Err(UnbalancedQuotes));
        assert_eq!(split_args(br#"SET "a"b"#), Err(UnbalancedQuotes));
        assert_eq!(split_args(br#"SET 'a"#), Err(UnbalancedQuotes));
    }
}
