//! Script commands: AI.SCRIPTSET AI.SCRIPTSTORE AI.SCRIPTGET AI.SCRIPTDEL AI.SCRIPTRUN
//! AI.SCRIPTEXECUTE AI._SCRIPTSCAN, with RedisAI's argument order and messages. Compiling happens
//! on the host's loader threads (the client blocks, the server does not); calls go to the
//! script's device queue.
use std::sync::Arc;

use super::ai_common::{
    block_on_host_job, check_output_keys, ensure_can_block, error_reply, get_tensor, parse_count, parse_timeout, queue_run,
    reply_tagged_keys, store_loaded_value,
};
use super::{is, Ctx};
use crate::ai::{parse_device, Script, ScriptSpec};
use crate::error::{CmdError, CmdResult};
use crate::exec::{HostJob, ScriptCall, Work};
use crate::keyspace::Value;
use crate::num::parse_i64;
use crate::resp::{Args, Reply};

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The script at `key` ("ERR script key is empty" / WRONGTYPE).
pub fn get_script(ctx: &mut Ctx, key: &[u8]) -> CmdResult<Arc<Script>> {
    match ctx.ks.get(key, ctx.now) {
        None => Err(CmdError::err("script key is empty")),
        Some(Value::Script(s)) => Ok(s.clone()),
        Some(_) => Err(CmdError::wrongtype()),
    }
}

fn missing_source() -> CmdError {
    CmdError::err("Insufficient arguments, missing script SOURCE")
}

/// AI.SCRIPTSET key device [TAG tag] SOURCE source   (the deprecated form: no entry points)
pub fn scriptset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let n = args.len();
    if n != 5 && n != 7 {
        return Err(CmdError::arity(ctx.spec.name));
    }
    ensure_can_block(ctx)?;
    let queue = parse_device(args.get(2))?;
    let mut pos = 3;
    let mut tag = Vec::new();
    if is(args.get(pos), "TAG") {
        if pos + 1 >= n {
            return Err(missing_source());
        }
        tag = args.get(pos + 1).to_vec();
        pos += 2;
    }
    if pos + 1 >= n || !is(args.get(pos), "SOURCE") {
        return Err(missing_source());
    }
    let spec = ScriptSpec { device: lossy(args.get(2)), queue, tag, entry_points: vec![], source: lossy(args.get(pos + 1)) };
    submit_compile(ctx, args.get(1).to_vec(), spec);
    Ok(())
}

/// AI.SCRIPTSTORE key device [TAG tag] ENTRY_POINTS n fn... SOURCE source
pub fn scriptstore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ensure_can_block(ctx)?;
    let n = args.len();
    let queue = parse_device(args.get(2))?;
    let mut pos = 3;
    let mut tag = Vec::new();
    if is(args.get(pos), "TAG") {
        tag = args.get(pos + 1).to_vec();
        pos += 2;
    }
    let missing_entry = || CmdError::err("Insufficient arguments, missing script entry points");
    if pos >= n || !is(args.get(pos), "ENTRY_POINTS") {
        return Err(missing_entry());
    }
    let count = parse_count(args.get(pos + 1))
        .ok_or_else(|| CmdError::err("Non numeric entry points number provided to AI.SCRIPTSTORE command"))? as usize;
    pos += 2;
    if pos + count > n {
        return Err(missing_entry());
    }
    let entry_points: Vec<String> = (pos..pos + count).map(|i| lossy(args.get(i))).collect();
    pos += count;
    if pos + 1 >= n || !is(args.get(pos), "SOURCE") {
        return Err(missing_source());
    }
    let spec = ScriptSpec { device: lossy(args.get(2)), queue, tag, entry_points, source: lossy(args.get(pos + 1)) };
    submit_compile(ctx, args.get(1).to_vec(), spec);
    Ok(())
}

