//! `bench-plot`: the tables and SVG plots of BENCHMARKS.md.
//!
//! Reads criterion's estimates (`target/criterion/codec/<method>/<size>/new/estimates.json`,
//! from `cargo bench --bench codec`) and the JSON files `scripts/bench-e2e.sh` and
//! `scripts/bench-server.sh` write (`target/bench-e2e/`, `target/bench-server/`), prints the
//! tables with the goals' ratios as Markdown on stdout, and draws `codec-throughput.svg`,
//! `rtt-distribution.svg` and `loss-goodput.svg` (from `scripts/bench-loss.sh`'s files in the
//! end-to-end folder) into the output folder.
//!
//! `cargo run -p framelink-bench-plot -- [--criterion DIR] [--e2e DIR] [--server DIR] [--out DIR]
//! [--only codec|e2e|loss|server]` (defaults: `target/criterion`, `target/bench-e2e`,
//! `target/bench-server`, `docs/bench`, every part). A part whose input is missing is skipped
//! with a note.

mod codec;
mod e2e;
mod loss;
mod plot;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

/// Where to read and write.
struct Paths {
    criterion: PathBuf,
    e2e: PathBuf,
    server: PathBuf,
    out: PathBuf,
    /// The one part to print, if not all.
    only: Option<String>,
}

impl Paths {
    /// Whether `part` is to be printed.
    fn wants(&self, part: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == part)
    }
}

fn parse_args() -> Result<Paths, String> {
    let mut paths = Paths {
        criterion: "target/criterion".into(),
        e2e: "target/bench-e2e".into(),
        server: "target/bench-server".into(),
        out: "docs/bench".into(),
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--criterion" => paths.criterion = value.into(),
            "--e2e" => paths.e2e = value.into(),
            "--server" => paths.server = value.into(),
            "--out" => paths.out = value.into(),
            "--only" if ["codec", "e2e", "loss", "server"].contains(&value.as_str()) => {
                paths.only = Some(value)
            }
            other => return Err(format!("unknown argument `{other} {value}`; see the source's header")),
        }
    }
    Ok(paths)
}

fn main() -> ExitCode {
    let paths = match parse_args() {
        Ok(paths) => paths,
        Err(error) => {
            eprintln!("bench-plot: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = std::fs::create_dir_all(&paths.out) {
        eprintln!("bench-plot: {}: {error}", paths.out.display());
        return ExitCode::FAILURE;
    }
    let mut ok = true;
    if paths.wants("codec") {
        match codec::Results::read(&paths.criterion.join("codec")) {
            Ok(results) => {
                print!("{}", results.markdown());
                let svg = paths.out.join("codec-throughput.svg");
                if let Err(error) = plot::throughput(&results, &svg) {
                    eprintln!("bench-plot: {}: {error}", svg.display());
                    ok = false;
                }
            }
            Err(error) => {
                eprintln!("bench-plot: no codec results ({error}); run `cargo bench --bench codec`")
            }
        }
    }
    if paths.wants("e2e") {
        match e2e::Results::read(&paths.e2e) {
            Ok(results) => {
                print!("{}", results.markdown());
                let svg = paths.out.join("rtt-distribution.svg");
                if let Err(error) = plot::rtt(&results, &svg) {
                    eprintln!("bench-plot: {}: {error}", svg.display());
                    ok = false;
                }
            }
            Err(error) => eprintln!("bench-plot: no end-to-end results ({error}); run scripts/bench-e2e.sh"),
        }
    }
    if paths.wants("loss") {
        match loss::Results::read(&paths.e2e) {
            Ok(results) => {
                print!("{}", results.markdown());
                let svg = paths.out.join("loss-goodput.svg");
                if let Err(error) = plot::loss_goodput(&results, &svg) {
                    eprintln!("bench-plot: {}: {error}", svg.display());
                    ok = false;
                }
            }
            Err(error) => eprintln!("bench-plot: no loss results ({error}); run scripts/bench-loss.sh"),
        }
    }
    if paths.wants("server") {
        match server::Results::read(&paths.server) {
            Ok(results) => print!("{}", results.markdown()),
            Err(error) => {
                eprintln!("bench-plot: no server-scale results ({error}); run scripts/bench-server.sh");
            }
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
