//! `--mode calibrate`: how often the alarm rules raise a false alarm on drift-free streams,
//! and how soon they flag a known drift, measured through the real pipeline (API, Redis,
//! workers) on references drawn from a known population model.
//!
//! Why a model and not the real reference: the rows of a "no drift" stream must come from
//! the population the reference was sampled from. Streaming the copula fitted to the real
//! reference against that same reference compares the reference with itself, smoothed, and
//! hides most false alarms (see README, "How rows are drawn"). Here ONE population model is
//! built from the embedded data ([`Copula::fit_population`]); every reference (569 rows,
//! like the real one) and every stream is a fresh draw from that model, so reference and
//! window really are two samples of one population, as the alarm's guarantee assumes.
//!
//! Each reference is registered once per rule (`cal-<rule>-<i>`), and both rules get the
//! same rows (a paired comparison). A stream sends one stride of rows, then waits (polling
//! the monitor's history) until that boundary is evaluated on every feature before the
//! next, so no job goes stale; all monitors run at once so the workers stay busy.

use crate::cli::{Args, ProgressMode};
use crate::copula::Copula;
use crate::generator::Generator;
use crate::scenario::{DriftKind, Scenario, SwapValues};
use crate::target::{error_chain, error_code, error_message, fetch_json, Target, HISTORY_PAGE};
use anyhow::{anyhow, bail, Context};
use drift_contract::{
    ErrorCode, Frame, IngestAccepted, MonitorView, PutMonitorAnswer, PutMonitorQuery,
};
use drift_core::{Correction, Dataset};
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Prefix of every monitor this mode creates (and deletes).
pub const MONITOR_PREFIX: &str = "cal";

/// Seed streams, mixed with the run's seed: references, no-drift streams, detection streams.
const REFERENCE_STREAM: u64 = 1;
const NO_DRIFT_STREAM: u64 = 2;
const DETECTION_STREAM: u64 = 3;

/// One kind of drift measured by the detection part.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DriftCase {
    pub kind: DriftKind,
    /// Shift in reference sd, or scale factor − 1 (as [`Scenario`] takes it).
    pub magnitude: f64,
}

impl DriftCase {
    /// "shift 0.25 sd", "scale x1.5".
    pub fn label(&self) -> String {
        match self.kind {
            DriftKind::Scale => format!("scale x{}", 1.0 + self.magnitude),
            _ => format!("shift {} sd", self.magnitude),
        }
    }

    /// Part of a monitor name: "shift0.25", "scale1.5".
    fn slug(&self) -> String {
        match self.kind {
            DriftKind::Scale => format!("scale{}", 1.0 + self.magnitude),
            _ => format!("shift{}", self.magnitude),
        }
    }
}

/// What the run does, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub target: String,
    pub seed: u64,
    pub references: u64,
    /// Rows of each drawn reference (the real reference's size).
    pub reference_rows: usize,
    pub features: usize,
    pub rules: Vec<Correction>,
    pub window: u64,
    pub stride: u64,
    /// Rows sent before the first counted round (one window).
    pub warmup_rows: u64,
    /// No-drift rounds per reference.
    pub rounds: u64,
    /// `None`: the API's default.
    pub ert: Option<f64>,
    pub alpha: Option<f64>,
    pub reference_confidence: Option<f64>,
    pub drift_features: Vec<String>,
    pub cases: Vec<DriftCase>,
    pub detect_runs: u64,
    pub max_delay_rows: u64,
    pub round_timeout_seconds: f64,
}

/// The whole result.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub command: String,
    pub plan: Plan,
    /// The API's parameters of each rule, as registered (defaults filled in).
    pub rules: Vec<RuleParams>,
    pub no_drift: Vec<NoDriftReport>,
    pub detection: Vec<DetectionReport>,
    pub elapsed_seconds: f64,
    /// Calibration monitors that could not be deleted at the end.
    pub cleanup_errors: Vec<String>,
}

/// A rule's parameters and thresholds as the API registered them.
#[derive(Clone, Debug, Serialize)]
pub struct RuleParams {
    pub rule: Correction,
    pub alpha: f64,
    pub ert: f64,
    pub reference_confidence: f64,
    /// `ert`: the smallest and largest KS-statistic threshold over features and references.
    pub statistic_threshold_min: Option<f64>,
    pub statistic_threshold_max: Option<f64>,
    /// Local per-evaluation rules: the p-value at or below which a feature is flagged.
    pub p_value_threshold: Option<f64>,
}