/// Hands the source to the host's compiler; the key switches to the script (or the client gets
/// TorchScript's error) when compiling finishes. A store of exactly the script the key holds
/// answers OK at once and changes nothing (a client's re-send, as for models).
fn submit_compile(ctx: &mut Ctx, key: Vec<u8>, spec: ScriptSpec) {
    if matches!(ctx.ks.peek(&key, ctx.now), Some(Value::Script(s)) if s.spec == spec) {
        ctx.out.ok();
        return;
    }
    let server = ctx.server.clone();
    block_on_host_job(ctx, move |reply| HostJob::CompileScript {
        spec,
        done: Box::new(move |spec, result| {
            match result {
                Ok(handle) => store_loaded_value(&server, &key, Value::Script(Arc::new(Script::new(spec, handle))), reply),
                Err(msg) => reply(error_reply(&msg)),
            }
        }),
    });
}

/// AI.SCRIPTGET key [META] [SOURCE]
pub fn scriptget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::arity(ctx.spec.name));
    }
    let s = get_script(ctx, args.get(1))?;
    let (mut meta, mut source) = (false, false);
    for i in 2..args.len() {
        if is(args.get(i), "META") {
            meta = true;
        } else if is(args.get(i), "SOURCE") {
            source = true;
        }
    }
    let out = &mut *ctx.out;
    let sp = &s.spec;
    if source && !meta {
        out.bulk_str(&sp.source);
        return Ok(());
    }
    let with_source = !meta || source;
    out.array(if with_source { 8 } else { 6 });
    out.bulk_str("device");
    out.bulk_str(&sp.device);
    out.bulk_str("tag");
    out.bulk(&sp.tag);
    out.bulk_str("Entry Points");
    out.array(sp.entry_points.len());
    sp.entry_points.iter().for_each(|e| out.bulk_str(e));
    if with_source {
        out.bulk_str("source");
        out.bulk_str(&sp.source);
    }
    Ok(())
}

/// AI.SCRIPTDEL key
pub fn scriptdel(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    get_script(ctx, args.get(1))?;
    ctx.ks.remove(args.get(1), ctx.now);
    ctx.out.ok();
    Ok(())
}

/// AI._SCRIPTSCAN: [[key, tag], ...]
pub fn scriptscan(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    reply_tagged_keys(ctx, |v| if let Value::Script(s) = v { Some(&s.spec.tag) } else { None });
    Ok(())
}

/// A parsed script call (SCRIPTRUN / SCRIPTEXECUTE, and their DAG ops).
pub struct CallArgs {
    pub function: String,
    pub inputs: Vec<Vec<u8>>,
    pub keys: Vec<String>,
    pub args: Vec<String>,
    pub outputs: Vec<Vec<u8>>,
    pub timeout: Option<u64>,
}

/// `fn [TIMEOUT t] [INPUTS in... [$ in...]] [OUTPUTS out...]` from `pos` (the function name).
pub fn parse_scriptrun_args(args: &Args, pos: usize) -> CmdResult<CallArgs> {
    let n = args.len();
    let function = lossy(args.get(pos));
    #[derive(PartialEq)]
    enum Section {
        None,
        Inputs,
        Outputs,
    }
    let (mut section, mut seen_inputs, mut seen_outputs, mut seen_var) = (Section::None, false, false, false);
    let (mut inputs, mut outputs, mut timeout) = (Vec::new(), Vec::new(), None);
    let mut i = pos + 1;
    while i < n {
        let a = args.get(i);
        if is(a, "TIMEOUT") {
            if timeout.is_some() {
                return Err(CmdError::err("Already encountered an TIMEOUT section in SCRIPTRUN"));
            }
            if i + 1 >= n {
                return Err(CmdError::err("No value provided for TIMEOUT"));
            }
            timeout = Some(parse_timeout(args.get(i + 1))?);
            i += 2;
            continue;
        }
        if is(a, "INPUTS") {
            if seen_outputs {
                return Err(CmdError::err("Already encountered an INPUTS section in SCRIPTRUN"));
            }
            if seen_inputs {
                return Err(CmdError::err("Already encountered an INPUTS keyword in SCRIPTRUN"));
            }
            seen_inputs = true;
            section = Section::Inputs;
        } else if is(a, "OUTPUTS") {
            if seen_outputs {
                return Err(CmdError::err("Already encountered an OUTPUTS keyword in SCRIPTRUN"));
            }
            seen_outputs = true;
            section = Section::Outputs;
        } else if a == b"$" {
            if section != Section::Inputs {
                return Err(CmdError::err("Encountered a variable size list of tensors outside of input section"));
            }
            if seen_var {
                return Err(CmdError::err("Already encountered a variable size list of tensors"));
            }
            seen_var = true;
        } else {
            match section {
                Section::Inputs => inputs.push(a.to_vec()),
                Section::Outputs => outputs.push(a.to_vec()),
                Section::None => return Err(CmdError::err("Unrecongnized parameter to SCRIPTRUN")),
            }
        }
        i += 1;
    }
    Ok(CallArgs { function, inputs, keys: vec![], args: vec![], outputs, timeout })
}

