//! Model commands: AI.MODELSTORE AI.MODELSET AI.MODELGET AI.MODELDEL AI.MODELEXECUTE AI.MODELRUN
//! AI._MODELSCAN, with RedisAI's argument order and messages. Loading happens on the host's loader
//! threads (the client blocks, the server does not); runs go to the device's run queue.
use std::sync::Arc;

use super::ai_common::{
    block_on_host_job, check_output_keys, ensure_can_block, error_reply, get_model, get_tensor, parse_count, parse_timeout,
    queue_model_run, reply_tagged_keys, store_loaded_value,
};
use super::{is, Ctx};
use crate::ai::{parse_device, Backend, Model, ModelSpec};
use crate::error::{CmdError, CmdResult};
use crate::exec::{HostJob, LoadedModel};
use crate::keyspace::Value;
use crate::num::parse_i64;
use crate::resp::{Args, Reply};
use crate::tensor::buffer::{AlignedBuf, SharedBytes};

/// The model blob: the arguments from `from` on, concatenated (a single large one is kept as is).
fn take_blob(args: &mut Args, from: usize) -> CmdResult<SharedBytes> {
    if args.len() == from + 1 {
        if let Some(b) = args.take_owned(from) {
            return Ok(b.into());
        }
    }
    let total: usize = (from..args.len()).map(|i| args.get(i).len()).sum();
    let mut buf = AlignedBuf::zeroed(total).map_err(CmdError::err)?;
    let mut off = 0;
    for i in from..args.len() {
        let a = args.get(i);
        buf.as_mut_slice()[off..off + a.len()].copy_from_slice(a);
        off += a.len();
    }
    Ok(buf.into())
}

fn names(args: &Args, from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| String::from_utf8_lossy(args.get(i)).into_owned()).collect()
}

/// `[TAG t]` at `pos`: the tag (empty without one) and the position after it.
fn optional_tag(args: &Args, pos: usize) -> (Vec<u8>, usize) {
    if pos + 1 < args.len() && is(args.get(pos), "TAG") {
        (args.get(pos + 1).to_vec(), pos + 2)
    } else {
        (Vec::new(), pos)
    }
}

