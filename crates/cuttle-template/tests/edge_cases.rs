//! Parser and evaluator edge cases beyond the Octostache vectors: malformed and hostile input,
//! nesting limits, cycles, and the "never panics" guarantee.

use cuttle_template::{
    DiagnosticKind, Evaluation, EvaluationOptions, VariableDictionary, evaluate, is_truthy,
};

fn variables(pairs: &[(&str, &str)]) -> VariableDictionary {
    pairs.iter().copied().collect()
}

fn run(template: &str, pairs: &[(&str, &str)]) -> Evaluation {
    evaluate(template, &variables(pairs), &EvaluationOptions::default())
}

fn run_continuing(template: &str, pairs: &[(&str, &str)]) -> Evaluation {
    let options = EvaluationOptions {
        halt_on_error: false,
        ..EvaluationOptions::default()
    };
    evaluate(template, &variables(pairs), &options)
}

fn kinds(evaluation: &Evaluation) -> Vec<DiagnosticKind> {
    evaluation
        .diagnostics
        .iter()
        .map(|diagnostic| diagnostic.kind)
        .collect()
}

#[test]
fn unterminated_substitution_is_returned_unchanged_with_a_positioned_parse_error() {
    let evaluation = run("Hello #{Name", &[("Name", "World")]);
    assert_eq!(evaluation.output.as_deref(), Some("Hello #{Name"));
    assert_eq!(kinds(&evaluation), [DiagnosticKind::ParseError]);
    assert_eq!(
        evaluation.diagnostics[0].span,
        12..12,
        "the failure is at the end of the template"
    );
}

#[test]
fn unterminated_substitution_is_copied_through_when_continuing() {
    let evaluation = run_continuing("#{Name} and #{Name", &[("Name", "World")]);
    assert_eq!(evaluation.output.as_deref(), Some("World and #{Name"));
    assert_eq!(kinds(&evaluation), [DiagnosticKind::ParseError]);
}

#[test]
fn empty_and_closing_tokens_do_not_parse() {
    for template in [
        "#{}",
        "#{ }",
        "#{/if}",
        "a #{/each} b",
        "#{each a in X}body",
    ] {
        let evaluation = run(template, &[("X", "1,2")]);
        assert_eq!(evaluation.output.as_deref(), Some(template), "{template}");
        assert_eq!(
            kinds(&evaluation),
            [DiagnosticKind::ParseError],
            "{template}"
        );
    }
}

#[test]
fn an_unterminated_if_falls_back_to_a_substitution_of_a_variable_named_if() {
    // Octostache tries the substitution grammar after the conditional one fails, and spaces
    // are legal in names, so this is an (undefined) variable called "if Flag".
    let evaluation = run("#{if Flag}yes", &[("Flag", "true")]);
    assert_eq!(evaluation.output.as_deref(), Some("#{if Flag}yes"));
    assert_eq!(kinds(&evaluation), [DiagnosticKind::MissingToken]);
}

#[test]
fn nested_blocks_evaluate_inside_out() {
    let template = "#{each server in Servers}#{if server.Enabled}#{server}#{unless Octopus.Template.Each.Last},#{/unless}#{else}(#{server} off)#{/if}#{/each}";
    let evaluation = run(
        template,
        &[
            ("Servers[web].Enabled", "True"),
            ("Servers[db].Enabled", "no"),
            ("Servers[cache].Enabled", "1"),
        ],
    );
    assert_eq!(evaluation.output.as_deref(), Some("web,(db off)cache"));
    assert!(evaluation.diagnostics.is_empty());
}

#[test]
fn elseif_chains_pick_the_first_true_branch_and_are_rejected_in_unless() {
    let template = "#{if A}a#{elseif B}b#{elseif C}c#{else}none#{/if}";
    assert_eq!(
        run(template, &[("B", "0"), ("C", "yes")]).output.as_deref(),
        Some("c")
    );
    assert_eq!(run(template, &[]).output.as_deref(), Some("none"));
    let unless = run("#{unless A}x#{elseif B}y#{/unless}", &[]);
    assert_eq!(kinds(&unless), [DiagnosticKind::ParseError]);
}

