//! THE command table: every command the server answers, with its arity, flags, key positions
//! and handler. To find where a command is handled, find its name here.
use super::flags::*;
use super::{keys, server, tensor, transactions, CommandSpec};

macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $group:literal, $summary:literal, $run:path) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            group: $group,
            summary: $summary,
            run: $run,
        }
    };
}

pub static COMMANDS: &[CommandSpec] = &[
    // connection
    cmd!("ping", -1, FAST | STALE, 0, 0, 0, "connection", "Returns the server's liveliness response.", server::ping),
    cmd!("echo", 2, FAST, 0, 0, 0, "connection", "Returns the given string.", server::echo),
    cmd!("hello", -1, NOAUTH | FAST | NOMULTI | STALE, 0, 0, 0, "connection", "Handshakes with the server.", server::hello),
    cmd!("auth", -2, NOAUTH | FAST | NOMULTI | STALE, 0, 0, 0, "connection", "Authenticates the connection.", server::auth),
    cmd!("select", 2, FAST, 0, 0, 0, "connection", "Changes the selected database (only 0 exists).", server::select),
    cmd!("quit", -1, NOAUTH | FAST | NOMULTI | STALE, 0, 0, 0, "connection", "Closes the connection.", server::quit),
    cmd!("reset", 1, NOAUTH | FAST | NOMULTI | STALE, 0, 0, 0, "connection", "Resets the connection.", server::reset),
    cmd!("client", -2, ADMIN | NOMULTI | STALE, 0, 0, 0, "connection", "Connection management (ID, SETNAME, GETNAME, SETINFO, LIST, INFO).", server::client),
    // server
    cmd!("command", -1, LOADING | STALE, 0, 0, 0, "server", "Returns detailed information about commands.", server::command),
    cmd!("info", -1, LOADING | STALE, 0, 0, 0, "server", "Returns information and statistics about the server.", server::info),
    cmd!("config", -2, ADMIN | NOMULTI | STALE, 0, 0, 0, "server", "Gets or sets configuration parameters.", server::config),
    cmd!("dbsize", 1, READONLY | FAST, 0, 0, 0, "server", "Returns the number of keys.", server::dbsize),
    cmd!("flushdb", -1, WRITE, 0, 0, 0, "server", "Removes all keys.", server::flush),
    cmd!("flushall", -1, WRITE, 0, 0, 0, "server", "Removes all keys.", server::flush),
    cmd!("time", 1, FAST | STALE, 0, 0, 0, "server", "Returns the server time.", server::time),
    cmd!("shutdown", -1, ADMIN | NOMULTI | STALE, 0, 0, 0, "server", "Stops the server.", server::shutdown),
    cmd!("module", -2, ADMIN | NOMULTI, 0, 0, 0, "server", "Lists modules (RedisAI is built in as 'ai').", server::module),
    // generic keys
    cmd!("exists", -2, READONLY | FAST, 1, -1, 1, "generic", "Determines whether keys exist.", keys::exists),
    cmd!("del", -2, WRITE, 1, -1, 1, "generic", "Deletes keys.", keys::del),
    cmd!("unlink", -2, WRITE | FAST, 1, -1, 1, "generic", "Deletes keys.", keys::del),
    cmd!("touch", -2, READONLY | FAST, 1, -1, 1, "generic", "Touches keys.", keys::touch),
    cmd!("type", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns the type of a key's value.", keys::type_),
    cmd!("keys", 2, READONLY, 0, 0, 0, "generic", "Returns key names that match a pattern.", keys::keys),
    cmd!("scan", -2, READONLY, 0, 0, 0, "generic", "Iterates over key names.", keys::scan),
    cmd!("rename", 3, WRITE, 1, 2, 1, "generic", "Renames a key, overwriting the destination.", keys::rename),
    cmd!("renamenx", 3, WRITE | FAST, 1, 2, 1, "generic", "Renames a key if the new name is free.", keys::renamenx),
    cmd!("randomkey", 1, READONLY, 0, 0, 0, "generic", "Returns a random key name.", keys::randomkey),
    cmd!("expire", -3, WRITE | FAST, 1, 1, 1, "generic", "Sets a key's time to live in seconds.", keys::expire_generic),
    cmd!("pexpire", -3, WRITE | FAST, 1, 1, 1, "generic", "Sets a key's time to live in milliseconds.", keys::expire_generic),
    cmd!("expireat", -3, WRITE | FAST, 1, 1, 1, "generic", "Sets a key's expiry as a Unix time in seconds.", keys::expire_generic),
    cmd!("pexpireat", -3, WRITE | FAST, 1, 1, 1, "generic", "Sets a key's expiry as a Unix time in milliseconds.", keys::expire_generic),
    cmd!("ttl", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns a key's time to live in seconds.", keys::ttl_generic),
    cmd!("pttl", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns a key's time to live in milliseconds.", keys::ttl_generic),
    cmd!("expiretime", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns a key's expiry as a Unix time in seconds.", keys::ttl_generic),
    cmd!("pexpiretime", 2, READONLY | FAST, 1, 1, 1, "generic", "Returns a key's expiry as a Unix time in milliseconds.", keys::ttl_generic),
    cmd!("persist", 2, WRITE | FAST, 1, 1, 1, "generic", "Removes a key's expiry.", keys::persist),
    // transactions
    cmd!("multi", 1, FAST | NOMULTI, 0, 0, 0, "transactions", "Starts a transaction.", transactions::multi),
    cmd!("exec", 1, NOMULTI, 0, 0, 0, "transactions", "Executes the queued commands.", transactions::exec),
    cmd!("discard", 1, FAST | NOMULTI, 0, 0, 0, "transactions", "Discards the queued commands.", transactions::discard),
    cmd!("watch", -2, FAST | NOMULTI, 1, -1, 1, "transactions", "Watches keys for EXEC.", transactions::watch),
    cmd!("unwatch", 1, FAST | NOMULTI, 0, 0, 0, "transactions", "Forgets all watched keys.", transactions::unwatch),
    // RedisAI tensors
    cmd!("ai.tensorset", -4, WRITE | DENYOOM, 1, 1, 1, "ai", "Stores a tensor.", tensor::tensorset),
    cmd!("ai.tensorget", -2, READONLY, 1, 1, 1, "ai", "Returns a tensor's metadata, blob or values.", tensor::tensorget),
];
