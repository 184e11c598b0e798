//! In-process clients: a command given as its arguments (no RESP parsing) runs through
//! `session::run_command`, the path every network client's command takes (same checks, same
//! handlers, same AOF logging). A command that blocks (a model run, a load, a DAG) is queued as
//! a network client's is, and its reply is awaited on the calling thread instead of the event
//! loop. No Python and no sockets here.
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::commands::{lookup, ClientState};
use crate::exec::ReplySlot;
use crate::resp::{Args, Out, Reply};
use crate::server::{now_ms, Server, IN_PROCESS_ADDR};
use crate::session::run_command;

/// Commands that change a connection's lasting state, which an in-process client does not have:
/// each call is a command of its own. (name, what to do instead)
const REFUSED: &[(&str, &str)] = &[
    ("multi", "transactions need a connection of their own: use a network client"),
    ("exec", "transactions need a connection of their own: use a network client"),
    ("discard", "transactions need a connection of their own: use a network client"),
    ("watch", "transactions need a connection of their own: use a network client"),
    ("unwatch", "transactions need a connection of their own: use a network client"),
    ("hello", "the in-process client always speaks RESP2 and is authenticated"),
    ("reset", "the in-process client has no connection state to reset"),
    ("quit", "there is no connection to close: close the database instead"),
    ("shutdown", "close the database instead"),
];

/// The reason `name` is refused in-process, if it is.
fn refused(name: &[u8]) -> Option<(&'static str, &'static str)> {
    let spec = lookup(name)?;
    REFUSED.iter().find(|(n, _)| *n == spec.name).copied()
}

/// One in-process client: like a connection, it has a client id (CLIENT LIST shows it with the
/// address `in-process:0`, which protected mode counts as local), and it runs one command at a time.
pub struct LocalClient {
    server: Arc<Server>,
    client: ClientState,
    slot: Arc<ReplySlot>,
}

