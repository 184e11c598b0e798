//! The `/metrics` text (OpenMetrics, through the `prometheus-client` crate): commands, models
//! and scripts, clients, keys, memory, persistence. Values are read from the server's own
//! counters at scrape time; nothing here runs per command.
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::ai::RunStats;
use crate::keyspace::Value;
use crate::server::Server;
use crate::stats::{bucket_le_us, Histogram};

/// A histogram read from one of our bucket sets; `scale` turns its unit (µs, requests) into the
/// exported one (seconds, requests).
struct Buckets<'a> {
    h: &'a Histogram,
    scale: f64,
}

impl Buckets<'_> {
    fn encode(&self, mut enc: MetricEncoder) -> std::fmt::Result {
        let (counts, sum) = self.h.snapshot();
        // the encoder makes the counts cumulative itself
        let le = |i: usize| match bucket_le_us(i) {
            f64::MAX => f64::MAX, // +Inf stays +Inf
            us => us * self.scale,
        };
        let buckets: Vec<(f64, u64)> = counts.iter().enumerate().map(|(i, &c)| (le(i), c)).collect();
        let total = counts.iter().sum();
        enc.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum as f64 * self.scale, total, &buckets, None)
    }
}

const US: f64 = 1e-6;

struct ServerCollector(Arc<Server>);

impl std::fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCollector")
    }
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, unit, g.metric_type())?)
}