/// AI.MODELSTORE key backend device [TAG t] [BATCHSIZE n [MINBATCHSIZE m [MINBATCHTIMEOUT ms]]]
///   [INPUTS n name...] [OUTPUTS n name...] BLOB chunk...
pub fn modelstore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ensure_can_block(ctx)?;
    let backend = Backend::parse(args.get(2)).ok_or_else(|| CmdError::err("unsupported backend"))?;
    let queue = parse_device(args.get(3))?;
    let device = String::from_utf8_lossy(args.get(3)).into_owned();
    let n = args.len();
    let (tag, mut pos) = optional_tag(args, 4);
    let (mut batchsize, mut minbatchsize, mut minbatchtimeout) = (0, 0, 0);
    if pos < n && is(args.get(pos), "BATCHSIZE") {
        batchsize = parse_count(args.get(pos + 1)).ok_or_else(|| CmdError::err("Invalid argument for BATCHSIZE"))?;
        pos += 2;
    }
    if pos < n && is(args.get(pos), "MINBATCHSIZE") {
        minbatchsize = parse_count(args.get(pos + 1)).ok_or_else(|| CmdError::err("Invalid argument for MINBATCHSIZE"))?;
        if batchsize == 0 && minbatchsize > 0 {
            return Err(CmdError::err("MINBATCHSIZE specified without BATCHSIZE"));
        }
        pos += 2;
    }
    if pos < n && is(args.get(pos), "MINBATCHTIMEOUT") {
        minbatchtimeout = parse_count(args.get(pos + 1)).ok_or_else(|| CmdError::err("Invalid argument for MINBATCHTIMEOUT"))?;
        if minbatchsize == 0 && minbatchtimeout > 0 {
            return Err(CmdError::err("MINBATCHTIMEOUT specified without MINBATCHSIZE"));
        }
        pos += 2;
    }
    if pos >= n {
        return Err(CmdError::err("Insufficient arguments, missing model BLOB"));
    }
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    let mut arg = args.get(pos).to_vec();
    pos += 1;
    if backend == Backend::Tf {
        if !is(&arg, "INPUTS") {
            return Err(CmdError::err("INPUTS not specified for TF"));
        }
        let count = parse_count(args.get(pos)).filter(|&c| c > 0).ok_or_else(|| CmdError::err("Invalid argument for input_count"))?
            as usize;
        if pos + 1 + count > n {
            return Err(CmdError::err("number of model inputs does not match the number of given arguments"));
        }
        inputs = names(args, pos + 1, pos + 1 + count);
        pos += 1 + count;
        if pos >= n || !is(args.get(pos), "OUTPUTS") {
            return Err(CmdError::err("OUTPUTS not specified for TF"));
        }
        pos += 1;
        let count = parse_count(args.get(pos)).filter(|&c| c > 0).ok_or_else(|| CmdError::err("Invalid argument for output_count"))?
            as usize;
        if pos + 1 + count > n {
            return Err(CmdError::err("number of model outputs does not match the number of given arguments"));
        }
        outputs = names(args, pos + 1, pos + 1 + count);
        pos += 1 + count;
        arg = if pos < n { args.get(pos).to_vec() } else { b"OUTPUTS".to_vec() };
        pos += 1;
    } else if is(&arg, "INPUTS") {
        return Err(CmdError::err("INPUTS argument should not be specified for this backend"));
    }
    if !is(&arg, "BLOB") {
        return Err(CmdError::err("Invalid argument, expected BLOB"));
    }
    if pos >= n {
        return Err(CmdError::err("Insufficient arguments, missing model BLOB"));
    }
    if backend == Backend::TfLite && batchsize > 0 {
        return Err(CmdError::err("Auto-batching not supported by the TFLITE backend"));
    }
    let blob = take_blob(args, pos)?;
    let spec = ModelSpec { backend, device, queue, tag, batchsize, minbatchsize, minbatchtimeout, inputs, outputs, blob };
    submit_load(ctx, args.get(1).to_vec(), spec);
    Ok(())
}