/// `fn [KEYS n ...] [INPUTS n ...] [ARGS n ...] [OUTPUTS n ...] [TIMEOUT ms]` from `pos`.
/// `first_scope_required`: a single command must start with KEYS or INPUTS (not a DAG op).
pub fn parse_scriptexecute_args(args: &Args, pos: usize, first_scope_required: bool) -> CmdResult<CallArgs> {
    let n = args.len();
    let function = lossy(args.get(pos));
    let mut i = pos + 1;
    if first_scope_required && !(i < n && (is(args.get(i), "KEYS") || is(args.get(i), "INPUTS"))) {
        return Err(CmdError::err("KEYS or INPUTS scope must be provided first for AI.SCRIPTEXECUTE command"));
    }
    type Scope = Option<Vec<Vec<u8>>>;
    let (mut keys, mut inputs, mut cargs, mut outputs): (Scope, Scope, Scope, Scope) = (None, None, None, None);
    let mut timeout = None;
    // one `<SCOPE> n items...` section: (count error, too-few error)
    let take = |i: usize, what: &str| -> CmdResult<(Vec<Vec<u8>>, usize)> {
        if i + 1 >= n {
            return Err(CmdError::err("Invalid arguments provided to AI.SCRIPTEXECUTE"));
        }
        let count = parse_i64(args.get(i + 1))
            .ok_or_else(|| CmdError::err(format!("Invalid argument for {what} count in AI.SCRIPTEXECUTE")))?;
        // (`what` is the plural word: "inputs", "outputs", "args")
        let count = count.max(0) as usize;
        if i + 2 + count > n {
            return Err(CmdError::err(format!(
                "number of {what} to AI.SCRIPTEXECUTE command does not match the number of given arguments"
            )));
        }
        Ok(((i + 2..i + 2 + count).map(|j| args.get(j).to_vec()).collect(), i + 2 + count))
    };
    while i < n {
        let a = args.get(i);
        if is(a, "TIMEOUT") {
            if i + 1 >= n {
                return Err(CmdError::err("No value provided for TIMEOUT in AI.SCRIPTEXECUTE"));
            }
            timeout = Some(parse_timeout(args.get(i + 1))?);
            i += 2;
            if i != n {
                return Err(CmdError::err("Encountered problem parsing AI.SCRIPTEXECUTE"));
            }
            break;
        } else if is(a, "KEYS") {
            if keys.is_some() {
                return Err(CmdError::err("Already Encountered KEYS scope in AI.SCRIPTEXECUTE command"));
            }
            if i + 2 >= n {
                return Err(CmdError::err("Missing arguments after KEYS keyword"));
            }
            let count = match parse_i64(args.get(i + 1)) {
                Some(c) if c > 0 => c as usize,
                _ => return Err(CmdError::err("Invalid or negative value found in number of KEYS")),
            };
            if i + 2 + count > n {
                return Err(CmdError::err(
                    "Number of pre declared KEYS to be used in the command does not match the number of given arguments",
                ));
            }
            keys = Some((i + 2..i + 2 + count).map(|j| args.get(j).to_vec()).collect());
            i += 2 + count;
        } else if is(a, "INPUTS") {
            if inputs.is_some() {
                return Err(CmdError::err("Already Encountered INPUTS scope in AI.SCRIPTEXECUTE command"));
            }
            let (v, next) = take(i, "inputs")?;
            inputs = Some(v);
            i = next;
        } else if is(a, "ARGS") {
            if cargs.is_some() {
                return Err(CmdError::err("Already Encountered ARGS scope in AI.SCRIPTEXECUTE command"));
            }
            if i + 1 >= n {
                return Err(CmdError::err("Invalid arguments provided to AI.SCRIPTEXECUTE"));
            }
            if parse_i64(args.get(i + 1)).is_none() {
                // RedisAI's message (sic: "keys")
                return Err(CmdError::err("Invalid argument for keys count in AI.SCRIPTEXECUTE"));
            }
            let (v, next) = take(i, "args")?;
            cargs = Some(v);
            i = next;
        } else if is(a, "OUTPUTS") {
            if outputs.is_some() {
                return Err(CmdError::err("Already Encountered OUTPUTS scope in AI.SCRIPTEXECUTE command"));
            }
            let (v, next) = take(i, "outputs")?;
            outputs = Some(v);
            i = next;
        } else {
            return Err(CmdError::err(format!("Invalid AI.SCRIPTEXECUTE command. Unexpected argument: {}", lossy(a))));
        }
    }
    let strings = |v: Option<Vec<Vec<u8>>>| v.unwrap_or_default().iter().map(|b| lossy(b)).collect::<Vec<_>>();
    Ok(CallArgs {
        function,
        inputs: inputs.unwrap_or_default(),
        keys: strings(keys),
        args: strings(cargs),
        outputs: outputs.unwrap_or_default(),
        timeout,
    })
}

