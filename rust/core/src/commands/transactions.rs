//! MULTI, EXEC, DISCARD, WATCH, UNWATCH with Redis's semantics. Queueing itself happens in
//! `session::run_command`; EXEC runs the queue under one keyspace lock.
use std::sync::atomic::Ordering::Relaxed;

use super::{Ctx, Multi};
use crate::error::{CmdError, CmdResult};
use crate::resp::{Args, Reply};
use crate::session::run_queued;

pub fn multi(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Multi::default());
    ctx.client.info.in_multi.store(true, Relaxed);
    ctx.out.ok();
    Ok(())
}

fn unwatch_all(ctx: &mut Ctx) -> bool {
    let keys = std::mem::take(&mut ctx.client.watched);
    ctx.ks.unwatch_all(&keys, ctx.client.info.id)
}

pub fn exec(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    let Some(m) = ctx.client.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    ctx.client.info.in_multi.store(false, Relaxed);
    let dirty = unwatch_all(ctx);
    if m.failed {
        return Err(CmdError::line("EXECABORT Transaction discarded because of previous errors."));
    }
    if dirty {
        ctx.out.null_array();
        return Ok(());
    }
    run_queued(ctx, m);
    Ok(())
}

pub fn discard(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    ctx.client.info.in_multi.store(false, Relaxed);
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}

pub fn watch(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    for i in 1..args.len() {
        let k = args.get(i);
        // a key that already expired counts as touched, as in Redis
        ctx.ks.peek(k, ctx.now);
        ctx.ks.watch(k, ctx.client.info.id);
        if !ctx.client.watched.iter().any(|w| w == k) {
            ctx.client.watched.push(k.to_vec());
        }
    }
    ctx.out.ok();
    Ok(())
}

pub fn unwatch(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}
