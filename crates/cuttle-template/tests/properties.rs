//! Property tests of the template language's guarantees: evaluation never panics (on arbitrary
//! text and on grammar-shaped templates with blocks, filters, nested indexers and unbalanced
//! braces), is deterministic, reports diagnostics with spans inside the template, leaves text
//! without `#{` alone, turns `##{` into a literal `#{`, and substitutes defined variables
//! exactly.
//!
//! The default case count keeps the whole file to a few seconds in CI; set `PROPTEST_CASES`
//! (for example `PROPTEST_CASES=200000`) to search harder. Failures are shrunk and saved under
//! `proptest-regressions/`, which should be committed so they are replayed on every run.

use std::collections::HashSet;

use cuttle_template::{Evaluation, EvaluationOptions, VariableDictionary, evaluate};
use proptest::prelude::*;
use proptest::string::string_regex;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        // Shrinking a grammar-shaped template can take many steps; keep it bounded.
        max_shrink_iters: 4_096,
        ..ProptestConfig::with_cases(cases)
    }
}

fn options(halt_on_error: bool) -> EvaluationOptions {
    EvaluationOptions {
        halt_on_error,
        ..EvaluationOptions::default()
    }
}

/// Variables the grammar-shaped templates refer to: plain, dotted, indexed, JSON-valued,
/// numeric, recursive (including a definition cycle) and values that filters parse.
fn fixture_variables() -> VariableDictionary {
    [
        ("A", "alpha"),
        ("B", "#{A}-beta"),
        ("C", "0"),
        ("N", "42"),
        ("F", "2.5"),
        ("Flag", "True"),
        ("Empty", ""),
        ("Cycle", "#{Loop}"),
        ("Loop", "x#{Cycle}"),
        ("Coll", "one,two,three"),
        (
            "Json",
            r##"{"Name":"web","Ports":[80,443],"Nested":{"Key":"#{A}"}}"##,
        ),
        ("JsonList", r#"[{"Name":"a"},{"Name":"b"}]"#),
        ("Octopus.Action[Step A].Output.X", "out-a"),
        ("Octopus.Action[Step B].Output.X", "out-b"),
        ("Items[0].Name", "first"),
        ("Items[1].Name", "second"),
        ("Index", "1"),
        ("Key", "Step A"),
        ("Date", "2026-11-30T12:34:56+01:00"),
        ("Version", "1.2.3-beta.4+build.5"),
        ("Base64", "aGVsbG8="),
        ("Url", "https://example.com:8443/path/to?x=1#frag"),
        ("Markdown", "# Title\n\n*emphasis*"),
        ("Unicode", "Ünïcödé 😀"),
    ]
    .into_iter()
    .collect()
}

fn check_spans(template: &str, evaluation: &Evaluation) -> Result<(), TestCaseError> {
    for diagnostic in &evaluation.diagnostics {
        let span = &diagnostic.span;
        prop_assert!(
            span.start <= span.end && span.end <= template.len(),
            "diagnostic {diagnostic:?} lies outside the {}-byte template",
            template.len()
        );
        prop_assert!(
            template.is_char_boundary(span.start) && template.is_char_boundary(span.end),
            "diagnostic {diagnostic:?} splits a character"
        );
    }
    Ok(())
}

/// Evaluates both ways, twice each: never panics (a panic fails the case), same result every
/// time, spans inside the template.
fn check_robust(template: &str, variables: &VariableDictionary) -> Result<(), TestCaseError> {
    for halt_on_error in [true, false] {
        let first = evaluate(template, variables, &options(halt_on_error));
        let second = evaluate(template, variables, &options(halt_on_error));
        prop_assert_eq!(&first, &second, "evaluation is deterministic");
        check_spans(template, &first)?;
    }
    Ok(())
}

// Strategies.

/// Text made mostly of the characters the grammar cares about, plus some multi-byte ones.
fn syntax_heavy_text() -> impl Strategy<Value = String> {
    string_regex(r#"[#{}|\[\]."'\\ \n\t=!*/+()a-zA-Z0-9_éΩ😀-]{0,64}"#).expect("the regex is valid")
}

/// Names the fixture defines (and parts of them, and one it does not), as identifiers.
const FIXTURE_NAMES: &str = "\
    A B C N F Flag Empty Cycle Loop Coll Json JsonList Items Index Key Date Version Base64 Url \
    Markdown Unicode Octopus Action Output X Name Ports Nested item Missing";

fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIXTURE_NAMES.split_whitespace().collect::<Vec<_>>())
            .prop_map(str::to_string),
        1 => string_regex("[A-Za-z_][A-Za-z0-9_ :/~()@-]{0,10}").expect("the regex is valid"),
    ]
}

