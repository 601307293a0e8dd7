//! Routers (spec §13.3–§13.5): `if`, `switch` and `random-router` jobs end with the id of the
//! job the run goes to next (or none), not with a value. What the run does with that decision
//! is the scheduler's business ([`super::schedule`]).

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::binding::operators::{equal, Comparison};
use crate::binding::{Binding, Expr, Scope};
use crate::config::{self, JobKind, Mode};
use crate::error::RunError;
use crate::fetch::Fetcher;

/// A router, compiled.
pub enum Router {
    /// Conditions tried in order on the job's input.
    If {
        conditions: Vec<Branch>,
        otherwise: Option<String>,
    },
    /// The first case whose value equals the job's input.
    Switch {
        cases: Vec<(Binding, String)>,
        otherwise: Option<String>,
    },
    /// A route at random (by weight), or the same route for the same session.
    Random(RandomRouter),
}

/// One condition of an `if`.
pub struct Branch {
    comparison: Comparison,
    value: Binding,
    if_true: Option<String>,
    if_false: Option<String>,
}

pub struct RandomRouter {
    weighted: bool,
    routes: Vec<(String, Option<f64>)>,
    session: Option<Binding>,
    salt: Option<Binding>,
    /// `<workflow id>:<job id>`: the salt when none is given.
    default_salt: String,
    job: String,
}

impl Router {
    /// The router a job of kind `if`, `switch` or `random-router` is (none for other kinds).
    pub fn compile(job: &config::Job, workflow: &str) -> Result<Option<Self>, String> {
        let compile = |value: &Value, field: &str| {
            Binding::compile(value).map_err(|err| format!("job '{}': {field}: {err}", job.id))
        };
        Ok(Some(match job.kind {
            JobKind::If => Router::If {
                conditions: job
                    .if_conditions()
                    .into_iter()
                    .map(|condition| {
                        let operator = condition.operator.as_deref().unwrap_or("eq");
                        Ok(Branch {
                            comparison: Comparison::parse(operator).ok_or_else(|| {
                                format!("job '{}': unknown operator '{operator}'", job.id)
                            })?,
                            value: compile(&condition.value, "value")?,
                            if_true: condition.if_true,
                            if_false: condition.if_false,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                otherwise: job.otherwise.clone(),
            },
            JobKind::Switch => Router::Switch {
                cases: job
                    .switch_cases()
                    .into_iter()
                    .map(|case| Ok((compile(&case.value, "value")?, case.then)))
                    .collect::<Result<_, String>>()?,
                otherwise: job.otherwise.clone(),
            },
            JobKind::RandomRouter => {
                let text = |text: &Option<String>, field| {
                    text.as_ref()
                        .map(|text| compile(&Value::String(text.clone()), field))
                        .transpose()
                };
                Router::Random(RandomRouter {
                    weighted: job.mode == Some(Mode::Weighted),
                    routes: job
                        .routings
                        .iter()
                        .map(|r| (r.to.clone(), r.weight))
                        .collect(),
                    session: text(&job.session, "session")?,
                    salt: text(&job.salt, "salt")?,
                    default_salt: format!("{workflow}:{}", job.id),
                    job: job.id.clone(),
                })
            }
            _ => return Ok(None),
        }))
    }

    /// Whether the router reads the job's input (a random router does not).
    pub fn reads_input(&self) -> bool {
        !matches!(self, Router::Random(_))
    }

    /// Its templates' expressions, in order.
    pub fn collect<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Router::If { conditions, .. } => {
                out.extend(conditions.iter().flat_map(|branch| branch.value.exprs()))
            }
            Router::Switch { cases, .. } => out.extend(cases.iter().flat_map(|(v, _)| v.exprs())),
            Router::Random(router) => out.extend(
                router
                    .session
                    .iter()
                    .chain(&router.salt)
                    .flat_map(Binding::exprs),
            ),
        }
    }

    /// Where the run goes next, for this `input` (the job's rendered input).
    pub async fn decide(
        &self,
        input: &Value,
        fetcher: &Fetcher,
        scope: Scope<'_>,
    ) -> Result<Option<String>, RunError> {
        match self {
            Router::If {
                conditions,
                otherwise,
            } => {
                for branch in conditions {
                    let value = fetcher.render(&branch.value, scope.clone()).await?;
                    let target = match branch.comparison.holds(input, &value)? {
                        true => &branch.if_true,
                        false => &branch.if_false,
                    };
                    if target.is_some() {
                        return Ok(target.clone());
                    }
                }
                Ok(otherwise.clone())
            }
            Router::Switch { cases, otherwise } => {
                for (value, then) in cases {
                    if equal(input, &fetcher.render(value, scope.clone()).await?) {
                        return Ok(Some(then.clone()));
                    }
                }
                Ok(otherwise.clone())
            }
            Router::Random(router) => router.choose(fetcher, scope).await.map(Some),
        }
    }
}

impl RandomRouter {
    async fn choose(&self, fetcher: &Fetcher, scope: Scope<'_>) -> Result<String, RunError> {
        let candidates: Vec<(&str, f64)> = self
            .routes
            .iter()
            .filter_map(|(to, weight)| match self.weighted {
                false => Some((to.as_str(), 1.0)),
                true => weight.filter(|w| *w > 0.0).map(|w| (to.as_str(), w)),
            })
            .collect();
        if candidates.is_empty() {
            return Err(RunError::Flow(format!(
                "No valid routing found in random-router job '{}'",
                self.job
            )));
        }
        let session = match &self.session {
            Some(session) => as_text(&fetcher.render(session, scope.clone()).await?),
            None => String::new(),
        };
        if session.is_empty() {
            return Ok(pick_at_random(&candidates, fastrand::f64()).to_string());
        }
        let salt = match &self.salt {
            Some(salt) => as_text(&fetcher.render(salt, scope).await?),
            None => String::new(),
        };
        let salt = if salt.is_empty() {
            &self.default_salt
        } else {
            &salt
        };
        Ok(pick_for_session(&candidates, salt, &session).to_string())
    }
}

/// A rendered session or salt as the original formats it into the text it hashes.
fn as_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// The candidate at `at` (in [0, 1)) of the weights' total.
fn pick_at_random<'a>(candidates: &[(&'a str, f64)], at: f64) -> &'a str {
    let total: f64 = candidates.iter().map(|(_, w)| w).sum();
    let mut left = at * total;
    for (to, weight) in candidates {
        if left < *weight {
            return to;
        }
        left -= weight;
    }
    candidates[candidates.len() - 1].0
}

