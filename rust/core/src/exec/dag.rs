//! Running a parsed DAG: tensors live in slots local to the command (one slot per version of a
//! name), model and script ops go to their device queues as soon as their inputs exist (so ops on
//! different devices overlap), and the reply is built when nothing is left to run. PERSIST writes
//! happen all together under one keyspace lock, and only if every op succeeded.
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::{CancelFlag, RunOutcome, RunRequest, ScriptCall, Work};
use crate::acl::ScriptCaller;
use crate::ai::{Model, Script};
use crate::commands::ai_common::error_line;
use crate::commands::tensor::{reply_tensor, GetFormat};
use crate::keyspace::Value;
use crate::resp::{Out, Reply};
use crate::server::{now_ms, Server};
use crate::tensor::Tensor;

pub enum OpKind {
    /// Its tensor was built at parse time; answers OK.
    TensorSet,
    TensorGet { input: usize, format: GetFormat },
    Model { model: Arc<Model>, inputs: Vec<usize>, outputs: Vec<usize> },
    Script { script: Arc<Script>, function: String, keys: Vec<String>, args: Vec<String>, inputs: Vec<usize>, outputs: Vec<usize> },
}

impl OpKind {
    /// The device queue a model or script op runs on.
    fn queue(&self) -> Option<String> {
        match self {
            OpKind::Model { model, .. } => Some(model.spec.queue.clone()),
            OpKind::Script { script, .. } => Some(script.spec.queue.clone()),
            OpKind::TensorSet | OpKind::TensorGet { .. } => None,
        }
    }

    /// What a run request for a model or script op runs.
    fn work(&self, caller: &Option<ScriptCaller>) -> Option<Work> {
        match self {
            OpKind::Model { model, .. } => Some(Work::Model(model.clone())),
            OpKind::Script { script, function, keys, args, outputs, .. } => Some(Work::Script(ScriptCall {
                script: script.clone(),
                function: function.clone(),
                keys: keys.clone(),
                args: args.clone(),
                n_outputs: outputs.len(),
                caller: caller.clone(),
            })),
            OpKind::TensorSet | OpKind::TensorGet { .. } => None,
        }
    }
}

enum Status {
    Pending,
    Running,
    /// The op's reply element (encoded).
    Done(Vec<u8>),
}

/// A DAG ready to run: ops, the initial slots (LOADed tensors and TENSORSET results) and what to persist.
pub struct DagPlan {
    pub ops: Vec<OpKind>,
    pub slots: Vec<Option<Tensor>>,
    /// (key, slot holding its final version)
    pub persist: Vec<(Vec<u8>, usize)>,
    pub deadline: Option<Instant>,
    /// Who runs the DAG: its scripts' `redis.execute` calls are checked against this user.
    pub caller: Option<ScriptCaller>,
}

struct DagState {
    plan: DagPlan,
    status: Vec<Status>,
    /// Devices with an op of this DAG in flight: a device runs the DAG's ops one at a time, in order.
    busy: Vec<String>,
    running: usize,
    failed: bool,
    timed_out: bool,
    finished: bool,
}

/// A DAG in flight, shared by the callbacks of its ops.
pub struct DagRun {
    server: Arc<Server>,
    client: u64,
    resp3: bool,
    cancel: CancelFlag,
    state: Mutex<DagState>,
}

impl DagRun {
    /// Starts running `plan` for `client`; its reply arrives through the completion channel.
    pub fn start(server: Arc<Server>, client: u64, resp3: bool, cancel: CancelFlag, plan: DagPlan) {
        let n = plan.ops.len();
        let run = Arc::new(DagRun {
            server,
            client,
            resp3,
            cancel,
            state: Mutex::new(DagState {
                plan,
                status: (0..n).map(|_| Status::Pending).collect(),
                busy: Vec::new(),
                running: 0,
                failed: false,
                timed_out: false,
                finished: false,
            }),
        });
        DagRun::advance(&run);
    }

    fn encode(&self, f: impl FnOnce(&mut Out)) -> Vec<u8> {
        let mut o = Out::new(self.resp3);
        f(&mut o);
        o.to_vec()
    }

