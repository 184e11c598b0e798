//! AI.TENSORSET and AI.TENSORGET, with RedisAI's argument order, checks and messages.
use super::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Value;
use crate::num::parse_i64;
use crate::resp::{Args, Reply};
use crate::tensor::{DType, Tensor, TensorInit};

pub const KEY_EMPTY: &str = "ERR tensor key is empty or in a different shard";

/// Parses `<type> <shape...> [BLOB <data> | VALUES <v...>]` starting at `first` (the type).
/// Shared by AI.TENSORSET and the TENSORSET op of DAGs.
pub fn parse_tensor(args: &mut Args, first: usize, max_bytes: usize) -> CmdResult<Tensor> {
    let dtype = DType::parse(args.get(first)).ok_or_else(|| CmdError::err("invalid data type"))?;
    let mut shape = Vec::new();
    let mut count: Option<usize> = Some(1);
    let mut pos = first + 1;
    let n = args.len();
    let mut data = None; // (is_blob, position of the first data argument)
    while pos < n {
        let a = args.get(pos);
        if is(a, "BLOB") {
            if n - 1 - pos != 1 {
                return Err(CmdError::err(
                    "a single binary string should come after the BLOB argument in 'AI.TENSORSET' command",
                ));
            }
            data = Some((true, pos + 1));
            break;
        } else if is(a, "VALUES") {
            if Some(n - 1 - pos) != count {
                return Err(CmdError::err("wrong number of values was given in 'AI.TENSORSET' command"));
            }
            data = Some((false, pos + 1));
            break;
        }
        match parse_i64(a) {
            Some(d) if d > 0 => {
                shape.push(d);
                count = count.and_then(|c| c.checked_mul(d as usize));
            }
            _ => return Err(CmdError::err("invalid or negative value found in tensor shape")),
        }
        pos += 1;
    }
    if count.is_none() {
        return Err(CmdError::err("invalid or negative value found in tensor shape"));
    }
    match data {
        None => Tensor::build(dtype, shape, TensorInit::Zeros, max_bytes),
        Some((true, p)) => match args.take_owned(p) {
            Some(buf) => Tensor::build(dtype, shape, TensorInit::OwnedBlob(buf), max_bytes),
            None => Tensor::build(dtype, shape, TensorInit::Blob(args.get(p)), max_bytes),
        },
        Some((false, p)) => {
            let vals: Vec<&[u8]> = (p..n).map(|i| args.get(i)).collect();
            Tensor::build(dtype, shape, TensorInit::Values(vals), max_bytes)
        }
    }
}

/// AI.TENSORSET <key> <type> <shape...> [BLOB <data> | VALUES <v...>]
pub fn tensorset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if let Some(v) = ctx.ks.peek(args.get(1), ctx.now) {
        if !matches!(v, Value::Tensor(_)) {
            return Err(CmdError::wrongtype());
        }
    }
    let max = ctx.server.config.read().max_tensor_bytes();
    let t = parse_tensor(args, 2, max)?;
    ctx.ks.insert(args.get(1), Value::Tensor(t));
    ctx.out.ok();
    Ok(())
}

/// Which parts of a tensor a TENSORGET reply holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetFormat {
    pub meta: bool,
    pub blob: bool,
    pub values: bool,
}

/// Parses TENSORGET's format words (`args[from..]`); none means META BLOB.
pub fn parse_get_format(args: &Args, from: usize) -> CmdResult<GetFormat> {
    if args.len() == from {
        return Ok(GetFormat { meta: true, blob: true, values: false });
    }
    let mut f = GetFormat { meta: false, blob: false, values: false };
    for i in from..args.len() {
        let a = args.get(i);
        if is(a, "BLOB") {
            f.blob = true;
        } else if is(a, "VALUES") {
            f.values = true;
        } else if is(a, "META") {
            f.meta = true;
        } else {
            return Err(CmdError::err("unsupported data format"));
        }
    }
    if f.blob && f.values {
        return Err(CmdError::err("both BLOB and VALUES specified"));
    }
    Ok(f)
}

/// Writes a tensor in the requested format.
pub fn reply_tensor(t: &Tensor, f: GetFormat, out: &mut dyn Reply) {
    if !f.meta {
        if f.values {
            t.reply_values(out);
        } else {
            t.reply_blob(out);
        }
        return;
    }
    let data = f.blob || f.values;
    out.array(if data { 6 } else { 4 });
    t.reply_meta_fields(out);
    if f.blob {
        out.bulk_str("blob");
        t.reply_blob(out);
    } else if f.values {
        out.bulk_str("values");
        t.reply_values(out);
    }
}

/// AI.TENSORGET <key> [META] [BLOB | VALUES]
pub fn tensorget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::arity(ctx.spec.name));
    }
    let t = match ctx.ks.get(args.get(1), ctx.now) {
        None => return Err(CmdError::line(KEY_EMPTY)),
        Some(Value::Tensor(t)) => t.clone(),
        Some(_) => return Err(CmdError::wrongtype()),
    };
    let f = parse_get_format(args, 2)?;
    reply_tensor(&t, f, ctx.out);
    Ok(())
}
