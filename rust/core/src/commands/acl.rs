//! ACL SETUSER GETUSER DELUSER LIST USERS WHOAMI CAT LOG SAVE LOAD DRYRUN GENPASS HELP, with
//! Redis 7.0's replies; the rules and checks themselves are in `crate::acl`.
use std::sync::atomic::Ordering::Relaxed;

use super::server::unknown_subcommand;
use super::{id_acl, id_count, id_name, is, lookup, Ctx};
use crate::acl::{cat, keys::for_each_key, Acl};
use crate::error::{CmdError, CmdResult};
use crate::num::parse_i64;
use crate::resp::{Args, Reply};

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const NO_ACLFILE: &str = "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// ACL <subcommand> ...
pub fn acl(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let sub = args.get(1).to_ascii_lowercase();
    let n = args.len();
    let arity_ok = match sub.as_slice() {
        b"setuser" | b"getuser" | b"deluser" | b"dryrun" => n >= 3 && (sub != b"getuser" || n == 3) && (sub != b"dryrun" || n >= 4),
        b"list" | b"users" | b"whoami" | b"save" | b"load" | b"help" => n == 2,
        b"cat" | b"genpass" | b"log" => n <= 3,
        _ => return Err(unknown_subcommand(args.get(1), "ACL")),
    };
    if !arity_ok {
        return Err(CmdError::arity(&format!("acl|{}", lossy(&sub))));
    }
    match sub.as_slice() {
        b"setuser" => {
            let name = lossy(args.get(2));
            let rules: Vec<Vec<u8>> = (3..n).map(|i| args.get(i).to_vec()).collect();
            let refs: Vec<&[u8]> = rules.iter().map(|r| r.as_slice()).collect();
            ctx.server.change_acl(|a| a.set_user(&name, &refs)).map_err(CmdError::err)?;
            ctx.out.ok();
        }
        b"getuser" => getuser(ctx, &lossy(args.get(2))),
        b"deluser" => {
            let names: Vec<String> = (2..n).map(|i| lossy(args.get(i))).collect();
            let deleted = ctx.server.change_acl(|a| a.del_users(&names)).map_err(CmdError::err)?;
            ctx.out.int(deleted as i64);
        }
        b"list" => {
            let lines = ctx.server.acl.read().lines();
            ctx.out.array(lines.len());
            lines.iter().for_each(|l| ctx.out.bulk_str(l));
        }
        b"users" => {
            let names: Vec<String> = ctx.server.acl.read().users.keys().cloned().collect();
            ctx.out.array(names.len());
            names.iter().for_each(|u| ctx.out.bulk_str(u));
        }
        b"whoami" => {
            let name = ctx.client.user.name.clone();
            ctx.out.bulk_str(&name);
        }
        b"cat" => category(ctx, args)?,
        b"log" => log(ctx, args)?,
        b"save" => save(ctx)?,
        b"load" => load(ctx)?,
        b"dryrun" => dryrun(ctx, args)?,
        b"genpass" => genpass(ctx, args)?,
        _ => help(ctx),
    }
    Ok(())
}

fn getuser(ctx: &mut Ctx, name: &str) {
    let Some(u) = ctx.server.acl.read().user(name) else {
        ctx.out.null();
        return;
    };
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk_str("flags");
    let flags = u.flag_names();
    out.array(flags.len());
    flags.iter().for_each(|f| out.bulk_str(f));
    out.bulk_str("passwords");
    out.array(u.passwords.len());
    u.passwords.iter().for_each(|p| out.bulk_str(p));
    out.bulk_str("commands");
    out.bulk_str(&u.describe_commands());
    out.bulk_str("keys");
    out.bulk_str(&u.describe_keys());
    out.bulk_str("channels");
    let ch = u.describe_channels();
    out.bulk_str(if u.allchannels { "&*" } else { ch.strip_prefix("resetchannels").map_or("", |s| s.trim_start()) });
    out.bulk_str("selectors");
    out.array(0);
}

fn category(ctx: &mut Ctx, args: &Args) -> CmdResult {
    if args.len() == 2 {
        ctx.out.array(cat::NAMES.len());
        cat::NAMES.iter().for_each(|(n, _)| ctx.out.bulk_str(n));
        return Ok(());
    }
    let name = lossy(args.get(2));
    let flag = cat::by_name(&name).ok_or_else(|| CmdError::err(format!("Unknown category '{name}'")))?;
    let names: Vec<String> = (0..id_count()).filter(|&id| id_acl(id) & flag != 0).map(id_name).collect();
    ctx.out.array(names.len());
    names.iter().for_each(|n| ctx.out.bulk_str(n));
    Ok(())
}

