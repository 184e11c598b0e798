//! Redis's diagnostics: SLOWLOG, LATENCY, MONITOR and DEBUG SLEEP, with Redis 7.0's replies.
//! The counters behind them live in `crate::stats`.
use std::sync::atomic::Ordering::Relaxed;

use super::server::unknown_subcommand;
use super::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::num::parse_i64;
use crate::resp::{Args, Reply};

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn help(ctx: &mut Ctx, lines: &[&str]) {
    ctx.out.array(lines.len());
    lines.iter().for_each(|l| ctx.out.simple(l));
}

/// SLOWLOG GET [count] | LEN | RESET | HELP
pub fn slowlog(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let sub = args.get(1).to_ascii_uppercase();
    let n = args.len();
    match (sub.as_slice(), n) {
        (b"GET", 2 | 3) => {
            let count = if n == 3 {
                match parse_i64(args.get(2)) {
                    Some(c) if c >= -1 => c,
                    _ => return Err(CmdError::err("count should be greater than or equal to -1")),
                }
            } else {
                10
            };
            let entries: Vec<_> = {
                let e = ctx.server.slowlog.entries.lock();
                let take = if count < 0 { e.len() } else { count as usize };
                e.iter().take(take).cloned().collect()
            };
            let out = &mut *ctx.out;
            out.array(entries.len());
            for e in entries {
                out.array(6);
                out.int(e.id as i64);
                out.int(e.unix_secs as i64);
                out.int(e.duration_us as i64);
                out.array(e.argv.len());
                e.argv.iter().for_each(|a| out.bulk(a));
                out.bulk_str(&e.addr);
                out.bulk_str(&e.name);
            }
        }
        (b"LEN", 2) => {
            let len = ctx.server.slowlog.entries.lock().len();
            ctx.out.int(len as i64);
        }
        (b"RESET", 2) => {
            ctx.server.slowlog.entries.lock().clear();
            ctx.out.ok();
        }
        (b"HELP", 2) => help(
            ctx,
            &[
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
                "HELP",
                "    Print this help.",
            ],
        ),
        (b"GET" | b"LEN" | b"RESET" | b"HELP", _) => return Err(CmdError::arity(&format!("slowlog|{}", lossy(&sub).to_lowercase()))),
        _ => return Err(unknown_subcommand(args.get(1), "SLOWLOG")),
    }
    Ok(())
}

/// LATENCY LATEST | HISTORY event | RESET [event ...] | HELP
pub fn latency(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let sub = args.get(1).to_ascii_uppercase();
    let n = args.len();
    match (sub.as_slice(), n) {
        (b"LATEST", 2) => {
            let events: Vec<_> = ctx.server.latency.events.lock().iter().map(|(k, v)| (*k, v.clone())).collect();
            let out = &mut *ctx.out;
            out.array(events.len());
            for (name, e) in events {
                let (t, ms) = e.samples.back().copied().unwrap_or((0, 0));
                out.array(4);
                out.bulk_str(name);
                out.int(t as i64);
                out.int(ms as i64);
                out.int(e.max_ms as i64);
            }
        }
        (b"HISTORY", 3) => {
            let name = lossy(args.get(2));
            let samples: Vec<(u64, u64)> =
                ctx.server.latency.events.lock().get(name.as_str()).map(|e| e.samples.iter().copied().collect()).unwrap_or_default();
            let out = &mut *ctx.out;
            out.array(samples.len());
            for (t, ms) in samples {
                out.array(2);
                out.int(t as i64);
                out.int(ms as i64);
            }
        }
        (b"RESET", _) => {
            let mut events = ctx.server.latency.events.lock();
            let removed = if n == 2 {
                let k = events.len();
                events.clear();
                k
            } else {
                (2..n).filter(|&i| events.remove(lossy(args.get(i)).as_str()).is_some()).count()
            };
            drop(events);
            ctx.out.int(removed as i64);
        }
        (b"HELP", 2) => help(
            ctx,
            &[
                "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "HISTORY <event>",
                "    Return time-latency samples for the <event> class.",
                "LATEST",
                "    Return the latest latency samples for all events.",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)",
                "HELP",
                "    Prints this help.",
            ],
        ),
        (b"LATEST" | b"HISTORY" | b"HELP", _) => return Err(CmdError::arity(&format!("latency|{}", lossy(&sub).to_lowercase()))),
        _ => return Err(unknown_subcommand(args.get(1), "LATENCY")),
    }
    Ok(())
}

/// MONITOR: from now on the connection receives a line for every command the server runs.
pub fn monitor(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    let info = &ctx.client.info;
    if !info.monitor.swap(true, Relaxed) {
        ctx.server.monitors.lock().push((info.id, Vec::new()));
        ctx.server.monitor_count.fetch_add(1, Relaxed);
    }
    ctx.out.ok();
    Ok(())
}

fn is_local(addr: &str) -> bool {
    addr.starts_with("127.") || addr.starts_with("::1") || addr.starts_with("[::1]") || addr.starts_with('/')
}

/// DEBUG SLEEP seconds (allowed as `enable-debug-command` says: no, yes, or local connections).
pub fn debug(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let allowed = match ctx.server.config.read().get("enable-debug-command").unwrap_or("no") {
        "yes" => true,
        "local" => is_local(&ctx.client.info.addr),
        _ => false,
    };
    if !allowed {
        return Err(CmdError::err(
            "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ));
    }
    if is(args.get(1), "SLEEP") && args.len() == 3 {
        let secs: f64 = std::str::from_utf8(args.get(2)).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(CmdError::not_float)?;
        if secs > 0.0 && secs.is_finite() {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
        }
        ctx.out.ok();
        return Ok(());
    }
    Err(CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        lossy(args.get(1))
    )))
}