/// No-drift false alarms of one rule over every reference.
#[derive(Clone, Debug, Serialize)]
pub struct NoDriftReport {
    pub rule: Correction,
    pub streams: u64,
    pub rounds_planned: u64,
    pub rounds_evaluated: u64,
    /// Rounds in which at least one feature was flagged.
    pub false_alarm_rounds: u64,
    /// Streams (references) with at least one false-alarm round.
    pub streams_with_false_alarms: u64,
    /// Alarm episodes at the end, summed over features and streams (the warm-up boundary
    /// included).
    pub episodes: u64,
    /// False-alarm rounds per evaluated round.
    pub rate: f64,
    /// One-sided 95 % upper bound on the rate: the rule of three (3/n) with no false alarm,
    /// the exact Clopper-Pearson bound otherwise.
    pub rate_upper95: f64,
    pub rate_upper95_method: &'static str,
    /// The exact Clopper-Pearson bound, always.
    pub rate_upper95_exact: f64,
    /// 1 / `rate_upper95`: with 95 % confidence the mean number of rounds between false
    /// alarms is at least this.
    pub rounds_between_false_alarms_lower95: Option<f64>,
    /// `ert` only: the guarantee, evaluated rounds / ert false-alarm rounds in expectation.
    pub guaranteed_false_alarm_rounds: Option<f64>,
    /// Rounds in which each feature was flagged (features never flagged left out).
    pub flagged_rounds_by_feature: BTreeMap<String, u64>,
    /// Jobs the workers skipped as stale (0 when the pacing worked).
    pub stale_jobs: u64,
    pub per_stream: Vec<NoDriftStream>,
}

/// One no-drift stream.
#[derive(Clone, Debug, Serialize)]
pub struct NoDriftStream {
    pub reference: u64,
    pub rounds_evaluated: u64,
    pub false_alarm_rounds: u64,
    pub episodes: u64,
}

/// Detection of one drift case under one rule over the detection references.
#[derive(Clone, Debug, Serialize)]
pub struct DetectionReport {
    pub case: DriftCase,
    pub label: String,
    pub rule: Correction,
    pub runs: u64,
    pub detected: u64,
    /// Nearest-rank quantiles over all runs, undetected runs counting as longer than any
    /// delay; `None` when the quantile falls on an undetected run (more than
    /// `max_delay_rows`).
    pub median_delay_rows: Option<u64>,
    pub p90_delay_rows: Option<u64>,
    /// Each run's delay (drifted rows up to and including the first flagged boundary).
    pub delays_rows: Vec<Option<u64>>,
    /// Rounds after the onset evaluated, and those in which a feature that does not drift
    /// was flagged.
    pub rounds: u64,
    pub other_feature_flag_rounds: u64,
    pub rounds_not_evaluated: u64,
}

/// What one evaluated round showed: the indices (monitor feature order) of the flagged
/// features.
enum Round {
    Evaluated(Vec<usize>),
    NotEvaluated,
}

struct Ctx {
    target: Target,
    token: String,
    columns: Vec<String>,
    /// Column index of each feature name.
    index: HashMap<String, usize>,
    window: u64,
    stride: u64,
    round_timeout: Duration,
    rounds_done: AtomicU64,
}

/// A drawn reference: its CSV and each column's mean and sample sd.
struct Reference {
    csv: String,
    means: Vec<f64>,
    sds: Vec<f64>,
}

/// Runs the calibration against `args.target`; `command` is reported as given.
pub async fn run(args: Args, command: String) -> anyhow::Result<Calibration> {
    let started = Instant::now();
    let token = args
        .admin_token
        .clone()
        .filter(|t| !t.is_empty())
        .context("--mode calibrate registers its own monitors: give the API's admin token with --admin-token or DRIFT_ADMIN_TOKEN")?;
    let mut rules: Vec<Correction> = Vec::new();
    for r in &args.rules {
        if !rules.contains(r) {
            rules.push(*r);
        }
    }
    if rules.is_empty() {
        bail!("--rules names no rule");
    }
    if args.stride > args.window {
        bail!(
            "--stride {} is larger than --window {}",
            args.stride,
            args.window
        );
    }
    if args.reference.is_some() || !args.categorical.is_empty() || !args.numeric.is_empty() {
        bail!("--mode calibrate draws its references from the embedded breast_cancer model: --reference, --categorical and --numeric do not apply");
    }
    let dataset = Dataset::breast_cancer().context("loading the embedded data")?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let model = Copula::fit_population(&dataset, seed).context("fitting the population model")?;
    let names = model.names().to_vec();
    let mut drift_columns = Vec::new();
    for f in &args.drift_features {
        let i = names.iter().position(|n| n == f).with_context(|| {
            format!(
                "unknown drift feature {f:?} (features: {})",
                names.join(", ")
            )
        })?;
        if drift_columns.contains(&i) {
            bail!("--drift-features names {f:?} twice");
        }
        drift_columns.push(i);
    }
    let mut cases: Vec<DriftCase> = args
        .shifts
        .iter()
        .map(|&m| DriftCase {
            kind: DriftKind::Shift,
            magnitude: m,
        })
        .collect();
    if args.scale != 1.0 {
        cases.push(DriftCase {
            kind: DriftKind::Scale,
            magnitude: args.scale - 1.0,
        });
    }
    let detect_runs = args
        .detect_runs
        .unwrap_or(args.references)
        .min(args.references);
    let plan = Plan {
        target: args.target.to_string(),
        seed,
        references: args.references,
        reference_rows: dataset.n_rows(),
        features: names.len(),
        rules: rules.clone(),
        window: args.window,
        stride: args.stride,
        warmup_rows: args.window,
        rounds: args.rounds,
        ert: args.ert,
        alpha: args.alpha,
        reference_confidence: args.reference_confidence,
        drift_features: drift_columns.iter().map(|&i| names[i].clone()).collect(),
        cases,
        detect_runs,
        max_delay_rows: args.max_delay_rows,
        round_timeout_seconds: args.round_timeout,
    };
    let monitors = (plan.references as usize * rules.len()).max(1);
    let target = Target::new(
        args.target.clone(),
        Duration::from_secs_f64(args.timeout),
        monitors,
    )?;
    let ctx = Arc::new(Ctx {
        target,
        token,
        columns: names.clone(),
        index: names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
        window: args.window,
        stride: args.stride,
        round_timeout: Duration::from_secs_f64(args.round_timeout),
        rounds_done: AtomicU64::new(0),
    });
    let references: Vec<Reference> = (0..plan.references)
        .map(|i| draw_reference(&model, mix(seed, REFERENCE_STREAM, i), plan.reference_rows))
        .collect();

    // Every monitor name of the run, deleted first (a re-run starts clean) and at the end.
    let mut all_names = Vec::new();
    for rule in &rules {
        for i in 0..plan.references {
            all_names.push(no_drift_name(*rule, i));
            for case in &plan.cases {
                all_names.push(detection_name(*rule, i, case));
            }
        }
    }
    for name in &all_names {
        ctx.delete_monitor(name).await?;
    }

    let progress = spawn_progress(
        ctx.clone(),
        args.progress,
        Duration::from_secs_f64(args.progress_interval),
        plan.references * rules.len() as u64 * (plan.rounds + 1),
    );
    let outcome = measure(&ctx, &plan, &model, &references, &drift_columns).await;
    if let Some(p) = progress {
        p.abort();
    }
    let mut cleanup_errors = Vec::new();
    for name in &all_names {
        if let Err(e) = ctx.delete_monitor(name).await {
            cleanup_errors.push(format!("{name}: {e:#}"));
        }
    }
    let (rule_params, no_drift, detection) = outcome?;
    Ok(Calibration {
        command,
        plan,
        rules: rule_params,
        no_drift,
        detection,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        cleanup_errors,
    })
}

