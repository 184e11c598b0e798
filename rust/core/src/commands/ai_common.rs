//! Pieces shared by the AI run commands: argument number rules, loading input tensors, queueing a
//! run and turning its outcome into the blocked client's reply.
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Ctx;
use crate::ai::Model;
use crate::error::{CmdError, CmdResult};
use crate::exec::{RunOutcome, RunRequest, Work};
use crate::keyspace::Value;
use crate::num::{parse_f64, parse_i64};
use crate::resp::{Out, Reply};
use crate::server::{now_ms, Server};
use crate::tensor::Tensor;

/// RedisAI's `AC_GetUnsignedLongLong`: an integer, or a float with an integral value; not negative.
pub fn parse_count(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let d = parse_f64(s)?;
    (d >= 0.0 && d <= i64::MAX as f64 && d.fract() == 0.0).then_some(d as u64)
}

/// `TIMEOUT <ms>` value: a strict integer > 0.
pub fn parse_timeout(s: &[u8]) -> CmdResult<u64> {
    match parse_i64(s) {
        Some(v) if v > 0 => Ok(v as u64),
        _ => Err(CmdError::err("Invalid value for TIMEOUT")),
    }
}

/// The model at `key` ("ERR model key is empty" / WRONGTYPE).
pub fn get_model(ctx: &mut Ctx, key: &[u8]) -> CmdResult<Arc<Model>> {
    match ctx.ks.get(key, ctx.now) {
        None => Err(CmdError::err("model key is empty")),
        Some(Value::Model(m)) => Ok(m.clone()),
        Some(_) => Err(CmdError::wrongtype()),
    }
}

/// The tensor at `key` ("ERR tensor key is empty or in a different shard" / WRONGTYPE).
pub fn get_tensor(ctx: &mut Ctx, key: &[u8]) -> CmdResult<Tensor> {
    match ctx.ks.get(key, ctx.now) {
        None => Err(CmdError::line(super::tensor::KEY_EMPTY)),
        Some(Value::Tensor(t)) => Ok(t.clone()),
        Some(_) => Err(CmdError::wrongtype()),
    }
}

/// Output keys must be free or hold tensors.
pub fn check_output_keys(ctx: &mut Ctx, keys: &[Vec<u8>]) -> CmdResult {
    for k in keys {
        if matches!(ctx.ks.peek(k, ctx.now), Some(v) if !matches!(v, Value::Tensor(_))) {
            return Err(CmdError::wrongtype());
        }
    }
    Ok(())
}

/// Encodes a reply for a client that is not on the current call stack.
pub fn encode(resp3: bool, f: impl FnOnce(&mut Out)) -> Vec<u8> {
    let mut o = Out::new(resp3);
    f(&mut o);
    o.to_vec()
}

/// Sends the blocked client its reply (from a loader thread, when the host job is done).
pub type ReplySender = Box<dyn FnOnce(Vec<u8>) + Send>;

/// Hands a job to the host's loader threads and blocks the calling client until the job sends
/// its reply; other clients are served meanwhile.
pub fn block_on_host_job(ctx: &mut Ctx, job: impl FnOnce(ReplySender) -> crate::exec::HostJob) {
    let server = ctx.server.clone();
    let client = ctx.client.info.id;
    ctx.host_job = Some(job(Box::new(move |reply| server.exec.completions.push(client, reply))));
    ctx.blocked = true;
}

/// Stores a freshly loaded model or script under `key`, unless the key holds another kind of
/// value, logs it to the AOF, and gives the client that stored it its reply (in store mode once
/// the store took it).
pub fn store_loaded_value(server: &Server, key: &[u8], value: Value, reply: ReplySender) {
    if let Some(store) = server.store.get() {
        return crate::store::ai::commit_loaded(store, key.to_vec(), value, reply);
    }
    let mut ks = server.ks.lock();
    if matches!(ks.peek(key, now_ms()), Some(v) if std::mem::discriminant(v) != std::mem::discriminant(&value)) {
        drop(ks);
        return reply(error_reply("WRONGTYPE Operation against a key holding the wrong kind of value"));
    }
    if server.persist.aof_enabled() {
        let mut log = Vec::new();
        crate::persist::aof::value_commands(&mut log, key, &value, None);
        server.persist.log_bytes(&log);
    }
    ks.insert(key, value);
    drop(ks);
    reply(b"+OK\r\n".to_vec())
}

