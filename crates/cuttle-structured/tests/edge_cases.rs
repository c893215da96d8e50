//! Behaviour beyond the Calamari vectors: malformed files, variables that name nothing, hostile
//! nesting, format detection and a few per-format rules from the spec.

use cuttle_structured::{
    StructuredError, StructuredFormat, StructuredOptions, candidate_formats_for_file_name,
    replace_structured, replace_structured_detecting_format,
};

fn variables(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn replace(
    format: StructuredFormat,
    input: &str,
    pairs: &[(&str, &str)],
) -> Result<String, StructuredError> {
    replace_structured(
        format,
        input,
        &variables(pairs),
        &StructuredOptions::default(),
    )
    .map(|output| output.text)
}

fn assert_parse_error(format: StructuredFormat, input: &str) {
    match replace_structured(
        format,
        input,
        &variables(&[]),
        &StructuredOptions::default(),
    ) {
        Err(error) => assert!(error.is_parse_error(), "{format} {input:?}: {error}"),
        Ok(output) => panic!("{format} {input:?} parsed as {:?}", output.text),
    }
}

#[test]
fn malformed_json_is_a_parse_error() {
    for input in [
        "{",
        "{\"a\": }",
        "[1, 2",
        "{\"a\": 1} trailing",
        "   ",
        "/* unterminated",
        "{'a': 1}",
    ] {
        assert_parse_error(StructuredFormat::Json, input);
    }
}

#[test]
fn malformed_yaml_is_a_parse_error() {
    for input in [
        "key: [unclosed",
        "a: b: c",
        "- a\nb: c",
        "key: \"unterminated",
        "*undefined_alias_start: [}",
    ] {
        assert_parse_error(StructuredFormat::Yaml, input);
    }
}

#[test]
fn malformed_xml_is_a_parse_error() {
    for input in [
        "",
        "not xml",
        "<a>",
        "<a></b>",
        "<a/><b/>",
        "<a>&unknown;</a>",
        "<p:a/>",
        "<a x='1' x='2'/>",
        "<a><!-- bad -- comment --></a>",
    ] {
        assert_parse_error(StructuredFormat::Xml, input);
    }
}

#[test]
fn any_text_is_a_properties_file() {
    let text = "this is : not really \\\n properties\n=== \\u12";
    assert_eq!(
        replace(StructuredFormat::Properties, text, &[]).expect("never fails"),
        text
    );
}

#[test]
fn a_variable_that_names_nothing_changes_nothing() {
    let json = "{\n  \"a\": {\n    \"b\": 1\n  }\n}";
    assert_eq!(
        replace(StructuredFormat::Json, json, &[("a:c", "x"), ("b", "y")]).expect("valid"),
        json
    );
    let yaml = "a:\n  b: 1\n";
    assert_eq!(
        replace(StructuredFormat::Yaml, yaml, &[("a:c", "x"), ("b", "y")]).expect("valid"),
        yaml
    );
    let xml = "<a>\n  <b>1</b>\n</a>";
    assert_eq!(
        replace(StructuredFormat::Xml, xml, &[("/a/c", "x"), ("//d", "y")]).expect("valid"),
        xml
    );
    let properties = "a=1\nb : 2\n";
    assert_eq!(
        replace(StructuredFormat::Properties, properties, &[("c", "x")]).expect("valid"),
        properties
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let yaml = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    for (format, input) in [
        (StructuredFormat::Json, json),
        (StructuredFormat::Yaml, yaml),
        (StructuredFormat::Xml, xml),
    ] {
        match replace(format, &input, &[]) {
            Err(StructuredError::NestingTooDeep { limit, .. }) => assert!(limit <= 127),
            other => panic!("{format}: expected NestingTooDeep, got {other:?}"),
        }
    }
}

#[test]
fn nesting_within_the_limit_works() {
    let depth = 90;
    let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(replace(StructuredFormat::Json, &json, &[]).is_ok());
    let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    assert!(replace(StructuredFormat::Xml, &xml, &[]).is_ok());
}

#[test]
fn oversized_input_is_refused() {
    let options = StructuredOptions {
        max_input_bytes: 4,
        ..StructuredOptions::default()
    };
    let result = replace_structured(StructuredFormat::Json, "[1, 2]", &variables(&[]), &options);
    assert!(matches!(
        result,
        Err(StructuredError::InputTooLarge {
            size_bytes: 6,
            limit_bytes: 4
        })
    ));
}

#[test]
fn detection_follows_calamari_order() {
    use StructuredFormat::{Json, Properties, Xml, Yaml};
    assert_eq!(
        candidate_formats_for_file_name("appsettings.json", false),
        [Json]
    );
    assert_eq!(
        candidate_formats_for_file_name("config.YML", false),
        [Json, Yaml]
    );
    assert_eq!(
        candidate_formats_for_file_name("a.yaml", false),
        [Json, Yaml]
    );
    assert_eq!(
        candidate_formats_for_file_name("web.xml", false),
        [Json, Xml]
    );
    assert_eq!(
        candidate_formats_for_file_name("app.properties", false),
        [Json, Properties]
    );
    assert_eq!(
        candidate_formats_for_file_name("app.config", false),
        [Json, Xml, Yaml, Properties]
    );
    assert_eq!(candidate_formats_for_file_name("app.yaml", true), [Json]);
}

#[test]
fn detection_takes_the_first_format_that_parses() {
    let detected = replace_structured_detecting_format(
        "settings.yml",
        false,
        "a:\n  b: old\n",
        &variables(&[("a:b", "new")]),
        &StructuredOptions::default(),
    )
    .expect("parses as YAML");
    assert_eq!(detected.format, StructuredFormat::Yaml);
    assert_eq!(detected.output.text, "a:\n  b: new\n");
    assert_eq!(detected.rejected_formats.len(), 1);

    let detected = replace_structured_detecting_format(
        "web.config",
        false,
        "<configuration><a>old</a></configuration>",
        &variables(&[("/configuration/a", "new")]),
        &StructuredOptions::default(),
    )
    .expect("parses as XML");
    assert_eq!(detected.format, StructuredFormat::Xml);

    let failed = replace_structured_detecting_format(
        "settings.json",
        false,
        "a: b",
        &variables(&[]),
        &StructuredOptions::default(),
    );
    assert!(matches!(
        failed,
        Err(StructuredError::Parse {
            format: StructuredFormat::Json,
            ..
        })
    ));
}

#[test]
fn json_outer_replacement_beats_inner_whatever_the_order() {
    let input = "{\"a\": {\"b\": 1}}";
    let expected = "{\r\n  \"a\": {\r\n    \"c\": 2\r\n  }\r\n}";
    let inner_first = replace(
        StructuredFormat::Json,
        input,
        &[("a:b", "5"), ("a", "{\"c\": 2}")],
    )
    .expect("valid");
    assert_eq!(inner_first, expected);
    let outer_first = replace(
        StructuredFormat::Json,
        input,
        &[("a", "{\"c\": 2}"), ("a:b", "5")],
    )
    .expect("valid");
    assert_eq!(outer_first, expected);
}

#[test]
fn json_keeps_comments_out_and_handles_top_level_arrays() {
    let input = "// leading\n[\n  {\"Name\": \"x\"}, // trailing comma next\n]\n";
    let output = replace(StructuredFormat::Json, input, &[("0:name", "y")]).expect("lenient JSON");
    assert_eq!(output, "[\n  {\n    \"Name\": \"y\"\n  }\n]");
}

#[test]
fn json_null_values_and_empty_files() {
    let output = replace_structured(
        StructuredFormat::Json,
        "{\"a\": \"x\", \"b\": 3}",
        &vec![("a".to_owned(), None::<String>), ("b".to_owned(), None)],
        &StructuredOptions::default(),
    )
    .expect("valid");
    assert_eq!(output.text, "{\r\n  \"a\": null,\r\n  \"b\": null\r\n}");
    assert_eq!(
        replace(StructuredFormat::Json, "", &[("a", "1")]).expect("empty is {}"),
        "{}"
    );
}

#[test]
fn yaml_fragments_and_fallbacks() {
    let input = "a:\n  b: 1\nc:\n- x\n";
    let output = replace(
        StructuredFormat::Yaml,
        input,
        &[("a", "not: [valid"), ("c", "")],
    )
    .expect("valid");
    assert_eq!(output, "a: \"not: [valid\"\nc: \"\"\n");
    let output =
        replace(StructuredFormat::Yaml, input, &[("a", "x: 1\n---\ny: 2")]).expect("valid");
    assert_eq!(
        output, "a: \"x: 1\\n---\\ny: 2\"\nc:\n- x\n",
        "several documents are not one node"
    );
}

#[test]
fn yaml_keeps_crlf_line_endings() {
    let output =
        replace(StructuredFormat::Yaml, "a:\r\n  b: 1\r\n", &[("a:b", "2")]).expect("valid");
    assert_eq!(output, "a:\r\n  b: 2\r\n");
}

#[test]
fn xml_invalid_fragment_leaves_the_element_and_warns() {
    let input = "<a><b>1</b></a>";
    let output = replace_structured(
        StructuredFormat::Xml,
        input,
        &variables(&[("/a", "<unclosed>")]),
        &StructuredOptions::default(),
    )
    .expect("valid document");
    assert_eq!(output.text, "<a>\r\n  <b>1</b>\r\n</a>");
    assert_eq!(output.warnings.len(), 1);
    assert!(output.replaced_variable_names.is_empty());
}

#[test]
fn xml_attributes_and_text_are_escaped() {
    let output = replace(
        StructuredFormat::Xml,
        "<a x=\"1\">t</a>\n",
        &[("/a/@x", "\"<&>\"\n"), ("/a/text()", "1 < 2 & 3")],
    )
    .expect("valid");
    assert_eq!(
        output,
        "<a x=\"&quot;&lt;&amp;&gt;&quot;&#xA;\">1 &lt; 2 &amp; 3</a>"
    );
}

#[test]
fn xml_unprefixed_names_do_not_match_default_namespace_elements() {
    let input = "<a xmlns=\"urn:x\"><b>1</b></a>\n";
    let unchanged = replace(StructuredFormat::Xml, input, &[("/a/b", "2")]).expect("valid");
    assert_eq!(unchanged, "<a xmlns=\"urn:x\">\n  <b>1</b>\n</a>");
    let changed = replace(StructuredFormat::Xml, input, &[("/*:a/*:b", "2")]).expect("valid");
    assert_eq!(changed, "<a xmlns=\"urn:x\">\n  <b>2</b>\n</a>");
}

#[test]
fn properties_ignore_every_octopus_key_and_match_case_insensitively() {
    let input = "Octopus:Port=1\nServer.Port=2";
    let output = replace(
        StructuredFormat::Properties,
        input,
        &[("Octopus:Port", "9"), ("server.port", "8")],
    )
    .expect("never fails");
    assert_eq!(output, "Octopus:Port=1\nServer.Port=8");
}

/// A tiny deterministic generator, so the robustness test needs no extra dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

#[test]
fn random_inputs_never_panic() {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "'",
        "a",
        "b",
        "1",
        " ",
        "  ",
        "\n",
        "\r\n",
        "\t",
        "-",
        "- ",
        "#",
        "&x",
        "*x",
        "!",
        "!!str",
        "|",
        ">",
        "%TAG ! !\n",
        "---",
        "...",
        "<",
        ">",
        "/",
        "</a>",
        "<a>",
        "<a/>",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "<?pi x?>",
        "&amp;",
        "&#x0;",
        "&#65;",
        "=",
        "\\",
        "\\u12",
        "é",
        "😀",
        "?",
        "@",
        "//",
        "/*",
    ];
    // CUTTLE_STRUCTURED_FUZZ_ITERATIONS raises the count for a longer local run.
    let iterations: usize = std::env::var("CUTTLE_STRUCTURED_FUZZ_ITERATIONS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(4000);
    let mut generator = Lcg(42);
    let variables = variables(&[
        ("a", "{\"x\": [1]}"),
        ("a:b", "- z"),
        ("/a", "<b/>"),
        ("//a/@x", "v"),
        ("0", "1"),
    ]);
    for _ in 0..iterations {
        let piece_count = generator.next() % 24;
        let input: String = (0..piece_count)
            .map(|_| PIECES[generator.next() % PIECES.len()])
            .collect();
        for format in [
            StructuredFormat::Json,
            StructuredFormat::Yaml,
            StructuredFormat::Xml,
            StructuredFormat::Properties,
        ] {
            let result =
                replace_structured(format, &input, &variables, &StructuredOptions::default());
            // A write error would mean this crate produced an invalid event stream or tree.
            assert!(
                !matches!(result, Err(StructuredError::Write { .. })),
                "{format} {input:?}: {result:?}"
            );
        }
    }
}
