//! `bench-plot`: the tables and SVG plots of BENCHMARKS.md.
//!
//! Reads criterion's estimates (`target/criterion/codec/<method>/<size>/new/estimates.json`,
//! from `cargo bench --bench codec`) and the JSON files `scripts/bench-e2e.sh` writes
//! (`target/bench-e2e/`), prints the tables with the ratios as Markdown on stdout, and
//! draws `codec-throughput.svg` and `rtt-distribution.svg` into the output folder.
//!
//! `cargo run -p framelink-bench-plot -- [--criterion DIR] [--e2e DIR] [--out DIR]`
//! (defaults: `target/criterion`, `target/bench-e2e`, `docs/bench`). A part whose input is
//! missing is skipped with a note.

mod codec;
mod e2e;
mod plot;

use std::path::PathBuf;
use std::process::ExitCode;

/// Where to read and write.
struct Paths {
    criterion: PathBuf,
    e2e: PathBuf,
    out: PathBuf,
}

fn parse_args() -> Result<Paths, String> {
    let mut paths = Paths {
        criterion: "target/criterion".into(),
        e2e: "target/bench-e2e".into(),
        out: "docs/bench".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--criterion" => &mut paths.criterion,
            "--e2e" => &mut paths.e2e,
            "--out" => &mut paths.out,
            other => return Err(format!("unknown argument `{other}`; see the source's header")),
        };
        *slot = args.next().ok_or_else(|| format!("{flag} needs a folder"))?.into();
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
    match codec::Results::read(&paths.criterion.join("codec")) {
        Ok(results) => {
            print!("{}", results.markdown());
            let svg = paths.out.join("codec-throughput.svg");
            if let Err(error) = plot::throughput(&results, &svg) {
                eprintln!("bench-plot: {}: {error}", svg.display());
                ok = false;
            }
        }
        Err(error) => eprintln!("bench-plot: no codec results ({error}); run `cargo bench --bench codec`"),
    }
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
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
