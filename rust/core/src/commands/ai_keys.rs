//! Where the keys of an AI command are and how it uses each (INPUTS, OUTPUTS, KEYS, LOAD, PERSIST,
//! the model and script keys of DAG ops): read leniently from the arguments, before the command's
//! own parser checks them (a malformed command still gets that parser's error). Used by store mode
//! to read every key in one round trip.
use super::is;
use crate::num::parse_i64;
use crate::resp::Args;

/// How an AI command uses a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// A tensor it reads.
    Tensor,
    /// A model it runs.
    RunModel,
    /// A script it runs.
    RunScript,
    /// A value it reads, deletes or describes whole (GET, DEL, INFO of a model, script or tensor).
    Whole,
    /// A key it writes a tensor to: free or holding a tensor.
    Output,
    /// A key it overwrites with a value of its own (TENSORSET, MODELSTORE, SCRIPTSTORE).
    Store,
    /// A key a script's `redis.execute` may touch (SCRIPTEXECUTE's KEYS).
    ScriptKey,
}

/// The keys of AI command `name` (lower case) with their use, in argument order.
pub fn ai_keys(name: &str, args: &Args) -> Vec<(Vec<u8>, KeyUse)> {
    let n = args.len();
    let mut out = Vec::new();
    let key = |i: usize| args.get(i).to_vec();
    match name {
        "ai.tensorset" | "ai.modelstore" | "ai.modelset" | "ai.scriptstore" | "ai.scriptset" if n > 1 => out.push((key(1), KeyUse::Store)),
        "ai.tensorget" | "ai.modelget" | "ai.modeldel" | "ai.scriptget" | "ai.scriptdel" | "ai.info" if n > 1 => out.push((key(1), KeyUse::Whole)),
        "ai.modelexecute" | "ai.modelrun" if n > 1 => {
            out.push((key(1), KeyUse::RunModel));
            run_keys(args, 2, name == "ai.modelexecute", &mut out);
        }
        "ai.scriptexecute" | "ai.scriptrun" if n > 1 => {
            out.push((key(1), KeyUse::RunScript));
            run_keys(args, 3, name == "ai.scriptexecute", &mut out);
        }
        "ai.dagexecute" | "ai.dagexecute_ro" | "ai.dagrun" | "ai.dagrun_ro" => dag_keys(args, &mut out),
        _ => {}
    }
    out
}

/// The items of a `<SCOPE> count items...` section at `args[i]`, clipped to what is there, and
/// where the section ends.
fn counted(args: &Args, i: usize) -> (Vec<Vec<u8>>, usize) {
    let n = args.len();
    let count = if i + 1 < n { parse_i64(args.get(i + 1)).unwrap_or(0).max(0) as usize } else { 0 };
    let end = (i + 2 + count).min(n);
    let items = ((i + 2).min(n)..end).map(|j| args.get(j).to_vec()).collect();
    (items, end.max(i + 1))
}

/// INPUTS/OUTPUTS (and SCRIPTEXECUTE's KEYS) from `from` on: counted sections in the 1.2 API,
/// `INPUTS a b OUTPUTS c` lists in the deprecated one.
fn run_keys(args: &Args, from: usize, counted_form: bool, out: &mut Vec<(Vec<u8>, KeyUse)>) {
    let n = args.len();
    let mut i = from;
    if counted_form {
        while i < n {
            let a = args.get(i);
            let used = if is(a, "INPUTS") {
                Some(KeyUse::Tensor)
            } else if is(a, "OUTPUTS") {
                Some(KeyUse::Output)
            } else if is(a, "KEYS") {
                Some(KeyUse::ScriptKey)
            } else {
                None
            };
            match used {
                Some(u) => {
                    let (keys, next) = counted(args, i);
                    out.extend(keys.into_iter().map(|k| (k, u)));
                    i = next;
                }
                // ARGS are not keys; TIMEOUT's value neither
                None if is(a, "ARGS") => i = counted(args, i).1,
                None => i += 1,
            }
        }
        return;
    }
    let mut section = None;
    while i < n {
        let a = args.get(i);
        if is(a, "INPUTS") {
            section = Some(KeyUse::Tensor);
        } else if is(a, "OUTPUTS") {
            section = Some(KeyUse::Output);
        } else if is(a, "TIMEOUT") {
            i += 1;
        } else if let Some(u) = section {
            // `$` separates SCRIPTRUN's variadic inputs: not a key
            if a != b"$" {
                out.push((a.to_vec(), u));
            }
        }
        i += 1;
    }
}

