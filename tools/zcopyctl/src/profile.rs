//! Profiles of the benchmark's sending thread: `perf script` text of a
//! `perf record -e cpu-clock -g` recording per (route, size, method),
//! turned into a flame graph and collapsed stacks per recording, and a
//! side-by-side table per (route, size) of where each method spends its
//! CPU: the symbols samples land in (self) and the symbols on the stack
//! (inclusive).
//!
//! Only the samples of one command's main thread (tid = pid) count: the
//! benchmark sends from its main thread, its receiver thread (`zc-recv`)
//! is not what is being measured. And only those of the timed send loop:
//! the recording covers the whole process (start-up, setup, and on
//! `tcp-veth` the check of the receiver's hash after the loop), so when
//! the bench's report `<stem>.json` lies next to `<stem>.perf.txt`, the
//! samples outside its samples' `[mono_start, mono_end]` are left out.
//! That needs the listing's times to be `CLOCK_MONOTONIC` seconds, as
//! `perf record -k CLOCK_MONOTONIC` makes them. Without the report (or
//! without times in it or in the listing) every sample is kept, with a
//! warning.
//!
//! The parser is our own and tolerant: a sample is a header line (`comm
//! pid/tid [cpu] time: period event:`, or `comm tid ...` as plain `perf
//! script` prints it; not indented, or indented with spaces as perf
//! right-aligns the command name) followed by tab-indented frame lines
//! (`address symbol+offset (dso)`, leaf first) up to a blank line. With
//! only a tid in the headers, the command name alone selects the samples;
//! the time is the first token after the ids that is seconds followed by
//! `:`. flame.rs draws the flame graphs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// The file names `profile` reads: `<route>-<size>-<method>.perf.txt`.
const SUFFIX: &str = ".perf.txt";

/// The bench report next to a listing: `<route>-<size>-<method>.json`.
const REPORT_SUFFIX: &str = ".json";

/// Symbols per list in profile.json.
const JSON_TOP: usize = 50;

/// The widest a symbol is shown in profile.txt (profile.json has it whole).
const SYMBOL_WIDTH: usize = 72;

/// The methods the table's columns start with, in this order; any others
/// follow alphabetically.
const METHOD_ORDER: [&str; 4] = [
    "msg-zerocopy",
    "io-uring-send-zc",
    "zcopy-send",
    "zcopy-send-batch",
];

/// A frame whose symbol perf does not know, and whose dso it does not
/// know either.
const UNKNOWN: &str = "[unknown]";

/// One sample of a `perf script` listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The thread's command name.
    pub comm: String,
    /// The process id, when the header has `pid/tid`.
    pub pid: Option<u32>,
    /// The thread id, when the header has `pid/tid` or just `tid`.
    pub tid: Option<u32>,
    /// The time, seconds (`CLOCK_MONOTONIC` with `perf record -k
    /// CLOCK_MONOTONIC`), when the header has one.
    pub time: Option<f64>,
    /// The call stack, leaf first, symbols without offsets.
    pub frames: Vec<String>,
}

impl Sample {
    /// Whether the sample is of `comm`'s main thread: the command name
    /// matches (perf keeps at most 15 bytes of it) and tid = pid, or, when
    /// the header has no `pid/tid`, the command name alone matches.
    pub fn is_main_thread_of(&self, comm: &str) -> bool {
        let name = comm.as_bytes();
        let name_matches =
            self.comm == comm || (name.len() > 15 && self.comm.as_bytes() == &name[..15]);
        name_matches
            && match (self.pid, self.tid) {
                (Some(pid), Some(tid)) => pid == tid,
                _ => true,
            }
    }

    /// Whether the sample's time lies in one of `spans` (`[start, end]`,
    /// seconds); a sample without a time lies in none.
    pub fn is_within(&self, spans: &[(f64, f64)]) -> bool {
        self.time
            .is_some_and(|t| spans.iter().any(|&(a, b)| a <= t && t <= b))
    }
}

/// A whitespace-separated token of `line`: (byte offset, token).
fn tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split_whitespace()
        .map(move |t| (t.as_ptr() as usize - line.as_ptr() as usize, t))
}

/// A `tid` or `pid/tid` token: (pid, tid).
fn parse_ids(token: &str) -> Option<(Option<u32>, u32)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match token.split_once('/') {
        Some((p, t)) if digits(p) && digits(t) => Some((p.parse().ok(), t.parse().ok()?)),
        None if digits(token) => Some((None, token.parse().ok()?)),
        _ => None,
    }
}

/// A `seconds:` time token (`7.614725:`): the seconds.
fn parse_time(token: &str) -> Option<f64> {
    let t = token.strip_suffix(':')?;
    let ok =
        t.bytes().any(|b| b.is_ascii_digit()) && t.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    ok.then(|| t.parse().ok()).flatten()
}

/// A sample header: the command name (which may hold spaces) is everything
/// before the first `pid/tid` or `tid` token after the first token; the
/// time is the first `seconds:` token after that (or after the first
/// token, without ids), before the event's name.
fn parse_header(line: &str) -> Sample {
    let line = line.trim();
    let ids = tokens(line)
        .skip(1)
        .find_map(|(at, t)| parse_ids(t).map(|ids| (at, ids)));
    let (comm, pid, tid, rest) = match ids {
        Some((at, (pid, tid))) => (line[..at].trim_end(), pid, Some(tid), &line[at..]),
        None => (
            line.split_whitespace().next().unwrap_or(""),
            None,
            None,
            line,
        ),
    };
    let time = rest.split_whitespace().skip(1).find_map(parse_time);
    Sample {
        comm: comm.to_string(),
        pid,
        tid,
        time,
        frames: Vec::new(),
    }
}

/// Whether `token` is a frame's address rather than a symbol: hex digits,
/// and a decimal digit among them or long (so `add` or `face` stay
/// symbols).
fn is_address(token: &str) -> bool {
    let t = token.strip_prefix("0x").unwrap_or(token);
    !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_hexdigit())
        && (t.len() >= 8 || t.bytes().any(|b| b.is_ascii_digit()))
}