/// AI.MODELSET key backend device [TAG t] [BATCHSIZE n [MINBATCHSIZE m [MINBATCHTIMEOUT ms]]]
///   [INPUTS name... OUTPUTS name...] BLOB chunk...   (the deprecated form)
pub fn modelset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ensure_can_block(ctx)?;
    let backend = Backend::parse(args.get(2)).ok_or_else(|| CmdError::err("unsupported backend"))?;
    let dev = args.get(3);
    let keyword = ["INPUTS", "OUTPUTS", "TAG", "BATCHSIZE", "MINBATCHSIZE", "MINBATCHTIMEOUT", "BLOB"].iter().any(|k| is(dev, k));
    if dev.len() > 10 || keyword {
        return Err(CmdError::err("Invalid DEVICE"));
    }
    let queue = parse_device(dev)?;
    let device = String::from_utf8_lossy(dev).into_owned();
    let n = args.len();
    let (tag, mut pos) = optional_tag(args, 4);
    let (mut batchsize, mut minbatchsize, mut minbatchtimeout) = (0, 0, 0);
    if pos < n && is(args.get(pos), "BATCHSIZE") {
        if backend == Backend::TfLite {
            return Err(CmdError::err("Auto-batching not supported by the TFLITE backend"));
        }
        batchsize = parse_count(args.get(pos + 1)).ok_or_else(|| CmdError::err("Invalid argument for BATCHSIZE"))?;
        pos += 2;
    }
    if pos < n && is(args.get(pos), "MINBATCHSIZE") {
        if batchsize == 0 {
            return Err(CmdError::err("MINBATCHSIZE specified without BATCHSIZE"));
        }
        minbatchsize = parse_count(args.get(pos + 1)).ok_or_else(|| CmdError::err("Invalid argument for MINBATCHSIZE"))?;
        pos += 2;
    }
    if pos < n && is(args.get(pos), "MINBATCHTIMEOUT") {
        if batchsize == 0 {
            return Err(CmdError::err("MINBATCHTIMEOUT specified without BATCHSIZE"));
        }
        if minbatchsize == 0 {
            return Err(CmdError::err("MINBATCHTIMEOUT specified without MINBATCHSIZE"));
        }
        minbatchtimeout = parse_count(args.get(pos + 1)).ok_or_else(|| CmdError::err("Invalid argument for MINBATCHTIMEOUT"))?;
        pos += 2;
    }
    if pos >= n {
        return Err(CmdError::err("Insufficient arguments, missing model BLOB"));
    }
    let blob_at = (pos..n).find(|&i| is(args.get(i), "BLOB"));
    let options_end = blob_at.unwrap_or(n);
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    if backend == Backend::Tf {
        if options_end == pos {
            return Err(CmdError::err("Insufficient arguments, INPUTS and OUTPUTS not specified"));
        }
        if !is(args.get(pos), "INPUTS") {
            return Err(CmdError::err("INPUTS not specified"));
        }
        let out_at = (pos + 1..options_end).find(|&i| is(args.get(i), "OUTPUTS")).ok_or_else(|| CmdError::err("OUTPUTS not specified"))?;
        inputs = names(args, pos + 1, out_at);
        outputs = names(args, out_at + 1, options_end);
    }
    let Some(b) = blob_at.filter(|&b| b + 1 < n) else {
        return Err(CmdError::err("Insufficient arguments, missing model BLOB"));
    };
    let blob = take_blob(args, b + 1)?;
    let spec = ModelSpec { backend, device, queue, tag, batchsize, minbatchsize, minbatchtimeout, inputs, outputs, blob };
    submit_load(ctx, args.get(1).to_vec(), spec);
    Ok(())
}

/// Hands the model to the host's loader; the key switches to it (or the client gets the load
/// error) when loading finishes. Other clients are served meanwhile. A store of exactly the model
/// the key holds answers OK at once and changes nothing: SmartRedis re-sends a MODELSTORE whose
/// reply took longer than its socket timeout (250 ms), and loading it again would take as long
/// again, so a model slower to load than that would never be acknowledged.
fn submit_load(ctx: &mut Ctx, key: Vec<u8>, spec: ModelSpec) {
    if matches!(ctx.ks.peek(&key, ctx.now), Some(Value::Model(m)) if m.spec.same_as(&spec)) {
        ctx.out.ok();
        return;
    }
    let server = ctx.server.clone();
    block_on_host_job(ctx, move |reply| HostJob::LoadModel {
        spec,
        done: Box::new(move |spec, result| {
            match result {
                Ok(loaded) => store_loaded_value(&server, &key, model_value(spec, loaded), reply),
                Err(msg) => reply(error_reply(&msg)),
            }
        }),
    });
}

/// The stored value of a loaded model (TF keeps the node names it was given).
pub fn model_value(spec: ModelSpec, loaded: LoadedModel) -> Value {
    let (inputs, outputs) = if spec.backend == Backend::Tf {
        (spec.inputs.clone(), spec.outputs.clone())
    } else {
        (loaded.input_names, loaded.output_names)
    };
    Value::Model(Arc::new(Model::new(spec, inputs, outputs, loaded.handle)))
}

/// Writes `blob` whole, or as an array of MODEL_CHUNK_SIZE chunks when it is that big (RedisAI).
pub fn reply_chunks(out: &mut dyn Reply, blob: &SharedBytes, chunk: usize) {
    let len = blob.len();
    let chunk = chunk.max(1);
    let n_chunks = len / chunk + 1;
    if n_chunks == 1 {
        out.bulk_shared(blob, 0, len);
        return;
    }
    out.array(n_chunks);
    for i in 0..n_chunks {
        let off = i * chunk;
        out.bulk_shared(blob, off, chunk.min(len - off));
    }
}