/// LOAD and PERSIST of a DAG, and the models and scripts its ops run.
fn dag_keys(args: &Args, out: &mut Vec<(Vec<u8>, KeyUse)>) {
    let n = args.len();
    let mut i = 1;
    while i < n && args.get(i) != b"|>" {
        let a = args.get(i);
        if is(a, "LOAD") || is(a, "PERSIST") {
            let u = if is(a, "LOAD") { KeyUse::Tensor } else { KeyUse::Output };
            let (keys, next) = counted(args, i);
            out.extend(keys.into_iter().map(|k| (k, u)));
            i = next;
        } else {
            i += 1;
        }
    }
    while i < n {
        // args[i] is `|>`: an op follows
        let op = i + 1;
        if op + 1 < n {
            let name = args.get(op);
            if is(name, "AI.MODELEXECUTE") || is(name, "AI.MODELRUN") {
                out.push((args.get(op + 1).to_vec(), KeyUse::RunModel));
            } else if is(name, "AI.SCRIPTEXECUTE") || is(name, "AI.SCRIPTRUN") {
                out.push((args.get(op + 1).to_vec(), KeyUse::RunScript));
                let end = (op..n).find(|&j| args.get(j) == b"|>").unwrap_or(n);
                let mut j = op + 3;
                while j < end {
                    if is(args.get(j), "KEYS") {
                        let (keys, next) = counted(args, j);
                        out.extend(keys.into_iter().map(|k| (k, KeyUse::ScriptKey)));
                        j = next;
                    } else {
                        j += 1;
                    }
                }
            }
        }
        i = (op..n).find(|&j| args.get(j) == b"|>").unwrap_or(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Arg;

    fn keys(cmd: &str) -> Vec<(String, KeyUse)> {
        let mut items: Vec<Arg> = cmd.split(' ').map(|w| Arg::Inline(w.as_bytes().to_vec())).collect();
        let args = Args::new(&[], &mut items);
        let name = cmd.split(' ').next().unwrap_or("").to_lowercase();
        ai_keys(&name, &args).into_iter().map(|(k, u)| (String::from_utf8_lossy(&k).into_owned(), u)).collect()
    }

    #[test]
    fn run_commands() {
        use KeyUse::*;
        assert_eq!(keys("AI.MODELEXECUTE m INPUTS 2 a b OUTPUTS 1 c TIMEOUT 5"),
            vec![("m".into(), RunModel), ("a".into(), Tensor), ("b".into(), Tensor), ("c".into(), Output)]);
        assert_eq!(keys("AI.MODELRUN m TIMEOUT 5 INPUTS a b OUTPUTS c"),
            vec![("m".into(), RunModel), ("a".into(), Tensor), ("b".into(), Tensor), ("c".into(), Output)]);
        assert_eq!(keys("AI.SCRIPTEXECUTE s f KEYS 1 k INPUTS 1 a ARGS 2 x y OUTPUTS 1 o"),
            vec![("s".into(), RunScript), ("k".into(), ScriptKey), ("a".into(), Tensor), ("o".into(), Output)]);
        assert_eq!(keys("AI.SCRIPTRUN s f INPUTS a $ b c OUTPUTS o"),
            vec![("s".into(), RunScript), ("a".into(), Tensor), ("b".into(), Tensor), ("c".into(), Tensor), ("o".into(), Output)]);
        // malformed: what is there, nothing more
        assert_eq!(keys("AI.MODELEXECUTE m INPUTS 5 a"), vec![("m".into(), RunModel), ("a".into(), Tensor)]);
        assert_eq!(keys("AI.TENSORSET t FLOAT 1 VALUES 1"), vec![("t".into(), Store)]);
    }

    #[test]
    fn dags() {
        use KeyUse::*;
        assert_eq!(
            keys("AI.DAGEXECUTE LOAD 2 a b PERSIST 1 c ROUTING r |> AI.TENSORSET x FLOAT 1 VALUES 1 |> AI.MODELEXECUTE m INPUTS 1 a OUTPUTS 1 c |> AI.SCRIPTEXECUTE s f KEYS 1 k INPUTS 1 c OUTPUTS 1 d"),
            vec![("a".into(), Tensor), ("b".into(), Tensor), ("c".into(), Output), ("m".into(), RunModel), ("s".into(), RunScript), ("k".into(), ScriptKey)]
        );
    }
}
