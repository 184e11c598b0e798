//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LRANGE LLEN LINDEX LREM LSET LTRIM LPOS.

use super::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Value;
use crate::num::{int_arg, parse_i64};
use crate::resp::{Args, Reply};

use crate::keyspace::value::List;

fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> CmdResult<Option<&'a List>> {
    match ctx.ks.get(key, ctx.now) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(CmdError::wrongtype()),
    }
}

/// The list at `key` for writing; `create` makes an empty one when missing.
fn write<'a>(ctx: &'a mut Ctx, key: &[u8], create: bool) -> CmdResult<Option<&'a mut List>> {
    match ctx.ks.peek(key, ctx.now) {
        None if create => ctx.ks.insert(key, Value::List(Default::default())),
        None => return Ok(None),
        Some(Value::List(_)) => {}
        Some(_) => return Err(CmdError::wrongtype()),
    }
    match ctx.ks.get_mut(key, ctx.now) {
        Some(Value::List(l)) => Ok(Some(std::sync::Arc::make_mut(l))),
        _ => Err(CmdError::wrongtype()),
    }
}

fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    if matches!(ctx.ks.peek(key, ctx.now), Some(Value::List(l)) if l.is_empty()) {
        ctx.ks.remove(key, ctx.now);
    }
}

/// LPUSH / RPUSH / LPUSHX / RPUSHX key element [element ...]
pub fn push(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let name = ctx.spec.name;
    let left = name.starts_with('l');
    let create = !name.ends_with('x');
    let Some(l) = write(ctx, args.get(1), create)? else {
        ctx.out.int(0);
        return Ok(());
    };
    for i in 2..args.len() {
        let v = args.get(i).to_vec();
        if left {
            l.push_front(v)
        } else {
            l.push_back(v)
        }
    }
    let n = l.len();
    ctx.out.int(n as i64);
    Ok(())
}

/// LPOP / RPOP key [count]
pub fn pop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let left = ctx.spec.name == "lpop";
    let count = if args.len() > 2 {
        match parse_i64(args.get(2)) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::err("value is out of range, must be positive")),
        }
    } else {
        None
    };
    if args.len() > 3 {
        return Err(CmdError::arity(ctx.spec.name));
    }
    let Some(l) = write(ctx, args.get(1), false)? else {
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let n = count.unwrap_or(1).min(l.len());
    let popped: Vec<Vec<u8>> = (0..n).filter_map(|_| if left { l.pop_front() } else { l.pop_back() }).collect();
    drop_if_empty(ctx, args.get(1));
    match count {
        None => match popped.first() {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        },
        Some(_) => {
            ctx.out.array(popped.len());
            popped.iter().for_each(|v| ctx.out.bulk(v));
        }
    }
    Ok(())
}

/// Normalises a Redis range (negative from the end) to [start, end] inside 0..len, or None if empty.
fn range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let n = len as i64;
    let s = if start < 0 { (n + start).max(0) } else { start };
    let e = if end < 0 { n + end } else { end.min(n - 1) };
    (s <= e && s < n && e >= 0).then_some((s as usize, e as usize))
}

pub fn lrange(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (s, e) = (int_arg(args.get(2))?, int_arg(args.get(3))?);
    let items: Vec<Vec<u8>> = match read(ctx, args.get(1))? {
        Some(l) => match range(s, e, l.len()) {
            Some((a, b)) => l.range(a..=b).cloned().collect(),
            None => vec![],
        },
        None => vec![],
    };
    ctx.out.array(items.len());
    items.iter().for_each(|v| ctx.out.bulk(v));
    Ok(())
}

pub fn llen(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = read(ctx, args.get(1))?.map_or(0, |l| l.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn index(i: i64, len: usize) -> Option<usize> {
    let j = if i < 0 { len as i64 + i } else { i };
    (j >= 0 && (j as usize) < len).then_some(j as usize)
}

pub fn lindex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let i = int_arg(args.get(2))?;
    let v = read(ctx, args.get(1))?.and_then(|l| index(i, l.len()).map(|j| l[j].clone()));
    match v {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn lset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let i = int_arg(args.get(2))?;
    let l = write(ctx, args.get(1), false)?.ok_or_else(CmdError::no_such_key)?;
    let j = index(i, l.len()).ok_or_else(|| CmdError::err("index out of range"))?;
    l[j] = args.get(3).to_vec();
    ctx.out.ok();
    Ok(())
}

/// LREM key count element
pub fn lrem(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let count = int_arg(args.get(2))?;
    let elem = args.get(3).to_vec();
    let Some(l) = write(ctx, args.get(1), false)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    let mut removed = 0;
    if count >= 0 {
        let mut i = 0;
        while i < l.len() && removed < limit {
            if l[i] == elem {
                l.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
    } else {
        let mut i = l.len();
        while i > 0 && removed < limit {
            i -= 1;
            if l[i] == elem {
                l.remove(i);
                removed += 1;
            }
        }
    }
    drop_if_empty(ctx, args.get(1));
    ctx.out.int(removed as i64);
    Ok(())
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (s, e) = (int_arg(args.get(2))?, int_arg(args.get(3))?);
    if let Some(l) = write(ctx, args.get(1), false)? {
        match range(s, e, l.len()) {
            Some((a, b)) => {
                l.truncate(b + 1);
                l.drain(..a);
            }
            None => l.clear(),
        }
        drop_if_empty(ctx, args.get(1));
    }
    ctx.out.ok();
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<usize>, 0usize);
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(CmdError::syntax());
        }
        let v = int_arg(args.get(i + 1))?;
        let opt = args.get(i);
        if is(opt, "RANK") {
            if v == 0 || v == i64::MIN {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
            rank = v;
        } else if is(opt, "COUNT") {
            if v < 0 {
                return Err(CmdError::err("COUNT can't be negative"));
            }
            count = Some(v as usize);
        } else if is(opt, "MAXLEN") {
            if v < 0 {
                return Err(CmdError::err("MAXLEN can't be negative"));
            }
            maxlen = v as usize;
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    let elem = args.get(2).to_vec();
    let l = read(ctx, args.get(1))?.cloned().unwrap_or_default();
    let want = match count {
        Some(0) => usize::MAX,
        Some(c) => c,
        None => 1,
    };
    let mut found = Vec::new();
    let mut skip = rank.unsigned_abs() as usize - 1;
    let n = l.len();
    let limit = if maxlen == 0 { n } else { maxlen.min(n) };
    for step in 0..limit {
        let idx = if rank > 0 { step } else { n - 1 - step };
        if l[idx] == elem {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(idx as i64);
            if found.len() >= want {
                break;
            }
        }
    }
    match count {
        None => match found.first() {
            Some(&i) => ctx.out.int(i),
            None => ctx.out.null(),
        },
        Some(_) => {
            ctx.out.array(found.len());
            found.iter().for_each(|&i| ctx.out.int(i));
        }
    }
    Ok(())
}