    /// Settles every op that can be settled now and submits the runs whose inputs are ready.
    fn advance(run: &Arc<DagRun>) {
        let mut to_submit: Vec<(String, RunRequest)> = Vec::new();
        let finished = {
            let mut st = run.state.lock();
            if st.finished {
                return;
            }
            let n = st.plan.ops.len();
            // devices whose next op (in DAG order) cannot start in this pass
            let mut waiting: Vec<String> = st.busy.clone();
            for i in 0..n {
                if !matches!(st.status[i], Status::Pending) {
                    continue;
                }
                match &st.plan.ops[i] {
                    OpKind::TensorSet => st.status[i] = Status::Done(b"+OK\r\n".to_vec()),
                    OpKind::TensorGet { input, format } => {
                        if let Some(t) = &st.plan.slots[*input] {
                            let reply = run.encode(|o| reply_tensor(t, *format, o));
                            st.status[i] = Status::Done(reply);
                        } else if st.failed && st.running == 0 {
                            st.status[i] = Status::Done(b"+NA\r\n".to_vec());
                        }
                    }
                    OpKind::Model { inputs, .. } | OpKind::Script { inputs, .. } => {
                        if st.failed || st.timed_out {
                            st.status[i] = Status::Done(b"+NA\r\n".to_vec());
                            continue;
                        }
                        let Some(queue) = st.plan.ops[i].queue() else { continue };
                        if waiting.contains(&queue) {
                            continue;
                        }
                        if !inputs.iter().all(|&s| st.plan.slots[s].is_some()) {
                            waiting.push(queue);
                            continue;
                        }
                        {
                            let Some(work) = st.plan.ops[i].work(&st.plan.caller) else { continue };
                            let tensors: Vec<Tensor> = inputs.iter().filter_map(|&s| st.plan.slots[s].clone()).collect();
                            let me = run.clone();
                            let request = RunRequest {
                                work,
                                inputs: tensors,
                                enqueued: Instant::now(),
                                deadline: st.plan.deadline,
                                cancel: Some(run.cancel.clone()),
                                done: Box::new(move |outcome| DagRun::op_done(&me, i, outcome)),
                            };
                            st.status[i] = Status::Running;
                            st.running += 1;
                            st.busy.push(queue.clone());
                            waiting.push(queue.clone());
                            to_submit.push((queue, request));
                        }
                    }
                }
            }
            let settled = st.status.iter().all(|s| matches!(s, Status::Done(_)));
            let stuck = st.running == 0 && to_submit.is_empty() && (st.failed || st.timed_out);
            if settled || stuck {
                st.finished = true;
                true
            } else {
                false
            }
        };
        for (queue, request) in to_submit {
            let (q, _) = run.server.exec.queue(&queue);
            q.push(request);
        }
        if finished {
            run.finish();
        }
    }

    fn op_done(run: &Arc<DagRun>, i: usize, outcome: RunOutcome) {
        {
            let mut st = run.state.lock();
            st.running -= 1;
            let device = match &st.plan.ops[i] {
                OpKind::Model { model, .. } => model.spec.queue.clone(),
                OpKind::Script { script, .. } => script.spec.queue.clone(),
                _ => String::new(),
            };
            if let Some(p) = st.busy.iter().position(|d| *d == device) {
                st.busy.swap_remove(p);
            }
            match outcome {
                RunOutcome::Ok(outs) => {
                    let slots: Vec<usize> = match &st.plan.ops[i] {
                        OpKind::Model { outputs, .. } | OpKind::Script { outputs, .. } => outputs.clone(),
                        _ => vec![],
                    };
                    if outs.len() < slots.len() {
                        st.failed = true;
                        let msg = format!("ERR the run returned {} outputs but {} were expected", outs.len(), slots.len());
                        st.status[i] = Status::Done(run.encode(|o| o.error(&msg)));
                    } else {
                        for (s, t) in slots.into_iter().zip(outs) {
                            st.plan.slots[s] = Some(t);
                        }
                        st.status[i] = Status::Done(b"+OK\r\n".to_vec());
                    }
                }
                RunOutcome::Err(msg) => {
                    st.failed = true;
                    st.status[i] = Status::Done(run.encode(|o| o.error(error_line(&msg))));
                }
                RunOutcome::TimedOut => {
                    st.timed_out = true;
                    st.status[i] = Status::Done(b"+NA\r\n".to_vec());
                }
                RunOutcome::Cancelled => {
                    st.failed = true;
                    st.status[i] = Status::Done(b"+NA\r\n".to_vec());
                }
            }
        }
        DagRun::advance(run);
    }

    /// Persists (all or nothing) and sends the reply.
    fn finish(&self) {
        let st = self.state.lock();
        if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if st.timed_out {
            self.server.exec.completions.push(self.client, b"+TIMEDOUT\r\n".to_vec());
            return;
        }
        if let (Some(store), false) = (self.server.store.get(), st.failed || st.plan.persist.is_empty()) {
            // store mode: the PERSIST tensors go to the store; the reply follows its acknowledgement
            let tensors = st.plan.persist.iter().filter_map(|(k, s)| st.plan.slots[*s].clone().map(|t| (k.clone(), t))).collect();
            let statuses = st.status.iter().map(|s| if let Status::Done(b) = s { b.clone() } else { b"+NA\r\n".to_vec() }).collect();
            return crate::store::ai::commit_dag(&self.server, store, self.client, tensors, statuses, self.resp3);
        }
        let mut extra_error: Option<String> = None;
        if !st.failed && !st.plan.persist.is_empty() {
            let mut ks = self.server.ks.lock();
            let now = now_ms();
            let clash = st.plan.persist.iter().any(|(k, _)| matches!(ks.peek(k, now), Some(v) if !matches!(v, Value::Tensor(_))));
            if clash {
                extra_error = Some("WRONGTYPE Operation against a key holding the wrong kind of value".into());
            } else {
                let mut log = Vec::new();
                for (k, s) in &st.plan.persist {
                    if let Some(t) = &st.plan.slots[*s] {
                        if self.server.persist.aof_enabled() {
                            crate::persist::aof::tensor_command(&mut log, k, t);
                        }
                        ks.insert(k, Value::Tensor(t.clone()));
                    }
                }
                self.server.persist.log_bytes(&log);
            }
        }
        let mut out = Out::new(self.resp3);
        out.array(st.status.len() + extra_error.is_some() as usize);
        for s in &st.status {
            match s {
                Status::Done(bytes) => out.raw(bytes),
                _ => out.raw(b"+NA\r\n"),
            }
        }
        if let Some(e) = extra_error {
            out.error(&e);
        }
        self.server.exec.completions.push(self.client, out.to_vec());
    }
}
