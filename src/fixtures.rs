//! What unit tests share with the integration tests and fuzz targets: the
//! files of `tests/fixtures`.
#![allow(dead_code)] // each test module takes its own part

include!("../tests/fixtures/workspace.rs");
