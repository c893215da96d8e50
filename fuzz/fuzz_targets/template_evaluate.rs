//! Fuzzes `cuttle_template::evaluate`: the input is a template and a few variables, evaluated
//! once halting on parse errors and once continuing past them (with a clock, so the date
//! filters run). Any panic, and any diagnostic whose span is not inside the template or splits
//! a character, is a crash: the crate promises that evaluation never fails or panics.
//!
//! Input layout, split on NUL bytes: `template \0 name \0 value \0 name \0 value ...`, at most
//! eight variables, each part read as UTF-8 with invalid bytes replaced. A fixed set of
//! variables (plain, dotted, indexed, JSON, recursive, a definition cycle) is defined first,
//! so templates that name them reach the lookup and filter code without the fuzzer having to
//! invent the variables too. `seed_corpus.py` turns the Octostache vectors into inputs.

#![no_main]

use cuttle_template::{Evaluation, EvaluationOptions, VariableDictionary, chrono, evaluate};
use libfuzzer_sys::fuzz_target;

const MAX_FUZZED_VARIABLES: usize = 8;

const FIXED_VARIABLES: [(&str, &str); 12] = [
    ("A", "alpha"),
    ("B", "#{A}-beta"),
    ("N", "42"),
    ("Cycle", "#{Loop}"),
    ("Loop", "x#{Cycle}"),
    ("Coll", "one,two,three"),
    (
        "Json",
        r##"{"Name":"web","Ports":[80,443],"Nested":{"Key":"#{A}"}}"##,
    ),
    ("Octopus.Action[Step A].Output.X", "out-a"),
    ("Items[0].Name", "first"),
    ("Date", "2026-11-30T12:34:56+01:00"),
    ("Version", "1.2.3-beta.4+build.5"),
    ("Url", "https://example.com:8443/path/to?x=1#frag"),
];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|byte| *byte == 0);
    let template = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let mut variables: VariableDictionary = FIXED_VARIABLES.into_iter().collect();
    for _ in 0..MAX_FUZZED_VARIABLES {
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            break;
        };
        variables.set(
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(value),
        );
    }

    let halting = EvaluationOptions::default();
    check_spans(&template, &evaluate(&template, &variables, &halting));

    let continuing = EvaluationOptions {
        halt_on_error: false,
        now_utc: chrono::DateTime::from_timestamp(1_796_040_000, 0),
        ..EvaluationOptions::default()
    };
    check_spans(&template, &evaluate(&template, &variables, &continuing));
});

fn check_spans(template: &str, evaluation: &Evaluation) {
    for diagnostic in &evaluation.diagnostics {
        let span = &diagnostic.span;
        assert!(
            span.start <= span.end && span.end <= template.len(),
            "diagnostic {diagnostic:?} lies outside the {}-byte template",
            template.len()
        );
        assert!(
            template.is_char_boundary(span.start) && template.is_char_boundary(span.end),
            "diagnostic {diagnostic:?} splits a character"
        );
    }
}
