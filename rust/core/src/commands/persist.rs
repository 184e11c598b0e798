//! Persistence commands: SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF (the work is in persist/).
use std::sync::atomic::Ordering::Relaxed;

use super::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::persist;
use crate::resp::{Args, Reply};

/// SAVE: the snapshot is on disk when this answers (like Redis, it holds up other commands
/// while writing).
pub fn save(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    if ctx.server.persist.bgsave_running.load(Relaxed) {
        return Err(CmdError::err("Background save already in progress"));
    }
    let (items, changes) = persist::capture_from(ctx.ks);
    persist::save_captured(ctx.server, items, changes).map_err(CmdError::line)?;
    ctx.out.ok();
    Ok(())
}

/// BGSAVE [SCHEDULE]
pub fn bgsave(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() > 2 || (args.len() == 2 && !is(args.get(1), "SCHEDULE")) {
        return Err(CmdError::syntax());
    }
    let server = ctx.server.clone();
    ctx.deferred = Some(Box::new(move || {
        let _ = persist::bgsave(&server);
    }));
    if ctx.server.persist.bgsave_running.load(Relaxed) {
        ctx.deferred = None;
        if args.len() == 2 {
            ctx.server.persist.bgsave_scheduled.store(true, Relaxed);
            ctx.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::err("Background save already in progress"));
    }
    ctx.out.simple("Background saving started");
    Ok(())
}

/// LASTSAVE: Unix time of the last successful save.
pub fn lastsave(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    ctx.out.int(ctx.server.persist.last_save.load(Relaxed) as i64);
    Ok(())
}

/// BGREWRITEAOF
pub fn bgrewriteaof(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    if !ctx.server.persist.aof_enabled() {
        return Err(CmdError::err("BGREWRITEAOF needs appendonly yes"));
    }
    if ctx.server.persist.rewrite_running.load(Relaxed) {
        return Err(CmdError::err("Background append only file rewriting already in progress"));
    }
    let server = ctx.server.clone();
    ctx.deferred = Some(Box::new(move || {
        let _ = persist::rewrite_aof(&server);
    }));
    ctx.out.simple("Background append only file rewriting started");
    Ok(())
}
