//! Number parsing with Redis's exact rules (`string2ll`, `getDoubleFromObject`), shared by all commands.

/// Redis `string2ll`: optional '-', digits, no leading zeros, no '+', no spaces, fits in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis `getDoubleFromObject` (strtod): no leading space, whole string consumed, no NaN,
/// no overflow to infinity or underflow to zero. "inf"/"infinity" are accepted.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let body = t.trim_start_matches(['+', '-']);
    let lower = body.to_ascii_lowercase();
    if lower.starts_with("nan") {
        return None;
    }
    let explicit_inf = lower == "inf" || lower == "infinity";
    let v: f64 = t.parse().ok()?;
    if v.is_infinite() && !explicit_inf {
        return None; // overflow (ERANGE)
    }
    if v == 0.0 && lower.bytes().any(|c| (b'1'..=b'9').contains(&c)) && !has_zero_mantissa(&lower) {
        return None; // underflow (ERANGE)
    }
    Some(v)
}

fn has_zero_mantissa(s: &str) -> bool {
    let mant = s.split(['e']).next().unwrap_or("");
    mant.bytes().all(|c| c == b'0' || c == b'.')
}

/// Parses an integer argument or gives Redis's generic error.
pub fn int_arg(s: &[u8]) -> Result<i64, crate::error::CmdError> {
    parse_i64(s).ok_or_else(crate::error::CmdError::not_integer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"01", b"+1", b" 1", b"1 ", b"-", b"-0", b"1.5", b"9223372036854775808", b"abc"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn strtod_rules() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-2e3"), Some(-2000.0));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"0"), Some(0.0));
        assert_eq!(parse_f64(b"0.000"), Some(0.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        for bad in [&b""[..], b" 1", b"1x", b"nan", b"1e400", b"1e-400", b"A"] {
            assert_eq!(parse_f64(bad), None, "{bad:?}");
        }
    }
}

/// INCRBYFLOAT / HINCRBYFLOAT results: the shortest decimal that reads back as the same double,
/// never in exponent form ("1.6", "3001"). Redis formats an 80-bit long double with 17 decimals
/// and trims zeros; the two agree wherever a double holds the result exactly enough (they can
/// differ in the 17th significant digit, e.g. for 1/3).
pub fn fmt_human(v: f64) -> String {
    let s = format!("{v}");
    if s == "-0" { "0".into() } else { s }
}

#[cfg(test)]
mod human_tests {
    use super::fmt_human;

    #[test]
    fn shortest_round_trip_without_exponent() {
        assert_eq!(fmt_human(1.5 + 0.1), "1.6");
        assert_eq!(fmt_human(3000.0 + 1.0), "3001");
        assert_eq!(fmt_human(-0.0), "0");
        assert_eq!(fmt_human(1e21), "1000000000000000000000");
    }
}
