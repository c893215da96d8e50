//! Integration tests of `cuttle-vars`, compiled as one test binary.

mod model_json;
mod output_variables;
mod prompts;
mod resolution;
mod scoping_table;
mod sensitive;
mod support;
mod system_variables;
mod validation;
