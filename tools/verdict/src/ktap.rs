//! A parser for KTAP, the Kernel Test Anything Protocol
//! (`Documentation/dev-tools/ktap.rst`), enough of it to count results.
//!
//! Subtests are nested by indentation: a result line closes the results
//! indented deeper than itself that came before it, which become its
//! children. Only leaves (results with no children) are counted, so a suite
//! is as many results as it has cases. A plan (`1..N`) that promised more
//! results than arrived means the run stopped early: each missing result is
//! counted as a failure.

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

/// One test result, with the diagnostic lines that preceded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// Names from the outermost test down to this one, joined by `.`.
    pub name: String,
    pub outcome: Outcome,
    /// `#` lines printed at the test's own level or below before its result.
    pub diagnostics: Vec<String>,
}

struct Node {
    indent: usize,
    name: String,
    outcome: Outcome,
    diagnostics: Vec<String>,
    children: Vec<Node>,
    /// The plan printed by this node's children, if any.
    plan: Option<usize>,
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Parses `ok 3 name # SKIP reason` and `not ok 3 name`.
fn parse_result(line: &str) -> Option<(Outcome, String)> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
    let (name, directive) = match rest.split_once('#') {
        Some((n, d)) => (n.trim(), d.trim()),
        None => (rest, ""),
    };
    let name = name.trim_start_matches("- ").to_string();
    let skip = directive.to_ascii_uppercase().starts_with("SKIP");
    let outcome = match (ok, skip) {
        (_, true) => Outcome::Skip,
        (true, false) => Outcome::Pass,
        (false, false) => Outcome::Fail,
    };
    Some((outcome, name))
}

