//! Whether a run provisioned the people a school expects: per role, the
//! share of the people read that validation left out, against the
//! connection's `incomplete_share` and `incomplete_min_people`. A role
//! over both is a shortfall, and a run with a shortfall ends `incomplete`
//! rather than calling a silent drop a success.

use rostersync_model::Role;

use crate::policy::Rule;
use crate::validate::{Tally, ValidationPolicy};

/// One rule that left out too much of one role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shortfall {
    pub role: Role,
    pub read: usize,
    /// Read and not left out by any rule.
    pub provisioned: usize,
    pub rule: Rule,
    /// Left out by this rule.
    pub left_out: usize,
}

/// A role's people in the plural, as a school says it.
pub fn people_of(role: Role) -> &'static str {
    match role {
        Role::Student => "students",
        Role::Staff => "staff",
        Role::Contact => "contacts",
    }
}

impl std::fmt::Display for Shortfall {
    /// "0 of 333 staff provisioned: 333 have no start date (policy
    /// require_start_date)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} {} provisioned: {} {} (policy {})",
            self.provisioned,
            self.read,
            people_of(self.role),
            self.left_out,
            self.rule.left_out_as(),
            self.rule
        )
    }
}

/// The roles a run left out too much of, one entry per rule that left
/// out some of such a role, largest first.
pub fn shortfalls(tally: &Tally, policy: &ValidationPolicy) -> Vec<Shortfall> {
    let mut found = Vec::new();
    for (&role, &read) in &tally.read {
        let left_out = tally.left_out_of(role);
        let share = left_out as f64 / read.max(1) as f64;
        if left_out < policy.incomplete_min_people.max(1) || share <= policy.incomplete_share {
            continue;
        }
        let mut rules: Vec<Shortfall> = tally
            .left_out
            .iter()
            .filter(|((r, _), _)| *r == role)
            .map(|(&(_, rule), &n)| Shortfall {
                role,
                read,
                provisioned: read - left_out,
                rule,
                left_out: n,
            })
            .collect();
        rules.sort_by(|a, b| b.left_out.cmp(&a.left_out).then(a.rule.cmp(&b.rule)));
        found.extend(rules);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(role: Role, read: usize, left_out: &[(Rule, usize)]) -> Tally {
        let mut tally = Tally::default();
        tally.read.insert(role, read);
        for &(rule, n) in left_out {
            tally.left_out.insert((role, rule), n);
        }
        tally
    }

    #[test]
    fn a_role_mostly_left_out_is_a_shortfall_in_one_line_per_rule() {
        let policy = ValidationPolicy::default();
        let staff = tally(Role::Staff, 333, &[(Rule::RequireStartDate, 333)]);
        let found = shortfalls(&staff, &policy);
        assert_eq!(
            found.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["0 of 333 staff provisioned: 333 have no start date (policy require_start_date)"]
        );
        let pupils = tally(
            Role::Student,
            100,
            &[(Rule::RequiredNames, 5), (Rule::RequireYearGroup, 40)],
        );
        assert_eq!(
            shortfalls(&pupils, &policy)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![
                "55 of 100 students provisioned: 40 are in no year group (policy require_year_group)",
                "55 of 100 students provisioned: 5 have no first or last name (policy required_names)",
            ]
        );
    }

    #[test]
    fn within_the_share_or_under_the_minimum_is_complete() {
        let policy = ValidationPolicy::default();
        let fifth = tally(Role::Student, 100, &[(Rule::RequiredNames, 20)]);
        assert!(shortfalls(&fifth, &policy).is_empty(), "20 % is allowed");
        let tiny = tally(Role::Staff, 4, &[(Rule::RequireEmailFor, 4)]);
        assert!(
            shortfalls(&tiny, &policy).is_empty(),
            "4 people are under the minimum"
        );
        let strict = ValidationPolicy {
            incomplete_min_people: 1,
            ..policy
        };
        assert_eq!(shortfalls(&tiny, &strict).len(), 1);
    }
}
