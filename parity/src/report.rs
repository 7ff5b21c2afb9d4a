//! The report: one row per check, as a table and as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::run::{Check, Kind, Verdict};
use crate::target::Target;

/// One check's result.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Row {
    /// The check's name.
    pub check: String,
    /// `contract` or `observation`.
    pub kind: String,
    /// What the local gateway does: `pass` for a contract check, the value for an
    /// observation.
    pub local: String,
    /// What the target did: `pass`, `FAIL`, `skipped`, or the observed value (`error`
    /// when the probe could not observe).
    pub target: String,
    /// Whether local and target agree (`None`: skipped).
    pub agree: Option<bool>,
    /// Details: why it failed, what was seen.
    pub detail: String,
}

impl Row {
    pub(crate) fn new(check: &Check, verdict: Verdict) -> Self {
        let (kind, local) = match check.kind {
            Kind::Contract => ("contract", "pass"),
            Kind::Observation { local } => ("observation", local),
        };
        let (target, agree, detail) = match (check.kind, verdict) {
            (_, Verdict::Skipped(why)) => ("skipped".to_owned(), None, why),
            (Kind::Contract, Verdict::Pass(d)) => ("pass".to_owned(), Some(true), d),
            (Kind::Contract, Verdict::Fail(d)) => ("FAIL".to_owned(), Some(false), d),
            (Kind::Observation { .. }, Verdict::Fail(d)) => ("error".to_owned(), Some(false), d),
            (_, Verdict::Observed { value, detail }) => {
                let agree = value == local;
                (value, Some(agree), detail)
            }
            (Kind::Observation { .. }, Verdict::Pass(d)) => ("pass".to_owned(), Some(false), d),
        };
        Self {
            check: check.name.to_owned(),
            kind: kind.to_owned(),
            local: local.to_owned(),
            target,
            agree,
            detail,
        }
    }

    /// Whether this is a failed contract check.
    pub fn is_contract_failure(&self) -> bool {
        self.kind == "contract" && self.agree == Some(false)
    }
}

/// A run's report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The WebSocket URL.
    pub ws: String,
    /// The HTTP base URL.
    pub http: String,
    /// Whether the target is the local gateway (loopback).
    pub loopback: bool,
    /// One row per check, in order.
    pub checks: Vec<Row>,
}

impl Report {
    pub(crate) fn new(target: &Target, checks: Vec<Row>) -> Self {
        Self {
            ws: target.ws_url().to_owned(),
            http: target.http_url().to_owned(),
            loopback: target.is_loopback(),
            checks,
        }
    }

    /// How many contract checks failed (the exit code is non-zero when any did).
    pub fn contract_failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|r| r.is_contract_failure())
            .count()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The table: check, kind, local, target, agree; then the details of every row that
    /// does not agree, and a summary line.
    pub fn table(&self) -> String {
        let cut = |s: &str, n: usize| -> String {
            if s.chars().count() <= n {
                s.to_owned()
            } else {
                let mut t: String = s.chars().take(n - 1).collect();
                t.push('…');
                t
            }
        };
        let w = self
            .checks
            .iter()
            .map(|r| r.check.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<w$}  {:<11}  {:<24}  {:<24}  agree",
            "check", "kind", "local", "target"
        );
        for r in &self.checks {
            let agree = match r.agree {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            let _ = writeln!(
                out,
                "{:<w$}  {:<11}  {:<24}  {:<24}  {agree}",
                r.check,
                r.kind,
                cut(&r.local, 24),
                cut(&r.target, 24)
            );
        }
        for r in self.checks.iter().filter(|r| r.agree != Some(true)) {
            let _ = writeln!(out, "\n{} ({}): {}", r.check, r.target, r.detail);
        }
        let agree = self.checks.iter().filter(|r| r.agree == Some(true)).count();
        let skipped = self.checks.iter().filter(|r| r.agree.is_none()).count();
        let _ = writeln!(
            out,
            "\n{} checks: {agree} agree, {} contract failures, {skipped} skipped",
            self.checks.len(),
            self.contract_failures()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::CheckFuture;

    fn never(_: std::sync::Arc<Target>) -> CheckFuture {
        Box::pin(async { Verdict::Skipped("not run".into()) })
    }

    fn check(kind: Kind) -> Check {
        Check {
            name: "x.y",
            kind,
            about: "",
            slow: false,
            run: never,
        }
    }

    #[test]
    fn rows_compare_with_the_local_value() {
        let contract = check(Kind::Contract);
        let obs = check(Kind::Observation { local: "1000" });
        let pass = Row::new(&contract, Verdict::Pass("ok".into()));
        assert_eq!((pass.target.as_str(), pass.agree), ("pass", Some(true)));
        let fail = Row::new(&contract, Verdict::Fail("bad".into()));
        assert!(fail.is_contract_failure());
        assert_eq!(fail.target, "FAIL");
        let same = Row::new(&obs, Verdict::observed("1000", ""));
        assert_eq!((same.local.as_str(), same.agree), ("1000", Some(true)));
        let other = Row::new(&obs, Verdict::observed("1005", "reason"));
        assert_eq!(other.agree, Some(false));
        assert!(
            !other.is_contract_failure(),
            "an observation never fails the run"
        );
        let broken = Row::new(&obs, Verdict::Fail("no close".into()));
        assert_eq!(
            (broken.target.as_str(), broken.agree),
            ("error", Some(false))
        );
        let skipped = Row::new(&contract, Verdict::Skipped("no endpoint".into()));
        assert_eq!(
            (skipped.agree, skipped.is_contract_failure()),
            (None, false)
        );
    }

    #[test]
    fn the_table_and_json_show_every_row() {
        let report = Report {
            ws: "ws://127.0.0.1:1/ws".into(),
            http: "http://127.0.0.1:1".into(),
            loopback: true,
            checks: vec![
                Row::new(
                    &check(Kind::Contract),
                    Verdict::Fail("why it failed".into()),
                ),
                Row::new(
                    &check(Kind::Observation { local: "no" }),
                    Verdict::observed("yes", "open after 15 s"),
                ),
            ],
        };
        assert_eq!(report.contract_failures(), 1);
        let table = report.table();
        assert!(
            table.contains("why it failed") && table.contains("open after 15 s"),
            "{table}"
        );
        assert!(
            table.contains("2 checks: 0 agree, 1 contract failures, 0 skipped"),
            "{table}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap_or_default();
        assert_eq!(json["checks"][1]["target"], "yes");
        assert_eq!(json["checks"][1]["agree"], false);
    }
}
