//! `v1-loadgen`: drives running services the way browsers do and measures end-to-end
//! latency. It starts nothing itself, and links neither service: it speaks the wire
//! format (`shared-protocol`) over HTTP and WebSocket, as a browser would.
//!
//! Per session: `POST /api/sessions` on the relay, a subscriber on the relay's
//! `/ws/subscribe`, and a browser connection to the simulation-service's `/ws` that sends
//! a `stimulus` (an image data URL) every 1/fps seconds. End-to-end latency is the time
//! from sending a stimulus to receiving its `reconstructed_image` on the subscriber:
//! decoding, both networks, JPEG encoding and both hops. A frame that never comes back
//! within the grace period after the run is lost.
//!
//! With `--sweep 1,2,4,8` it runs each session count in turn and reports the largest that
//! holds the frame rate (at least 98% of frames back, none lost) with p99 under
//! `--p99-limit-ms`. Output: one JSON object per run on stdout, then a summary.
//!
//! `--population wide` sends every frame to the wide-field model (`"population":"wide"`,
//! which needs both services started with `--wide-model`, checked on their `/healthz`
//! before the first run) and `--trial single` asks for single-trial responses; at their
//! defaults (`pvc1`, `mean`) the fields are left out, so the frames are byte for byte
//! those of a browser that never names them. Every run and the summary say which
//! population and trial mode were measured, and a reconstruction that comes back for
//! another population counts as an error, not as a frame received.
//!
//! `--watch-pid` names the service processes: each run then reports their CPU time per
//! frame and their peak resident memory (VmHWM, and the largest VmRSS sampled each second)
//! next to the lost frames and latency percentiles, and the load average at the end.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use shared_protocol::{DataUrl, ImageKind, Population, Trial};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
#[command(name = "v1-loadgen", about = "Drives running relay and simulation services with N sessions and reports latency")]
struct Args {
    /// The relay's address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    relay: SocketAddr,
    /// The simulation-service's address (host:port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    sim: SocketAddr,
    /// Concurrent sessions (ignored with --sweep).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Session counts to run in turn, e.g. 1,2,4,8,12.
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// Frames per second per session.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Seconds of sending per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of sending before measuring (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds to wait for the last frames after sending stops.
    #[arg(long, default_value_t = 3.0)]
    grace: f64,
    /// Width and height of the JPEG each stimulus carries (a webcam-like frame).
    #[arg(long, default_value_t = 320)]
    width: u32,
    #[arg(long, default_value_t = 240)]
    height: u32,
    /// The p99 bound a run must stay under to count as held.
    #[arg(long, default_value_t = 100.0)]
    p99_limit_ms: f64,
    /// A process to watch (repeatable): each run reports its CPU time per frame sent and
    /// its peak resident memory (VmHWM and the largest VmRSS sampled every second, from
    /// /proc), e.g. the services' PIDs.
    #[arg(long = "watch-pid")]
    watch_pids: Vec<u32>,
    /// Spread sessions round-robin over `RELAY=SIM` pairs (comma-separated) instead of
    /// --relay/--sim: session i is created and subscribed on pair i's relay and sends its
    /// stimuli to pair i's simulation-service. For relays sharing a Redis session store,
    /// pair each relay with a simulation-service that sends to another relay, so every
    /// image crosses relays.
    #[arg(long, value_delimiter = ',', value_parser = parse_pair)]
    spread: Vec<(SocketAddr, SocketAddr)>,
    /// Hostile clients beside the sessions (not measured): each sends a 4000x4000 16-bit
    /// RGBA PNG (small on the wire, 128 MB if decoded) at the sessions' frame rate on a
    /// connection of its own, reading the answers. The run shows what they cost the
    /// measured sessions; their answers are counted by type in `flood`.
    #[arg(long, default_value_t = 0)]
    flooders: usize,
    /// The population every frame asks for: pvc1 (the pvc-1 array, the default; the field
    /// is left out) or wide (the wide-field model over the whole 4:3 frame; both services
    /// need --wide-model).
    #[arg(long, default_value = "pvc1", value_parser = parse_population)]
    population: Population,
    /// What every response is: mean (the predicted mean counts, the default; the field is
    /// left out) or single (one Poisson draw per count, like a recorded trial).
    #[arg(long, default_value = "mean", value_parser = parse_trial)]
    trial: Trial,
}