/// `[[key, tag], ...]` for every value `tag_of` picks out (AI._MODELSCAN, AI._SCRIPTSCAN).
pub fn reply_tagged_keys(ctx: &mut Ctx, tag_of: impl Fn(&Value) -> Option<&[u8]>) {
    let count = ctx.ks.iter().filter(|(_, v, _)| tag_of(v).is_some()).count();
    ctx.out.array(count);
    for (k, v, _) in ctx.ks.iter() {
        if let Some(tag) = tag_of(v) {
            ctx.out.array(2);
            ctx.out.bulk(k);
            ctx.out.bulk(tag);
        }
    }
}

/// The reply for a failed load or run: `msg` is the whole error line as its maker wrote it. The
/// core's and the adapters' own messages carry their code (`ERR ...`); a framework's text that
/// RedisAI relays without one (`Invalid GraphDef`, onnxruntime's and TorchScript's messages) is
/// sent as it is, as RedisAI sends it.
pub fn error_reply(msg: &str) -> Vec<u8> {
    encode(false, |o| o.error(error_line(msg)))
}

/// `msg` as an error line (`ERR` only when there is no text at all).
pub fn error_line(msg: &str) -> &str {
    if msg.is_empty() { "ERR" } else { msg }
}

/// Writes a run's outputs to their keys and gives the client `+OK`, the error, or `+TIMEDOUT`.
pub fn finish_single_run(server: &Arc<Server>, client: u64, output_keys: &[Vec<u8>], outcome: RunOutcome) {
    if let (Some(store), RunOutcome::Ok(outputs)) = (server.store.get(), &outcome) {
        if outputs.len() >= output_keys.len() {
            let tensors = output_keys.iter().cloned().zip(outputs.iter().cloned()).collect();
            return crate::store::ai::commit_tensors(server, store, client, tensors, b"+OK\r\n".to_vec());
        }
    }
    let reply = match outcome {
        RunOutcome::Cancelled => return,
        RunOutcome::TimedOut => b"+TIMEDOUT\r\n".to_vec(),
        RunOutcome::Err(msg) => error_reply(&msg),
        RunOutcome::Ok(outputs) => {
            if outputs.len() < output_keys.len() {
                error_reply(&format!(
                    "ERR the run returned {} outputs but {} were expected",
                    outputs.len(),
                    output_keys.len()
                ))
            } else {
                let mut ks = server.ks.lock();
                let now = now_ms();
                let clash = output_keys
                    .iter()
                    .any(|k| matches!(ks.peek(k, now), Some(v) if !matches!(v, Value::Tensor(_))));
                if clash {
                    error_reply("WRONGTYPE Operation against a key holding the wrong kind of value")
                } else {
                    let logging = server.persist.aof_enabled();
                    let mut log = Vec::new();
                    for (k, t) in output_keys.iter().zip(outputs) {
                        if logging {
                            crate::persist::aof::tensor_command(&mut log, k, &t);
                        }
                        ks.insert(k, Value::Tensor(t));
                    }
                    server.persist.log_bytes(&log);
                    b"+OK\r\n".to_vec()
                }
            }
        }
    };
    server.exec.completions.push(client, reply);
}

/// Commands that block the client on background work cannot run inside EXEC.
pub fn ensure_can_block(ctx: &Ctx) -> CmdResult {
    if ctx.in_exec {
        return Err(CmdError::err(format!(
            "{} cannot run inside MULTI or a script: it completes in the background",
            ctx.spec.name.to_uppercase()
        )));
    }
    Ok(())
}

/// Prepares a model run for the calling client, which blocks until it completes.
pub fn queue_model_run(ctx: &mut Ctx, model: Arc<Model>, inputs: Vec<Tensor>, outputs: Vec<Vec<u8>>, timeout_ms: Option<u64>) {
    let queue = model.spec.queue.clone();
    queue_run(ctx, &queue, Work::Model(model), inputs, outputs, timeout_ms);
}

/// Prepares a run (model or script) on `queue`; its outputs go to `outputs` and the client gets
/// `+OK`, the error or `+TIMEDOUT`.
pub fn queue_run(ctx: &mut Ctx, queue: &str, work: Work, inputs: Vec<Tensor>, outputs: Vec<Vec<u8>>, timeout_ms: Option<u64>) {
    let server = ctx.server.clone();
    let client = ctx.client.info.id;
    let now = Instant::now();
    let (queue, _) = ctx.server.exec.queue(queue);
    let request = RunRequest {
        work,
        inputs,
        enqueued: now,
        deadline: timeout_ms.map(|ms| now + Duration::from_millis(ms)),
        cancel: Some(ctx.client.cancel.clone()),
        done: Box::new(move |outcome| finish_single_run(&server, client, &outputs, outcome)),
    };
    ctx.run = Some((queue, request));
    ctx.blocked = true;
}