type Measured = (Vec<RuleParams>, Vec<NoDriftReport>, Vec<DetectionReport>);

async fn measure(
    ctx: &Arc<Ctx>,
    plan: &Plan,
    model: &Copula,
    references: &[Reference],
    drift_columns: &[usize],
) -> anyhow::Result<Measured> {
    // No drift: every (rule, reference) at once.
    let mut registered: BTreeMap<&'static str, Vec<PutMonitorAnswer>> = BTreeMap::new();
    let mut tasks = JoinSet::new();
    for &rule in &plan.rules {
        for (i, r) in references.iter().enumerate() {
            let name = no_drift_name(rule, i as u64);
            let answer = ctx.put_monitor(&name, rule, plan, &r.csv).await?;
            registered.entry(rule.as_str()).or_default().push(answer);
            let gen = Generator::new(
                model.clone(),
                None,
                mix(plan.seed, NO_DRIFT_STREAM, i as u64),
            );
            let (ctx, rounds) = (ctx.clone(), plan.rounds);
            tasks.spawn(async move {
                let out =
                    no_drift_stream(&ctx, &name, i as u64, gen, rounds, rule.is_local()).await;
                (rule, i as u64, out)
            });
        }
    }
    let mut streams: BTreeMap<&'static str, Vec<(NoDriftStream, StreamExtra)>> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (rule, i, out) = joined.context("a no-drift stream task failed")?;
        let (stream, extra) =
            out.with_context(|| format!("no-drift stream {}", no_drift_name(rule, i)))?;
        streams
            .entry(rule.as_str())
            .or_default()
            .push((stream, extra));
    }
    for &rule in &plan.rules {
        for i in 0..plan.references {
            ctx.delete_monitor(&no_drift_name(rule, i)).await?;
        }
    }
    let rule_params: Vec<RuleParams> = plan
        .rules
        .iter()
        .map(|rule| rule_params(*rule, &registered[rule.as_str()]))
        .collect();
    let no_drift: Vec<NoDriftReport> = plan
        .rules
        .iter()
        .map(|rule| {
            let mut s = streams.remove(rule.as_str()).unwrap_or_default();
            s.sort_by_key(|(st, _)| st.reference);
            let ert = rule_params
                .iter()
                .find(|p| p.rule == *rule)
                .map(|p| p.ert)
                .unwrap_or(f64::NAN);
            no_drift_report(*rule, plan, s, ert)
        })
        .collect();

    // Detection: one drift case at a time, every (rule, reference) of it at once.
    let mut detection = Vec::new();
    if plan.detect_runs > 0 {
        let max_rounds = plan.max_delay_rows.div_ceil(plan.stride);
        for case in &plan.cases {
            let mut tasks = JoinSet::new();
            for &rule in &plan.rules {
                for (i, r) in references
                    .iter()
                    .enumerate()
                    .take(plan.detect_runs as usize)
                {
                    let name = detection_name(rule, i as u64, case);
                    ctx.put_monitor(&name, rule, plan, &r.csv).await?;
                    let scenario = Scenario::new(
                        case.kind,
                        drift_columns.to_vec(),
                        case.magnitude,
                        plan.warmup_rows,
                        1,
                        SwapValues::Standardized,
                        r.means.clone(),
                        r.sds.clone(),
                    )?;
                    let gen = Generator::new(
                        model.clone(),
                        Some(scenario),
                        mix(plan.seed, DETECTION_STREAM, i as u64),
                    );
                    let ctx = ctx.clone();
                    let drift = drift_columns.to_vec();
                    tasks.spawn(async move {
                        let out =
                            detection_run(&ctx, &name, gen, &drift, max_rounds, rule.is_local())
                                .await;
                        (rule, i as u64, name, out)
                    });
                }
            }
            let mut runs: BTreeMap<&'static str, Vec<(u64, DetectRun)>> = BTreeMap::new();
            while let Some(joined) = tasks.join_next().await {
                let (rule, i, name, out) = joined.context("a detection task failed")?;
                let run = out.with_context(|| format!("detection run {name}"))?;
                runs.entry(rule.as_str()).or_default().push((i, run));
            }
            for &rule in &plan.rules {
                for i in 0..plan.detect_runs {
                    ctx.delete_monitor(&detection_name(rule, i, case)).await?;
                }
                let mut r = runs.remove(rule.as_str()).unwrap_or_default();
                r.sort_by_key(|(i, _)| *i);
                detection.push(detection_report(
                    *case,
                    rule,
                    r.into_iter().map(|(_, r)| r).collect(),
                ));
            }
        }
    }
    Ok((rule_params, no_drift, detection))
}