fn parse_population(s: &str) -> Result<Population, String> {
    Population::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
        format!("{s:?} is not a population; use pvc1 (the pvc-1 array, the default) or wide (the wide-field population; both services need --wide-model)")
    })
}

fn parse_trial(s: &str) -> Result<Trial, String> {
    [Trial::Mean, Trial::Single].into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
        format!("{s:?} is not a trial mode; use mean (the predicted mean counts, the default) or single (one Poisson draw per count)")
    })
}

/// The optional fields every stimulus ends with: empty at the defaults, so that those
/// frames are exactly what a browser that never names a population or trial sends.
fn stimulus_extra(population: Population, trial: Trial) -> String {
    let mut extra = String::new();
    if population != Population::default() {
        extra.push_str(&format!(r#","population":"{population}""#));
    }
    if trial != Trial::default() {
        extra.push_str(&format!(r#","trial":"{}""#, trial.as_str()));
    }
    extra
}

/// One `stimulus` message; `extra` comes from [`stimulus_extra`].
fn stimulus_message(session: &str, token: &str, frame_id: u64, image: &str, extra: &str) -> String {
    format!(r#"{{"type":"stimulus","session_id":"{session}","token":"{token}","frame_id":{frame_id},"image":"{image}"{extra}}}"#)
}

/// The population a `reconstructed_image` names (absent meaning pvc1).
fn reply_population(v: &Value) -> &str {
    v["population"].as_str().unwrap_or(Population::Pvc1.as_str())
}

/// The wide-field model takes the whole frame, so its frames must have the 4:3 shape of
/// the movie frames it was trained on.
fn check_frame_shape(population: Population, width: u32, height: u32) -> anyhow::Result<()> {
    if population == Population::Wide && u64::from(width) * 3 != u64::from(height) * 4 {
        bail!("--population wide needs 4:3 frames (the wide-field model takes the whole frame), got --width {width} --height {height}; use e.g. --width 320 --height 240");
    }
    Ok(())
}

fn parse_pair(s: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let (relay, sim) = s.split_once('=').ok_or_else(|| format!("{s:?} is not RELAY=SIM (host:port=host:port)"))?;
    let addr = |a: &str| a.trim().parse::<SocketAddr>().map_err(|e| format!("{a:?} in {s:?}: {e}"));
    Ok((addr(relay)?, addr(sim)?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.fps == 0 || args.fps > 30 {
        bail!("--fps must be between 1 and 30 (the protocol's stream rates)");
    }
    if !(args.duration > 0.0 && args.duration <= 600.0) {
        bail!("--duration must be between 0 and 600 seconds");
    }
    for &pid in &args.watch_pids {
        if proc_status(pid).is_none() {
            bail!("--watch-pid {pid}: no such process (or /proc/{pid}/status is unreadable)");
        }
    }
    check_frame_shape(args.population, args.width, args.height)?;
    if args.population == Population::Wide {
        let pairs = if args.spread.is_empty() { vec![(args.relay, args.sim)] } else { args.spread.clone() };
        for (relay, sim) in pairs {
            check_wide_model(relay, sim).await?;
        }
    }
    let image = Arc::new(test_image(args.width, args.height)?);
    let flood_image = if args.flooders > 0 { Some(Arc::new(flood_image())) } else { None };
    let counts = if args.sweep.is_empty() { vec![args.sessions] } else { args.sweep.clone() };
    let mut results = Vec::new();
    for n in counts {
        if n == 0 || n > 256 {
            bail!("session counts must be between 1 and 256, got {n}");
        }
        let r = run(&args, n, image.clone(), flood_image.clone()).await?;
        println!("{}", serde_json::to_string(&r)?);
        eprintln!(
            "{n:>3} sessions ({} {}): sent {:>6} received {:>6} lost {:>4} errors {:>3} | p50 {:>6.1} ms p99 {:>6.1} ms | {:>5.1} fps/session | {}",
            args.population,
            args.trial.as_str(),
            r["sent"],
            r["received"],
            r["lost"],
            r["errors"],
            r["latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
            r["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
            r["fps_per_session"].as_f64().unwrap_or(0.0),
            if r["held"].as_bool() == Some(true) { "held" } else { "NOT held" },
        );
        for p in r["processes"].as_array().into_iter().flatten() {
            eprintln!(
                "      {} (pid {}): CPU {} ms per frame; peak RSS {} MB (VmHWM), largest sampled {} MB, at the end {} MB",
                p["name"].as_str().unwrap_or("?"),
                p["pid"],
                p["cpu_ms_per_frame"],
                p["peak_rss_mb"],
                p["max_sampled_rss_mb"],
                p["rss_mb_end"],
            );
        }
        let held = r["held"].as_bool() == Some(true);
        results.push(r);
        if !held && !args.sweep.is_empty() {
            break;
        }
    }
    let best = results.iter().filter(|r| r["held"].as_bool() == Some(true)).filter_map(|r| r["sessions"].as_u64()).max();
    let summary = json!({
        "summary": {
            "fps": args.fps,
            "image": format!("{}x{} JPEG", args.width, args.height),
            "population": args.population.as_str(),
            "trial": args.trial.as_str(),
            "p99_limit_ms": args.p99_limit_ms,
            "largest_sessions_held": best,
        }
    });
    println!("{}", serde_json::to_string(&summary)?);
    match best {
        Some(n) => eprintln!(
            "largest session count holding {} fps with p99 < {} ms (population {}, trial {}): {n}",
            args.fps,
            args.p99_limit_ms,
            args.population,
            args.trial.as_str()
        ),
        None => eprintln!(
            "no session count held {} fps with p99 < {} ms (population {}, trial {})",
            args.fps,
            args.p99_limit_ms,
            args.population,
            args.trial.as_str()
        ),
    }
    Ok(())
}

/// A webcam-like JPEG: a gradient with some texture.
fn test_image(w: u32, h: u32) -> anyhow::Result<String> {
    if w == 0 || h == 0 || w > 4096 || h > 4096 {
        bail!("--width/--height must be between 1 and 4096");
    }
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let t = ((x * 7 + y * 13) % 64) as u8;
        image::Rgb([(x * 255 / w) as u8 ^ t, (y * 255 / h) as u8, 128u8.wrapping_add(t)])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)?;
    Ok(DataUrl::encode(ImageKind::Jpeg, &bytes))
}

/// The flooders' image: 4000x4000 16-bit RGBA PNG in large flat tiles, so that it
/// compresses to a small data URL while claiming 128 MB of decoded pixels.
fn flood_image() -> String {
    let img = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(4000, 4000, |x, y| {
        image::Rgba([((x / 500) * 4000) as u16, ((y / 500) * 4000) as u16, 30_000, 65_535])
    });
    let mut bytes = Vec::new();
    // Writing a PNG into memory cannot fail for a valid buffer.
    let _ = image::DynamicImage::ImageRgba16(img).write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png);
    DataUrl::encode(ImageKind::Png, &bytes)
}

/// One flooder: its own session and `/ws` connection, `image` at `fps` until `stop_at`
/// (asking for the sessions' population and trial mode);
/// returns the answers it got by type (and error code).
async fn flood(relay: SocketAddr, sim: SocketAddr, image: Arc<String>, extra: String, fps: u32, start_at: Instant, stop_at: Instant) -> anyhow::Result<HashMap<String, u64>> {
    let (session, token) = new_session(relay).await?;
    let (browser, _) = tokio_tungstenite::connect_async(format!("ws://{sim}/ws")).await.context("connecting a flooder to /ws")?;
    let (mut to_sim, mut from_sim) = browser.split();
    let reader = tokio::spawn(async move {
        let mut answers: HashMap<String, u64> = HashMap::new();
        while let Some(Ok(m)) = from_sim.next().await {
            let Ok(text) = m.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else { continue };
            let key = format!("{}{}", v["type"].as_str().unwrap_or("?"), v["code"].as_str().map(|c| format!(":{c}")).unwrap_or_default());
            *answers.entry(key).or_default() += 1;
        }
        answers
    });
    let mut tick = tokio::time::interval_at(start_at.into(), Duration::from_secs_f64(1.0 / f64::from(fps)));
    let mut frame_id = 0u64;
    loop {
        tick.tick().await;
        if Instant::now() >= stop_at {
            break;
        }
        frame_id += 1;
        let text = stimulus_message(&session, &token, frame_id, &image, &extra);
        if to_sim.send(Message::Text(text.into())).await.is_err() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = to_sim.close().await;
    Ok(tokio::time::timeout(Duration::from_secs(10), reader).await.ok().and_then(Result::ok).unwrap_or_default())
}

/// Sent times of frames not yet back, per session.
type Pending = Arc<Mutex<HashMap<u64, Instant>>>;

#[derive(Default)]
struct Tally {
    sent: u64,
    /// Every stimulus sent, warm-up included (the CPU figures divide by it).
    sent_total: u64,
    received: u64,
    errors: u64,
    /// Reconstructions that came back for another population than the one asked for
    /// (also counted in `errors`).
    wrong_population: u64,
    latencies_ms: Vec<f64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

async fn run(args: &Args, n: usize, image: Arc<String>, flood_image: Option<Arc<String>>) -> anyhow::Result<Value> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (peaks, sampler) = watch(&args.watch_pids);
    let cpu_before: Vec<Option<f64>> = args.watch_pids.iter().map(|&pid| cpu_seconds(pid)).collect();
    let start_at = Instant::now() + Duration::from_millis(500);
    let measure_from = start_at + Duration::from_secs_f64(args.warmup);
    let stop_at = measure_from + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    let mut flooders = Vec::new();
    let extra = stimulus_extra(args.population, args.trial);
    let population = args.population.as_str();
    if let Some(flood_image) = &flood_image {
        for _ in 0..args.flooders {
            flooders.push(tokio::spawn(flood(args.relay, args.sim, flood_image.clone(), extra.clone(), args.fps, start_at, stop_at)));
        }
    }
    for i in 0..n {
        let (relay, sim) = if args.spread.is_empty() { (args.relay, args.sim) } else { args.spread[i % args.spread.len()] };
        let (session, token) = new_session(relay).await?;
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));

        let (mut sub, _) = tokio_tungstenite::connect_async(format!("ws://{relay}/ws/subscribe"))
            .await
            .context("connecting to the relay's /ws/subscribe")?;
        sub.send(Message::Text(json!({"type": "subscribe", "session_id": session, "token": token}).to_string().into()))
            .await?;
        let first = sub.next().await.ok_or_else(|| anyhow!("the relay closed the subscription"))??;
        if !first.to_text().unwrap_or_default().contains("\"subscribed\"") {
            bail!("subscribe failed: {first}");
        }
        let (browser, _) = tokio_tungstenite::connect_async(format!("ws://{sim}/ws"))
            .await
            .context("connecting to the simulation-service's /ws")?;
        let (mut to_sim, mut from_sim) = browser.split();

        // Subscriber: match reconstructions to their send times.
        let sub_pending = pending.clone();
        let sub_tally = tally.clone();
        let grace = stop_at + Duration::from_secs_f64(args.grace);
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(grace.into(), sub.next()).await {
                let Ok(text) = m.to_text() else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text) else { continue };
                if v["type"] == "reconstructed_image" {
                    let Some(f) = v["frame_id"].as_u64() else { continue };
                    if reply_population(&v) != population {
                        if lock(&sub_pending).remove(&f).is_some() {
                            let mut t = lock(&sub_tally);
                            t.errors += 1;
                            t.wrong_population += 1;
                        }
                        continue;
                    }
                    if let Some(sent) = lock(&sub_pending).remove(&f) {
                        let mut t = lock(&sub_tally);
                        t.received += 1;
                        t.latencies_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                } else if v["type"] == "error" {
                    lock(&sub_tally).errors += 1;
                }
                if Instant::now() > stop_at && lock(&sub_pending).is_empty() {
                    break;
                }
            }
        }));
        // Browser reader: count errors, drop responses.
        let read_tally = tally.clone();
        let read_pending = pending.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(grace.into(), from_sim.next()).await {
                let Ok(text) = m.to_text() else { continue };
                if text.starts_with("{\"type\":\"error\"") || text.contains("\"type\":\"error\"") {
                    if let Ok(v) = serde_json::from_str::<Value>(text) {
                        if let Some(f) = v["frame_id"].as_u64() {
                            lock(&read_pending).remove(&f);
                        }
                        eprintln!("simulation error: {}", v["message"]);
                    }
                    lock(&read_tally).errors += 1;
                }
            }
        }));
        // Sender: one stimulus per tick; only frames after the warm-up are measured.
        let period = Duration::from_secs_f64(1.0 / f64::from(args.fps));
        let send_tally = tally.clone();
        let image = image.clone();
        let extra = extra.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(start_at.into(), period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut frame_id = 0u64;
            loop {
                tick.tick().await;
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                frame_id += 1;
                let text = stimulus_message(&session, &token, frame_id, &image, &extra);
                let measured = now >= measure_from;
                if measured {
                    lock(&pending).insert(frame_id, Instant::now());
                }
                if to_sim.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                let mut t = lock(&send_tally);
                t.sent_total += 1;
                if measured {
                    t.sent += 1;
                }
            }
            // Keep the socket open until the grace period ends.
            tokio::time::sleep_until(grace.into()).await;
            let _ = to_sim.close().await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut flood_answers: HashMap<String, u64> = HashMap::new();
    for f in flooders {
        for (k, v) in f.await.map_err(|e| anyhow!("a flooder failed: {e}"))?? {
            *flood_answers.entry(k).or_default() += v;
        }
    }
    sampler.abort();
    let sent_total = lock(&tally).sent_total;
    let processes: Vec<Value> = lock(&peaks)
        .iter()
        .zip(&cpu_before)
        .map(|((pid, sampled_kb), before)| {
            let status = proc_status(*pid);
            // CPU time (user + system) the process spent during the run, per stimulus
            // sent (warm-up included; idle time costs next to nothing).
            let cpu_ms_per_frame = match (before, cpu_seconds(*pid)) {
                (Some(b), Some(a)) if sent_total > 0 => Some(((a - b) * 1000.0 / sent_total as f64 * 1000.0).round() / 1000.0),
                _ => None,
            };
            json!({
                "pid": pid,
                "name": std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_owned()).unwrap_or_default(),
                "peak_rss_mb": status.as_ref().and_then(|s| s.hwm_kb).map(kb_to_mb),
                "max_sampled_rss_mb": kb_to_mb(*sampled_kb),
                "rss_mb_end": status.as_ref().and_then(|s| s.rss_kb).map(kb_to_mb),
                "alive": status.is_some(),
                "cpu_ms_per_frame": cpu_ms_per_frame,
            })
        })
        .collect();
    let t = lock(&tally);
    let mut lat = t.latencies_ms.clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| -> Option<f64> {
        if lat.is_empty() {
            None
        } else {
            let i = ((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
            Some((lat[i] * 100.0).round() / 100.0)
        }
    };
    let lost = t.sent.saturating_sub(t.received);
    let fps_per_session = t.received as f64 / args.duration / n as f64;
    let p99 = pct(0.99);
    let held = lost == 0 && t.received as f64 >= 0.98 * t.sent as f64 && p99.is_some_and(|p| p < args.p99_limit_ms);
    Ok(json!({
        "sessions": n,
        "population": population,
        "trial": args.trial.as_str(),
        "fps_target": args.fps,
        "duration_s": args.duration,
        "sent": t.sent,
        "received": t.received,
        "lost": lost,
        "errors": t.errors,
        "wrong_population": t.wrong_population,
        "fps_per_session": (fps_per_session * 100.0).round() / 100.0,
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": p99, "max": lat.last().copied()},
        "held": held,
        "flooders": args.flooders,
        "flood": flood_answers,
        "processes": processes,
        "load_average": std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
    }))
}

/// The memory lines of `/proc/PID/status`, in kB; None when the process is gone.
struct ProcStatus {
    rss_kb: Option<u64>,
    hwm_kb: Option<u64>,
}

fn proc_status(pid: u32) -> Option<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(ProcStatus { rss_kb: field("VmRSS:"), hwm_kb: field("VmHWM:") })
}

/// User + system CPU seconds of a process so far (`/proc/PID/stat`, fields 14 and 15, in
/// clock ticks of 1/100 s, the value Linux reports as `USER_HZ`); None when it is gone.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it start past its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so fields 14 and 15 are at indices 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn kb_to_mb(kb: u64) -> f64 {
    (kb as f64 / 1024.0 * 10.0).round() / 10.0
}

/// (pid, largest VmRSS sampled in kB) of each watched process.
type Peaks = Arc<Mutex<Vec<(u32, u64)>>>;

/// Samples the watched processes' VmRSS every second, keeping the largest per PID.
fn watch(pids: &[u32]) -> (Peaks, tokio::task::JoinHandle<()>) {
    let peaks = Arc::new(Mutex::new(pids.iter().map(|&p| (p, 0u64)).collect::<Vec<_>>()));
    let shared = peaks.clone();
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            for (pid, peak) in lock(&shared).iter_mut() {
                if let Some(rss) = proc_status(*pid).and_then(|s| s.rss_kb) {
                    *peak = (*peak).max(rss);
                }
            }
        }
    });
    (peaks, handle)
}