/// The sticky choice (spec §13.5): the lowest score wins, the first on ties.
pub fn pick_for_session<'a>(candidates: &[(&'a str, f64)], salt: &str, session: &str) -> &'a str {
    let mut best: Option<(&str, f64)> = None;
    for &(to, weight) in candidates {
        let score = session_score(salt, session, to, weight);
        if best.is_none_or(|(_, lowest)| score < lowest) {
            best = Some((to, score));
        }
    }
    best.map_or("", |(to, _)| to)
}

/// `−ln(u) / weight`, `u = (first 8 bytes of SHA-256("salt\0session\0target") + 1) / (2^64 + 1)`,
/// the division rounded as Python rounds an integer division (exactly, once).
pub fn session_score(salt: &str, session: &str, target: &str, weight: f64) -> f64 {
    let digest = Sha256::digest(format!("{salt}\0{session}\0{target}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let numerator = u128::from(u64::from_be_bytes(first)) + 1;
    let u = divide_rounded(numerator, (1u128 << 64) + 1);
    -u.ln() / weight
}

/// `n / d` for `0 < n ≤ d`, correctly rounded to the nearest f64 (ties to even).
fn divide_rounded(n: u128, d: u128) -> f64 {
    if n >= d {
        return 1.0;
    }
    // Binary long division: skip the quotient's leading zeros, then take 54 bits (53 and
    // the rounding bit); what remains decides ties.
    let (mut rest, mut exponent, mut bits, mut taken) = (n, 0i32, 0u64, 0);
    while taken < 54 {
        rest <<= 1;
        let bit = rest >= d;
        if bit {
            rest -= d;
        }
        if taken == 0 && !bit {
            exponent += 1;
            continue;
        }
        bits = (bits << 1) | u64::from(bit);
        taken += 1;
    }
    let (mut mantissa, round) = (bits >> 1, bits & 1 == 1);
    if round && (rest != 0 || mantissa & 1 == 1) {
        mantissa += 1;
    }
    // The first bit taken is worth 2^-(exponent + 1); the mantissa has 53 bits.
    mantissa as f64 * 2f64.powi(-(exponent + 53))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_division_is_rounded_once() {
        assert_eq!(divide_rounded(1, 2), 0.5);
        assert_eq!(divide_rounded(1, 3), 1.0 / 3.0);
        assert_eq!(divide_rounded(2, 3), 2.0 / 3.0);
        assert_eq!(divide_rounded(7, 7), 1.0);
        let d = (1u128 << 64) + 1;
        // (2^64) / (2^64 + 1) is just under 1: it rounds to 1.0 as Python's does.
        assert_eq!(divide_rounded(1u128 << 64, d), 1.0);
        assert_eq!(divide_rounded(1, d), 5.421010862427522e-20);
    }

    #[test]
    fn sticky_scores_are_the_originals() {
        // Printed by Python 3.11 with the original's formula (`repr` of the float).
        let cases = [
            (("wf:pick", "u1", "a", 1.0), "0.4302509031189634"),
            (("wf:pick", "u1", "b", 1.0), "0.7003448277335764"),
            (("wf:pick", "u2", "a", 1.0), "0.9960818435983813"),
            (("wf:pick", "u2", "b", 1.0), "0.09393273416457751"),
            (("s", "사용자", "variant-b", 2.5), "0.5292777671015579"),
            (("wf:pick", "u1", "a", 0.3), "1.4341696770632115"),
        ];
        for ((salt, session, target, weight), python) in cases {
            let score = session_score(salt, session, target, weight);
            assert_eq!(format!("{score:?}"), python, "{salt} {session} {target}");
        }
        let candidates = [("a", 1.0), ("b", 1.0)];
        assert_eq!(pick_for_session(&candidates, "wf:pick", "u1"), "a");
        assert_eq!(pick_for_session(&candidates, "wf:pick", "u2"), "b");
    }

    #[test]
    fn a_random_pick_follows_the_weights() {
        let candidates = [("a", 1.0), ("b", 3.0)];
        assert_eq!(pick_at_random(&candidates, 0.0), "a");
        assert_eq!(pick_at_random(&candidates, 0.24), "a");
        assert_eq!(pick_at_random(&candidates, 0.26), "b");
        assert_eq!(pick_at_random(&candidates, 0.999), "b");
    }
}