fn log(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut count = 10usize;
    if args.len() == 3 {
        if is(args.get(2), "RESET") {
            ctx.server.acl.write().log.clear();
            ctx.out.ok();
            return Ok(());
        }
        // as Redis counts down: a negative count lists every entry
        count = match parse_i64(args.get(2)) {
            Some(c) if c >= 0 => c as usize,
            Some(_) => usize::MAX,
            None => return Err(CmdError::not_integer()),
        };
    }
    let entries: Vec<_> = ctx.server.acl.read().log.iter().take(count).cloned().collect();
    let now = ctx.now;
    let out = &mut *ctx.out;
    out.array(entries.len());
    for e in entries {
        out.map(7);
        out.bulk_str("count");
        out.int(e.count as i64);
        out.bulk_str("reason");
        out.bulk_str(e.reason.reason());
        out.bulk_str("context");
        out.bulk_str(e.context.name());
        out.bulk_str("object");
        out.bulk_str(&e.object);
        out.bulk_str("username");
        out.bulk_str(&e.username);
        out.bulk_str("age-seconds");
        out.double(now.saturating_sub(e.updated_ms) as f64 / 1000.0);
        out.bulk_str("client-info");
        out.bulk_str(&e.client_info);
    }
    Ok(())
}

fn aclfile(ctx: &Ctx) -> CmdResult<String> {
    let f = ctx.server.config.read().get("aclfile").unwrap_or("").to_string();
    if f.is_empty() {
        return Err(CmdError::err(NO_ACLFILE));
    }
    Ok(f)
}

/// Writes every user to `path` (a temporary file, then renamed over it).
pub fn save_file(acl: &Acl, path: &str) -> Result<(), String> {
    let mut text = acl.lines().join("\n");
    text.push('\n');
    let tmp = format!("{path}.tmp-{}", std::process::id());
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("There was an error trying to save the ACLs. Please check the server logs for more information ({e})")
    })
}

/// Replaces the users with those of the ACL file at `path`, all or nothing.
pub fn load_file(server: &crate::server::Server, path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("Error loading ACLs, opening file '{path}': {e}"))?;
    server.change_acl(|acl| {
        let users = acl.parse_file(&text).map_err(|e| format!("Error in user declaration '{path}:{e}"))?;
        acl.users = users;
        Ok(())
    })
}

fn save(ctx: &mut Ctx) -> CmdResult {
    let path = aclfile(ctx)?;
    save_file(&ctx.server.acl.read(), &path).map_err(CmdError::err)?;
    ctx.out.ok();
    Ok(())
}

fn load(ctx: &mut Ctx) -> CmdResult {
    let path = aclfile(ctx)?;
    load_file(ctx.server, &path).map_err(CmdError::err)?;
    ctx.out.ok();
    Ok(())
}

/// ACL DRYRUN user command [arg ...]: whether the user could run it, without running it.
fn dryrun(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let name = lossy(args.get(2));
    let user = ctx.server.acl.read().user(&name).ok_or_else(|| CmdError::err(format!("User '{name}' not found")))?;
    let cmd = lossy(args.get(3));
    let spec = lookup(args.get(3)).ok_or_else(|| CmdError::err(format!("Command '{cmd}' not found")))?;
    let n = args.len();
    let sub = args.sub(3, n);
    if !spec.arity_ok(sub.len()) {
        return Err(CmdError::arity(spec.name));
    }
    let id = spec.id_for(if sub.len() > 1 { Some(sub.get(1)) } else { None });
    if !user.can_run(id) && !spec.has(super::flags::NOAUTH) {
        ctx.out.bulk_str(&format!("This user has no permissions to run the '{}' command", id_name(id)));
        return Ok(());
    }
    let mut denied = None;
    if !user.allkeys {
        for_each_key(spec, &sub, &mut |key, need| {
            if user.can_access_key(key, need) {
                true
            } else {
                denied = Some(lossy(key));
                false
            }
        });
    }
    match denied {
        Some(k) => ctx.out.bulk_str(&format!("This user has no permissions to access the '{k}' key")),
        None => ctx.out.ok(),
    }
    Ok(())
}

/// ACL GENPASS [bits]: a random password of `bits` bits (256 by default) as hex.
fn genpass(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let bits = if args.len() == 3 {
        match parse_i64(args.get(2)) {
            Some(b) if (1..=4096).contains(&b) => b as usize,
            _ => {
                return Err(CmdError::err(
                    "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                ))
            }
        }
    } else {
        256
    };
    let chars = bits.div_ceil(4);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    use std::io::Read;
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).map_err(|e| CmdError::err(format!("cannot read random bytes: {e}")))?;
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    ctx.out.bulk_str(&hex);
    Ok(())
}

fn help(ctx: &mut Ctx) {
    const LINES: &[&str] = &[
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help.",
    ];
    ctx.out.array(LINES.len());
    LINES.iter().for_each(|l| ctx.out.simple(l));
}

/// Applies the `user ...` lines of the config file and the `aclfile` at start-up.
pub fn startup(server: &crate::server::Server, user_lines: &[String]) -> Result<(), String> {
    let file = server.config.read().get("aclfile").unwrap_or("").to_string();
    if !file.is_empty() && !user_lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    for line in user_lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((name, rules)) = words.split_first() else { return Err("user: missing user name".into()) };
        let mut rules: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
        if *name == "default" {
            // as Redis: a `user default` line starts from a reset default user
            rules.insert(0, b"reset");
        }
        server.change_acl(|a| a.set_user(name, &rules)).map_err(|e| format!("Error in user declaration '{name}': {e}"))?;
    }
    if !file.is_empty() && std::path::Path::new(&file).exists() {
        load_file(server, &file)?;
    }
    server.acl_epoch.fetch_add(1, Relaxed);
    Ok(())
}