/// Splits `symbol (dso)` at the parenthesised dso at the end, if any (a
/// symbol's own parentheses, as in `f(int)`, are not preceded by a blank).
fn split_dso(s: &str) -> (&str, Option<&str>) {
    if !s.ends_with(')') {
        return (s, None);
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    let before = &s[..i];
                    if before.is_empty() || before.ends_with(char::is_whitespace) {
                        return (before.trim_end(), Some(&s[i + 1..s.len() - 1]));
                    }
                    return (s, None);
                }
            }
            _ => {}
        }
    }
    (s, None)
}

/// `symbol` without a `+0x1a` (or `+0x1a/0x40`) offset.
pub fn strip_offset(symbol: &str) -> &str {
    match symbol.rfind("+0x") {
        Some(i)
            if symbol.len() > i + 3
                && symbol[i + 3..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'/' || b == b'x') =>
        {
            &symbol[..i]
        }
        _ => symbol,
    }
}

/// A frame line's symbol: the address dropped, the offset stripped; an
/// unknown symbol becomes its dso's file name in brackets, or `[unknown]`.
fn parse_frame(line: &str) -> String {
    let mut s = line.trim();
    match s.split_once(char::is_whitespace) {
        Some((first, rest)) if is_address(first) => s = rest.trim_start(),
        None if is_address(s) => s = "",
        _ => {}
    }
    let (symbol, dso) = split_dso(s);
    let symbol = strip_offset(symbol.trim());
    if !symbol.is_empty() && symbol != UNKNOWN {
        return symbol.to_string();
    }
    match dso.map(str::trim) {
        Some(d) if !d.is_empty() && d != UNKNOWN => {
            if d.starts_with('[') && d.ends_with(']') {
                d.to_string()
            } else {
                format!("[{}]", d.rsplit('/').next().unwrap_or(d))
            }
        }
        _ => UNKNOWN.to_string(),
    }
}

/// Whether `line` is a stack frame: perf indents frames with a tab; a
/// line indented with spaces (tabs expanded) is one too inside a sample
/// when it starts with an address. Anything else is a header: perf
/// right-aligns the command name, so a header may start with spaces.
fn is_frame(line: &str, in_sample: bool) -> bool {
    line.starts_with('\t')
        || (in_sample
            && line.starts_with(' ')
            && line.split_whitespace().next().is_some_and(is_address))
}

/// The samples of a `perf script` listing. Lines starting with `#` are
/// comments; frame lines before any header are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut current: Option<Sample> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            samples.extend(current.take());
        } else if is_frame(line, current.is_some()) {
            if let Some(s) = current.as_mut() {
                s.frames.push(parse_frame(line));
            }
        } else if !line.starts_with('#') {
            samples.extend(current.replace(parse_header(line)));
        }
    }
    samples.extend(current);
    samples
}

/// What one recording's counted samples add up to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Samples counted (of the main thread of the command, in the timed
    /// loop when its window is known).
    pub samples: u64,
    /// Samples in the listing, of any thread.
    pub recorded: u64,
    /// Samples of the main thread of the command in the listing, in the
    /// timed loop or not.
    pub main_thread: u64,
    /// Samples of any thread in the timed loop; `None` when its window is
    /// not known and every sample is kept.
    pub in_window: Option<u64>,
    /// Samples per leaf symbol.
    pub self_counts: HashMap<String, u64>,
    /// Samples per symbol anywhere on the stack (once per sample).
    pub inclusive: HashMap<String, u64>,
    /// Samples per stack, root first, `;`-separated.
    pub folded: BTreeMap<String, u64>,
}

impl Profile {
    /// The profile of `samples`, counting those of `comm`'s main thread. A
    /// sample without frames counts as one `[unknown]` frame.
    #[cfg(test)]
    pub fn new(samples: &[Sample], comm: &str) -> Profile {
        Profile::within(samples, comm, None)
    }

    /// The profile of `samples`, counting those of `comm`'s main thread
    /// whose time lies in one of `spans` (the timed loop), or every one of
    /// them without `spans`. A sample without frames counts as one
    /// `[unknown]` frame.
    pub fn within(samples: &[Sample], comm: &str, spans: Option<&[(f64, f64)]>) -> Profile {
        let mut p = Profile {
            recorded: samples.len() as u64,
            in_window: spans.map(|w| samples.iter().filter(|s| s.is_within(w)).count() as u64),
            ..Profile::default()
        };
        let unknown = [UNKNOWN.to_string()];
        for s in samples.iter().filter(|s| s.is_main_thread_of(comm)) {
            p.main_thread += 1;
            if spans.is_some_and(|w| !s.is_within(w)) {
                continue;
            }
            let frames = if s.frames.is_empty() {
                &unknown[..]
            } else {
                &s.frames[..]
            };
            p.samples += 1;
            *p.self_counts.entry(frames[0].clone()).or_default() += 1;
            let mut seen = HashSet::new();
            for f in frames.iter().filter(|f| seen.insert(f.as_str())) {
                *p.inclusive.entry(f.clone()).or_default() += 1;
            }
            let stack: Vec<&str> = frames.iter().rev().map(String::as_str).collect();
            *p.folded.entry(stack.join(";")).or_default() += 1;
        }
        p
    }

    /// Collapsed stacks: a `root;...;leaf count` line per stack.
    pub fn folded_text(&self) -> String {
        self.folded
            .iter()
            .fold(String::new(), |mut out, (stack, n)| {
                let _ = writeln!(out, "{stack} {n}");
                out
            })
    }
}