fn parse_plan(line: &str) -> Option<usize> {
    line.strip_prefix("1..")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Parses a KTAP document into its leaf results, in order.
pub fn parse(text: &str) -> Vec<TestResult> {
    // Finished nodes not yet claimed by a parent, in order.
    let mut pending: Vec<Node> = Vec::new();
    // Plans seen, by indentation, waiting for the parent result.
    let mut plans: Vec<(usize, usize)> = Vec::new();
    // Diagnostics waiting for the next result at their level or above.
    let mut diags: Vec<(usize, String)> = Vec::new();

    for raw in text.lines() {
        let line = raw.trim_end();
        let indent = indent_of(line);
        let body = line.trim_start();
        if body.is_empty() || body.starts_with("KTAP version") || body.starts_with("TAP version") {
            continue;
        }
        if let Some(n) = parse_plan(body) {
            plans.push((indent, n));
            continue;
        }
        if let Some((outcome, name)) = parse_result(body) {
            let split = pending
                .iter()
                .rposition(|n| n.indent <= indent)
                .map_or(0, |i| i + 1);
            let children: Vec<Node> = pending.drain(split..).collect();
            let plan = plans
                .iter()
                .rposition(|&(i, _)| i > indent)
                .map(|p| plans.remove(p).1);
            plans.retain(|&(i, _)| i <= indent);
            let keep = diags
                .iter()
                .position(|(i, _)| *i >= indent)
                .unwrap_or(diags.len());
            let diagnostics = diags.drain(keep..).map(|(_, d)| d).collect();
            pending.push(Node {
                indent,
                name,
                outcome,
                diagnostics,
                children,
                plan,
            });
            continue;
        }
        if body.starts_with('#') {
            diags.push((indent, body.to_string()));
        }
    }

    // What is left at the end of the document is the top level. A plan for
    // it counts the top-level results.
    let mut out = Vec::new();
    let top_plan = plans.iter().find(|&&(i, _)| i == 0).map(|&(_, n)| n);
    let top = pending.len();
    for node in pending {
        flatten(node, "", &mut out);
    }
    push_missing(top_plan, top, "", &mut out);
    out
}

fn push_missing(plan: Option<usize>, got: usize, prefix: &str, out: &mut Vec<TestResult>) {
    if let Some(n) = plan {
        for k in got..n {
            out.push(TestResult {
                name: format!("{prefix}missing result {} of {n}", k + 1),
                outcome: Outcome::Fail,
                diagnostics: vec!["# the run stopped before this result".into()],
            });
        }
    }
}

fn flatten(node: Node, prefix: &str, out: &mut Vec<TestResult>) {
    let name = format!("{prefix}{}", node.name);
    if node.children.is_empty() {
        if node.plan.unwrap_or(0) > 0 {
            // A parent that planned children and printed none of them.
            push_missing(node.plan, 0, &format!("{name}."), out);
        }
        out.push(TestResult {
            name,
            outcome: node.outcome,
            diagnostics: node.diagnostics,
        });
        return;
    }
    let got = node.children.len();
    let child_prefix = format!("{name}.");
    let any_failed_child = node.children.iter().any(|c| c.outcome == Outcome::Fail)
        || node.plan.is_some_and(|n| got < n);
    for child in node.children {
        flatten(child, &child_prefix, out);
    }
    push_missing(node.plan, got, &child_prefix, out);
    // A parent that failed with every child passing failed on its own
    // (a suite init or exit error): that must count too.
    if node.outcome == Outcome::Fail && !any_failed_child {
        out.push(TestResult {
            name,
            outcome: Outcome::Fail,
            diagnostics: node.diagnostics,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(text: &str) -> Vec<(String, Outcome)> {
        parse(text)
            .into_iter()
            .map(|r| (r.name, r.outcome))
            .collect()
    }

    #[test]
    fn kunit_debugfs_suite() {
        let text = "KTAP version 1\n\
                    # Subtest: zcopy_abi\n\
                    # module: zcopy\n\
                    1..2\n\
                    ok 1 ioctl_numbers_match_the_c_header\n\
                    not ok 2 version_struct_is_abi_stable\n\
                    ok 1 zcopy_abi\n";
        // Without indentation the cases are top-level siblings of the suite.
        let r = outcomes(text);
        assert_eq!(r.iter().filter(|(_, o)| *o == Outcome::Fail).count(), 1);
    }

    #[test]
    fn nested_suite_counts_leaves_with_names() {
        let text = "KTAP version 1\n\
                    1..1\n    \
                    KTAP version 1\n    \
                    # Subtest: zcopy_abi\n    \
                    1..2\n    \
                    ok 1 a\n    \
                    # a diagnostic\n    \
                    not ok 2 b\n\
                    not ok 1 zcopy_abi\n";
        let r = parse(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "zcopy_abi.a");
        assert_eq!(r[0].outcome, Outcome::Pass);
        assert_eq!(r[1].name, "zcopy_abi.b");
        assert_eq!(r[1].outcome, Outcome::Fail);
        assert_eq!(r[1].diagnostics, vec!["# a diagnostic".to_string()]);
    }

    #[test]
    fn skip_directive() {
        let r = outcomes("1..2\nok 1 x # SKIP no device\nok 2 - y\n");
        assert_eq!(
            r,
            vec![("x".into(), Outcome::Skip), ("y".into(), Outcome::Pass)]
        );
    }

    #[test]
    fn truncated_run_counts_missing_results() {
        let r = outcomes("KTAP version 1\n1..3\nok 1 first\n");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], ("first".into(), Outcome::Pass));
        assert!(r[1..].iter().all(|(_, o)| *o == Outcome::Fail));
    }

    #[test]
    fn truncated_suite_counts_missing_cases() {
        let text = "1..1\n    1..3\n    ok 1 a\nnot ok 1 s\n";
        let r = outcomes(text);
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter().filter(|(_, o)| *o == Outcome::Fail).count(), 2);
    }

    #[test]
    fn failed_parent_with_passing_children_fails() {
        let text = "1..1\n    1..1\n    ok 1 a\nnot ok 1 suite\n";
        let r = outcomes(text);
        assert_eq!(
            r,
            vec![
                ("suite.a".into(), Outcome::Pass),
                ("suite".into(), Outcome::Fail)
            ]
        );
    }

    #[test]
    fn empty_input_has_no_results() {
        assert!(parse("").is_empty());
    }
}