#[test]
fn ten_thousand_nested_ifs_hit_the_nesting_limit_instead_of_the_stack() {
    let template = "#{if A}".repeat(10_000) + "x" + &"#{/if}".repeat(10_000);
    let evaluation = run(&template, &[("A", "true")]);
    assert_eq!(evaluation.output.as_deref(), Some(template.as_str()));
    assert_eq!(kinds(&evaluation), [DiagnosticKind::NestingLimit]);
}

#[test]
fn nesting_within_the_limit_still_works() {
    let depth = 20;
    let template = "#{if A}".repeat(depth) + "deep" + &"#{/if}".repeat(depth);
    assert_eq!(
        run(&template, &[("A", "true")]).output.as_deref(),
        Some("deep")
    );
}

#[test]
fn deeply_nested_indexers_and_options_are_bounded() {
    for template in [
        "#{A[".repeat(10_000),
        "#{A[".repeat(5_000) + &"]}".repeat(5_000),
        "#{A | Append ".repeat(10_000) + &"}".repeat(10_000),
        "#{calc ".to_string() + &"(".repeat(10_000) + "1" + &")".repeat(10_000) + "}",
        "[".repeat(10_000) + "#{x[" + &"[".repeat(10_000),
    ] {
        let evaluation = run(&template, &[("A", "a")]);
        assert!(evaluation.output.is_some());
        assert!(evaluation.has_errors(), "{}", &template[..20]);
    }
}

#[test]
fn a_long_chain_of_variables_is_bounded_by_the_nesting_limit() {
    let names: Vec<String> = (0..2_000).map(|index| format!("V{index}")).collect();
    let values: Vec<String> = (0..2_000)
        .map(|index| {
            if index == 1_999 {
                "end".to_string()
            } else {
                format!("#{{V{}}}", index + 1)
            }
        })
        .collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(values.iter().map(String::as_str))
        .collect();
    let evaluation = run("#{V0}", &pairs);
    assert_eq!(evaluation.output, None);
    assert_eq!(kinds(&evaluation), [DiagnosticKind::NestingLimit]);

    let short: Vec<(&str, &str)> = vec![("V0", "#{V1}"), ("V1", "#{V2}"), ("V2", "end")];
    assert_eq!(run("#{V0}", &short).output.as_deref(), Some("end"));
}

#[test]
fn a_definition_cycle_names_the_chain() {
    let evaluation = run("x #{A} y", &[("A", "#{B}"), ("B", "#{A}")]);
    assert_eq!(evaluation.output, None);
    assert_eq!(kinds(&evaluation), [DiagnosticKind::RecursiveDefinition]);
    assert!(
        evaluation.diagnostics[0].message.contains("(A -> B -> A)"),
        "{}",
        evaluation.diagnostics[0].message
    );
    assert_eq!(evaluation.diagnostics[0].span, 2..6);
}

#[test]
fn a_self_reference_through_a_symbol_indexer_is_a_cycle() {
    let evaluation = run("#{Items[#{Key}]}", &[("Key", "#{Items[#{Key}]}")]);
    assert_eq!(kinds(&evaluation), [DiagnosticKind::RecursiveDefinition]);
}

#[test]
fn escaping_rules_follow_hash_pairs() {
    let pairs = [("x", "X")];
    assert_eq!(run("##{x}", &pairs).output.as_deref(), Some("#{x}"));
    assert_eq!(run("###{x}", &pairs).output.as_deref(), Some("#X"));
    assert_eq!(run("####{x}", &pairs).output.as_deref(), Some("###{x}"));
    assert_eq!(
        run("# ## ### #", &pairs).output.as_deref(),
        Some("# ## ### #")
    );
}

#[test]
fn missing_loop_properties_echo_once_per_iteration() {
    let evaluation = run("#{each a in L}#{a.Size}#{/each}", &[("L", "x,y")]);
    assert_eq!(evaluation.output.as_deref(), Some("#{a.Size}#{a.Size}"));
    assert_eq!(kinds(&evaluation), [DiagnosticKind::MissingToken]);
}

#[test]
fn names_are_case_insensitive_and_keep_definition_order() {
    let mut dictionary = VariableDictionary::new();
    dictionary.set("Zeta[b].Name", "1");
    dictionary.set("zeta[A].Name", "2");
    dictionary.set("ZETA[b].NAME", "3");
    assert_eq!(dictionary.len(), 2);
    assert_eq!(dictionary.get_raw("zEtA[B].name"), Some("3"));
    let template = "#{each z in zeta}#{z}=#{z.name};#{/each}#{ZETA[*].Name}";
    let evaluation = evaluate(template, &dictionary, &EvaluationOptions::default());
    assert_eq!(evaluation.output.as_deref(), Some("b=3;A=2;3"));
}