/// The `n` largest counts, largest first (ties by symbol).
fn top(counts: &HashMap<String, u64>, n: usize) -> Vec<Count> {
    let mut v: Vec<Count> = counts
        .iter()
        .map(|(s, &c)| Count {
            symbol: s.clone(),
            samples: c,
        })
        .collect();
    v.sort_by(|a, b| {
        b.samples
            .cmp(&a.samples)
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
    v.truncate(n);
    v
}

/// A symbol's sample count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub symbol: String,
    pub samples: u64,
}

/// `<route>-<size>-<method>`: the size is the first `-`-separated part
/// that starts with a digit.
fn parse_stem(stem: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = stem.split('-').collect();
    let i = parts
        .iter()
        .position(|p| p.starts_with(|c: char| c.is_ascii_digit()))?;
    if i == 0 || i + 1 == parts.len() {
        return None;
    }
    Some((
        parts[..i].join("-"),
        parts[i].to_string(),
        parts[i + 1..].join("-"),
    ))
}

/// A size from a file name in bytes, for ordering (`64K` and `1M` too).
fn size_bytes(size: &str) -> Option<u64> {
    let (digits, mult) = match size.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (size, 1),
        Some((i, _)) => (
            &size[..i],
            match size[i..].to_ascii_lowercase().as_str() {
                "k" | "kb" | "kib" => 1 << 10,
                "m" | "mb" | "mib" => 1 << 20,
                "g" | "gb" | "gib" => 1 << 30,
                _ => return None,
            },
        ),
    };
    digits.parse::<u64>().ok().map(|n| n * mult)
}

/// The columns' order: [`METHOD_ORDER`] first, then alphabetically.
fn method_key(m: &str) -> (usize, String) {
    let rank = METHOD_ORDER
        .iter()
        .position(|&k| k == m)
        .unwrap_or(METHOD_ORDER.len());
    (rank, m.to_string())
}

/// The timed parts of the bench report at `path`: each sample's
/// `[mono_start, mono_end]`, `CLOCK_MONOTONIC` seconds. An error says why
/// there are none (no report, not a report, no times in it).
pub fn timed_spans(path: &Path) -> std::result::Result<Vec<(f64, f64)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("no {}", path.display()))
        }
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let report: crate::bench::Report = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a bench report: {e}", path.display()))?;
    let spans: Vec<(f64, f64)> = report
        .samples
        .iter()
        .filter(|s| s.mono_end > 0.0 && s.mono_end >= s.mono_start)
        .map(|s| (s.mono_start, s.mono_end))
        .collect();
    if spans.is_empty() {
        return Err(format!(
            "{} has no timed-loop times (mono_start, mono_end)",
            path.display()
        ));
    }
    Ok(spans)
}

/// One recording: its name's parts and its profile.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The file name without `.perf.txt`.
    pub stem: String,
    pub route: String,
    pub size: String,
    pub method: String,
    pub profile: Profile,
    /// The timed loop's `[start, end]`s the samples were selected by;
    /// `None` when every sample was kept.
    pub spans: Option<Vec<(f64, f64)>>,
}

impl Recording {
    /// A recording named `stem`; a name not of the form
    /// `<route>-<size>-<method>` is a method of its own in route `other`.
    pub fn new(stem: &str, profile: Profile) -> Recording {
        let (route, size, method) = parse_stem(stem)
            .unwrap_or_else(|| ("other".to_string(), String::new(), stem.to_string()));
        Recording {
            stem: stem.to_string(),
            route,
            size,
            method,
            profile,
            spans: None,
        }
    }
}

/// profile.txt's account of the timed-loop windows: a line per recording
/// with how many of its samples lie in the timed loop.
pub fn windows_text(recordings: &[Recording], comm: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Samples in the timed loop (CLOCK_MONOTONIC windows from <file>{REPORT_SUFFIX}); \
         the others are left out."
    );
    let w = recordings
        .iter()
        .map(|r| r.stem.chars().count())
        .max()
        .unwrap_or(0);
    for r in recordings {
        let p = &r.profile;
        let _ = match (&r.spans, p.in_window) {
            (Some(spans), Some(kept)) => {
                let secs: f64 = spans.iter().map(|(a, b)| b - a).sum();
                writeln!(
                    out,
                    "  {:<w$}  {kept} of {} samples ({}), {} of {} of {comm}'s main thread ({}); {secs:.3} s",
                    r.stem,
                    p.recorded,
                    percent(kept, p.recorded),
                    p.samples,
                    p.main_thread,
                    percent(p.samples, p.main_thread),
                )
            }
            _ => writeln!(
                out,
                "  {:<w$}  no timed-loop window: all {} samples kept",
                r.stem, p.recorded
            ),
        };
    }
    out
}

/// A symbol cut to `width` characters for the table.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// `n` of `total` as a percentage with one decimal, `-` for none.
fn percent(n: u64, total: u64) -> String {
    if n == 0 || total == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / total as f64)
    }
}

/// One table: a row of sample totals, then a row per symbol with each
/// column's count of it as a percentage of the column's samples.
fn render_table(
    out: &mut String,
    title: &str,
    columns: &[&Recording],
    symbols: &[String],
    counts: impl Fn(&Profile) -> &HashMap<String, u64>,
) {
    let sw = symbols
        .iter()
        .map(|s| s.chars().count().min(SYMBOL_WIDTH))
        .chain([7])
        .max()
        .unwrap_or(7);
    let widths: Vec<usize> = columns.iter().map(|r| r.method.len().max(7)).collect();
    let _ = writeln!(out, "{title}");
    let _ = write!(out, "  {:<sw$}", "symbol");
    for (r, w) in columns.iter().zip(&widths) {
        let _ = write!(out, "  {:>w$}", r.method);
    }
    out.push('\n');
    let _ = write!(out, "  {:<sw$}", "samples");
    for (r, w) in columns.iter().zip(&widths) {
        let _ = write!(out, "  {:>w$}", r.profile.samples);
    }
    out.push('\n');
    for s in symbols {
        let _ = write!(out, "  {:<sw$}", cut(s, SYMBOL_WIDTH));
        for (r, w) in columns.iter().zip(&widths) {
            let n = counts(&r.profile).get(s).copied().unwrap_or(0);
            let _ = write!(out, "  {:>w$}", percent(n, r.profile.samples));
        }
        out.push('\n');
    }
}

/// The symbols of `columns` in order of their summed counts (ties by name).
fn by_sum<'a>(
    columns: &[&Recording],
    symbols: impl IntoIterator<Item = &'a String>,
    counts: impl Fn(&Profile) -> &HashMap<String, u64>,
) -> Vec<String> {
    let mut v: Vec<(u64, &String)> = symbols
        .into_iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|s| {
            let sum = columns
                .iter()
                .map(|r| counts(&r.profile).get(s).copied().unwrap_or(0))
                .sum();
            (sum, s)
        })
        .collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    v.into_iter().map(|(_, s)| s.clone()).collect()
}

