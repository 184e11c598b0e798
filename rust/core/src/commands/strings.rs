//! String commands: GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX INCR INCRBY
//! DECR DECRBY INCRBYFLOAT APPEND STRLEN GETRANGE SETRANGE.
use super::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::value::Str;
use crate::keyspace::Value;
use crate::num::{int_arg, parse_f64, parse_i64};
use crate::resp::{Args, Reply};

/// The string at `key`: Ok(None) if missing, WRONGTYPE if another type.
fn get_str<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a Str>> {
    match ctx.ks.get(key, ctx.now) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(CmdError::wrongtype()),
    }
}

fn check_str_or_missing(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    match ctx.ks.peek(key, ctx.now) {
        None | Some(Value::Str(_)) => Ok(()),
        Some(_) => Err(CmdError::wrongtype()),
    }
}

pub fn get(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    match get_str(ctx, args.get(1))? {
        Some(s) => {
            let s = s.clone();
            ctx.out.bulk(&s);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// Expiry options shared by SET and GETEX: returns the absolute expiry (ms) if one was given.
fn expiry_value(ctx: &Ctx, unit: &str, raw: &[u8]) -> CmdResult<u64> {
    let name = ctx.spec.name;
    let n = int_arg(raw)?;
    let invalid = || CmdError::err(format!("invalid expire time in '{name}' command"));
    if n <= 0 {
        return Err(invalid());
    }
    let ms = match unit {
        "EX" | "EXAT" => n.checked_mul(1000).ok_or_else(invalid)?,
        _ => n,
    };
    Ok(match unit {
        "EX" | "PX" => (ctx.now as i64).checked_add(ms).ok_or_else(invalid)? as u64,
        _ => ms as u64,
    })
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]
pub fn set(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (mut nx, mut xx, mut get_old, mut keepttl) = (false, false, false, false);
    let mut expire: Option<u64> = None;
    let mut i = 3;
    while i < args.len() {
        let a = args.get(i).to_ascii_uppercase();
        match a.as_slice() {
            b"NX" if !xx => nx = true,
            b"XX" if !nx => xx = true,
            b"GET" => get_old = true,
            b"KEEPTTL" if expire.is_none() => keepttl = true,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if expire.is_none() && !keepttl && i + 1 < args.len() => {
                let unit = std::str::from_utf8(&a).unwrap_or("EX").to_string();
                expire = Some(expiry_value(ctx, &unit, args.get(i + 1))?);
                i += 1;
            }
            _ => return Err(CmdError::syntax()),
        }
        i += 1;
    }
    let key = args.get(1);
    let old = match ctx.ks.get(key, ctx.now) {
        None => None,
        Some(Value::Str(s)) => Some(s.clone()),
        Some(_) if get_old => return Err(CmdError::wrongtype()),
        Some(_) => Some(Default::default()),
    };
    let exists = old.is_some();
    let write = if exists { !nx } else { !xx };
    if write {
        let v = Value::string(args.get(2));
        if keepttl {
            ctx.ks.insert_keep_ttl(key, v, ctx.now);
        } else {
            ctx.ks.insert_with_ttl(key, v, expire);
        }
    }
    if get_old {
        match old {
            Some(o) => ctx.out.bulk(&o),
            None => ctx.out.null(),
        }
    } else if write {
        ctx.out.ok();
    } else {
        ctx.out.null();
    }
    Ok(())
}

/// SETNX key value
pub fn setnx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let exists = ctx.ks.contains(args.get(1), ctx.now);
    if !exists {
        ctx.ks.insert(args.get(1), Value::string(args.get(2)));
    }
    ctx.out.int(!exists as i64);
    Ok(())
}

/// SETEX key seconds value / PSETEX key ms value
pub fn setex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let unit = if ctx.spec.name == "setex" { "EX" } else { "PX" };
    let at = expiry_value(ctx, unit, args.get(2))?;
    ctx.ks.insert_with_ttl(args.get(1), Value::string(args.get(3)), Some(at));
    ctx.out.ok();
    Ok(())
}

/// GETSET key value
pub fn getset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let old = get_str(ctx, args.get(1))?.cloned();
    ctx.ks.insert(args.get(1), Value::string(args.get(2)));
    match old {
        Some(o) => ctx.out.bulk(&o),
        None => ctx.out.null(),
    }
    Ok(())
}

/// GETDEL key
pub fn getdel(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    match get_str(ctx, args.get(1))?.cloned() {
        Some(o) => {
            ctx.ks.remove(args.get(1), ctx.now);
            ctx.out.bulk(&o);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]
pub fn getex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut change: Option<Option<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        let a = args.get(i).to_ascii_uppercase();
        match a.as_slice() {
            b"PERSIST" if change.is_none() => change = Some(None),
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if change.is_none() && i + 1 < args.len() => {
                let unit = std::str::from_utf8(&a).unwrap_or("EX").to_string();
                change = Some(Some(expiry_value(ctx, &unit, args.get(i + 1))?));
                i += 1;
            }
            _ => return Err(CmdError::syntax()),
        }
        i += 1;
    }
    let Some(v) = get_str(ctx, args.get(1))?.cloned() else {
        ctx.out.null();
        return Ok(());
    };
    if let Some(at) = change {
        ctx.ks.set_expire(args.get(1), at, ctx.now);
    }
    ctx.out.bulk(&v);
    Ok(())
}

