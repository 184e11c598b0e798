//! Hash commands: HSET HSETNX HMSET HGET HMGET HGETALL HDEL HEXISTS HLEN HKEYS HVALS HINCRBY
//! HINCRBYFLOAT HSTRLEN. Field order is insertion order (as Redis's small hashes).

use super::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Value;
use crate::num::{int_arg, parse_f64, parse_i64};
use crate::resp::{Args, Reply};

use crate::keyspace::value::Hash;

fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a Hash>> {
    match ctx.ks.get(key, ctx.now) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(CmdError::wrongtype()),
    }
}

/// The hash at `key` for writing, created empty if missing.
fn write<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<&'a mut Hash> {
    match ctx.ks.peek(key, ctx.now) {
        None => ctx.ks.insert(key, Value::Hash(Default::default())),
        Some(Value::Hash(_)) => {}
        Some(_) => return Err(CmdError::wrongtype()),
    }
    match ctx.ks.get_mut(key, ctx.now) {
        Some(Value::Hash(h)) => Ok(std::sync::Arc::make_mut(h)),
        _ => Err(CmdError::wrongtype()),
    }
}

/// Deletes the key if its hash became empty.
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    if matches!(ctx.ks.peek(key, ctx.now), Some(Value::Hash(h)) if h.is_empty()) {
        ctx.ks.remove(key, ctx.now);
    }
}

/// HSET key field value [field value ...] / HMSET (answers OK)
pub fn hset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::arity(ctx.spec.name));
    }
    let h = write(ctx, args.get(1))?;
    let mut added = 0;
    for i in (2..args.len()).step_by(2) {
        if h.insert(args.get(i).to_vec(), args.get(i + 1).to_vec()).is_none() {
            added += 1;
        }
    }
    if ctx.spec.name == "hmset" {
        ctx.out.ok();
    } else {
        ctx.out.int(added);
    }
    Ok(())
}

/// HSETNX key field value
pub fn hsetnx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let exists = read(ctx, args.get(1))?.is_some_and(|h| h.contains_key(args.get(2)));
    if !exists {
        write(ctx, args.get(1))?.insert(args.get(2).to_vec(), args.get(3).to_vec());
    }
    ctx.out.int(!exists as i64);
    Ok(())
}

pub fn hget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    match read(ctx, args.get(1))?.and_then(|h| h.get(args.get(2))).cloned() {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn hmget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let vals: Vec<Option<Vec<u8>>> = match read(ctx, args.get(1))? {
        Some(h) => (2..args.len()).map(|i| h.get(args.get(i)).cloned()).collect(),
        None => vec![None; args.len() - 2],
    };
    ctx.out.array(vals.len());
    for v in vals {
        match v {
            Some(v) => ctx.out.bulk(&v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// HGETALL (a map in RESP3) / HKEYS / HVALS
pub fn hgetall(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let h = read(ctx, args.get(1))?.cloned().unwrap_or_default();
    match ctx.spec.name {
        "hgetall" => {
            ctx.out.map(h.len());
            for (k, v) in &h {
                ctx.out.bulk(k);
                ctx.out.bulk(v);
            }
        }
        "hkeys" => {
            ctx.out.array(h.len());
            h.keys().for_each(|k| ctx.out.bulk(k));
        }
        _ => {
            ctx.out.array(h.len());
            h.values().for_each(|v| ctx.out.bulk(v));
        }
    }
    Ok(())
}

pub fn hdel(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if read(ctx, args.get(1))?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let h = write(ctx, args.get(1))?;
    let n = (2..args.len()).filter(|&i| h.shift_remove(args.get(i)).is_some()).count();
    drop_if_empty(ctx, args.get(1));
    ctx.out.int(n as i64);
    Ok(())
}

pub fn hexists(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let e = read(ctx, args.get(1))?.is_some_and(|h| h.contains_key(args.get(2)));
    ctx.out.int(e as i64);
    Ok(())
}

pub fn hlen(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = read(ctx, args.get(1))?.map_or(0, |h| h.len());
    ctx.out.int(n as i64);
    Ok(())
}

pub fn hstrlen(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = read(ctx, args.get(1))?.and_then(|h| h.get(args.get(2))).map_or(0, |v| v.len());
    ctx.out.int(n as i64);
    Ok(())
}

pub fn hincrby(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let delta = int_arg(args.get(3))?;
    let cur = match read(ctx, args.get(1))?.and_then(|h| h.get(args.get(2))) {
        None => 0,
        Some(v) => parse_i64(v).ok_or_else(|| CmdError::err("hash value is not an integer"))?,
    };
    let v = cur.checked_add(delta).ok_or_else(|| CmdError::err("increment or decrement would overflow"))?;
    write(ctx, args.get(1))?.insert(args.get(2).to_vec(), v.to_string().into_bytes());
    ctx.out.int(v);
    Ok(())
}

pub fn hincrbyfloat(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let delta = parse_f64(args.get(3)).ok_or_else(CmdError::not_float)?;
    let cur = match read(ctx, args.get(1))?.and_then(|h| h.get(args.get(2))) {
        None => 0.0,
        Some(v) => parse_f64(v).ok_or_else(|| CmdError::err("hash value is not a float"))?,
    };
    let v = cur + delta;
    if !v.is_finite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = crate::num::fmt_human(v);
    write(ctx, args.get(1))?.insert(args.get(2).to_vec(), text.clone().into_bytes());
    ctx.out.bulk_str(&text);
    Ok(())
}
