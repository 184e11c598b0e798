//! Generic key commands: EXISTS DEL UNLINK TYPE KEYS SCAN RENAME RENAMENX RANDOMKEY TOUCH,
//! and expiry: EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME PERSIST.
use super::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::glob::glob_match;
use crate::num::{int_arg, parse_i64};
use crate::resp::{Args, Reply};

/// EXISTS key [key ...] (a key named twice counts twice)
pub fn exists(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = (1..args.len()).filter(|&i| ctx.ks.contains(args.get(i), ctx.now)).count();
    ctx.out.int(n as i64);
    Ok(())
}

/// DEL / UNLINK key [key ...]
pub fn del(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = (1..args.len()).filter(|&i| ctx.ks.remove(args.get(i), ctx.now).is_some()).count();
    ctx.out.int(n as i64);
    Ok(())
}

/// TOUCH key [key ...]
pub fn touch(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = (1..args.len()).filter(|&i| ctx.ks.get(args.get(i), ctx.now).is_some()).count();
    ctx.out.int(n as i64);
    Ok(())
}

/// TYPE key
pub fn type_(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let name = ctx.ks.peek(args.get(1), ctx.now).map_or("none", |v| v.type_name());
    ctx.out.simple(name);
    Ok(())
}

/// KEYS pattern
pub fn keys(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let pat = args.get(1);
    let mut found = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = ctx.ks.scan(cursor, 1024, ctx.now, |k, _| {
            if glob_match(pat, k, false) {
                found.push(k.to_vec());
            }
        });
        if cursor == 0 {
            break;
        }
    }
    ctx.out.array(found.len());
    for k in found {
        ctx.out.bulk(&k);
    }
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub fn scan(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let cursor = std::str::from_utf8(args.get(1)).ok().and_then(|s| s.parse::<u64>().ok());
    let cursor = cursor.ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut pattern: Option<Vec<u8>> = None;
    let mut count = 10usize;
    let mut type_filter: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        if i + 1 >= args.len() {
            return Err(CmdError::syntax());
        }
        let val = args.get(i + 1);
        if is(opt, "MATCH") {
            pattern = Some(val.to_vec());
        } else if is(opt, "COUNT") {
            count = match parse_i64(val) {
                Some(n) if n >= 1 => n as usize,
                Some(_) => return Err(CmdError::syntax()),
                None => return Err(CmdError::not_integer()),
            };
        } else if is(opt, "TYPE") {
            type_filter = Some(val.to_vec());
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    let mut found = Vec::new();
    let next = ctx.ks.scan(cursor, count, ctx.now, |k, v| {
        if pattern.as_ref().is_some_and(|p| !glob_match(p, k, false)) {
            return;
        }
        if type_filter.as_ref().is_some_and(|t| !t.eq_ignore_ascii_case(v.type_name().as_bytes())) {
            return;
        }
        found.push(k.to_vec());
    });
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(found.len());
    for k in found {
        ctx.out.bulk(&k);
    }
    Ok(())
}

fn rename_impl(ctx: &mut Ctx, args: &mut Args, nx: bool) -> CmdResult<bool> {
    let (src, dst) = (args.get(1), args.get(2));
    let ttl = ctx.ks.expire_at(src, ctx.now).ok_or_else(CmdError::no_such_key)?;
    if src == dst {
        return Ok(!nx);
    }
    if nx && ctx.ks.contains(dst, ctx.now) {
        return Ok(false);
    }
    let v = ctx.ks.remove(src, ctx.now).ok_or_else(CmdError::no_such_key)?;
    ctx.ks.insert_with_ttl(dst, v, ttl);
    Ok(true)
}

/// RENAME key newkey (any value type)
pub fn rename(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    rename_impl(ctx, args, false)?;
    ctx.out.ok();
    Ok(())
}

/// RENAMENX key newkey
pub fn renamenx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let done = rename_impl(ctx, args, true)?;
    ctx.out.int(done as i64);
    Ok(())
}

/// RANDOMKEY
pub fn randomkey(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    let seed = ctx.now.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ ctx.ks.changes;
    match ctx.ks.random_key(ctx.now, seed) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX | XX | GT | LT]
