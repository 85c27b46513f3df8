//! portkey-guard: the Portkey AI Gateway deployment note as an admission
//! webhook. Mutates what a manifest forgot, validates every change, and runs
//! the same decisions offline.

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