/// AI.MODELGET key [META] [BLOB]
pub fn modelget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::arity(ctx.spec.name));
    }
    let m = get_model(ctx, args.get(1))?;
    let (mut meta, mut blob) = (false, false);
    for i in 2..args.len() {
        if is(args.get(i), "META") {
            meta = true;
        } else if is(args.get(i), "BLOB") {
            blob = true;
        }
    }
    let chunk = ctx.server.config.read().model_chunk_size();
    let out = &mut *ctx.out;
    if blob && !meta {
        reply_chunks(out, &m.spec.blob, chunk);
        return Ok(());
    }
    let with_blob = !meta || blob;
    out.array(if with_blob { 18 } else { 16 });
    let s = &m.spec;
    out.bulk_str("backend");
    out.bulk_str(s.backend.name());
    out.bulk_str("device");
    out.bulk_str(&s.device);
    out.bulk_str("tag");
    out.bulk(&s.tag);
    out.bulk_str("batchsize");
    out.int(s.batchsize as i64);
    out.bulk_str("minbatchsize");
    out.int(s.minbatchsize as i64);
    out.bulk_str("inputs");
    out.array(m.input_names.len());
    m.input_names.iter().for_each(|n| out.bulk_str(n));
    out.bulk_str("outputs");
    out.array(m.output_names.len());
    m.output_names.iter().for_each(|n| out.bulk_str(n));
    out.bulk_str("minbatchtimeout");
    out.int(s.minbatchtimeout as i64);
    if with_blob {
        out.bulk_str("blob");
        reply_chunks(out, &s.blob, chunk);
    }
    Ok(())
}

/// AI.MODELDEL key
pub fn modeldel(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    get_model(ctx, args.get(1))?;
    ctx.ks.remove(args.get(1), ctx.now);
    ctx.out.ok();
    Ok(())
}

/// AI._MODELSCAN: [[key, tag], ...]
pub fn modelscan(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    reply_tagged_keys(ctx, |v| if let Value::Model(m) = v { Some(&m.spec.tag) } else { None });
    Ok(())
}

/// Input/output count against the model's definition (RedisAI answers these without "ERR").
fn check_counts(m: &Model, ninputs: usize, noutputs: usize) -> CmdResult {
    if ninputs != m.ninputs() {
        return Err(CmdError::line("Number of keys given as INPUTS here does not match model definition"));
    }
    if m.noutputs().is_some_and(|n| n != noutputs) {
        return Err(CmdError::line("Number of keys given as OUTPUTS here does not match model definition"));
    }
    Ok(())
}

/// AI.MODELEXECUTE key INPUTS n in... OUTPUTS n out... [TIMEOUT ms]
pub fn modelexecute(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = args.len();
    if n < 8 {
        return Err(CmdError::err("wrong number of arguments for 'AI.MODELEXECUTE' command"));
    }
    let m = get_model(ctx, args.get(1))?;
    let parsed = parse_execute_args(args, 2, &m)?;
    let inputs = parsed.inputs.iter().map(|k| get_tensor(ctx, k)).collect::<CmdResult<Vec<_>>>()?;
    check_output_keys(ctx, &parsed.outputs)?;
    queue_model_run(ctx, m, inputs, parsed.outputs, parsed.timeout);
    Ok(())
}

/// `INPUTS n ... OUTPUTS n ... [TIMEOUT ms]` from `pos` (MODELEXECUTE, and its DAG op).
pub struct ExecuteArgs {
    pub inputs: Vec<Vec<u8>>,
    pub outputs: Vec<Vec<u8>>,
    pub timeout: Option<u64>,
}

