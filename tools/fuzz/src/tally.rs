//! What happened: a count per (call, errno), and the findings.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    sync::Mutex,
};

use crate::ioctls::{errno_name, Op};

/// Counts per (call, errno); errno 0 is success. One per thread, merged
/// at the end.
#[derive(Default, Clone)]
pub struct Tally {
    counts: BTreeMap<(Op, i32), u64>,
}

impl Tally {
    pub fn add(&mut self, op: Op, errno: i32) {
        *self.counts.entry((op, errno)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        for (&k, &n) in &other.counts {
            *self.counts.entry(k).or_default() += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// One line per call: `  SEND ok=12 EINVAL=3 ...`, most frequent
    /// first after `ok`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for op in Op::ALL {
            let mut v: Vec<(i32, u64)> = self
                .counts
                .iter()
                .filter(|((o, _), _)| *o == op)
                .map(|(&(_, e), &n)| (e, n))
                .collect();
            if v.is_empty() {
                continue;
            }
            v.sort_by_key(|&(e, n)| (e != 0, std::cmp::Reverse(n), e));
            let mut line = format!("  {:<11}", op.name());
            for (e, n) in v {
                let _ = write!(line, " {}={n}", errno_name(e));
            }
            out.push(line);
        }
        out
    }
}

/// A kind of finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An errno `abi.rst` does not document for that call.
    Undocumented,
    /// The ABI decides the outcome, and it was another errno.
    Oracle,
    /// The call had to fail and succeeded.
    UnexpectedSuccess,
    /// A successful call's output contradicts the ABI.
    BadOutput,
    /// Completion records that do not match the sends.
    Records,
    /// The DMA engine timed out (`ETIMEDOUT`) or is wedged (`EIO`): a
    /// transfer never completed.
    Engine,
    /// Worth knowing, never a failure.
    Note,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Undocumented => "undocumented errno",
            Kind::Oracle => "wrong errno",
            Kind::UnexpectedSuccess => "unexpected success",
            Kind::BadOutput => "bad output",
            Kind::Records => "completion records",
            Kind::Engine => "DMA engine",
            Kind::Note => "observation",
        }
    }

    /// Whether it fails the run (`strict`: with `--strict-errno`).
    pub fn fatal(self, strict: bool) -> bool {
        match self {
            Kind::UnexpectedSuccess | Kind::BadOutput | Kind::Records | Kind::Engine => true,
            Kind::Undocumented | Kind::Oracle => strict,
            Kind::Note => false,
        }
    }
}

/// The findings, deduplicated by (kind, key): each is printed once with
/// its first example and how often it happened.
#[derive(Default)]
pub struct Findings {
    inner: Mutex<HashMap<(Kind, String), (u64, String)>>,
    verbose: bool,
}

impl Findings {
    pub fn new(verbose: bool) -> Self {
        Self {
            inner: Mutex::default(),
            verbose,
        }
    }

    /// Notes a finding of `kind`; `key` says what makes two the same,
    /// `example` what happened this time.
    pub fn add(&self, kind: Kind, key: String, example: impl FnOnce() -> String) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(&(kind, key.clone())) {
            Some((n, _)) => *n += 1,
            None => {
                let ex = example();
                if self.verbose {
                    eprintln!("zcopy-fuzz: {}: {key}: {ex}", kind.name());
                }
                m.insert((kind, key), (1, ex));
            }
        }
    }

    /// `(kind, key, count, example)`, sorted.
    pub fn list(&self) -> Vec<(Kind, String, u64, String)> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m
            .iter()
            .map(|((k, key), (n, ex))| (*k, key.clone(), *n, ex.clone()))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_compact_and_ordered() {
        let mut t = Tally::default();
        t.add(Op::Send, libc::EINVAL);
        t.add(Op::Send, 0);
        t.add(Op::Send, libc::EPIPE);
        t.add(Op::Send, libc::EPIPE);
        t.add(Op::Register, libc::EFAULT);
        let mut u = Tally::default();
        u.merge(&t);
        u.merge(&t);
        assert_eq!(u.total(), 10);
        let l = u.lines();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].trim(), "REGISTER    EFAULT=2");
        assert_eq!(l[1].trim(), "SEND        ok=2 EPIPE=4 EINVAL=2");
    }

    #[test]
    fn findings_deduplicate() {
        let f = Findings::new(false);
        f.add(Kind::Oracle, "a".into(), || "first".into());
        f.add(Kind::Oracle, "a".into(), || "second".into());
        f.add(Kind::Undocumented, "a".into(), || "x".into());
        let l = f.list();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].2, 1);
        assert_eq!((l[1].2, l[1].3.as_str()), (2, "first"));
    }
}
