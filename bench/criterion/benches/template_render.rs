//! Benchmark (a): render a 1 MiB application config file holding 500 `#{...}` substitutions
//! against a dictionary of about 600 variables, as file substitution does on a target.
//!
//! The config is XML-ish (an `appSettings` block per module, with static `system.web`-style
//! sections and comments between them) and the substitutions mix what real configs use: plain
//! dotted names, names with spaces and `[...]` indexers (`Octopus.Action[Deploy Web].Output.X`),
//! indexers that are themselves substitutions (`Tenant.Region[#{Region.Current}].Url`), a few
//! filters with arguments, and values that refer to other variables (connection strings built
//! from parts), which the evaluator expands recursively.
//!
//! Target: under 20 ms per render. The fixture is built deterministically, with no randomness,
//! so runs compare.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cuttle_template::{EvaluationOptions, VariableDictionary, evaluate};

const TEMPLATE_BYTES: usize = 1024 * 1024;
const N_SUBSTITUTIONS: usize = 500;

const N_PLAIN: usize = 300;
const N_STEPS: usize = 10;
const N_OUTPUTS_PER_STEP: usize = 10;
const N_REGIONS: usize = 5;
const N_REGION_SETTINGS: usize = 20;
const N_CONNECTION_STRINGS: usize = 50;

/// About 600 variables: 300 plain settings, 100 step outputs with spaces in the indexer,
/// 100 region-keyed values, 50 connection strings that refer to 2 parts each, plus those parts.
fn variables() -> VariableDictionary {
    let mut dictionary = VariableDictionary::new();
    for setting_idx in 0..N_PLAIN {
        dictionary.set(
            format!("App.Setting{setting_idx:03}"),
            format!("value-{setting_idx:03}-of-a-plain-application-setting"),
        );
    }
    for step_idx in 0..N_STEPS {
        for output_idx in 0..N_OUTPUTS_PER_STEP {
            dictionary.set(
                format!("Octopus.Action[Deploy Web {step_idx}].Output.Value {output_idx}"),
                format!("https://web-{step_idx}.example.internal:8443/api/{output_idx}"),
            );
        }
    }
    dictionary.set("Region.Current", "eu-west-2");
    for region_idx in 0..N_REGIONS {
        for setting_idx in 0..N_REGION_SETTINGS {
            dictionary.set(
                format!(
                    "Tenant.Region[{}].Setting{setting_idx:02}",
                    region_name(region_idx)
                ),
                format!("{}-setting-{setting_idx:02}", region_name(region_idx)),
            );
        }
    }
    for database_idx in 0..N_CONNECTION_STRINGS {
        dictionary.set(
            format!("Database{database_idx:02}.Server"),
            format!("sql-{database_idx:02}.db.example.internal"),
        );
        dictionary.set(
            format!("Database{database_idx:02}.Name"),
            format!("Orders_{database_idx:02}"),
        );
        dictionary.set(
            format!("Database{database_idx:02}.ConnectionString"),
            format!(
                "Server=#{{Database{database_idx:02}.Server}};Database=#{{Database{database_idx:02}.Name}};Integrated Security=SSPI;Encrypt=True"
            ),
        );
    }
    dictionary
}

fn region_name(region_idx: usize) -> String {
    [
        "eu-west-1",
        "eu-west-2",
        "us-east-1",
        "us-west-2",
        "ap-south-1",
    ][region_idx]
        .to_string()
}

/// The `substitution_idx`-th expression: 300 plain names, 100 step outputs (spaces and an
/// indexer), 50 symbol indexers, 25 connection strings (recursive) and 25 filter calls.
fn substitution(substitution_idx: usize) -> String {
    match substitution_idx {
        0..300 => format!("#{{App.Setting{:03}}}", substitution_idx % N_PLAIN),
        300..400 => {
            let output_idx = substitution_idx - 300;
            format!(
                "#{{Octopus.Action[Deploy Web {}].Output.Value {}}}",
                output_idx / N_OUTPUTS_PER_STEP,
                output_idx % N_OUTPUTS_PER_STEP
            )
        }
        400..450 => format!(
            "#{{Tenant.Region[#{{Region.Current}}].Setting{:02}}}",
            (substitution_idx - 400) % N_REGION_SETTINGS
        ),
        450..475 => format!(
            "#{{Database{:02}.ConnectionString}}",
            substitution_idx - 450
        ),
        _ => {
            let setting = format!("App.Setting{:03}", substitution_idx % N_PLAIN);
            match substitution_idx % 5 {
                0 => format!("#{{{setting} | ToUpper}}"),
                1 => format!("#{{{setting} | XmlEscape}}"),
                2 => format!("#{{{setting} | Replace \"-\" \"_\"}}"),
                3 => format!("#{{{setting} | Truncate 12}}"),
                _ => format!("#{{{setting} | ToLower | Append \"/health\"}}"),
            }
        }
    }
}