/// The text report: per (route, size), in route then size order, a table
/// of self samples (the `n` symbols with the most across the group's
/// methods) and one of inclusive samples (each method's `n` symbols with
/// the most, in order of their sum across the methods).
pub fn table(recordings: &[Recording], comm: &str, n: usize) -> String {
    let mut groups: BTreeMap<(String, Option<u64>, String), Vec<&Recording>> = BTreeMap::new();
    for r in recordings {
        groups
            .entry((r.route.clone(), size_bytes(&r.size), r.size.clone()))
            .or_default()
            .push(r);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Samples of {comm}'s main thread; cells are % of the method's samples."
    );
    for ((route, _, size), mut columns) in groups {
        columns.sort_by_key(|r| method_key(&r.method));
        let name = if size.is_empty() {
            route
        } else {
            format!("{route}, {size} B")
        };
        let self_all = columns.iter().flat_map(|r| r.profile.self_counts.keys());
        let mut rows = by_sum(&columns, self_all, |p| &p.self_counts);
        rows.truncate(n);
        out.push('\n');
        render_table(
            &mut out,
            &format!("{name}: self (leaf frame)"),
            &columns,
            &rows,
            |p| &p.self_counts,
        );
        let tops: Vec<String> = columns
            .iter()
            .flat_map(|r| top(&r.profile.inclusive, n))
            .map(|c| c.symbol)
            .collect();
        let rows = by_sum(&columns, &tops, |p| &p.inclusive);
        out.push('\n');
        render_table(
            &mut out,
            &format!("{name}: inclusive (anywhere on the stack; each method's top {n})"),
            &columns,
            &rows,
            |p| &p.inclusive,
        );
    }
    out
}

/// One recording in profile.json.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub route: String,
    pub size: String,
    pub method: String,
    /// Samples counted (of the main thread of the command).
    pub samples: u64,
    /// Samples in the listing, of any thread.
    pub samples_recorded: u64,
    /// Samples of the main thread in the listing, in the timed loop or not.
    pub samples_main_thread: u64,
    /// Samples of any thread in the timed loop; null when its window is not
    /// known and every sample was kept.
    pub samples_in_window: Option<u64>,
    /// The timed loop's `[start, end]`s (`CLOCK_MONOTONIC` seconds) the
    /// samples were selected by; null when every sample was kept.
    pub windows: Option<Vec<[f64; 2]>>,
    /// The symbols most samples land in (leaf frame), most first.
    #[serde(rename = "self")]
    pub self_counts: Vec<Count>,
    /// The symbols most samples have on the stack, most first.
    pub inclusive: Vec<Count>,
}

/// profile.json.
#[derive(Debug, Serialize)]
pub struct Report {
    pub comm: String,
    pub files: Vec<FileReport>,
}

/// profile.json's contents.
pub fn report(recordings: &[Recording], comm: &str) -> Report {
    Report {
        comm: comm.to_string(),
        files: recordings
            .iter()
            .map(|r| FileReport {
                file: format!("{}{SUFFIX}", r.stem),
                route: r.route.clone(),
                size: r.size.clone(),
                method: r.method.clone(),
                samples: r.profile.samples,
                samples_recorded: r.profile.recorded,
                samples_main_thread: r.profile.main_thread,
                samples_in_window: r.profile.in_window,
                windows: r
                    .spans
                    .as_ref()
                    .map(|v| v.iter().map(|&(a, b)| [a, b]).collect()),
                self_counts: top(&r.profile.self_counts, JSON_TOP),
                inclusive: top(&r.profile.inclusive, JSON_TOP),
            })
            .collect(),
    }
}

/// Writes the flame graph of `p` to `svg`, titled `title`. An empty profile
/// gets a picture with its title and no frames.
fn flame_graph(p: &Profile, title: &str, svg: &Path) -> Result<()> {
    let stacks = p.folded.iter().map(|(s, &n)| (s.as_str(), n));
    std::fs::write(svg, crate::flame::svg(stacks, title))
        .with_context(|| format!("writing {}", svg.display()))
}

/// The `*.perf.txt` files in `dir`, by name.
fn listings(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        let is_listing = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.len() > SUFFIX.len() && n.ends_with(SUFFIX));
        if is_listing && path.is_file() {
            v.push(path);
        }
    }
    v.sort();
    Ok(v)
}

