//! AI.DAGRUN, AI.DAGRUN_RO, AI.DAGEXECUTE, AI.DAGEXECUTE_RO: parsing and validating the whole DAG
//! (LOAD, PERSIST, ROUTING, TIMEOUT and every op, then every tensor name) before anything runs.
//! Running it is exec::dag's job.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::ai_common::{get_model, get_tensor};
use super::model::{parse_execute_args, parse_run_args};
use super::script::{get_script, parse_scriptexecute_args, parse_scriptrun_args};
use super::tensor::{parse_get_format, parse_tensor};
use super::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::exec::dag::{DagPlan, DagRun, OpKind};
use crate::keyspace::Value;
use crate::num::parse_i64;
use crate::resp::Args;
use crate::tensor::Tensor;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Run,
    RunRo,
    Execute,
    ExecuteRo,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Run => "AI.DAGRUN",
            Kind::RunRo => "AI.DAGRUN_RO",
            Kind::Execute => "AI.DAGEXECUTE",
            Kind::ExecuteRo => "AI.DAGEXECUTE_RO",
        }
    }
    fn read_only(self) -> bool {
        matches!(self, Kind::RunRo | Kind::ExecuteRo)
    }
    fn execute(self) -> bool {
        matches!(self, Kind::Execute | Kind::ExecuteRo)
    }
}