/// Queues a script call for the calling client (shared by SCRIPTRUN and SCRIPTEXECUTE).
fn queue_call(ctx: &mut Ctx, script: Arc<Script>, call: CallArgs) -> CmdResult {
    let inputs = call.inputs.iter().map(|k| get_tensor(ctx, k)).collect::<CmdResult<Vec<_>>>()?;
    check_output_keys(ctx, &call.outputs)?;
    let queue = script.spec.queue.clone();
    let work = Work::Script(ScriptCall {
        script,
        function: call.function,
        keys: call.keys,
        args: call.args,
        n_outputs: call.outputs.len(),
        caller: crate::acl::ScriptCaller::of(ctx.client),
    });
    queue_run(ctx, &queue, work, inputs, call.outputs, call.timeout);
    Ok(())
}

/// AI.SCRIPTRUN key fn [TIMEOUT t] INPUTS in... [$ in...] OUTPUTS out...   (the deprecated form)
pub fn scriptrun(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() < 3 {
        return Err(CmdError::err("wrong number of arguments for 'AI.SCRIPTRUN' command"));
    }
    let script = get_script(ctx, args.get(1))?;
    let call = parse_scriptrun_args(args, 2)?;
    queue_call(ctx, script, call)
}

/// AI.SCRIPTEXECUTE key fn [KEYS n ...] [INPUTS n ...] [ARGS n ...] [OUTPUTS n ...] [TIMEOUT ms]
pub fn scriptexecute(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.len() < 3 {
        return Err(CmdError::err("wrong number of arguments for 'AI.SCRIPTEXECUTE' command"));
    }
    let script = get_script(ctx, args.get(1))?;
    let call = parse_scriptexecute_args(args, 2, true)?;
    queue_call(ctx, script, call)
}