/// What one model or script exports, with its labels.
struct Runnable {
    kind: &'static str,
    labels: Vec<(&'static str, String)>,
    stats: Arc<dyn AsRef<RunStats> + Send + Sync>,
}

struct ModelStats(Arc<crate::ai::Model>);
impl AsRef<RunStats> for ModelStats {
    fn as_ref(&self) -> &RunStats {
        &self.0.stats
    }
}
struct ScriptStats(Arc<crate::ai::Script>);
impl AsRef<RunStats> for ScriptStats {
    fn as_ref(&self) -> &RunStats {
        &self.0.stats
    }
}

impl Collector for ServerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.0;
        // ---- commands, by name
        let named: Vec<(String, &crate::stats::CommandStat)> = s
            .cmd_stats
            .by_id
            .iter()
            .enumerate()
            .filter(|(_, st)| st.calls() + st.rejected.load(Relaxed) > 0)
            .map(|(id, st)| (crate::commands::id_name(id), st))
            .collect();
        {
            let mut m = enc.encode_descriptor("redisai_fast_commands", "Commands run, by command", None, MetricType::Counter)?;
            for (name, st) in &named {
                ConstCounter::new(st.calls()).encode(m.encode_family(&[("cmd", name.as_str())])?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "redisai_fast_command_errors",
                "Commands answered with an error (refused before running, or failed), by command",
                None,
                MetricType::Counter,
            )?;
            for (name, st) in &named {
                let v = st.rejected.load(Relaxed) + st.failed.load(Relaxed);
                ConstCounter::new(v).encode(m.encode_family(&[("cmd", name.as_str())])?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "redisai_fast_command_duration",
                "Time to run a command (the handler, under the keyspace lock), by command",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (name, st) in &named {
                Buckets { h: &st.latency, scale: US }.encode(m.encode_family(&[("cmd", name.as_str())])?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor("redisai_fast_error_replies", "Error replies, by error code", None, MetricType::Counter)?;
            for (code, n) in s.cmd_stats.errors() {
                ConstCounter::new(n).encode(m.encode_family(&[("code", code.as_str())])?)?;
            }
        }
        // ---- keys, models, scripts (one pass over the keyspace under its lock)
        let (mut tensors, mut models, mut scripts, mut strings, mut hashes, mut lists) = (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
        let mut runnables: Vec<Runnable> = Vec::new();
        {
            let ks = s.ks.lock();
            for (key, value, _) in ks.iter() {
                let key = String::from_utf8_lossy(key).into_owned();
                match value {
                    Value::Tensor(_) => tensors += 1,
                    Value::Model(m) => {
                        models += 1;
                        runnables.push(Runnable {
                            kind: "model",
                            labels: vec![("key", key), ("backend", m.spec.backend.name().to_string()), ("device", m.spec.device.clone())],
                            stats: Arc::new(ModelStats(m.clone())),
                        });
                    }
                    Value::Script(sc) => {
                        scripts += 1;
                        runnables.push(Runnable {
                            kind: "script",
                            labels: vec![("key", key), ("device", sc.spec.device.clone())],
                            stats: Arc::new(ScriptStats(sc.clone())),
                        });
                    }
                    Value::Str(_) => strings += 1,
                    Value::Hash(_) => hashes += 1,
                    Value::List(_) => lists += 1,
                }
            }
        }
        {
            let mut m = enc.encode_descriptor("redisai_fast_keys", "Keys, by value type", None, MetricType::Gauge)?;
            for (t, n) in [("tensor", tensors), ("model", models), ("script", scripts), ("string", strings), ("hash", hashes), ("list", lists)] {
                ConstGauge::new(n).encode(m.encode_family(&[("type", t)])?)?;
            }
        }
        for kind in ["model", "script"] {
            let mine: Vec<&Runnable> = runnables.iter().filter(|r| r.kind == kind).collect();
            let name = |what: &str| format!("redisai_fast_{kind}_{what}");
            {
                let n = name("runs");
                let mut m = enc.encode_descriptor(&n, "Framework calls (a batch is one call)", None, MetricType::Counter)?;
                for r in &mine {
                    ConstCounter::new((*r.stats).as_ref().runs.load(Relaxed)).encode(m.encode_family(&r.labels)?)?;
                }
            }
            {
                let n = name("requests");
                let mut m = enc.encode_descriptor(&n, "Requests answered (one per client command)", None, MetricType::Counter)?;
                for r in &mine {
                    ConstCounter::new((*r.stats).as_ref().metrics.requests.load(Relaxed)).encode(m.encode_family(&r.labels)?)?;
                }
            }
            {
                let n = name("errors");
                let mut m = enc.encode_descriptor(&n, "Requests answered with an error", None, MetricType::Counter)?;
                for r in &mine {
                    ConstCounter::new((*r.stats).as_ref().metrics.errors.load(Relaxed)).encode(m.encode_family(&r.labels)?)?;
                }
            }
            {
                let n = name("batch_size");
                let mut m = enc.encode_descriptor(&n, "Requests per framework call", None, MetricType::Histogram)?;
                for r in &mine {
                    Buckets { h: &(*r.stats).as_ref().metrics.batch_size, scale: 1.0 }.encode(m.encode_family(&r.labels)?)?;
                }
            }
            {
                let n = name("queue_wait");
                let mut m = enc.encode_descriptor(&n, "Time a request waited before its run started", Some(&Unit::Seconds), MetricType::Histogram)?;
                for r in &mine {
                    Buckets { h: &(*r.stats).as_ref().metrics.queue_wait_us, scale: US }.encode(m.encode_family(&r.labels)?)?;
                }
            }
            {
                let n = name("run_duration");
                let mut m = enc.encode_descriptor(&n, "Time of one framework call", Some(&Unit::Seconds), MetricType::Histogram)?;
                for r in &mine {
                    Buckets { h: &(*r.stats).as_ref().metrics.run_us, scale: US }.encode(m.encode_family(&r.labels)?)?;
                }
            }
        }
        // ---- clients, memory, persistence
        let clients = s.clients();
        let blocked = clients.iter().filter(|c| c.blocked.load(Relaxed)).count();
        gauge(&mut enc, "redisai_fast_connected_clients", "Client connections", None, clients.len() as i64)?;
        gauge(&mut enc, "redisai_fast_blocked_clients", "Clients waiting for a model, script or DAG run", None, blocked as i64)?;
        counter(&mut enc, "redisai_fast_connections_received", "Connections accepted", s.stats.connections_received.load(Relaxed))?;
        counter(&mut enc, "redisai_fast_rejected_connections", "Connections refused (maxclients)", s.stats.rejected_connections.load(Relaxed))?;
        counter(&mut enc, "redisai_fast_net_input", "Bytes read from clients", s.stats.net_input_bytes.load(Relaxed))?;
        counter(&mut enc, "redisai_fast_net_output", "Bytes written to clients", s.stats.net_output_bytes.load(Relaxed))?;
        let used = s.used_memory() as i64;
        gauge(&mut enc, "redisai_fast_memory_used", "Bytes allocated by the server's core", Some(&Unit::Bytes), used)?;
        gauge(&mut enc, "redisai_fast_memory_peak", "Largest memory_used seen", Some(&Unit::Bytes), s.peak_memory() as i64)?;
        gauge(&mut enc, "redisai_fast_memory_max", "maxmemory (0 = no limit)", Some(&Unit::Bytes), s.config.read().maxmemory() as i64)?;
        let ks_stats = s.ks.lock().stats;
        counter(&mut enc, "redisai_fast_expired_keys", "Keys deleted because their TTL passed", ks_stats.expired)?;
        counter(&mut enc, "redisai_fast_evicted_keys", "Keys evicted to stay under maxmemory (maxmemory-policy)", ks_stats.evicted)?;
        let p = &s.persist;
        gauge(&mut enc, "redisai_fast_last_save_timestamp", "Unix time of the last successful snapshot", Some(&Unit::Seconds), p.last_save.load(Relaxed) as i64)?;
        gauge(&mut enc, "redisai_fast_bgsave_in_progress", "1 while a snapshot is written", None, p.bgsave_running.load(Relaxed) as i64)?;
        gauge(&mut enc, "redisai_fast_aof_enabled", "1 when the append-only log is on", None, p.aof_enabled() as i64)?;
        gauge(&mut enc, "redisai_fast_aof_size", "Size of the append-only log", Some(&Unit::Bytes), p.aof_size() as i64)?;
        {
            let m = enc.encode_descriptor("redisai_fast_aof_fsync_duration", "Time of one fsync of the append-only log", Some(&Unit::Seconds), MetricType::Histogram)?;
            Buckets { h: &crate::persist::aof::FSYNC_US, scale: US }.encode(m)?;
        }
        if let Some(store) = s.store.get() {
            // store mode: the link to the Valkey/Redis deployment that holds the keys
            let c = &store.client;
            let st = &c.stats;
            let topo = c.topology();
            gauge(&mut enc, "redisai_fast_store_link_up", "1 while every link to the store is up", None, c.links_up() as i64)?;
            gauge(&mut enc, "redisai_fast_store_shards", "Shards of the store", None, topo.shards.len() as i64)?;
            gauge(&mut enc, "redisai_fast_store_uncovered_slots", "Hash slots no shard serves", None, topo.uncovered() as i64)?;
            counter(&mut enc, "redisai_fast_store_requests", "Requests sent to the store", st.requests.load(Relaxed))?;
            counter(&mut enc, "redisai_fast_store_redirects", "MOVED and ASK redirections followed", st.moved.load(Relaxed) + st.asks.load(Relaxed))?;
            counter(&mut enc, "redisai_fast_store_link_errors", "Store requests that failed on a broken link", st.link_errors.load(Relaxed))?;
            counter(&mut enc, "redisai_fast_store_cache_hits", "Compiled models and scripts reused from the node's cache", st.cache_hits.load(Relaxed))?;
            counter(&mut enc, "redisai_fast_store_cache_misses", "Models and scripts compiled anew from the store", st.cache_misses.load(Relaxed))?;
        }
        counter(&mut enc, "redisai_fast_acl_denials", "Commands, keys and AUTH attempts refused by ACL rules (ACL LOG entries, counted)", s.acl.read().log.iter().map(|e| e.count).sum())?;
        Ok(())
    }
}

/// The metrics text a scrape of `/metrics` answers (OpenMetrics, ending in `# EOF`).
pub fn render(server: &Arc<Server>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ServerCollector(server.clone())));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        text = "# EOF\n".into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics() {
        let s = Server::new(crate::config::Config::default(), || 0);
        s.cmd_stats.record(0, 3, false);
        let t = render(&s);
        assert!(t.contains("# TYPE redisai_fast_commands counter"), "{t}");
        assert!(t.contains("redisai_fast_commands_total{cmd=\"ping\"} 1"), "{t}");
        assert!(t.contains("redisai_fast_command_duration_seconds_bucket{le=\"0.000004\",cmd=\"ping\"} 1"), "{t}");
        assert!(t.contains("redisai_fast_command_duration_seconds_bucket{le=\"0.000002\",cmd=\"ping\"} 0"), "{t}");
        assert!(t.contains("redisai_fast_command_duration_seconds_count{cmd=\"ping\"} 1"), "{t}");
        assert!(t.ends_with("# EOF\n"));
    }
}
