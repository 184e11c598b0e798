//! redisai_core: everything redisai-fast does per command, in Rust and without Python: the RESP
//! protocol, tensors, the keyspace, the command table and handlers, and the session state machine.
pub mod acl;
pub mod ai;
pub mod commands;
pub mod config;
pub mod error;
pub mod exec;
pub mod glob;
pub mod keyspace;
pub mod local;
pub mod metrics;
pub mod num;
pub mod persist;
pub mod resp;
pub mod server;
pub mod session;
pub mod store;
pub mod stats;
pub mod tensor;
