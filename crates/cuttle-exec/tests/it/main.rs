//! Integration tests with real processes (bash, sh, python3; pwsh when installed).

mod helpers;
mod isolation;
mod lifecycle;
mod masking;
mod output;
mod package_deployment;
mod scripts;
mod support;