impl LocalClient {
    /// Registers the client, or gives the error reply a connection would get (`maxclients`).
    pub fn new(server: &Arc<Server>) -> Result<LocalClient, &'static str> {
        let info = server.register_client(IN_PROCESS_ADDR.into(), IN_PROCESS_ADDR.into())?;
        let slot = server.exec.completions.register_direct(info.id);
        // in this process: authenticated as the default user (AUTH switches users as on a connection)
        let mut client = ClientState::new(server, info);
        client.authenticated = true;
        Ok(LocalClient { server: server.clone(), client, slot })
    }

    pub fn id(&self) -> u64 {
        self.client.info.id
    }

    /// Runs one command, writing its reply to `out`. Returns true when the command blocked: its
    /// reply then comes from `wait`. A model run it prepared goes to the device's workers.
    pub fn start(&mut self, out: &mut Out, args: &mut Args) -> bool {
        self.client.info.last_ms.store(now_ms(), Relaxed);
        if let Some((name, instead)) = refused(args.get(0)) {
            self.server.stats.commands_processed.fetch_add(1, Relaxed);
            self.server.stats.error_replies.fetch_add(1, Relaxed);
            out.error(&format!("ERR {} is not available in-process: {instead}", name.to_uppercase()));
            return false;
        }
        let (blocked, run) = run_command(&self.server, &mut self.client, out, args);
        if let Some((queue, request)) = run {
            queue.push(request);
        }
        blocked
    }

    /// Blocks the calling thread until the command that blocked has its reply, and appends it to
    /// `out` (as `Session::resume` does for a connection).
    pub fn wait(&mut self, out: &mut Out) {
        loop {
            let reply = self.slot.wait();
            // store mode: the keys an AI command needs have arrived, it runs now (and may block again)
            if self.client.store_wait.is_some() {
                if let Some(store) = self.server.store.get().cloned() {
                    let (blocked, run) = crate::store::ai::resume(&self.server, &store, &mut self.client, out);
                    if let Some((queue, request)) = run {
                        queue.push(request);
                    }
                    if blocked {
                        continue;
                    }
                    return;
                }
            }
            if reply.first() == Some(&b'-') {
                self.server.stats.error_replies.fetch_add(1, Relaxed);
            }
            out.raw(&reply);
            return;
        }
    }

    /// Whether `flush_log` will fsync (`appendfsync always` with unsynced changes).
    pub fn flush_will_sync(&self) -> bool {
        self.server.persist.reply_must_wait()
    }

    /// Writes what the last command appended to the AOF (and fsyncs it with `appendfsync
    /// always`) before its reply is handed over, as the event loop does before it writes replies.
    pub fn flush_log(&self) {
        self.server.persist.flush_for_reply();
    }
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        let id = self.client.info.id;
        self.client.cancel.store(true, Relaxed);
        self.server.exec.completions.unregister_direct(id);
        self.server.unregister_client(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::exec::HostJob;
    use crate::resp::Arg;

    fn run(c: &mut LocalClient, argv: &[&[u8]]) -> (bool, Vec<u8>) {
        let mut items: Vec<Arg> = argv.iter().map(|a| Arg::Inline(a.to_vec())).collect();
        let mut args = Args::new(&[], &mut items);
        let mut out = Out::new(false);
        let blocked = c.start(&mut out, &mut args);
        (blocked, out.to_vec())
    }

    #[test]
    fn runs_commands_like_a_connection() {
        let server = Server::new(Config::default(), || 0);
        let mut c = LocalClient::new(&server).expect("a client");
        assert_eq!(run(&mut c, &[b"SET", b"k", b"v"]), (false, b"+OK\r\n".to_vec()));
        assert_eq!(run(&mut c, &[b"GET", b"k"]), (false, b"$1\r\nv\r\n".to_vec()));
        assert_eq!(run(&mut c, &[b"LPUSH", b"k", b"x"]).1, b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        assert_eq!(run(&mut c, &[b"CLIENT", b"ID"]).1, format!(":{}\r\n", c.id()).into_bytes());
        assert_eq!(server.client_count(), 1);
        drop(c);
        assert_eq!(server.client_count(), 0);
    }

    #[test]
    fn a_sharing_output_carries_the_stored_tensor() {
        let server = Server::new(Config::default(), || 0);
        let mut c = LocalClient::new(&server).expect("a client");
        for n in [16usize, 64 << 10] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let len = n.to_string();
            let mut items = vec![Arg::Inline(b"AI.TENSORSET".to_vec()), Arg::Inline(b"t".to_vec()), Arg::Inline(b"UINT8".to_vec()),
                                 Arg::Inline(len.clone().into_bytes()), Arg::Inline(b"BLOB".to_vec()), Arg::Inline(data.clone())];
            let mut out = Out::new(false);
            assert!(!c.start(&mut out, &mut Args::new(&[], &mut items)));
            let mut out = Out::sharing_all(false);
            let mut items: Vec<Arg> = [&b"AI.TENSORGET"[..], b"t", b"BLOB"].iter().map(|a| Arg::Inline(a.to_vec())).collect();
            assert!(!c.start(&mut out, &mut Args::new(&[], &mut items)));
            let segs = out.take();
            let Some(crate::resp::Segment::Tensor(t)) = segs.get(1) else { panic!("no tensor segment for {n} bytes") };
            let stored = match server.ks.lock().get(b"t", now_ms()) {
                Some(crate::keyspace::Value::Tensor(s)) => s.bytes().as_ptr(),
                _ => panic!("no tensor stored"),
            };
            assert_eq!(t.bytes().as_ptr(), stored);
            let wire: Vec<u8> = segs.iter().flat_map(|s| s.as_slice().to_vec()).collect();
            assert_eq!(wire, [format!("${n}\r\n").as_bytes(), &data, b"\r\n"].concat());
        }
    }

    #[test]
    fn refuses_connection_state_commands() {
        let server = Server::new(Config::default(), || 0);
        let mut c = LocalClient::new(&server).expect("a client");
        let (_, reply) = run(&mut c, &[b"multi"]);
        assert_eq!(reply, b"-ERR MULTI is not available in-process: transactions need a connection of their own: use a network client\r\n");
        assert_eq!(run(&mut c, &[b"SHUTDOWN", b"NOSAVE"]).1, b"-ERR SHUTDOWN is not available in-process: close the database instead\r\n");
        assert!(server.shutdown.lock().is_none());
    }

    #[test]
    fn blocked_commands_reply_to_the_waiting_thread() {
        let server = Server::new(Config::default(), || 0);
        let mut c = LocalClient::new(&server).expect("a client");
        let host = server.clone();
        // a stand-in for the host's loader threads: it refuses every model
        let loader = std::thread::spawn(move || {
            if let Some(HostJob::LoadModel { spec, done }) = host.exec.host.next() {
                done(spec, Err("ERR no framework here".into()));
            }
        });
        let (blocked, reply) = run(&mut c, &[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"BLOB", b"xx"]);
        assert!(blocked);
        assert!(reply.is_empty());
        let mut out = Out::new(false);
        c.wait(&mut out);
        assert_eq!(out.to_vec(), b"-ERR no framework here\r\n");
        loader.join().expect("the loader thread");
        // the event loop's queue got nothing
        assert!(server.exec.completions.drain().is_empty());
    }

    #[test]
    fn shutdown_wakes_waiters() {
        let server = Server::new(Config::default(), || 0);
        let mut c = LocalClient::new(&server).expect("a client");
        let (blocked, _) = run(&mut c, &[b"AI.MODELSTORE", b"m", b"ONNX", b"CPU", b"BLOB", b"xx"]);
        assert!(blocked);
        server.exec.completions.close_direct();
        let mut out = Out::new(false);
        c.wait(&mut out);
        assert_eq!(out.to_vec(), b"-ERR the server is shutting down\r\n");
    }

    #[test]
    fn protected_mode_counts_in_process_clients_as_local() {
        let mut config = Config::default();
        config.set("protected-mode", "yes", true).expect("a valid option");
        config.set("maxclients", "1", true).expect("a valid option");
        let server = Server::new(config, || 0);
        let mut c = LocalClient::new(&server).expect("a local client");
        assert_eq!(run(&mut c, &[b"PING"]).1, b"+PONG\r\n");
        assert_eq!(LocalClient::new(&server).err(), Some("-ERR max number of clients reached\r\n"));
    }
}
