//! Code shared by the examples: the bench harness's rows and figures.
#![warn(missing_docs)]

pub mod bench;
pub mod main_job;
pub mod sampler;
