//! `amtsweg-load`: drives a realistic mix of citizens, case workers and payments against an Amtsweg instance at
//! fixed arrival rates (open loop: a slow server gets more requests in flight, as it would from real people) and
//! reports per operation throughput, latency percentiles and failures, and the server's CPU, memory, database pool
//! and job queue from its `/metrics`.
//!
//! `amtsweg-load --spawn target/release/amtsweg --preset city-peak --seconds 600` starts the instance itself on a
//! fresh data directory (SQLite, or `--database-url` for an empty PostgreSQL database); `--target URL` drives a
//! running one (see `--help` for what that instance needs).

mod actors;
mod instance;
mod receiver;
mod report;
mod scenarios;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::report::{Recorder, Sample};
use crate::scenarios::{Scenario, World};

#[derive(Debug, Parser)]
#[command(name = "amtsweg-load", about = "Load generator for Amtsweg", long_about = None)]
struct Args {
    /// Start this `amtsweg` binary on a fresh data directory and drive it (stopped at the end).
    #[arg(long, conflicts_with = "target")]
    spawn: Option<PathBuf>,
    /// With --spawn: the database (an empty PostgreSQL database); default SQLite in the fresh data directory.
    #[arg(long, requires = "spawn")]
    database_url: Option<String>,
    /// With --spawn: keep the instance's log (warnings and errors) here; its data directory is removed at the end.
    #[arg(long, requires = "spawn")]
    server_log: Option<PathBuf>,
    /// Drive a running instance at this base URL. It must write mails as files (no `mail.smtp`) into --mail-dir,
    /// allow the run's registrations and logins from one address (`account.auth_requests_per_minute`), use the
    /// payment simulator, let the administrator below in, and allow webhooks to 127.0.0.1
    /// (`integration.webhooks.allow`) for the webhook part of the report.
    #[arg(long)]
    target: Option<String>,
    /// With --target: where the instance writes mails (`{storage.data_dir}/mail`).
    #[arg(long)]
    mail_dir: Option<PathBuf>,
    #[arg(
        long,
        env = "AMTSWEG_LOAD_ADMIN_EMAIL",
        default_value = "admin@amtsweg.invalid"
    )]
    admin_email: String,
    #[arg(long, env = "AMTSWEG_LOAD_ADMIN_PASSWORD")]
    admin_password: Option<String>,
    /// The administrator's TOTP secret when it has enrolled already.
    #[arg(long, env = "AMTSWEG_LOAD_ADMIN_TOTP_SECRET")]
    admin_totp_secret: Option<String>,
    /// `metrics.token` of the instance, if set.
    #[arg(long, env = "AMTSWEG_LOAD_METRICS_TOKEN")]
    metrics_token: Option<String>,
    #[arg(long, value_enum, default_value_t = Preset::CityPeak)]
    preset: Preset,
    /// Multiplies every rate of the preset.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Sets one scenario's rate per second, e.g. `--rate apply=20` (browse, register, login, apply, pay, follow,
    /// casework, postfach, pull); repeatable.
    #[arg(long = "rate", value_name = "SCENARIO=PER_SECOND")]
    rates: Vec<String>,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Citizens prepared before the run (registered, verified, logged in).
    #[arg(long, default_value_t = 40)]
    citizens: usize,
    /// Case workers prepared before the run.
    #[arg(long, default_value_t = 2)]
    case_workers: usize,
    /// Scenarios of one kind in flight at most; beyond that an arrival is counted as `client_saturated`.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Also write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit with status 1 when any request failed.
    #[arg(long)]
    fail_on_error: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// A postal-vote peak of a city of 600–700 k (domain.md §7): about 1.5 applications a second, with the reading,
    /// logging in, paying, case work and Postfach around them.
    CityPeak,
    /// A slot release: a burst of submits to one procedure (about 17 a second) on top of a busy catalogue.
    FlashCrowd,
}

