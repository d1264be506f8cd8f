//! `drift-sim` binary: parses flags, runs [`drift_sim::run_until`] until done or Ctrl-C, and
//! prints the summary (or, with `--mode calibrate`, runs [`drift_sim::calibrate::run`] and
//! prints its report). Failures are one line on stderr and a non-zero exit.

use clap::Parser;
use drift_sim::cli::Mode;
use drift_sim::Args;
use std::process::ExitCode;

/// The command line as typed, each argument shell-quoted when it needs it.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn calibrate(runtime: &tokio::runtime::Runtime, args: Args) -> ExitCode {
    let json = args.json;
    match runtime.block_on(drift_sim::calibrate::run(args, command_line())) {
        Ok(report) => {
            let text = report.render_text();
            if json {
                eprint!("{text}");
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("drift-sim: error: encoding the report: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("drift-sim: error: {line}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    drift_service::init_logging(drift_service::LogFormat::Text, "warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drift-sim: error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.mode == Mode::Calibrate {
        return calibrate(&runtime, args);
    }
    let json = args.json;
    let outcome = runtime.block_on(drift_sim::run_until(args, async {
        let _ = tokio::signal::ctrl_c().await;
    }));
    match outcome {
        Ok(summary) => {
            let text = summary.render_text();
            if json {
                eprint!("{text}");
                match serde_json::to_string(&summary) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("drift-sim: error: encoding the summary: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{text}");
            }
            let counts = &summary.counts;
            if counts.rows_sent > 0 && counts.rows_accepted == 0 {
                eprintln!(
                    "drift-sim: error: the target accepted none of the {} rows sent",
                    counts.rows_sent
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line: the error and its causes, joined.
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("drift-sim: error: {line}");
            ExitCode::FAILURE
        }
    }
}
