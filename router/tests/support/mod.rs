//! Test support for the router's federation tests.

#![allow(dead_code)]

pub mod canned;
pub mod corpus;
pub mod fixture;