impl Preset {
    fn rates(self) -> BTreeMap<Scenario, f64> {
        let rates: &[(Scenario, f64)] = match self {
            Preset::CityPeak => &[
                (Scenario::Browse, 10.0),
                (Scenario::Register, 0.5),
                (Scenario::Login, 2.0),
                (Scenario::Apply, 1.0),
                (Scenario::Pay, 0.5),
                (Scenario::Follow, 3.0),
                (Scenario::Casework, 1.0),
                (Scenario::Postfach, 2.0),
                (Scenario::Pull, 1.0),
            ],
            Preset::FlashCrowd => &[
                (Scenario::Browse, 20.0),
                (Scenario::Login, 2.0),
                (Scenario::Apply, 17.0),
                (Scenario::Follow, 5.0),
                (Scenario::Casework, 2.0),
                (Scenario::Pull, 1.0),
            ],
        };
        rates.iter().copied().collect()
    }
}

fn rates(args: &Args) -> anyhow::Result<BTreeMap<Scenario, f64>> {
    let mut rates: BTreeMap<Scenario, f64> = args
        .preset
        .rates()
        .into_iter()
        .map(|(scenario, rate)| (scenario, rate * args.scale))
        .collect();
    for given in &args.rates {
        let (name, rate) = given
            .split_once('=')
            .ok_or_else(|| anyhow!("--rate {given}: expected SCENARIO=PER_SECOND"))?;
        let scenario =
            Scenario::parse(name).ok_or_else(|| anyhow!("--rate {given}: unknown scenario {name}"))?;
        let rate: f64 = rate.parse().with_context(|| format!("--rate {given}"))?;
        rates.insert(scenario, rate);
    }
    Ok(rates)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rates = rates(&args)?;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let instance = match (&args.spawn, &args.target) {
        (Some(binary), None) => Some(instance::Instance::start(binary, args.database_url.as_deref()).await?),
        (None, Some(_)) => None,
        _ => bail!("give --spawn BINARY or --target URL"),
    };
    let (base, mail_dir, admin_password) = match &instance {
        Some(instance) => (
            instance.base.clone(),
            instance.mail_dir(),
            Some(instance.admin_password.clone()),
        ),
        None => (
            args.target
                .clone()
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned(),
            args.mail_dir
                .clone()
                .ok_or_else(|| anyhow!("--target needs --mail-dir"))?,
            args.admin_password.clone(),
        ),
    };
    let outcome = drive(&args, rates, &run, &base, &mail_dir, admin_password).await;
    if let Some(instance) = instance {
        instance.stop(args.server_log.as_deref()).await;
    }
    let failed = outcome?;
    if args.fail_on_error && failed > 0 {
        bail!("{failed} requests failed");
    }
    Ok(())
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prepares the people, runs the mix, prints the report; answers the number of failed requests.
async fn drive(
    args: &Args,
    rates: BTreeMap<Scenario, f64>,
    run: &str,
    base: &str,
    mail_dir: &std::path::Path,
    admin_password: Option<String>,
) -> anyhow::Result<u64> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(512)
        .build()?;
    say(&format!(
        "preparing {} citizens and {} case workers at {base}",
        args.citizens, args.case_workers
    ));
    let prepared = Instant::now();
    let admin_password =
        admin_password.ok_or_else(|| anyhow!("the administrator's password is needed (--admin-password)"))?;
    let admin = actors::admin(
        &client,
        base,
        &args.admin_email,
        &admin_password,
        args.admin_totp_secret.clone(),
    )
    .await?;
    let workers = actors::case_workers(
        &client,
        base,
        &admin,
        scenarios::UNIT,
        run,
        args.case_workers.max(1),
    )
    .await?;
    let api_client = actors::api_client(
        &client,
        base,
        &admin,
        run,
        &["applications:read:hundesteuer-anmeldung"],
    )
    .await?;
    let (hook, deliveries) = receiver::start().await?;
    let subscribed = client
        .post(format!("{base}/api/v1/integration/subscriptions"))
        .bearer_auth(api_client.token())
        .json(&json!({"url": hook, "event_types": ["de.amtsweg.application.submitted.v1"]}))
        .send()
        .await?;
    let webhooks = subscribed.status().is_success();
    if !webhooks {
        say(&format!(
            "webhooks not measured: the subscription to {hook} was refused ({}; allow 127.0.0.1 in \
             integration.webhooks.allow)",
            subscribed.status()
        ));
    }
    let citizens = actors::citizens(&client, base, mail_dir, run, args.citizens.max(1)).await?;
    for citizen in &citizens {
        let consented = client
            .put(format!("{base}/api/v1/me/electronic-delivery"))
            .bearer_auth(citizen.token())
            .json(&json!({}))
            .send()
            .await?;
        if !consented.status().is_success() {
            bail!("consent to electronic delivery: {}", consented.status());
        }
    }
    say(&format!(
        "prepared in {:.1} s; running for {} s:",
        prepared.elapsed().as_secs_f64(),
        args.seconds
    ));
    for (scenario, rate) in &rates {
        say(&format!("  {:<10} {rate:>6.2}/s", scenario.name()));
    }

    let recorder = Arc::new(Recorder::default());
    let world = Arc::new(World {
        client: client.clone(),
        base: base.to_owned(),
        recorder: recorder.clone(),
        citizens,
        workers,
        run: run.to_owned(),
        counter: AtomicU64::new(0),
        api_client,
        cursor: std::sync::Mutex::new(None),
        dog_submits: AtomicU64::new(0),
    });
    let started = Instant::now();
    let duration = Duration::from_secs(args.seconds);
    let sampler = tokio::spawn(sample(
        client.clone(),
        base.to_owned(),
        args.metrics_token.clone(),
        started,
        duration,
    ));
    let mut arrivals = Vec::new();
    for (scenario, rate) in rates.into_iter().filter(|(_, rate)| *rate > 0.0) {
        let (world, slots) = (world.clone(), Arc::new(Semaphore::new(args.max_in_flight)));
        arrivals.push(tokio::spawn(async move {
            let gap = Duration::from_secs_f64(1.0 / rate);
            let mut playing = Vec::new();
            let mut n: u32 = 0;
            loop {
                let due = started + gap * n;
                if due.duration_since(started) >= duration {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                n += 1;
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    world
                        .recorder
                        .failure(scenario.name(), Duration::ZERO, "client_saturated".into());
                    continue;
                };
                let world = world.clone();
                playing.push(tokio::spawn(async move {
                    world.play(scenario).await;
                    drop(slot);
                }));
            }
            for play in playing {
                let _ = play.await;
            }
        }));
    }
    for arrival in arrivals {
        arrival.await?;
    }
    let elapsed = started.elapsed();
    let samples = sampler.await?;
    // Webhook deliveries: one per acknowledged dog-tax submit, given a moment to arrive.
    let submits = world.dog_submits.load(std::sync::atomic::Ordering::Relaxed);
    let waited = Instant::now();
    while webhooks && (deliveries.counts().0 as u64) < submits && waited.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (delivered, repeated) = deliveries.counts();
    let operations = recorder.summary(elapsed.min(duration.max(Duration::from_millis(1))));
    let server = report::server_summary(&samples);
    let mut out = std::io::stdout().lock();
    write!(out, "{}", report::table(&operations, server.as_ref(), elapsed))?;
    if webhooks {
        writeln!(
            out,
            "webhooks: {delivered} of {submits} submit events delivered ({repeated} more than once), {:.1} s after the run",
            waited.elapsed().as_secs_f64()
        )?;
    }
    if let Some(path) = &args.json {
        let report = json!({
            "preset": format!("{:?}", args.preset),
            "seconds": args.seconds,
            "elapsed_secs": elapsed.as_secs_f64(),
            "operations": operations,
            "server": server,
            "webhooks": webhooks.then(|| json!({"submits": submits, "delivered": delivered, "repeated": repeated})),
            "samples": samples,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    let undelivered = if webhooks {
        submits.saturating_sub(delivered as u64)
    } else {
        0
    };
    Ok(operations.iter().map(|op| op.failed).sum::<u64>() + undelivered)
}

/// Reads `/metrics` every second for the run.
async fn sample(
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    started: Instant,
    duration: Duration,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() <= duration {
        tick.tick().await;
        let mut request = client.get(format!("{base}/metrics"));
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let at = Instant::now();
        if let Ok(response) = request.send().await
            && let Ok(text) = response.text().await
        {
            samples.push(Sample::parse(&text, at, started));
        }
    }
    samples
}
