//! `etahoiva bench schedule`: a national-size instance of the visit
//! schedule, for capacity planning. Imports clients with care plans and
//! nurses with shifts into a fresh store, generates the visits of the
//! horizon, assigns one day and reads worklists back, and reports times,
//! peak memory, continuity and lateness, and checks every hard rule.

use std::time::Instant;

use anyhow::{bail, Context};
use jiff::civil::Date;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{percentile, proc_field_kb, tempfile_dir};
use crate::schedule::assign::{changes_of, load_day, measure};
use crate::schedule::{day_range, planner};
use crate::settings::Settings;
use crate::store::{
    new_id, now_ms, BulkImport, Client, NewClient, Nurse, Shift, Store, VisitRuleRecord,
};

/// What `etahoiva bench schedule` was asked to do.
#[derive(Clone, Debug, clap::Args)]
pub struct ScheduleBenchArgs {
    /// Clients, each with `--rules` daily visit rules.
    #[arg(long, default_value_t = 33_000)]
    pub clients: usize,
    /// Visit rules per client.
    #[arg(long, default_value_t = 3)]
    pub rules: usize,
    /// Nurse shifts on the assigned day (one nurse each).
    #[arg(long, default_value_t = 3_400)]
    pub shifts: usize,
    /// Nurses off duty that day (named nurses of some clients).
    #[arg(long, default_value_t = 1_000)]
    pub off_duty: usize,
    /// Days of visits to generate.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Worklists read back from the store to time the nurse console's query.
    #[arg(long, default_value_t = 1_000)]
    pub worklist_reads: usize,
    /// Seed of the random instance (the same seed gives the same instance).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run against this PostgreSQL database instead of a temporary SQLite file.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// The figures a run produced.
#[derive(Debug, serde::Serialize)]
pub struct ScheduleBenchReport {
    pub clients: usize,
    pub rules: usize,
    pub nurses_on_shift: usize,
    pub import_secs: f64,
    pub generated_visits: usize,
    pub generate_secs: f64,
    pub day: String,
    pub day_visits: usize,
    pub load_secs: f64,
    pub plan_secs: f64,
    pub store_secs: f64,
    pub placed: usize,
    pub unplaced: usize,
    pub violations: usize,
    pub named_nurse_possible: usize,
    pub named_nurse_kept: usize,
    pub familiar_nurse_share: f64,
    pub coci: f64,
    pub nurses_per_client: f64,
    pub mean_lateness_min: f64,
    pub max_lateness_min: f64,
    pub on_time_share: f64,
    pub min_calls_per_nurse: usize,
    pub max_calls_per_nurse: usize,
    pub worklist_p50_ms: f64,
    pub worklist_p99_ms: f64,
    pub worklist_mean_items: f64,
    pub peak_rss_mb: f64,
}

const SKILLS: [&str; 4] = ["medication", "diabetes", "wound_care", "dementia"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// A civil time `minutes` after midnight of `date` in `tz`, as ms since the epoch.
fn at(date: Date, minutes: i64, tz: &jiff::tz::TimeZone) -> anyhow::Result<i64> {
    let civil = date.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
    Ok(crate::schedule::recurrence::attach(civil, tz)?
        .timestamp()
        .as_millisecond())
}

/// Builds the instance: nurses and the day's shifts, clients and their plans.
fn instance(
    args: &ScheduleBenchArgs,
    day: Date,
    tz: &jiff::tz::TimeZone,
) -> anyhow::Result<BulkImport> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let areas: Vec<(String, String)> = (0..20)
        .map(|i| (new_id(), format!("Alue {}", i + 1)))
        .collect();
    // Shift patterns (start, end) in minutes and their share of the shifts.
    let patterns = [
        (7 * 60, 15 * 60, 40),
        (8 * 60, 16 * 60, 15),
        (12 * 60, 20 * 60, 10),
        (13 * 60, 21 * 60, 35),
    ];
    let total_nurses = args.shifts + args.off_duty;
    let mut nurses = Vec::with_capacity(total_nurses);
    let mut shifts = Vec::with_capacity(args.shifts);
    // Each on-shift nurse's pattern, to draw visit times where nurses work.
    let mut on_shift_windows = Vec::with_capacity(args.shifts);
    for i in 0..total_nurses {
        let r: u32 = rng.gen_range(0..100);
        let languages: Vec<String> = if r < 85 {
            vec!["fi".into()]
        } else if r < 90 {
            vec!["sv".into()]
        } else {
            vec!["fi".into(), "sv".into()]
        };
        let skills: Vec<String> = SKILLS
            .iter()
            .enumerate()
            .filter(|(k, _)| rng.gen_range(0..100) < if *k == 0 { 70 } else { 30 })
            .map(|(_, s)| s.to_string())
            .collect();
        let nurse = Nurse {
            id: new_id(),
            username: format!("nurse{i:05}"),
            display_name: format!("Hoitaja {i:05}"),
            languages,
            skills,
        };
        if i < args.shifts {
            let roll: u32 = rng.gen_range(0..100);
            let mut acc = 0;
            let (start, end) = patterns
                .iter()
                .find(|p| {
                    acc += p.2;
                    roll < acc
                })
                .map(|p| (p.0, p.1))
                .unwrap_or((7 * 60, 15 * 60));
            shifts.push(Shift {
                id: new_id(),
                nurse_id: nurse.id.clone(),
                starts_at: at(day, start, tz)?,
                ends_at: at(day, end, tz)?,
                signed_off_at: None,
            });
            on_shift_windows.push((start, end));
        }
        nurses.push(nurse);
    }
    let mut clients = Vec::with_capacity(args.clients);
    let mut rules = Vec::with_capacity(args.clients * args.rules);
    let start_date = day.yesterday().unwrap_or(day);
    for i in 0..args.clients {
        let language = if rng.gen_range(0..100) < 90 {
            "fi"
        } else {
            "sv"
        };
        // The named nurse speaks the client's language (on or off shift today).
        let named = loop {
            let n = pick(&mut rng, &nurses);
            if n.languages.iter().any(|l| l == language) {
                break n.id.clone();
            }
        };
        let client = Client::from_new(
            NewClient {
                name: format!("Asiakas {i:05}"),
                language: language.into(),
                area_id: pick(&mut rng, &areas).0.clone(),
                address: format!("Kotikatu {}", i + 1),
                named_nurse_id: Some(named),
                consent_auto_answer: rng.gen_bool(0.8),
                time_zone: None,
            },
            now_ms(),
        );
        for r in 0..args.rules {
            // A time where nurses work: inside a random shift, 30 min from its ends.
            let (s, e) = *pick(&mut rng, &on_shift_windows);
            let minute = rng.gen_range(s + 30..e - 30) / 5 * 5;
            let (length, half_window) = *pick(&mut rng, &[(5, 30), (10, 30), (10, 45), (15, 60)]);
            let skill = match rng.gen_range(0..100) {
                0..=19 => Some(SKILLS[0]),
                20..=24 => Some(SKILLS[1]),
                25..=29 => Some(SKILLS[2]),
                30..=32 => Some(SKILLS[3]),
                _ => None,
            };
            rules.push(VisitRuleRecord {
                id: new_id(),
                client_id: client.id.clone(),
                dtstart: start_date
                    .at((minute / 60) as i8, (minute % 60) as i8, 0, 0)
                    .to_string(),
                rrule: Some("FREQ=DAILY".into()),
                exdates: "[]".into(),
                rdates: "[]".into(),
                window_before_min: half_window,
                window_after_min: half_window,
                length_min: length,
                purpose: format!("Käynti {}", r + 1),
                skill: skill.map(str::to_string),
                language: None,
            });
        }
        clients.push(client);
    }
    Ok(BulkImport {
        areas,
        nurses,
        shifts,
        clients,
        rules,
    })
}

/// Runs the benchmark and prints a summary table.
pub async fn run(args: ScheduleBenchArgs) -> anyhow::Result<ScheduleBenchReport> {
    if args.clients == 0 || args.shifts == 0 || args.rules == 0 {
        bail!("--clients, --shifts and --rules must be at least 1");
    }
    let settings = Settings::default();
    let tz = crate::schedule::recurrence::zone(&settings.unit_time_zone)?;
    // The assigned day is tomorrow, so every visit of it is still ahead.
    let now = now_ms();
    let day = jiff::Timestamp::now()
        .to_zoned(tz.clone())
        .date()
        .tomorrow()?;
    let dir = tempfile_dir()?;
    let store = Store::open(args.database_url.as_deref(), &dir.0)
        .await
        .context("cannot open the store")?;
    eprintln!(
        "building the instance: {} clients x {} rules, {} shifts",
        args.clients, args.rules, args.shifts
    );
    let data = instance(&args, day, &tz)?;
    let started = Instant::now();
    store.bulk_import(&data).await.context("import")?;
    let import_secs = started.elapsed().as_secs_f64();
    let nurses_on_shift = data.shifts.len();
    let rule_count = data.rules.len();
    drop(data);

    eprintln!("generating {} days of visits", args.days);
    let started = Instant::now();
    let generated = crate::schedule::generate::extend_horizon(&store, now, args.days).await?;
    let generate_secs = started.elapsed().as_secs_f64();
    if !generated.failed_rules.is_empty() {
        bail!("{} rules failed to expand", generated.failed_rules.len());
    }

    eprintln!("assigning {day}");
    let started = Instant::now();
    let instance = load_day(&store, &settings, day, true, now).await?;
    let load_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let plan = planner::plan(&instance.input);
    let plan_secs = started.elapsed().as_secs_f64();
    let violations = planner::check(&instance.input, &plan);
    for v in violations.iter().take(10) {
        eprintln!("hard rule broken: {v}");
    }
    let (changes, unplaced, placed) = changes_of(&instance, &plan);
    let started = Instant::now();
    store.apply_assignments(&changes).await?;
    let store_secs = started.elapsed().as_secs_f64();

    // Lateness and load from the plan.
    let mut lateness = Vec::with_capacity(placed);
    let mut calls = vec![0usize; instance.input.nurses.len()];
    for (i, p) in plan.placements.iter().enumerate() {
        if let Ok(p) = p {
            lateness.push(((p.start - instance.input.visits[i].target).max(0)) as f64 / 60_000.0);
            if let Some(c) = calls.get_mut(p.nurse) {
                *c += 1;
            }
        }
    }
    let on_shift_calls: Vec<usize> = instance
        .input
        .nurses
        .iter()
        .zip(&calls)
        .filter(|(n, _)| !n.shifts.is_empty())
        .map(|(_, c)| *c)
        .collect();
    let on_time = lateness.iter().filter(|l| **l <= 0.0).count();

    // Continuity from what was stored.
    let (from, to) = day_range(day, &tz);
    let stored = store.visits_between(from, to).await?;
    let shifts = store.shifts_between(from, to).await?;
    let clients: std::collections::HashMap<String, Client> = store.clients_by_id().await?;
    let continuity = measure(&stored, &shifts, &clients, &Default::default(), from, to);
    drop(stored);

    // The nurse console's query, for random nurses on shift.
    eprintln!("reading {} worklists", args.worklist_reads);
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let on_shift: Vec<&str> = shifts.iter().map(|s| s.nurse_id.as_str()).collect();
    let mut times = Vec::with_capacity(args.worklist_reads);
    let mut items = 0usize;
    for _ in 0..args.worklist_reads {
        let nurse = *pick(&mut rng, &on_shift);
        let started = Instant::now();
        let list = store.worklist(nurse, from, to).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        items += list.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let peak_rss_mb = proc_field_kb(std::process::id(), "VmHWM:").unwrap_or(0.0) / 1024.0;
    store.close().await;
    let report = ScheduleBenchReport {
        clients: args.clients,
        rules: rule_count,
        nurses_on_shift,
        import_secs,
        generated_visits: generated.visits,
        generate_secs,
        day: day.to_string(),
        day_visits: instance.to_plan.len(),
        load_secs,
        plan_secs,
        store_secs,
        placed,
        unplaced: unplaced.len(),
        violations: violations.len(),
        named_nurse_possible: plan.stats.named_nurse_possible,
        named_nurse_kept: plan.stats.named_nurse_kept,
        familiar_nurse_share: continuity.familiar_nurse_share,
        coci: continuity.coci,
        nurses_per_client: continuity.nurses_per_client,
        mean_lateness_min: if lateness.is_empty() {
            0.0
        } else {
            lateness.iter().sum::<f64>() / lateness.len() as f64
        },
        max_lateness_min: lateness.iter().copied().fold(0.0, f64::max),
        on_time_share: if lateness.is_empty() {
            0.0
        } else {
            on_time as f64 / lateness.len() as f64
        },
        min_calls_per_nurse: on_shift_calls.iter().copied().min().unwrap_or(0),
        max_calls_per_nurse: on_shift_calls.iter().copied().max().unwrap_or(0),
        worklist_p50_ms: percentile(&times, 0.5),
        worklist_p99_ms: percentile(&times, 0.99),
        worklist_mean_items: if times.is_empty() {
            0.0
        } else {
            items as f64 / times.len() as f64
        },
        peak_rss_mb,
    };
    print_report(&report);
    Ok(report)
}

fn print_report(r: &ScheduleBenchReport) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!();
    println!(
        "Schedule benchmark: {} clients, {} rules, {} nurse shifts",
        r.clients, r.rules, r.nurses_on_shift
    );
    println!("  import                      {:>10.2} s", r.import_secs);
    println!(
        "  visits generated ({} days)  {:>10} in {:.2} s",
        r.generated_visits / r.day_visits.max(1),
        r.generated_visits,
        r.generate_secs
    );
    println!("  day assigned                {}", r.day);
    println!("    visits of the day         {:>10}", r.day_visits);
    println!("    load from store           {:>10.3} s", r.load_secs);
    println!(
        "    plan (one core)           {:>10.3} s   target < 3 s: {}",
        r.plan_secs,
        verdict(r.plan_secs < 3.0)
    );
    println!("    store assignments         {:>10.3} s", r.store_secs);
    println!(
        "    placed / unplaced         {:>10} / {}",
        r.placed, r.unplaced
    );
    println!(
        "    hard rules broken         {:>10}   target 0: {}",
        r.violations,
        verdict(r.violations == 0)
    );
    println!(
        "    named nurse kept          {:>10} of {} visits whose named nurse is on shift ({:.1} %)",
        r.named_nurse_kept,
        r.named_nurse_possible,
        100.0 * r.named_nurse_kept as f64 / r.named_nurse_possible.max(1) as f64
    );
    println!(
        "    nurses per client (day)   {:>10.2}   COCI {:.3}",
        r.nurses_per_client, r.coci
    );
    println!(
        "    lateness mean / max       {:>10.2} / {:.1} min, on time {:.1} %",
        r.mean_lateness_min,
        r.max_lateness_min,
        100.0 * r.on_time_share
    );
    println!(
        "    calls per nurse min / max {:>10} / {}",
        r.min_calls_per_nurse, r.max_calls_per_nurse
    );
    println!(
        "  worklist read p50 / p99     {:>10.2} / {:.2} ms ({:.1} visits each)   target p99 < 10 ms: {}",
        r.worklist_p50_ms,
        r.worklist_p99_ms,
        r.worklist_mean_items,
        verdict(r.worklist_p99_ms < 10.0)
    );
    println!(
        "  peak memory (RSS)           {:>10.1} MB   target < 1024 MB: {}",
        r.peak_rss_mb,
        verdict(r.peak_rss_mb < 1024.0)
    );
}
