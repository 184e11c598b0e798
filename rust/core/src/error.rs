//! The one error type every command returns; it becomes a RESP error reply in one place
//! (`session::Session::run_command`). The message is the whole line, code included.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub String);

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CmdError {}

pub type CmdResult<T = ()> = Result<T, CmdError>;

impl CmdError {
    /// `ERR <msg>`
    pub fn err(msg: impl fmt::Display) -> Self {
        CmdError(format!("ERR {msg}"))
    }
    /// An error line that already carries its code (`WRONGTYPE ...`, `ERR ...`).
    pub fn line(msg: impl Into<String>) -> Self {
        CmdError(msg.into())
    }
    pub fn wrongtype() -> Self {
        CmdError("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    }
    /// Redis 7's arity error; `name` as in the command table (lowercase).
    pub fn arity(name: &str) -> Self {
        CmdError(format!("ERR wrong number of arguments for '{name}' command"))
    }
    pub fn syntax() -> Self {
        CmdError("ERR syntax error".into())
    }
    pub fn not_integer() -> Self {
        CmdError("ERR value is not an integer or out of range".into())
    }
    pub fn not_float() -> Self {
        CmdError("ERR value is not a valid float".into())
    }
    pub fn no_such_key() -> Self {
        CmdError("ERR no such key".into())
    }
    pub fn oom() -> Self {
        CmdError("OOM command not allowed when used memory > 'maxmemory'.".into())
    }
    pub fn noauth() -> Self {
        CmdError("NOAUTH Authentication required.".into())
    }
    /// The message without its code word, as redis-py shows it.
    pub fn message(&self) -> &str {
        &self.0
    }
}
