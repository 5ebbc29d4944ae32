//! Code shared by the examples: the main job and the bench
//! harness's rows and figures.

pub mod bench;
pub mod busy;
pub mod llm_job;
pub mod main_job;
pub mod memory;
pub mod ngram_job;
pub mod wordlist;

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