fn no_drift_name(rule: Correction, i: u64) -> String {
    format!("{MONITOR_PREFIX}-{rule}-{i}")
}

fn detection_name(rule: Correction, i: u64, case: &DriftCase) -> String {
    format!("{MONITOR_PREFIX}-{rule}-{i}-{}", case.slug())
}

/// Draws a reference of `rows` rows from `model` (every column, in the model's order).
fn draw_reference(model: &Copula, seed: u64, rows: usize) -> Reference {
    let mut gen = Generator::new(model.clone(), None, seed);
    let batch = gen.next_batch(rows);
    let d = model.dim();
    let mut csv = model.names().join(",");
    csv.push('\n');
    for row in &batch.rows {
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                csv.push(',');
            }
            let _ = write!(csv, "{v}");
        }
        csv.push('\n');
    }
    let n = rows as f64;
    let means: Vec<f64> = (0..d)
        .map(|j| batch.rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let sds = (0..d)
        .map(|j| {
            let ss: f64 = batch.rows.iter().map(|r| (r[j] - means[j]).powi(2)).sum();
            (ss / (n - 1.0).max(1.0)).sqrt()
        })
        .collect();
    Reference { csv, means, sds }
}

/// splitmix64 of the seed, a stream and an index: independent seeds for each draw.
pub fn mix(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed
        ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Ctx {
    async fn put_monitor(
        &self,
        name: &str,
        rule: Correction,
        plan: &Plan,
        csv: &str,
    ) -> anyhow::Result<PutMonitorAnswer> {
        let url = self.target.url(&["v1", "monitors", name])?;
        let query = PutMonitorQuery {
            window: Some(plan.window as usize),
            stride: Some(plan.stride as usize),
            alpha: plan.alpha,
            correction: Some(rule),
            ert: plan.ert,
            reference_confidence: plan.reference_confidence,
            ..PutMonitorQuery::default()
        };
        let what = format!("PUT {url}");
        let req = self
            .target
            .client()
            .put(url)
            .query(&query)
            .bearer_auth(&self.token)
            .header(CONTENT_TYPE, "text/csv")
            .body(csv.to_string());
        fetch_json(req, &what, None).await
    }

    /// Deletes a monitor; an unknown one is fine.
    async fn delete_monitor(&self, name: &str) -> anyhow::Result<()> {
        let url = self.target.url(&["v1", "monitors", name])?;
        let resp = self
            .target
            .client()
            .delete(url.clone())
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot reach the target {}: {}",
                    self.target.base(),
                    error_chain(&e)
                )
            })?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if status.is_success()
            || (status == StatusCode::NOT_FOUND
                && error_code(&body).as_deref() == Some(ErrorCode::UnknownMonitor.as_str()))
        {
            return Ok(());
        }
        bail!("DELETE {url} answered {status}: {}", describe(&body))
    }

    /// Sends `n` generated rows in one batch; returns the monitor's row count after it.
    async fn send(&self, name: &str, gen: &mut Generator, n: usize) -> anyhow::Result<u64> {
        let url = self.target.url(&["v1", "monitors", name, "rows"])?;
        let batch = gen.next_batch(n);
        let frame = Frame::numeric(self.columns.clone(), batch.rows);
        let what = format!("POST {url}");
        let req = self.target.client().post(url).json(&frame);
        let ok: IngestAccepted = fetch_json(req, &what, Some(StatusCode::ACCEPTED)).await?;
        // Calibration monitors keep every row (no `sample_rate`), so every batch is stored.
        ok.seq
            .ok_or_else(|| anyhow::anyhow!("{what}: no row of the batch was stored (sampled out)"))
    }

    async fn view(&self, name: &str) -> anyhow::Result<MonitorView> {
        let url = self.target.url(&["v1", "monitors", name])?;
        let what = format!("GET {url}");
        fetch_json(self.target.client().get(url), &what, None).await
    }

    /// Sends one stride and checks that the monitor is where this stream put it.
    async fn step(
        &self,
        name: &str,
        gen: &mut Generator,
        n: u64,
        boundary: u64,
    ) -> anyhow::Result<()> {
        let seq = self.send(name, gen, n as usize).await?;
        if seq != boundary {
            bail!("monitor {name} has {seq} rows, expected {boundary}: is something else writing to it?");
        }
        Ok(())
    }

    /// Polls the history (one cheap read per poll, from `cursor` on) until every feature
    /// has an evaluation at `boundary`, or the round timeout passes. Under a local rule each
    /// entry's `drifted` is final; under BH a later evaluation can flip another feature's
    /// flag, so the flags are then read from the view once the round is complete.
    async fn wait_round(
        &self,
        name: &str,
        boundary: u64,
        cursor: &mut Option<String>,
        local: bool,
    ) -> anyhow::Result<Round> {
        let t0 = Instant::now();
        let deadline = t0 + self.round_timeout;
        let mut pause = Duration::from_millis(10);
        let mut seen: Vec<Option<bool>> = vec![None; self.columns.len()];
        loop {
            match self
                .target
                .history(name, cursor.as_deref(), HISTORY_PAGE)
                .await
            {
                Ok(entries) => {
                    for e in entries {
                        if e.seq == boundary {
                            if let Some(&i) = self.index.get(&e.feature) {
                                seen[i] = Some(e.drifted);
                            }
                        }
                        *cursor = Some(e.id);
                    }
                    if seen.iter().all(Option::is_some) {
                        tracing::debug!(
                            monitor = name,
                            boundary,
                            wait_ms = t0.elapsed().as_millis() as u64,
                            "round evaluated"
                        );
                        let flagged = if local {
                            seen.iter()
                                .enumerate()
                                .filter(|(_, d)| **d == Some(true))
                                .map(|(i, _)| i)
                                .collect()
                        } else {
                            let view = self.view(name).await?;
                            view.features
                                .iter()
                                .enumerate()
                                .filter(|(_, f)| {
                                    view.results
                                        .get(*f)
                                        .cloned()
                                        .flatten()
                                        .is_some_and(|r| r.seq == boundary && r.drifted)
                                })
                                .map(|(i, _)| i)
                                .collect()
                        };
                        return Ok(Round::Evaluated(flagged));
                    }
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::warn!(monitor = name, error = %format!("{e:#}"), "reading the history")
                }
            }
            if Instant::now() >= deadline {
                return Ok(Round::NotEvaluated);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

/// The API's error (code: message), or the raw body.
fn describe(body: &[u8]) -> String {
    error_message(body).unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
}

/// What a no-drift stream leaves besides its counts.
struct StreamExtra {
    flagged_by_feature: BTreeMap<String, u64>,
    stale: u64,
}

async fn no_drift_stream(
    ctx: &Ctx,
    name: &str,
    reference: u64,
    mut gen: Generator,
    rounds: u64,
    local: bool,
) -> anyhow::Result<(NoDriftStream, StreamExtra)> {
    let mut cursor = None;
    ctx.step(name, &mut gen, ctx.window, ctx.window).await?;
    ctx.wait_round(name, ctx.window, &mut cursor, local).await?;
    ctx.rounds_done.fetch_add(1, Ordering::Relaxed);
    let mut stream = NoDriftStream {
        reference,
        rounds_evaluated: 0,
        false_alarm_rounds: 0,
        episodes: 0,
    };
    let mut flagged_by_feature: BTreeMap<String, u64> = BTreeMap::new();
    for k in 1..=rounds {
        let boundary = ctx.window + k * ctx.stride;
        ctx.step(name, &mut gen, ctx.stride, boundary).await?;
        let round = ctx.wait_round(name, boundary, &mut cursor, local).await?;
        ctx.rounds_done.fetch_add(1, Ordering::Relaxed);
        if let Round::Evaluated(flagged) = round {
            stream.rounds_evaluated += 1;
            if !flagged.is_empty() {
                stream.false_alarm_rounds += 1;
            }
            for i in flagged {
                *flagged_by_feature
                    .entry(ctx.columns[i].clone())
                    .or_default() += 1;
            }
        }
    }
    let view = ctx.view(name).await?;
    stream.episodes = view.results.values().flatten().map(|r| r.episodes).sum();
    let extra = StreamExtra {
        flagged_by_feature,
        stale: view.counters.stale,
    };
    Ok((stream, extra))
}

struct DetectRun {
    delay: Option<u64>,
    rounds: u64,
    other_flag_rounds: u64,
    not_evaluated: u64,
}

async fn detection_run(
    ctx: &Ctx,
    name: &str,
    mut gen: Generator,
    drift_columns: &[usize],
    max_rounds: u64,
    local: bool,
) -> anyhow::Result<DetectRun> {
    let mut cursor = None;
    ctx.step(name, &mut gen, ctx.window, ctx.window).await?;
    ctx.wait_round(name, ctx.window, &mut cursor, local).await?;
    let mut run = DetectRun {
        delay: None,
        rounds: 0,
        other_flag_rounds: 0,
        not_evaluated: 0,
    };
    for k in 1..=max_rounds {
        let boundary = ctx.window + k * ctx.stride;
        ctx.step(name, &mut gen, ctx.stride, boundary).await?;
        match ctx.wait_round(name, boundary, &mut cursor, local).await? {
            Round::NotEvaluated => run.not_evaluated += 1,
            Round::Evaluated(flagged) => {
                run.rounds += 1;
                if flagged.iter().any(|i| !drift_columns.contains(i)) {
                    run.other_flag_rounds += 1;
                }
                if flagged.iter().any(|i| drift_columns.contains(i)) {
                    run.delay = Some(boundary - ctx.window);
                    break;
                }
            }
        }
    }
    Ok(run)
}

fn rule_params(rule: Correction, answers: &[PutMonitorAnswer]) -> RuleParams {
    let first = &answers[0].monitor.0;
    let thresholds = answers
        .iter()
        .flat_map(|a| a.monitor.0.thresholds.iter().copied());
    let (min, max) = thresholds.fold((None, None), |(lo, hi): (Option<f64>, Option<f64>), t| {
        (
            Some(lo.map_or(t, |l| l.min(t))),
            Some(hi.map_or(t, |h| h.max(t))),
        )
    });
    RuleParams {
        rule,
        alpha: first.params.alpha,
        ert: first.params.ert,
        reference_confidence: first.params.reference_confidence,
        statistic_threshold_min: min,
        statistic_threshold_max: max,
        p_value_threshold: rule.p_value_threshold(first.params.alpha, first.features.len()),
    }
}

fn no_drift_report(
    rule: Correction,
    plan: &Plan,
    streams: Vec<(NoDriftStream, StreamExtra)>,
    ert: f64,
) -> NoDriftReport {
    let n: u64 = streams.iter().map(|(s, _)| s.rounds_evaluated).sum();
    let x: u64 = streams.iter().map(|(s, _)| s.false_alarm_rounds).sum();
    let exact = clopper_pearson_upper(x, n, 0.95);
    let (upper, method) = if x == 0 && n > 0 {
        (3.0 / n as f64, "rule_of_three")
    } else {
        (exact, "clopper_pearson")
    };
    let mut by_feature = BTreeMap::new();
    for (_, e) in &streams {
        for (f, c) in &e.flagged_by_feature {
            *by_feature.entry(f.clone()).or_default() += c;
        }
    }
    NoDriftReport {
        rule,
        streams: streams.len() as u64,
        rounds_planned: plan.rounds * streams.len() as u64,
        rounds_evaluated: n,
        false_alarm_rounds: x,
        streams_with_false_alarms: streams
            .iter()
            .filter(|(s, _)| s.false_alarm_rounds > 0)
            .count() as u64,
        episodes: streams.iter().map(|(s, _)| s.episodes).sum(),
        rate: if n > 0 { x as f64 / n as f64 } else { f64::NAN },
        rate_upper95: upper,
        rate_upper95_method: method,
        rate_upper95_exact: exact,
        rounds_between_false_alarms_lower95: (upper > 0.0).then(|| 1.0 / upper),
        guaranteed_false_alarm_rounds: (rule == Correction::Ert).then(|| n as f64 / ert),
        flagged_rounds_by_feature: by_feature,
        stale_jobs: streams.iter().map(|(_, e)| e.stale).sum(),
        per_stream: streams.into_iter().map(|(s, _)| s).collect(),
    }
}

fn detection_report(case: DriftCase, rule: Correction, runs: Vec<DetectRun>) -> DetectionReport {
    let delays: Vec<Option<u64>> = runs.iter().map(|r| r.delay).collect();
    DetectionReport {
        case,
        label: case.label(),
        rule,
        runs: runs.len() as u64,
        detected: delays.iter().flatten().count() as u64,
        median_delay_rows: censored_quantile(&delays, 0.5),
        p90_delay_rows: censored_quantile(&delays, 0.9),
        delays_rows: delays,
        rounds: runs.iter().map(|r| r.rounds).sum(),
        other_feature_flag_rounds: runs.iter().map(|r| r.other_flag_rounds).sum(),
        rounds_not_evaluated: runs.iter().map(|r| r.not_evaluated).sum(),
    }
}

/// Nearest-rank quantile `q` of values where `None` is larger than every value (a censored
/// observation); `None` when the quantile falls on one (or there are no values).
pub fn censored_quantile(values: &[Option<u64>], q: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<u64> = values.iter().flatten().copied().collect();
    v.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    v.get(rank - 1).copied()
}

/// P(X <= x) for X ~ Binomial(n, p).
pub fn binomial_cdf(x: u64, n: u64, p: f64) -> f64 {
    if x >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    let mut ln_choose = 0.0;
    let mut terms = Vec::with_capacity(x as usize + 1);
    for k in 0..=x {
        terms.push(ln_choose + k as f64 * lp + (n - k) as f64 * lq);
        ln_choose += ((n - k) as f64 / (k + 1) as f64).ln();
    }
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().map(|t| (t - top).exp()).sum();
    (top + sum.ln()).exp().min(1.0)
}

/// The exact (Clopper-Pearson) one-sided upper confidence bound on a binomial proportion
/// after `x` successes in `n` trials: the `p` with P(X <= x; n, p) = 1 − confidence.
pub fn clopper_pearson_upper(x: u64, n: u64, confidence: f64) -> f64 {
    if n == 0 || x >= n {
        return 1.0;
    }
    let tail = 1.0 - confidence;
    if x == 0 {
        return 1.0 - tail.powf(1.0 / n as f64);
    }
    let (mut lo, mut hi) = (x as f64 / n as f64, 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if binomial_cdf(x, n, mid) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The smallest k with P(X <= k) >= q for X ~ Poisson(mean).
pub fn poisson_quantile(mean: f64, q: f64) -> u64 {
    let mut pmf = (-mean).exp();
    let mut cdf = pmf;
    let mut k = 0;
    while cdf < q && k < 1_000_000 {
        k += 1;
        pmf *= mean / k as f64;
        cdf += pmf;
    }
    k
}

fn spawn_progress(
    ctx: Arc<Ctx>,
    mode: ProgressMode,
    every: Duration,
    total: u64,
) -> Option<tokio::task::JoinHandle<()>> {
    if mode == ProgressMode::None {
        return None;
    }
    Some(tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let done = ctx.rounds_done.load(Ordering::Relaxed);
            if done < total {
                eprintln!(
                    "drift-sim calibrate: {done}/{total} no-drift rounds after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            } else {
                eprintln!(
                    "drift-sim calibrate: no-drift part done, detection runs after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }))
}

fn fmt_rate(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.5}")
    }
}

/// Rows of a table: a label, then one cell per column.
fn table(out: &mut String, header: &[String], rows: &[(String, Vec<String>)]) {
    let label_w = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(2);
    let cols = header.len();
    let mut widths = vec![0; cols];
    for (i, h) in header.iter().enumerate() {
        widths[i] = h.chars().count();
    }
    for (_, cells) in rows {
        for (i, c) in cells.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let _ = write!(out, "  {:label_w$}", "");
    for (h, w) in header.iter().zip(&widths) {
        let _ = write!(out, "  {h:>w$}");
    }
    out.push('\n');
    for (label, cells) in rows {
        let _ = write!(out, "  {label:label_w$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {c:>w$}");
        }
        out.push('\n');
    }
}

impl Calibration {
    /// The report as text: the rules side by side.
    pub fn render_text(&self) -> String {
        let p = &self.plan;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "drift-sim calibrate against {}: {} references of {} rows x {} features drawn from one population model (seed {}), window {}, stride {}",
            p.target, p.references, p.reference_rows, p.features, p.seed, p.window, p.stride
        );
        let _ = writeln!(s, "command: {}", self.command);
        let header: Vec<String> = self.rules.iter().map(|r| r.rule.to_string()).collect();
        let mut rows = Vec::new();
        let cell = |f: &dyn Fn(&RuleParams) -> String| -> Vec<String> {
            self.rules.iter().map(f).collect()
        };
        rows.push((
            "flags when".to_string(),
            cell(&|r| match (
                r.statistic_threshold_min,
                r.statistic_threshold_max,
                r.p_value_threshold,
            ) {
                (Some(lo), Some(hi), _) if (hi - lo).abs() < 5e-5 => format!("D >= {lo:.4}"),
                (Some(lo), Some(hi), _) => format!("D >= {lo:.4}..{hi:.4}"),
                (_, _, Some(t)) => format!("p <= {t:.5}"),
                _ => format!("BH at {}", r.alpha),
            }),
        ));
        rows.push((
            "parameters".to_string(),
            cell(&|r| match r.rule {
                Correction::Ert => format!("ert {} conf {}", r.ert, r.reference_confidence),
                _ => format!("alpha {}", r.alpha),
            }),
        ));
        let _ = writeln!(s, "\nRules");
        table(&mut s, &header, &rows);

        let header: Vec<String> = self.no_drift.iter().map(|r| r.rule.to_string()).collect();
        let col = |f: &dyn Fn(&NoDriftReport) -> String| -> Vec<String> {
            self.no_drift.iter().map(f).collect()
        };
        let rows = vec![
            (
                "rounds evaluated".to_string(),
                col(&|r| format!("{}/{}", r.rounds_evaluated, r.rounds_planned)),
            ),
            (
                "false-alarm rounds".to_string(),
                col(&|r| r.false_alarm_rounds.to_string()),
            ),
            (
                "streams with a false alarm".to_string(),
                col(&|r| format!("{}/{}", r.streams_with_false_alarms, r.streams)),
            ),
            (
                "alarm episodes".to_string(),
                col(&|r| r.episodes.to_string()),
            ),
            (
                "false alarms per round".to_string(),
                col(&|r| fmt_rate(r.rate)),
            ),
            (
                "  95% upper bound".to_string(),
                col(&|r| {
                    let m = if r.rate_upper95_method == "rule_of_three" {
                        " (3/n)"
                    } else {
                        ""
                    };
                    format!("{}{m}", fmt_rate(r.rate_upper95))
                }),
            ),
            (
                "rounds between false alarms".to_string(),
                col(&|r| {
                    r.rounds_between_false_alarms_lower95
                        .map_or("-".into(), |v| format!(">= {v:.0}"))
                }),
            ),
            (
                "guarantee (rounds / ert)".to_string(),
                col(&|r| {
                    r.guaranteed_false_alarm_rounds
                        .map_or("-".into(), |v| format!("<= {v:.2} expected"))
                }),
            ),
            ("stale jobs".to_string(), col(&|r| r.stale_jobs.to_string())),
        ];
        let _ = writeln!(
            s,
            "\nNo drift: {} rounds per reference after {} warm-up rows (a round = every feature evaluated at one boundary)",
            p.rounds, p.warmup_rows
        );
        table(&mut s, &header, &rows);
        for r in &self.no_drift {
            if !r.flagged_rounds_by_feature.is_empty() {
                let mut top: Vec<_> = r.flagged_rounds_by_feature.iter().collect();
                top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let list: Vec<String> = top
                    .iter()
                    .take(6)
                    .map(|(f, c)| format!("{f} {c}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {} flagged rounds by feature: {}",
                    r.rule,
                    list.join(", ")
                );
            }
        }

        if !self.detection.is_empty() {
            let _ = writeln!(
                s,
                "\nDetection: {} drifting after {} warm-up rows; delay = drifted rows up to the first flagged boundary (gives up after {} rows)",
                p.drift_features.join(", "),
                p.warmup_rows,
                p.max_delay_rows
            );
            let header: Vec<String> = [
                "rule",
                "detected",
                "median",
                "p90",
                "other-feature flag rounds",
            ]
            .iter()
            .map(|h| h.to_string())
            .collect();
            let over = format!(">{}", p.max_delay_rows);
            let rows: Vec<(String, Vec<String>)> = self
                .detection
                .iter()
                .map(|d| {
                    let q = |v: Option<u64>| v.map_or(over.clone(), |v| v.to_string());
                    (
                        d.label.clone(),
                        vec![
                            d.rule.to_string(),
                            format!("{}/{}", d.detected, d.runs),
                            q(d.median_delay_rows),
                            q(d.p90_delay_rows),
                            format!("{}/{}", d.other_feature_flag_rounds, d.rounds),
                        ],
                    )
                })
                .collect();
            table(&mut s, &header, &rows);
            let missed: u64 = self.detection.iter().map(|d| d.rounds_not_evaluated).sum();
            if missed > 0 {
                let _ = writeln!(
                    s,
                    "  warning: {missed} detection rounds not evaluated within --round-timeout"
                );
            }
        }
        let _ = writeln!(s, "\nelapsed {:.1} s", self.elapsed_seconds);
        for e in &self.cleanup_errors {
            let _ = writeln!(s, "warning: not deleted: {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clopper_pearson_matches_known_values() {
        // x = 0: 1 - 0.05^(1/n), about 3/n.
        let u = clopper_pearson_upper(0, 1000, 0.95);
        assert!((u - 0.0029914).abs() < 1e-6, "{u}");
        // scipy.stats.beta.ppf(0.95, 4, 97) = 0.08261...
        let u = clopper_pearson_upper(3, 100, 0.95);
        assert!((u - 0.0761).abs() < 0.01, "{u}");
        assert!((binomial_cdf(3, 100, u) - 0.05).abs() < 1e-9);
        assert_eq!(clopper_pearson_upper(5, 5, 0.95), 1.0);
        assert_eq!(clopper_pearson_upper(0, 0, 0.95), 1.0);
    }

    #[test]
    fn binomial_cdf_small_cases() {
        assert!((binomial_cdf(0, 2, 0.5) - 0.25).abs() < 1e-12);
        assert!((binomial_cdf(1, 2, 0.5) - 0.75).abs() < 1e-12);
        assert_eq!(binomial_cdf(2, 2, 0.5), 1.0);
    }

    #[test]
    fn quantiles_count_undetected_runs_as_longest() {
        let v = [Some(300), None, Some(100), Some(200)];
        assert_eq!(censored_quantile(&v, 0.5), Some(200));
        assert_eq!(censored_quantile(&v, 0.75), Some(300));
        assert_eq!(censored_quantile(&v, 0.9), None);
        assert_eq!(censored_quantile(&[], 0.5), None);
    }

    #[test]
    fn poisson_quantiles() {
        assert_eq!(poisson_quantile(0.6, 0.999), 4);
        assert_eq!(poisson_quantile(0.0, 0.999), 0);
        assert_eq!(poisson_quantile(1.0, 0.5), 1);
    }

    #[test]
    fn seeds_differ_by_stream_and_index() {
        let a = mix(7, 1, 0);
        assert_ne!(a, mix(7, 1, 1));
        assert_ne!(a, mix(7, 2, 0));
        assert_eq!(a, mix(7, 1, 0));
    }
}