/// `POST /api/sessions` on the relay (with the JSON content type it requires, and an
/// empty object as body).
async fn new_session(relay: SocketAddr) -> anyhow::Result<(String, String)> {
    let (status, v) = http_json(relay, "POST", "/api/sessions").await.with_context(|| format!("creating a session on the relay at {relay}"))?;
    if status != 201 {
        bail!("POST /api/sessions answered {status}: {v}");
    }
    let id = v["session_id"].as_str().ok_or_else(|| anyhow!("no session_id in {v}"))?;
    let token = v["token"].as_str().ok_or_else(|| anyhow!("no token in {v}"))?;
    Ok((id.to_owned(), token.to_owned()))
}

/// Checks on both services' `/healthz` that they run with the wide-field model
/// (`wide_model` is null without one), so that a wide run fails at once with what to do
/// instead of counting every frame as an error.
async fn check_wide_model(relay: SocketAddr, sim: SocketAddr) -> anyhow::Result<()> {
    for (name, addr) in [("relay-service", relay), ("simulation-service", sim)] {
        let (status, v) = http_json(addr, "GET", "/healthz")
            .await
            .with_context(|| format!("asking the {name} at {addr} whether it runs the wide-field model"))?;
        if status != 200 {
            bail!("GET /healthz on the {name} at {addr} answered {status}: {v}");
        }
        if v["wide_model"].is_null() {
            bail!("--population wide: the {name} at {addr} runs without the wide-field model; start it with --wide-model DIR (V1_WIDE_MODEL)");
        }
    }
    Ok(())
}