/// Every filter the evaluator knows, and one it does not.
const FILTER_NAMES: &str = "\
    ToLower ToUpper Trim Truncate Substring Replace Append Prepend Indent Match StartsWith \
    EndsWith Contains null HtmlEscape XmlEscape JsonEscape YamlSingleQuoteEscape \
    YamlDoubleQuoteEscape PropertiesKeyEscape PropertiesValueEscape UriEscape UriDataEscape \
    Markdown MarkdownToHtml Format NowDate NowDateUtc AddHours AddDays UriPart VersionMajor \
    VersionMinor VersionPatch VersionPreRelease VersionMetadata ToBase64 FromBase64 Md5 Sha1 \
    Sha256 Sha512 VersionRevision VersionPreReleasePrefix VersionPreReleaseCounter NoSuchFilter";

fn filter_name() -> impl Strategy<Value = String> {
    let names: Vec<&str> = FILTER_NAMES.split_whitespace().collect();
    prop::sample::select(names).prop_map(str::to_string)
}

fn filter_argument() -> impl Strategy<Value = String> {
    prop_oneof![
        string_regex(r#""[^"]{0,8}""#).expect("the regex is valid"),
        string_regex(r#"\\"[a-z ]{0,6}\\""#).expect("the regex is valid"),
        string_regex("[A-Za-z0-9_-]{1,8}").expect("the regex is valid"),
        Just("-3".to_string()),
        Just("1000000000000".to_string()),
        Just("(".to_string()),
        identifier().prop_map(|name| format!("#{{{name}}}")),
    ]
}

/// A symbol path with dotted steps and indexers, which may nest substitutions.
fn symbol_path() -> impl Strategy<Value = String> {
    let step = prop_oneof![
        3 => identifier().prop_map(|name| format!(".{name}")),
        1 => string_regex(r"\[[A-Za-z0-9 _.-]{0,8}\]").expect("the regex is valid"),
        1 => Just("[*]".to_string()),
        1 => identifier().prop_map(|name| format!("[#{{{name}}}]")),
        1 => (identifier(), identifier())
            .prop_map(|(outer, inner)| format!("[#{{{outer}[#{{{inner}}}]}}]")),
    ];
    (identifier(), prop::collection::vec(step, 0..4))
        .prop_map(|(first, steps)| format!("{first}{}", steps.concat()))
}

fn expression() -> impl Strategy<Value = String> {
    let filter = (
        filter_name(),
        prop::collection::vec(filter_argument(), 0..3),
        prop::sample::select(vec![" | ", "|", " |", "| "]),
    )
        .prop_map(|(name, arguments, bar)| {
            let mut text = format!("{bar}{name}");
            for argument in arguments {
                text.push(' ');
                text.push_str(&argument);
            }
            text
        });
    (
        prop::option::weighted(0.9, symbol_path()),
        prop::collection::vec(filter, 0..3),
    )
        .prop_map(|(path, filters)| format!("{}{}", path.unwrap_or_default(), filters.concat()))
}

fn condition() -> impl Strategy<Value = String> {
    (
        expression(),
        prop::option::of((
            prop::sample::select(vec!["==", "!="]),
            prop_oneof![
                string_regex(r#""[a-z0-9]{0,5}""#).expect("the regex is valid"),
                expression(),
            ],
        )),
    )
        .prop_map(|(left, comparison)| match comparison {
            Some((operator, right)) => format!("{left} {operator} {right}"),
            None => left,
        })
}

fn calculation() -> impl Strategy<Value = String> {
    let operand = prop_oneof![
        string_regex("[0-9]{1,4}(\\.[0-9]{1,3})?").expect("the regex is valid"),
        identifier(),
        Just("(N*2)".to_string()),
    ];
    (
        operand.clone(),
        prop::collection::vec(
            (prop::sample::select(vec!["+", "-", "*", "/"]), operand),
            0..4,
        ),
    )
        .prop_map(|(first, rest)| {
            let mut text = format!("#{{calc {first}");
            for (operator, operand) in rest {
                text.push_str(operator);
                text.push_str(&operand);
            }
            text.push('}');
            text
        })
}

/// Text, substitutions, calculations and escapes; with `broken`, also stray syntax
/// (`#{`, lone closers, empty tokens) and unfiltered syntax-heavy text.
fn leaf(broken: bool) -> BoxedStrategy<String> {
    let well_formed = prop_oneof![
        3 => plain_text(),
        4 => expression().prop_map(|content| format!("#{{{content}}}")),
        1 => calculation(),
        1 => identifier().prop_map(|name| format!("##{{{name}}}")),
    ];
    if !broken {
        return well_formed.boxed();
    }
    prop_oneof![
        6 => well_formed,
        1 => syntax_heavy_text(),
        1 => prop::sample::select(vec![
            "#{", "}", "#", "##", "###{", "#{/if}", "#{/each}", "#{else}", "#{elseif A}",
            "#{if}", "#{each}", "#{ }", "#{}", "{", "]", "[",
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

/// Templates shaped by the grammar: nested blocks around leaves. With `broken`, some blocks
/// lack their closer, stray syntax is mixed in, and the result may be cut short or lose a
/// brace, leaving it unbalanced.
fn grammar_template(broken: bool) -> BoxedStrategy<String> {
    let node = leaf(broken).prop_recursive(6, 96, 6, move |inner| {
        let body = prop::collection::vec(inner, 0..6).prop_map(|parts| parts.concat());
        prop_oneof![
            3 => body.clone(),
            2 => (condition(), body.clone(), prop::option::of(body.clone()), any::<bool>())
                .prop_map(move |(condition, truthy, falsy, closed)| {
                    let falsy = falsy.map(|falsy| format!("#{{else}}{falsy}")).unwrap_or_default();
                    let closer = if closed || !broken { "#{/if}" } else { "" };
                    format!("#{{if {condition}}}{truthy}{falsy}{closer}")
                }),
            1 => (condition(), body.clone(), condition(), body.clone())
                .prop_map(|(first, truthy, second, elseif_body)| {
                    format!("#{{if {first}}}{truthy}#{{elseif {second}}}{elseif_body}#{{/if}}")
                }),
            1 => (condition(), body.clone())
                .prop_map(|(condition, body)| format!("#{{unless {condition}}}{body}#{{/unless}}")),
            2 => (identifier(), symbol_path(), body, any::<bool>())
                .prop_map(move |(enumerator, collection, body, closed)| {
                    let closer = if closed || !broken { "#{/each}" } else { "" };
                    format!("#{{each {enumerator} in {collection}}}{body}{closer}")
                }),
        ]
    });
    if !broken {
        return node.boxed();
    }
    // Then sometimes break it: cut it short or drop one brace, leaving it unbalanced.
    (node, any::<prop::sample::Index>(), 0..4u8)
        .prop_map(|(template, index, mutation)| {
            if template.is_empty() {
                return template;
            }
            let boundaries: Vec<usize> = template.char_indices().map(|(at, _)| at).collect();
            let at = boundaries[index.index(boundaries.len())];
            match mutation {
                0 => template[..at].to_string(),
                1 => {
                    let mut broken = template.clone();
                    if let Some(brace) = broken[at..].find(['{', '}']) {
                        broken.remove(at + brace);
                    }
                    broken
                }
                _ => template,
            }
        })
        .boxed()
}

/// A variable name that parses as a plain path: dotted segments, some with inner spaces, none
/// starting like a keyword (`if`, `unless`, `each`, `calc`, `else`).
fn simple_name() -> impl Strategy<Value = String> {
    let segment = string_regex("[A-Za-z_][A-Za-z0-9_]{0,7}( [A-Z][A-Za-z0-9]{0,5})?")
        .expect("the regex is valid");
    prop::collection::vec(segment, 1..4)
        .prop_map(|segments| segments.join("."))
        .prop_filter("does not start with a keyword", |name| {
            let lower = name.to_ascii_lowercase();
            !["if", "unless", "each", "calc", "else"]
                .iter()
                .any(|keyword| lower.starts_with(keyword))
        })
}

/// Text that is not interpreted: no `#{`, and no trailing `#` that would make a following
/// `#{` an escape.
fn plain_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), syntax_heavy_text()]
        .prop_map(|text| text.replace("#{", "# {").trim_end_matches('#').to_string())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_strings_never_panic(template in any::<String>()) {
        check_robust(&template, &fixture_variables())?;
    }

    #[test]
    fn syntax_heavy_strings_never_panic(
        parts in prop::collection::vec(prop_oneof![syntax_heavy_text(), leaf(true)], 0..8)
    ) {
        check_robust(&parts.concat(), &fixture_variables())?;
    }

    #[test]
    fn grammar_shaped_templates_never_panic(
        template in prop_oneof![grammar_template(false), grammar_template(true)]
    ) {
        check_robust(&template, &fixture_variables())?;
    }

    #[test]
    fn text_without_token_openers_is_unchanged(text in plain_text()) {
        for halt_on_error in [true, false] {
            let evaluation = evaluate(&text, &fixture_variables(), &options(halt_on_error));
            prop_assert_eq!(evaluation.output.as_deref(), Some(text.as_str()));
            prop_assert!(evaluation.diagnostics.is_empty(), "{:?}", evaluation.diagnostics);
        }
    }

    #[test]
    fn double_hash_escapes_a_token(
        before in plain_text(),
        content in "[A-Za-z0-9 ._|\\[\\]\"-]{0,12}",
        after in plain_text(),
    ) {
        // Neither side contains `#{` nor ends in `#`, so only the escape is interpreted.
        let template = format!("{before}##{{{content}}}{after}");
        let expected = format!("{before}#{{{content}}}{after}");
        for halt_on_error in [true, false] {
            let evaluation = evaluate(&template, &fixture_variables(), &options(halt_on_error));
            prop_assert_eq!(evaluation.output.as_deref(), Some(expected.as_str()));
        }
    }

    #[test]
    fn defined_variables_substitute_exactly(
        entries in prop::collection::vec((simple_name(), plain_text()), 1..6),
        layout in prop::collection::vec((plain_text(), any::<prop::sample::Index>()), 1..8),
    ) {
        // Keep the first of each case-insensitive name, as the parts must agree on the value.
        let mut seen = HashSet::new();
        let entries: Vec<(String, String)> = entries
            .into_iter()
            .filter(|(name, _)| seen.insert(name.to_lowercase()))
            .collect();
        let variables: VariableDictionary = entries.iter().cloned().collect();
        let mut template = String::new();
        let mut expected = String::new();
        for (text, pick) in &layout {
            let (name, value) = &entries[pick.index(entries.len())];
            template.push_str(text);
            template.push_str(&format!("#{{{name}}}"));
            expected.push_str(text);
            expected.push_str(value);
        }
        for halt_on_error in [true, false] {
            let evaluation = evaluate(&template, &variables, &options(halt_on_error));
            prop_assert_eq!(evaluation.output.as_deref(), Some(expected.as_str()));
            prop_assert!(evaluation.diagnostics.is_empty(), "{:?}", evaluation.diagnostics);
        }
    }
}
