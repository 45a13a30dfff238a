//! Command-line options.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: zcopy-fuzz [--seed N] [--calls N] [--secs S] [--threads N] [--no-net]
                  [--move-nics] [--no-fork] [--no-mem] [--strict-errno]
                  [--settle S] [--dir PATH] [--verbose]

  --seed N        choice sequence of every thread (default: from the clock)
  --calls N       total calls across threads, then stop (default 10000
                  unless --secs is given)
  --secs S        stop after S seconds (may be fractional)
  --threads N     worker threads (default 4)
  --no-net        no network disturbances (no lab veth pair, no namespace
                  moves, no link changes); sockets are still used
  --move-nics     also take net.sh's e1000e ztx0 down and up and move it to
                  another namespace and back (restored at the end): regions
                  mapped for it are unmapped by the notifier
  --no-fork       no forked children
  --no-mem        no memory disturbances (munmap, mremap, madvise...)
  --strict-errno  fail the run on an errno abi.rst does not document, or
                  another errno than the ABI decides (they are always printed)
  --settle S      how long to wait for the counters to come back (default 10)
  --dir PATH      where to make the data files (default: /run/zcopy/ext4,
                  /run/zcopy/tmpfs, $TMPDIR, /tmp, the first writable)
  --verbose       print findings as they happen
";

#[derive(Clone, Debug)]
pub struct Opts {
    pub seed: u64,
    pub calls: Option<u64>,
    pub secs: Option<f64>,
    pub threads: usize,
    pub no_net: bool,
    pub move_nics: bool,
    pub no_fork: bool,
    pub no_mem: bool,
    pub strict_errno: bool,
    pub settle: f64,
    pub dirs: Vec<PathBuf>,
    pub verbose: bool,
}

impl Opts {
    /// Parses `args` (without the program name); `Err` has the message,
    /// `Ok(None)` means help was asked for.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Option<Self>, String> {
        let mut o = Opts {
            seed: clock_seed(),
            calls: None,
            secs: None,
            threads: 4,
            no_net: false,
            move_nics: false,
            no_fork: false,
            no_mem: false,
            strict_errno: false,
            settle: 10.0,
            dirs: Vec::new(),
            verbose: false,
        };
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let mut val = || {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--seed" => o.seed = parse_u64(&val()?)?,
                "--calls" => o.calls = Some(parse_u64(&val()?)?),
                "--secs" => o.secs = Some(parse_f64(&val()?)?),
                "--threads" => {
                    o.threads = parse_u64(&val()?)? as usize;
                    if !(1..=200).contains(&o.threads) {
                        return Err("--threads must be 1 to 200".into());
                    }
                }
                "--settle" => o.settle = parse_f64(&val()?)?,
                "--dir" => o.dirs.push(val()?.into()),
                "--no-net" => o.no_net = true,
                "--move-nics" => o.move_nics = true,
                "--no-fork" => o.no_fork = true,
                "--no-mem" => o.no_mem = true,
                "--strict-errno" => o.strict_errno = true,
                "--verbose" | "-v" => o.verbose = true,
                _ => return Err(format!("unknown argument {a}")),
            }
        }
        if o.calls.is_none() && o.secs.is_none() {
            o.calls = Some(10_000);
        }
        if o.dirs.is_empty() {
            o.dirs = vec![
                "/run/zcopy/ext4".into(),
                "/run/zcopy/tmpfs".into(),
                std::env::temp_dir(),
                "/tmp".into(),
                ".".into(),
            ];
        }
        if o.move_nics && o.no_net {
            return Err("--move-nics is a network disturbance: not with --no-net".into());
        }
        Ok(Some(o))
    }
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not a number: {s}"))
}

fn parse_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("not a duration in seconds: {s}")),
    }
}

fn clock_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::rng::mix(t.as_nanos() as u64 ^ u64::from(std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<Opts>, String> {
        Opts::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_values() {
        let o = p(&[]).unwrap().unwrap();
        assert_eq!((o.calls, o.secs, o.threads), (Some(10_000), None, 4));
        let o = p(&["--seed", "0x10", "--secs=2.5", "--threads", "8", "--no-net"])
            .unwrap()
            .unwrap();
        assert_eq!((o.seed, o.calls, o.secs), (16, None, Some(2.5)));
        assert!(o.no_net && !o.strict_errno);
        let o = p(&["--calls", "5", "--secs", "1", "--strict-errno"])
            .unwrap()
            .unwrap();
        assert_eq!((o.calls, o.secs), (Some(5), Some(1.0)));
        assert!(o.strict_errno);
    }

    #[test]
    fn errors_and_help() {
        assert!(p(&["--help"]).unwrap().is_none());
        assert!(p(&["--calls"]).is_err());
        assert!(p(&["--calls", "x"]).is_err());
        assert!(p(&["--threads", "0"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["--no-net", "--move-nics"]).is_err());
        assert!(p(&["--secs", "-1"]).is_err());
    }
}