pub fn dagrun(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    dag(ctx, args, Kind::Run)
}
pub fn dagrun_ro(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    dag(ctx, args, Kind::RunRo)
}
pub fn dagexecute(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    dag(ctx, args, Kind::Execute)
}
pub fn dagexecute_ro(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    dag(ctx, args, Kind::ExecuteRo)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn unexpected(token: &[u8]) -> CmdError {
    // two spaces after the colon, as RedisAI (clients match on it)
    CmdError::err(format!("Invalid DAG command. Unexpected argument:  {}", lossy(token)))
}

/// An op before its tensor names are resolved to slots.
enum ParsedOp {
    TensorSet { key: Vec<u8>, tensor: Tensor },
    TensorGet { key: Vec<u8>, format: super::tensor::GetFormat },
    Model { model: std::sync::Arc<crate::ai::Model>, inputs: Vec<Vec<u8>>, outputs: Vec<Vec<u8>> },
    Script { call: super::script::CallArgs, script: std::sync::Arc<crate::ai::Script> },
}

fn parse_op(ctx: &mut Ctx, op: &mut Args, kind: Kind) -> CmdResult<ParsedOp> {
    let name = op.get(0).to_ascii_uppercase();
    let no_timeout = |t: Option<u64>| if t.is_some() { Err(CmdError::err("TIMEOUT not allowed within a DAG command")) } else { Ok(()) };
    match name.as_slice() {
        b"AI.TENSORSET" => {
            if op.len() < 4 {
                return Err(CmdError::line("wrong number of arguments for 'AI.TENSORSET' command"));
            }
            let max = ctx.server.config.read().max_tensor_bytes();
            let tensor = parse_tensor(op, 2, max)?;
            Ok(ParsedOp::TensorSet { key: op.get(1).to_vec(), tensor })
        }
        b"AI.TENSORGET" => {
            if op.len() < 2 || op.len() > 4 {
                return Err(CmdError::line("wrong number of arguments for 'AI.TENSORGET' command"));
            }
            Ok(ParsedOp::TensorGet { key: op.get(1).to_vec(), format: parse_get_format(op, 2)? })
        }
        b"AI.MODELRUN" | b"AI.MODELEXECUTE" => {
            let execute = name == b"AI.MODELEXECUTE";
            if kind.execute() && !execute {
                return Err(CmdError::line("Deprecated AI.MODELRUN cannot be used in AI.DAGEXECUTE command"));
            }
            if !kind.execute() && execute {
                return Err(CmdError::line("AI.MODELEXECUTE cannot be used in a deprecated AI.DAGRUN command"));
            }
            if op.len() < 2 {
                return Err(CmdError::err(format!("wrong number of arguments for '{}' command", lossy(&name))));
            }
            let model = get_model(ctx, op.get(1))?;
            let parsed = if execute { parse_execute_args(op, 2, &model)? } else { parse_run_args(op, 2, &model)? };
            no_timeout(parsed.timeout)?;
            Ok(ParsedOp::Model { model, inputs: parsed.inputs, outputs: parsed.outputs })
        }
        b"AI.SCRIPTRUN" | b"AI.SCRIPTEXECUTE" => {
            let execute = name == b"AI.SCRIPTEXECUTE";
            if kind.execute() && !execute {
                return Err(CmdError::line("Deprecated AI.SCRIPTRUN cannot be used in AI.DAGEXECUTE command"));
            }
            if !kind.execute() && execute {
                return Err(CmdError::line("AI.SCRIPTEXECUTE cannot be used in a deprecated AI.DAGRUN command"));
            }
            if kind == Kind::ExecuteRo {
                return Err(CmdError::err("AI.SCRIPTEXECUTE command cannot be specified in a read-only DAG"));
            }
            if op.len() < 3 {
                return Err(CmdError::err(format!("wrong number of arguments for '{}' command", lossy(&name))));
            }
            let script = get_script(ctx, op.get(1))?;
            let call = if execute { parse_scriptexecute_args(op, 2, false)? } else { parse_scriptrun_args(op, 2)? };
            no_timeout(call.timeout)?;
            Ok(ParsedOp::Script { call, script })
        }
        _ => Err(CmdError::line("Unsupported command within DAG")),
    }
}

fn dag(ctx: &mut Ctx, args: &mut Args, kind: Kind) -> CmdResult {
    let n = args.len();
    if kind.execute() && n < 6 {
        return Err(CmdError::err(format!("missing arguments for '{}' command", kind.name())));
    }
    if !kind.execute() && n < 4 {
        return Err(CmdError::err(format!("wrong number of arguments for '{}' command", kind.name())));
    }
    // ---- LOAD / PERSIST / ROUTING / TIMEOUT, up to the first |>
    let mut slots: Vec<Option<Tensor>> = Vec::new();
    let mut names: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut persist: Vec<Vec<u8>> = Vec::new();
    let (mut seen_load, mut seen_persist, mut seen_routing, mut timeout) = (false, false, false, None);
    let mut i = 1;
    let mut ops_at = None;
    while i < n {
        let a = args.get(i);
        if is(a, "LOAD") && !seen_load {
            seen_load = true;
            if i + 2 >= n {
                return Err(CmdError::err("missing arguments after LOAD keyword in DAG command"));
            }
            let count = match parse_i64(args.get(i + 1)) {
                Some(c) if c > 0 => c as usize,
                _ => return Err(CmdError::err("invalid or negative value found in number of keys to LOAD")),
            };
            if i + 2 + count > n {
                return Err(CmdError::err("number of keys to LOAD into DAG does not match the number of given arguments"));
            }
            for j in i + 2..i + 2 + count {
                let key = args.get(j).to_vec();
                let t = get_tensor(ctx, &key)?;
                slots.push(Some(t));
                names.insert(key, slots.len() - 1);
            }
            i += 2 + count;
        } else if is(a, "PERSIST") && !seen_persist {
            if kind.read_only() {
                return Err(CmdError::err("PERSIST cannot be specified in a read-only DAG"));
            }
            seen_persist = true;
            if i + 2 >= n {
                return Err(CmdError::err("missing arguments after PERSIST keyword in DAG command"));
            }
            let count = match parse_i64(args.get(i + 1)) {
                Some(c) if c > 0 => c as usize,
                _ => return Err(CmdError::err("invalid or negative value found in number of keys to PERSIST")),
            };
            if i + 2 + count > n {
                return Err(CmdError::err("number of keys to PERSIST after DAG execution does not match the number of given arguments"));
            }
            for j in i + 2..i + 2 + count {
                let key = args.get(j).to_vec();
                if persist.contains(&key) {
                    return Err(CmdError::err("PERSIST keys must be unique"));
                }
                persist.push(key);
            }
            i += 2 + count;
        } else if is(a, "ROUTING") && !seen_routing {
            seen_routing = true;
            if i + 1 >= n {
                return Err(CmdError::err("Missing ROUTING value"));
            }
            i += 2;
        } else if is(a, "TIMEOUT") && timeout.is_none() {
            if i + 1 >= n {
                return Err(CmdError::err("No value provided for TIMEOUT"));
            }
            match parse_i64(args.get(i + 1)) {
                Some(v) if v > 0 => timeout = Some(v as u64),
                _ => return Err(CmdError::err("Invalid value for TIMEOUT")),
            }
            i += 2;
        } else if a == b"|>" && i + 1 < n {
            ops_at = Some(i);
            break;
        } else {
            return Err(unexpected(a));
        }
    }
    if kind.execute() && !(seen_load || seen_persist || seen_routing) {
        return Err(CmdError::err(
            "AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, PERSIST keywords",
        ));
    }
    let Some(first) = ops_at else { return Err(CmdError::err("DAG is empty")) };
    // ---- every op, parsed and checked before anything runs
    let mut bounds = Vec::new();
    let mut start = first + 1;
    for j in first + 1..=n {
        if j == n || args.get(j) == b"|>" {
            bounds.push((start, j));
            start = j + 1;
        }
    }
    let mut parsed = Vec::with_capacity(bounds.len());
    for (from, to) in bounds {
        if from >= to {
            return Err(CmdError::err("DAG is empty"));
        }
        let mut op = args.sub(from, to);
        parsed.push(parse_op(ctx, &mut op, kind)?);
    }
    // ---- tensor names to slots: inputs must be LOADed or produced by an earlier op
    let resolve = |names: &HashMap<Vec<u8>, usize>, key: &[u8]| {
        names.get(key).copied().ok_or_else(|| CmdError::err("INPUT key cannot be found in DAG"))
    };
    let mut ops = Vec::with_capacity(parsed.len());
    for p in parsed {
        let op = match p {
            ParsedOp::TensorSet { key, tensor } => {
                slots.push(Some(tensor));
                names.insert(key, slots.len() - 1);
                OpKind::TensorSet
            }
            ParsedOp::TensorGet { key, format } => OpKind::TensorGet { input: resolve(&names, &key)?, format },
            ParsedOp::Model { model, inputs, outputs } => {
                let inputs = inputs.iter().map(|k| resolve(&names, k)).collect::<CmdResult<Vec<_>>>()?;
                let outputs = outputs.into_iter().map(|k| {
                    slots.push(None);
                    names.insert(k, slots.len() - 1);
                    slots.len() - 1
                });
                OpKind::Model { model, inputs, outputs: outputs.collect() }
            }
            ParsedOp::Script { call, script } => {
                let inputs = call.inputs.iter().map(|k| resolve(&names, k)).collect::<CmdResult<Vec<_>>>()?;
                let outputs = call
                    .outputs
                    .into_iter()
                    .map(|k| {
                        slots.push(None);
                        names.insert(k, slots.len() - 1);
                        slots.len() - 1
                    })
                    .collect();
                OpKind::Script { script, function: call.function, keys: call.keys, args: call.args, inputs, outputs }
            }
        };
        ops.push(op);
    }
    let mut persist_slots = Vec::with_capacity(persist.len());
    for key in persist {
        let slot = names.get(&key).copied().ok_or_else(|| CmdError::err("PERSIST key cannot be found in DAG"))?;
        if matches!(ctx.ks.peek(&key, ctx.now), Some(v) if !matches!(v, Value::Tensor(_))) {
            return Err(CmdError::wrongtype());
        }
        persist_slots.push((key, slot));
    }
    let caller = crate::acl::ScriptCaller::of(ctx.client);
    let plan = DagPlan { ops, slots, persist: persist_slots, deadline: timeout.map(|ms| Instant::now() + Duration::from_millis(ms)), caller };
    let (server, client, resp3, cancel) = (ctx.server.clone(), ctx.client.info.id, ctx.out.resp3, ctx.client.cancel.clone());
    ctx.deferred = Some(Box::new(move || DagRun::start(server, client, resp3, cancel, plan)));
    ctx.blocked = true;
    Ok(())
}