#[test]
fn filters_that_throw_upstream_fail_the_evaluation() {
    let evaluation = run("#{Value | FromBase64}", &[("Value", "not base64!")]);
    assert_eq!(evaluation.output, None);
    assert_eq!(kinds(&evaluation), [DiagnosticKind::FilterError]);
}

#[test]
fn now_filters_need_a_clock_passed_in() {
    assert_eq!(
        run("#{ | NowDateUtc}", &[]).output.as_deref(),
        Some("#{ | NowDateUtc}")
    );
    let options = EvaluationOptions {
        now_utc: Some("2030-05-22T09:05:00.5Z".parse().expect("a valid instant")),
        local_offset: cuttle_template::chrono::FixedOffset::east_opt(2 * 3600)
            .expect("a valid offset"),
        ..EvaluationOptions::default()
    };
    let evaluation = evaluate(
        "#{ | NowDateUtc} #{ | NowDate} #{ | NowDate zzz}",
        &VariableDictionary::new(),
        &options,
    );
    assert_eq!(
        evaluation.output.as_deref(),
        Some("2030-05-22T09:05:00.5000000Z 2030-05-22T11:05:00.5000000 +02:00")
    );
}

#[test]
fn truthiness_matches_octostache() {
    for falsy in ["", "0", "no", " No ", "FALSE", "false "] {
        assert!(!is_truthy(falsy), "{falsy:?}");
    }
    for truthy in [" 0", "  ", "yes", "1", "true", "00"] {
        assert!(is_truthy(truthy), "{truthy:?}");
    }
}

/// A small deterministic generator, so the "never panics" sweep needs no randomness source.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap_or(0) % bound
    }
}

#[test]
fn arbitrary_fragment_soup_never_panics() {
    const FRAGMENTS: &[&str] = &[
        "#{",
        "}",
        "#",
        "##",
        "{",
        "if ",
        "IF ",
        "unless ",
        "each ",
        " in ",
        "#{/if}",
        "#{/each}",
        "#{/unless}",
        "#{else}",
        "#{elseif ",
        "calc ",
        "|",
        " | ",
        "ToUpper",
        "Format",
        "Replace",
        "Substring",
        "Indent",
        "UriPart",
        "VersionMajor",
        "Md5",
        "FromBase64",
        "[",
        "]",
        "[*]",
        "[#{",
        "\"",
        "\\\"",
        "A",
        "B",
        "a.b",
        "Json",
        ".",
        " ",
        "\n",
        "==",
        "!=",
        "(",
        ")",
        "*",
        "-",
        "/",
        "+",
        "1",
        "0.5",
        "é",
        "漢",
        "🦀",
        "null",
        "X4",
        "\"0.0\"",
        "yyyy",
        "'",
        ",",
    ];
    let pairs = [
        ("A", "#{B}"),
        ("B", "b,c"),
        ("Json", "{\"a\": [1, {\"b\": \"#{A}\"}], 'c': null}"),
        ("a.b", "#{Json.a[1].b}"),
        ("Loop", "#{Loop}"),
    ];
    let dictionary = variables(&pairs);
    let halting = EvaluationOptions::default();
    let continuing = EvaluationOptions {
        halt_on_error: false,
        ..EvaluationOptions::default()
    };
    let mut generator = Lcg(0x5eed);
    for _ in 0..3_000 {
        let length = 1 + generator.next(24);
        let template: String = (0..length)
            .map(|_| FRAGMENTS[generator.next(FRAGMENTS.len())])
            .collect();
        for options in [&halting, &continuing] {
            let evaluation = evaluate(&template, &dictionary, options);
            for diagnostic in &evaluation.diagnostics {
                assert!(
                    diagnostic.span.end <= template.len(),
                    "span outside the template for {template:?}"
                );
                assert!(
                    template.is_char_boundary(diagnostic.span.start)
                        && template.is_char_boundary(diagnostic.span.end)
                );
            }
        }
    }
}