/// One HTTP/1 request with an empty JSON object as body (for POST); the status and the
/// body read as JSON (a body that is not JSON comes back as a JSON string).
async fn http_json(addr: SocketAddr, method: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<&'static [u8]>>(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut request = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    let body: &'static [u8] = if method == "POST" {
        request = request.header("content-type", "application/json");
        b"{}"
    } else {
        b""
    };
    let response = sender.send_request(request.body(Full::new(body))?).await.with_context(|| format!("{method} {path} on {addr}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::{decode, Message as Wire, SIMULATION};

    const SESSION: &str = "3f9c0a1b2c3d4e5f60718293a4b5c6d7";

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("v1-loadgen").chain(extra.iter().copied()))
    }

    #[test]
    fn defaults_are_pvc1_and_mean() -> anyhow::Result<()> {
        let args = parse(&[])?;
        assert_eq!(args.population, Population::Pvc1);
        assert_eq!(args.trial, Trial::Mean);
        Ok(())
    }

    #[test]
    fn default_frames_carry_neither_field_and_are_unchanged() {
        let extra = stimulus_extra(Population::Pvc1, Trial::Mean);
        assert_eq!(extra, "");
        let text = stimulus_message(SESSION, "tok", 7, "data:image/jpeg;base64,AAAA", &extra);
        assert_eq!(
            text,
            format!(r#"{{"type":"stimulus","session_id":"{SESSION}","token":"tok","frame_id":7,"image":"data:image/jpeg;base64,AAAA"}}"#)
        );
        assert!(!text.contains("population") && !text.contains("trial"));
    }

    #[test]
    fn wide_single_frames_name_both_and_decode_as_the_service_reads_them() -> anyhow::Result<()> {
        let args = parse(&["--population", "wide", "--trial", "single"])?;
        let extra = stimulus_extra(args.population, args.trial);
        let text = stimulus_message(SESSION, "tok", 3, "data:image/jpeg;base64,AAAA", &extra);
        assert!(text.contains(r#""population":"wide""#), "{text}");
        assert!(text.contains(r#""trial":"single""#), "{text}");
        match decode(&text, &SIMULATION)? {
            Wire::Stimulus(s) => {
                assert_eq!(s.population, Some(Population::Wide));
                assert_eq!(s.trial, Some(Trial::Single));
                assert_eq!(s.frame_id, Some(3));
            }
            other => panic!("decoded as {other:?}"),
        }
        // Each field alone.
        assert_eq!(stimulus_extra(Population::Wide, Trial::Mean), r#","population":"wide""#);
        assert_eq!(stimulus_extra(Population::Pvc1, Trial::Single), r#","trial":"single""#);
        Ok(())
    }

    #[test]
    fn unknown_values_are_refused_naming_the_value_and_the_valid_ones() {
        let Err(e) = parse(&["--population", "v4"]) else { panic!("--population v4 was accepted") };
        let msg = e.to_string();
        assert!(msg.contains("\"v4\" is not a population") && msg.contains("pvc1") && msg.contains("wide"), "{msg}");
        let Err(e) = parse(&["--trial", "many"]) else { panic!("--trial many was accepted") };
        let msg = e.to_string();
        assert!(msg.contains("\"many\" is not a trial mode") && msg.contains("mean") && msg.contains("single"), "{msg}");
        // The wire spellings only.
        assert!(parse(&["--population", "Wide"]).is_err());
        assert!(parse(&["--trial", ""]).is_err());
    }

    #[test]
    fn wide_frames_must_be_four_by_three() {
        assert!(check_frame_shape(Population::Wide, 320, 240).is_ok());
        assert!(check_frame_shape(Population::Wide, 640, 480).is_ok());
        let Err(e) = check_frame_shape(Population::Wide, 240, 240) else { panic!("a square wide frame was accepted") };
        assert!(e.to_string().contains("4:3"), "{e}");
        // The pvc-1 array's crop lies inside any frame.
        assert!(check_frame_shape(Population::Pvc1, 240, 240).is_ok());
    }

    #[test]
    fn a_reconstruction_without_population_is_pvc1() {
        assert_eq!(reply_population(&json!({"type": "reconstructed_image", "frame_id": 1})), "pvc1");
        assert_eq!(reply_population(&json!({"type": "reconstructed_image", "frame_id": 1, "population": "wide"})), "wide");
    }
}