/// Static configuration between two substitutions: a comment and a `system.web`-like section,
/// varied by `section_idx` so the text is not one repeated string.
fn static_section(section_idx: usize) -> String {
    format!(
        r#"
  <!-- Module {section_idx}: settings below are substituted at deployment time. Do not edit on
       the server; change the project variables instead and redeploy. Owner: team-{team}. -->
  <location path="modules/{section_idx}">
    <system.web>
      <compilation debug="false" targetFramework="4.8" />
      <httpRuntime targetFramework="4.8" maxRequestLength="{request_length}" executionTimeout="110" />
      <customErrors mode="RemoteOnly" defaultRedirect="~/errors/{section_idx}.html">
        <error statusCode="404" redirect="~/errors/not-found.html" />
        <error statusCode="500" redirect="~/errors/server-error.html" />
      </customErrors>
      <authentication mode="Forms">
        <forms loginUrl="~/account/login" timeout="{timeout}" slidingExpiration="true" />
      </authentication>
    </system.web>
    <system.webServer>
      <modules runAllManagedModulesForAllRequests="true" />
      <staticContent>
        <clientCache cacheControlMode="UseMaxAge" cacheControlMaxAge="7.00:00:00" />
        <mimeMap fileExtension=".json" mimeType="application/json" />
        <mimeMap fileExtension=".woff2" mimeType="font/woff2" />
      </staticContent>
      <httpProtocol>
        <customHeaders>
          <add name="X-Frame-Options" value="SAMEORIGIN" />
          <add name="X-Content-Type-Options" value="nosniff" />
          <add name="Strict-Transport-Security" value="max-age=31536000" />
        </customHeaders>
      </httpProtocol>
    </system.webServer>
  </location>
"#,
        team = section_idx % 17,
        request_length = 4096 + section_idx,
        timeout = 20 + section_idx % 40,
    )
}

/// The 1 MiB config: 500 `<add key=... value="#{...}"/>` lines, each followed by static
/// sections and a comment that pads it to its share of exactly [`TEMPLATE_BYTES`].
fn config_template() -> String {
    const HEADER: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n";
    const FOOTER: &str = "</configuration>\n";
    const FILLER: &str = "Values in this file come from the project's variables, scoped per \
        environment and target; edit them in Cuttle, not here, or the next deployment will \
        overwrite your change. ";
    let mut template = String::with_capacity(TEMPLATE_BYTES);
    template.push_str(HEADER);
    let body_bytes = TEMPLATE_BYTES - HEADER.len() - FOOTER.len();
    let mut section_idx = 0;
    for substitution_idx in 0..N_SUBSTITUTIONS {
        let chunk_end = HEADER.len() + body_bytes * (substitution_idx + 1) / N_SUBSTITUTIONS;
        template.push_str(&format!(
            "  <appSettings module=\"{substitution_idx}\">\n    <add key=\"Setting{substitution_idx}\" value=\"{}\" />\n  </appSettings>\n",
            substitution(substitution_idx)
        ));
        loop {
            let section = static_section(section_idx);
            if template.len() + section.len() + 16 > chunk_end {
                break;
            }
            template.push_str(&section);
            section_idx += 1;
        }
        // Pad with a comment of filler text (ASCII, so any cut is a char boundary).
        let padding = chunk_end - template.len();
        let filler_bytes = padding.saturating_sub("  <!--  -->\n".len());
        template.push_str("  <!-- ");
        template.extend(FILLER.chars().cycle().take(filler_bytes));
        template.push_str(" -->\n");
        while template.len() < chunk_end {
            template.push(' ');
        }
    }
    template.push_str(FOOTER);
    template
}

fn render_config(criterion: &mut Criterion) {
    let dictionary = variables();
    let template = config_template();
    assert_eq!(template.len(), TEMPLATE_BYTES);
    assert_eq!(template.matches("value=\"#{").count(), N_SUBSTITUTIONS);

    let mut group = criterion.benchmark_group("template_render");
    group.throughput(Throughput::Bytes(template.len() as u64));
    for halt_on_error in [true, false] {
        let options = EvaluationOptions {
            halt_on_error,
            ..EvaluationOptions::default()
        };
        // The fixture must render cleanly, or we would be timing the error path.
        let evaluation = evaluate(&template, &dictionary, &options);
        assert!(
            evaluation.diagnostics.is_empty(),
            "the fixture renders without diagnostics: {:?}",
            &evaluation.diagnostics[..evaluation.diagnostics.len().min(5)]
        );
        let output = evaluation.output.expect("the fixture has no null result");
        assert!(!output.contains("#{"), "every substitution was expanded");

        let name = format!(
            "1MiB_config_500_substitutions_{}_variables_halt_on_error_{halt_on_error}",
            dictionary.len()
        );
        group.bench_function(name, |bencher| {
            bencher.iter(|| evaluate(black_box(&template), &dictionary, &options));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = render_config
}
criterion_main!(benches);