pub fn parse_execute_args(args: &Args, mut pos: usize, m: &Model) -> CmdResult<ExecuteArgs> {
    let n = args.len();
    let inputs = counted_keys(args, &mut pos, "INPUTS", "input", Some(m.ninputs()))?;
    let outputs = counted_keys(args, &mut pos, "OUTPUTS", "output", m.noutputs())?;
    let mut timeout = None;
    if pos < n {
        if !is(args.get(pos), "TIMEOUT") {
            return Err(CmdError::line(format!("Invalid argument: {}", String::from_utf8_lossy(args.get(pos)))));
        }
        if pos + 1 >= n {
            return Err(CmdError::err("No value provided for TIMEOUT"));
        }
        timeout = Some(parse_timeout(args.get(pos + 1))?);
        if pos + 2 < n {
            return Err(CmdError::line(format!("Invalid argument: {}", String::from_utf8_lossy(args.get(pos + 2)))));
        }
    }
    Ok(ExecuteArgs { inputs, outputs, timeout })
}

/// `INPUTS n key...` or `OUTPUTS n key...` (`word`; `what` is "input"/"output" for the messages)
/// at `pos`, with RedisAI's errors; `expected` is the model's count when it is known. Moves `pos`
/// past the keys.
fn counted_keys(args: &Args, pos: &mut usize, word: &str, what: &str, expected: Option<usize>) -> CmdResult<Vec<Vec<u8>>> {
    let n = args.len();
    if *pos >= n || !is(args.get(*pos), word) {
        return Err(CmdError::err(format!("{word} not specified")));
    }
    let count = match parse_i64(args.get(*pos + 1)) {
        None => return Err(CmdError::err(format!("Invalid argument for {what}_count"))),
        Some(c) if c <= 0 => {
            let capital = what[..1].to_uppercase() + &what[1..];
            return Err(CmdError::err(format!("{capital} count must be a positive integer")));
        }
        Some(c) => c as usize,
    };
    if expected.is_some_and(|k| k != count) {
        return Err(CmdError::line(format!("Number of keys given as {word} here does not match model definition")));
    }
    *pos += 2;
    if *pos + count > n {
        return Err(CmdError::err(format!(
            "number of {what} keys to AI.MODELEXECUTE command does not match the number of given arguments"
        )));
    }
    let keys = (*pos..*pos + count).map(|i| args.get(i).to_vec()).collect();
    *pos += count;
    Ok(keys)
}

/// `[TIMEOUT t] INPUTS in... OUTPUTS out...` from `pos` (MODELRUN, and its DAG op).
pub fn parse_run_args(args: &Args, mut pos: usize, m: &Model) -> CmdResult<ExecuteArgs> {
    let n = args.len();
    let mut timeout = None;
    if pos < n && is(args.get(pos), "TIMEOUT") {
        timeout = Some(parse_timeout(args.get(pos + 1))?);
        pos += 2;
    }
    if pos >= n || !is(args.get(pos), "INPUTS") {
        return Err(CmdError::err("INPUTS not specified"));
    }
    pos += 1;
    let out_at = (pos..n).find(|&i| is(args.get(i), "OUTPUTS")).unwrap_or(n);
    let inputs: Vec<Vec<u8>> = (pos..out_at).map(|i| args.get(i).to_vec()).collect();
    let outputs: Vec<Vec<u8>> = (out_at + 1..n).map(|i| args.get(i).to_vec()).collect();
    check_counts(m, inputs.len(), outputs.len())?;
    Ok(ExecuteArgs { inputs, outputs, timeout })
}

/// AI.MODELRUN key [TIMEOUT t] INPUTS in... OUTPUTS out...   (the deprecated form)
pub fn modelrun(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() < 6 {
        return Err(CmdError::err("wrong number of arguments for 'AI.MODELRUN' command"));
    }
    let m = get_model(ctx, args.get(1))?;
    let parsed = parse_run_args(args, 2, &m)?;
    let inputs = parsed.inputs.iter().map(|k| get_tensor(ctx, k)).collect::<CmdResult<Vec<_>>>()?;
    check_output_keys(ctx, &parsed.outputs)?;
    queue_model_run(ctx, m, inputs, parsed.outputs, parsed.timeout);
    Ok(())
}

