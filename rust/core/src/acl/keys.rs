//! The keys a command names and how it uses each (read, write, both, or neither), for ACL key
//! patterns: Redis's key specs for Redis commands, and every key position of the AI commands
//! (INPUTS, OUTPUTS, KEYS, LOAD, PERSIST, ROUTING, the model and script keys of DAG ops).
use super::{KEY_READ as R, KEY_WRITE as W};
use crate::commands::ai_keys::{ai_keys, KeyUse};
use crate::commands::{is, CommandSpec};
use crate::resp::Args;

const RW: u8 = R | W;
/// The command names the key without reading or writing its value (EXISTS, TYPE): any pattern.
const NONE: u8 = 0;

/// Calls `f(key, access)` for every key argument of this invocation; stops and returns false as
/// soon as `f` does. AI commands use `commands::ai_keys` (lenient: a malformed command reports
/// the keys found, and its handler then refuses it), plus a DAG's ROUTING key.
pub fn for_each_key(spec: &CommandSpec, args: &Args, f: &mut dyn FnMut(&[u8], u8) -> bool) -> bool {
    let n = args.len();
    if spec.name.starts_with("ai.") {
        let write = spec.has(crate::commands::flags::WRITE);
        for (key, used) in ai_keys(spec.name, args) {
            let access = match used {
                KeyUse::Tensor | KeyUse::RunModel | KeyUse::RunScript | KeyUse::ScriptKey => R,
                KeyUse::Output | KeyUse::Store => W,
                KeyUse::Whole => {
                    if write {
                        W
                    } else {
                        R
                    }
                }
            };
            if !f(&key, access) {
                return false;
            }
        }
        if spec.name.starts_with("ai.dag") {
            // ROUTING names a key (for a cluster's routing) without using its value
            let mut i = 1;
            while i + 1 < n && args.get(i) != b"|>" {
                if is(args.get(i), "ROUTING") && !f(args.get(i + 1), NONE) {
                    return false;
                }
                i += 1;
            }
        }
        return true;
    }
    match spec.name {
        "object" | "memory" => n <= 2 || f(args.get(2), if spec.name == "object" { NONE } else { R }),
        "set" => n <= 1 || f(args.get(1), if (3..n).any(|i| is(args.get(i), "GET")) { RW } else { W }),
        _ => {
            let (first, rest) = generic_access(spec);
            for (j, k) in spec.key_positions(n).into_iter().enumerate() {
                if !f(args.get(k), if j == 0 { first } else { rest }) {
                    return false;
                }
            }
            true
        }
    }
}

/// Access of the first key and of the others, from Redis's key specs (`access` = read;
/// `insert`/`update`/`delete` = write).
fn generic_access(spec: &CommandSpec) -> (u8, u8) {
    match spec.name {
        "exists" | "touch" | "type" | "strlen" | "hexists" | "hlen" | "hstrlen" | "llen" | "watch" => (NONE, NONE),
        "rename" | "renamenx" => (RW, W),
        "copy" => (R, W),
        "getset" | "getdel" | "getex" | "incr" | "decr" | "incrby" | "decrby" | "incrbyfloat" | "hincrby" | "hincrbyfloat" | "lpop"
        | "rpop" | "migrate" => (RW, RW),
        _ if spec.has(crate::commands::flags::WRITE) => (W, W),
        _ => (R, R),
    }
}
