//! Test support: test doubles and helpers shared by the end-to-end tests.
