//! AI.INFO (run statistics of models and scripts) and AI.CONFIG (backends path, LOADBACKEND,
//! MODEL_CHUNK_SIZE, GET).
use super::ai_common::{block_on_host_job, ensure_can_block, error_reply};
use super::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::exec::HostJob;
use crate::keyspace::Value;
use crate::num::parse_i64;
use crate::resp::{Args, Reply};

/// AI.INFO key [RESETSTAT]
pub fn info(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::arity(ctx.spec.name));
    }
    let key = args.get(1).to_vec();
    let value = ctx.ks.get(&key, ctx.now);
    let (kind, backend, device, tag, stats, samples): (&str, &str, String, Vec<u8>, _, Option<i64>) = match value {
        Some(Value::Model(m)) => {
            use std::sync::atomic::Ordering::Relaxed;
            let samples = m.stats.samples.load(Relaxed) as i64;
            ("MODEL", m.spec.backend.name(), m.spec.device.clone(), m.spec.tag.clone(), StatsOf::Model(m.clone()), Some(samples))
        }
        Some(Value::Script(s)) => ("SCRIPT", "TORCH", s.spec.device.clone(), s.spec.tag.clone(), StatsOf::Script(s.clone()), None),
        _ => return Err(CmdError::err("cannot find run info for key")),
    };
    let stats = stats.get();
    if args.len() == 3 && is(args.get(2), "RESETSTAT") {
        stats.reset();
        ctx.out.ok();
        return Ok(());
    }
    use std::sync::atomic::Ordering::Relaxed;
    let out = &mut *ctx.out;
    out.array(18);
    out.bulk_str("key");
    out.bulk(&key);
    out.bulk_str("type");
    out.bulk_str(kind);
    out.bulk_str("backend");
    out.bulk_str(backend);
    out.bulk_str("device");
    out.bulk_str(&device);
    out.bulk_str("tag");
    out.bulk(&tag);
    out.bulk_str("duration");
    out.int(stats.duration_us.load(Relaxed) as i64);
    out.bulk_str("samples");
    // scripts have no batch dimension: RedisAI reports -1
    out.int(samples.unwrap_or(-1));
    out.bulk_str("calls");
    out.int(stats.calls.load(Relaxed) as i64);
    out.bulk_str("errors");
    out.int(stats.errors.load(Relaxed) as i64);
    Ok(())
}

/// Keeps the model or script alive while its statistics are read.
enum StatsOf {
    Model(std::sync::Arc<crate::ai::Model>),
    Script(std::sync::Arc<crate::ai::Script>),
}

impl StatsOf {
    fn get(&self) -> &crate::ai::RunStats {
        match self {
            StatsOf::Model(m) => &m.stats,
            StatsOf::Script(s) => &s.stats,
        }
    }
}

/// AI.CONFIG BACKENDSPATH <path> | LOADBACKEND <backend> <path> | MODEL_CHUNK_SIZE <n> | GET <name>
pub fn config(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let sub = args.get(1);
    let n = args.len();
    if let Some(store) = ctx.server.store.get().cloned() {
        // store mode: settings are shared by every node in front of the store
        crate::store::node::sync(ctx.server, &store);
        let shared = if is(sub, "BACKENDSPATH") { Some("backendspath") } else if is(sub, "MODEL_CHUNK_SIZE") { Some("model_chunk_size") } else { None };
        if let (Some(name), true) = (shared, n >= 3) {
            let mark = ctx.out.len();
            config_here(ctx, args)?;
            let value = ctx.server.config.read().get(name).unwrap_or("").to_string();
            if let Err(e) = crate::store::node::share(&store, name, &value) {
                ctx.out.truncate(mark);
                return Err(CmdError::line(&e));
            }
            return Ok(());
        }
    }
    config_here(ctx, args)
}

/// AI.CONFIG on this node.
fn config_here(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let sub = args.get(1);
    let n = args.len();
    if is(sub, "BACKENDSPATH") {
        if n < 3 {
            return Err(CmdError::err("BACKENDSPATH: missing path argument"));
        }
        let path = String::from_utf8_lossy(args.get(2)).into_owned();
        ctx.server.config.write().set("backendspath", &path, true).map_err(|_| CmdError::err("BACKENDSPATH: invalid path"))?;
        ctx.out.ok();
    } else if is(sub, "MODEL_CHUNK_SIZE") {
        if n < 3 {
            return Err(CmdError::err("MODEL_CHUNK_SIZE: missing chunk size"));
        }
        match parse_i64(args.get(2)) {
            Some(v) if v > 0 => {
                ctx.server.config.write().set("model_chunk_size", &v.to_string(), true).map_err(|_| CmdError::err("MODEL_CHUNK_SIZE: invalid chunk size"))?;
                ctx.out.ok();
            }
            _ => return Err(CmdError::err("MODEL_CHUNK_SIZE: invalid chunk size")),
        }
    } else if is(sub, "GET") {
        if n < 3 {
            return Err(CmdError::arity(ctx.spec.name));
        }
        let cfg = ctx.server.config.read();
        if is(args.get(2), "BACKENDSPATH") {
            let p = cfg.get("backendspath").unwrap_or("").to_string();
            drop(cfg);
            ctx.out.bulk_str(&p);
        } else if is(args.get(2), "MODEL_CHUNK_SIZE") {
            let c = cfg.model_chunk_size();
            drop(cfg);
            ctx.out.int(c as i64);
        } else {
            drop(cfg);
            ctx.out.null();
        }
    } else if is(sub, "LOADBACKEND") {
        if n < 4 {
            return Err(CmdError::arity(ctx.spec.name));
        }
        ensure_can_block(ctx)?;
        let backend = crate::ai::Backend::parse(args.get(2)).ok_or_else(|| CmdError::err("unsupported backend"))?;
        let path = String::from_utf8_lossy(args.get(3)).into_owned();
        block_on_host_job(ctx, move |reply| HostJob::LoadBackend {
            backend: backend.name().to_string(),
            path,
            done: Box::new(move |r| {
                reply(match r {
                    Ok(()) => b"+OK\r\n".to_vec(),
                    Err(msg) => error_reply(&msg),
                })
            }),
        });
    } else {
        return Err(CmdError::err("unsupported subcommand"));
    }
    Ok(())
}
