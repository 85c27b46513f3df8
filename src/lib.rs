//! portkey-guard: the Portkey AI Gateway's deployment policy as an
//! admission webhook (README: Policy, Rules). Mutates what a manifest
//! forgot, validates every change, and runs the same decisions offline
//! (README: Commands).

#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod duration;
pub mod image;
pub mod kind;
pub mod kinds;
pub mod manifest;
pub mod name_pattern;
pub mod object;
pub mod offline;
pub mod patch;
pub mod policy;
pub mod policy_report;
pub mod quantity;
pub mod relations;
pub mod report;
pub mod rules;
pub mod server;
pub mod violation;
pub mod yaml;

#[cfg(test)]
mod tests {
    use crate::rules::RuleId;

    /// The catalog and the rule tables name the same rules: every rule id
    /// has exactly one function, in the kinds' tables or the relations'.
    #[test]
    fn every_rule_of_the_catalog_has_exactly_one_function() {
        let tables: Vec<RuleId> = crate::kinds::rule_tables()
            .into_iter()
            .chain(crate::relations::rule_ids())
            .collect();
        for rule in RuleId::ALL {
            let count = tables.iter().filter(|r| *r == rule).count();
            assert_eq!(count, 1, "{rule} is in {count} rule tables");
        }
        assert_eq!(tables.len(), RuleId::ALL.len());
    }
}
