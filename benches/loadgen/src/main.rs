//! loadgen: drives a Redis-protocol server with SET/GET or AI.TENSORSET/AI.TENSORGET of a fixed
//! payload (or any fixed command: `--command "AI.MODELEXECUTE m INPUTS 1 x OUTPUTS 1 y"`) from N
//! connections with pipelining, and prints ops/s and latency percentiles as JSON.
//! Same load for redis-server and redisai-fast, so their ratio is meaningful.
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Opts {
    host: String,
    port: u16,
    clients: usize,
    pipeline: usize,
    requests: u64,
    op: String,
    size: usize,
    keyspace: u64,
    preload: bool,
    /// `--command`: the words of a fixed command sent instead of `op`.
    command: Option<Vec<u8>>,
}

fn parse() -> Opts {
    let mut o = Opts {
        host: "127.0.0.1".into(),
        port: 6379,
        clients: 1,
        pipeline: 1,
        requests: 1000,
        op: "set".into(),
        size: 4096,
        keyspace: 100,
        preload: false,
        command: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i + 1 < args.len() + 1 {
        let (k, v) = (args[i].as_str(), args.get(i + 1).cloned().unwrap_or_default());
        match k {
            "--host" => o.host = v,
            "--port" => o.port = v.parse().expect("port"),
            "--clients" => o.clients = v.parse().expect("clients"),
            "--pipeline" => o.pipeline = v.parse().expect("pipeline"),
            "--requests" => o.requests = v.parse().expect("requests"),
            "--op" => o.op = v,
            "--size" => o.size = v.parse().expect("size"),
            "--keyspace" => o.keyspace = v.parse().expect("keyspace"),
            "--command" => {
                let words: Vec<&str> = v.split_whitespace().collect();
                let mut c = format!("*{}\r\n", words.len()).into_bytes();
                for w in words {
                    bulk(&mut c, w.as_bytes());
                }
                o.command = Some(c);
            }
            "--preload" => {
                o.preload = true;
                i += 1;
                continue;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// The bytes of one request, except the payload (sent separately from a shared buffer).
fn request_head(op: &str, key: &[u8], size: usize) -> (Vec<u8>, bool) {
    let mut v = Vec::new();
    let write = match op {
        "set" => {
            v.extend_from_slice(b"*3\r\n");
            bulk(&mut v, b"SET");
            bulk(&mut v, key);
            true
        }
        "get" => {
            v.extend_from_slice(b"*2\r\n");
            bulk(&mut v, b"GET");
            bulk(&mut v, key);
            false
        }
        "tensorset" => {
            v.extend_from_slice(b"*6\r\n");
            bulk(&mut v, b"AI.TENSORSET");
            bulk(&mut v, key);
            bulk(&mut v, b"UINT8");
            bulk(&mut v, size.to_string().as_bytes());
            bulk(&mut v, b"BLOB");
            true
        }
        "tensorget" => {
            v.extend_from_slice(b"*3\r\n");
            bulk(&mut v, b"AI.TENSORGET");
            bulk(&mut v, key);
            bulk(&mut v, b"BLOB");
            false
        }
        other => panic!("unknown op {other}"),
    };
    if write {
        v.extend_from_slice(format!("${size}\r\n").as_bytes());
    }
    (v, write)
}

/// Reads one reply, discarding bulk payloads; returns an error message for `-` replies.
fn read_reply(r: &mut BufReader<TcpStream>, scratch: &mut [u8]) -> Result<(), String> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).map_err(|e| e.to_string())?;
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    match line.first() {
        Some(b'-') => Err(String::from_utf8_lossy(&line).into_owned()),
        Some(b'$') => {
            let n: i64 = std::str::from_utf8(&line[1..]).map_err(|e| e.to_string())?.parse().map_err(|e: std::num::ParseIntError| e.to_string())?;
            if n >= 0 {
                let mut left = n as usize + 2;
                while left > 0 {
                    let k = left.min(scratch.len());
                    r.read_exact(&mut scratch[..k]).map_err(|e| e.to_string())?;
                    left -= k;
                }
            }
            Ok(())
        }
        Some(b'*') => {
            let n: i64 = std::str::from_utf8(&line[1..]).map_err(|e| e.to_string())?.parse().map_err(|e: std::num::ParseIntError| e.to_string())?;
            for _ in 0..n.max(0) {
                read_reply(r, scratch)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn key_name(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

fn main() {
    let o = parse();
    // Pseudo-random bytes: nothing on either side gets to compress them (RDB's LZF would).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let payload: Arc<Vec<u8>> = Arc::new(
        (0..o.size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect(),
    );
    if o.preload {
        let set_op = if o.op == "tensorget" { "tensorset" } else { "set" };
        let s = TcpStream::connect((o.host.as_str(), o.port)).expect("connect");
        s.set_nodelay(true).ok();
        let mut w = s.try_clone().expect("clone");
        let mut r = BufReader::with_capacity(1 << 20, s);
        let mut scratch = vec![0u8; 1 << 20];
        for k in 0..o.keyspace {
            let (mut req, _) = request_head(set_op, &key_name(k), o.size);
            req.extend_from_slice(&payload);
            req.extend_from_slice(b"\r\n");
            w.write_all(&req).expect("write");
            read_reply(&mut r, &mut scratch).expect("preload reply");
        }
    }
    let issued = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..o.clients {
        let (issued, failed, latencies, payload) = (issued.clone(), failed.clone(), latencies.clone(), payload.clone());
        let (host, port, op, pipeline, requests, size, keyspace, command) =
            (o.host.clone(), o.port, o.op.clone(), o.pipeline, o.requests, o.size, o.keyspace, o.command.clone());
        handles.push(std::thread::spawn(move || {
            let s = TcpStream::connect((host.as_str(), port)).expect("connect");
            s.set_nodelay(true).ok();
            let mut w = s.try_clone().expect("clone");
            let mut r = BufReader::with_capacity(1 << 20, s);
            let mut scratch = vec![0u8; 1 << 20];
            let mut rng: u64 = 0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let mut lat = Vec::new();
            let mut batch = Vec::new();
            loop {
                let got = issued.fetch_add(pipeline as u64, Ordering::Relaxed);
                if got >= requests || failed.load(Ordering::Relaxed) {
                    break;
                }
                let n = pipeline.min((requests - got) as usize);
                let t0 = Instant::now();
                batch.clear();
                let mut writes = Vec::with_capacity(n);
                for _ in 0..n {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    writes.push(match &command {
                        Some(c) => (c.clone(), false),
                        None => request_head(&op, &key_name(rng % keyspace), size),
                    });
                }
                // writes happen on this thread while the server streams replies back into the socket buffer
                for (head, has_payload) in &writes {
                    if *has_payload {
                        batch.extend_from_slice(head);
                        if batch.len() + size > (1 << 20) {
                            w.write_all(&batch).expect("write");
                            batch.clear();
                            w.write_all(&payload).expect("write");
                        } else {
                            batch.extend_from_slice(&payload);
                        }
                        batch.extend_from_slice(b"\r\n");
                    } else {
                        batch.extend_from_slice(head);
                    }
                }
                w.write_all(&batch).expect("write");
                for _ in 0..n {
                    if let Err(e) = read_reply(&mut r, &mut scratch) {
                        eprintln!("error reply: {e}");
                        failed.store(true, Ordering::Relaxed);
                        return;
                    }
                }
                lat.push(t0.elapsed().as_nanos() as u64);
            }
            latencies.lock().expect("lock").extend(lat);
        }));
    }
    for h in handles {
        h.join().expect("client thread");
    }
    let elapsed = start.elapsed().max(Duration::from_nanos(1));
    if failed.load(Ordering::Relaxed) {
        std::process::exit(1);
    }
    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64 / 1000.0;
    let done = o.requests.min(issued.load(Ordering::Relaxed));
    println!(
        "{{\"ops_per_sec\": {:.1}, \"requests\": {}, \"seconds\": {:.3}, \"batch_p50_us\": {:.1}, \"batch_p99_us\": {:.1}}}",
        done as f64 / elapsed.as_secs_f64(),
        done,
        elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
}