/// `zcopyctl profile`: reads every `*.perf.txt` in `dir` (with the bench
/// report `<stem>.json` next to it, the samples of its timed loop), writes
/// `<stem>.svg` and `<stem>.folded` for each, and `profile.txt` and
/// `profile.json`, into `out`; prints profile.txt (profile.json with
/// `json`).
pub fn run(json: bool, dir: &Path, out: &Path, comm: &str, n: usize) -> Result<()> {
    anyhow::ensure!(n > 0, "--top must be positive");
    let files = listings(dir)?;
    anyhow::ensure!(
        !files.is_empty(),
        "no <route>-<size>-<method>{SUFFIX} files in {}",
        dir.display()
    );
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut recordings = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = &name[..name.len() - SUFFIX.len()];
        let samples = parse(&String::from_utf8_lossy(&bytes));
        let spans = match timed_spans(&dir.join(format!("{stem}{REPORT_SUFFIX}"))) {
            Ok(_) if !samples.iter().any(|s| s.time.is_some()) => {
                eprintln!(
                    "warning: {}: no sample has a time; keeping all {}",
                    path.display(),
                    samples.len()
                );
                None
            }
            Ok(spans) => Some(spans),
            Err(why) => {
                eprintln!(
                    "warning: {}: {why}; keeping all {} samples, not only the timed loop's",
                    path.display(),
                    samples.len()
                );
                None
            }
        };
        let profile = Profile::within(&samples, comm, spans.as_deref());
        if profile.in_window == Some(0) && profile.recorded > 0 {
            eprintln!(
                "warning: {}: none of its {} samples lies in the timed loop \
                 (recorded without `perf record -k CLOCK_MONOTONIC`?)",
                path.display(),
                profile.recorded
            );
        } else if profile.samples == 0 {
            eprintln!(
                "warning: {}: none of its {} samples is of {comm}'s main thread{}",
                path.display(),
                profile.recorded,
                if spans.is_some() {
                    " in the timed loop"
                } else {
                    ""
                }
            );
        }
        let folded = out.join(format!("{stem}.folded"));
        std::fs::write(&folded, profile.folded_text())
            .with_context(|| format!("writing {}", folded.display()))?;
        flame_graph(&profile, stem, &out.join(format!("{stem}.svg")))?;
        let mut r = Recording::new(stem, profile);
        r.spans = spans;
        if r.route == "other" && r.size.is_empty() {
            eprintln!("warning: {name} is not named <route>-<size>-<method>{SUFFIX}");
        }
        recordings.push(r);
    }
    let text = format!(
        "{}\n{}",
        windows_text(&recordings, comm),
        table(&recordings, comm, n)
    );
    let report = serde_json::to_string_pretty(&report(&recordings, comm))?;
    let txt = out.join("profile.txt");
    std::fs::write(&txt, &text).with_context(|| format!("writing {}", txt.display()))?;
    let js = out.join("profile.json");
    std::fs::write(&js, &report).with_context(|| format!("writing {}", js.display()))?;
    if json {
        println!("{report}");
    } else {
        print!("{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three samples of the main thread (pid 100), two of another thread
    /// (tid 101), one of another command; a comment and an unknown frame
    /// in libc. perf right-aligns the command name; the last sample has
    /// its tabs expanded.
    const LISTING: &str = "\
# ========
# captured on: today
zcopyctl   100/100   [001]  45.678901:     250000 cpu-clock:ppp: 
\tffffffff81234567 copy_user_generic+0x1a ([kernel.kallsyms])
\tffffffff81200000 tcp_sendmsg_locked+0x2f0 ([kernel.kallsyms])
\tffffffff81100000 __x64_sys_sendto+0x10 ([kernel.kallsyms])
\t    7f0000001000 [unknown] (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    55aa00000100 main+0x40 (/usr/bin/zcopyctl)

zcopyctl   100/100   [001]  45.679151:     250000 cpu-clock:ppp: 
\tffffffff81234567 copy_user_generic+0x3 ([kernel.kallsyms])
\tffffffff81200000 tcp_sendmsg_locked+0x2f0 ([kernel.kallsyms])
\tffffffff81100000 __x64_sys_sendto+0x10 ([kernel.kallsyms])
\t    7f0000001000 [unknown] (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    55aa00000100 main+0x40 (/usr/bin/zcopyctl)

         zc-recv   100/101   [000]  45.679200:     250000 cpu-clock:ppp: 
\tffffffff81300000 tcp_recvmsg+0x1 ([kernel.kallsyms])

        zcopyctl   100/101   [000]  45.679300:     250000 cpu-clock:ppp: 
\tffffffff81300000 tcp_recvmsg+0x1 ([kernel.kallsyms])
\tffffffff81300100 tcp_recvmsg+0x80 ([kernel.kallsyms])

         swapper     0/0     [000]  45.679400:     250000 cpu-clock:ppp: 
\tffffffff81000000 default_idle+0x5 ([kernel.kallsyms])

        zcopyctl   100/100   [001]  45.679401:     250000 cpu-clock:ppp: 
        ffffffff81250000 skb_zerocopy_iter_stream+0x22 ([kernel.kallsyms])
        ffffffff81200000 tcp_sendmsg_locked+0x100 ([kernel.kallsyms])
        ffffffff81100000 __x64_sys_sendto+0x10 ([kernel.kallsyms])
            55aa00000100 main+0x40 (/usr/bin/zcopyctl)
";

    #[test]
    fn headers_and_frames_parse() {
        let s = parse(LISTING);
        assert_eq!(s.len(), 6);
        assert_eq!(
            (s[0].comm.as_str(), s[0].pid, s[0].tid),
            ("zcopyctl", Some(100), Some(100))
        );
        assert_eq!(
            s[0].frames,
            vec![
                "copy_user_generic",
                "tcp_sendmsg_locked",
                "__x64_sys_sendto",
                "[libc.so.6]",
                "main"
            ]
        );
        assert_eq!(
            (s[2].comm.as_str(), s[2].pid, s[2].tid),
            ("zc-recv", Some(100), Some(101))
        );
        assert_eq!((s[4].comm.as_str(), s[4].frames.len()), ("swapper", 1));
        assert_eq!(
            (s[5].comm.as_str(), s[5].pid, s[5].tid, s[5].frames.len()),
            ("zcopyctl", Some(100), Some(100), 4)
        );
        // No blank line at the end: the last sample still counts.
        assert_eq!(s[5].frames[0], "skb_zerocopy_iter_stream");
        assert_eq!(parse(LISTING.trim_end()).len(), 6);
    }

    #[test]
    fn default_perf_script_output_has_no_pid() {
        // `perf script` without -F prints the tid alone: the command name
        // decides.
        let text = "
        zcopyctl  4242 [000]  1.000001:     250000 cpu-clock: 
\t    ffffffff81000001 memcpy_orig+0x11 ([kernel.kallsyms])
\t    55aa00000100 main+0x40 (/usr/bin/zcopyctl)

         zc-recv  4243 [001]  1.000002:     250000 cpu-clock: 
\t    ffffffff81000002 tcp_recvmsg+0x11 ([kernel.kallsyms])

";
        let s = parse(text);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].comm.as_str(), s[0].pid, s[0].tid),
            ("zcopyctl", None, Some(4242))
        );
        assert_eq!(s[0].frames, ["memcpy_orig", "main"]);
        let p = Profile::new(&s, "zcopyctl");
        assert_eq!((p.samples, p.recorded), (1, 2));
        assert_eq!(p.folded_text(), "main;memcpy_orig 1\n");
    }

    #[test]
    fn tolerant_headers() {
        let h = parse_header("Chrome Child  4242/4243 [002] 1.0: 1 cpu-clock:");
        assert_eq!(
            (h.comm.as_str(), h.pid, h.tid),
            ("Chrome Child", Some(4242), Some(4243))
        );
        // `-F comm,tid`: no pid, so the command name alone decides.
        let h = parse_header("zcopyctl 4243 1.000: cpu-clock:");
        assert_eq!(
            (h.comm.as_str(), h.pid, h.tid),
            ("zcopyctl", None, Some(4243))
        );
        assert!(h.is_main_thread_of("zcopyctl"));
        // A command name of digits is still the command name.
        let h = parse_header("1234 7/7 [000] 1.0:");
        assert_eq!((h.comm.as_str(), h.pid, h.tid), ("1234", Some(7), Some(7)));
        let h = parse_header("lonely");
        assert_eq!((h.comm.as_str(), h.pid, h.tid), ("lonely", None, None));
        assert!(!h.is_main_thread_of("zcopyctl"));
        // perf keeps 15 bytes of a command name.
        let h = parse_header("a-very-long-nam 5/5 [000] 1.0:");
        assert!(h.is_main_thread_of("a-very-long-name-indeed"));
        assert!(!h.is_main_thread_of("a-very-long-na"));
    }

    #[test]
    fn headers_have_times() {
        let s = parse(LISTING);
        assert_eq!(s[0].time, Some(45.678901));
        assert_eq!(s[4].time, Some(45.6794));
        // `perf script -F +pid` after `perf record -k CLOCK_MONOTONIC`.
        let h = parse_header("zcopyctl    96/96        7.614725:     250000 cpu-clock: ");
        assert_eq!((h.pid, h.tid, h.time), (Some(96), Some(96), Some(7.614725)));
        let h = parse_header("zcopyctl 4243 12:  1 cpu-clock:");
        assert_eq!((h.tid, h.time), (Some(4243), Some(12.0)));
        // A command name like a time is not one; no ids, still a time.
        let h = parse_header("1.5: 7/7 [000] 2.5: 1 cpu-clock:");
        assert_eq!((h.comm.as_str(), h.time), ("1.5:", Some(2.5)));
        let h = parse_header("zcopyctl 3.25: cpu-clock:");
        assert_eq!(
            (h.comm.as_str(), h.tid, h.time),
            ("zcopyctl", None, Some(3.25))
        );
        // No time, or things that are not one.
        assert_eq!(parse_header("zcopyctl 7/7 [000] 1 cpu-clock:").time, None);
        assert_eq!(parse_header("zcopyctl 7/7 inf: nan: .: x:").time, None);
        assert_eq!(parse_header("lonely").time, None);
    }

    /// Main-thread samples at 1.0 (setup), 2.0 and 2.5 (the timed loop),
    /// 4.0 (the hash check after it), one without a time, and one of the
    /// receiver at 2.2.
    const TIMED: &str = "\
zcopyctl 9/9 1.000000: 1 cpu-clock:
\tffffffff81000001 setup+0x1 (/bin/zcopyctl)

zcopyctl 9/9 2.000000: 1 cpu-clock:
\tffffffff81000002 zc_send+0x1 ([kernel.kallsyms])

zc-recv 9/10 2.200000: 1 cpu-clock:
\tffffffff81000003 tcp_recvmsg+0x1 ([kernel.kallsyms])

zcopyctl 9/9 2.500000: 1 cpu-clock:
\tffffffff81000002 zc_send+0x1 ([kernel.kallsyms])

zcopyctl 9/9 4.000000: 1 cpu-clock:
\tffffffff81000004 fnv+0x1 (/bin/zcopyctl)

zcopyctl 9/9 [000] 1 cpu-clock:
\tffffffff81000004 fnv+0x1 (/bin/zcopyctl)
";

    #[test]
    fn the_window_keeps_the_timed_loop() {
        let s = parse(TIMED);
        assert_eq!(s.len(), 6);
        let get = |m: &HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        let p = Profile::within(&s, "zcopyctl", Some(&[(1.9, 3.0)]));
        assert_eq!(
            (p.samples, p.main_thread, p.recorded, p.in_window),
            (2, 5, 6, Some(3))
        );
        assert_eq!(get(&p.self_counts, "zc_send"), 2);
        assert_eq!(p.self_counts.len(), 1);
        assert_eq!(p.folded_text(), "zc_send 2\n");
        // The bounds are in; any of several windows will do.
        let p = Profile::within(&s, "zcopyctl", Some(&[(0.5, 1.0), (2.5, 2.6)]));
        assert_eq!((p.samples, p.in_window), (2, Some(2)));
        assert_eq!(get(&p.self_counts, "setup"), 1);
        assert_eq!(get(&p.self_counts, "zc_send"), 1);
        // Without a window every main-thread sample counts.
        let p = Profile::within(&s, "zcopyctl", None);
        assert_eq!((p.samples, p.main_thread, p.in_window), (5, 5, None));
        assert_eq!(p, Profile::new(&s, "zcopyctl"));
    }

    /// A bench report with the given samples' (mono_start, mono_end).
    fn bench_report(spans: &[(f64, f64)]) -> String {
        let samples: Vec<String> = spans
            .iter()
            .map(|(a, b)| {
                format!(
                    r#"{{"method":"zcopy-send","route":"tcp-veth","size":4096,"rep":0,
                    "sends":1,"bytes":4096,"wall_s":1.0,"cpu_s":1.0,"copied_sends":0,
                    "verified":true,"mono_start":{a},"mono_end":{b}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"kernel":"6.1","cpus":2,"samples":[{}],"points":[],"break_even":[]}}"#,
            samples.join(",")
        )
    }

    #[test]
    fn spans_come_from_the_bench_report() {
        let dir = std::env::temp_dir().join(format!("zcopyctl-spans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r.json");
        assert!(timed_spans(&f).unwrap_err().starts_with("no "));
        std::fs::write(&f, bench_report(&[(1.5, 2.5), (0.0, 0.0)])).unwrap();
        assert_eq!(timed_spans(&f), Ok(vec![(1.5, 2.5)]));
        // An older report: no times.
        let old = bench_report(&[(1.0, 2.0)]).replace(r#","mono_start":1,"mono_end":2"#, "");
        assert!(!old.contains("mono"));
        std::fs::write(&f, old).unwrap();
        assert!(timed_spans(&f).unwrap_err().contains("no timed-loop times"));
        std::fs::write(&f, "{}").unwrap();
        assert!(timed_spans(&f).unwrap_err().contains("not a bench report"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn run_keeps_the_timed_loop_or_everything_without_a_report() {
        let dir = std::env::temp_dir().join(format!("zcopyctl-window-{}", std::process::id()));
        let out = dir.join("out");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tcp-veth-4096-zcopy-send.perf.txt"), TIMED).unwrap();
        std::fs::write(
            dir.join("tcp-veth-4096-zcopy-send.json"),
            bench_report(&[(1.9, 3.0)]),
        )
        .unwrap();
        // No report next to this one: all samples kept.
        std::fs::write(dir.join("tcp-veth-4096-sendfile.perf.txt"), TIMED).unwrap();
        run(true, &dir, &out, "zcopyctl", 5).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("profile.json")).unwrap())
                .unwrap();
        let zc = &v["files"][1];
        assert_eq!(zc["method"], "zcopy-send");
        assert_eq!(
            (
                zc["samples"].as_u64(),
                zc["samples_main_thread"].as_u64(),
                zc["samples_in_window"].as_u64(),
                zc["samples_recorded"].as_u64()
            ),
            (Some(2), Some(5), Some(3), Some(6))
        );
        assert_eq!(zc["windows"], serde_json::json!([[1.9, 3.0]]));
        assert_eq!(zc["self"][0]["symbol"], "zc_send");
        let sf = &v["files"][0];
        assert_eq!(sf["method"], "sendfile");
        assert_eq!(
            (sf["samples"].as_u64(), sf["samples_recorded"].as_u64()),
            (Some(5), Some(6))
        );
        assert!(sf["samples_in_window"].is_null() && sf["windows"].is_null());
        assert_eq!(
            std::fs::read_to_string(out.join("tcp-veth-4096-sendfile.folded"))
                .unwrap()
                .lines()
                .count(),
            3
        );
        let txt = std::fs::read_to_string(out.join("profile.txt")).unwrap();
        assert!(txt.starts_with("Samples in the timed loop"), "{txt}");
        assert!(txt.contains(
            "  tcp-veth-4096-zcopy-send  3 of 6 samples (50.0%), \
             2 of 5 of zcopyctl's main thread (40.0%); 1.100 s\n"
        ));
        assert!(
            txt.contains("  tcp-veth-4096-sendfile    no timed-loop window: all 6 samples kept\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn frames_lose_offsets_and_unknowns_keep_the_dso() {
        assert_eq!(strip_offset("copy_user_generic+0x1a"), "copy_user_generic");
        assert_eq!(strip_offset("do_syscall_64+0x5c/0x90"), "do_syscall_64");
        assert_eq!(strip_offset("a+b"), "a+b");
        assert_eq!(strip_offset("x+0x"), "x+0x");
        assert_eq!(
            parse_frame("\t ffffffff81234567 symbol_name+0x1a ([kernel.kallsyms])"),
            "symbol_name"
        );
        assert_eq!(parse_frame("\t 7f00 [unknown] (libc.so.6)"), "[libc.so.6]");
        assert_eq!(
            parse_frame("\t ffffffff81234567 [unknown] ([kernel.kallsyms])"),
            "[kernel.kallsyms]"
        );
        assert_eq!(parse_frame("\t 0 [unknown] ([unknown])"), "[unknown]");
        assert_eq!(parse_frame("\t ffffffff81234567"), "[unknown]");
        // A symbol's own parentheses and spaces survive; no address is fine.
        assert_eq!(
            parse_frame("\t 401000 foo(int) const+0x4 (/bin/x)"),
            "foo(int) const"
        );
        assert_eq!(
            parse_frame("\t <T as core::fmt::Debug>::fmt (/bin/x)"),
            "<T as core::fmt::Debug>::fmt"
        );
        assert_eq!(parse_frame("\t add (/bin/x)"), "add");
    }

    #[test]
    fn counts_are_of_the_main_thread() {
        let p = Profile::new(&parse(LISTING), "zcopyctl");
        assert_eq!((p.samples, p.recorded), (3, 6));
        let get = |m: &HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        assert_eq!(get(&p.self_counts, "copy_user_generic"), 2);
        assert_eq!(get(&p.self_counts, "skb_zerocopy_iter_stream"), 1);
        assert_eq!(p.self_counts.len(), 2);
        // The zcopyctl-named thread 101 is left out.
        assert_eq!(get(&p.self_counts, "tcp_recvmsg"), 0);
        assert_eq!(get(&p.inclusive, "tcp_recvmsg"), 0);
        assert_eq!(get(&p.inclusive, "main"), 3);
        assert_eq!(get(&p.inclusive, "tcp_sendmsg_locked"), 3);
        assert_eq!(get(&p.inclusive, "[libc.so.6]"), 2);
        assert_eq!(get(&p.inclusive, "copy_user_generic"), 2);
        assert_eq!(p.inclusive.len(), 6);
        // Without a pid/tid filter the other thread's recursion counts once.
        let mut other = parse(LISTING);
        for s in &mut other {
            s.pid = None;
        }
        let q = Profile::new(&other, "zcopyctl");
        assert_eq!(q.samples, 4);
        assert_eq!(get(&q.self_counts, "tcp_recvmsg"), 1);
        assert_eq!(get(&q.inclusive, "tcp_recvmsg"), 1);
        let r = Profile::new(&parse(LISTING), "zc-recv");
        assert_eq!(r.samples, 0);
    }

    #[test]
    fn folded_stacks_are_root_first() {
        let p = Profile::new(&parse(LISTING), "zcopyctl");
        assert_eq!(
            p.folded_text(),
            "main;[libc.so.6];__x64_sys_sendto;tcp_sendmsg_locked;copy_user_generic 2\n\
             main;__x64_sys_sendto;tcp_sendmsg_locked;skb_zerocopy_iter_stream 1\n"
        );
        let p = Profile::new(&parse("zcopyctl 1/1 [0] 1.0: x:\n"), "zcopyctl");
        assert_eq!(p.folded_text(), "[unknown] 1\n");
    }

    #[test]
    fn file_names_split_into_route_size_method() {
        assert_eq!(
            parse_stem("tcp-veth-65536-io-uring-send-zc"),
            Some(("tcp-veth".into(), "65536".into(), "io-uring-send-zc".into()))
        );
        assert_eq!(parse_stem("udp-dummy-64K-zcopy-send").unwrap().1, "64K");
        assert_eq!(parse_stem("nosize-here"), None);
        assert_eq!(parse_stem("4096-x"), None);
        assert_eq!(size_bytes("64K"), Some(65536));
        assert_eq!(size_bytes("1M"), Some(1 << 20));
        assert_eq!(size_bytes("4096"), Some(4096));
        assert_eq!(size_bytes("4x"), None);
        let r = Recording::new("odd", Profile::default());
        assert_eq!((r.route.as_str(), r.method.as_str()), ("other", "odd"));
    }

    /// A profile of main-thread samples: (stack leaf first, samples).
    fn profile(stacks: &[(&[&str], usize)]) -> Profile {
        let samples: Vec<Sample> = stacks
            .iter()
            .flat_map(|&(frames, n)| {
                std::iter::repeat_n(
                    Sample {
                        comm: "zcopyctl".into(),
                        pid: Some(1),
                        tid: Some(1),
                        time: None,
                        frames: frames.iter().map(|f| f.to_string()).collect(),
                    },
                    n,
                )
            })
            .collect();
        Profile::new(&samples, "zcopyctl")
    }

    #[test]
    fn tables_show_percentages_side_by_side() {
        let recs = vec![
            Recording::new(
                "tcp-veth-4096-zcopy-send",
                profile(&[(&["zc_send", "main"], 3), (&["copy", "main"], 1)]),
            ),
            Recording::new(
                "tcp-veth-4096-msg-zerocopy",
                profile(&[(&["copy", "send", "main"], 6), (&["idle", "main"], 2)]),
            ),
            Recording::new("udp-dummy-1024-msg-zerocopy", profile(&[(&["x"], 1)])),
            Recording::new("tcp-veth-1024-sendfile", profile(&[(&["y"], 2)])),
        ];
        // msg-zerocopy's inclusive top 2 are main (8) and copy (6; send
        // has 6 too, the tie goes by name), zcopy-send's main (4) and
        // zc_send (3); the rows go by the sum across the methods.
        let t = table(&recs, "zcopyctl", 2);
        let expected = "\
Samples of zcopyctl's main thread; cells are % of the method's samples.

tcp-veth, 1024 B: self (leaf frame)
  symbol   sendfile
  samples         2
  y          100.0%

tcp-veth, 1024 B: inclusive (anywhere on the stack; each method's top 2)
  symbol   sendfile
  samples         2
  y          100.0%

tcp-veth, 4096 B: self (leaf frame)
  symbol   msg-zerocopy  zcopy-send
  samples             8           4
  copy            75.0%       25.0%
  zc_send             -       75.0%

tcp-veth, 4096 B: inclusive (anywhere on the stack; each method's top 2)
  symbol   msg-zerocopy  zcopy-send
  samples             8           4
  main           100.0%      100.0%
  copy            75.0%       25.0%
  zc_send             -       75.0%

udp-dummy, 1024 B: self (leaf frame)
  symbol   msg-zerocopy
  samples             1
  x              100.0%

udp-dummy, 1024 B: inclusive (anywhere on the stack; each method's top 2)
  symbol   msg-zerocopy
  samples             1
  x              100.0%
";
        assert_eq!(t, expected);
        // Methods in the fixed order, then the others alphabetically.
        let mut m = vec!["zz", "zcopy-send", "aa", "io-uring-send-zc", "msg-zerocopy"];
        m.sort_by_key(|m| method_key(m));
        assert_eq!(
            m,
            ["msg-zerocopy", "io-uring-send-zc", "zcopy-send", "aa", "zz"]
        );
    }

    #[test]
    fn report_and_files_are_written() {
        let dir = std::env::temp_dir().join(format!("zcopyctl-profile-{}", std::process::id()));
        let out = dir.join("out");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tcp-veth-4096-zcopy-send.perf.txt"), LISTING).unwrap();
        std::fs::write(dir.join("tcp-veth-4096-msg-zerocopy.perf.txt"), "").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a listing").unwrap();
        run(true, &dir, &out, "zcopyctl", 5).unwrap();
        let svg = std::fs::read_to_string(out.join("tcp-veth-4096-zcopy-send.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("copy_user_generic"));
        assert!(svg.contains("tcp-veth-4096-zcopy-send"));
        let folded = std::fs::read_to_string(out.join("tcp-veth-4096-zcopy-send.folded")).unwrap();
        assert_eq!(folded.lines().count(), 2);
        assert_eq!(
            std::fs::read_to_string(out.join("tcp-veth-4096-msg-zerocopy.folded")).unwrap(),
            ""
        );
        assert!(out.join("tcp-veth-4096-msg-zerocopy.svg").exists());
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("profile.json")).unwrap())
                .unwrap();
        let f = &v["files"][1];
        assert_eq!(f["method"], "zcopy-send");
        assert_eq!(
            (f["samples"].as_u64(), f["samples_recorded"].as_u64()),
            (Some(3), Some(6))
        );
        assert_eq!(f["self"][0]["symbol"], "copy_user_generic");
        assert_eq!(f["self"][0]["samples"], 2);
        assert_eq!(f["inclusive"][0]["samples"], 3);
        assert_eq!(v["files"][0]["samples"], 0);
        let txt = std::fs::read_to_string(out.join("profile.txt")).unwrap();
        let row = |name: &str| -> Vec<String> {
            txt.lines()
                .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
                .find(|w| w.first().map(String::as_str) == Some(name))
                .unwrap()
        };
        // The empty msg-zerocopy listing comes first, then zcopy-send.
        assert_eq!(row("symbol"), ["symbol", "msg-zerocopy", "zcopy-send"]);
        assert_eq!(row("samples"), ["samples", "0", "3"]);
        assert_eq!(
            row("copy_user_generic"),
            ["copy_user_generic", "-", "66.7%"]
        );
        assert_eq!(row("[libc.so.6]"), ["[libc.so.6]", "-", "66.7%"]);
        assert!(!txt.contains("tcp_recvmsg"));
        assert!(run(false, &out, &out, "zcopyctl", 5).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
