//! `zcopy-verdict`: reads what one zcopy test run left behind and prints one
//! verdict, `N passed, M failed`, exiting non-zero if anything failed.
//!
//! ```text
//! zcopy-verdict [--pass NAME]... [--fail NAME [--fail-log FILE]]...
//!               [--cargo-test FILE] [--kunit DIR] [--expect-suite NAME]...
//!               [--itest FILE] [--insmod FILE] [--dmesg FILE] [--kmemleak FILE]
//! ```
//!
//! It counts the checks run before it (`--pass`, `--fail`), every host-side
//! `cargo test` (the `test result:` lines of FILE), every KUnit case
//! (`DIR/*.ktap`), every integration test (`FILE`, KTAP), the module load
//! itself, one check that the kernel log has no report of trouble, and one
//! that kmemleak found nothing. An expected
//! KUnit suite with no results file is a failure, so tests cannot vanish
//! silently.

mod ktap;
mod logscan;

use std::{fs, path::PathBuf, process::ExitCode};

use ktap::Outcome;

#[derive(Default)]
struct Args {
    /// Checks already decided: name, passed, log to show on failure.
    checks: Vec<(String, bool, Option<PathBuf>)>,
    cargo_test: Option<PathBuf>,
    kunit: Option<PathBuf>,
    expect_suites: Vec<String>,
    itest: Option<PathBuf>,
    insmod: Option<PathBuf>,
    dmesg: Option<PathBuf>,
    kmemleak: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--pass" => a.checks.push((val()?, true, None)),
            "--fail" => a.checks.push((val()?, false, None)),
            "--fail-log" => {
                let log = val()?;
                match a.checks.last_mut() {
                    Some((_, false, l)) => *l = Some(log.into()),
                    _ => return Err("--fail-log must follow --fail".into()),
                }
            }
            "--cargo-test" => a.cargo_test = Some(val()?.into()),
            "--kunit" => a.kunit = Some(val()?.into()),
            "--expect-suite" => a.expect_suites.push(val()?),
            "--itest" => a.itest = Some(val()?.into()),
            "--insmod" => a.insmod = Some(val()?.into()),
            "--dmesg" => a.dmesg = Some(val()?.into()),
            "--kmemleak" => a.kmemleak = Some(val()?.into()),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(a)
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    fn record(&mut self, group: &str, name: &str, outcome: Outcome, details: &[String]) {
        let word = match outcome {
            Outcome::Pass => {
                self.passed += 1;
                "ok  "
            }
            Outcome::Fail => {
                self.failed += 1;
                "FAIL"
            }
            Outcome::Skip => {
                self.skipped += 1;
                "skip"
            }
        };
        println!("  {word} {group}: {name}");
        if outcome == Outcome::Fail {
            for d in details {
                println!("         {d}");
            }
        }
    }

    fn check(&mut self, group: &str, name: &str, ok: bool, details: &[String]) {
        let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
        self.record(group, name, outcome, details);
    }
}

fn read(path: &PathBuf) -> Result<String, String> {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Sums the `test result: ok. 9 passed; 1 failed; 2 ignored; ...` lines
/// cargo test prints, one per test binary. `None` if there are none.
fn cargo_totals(text: &str) -> Option<(usize, usize, usize)> {
    let mut seen = false;
    let mut sums = (0, 0, 0);
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        seen = true;
        for part in line.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            match what {
                "passed" => sums.0 += n,
                "failed" => sums.1 += n,
                "ignored" => sums.2 += n,
                _ => {}
            }
        }
    }
    seen.then_some(sums)
}

fn tail_of(path: &PathBuf, n: usize) -> Vec<String> {
    let text = read(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].iter().map(|l| format!("| {l}")).collect()
}

fn run(args: &Args, t: &mut Tally) -> Result<(), String> {
    for (name, ok, log) in &args.checks {
        let details = log.as_ref().map(|l| tail_of(l, 15)).unwrap_or_default();
        t.check("check", name, *ok, &details);
    }

    if let Some(path) = &args.cargo_test {
        let text = read(path).unwrap_or_default();
        match cargo_totals(&text) {
            Some((passed, failed, ignored)) => {
                println!("  host: cargo test: {passed} passed, {failed} failed, {ignored} ignored");
                t.passed += passed;
                t.failed += failed;
                t.skipped += ignored;
                if failed > 0 {
                    for l in text
                        .lines()
                        .filter(|l| l.contains("FAILED") || l.contains("panicked"))
                    {
                        println!("         {l}");
                    }
                }
            }
            None => t.check("host", "cargo test ran", false, &tail_of(path, 15)),
        }
    }

    if let Some(path) = &args.insmod {
        let text = read(path).unwrap_or_default();
        let ok = text.lines().any(|l| l.trim() == "status 0");
        let details: Vec<String> = text.lines().map(str::to_string).collect();
        t.check("module", "insmod zcopy.ko", ok, &details);
    }

    if let Some(dir) = &args.kunit {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        for suite in &args.expect_suites {
            let present = files
                .iter()
                .any(|f| f.file_stem().is_some_and(|s| s == suite.as_str()));
            if !present {
                let why = ["# no results: the suite did not run".to_string()];
                t.check("kunit", suite, false, &why);
            }
        }
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "ktap"))
        {
            let results = ktap::parse(&read(f)?);
            if results.is_empty() {
                let why = [format!("# {} holds no results", f.display())];
                t.check("kunit", &f.display().to_string(), false, &why);
            }
            for r in results {
                t.record("kunit", &r.name, r.outcome, &r.diagnostics);
            }
        }
    }

    if let Some(path) = &args.itest {
        let text = read(path).unwrap_or_default();
        let results = ktap::parse(&text);
        if results.is_empty() {
            let tail: Vec<String> = text.lines().rev().take(20).map(str::to_string).collect();
            t.check("integration", "suite produced results", false, &tail);
        }
        for r in results {
            t.record("integration", &r.name, r.outcome, &r.diagnostics);
        }
    }

    if let Some(path) = &args.dmesg {
        let found = logscan::scan(&read(path)?);
        let details: Vec<String> = found
            .iter()
            .take(20)
            .map(|f| format!("{}:{}: {}", path.display(), f.line, f.text))
            .collect();
        t.check(
            "kernel log",
            "no WARN, BUG, Oops, KASAN, lockdep or leak report",
            found.is_empty(),
            &details,
        );
    }

    if let Some(path) = &args.kmemleak {
        let text = read(path).unwrap_or_default();
        let details: Vec<String> = text.lines().take(30).map(str::to_string).collect();
        t.check(
            "kernel log",
            "kmemleak found no leak",
            text.trim().is_empty(),
            &details,
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("zcopy-verdict: {e}");
            return ExitCode::from(2);
        }
    };
    let mut t = Tally::default();
    if let Err(e) = run(&args, &mut t) {
        eprintln!("zcopy-verdict: {e}");
        t.failed += 1;
    }
    let total = t.passed + t.failed + t.skipped;
    if total == 0 {
        eprintln!("zcopy-verdict: nothing to judge");
        t.failed += 1;
    }
    if t.skipped > 0 {
        println!(
            "{} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        );
    } else {
        println!("{} passed, {} failed", t.passed, t.failed);
    }
    if t.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::cargo_totals;

    #[test]
    fn cargo_totals_sum_every_binary() {
        let text = "running 9 tests\n\
                    test result: ok. 9 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
                    test result: FAILED. 2 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(cargo_totals(text), Some((11, 3, 1)));
    }

    #[test]
    fn cargo_totals_none_without_result_lines() {
        assert_eq!(cargo_totals("error[E0425]: cannot find value"), None);
    }
}