pub fn expire_generic(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let name = ctx.spec.name;
    let (unit_ms, absolute) = match name {
        "expire" => (1000i64, false),
        "pexpire" => (1, false),
        "expireat" => (1000, true),
        _ => (1, true),
    };
    let t = int_arg(args.get(2))?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for i in 3..args.len() {
        let a = args.get(i);
        if is(a, "NX") {
            nx = true;
        } else if is(a, "XX") {
            xx = true;
        } else if is(a, "GT") {
            gt = true;
        } else if is(a, "LT") {
            lt = true;
        } else {
            return Err(CmdError::err(format!("Unsupported option {}", String::from_utf8_lossy(a))));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(CmdError::err("GT and LT options at the same time are not compatible"));
    }
    let invalid = || CmdError::err(format!("invalid expire time in '{name}' command"));
    let ms = t.checked_mul(unit_ms).ok_or_else(invalid)?;
    let at = if absolute { ms } else { ms.checked_add(ctx.now as i64).ok_or_else(invalid)? };
    let Some(current) = ctx.ks.expire_at(args.get(1), ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    // no TTL counts as an infinite TTL for GT/LT
    let allowed = match current {
        None => !xx && !gt,
        Some(cur) => !nx && (!gt || at > cur as i64) && (!lt || at < cur as i64),
    };
    if !allowed {
        ctx.out.int(0);
        return Ok(());
    }
    if at <= ctx.now as i64 {
        ctx.ks.remove(args.get(1), ctx.now);
    } else {
        ctx.ks.set_expire(args.get(1), Some(at as u64), ctx.now);
    }
    ctx.out.int(1);
    Ok(())
}

/// TTL / PTTL / EXPIRETIME / PEXPIRETIME key
pub fn ttl_generic(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let r = match ctx.ks.expire_at(args.get(1), ctx.now) {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => match ctx.spec.name {
            "ttl" => ((at - ctx.now) as i64 + 500) / 1000,
            "pttl" => (at - ctx.now) as i64,
            "expiretime" => at as i64 / 1000,
            _ => at as i64,
        },
    };
    ctx.out.int(r);
    Ok(())
}

/// COPY source destination [DB 0] [REPLACE] (every value type, tensors, models and scripts included)
/// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH ...] [KEYS key...]: the embedded
/// keyspace does not move keys to other servers (in store mode the store does it).
pub fn migrate(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Err(CmdError::err("MIGRATE needs store mode (cluster-enabled yes or store URL): this keyspace is embedded"))
}

pub fn copy(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        let a = args.get(i);
        if is(a, "REPLACE") {
            replace = true;
            i += 1;
        } else if is(a, "DB") && i + 1 < args.len() {
            match parse_i64(args.get(i + 1)) {
                Some(0) => {}
                Some(_) => return Err(CmdError::err("DB index is out of range")),
                None => return Err(CmdError::not_integer()),
            }
            i += 2;
        } else {
            return Err(CmdError::syntax());
        }
    }
    let (src, dst) = (args.get(1), args.get(2));
    let Some(v) = ctx.ks.peek(src, ctx.now).map(|v| v.duplicate()) else {
        ctx.out.int(0);
        return Ok(());
    };
    if src == dst {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    if !replace && ctx.ks.contains(dst, ctx.now) {
        ctx.out.int(0);
        return Ok(());
    }
    let ttl = ctx.ks.expire_at(src, ctx.now).flatten();
    ctx.ks.insert_with_ttl(dst, v, ttl);
    ctx.out.int(1);
    Ok(())
}

/// OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ | HELP
pub fn object(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let sub = args.get(1).to_ascii_uppercase();
    if sub == b"HELP" {
        let lines = ["OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "ENCODING <key>", "FREQ <key>", "IDLETIME <key>", "REFCOUNT <key>"];
        ctx.out.array(lines.len());
        lines.iter().for_each(|l| ctx.out.simple(l));
        return Ok(());
    }
    if args.len() != 3 {
        return Err(super::server::unknown_subcommand(args.get(1), "OBJECT"));
    }
    let key = args.get(2);
    let lfu = ctx.ks.eviction().policy.is_lfu();
    let Some(v) = ctx.ks.peek(key, ctx.now) else {
        ctx.out.null();
        return Ok(());
    };
    const ADJUST: &str = "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
    match sub.as_slice() {
        b"ENCODING" => {
            let e = v.encoding();
            ctx.out.bulk_str(e);
        }
        b"REFCOUNT" => ctx.out.int(1),
        b"IDLETIME" if lfu => return Err(CmdError::err(format!("An LFU maxmemory policy is selected, idle time not tracked. {ADJUST}"))),
        b"IDLETIME" => {
            let idle = ctx.ks.idle_secs(key, ctx.now).unwrap_or(0);
            ctx.out.int(idle as i64)
        }
        b"FREQ" if !lfu => return Err(CmdError::err(format!("An LFU maxmemory policy is not selected, access frequency not tracked. {ADJUST}"))),
        b"FREQ" => {
            let freq = ctx.ks.frequency(key, ctx.now).unwrap_or(0);
            ctx.out.int(freq as i64)
        }
        _ => return Err(super::server::unknown_subcommand(args.get(1), "OBJECT")),
    }
    Ok(())
}

/// MEMORY USAGE key [SAMPLES n] | MEMORY HELP (tensors report their real bytes)
pub fn memory(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if is(args.get(1), "USAGE") && args.len() >= 3 {
        if args.len() != 3 && !(args.len() == 5 && is(args.get(3), "SAMPLES")) {
            return Err(CmdError::syntax());
        }
        let key_len = args.get(2).len();
        match ctx.ks.peek(args.get(2), ctx.now) {
            Some(v) => {
                let n = v.memory_usage() + key_len + 56;
                ctx.out.int(n as i64)
            }
            None => ctx.out.null(),
        }
        return Ok(());
    }
    Err(super::server::unknown_subcommand(args.get(1), "MEMORY"))
}

/// PERSIST key
pub fn persist(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let had_ttl = matches!(ctx.ks.expire_at(args.get(1), ctx.now), Some(Some(_)));
    if had_ttl {
        ctx.ks.set_expire(args.get(1), None, ctx.now);
    }
    ctx.out.int(had_ttl as i64);
    Ok(())
}
