//! RESP2/RESP3 wire format: the streaming request parser and the reply encoder. No command semantics here.
pub mod decode;
pub mod input;
pub mod inline;
pub mod reply;

pub use input::{Arg, Args, Input, ProtoError};
pub use reply::{Out, Reply, Segment};