/// MGET key [key ...] (non-strings read as nil)
pub fn mget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ctx.out.array(args.len() - 1);
    for i in 1..args.len() {
        match ctx.ks.get(args.get(i), ctx.now) {
            Some(Value::Str(s)) => {
                let s = s.clone();
                ctx.out.bulk(&s)
            }
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

/// MSET key value [key value ...]
pub fn mset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::arity(ctx.spec.name));
    }
    if ctx.spec.name == "msetnx" && (1..args.len()).step_by(2).any(|i| ctx.ks.contains(args.get(i), ctx.now)) {
        ctx.out.int(0);
        return Ok(());
    }
    for i in (1..args.len()).step_by(2) {
        ctx.ks.insert(args.get(i), Value::string(args.get(i + 1)));
    }
    if ctx.spec.name == "msetnx" {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn incr_by(ctx: &mut Ctx, key: &[u8], delta: i64) -> CmdResult {
    let cur = match get_str(ctx, key)? {
        None => 0,
        Some(s) => parse_i64(s).ok_or_else(CmdError::not_integer)?,
    };
    let v = cur.checked_add(delta).ok_or_else(|| CmdError::err("increment or decrement would overflow"))?;
    ctx.ks.insert_keep_ttl(key, Value::string(v.to_string().into_bytes()), ctx.now);
    ctx.out.int(v);
    Ok(())
}

/// INCR / DECR / INCRBY / DECRBY
pub fn incr(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let delta = match ctx.spec.name {
        "incr" => 1,
        "decr" => -1,
        "incrby" => int_arg(args.get(2))?,
        _ => int_arg(args.get(2))?.checked_neg().ok_or_else(|| CmdError::err("decrement would overflow"))?,
    };
    incr_by(ctx, args.get(1), delta)
}

/// INCRBYFLOAT key increment
pub fn incrbyfloat(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.get(1).to_vec();
    let delta = parse_f64(args.get(2)).ok_or_else(CmdError::not_float)?;
    let cur = match get_str(ctx, &key)? {
        None => 0.0,
        Some(s) => parse_f64(s).ok_or_else(CmdError::not_float)?,
    };
    let v = cur + delta;
    if !v.is_finite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = crate::num::fmt_human(v);
    ctx.ks.insert_keep_ttl(&key, Value::string(text.clone().into_bytes()), ctx.now);
    ctx.out.bulk_str(&text);
    Ok(())
}

/// APPEND key value
pub fn append(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    check_str_or_missing(ctx, args.get(1))?;
    let len = match ctx.ks.get_mut(args.get(1), ctx.now) {
        Some(Value::Str(s)) => s.append(args.get(2)),
        _ => {
            ctx.ks.insert(args.get(1), Value::string(args.get(2)));
            args.get(2).len()
        }
    };
    ctx.out.int(len as i64);
    Ok(())
}

/// STRLEN key
pub fn strlen(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = get_str(ctx, args.get(1))?.map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// GETRANGE key start end
pub fn getrange(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (start, end) = (int_arg(args.get(2))?, int_arg(args.get(3))?);
    let s = get_str(ctx, args.get(1))?.cloned().unwrap_or_default();
    let n = s.len() as i64;
    let norm = |i: i64| if i < 0 { (n + i).max(0) } else { i };
    let (a, b) = (norm(start), norm(end).min(n - 1));
    if n == 0 || a > b || (start < 0 && end < 0 && start > end) {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&s[a as usize..=b as usize]);
    }
    Ok(())
}

/// SETRANGE key offset value
pub fn setrange(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let off = int_arg(args.get(2))?;
    if off < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let off = off as usize;
    let val = args.get(3).to_vec();
    if off + val.len() > ctx.server.config.read().proto_max_bulk_len() {
        return Err(CmdError::err("string exceeds maximum allowed size (proto-max-bulk-len)"));
    }
    check_str_or_missing(ctx, args.get(1))?;
    if val.is_empty() {
        let n = get_str(ctx, args.get(1))?.map_or(0, |s| s.len());
        ctx.out.int(n as i64);
        return Ok(());
    }
    if !ctx.ks.contains(args.get(1), ctx.now) {
        ctx.ks.insert(args.get(1), Value::string(Vec::new()));
    }
    let n = match ctx.ks.get_mut(args.get(1), ctx.now) {
        Some(Value::Str(s)) => s.write_at(off, &val),
        _ => return Err(CmdError::wrongtype()),
    };
    ctx.out.int(n as i64);
    Ok(())
}

