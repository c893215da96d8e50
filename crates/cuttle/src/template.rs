//! `cuttle template render|replace`: the variable engine from the command line, for people
//! checking a template and for data-driven tests.
//!
//! Output goes to stdout exactly as the engine produced it (no newline is added), diagnostics
//! to stderr. Exit codes: 0 success, 1 an error the engine reported (a parse error stops
//! evaluation and prints the input unchanged, as Octostache does), 2 a recursive definition.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use cuttle_structured::{
    EvaluatedVariables, StructuredFormat, StructuredOptions, replace_structured,
};
use cuttle_template::{DiagnosticKind, EvaluationOptions, VariableDictionary, evaluate};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TemplateCommand {
    /// Evaluate a template (from FILE, or stdin) with variables and print the result.
    Render {
        /// A JSON object of variable name to value (a string, or null for C#'s null), in
        /// definition order.
        #[arg(long)]
        variables: PathBuf,
        /// Copy text that does not parse through and carry on (file-substitution mode),
        /// instead of stopping at the first parse error.
        #[arg(long)]
        continue_on_error: bool,
        /// The template; stdin when absent.
        file: Option<PathBuf>,
    },
    /// Apply structured configuration variables to a JSON, YAML, XML or properties file.
    Replace {
        /// A JSON object of variable name to value (a string or null), in definition order.
        #[arg(long)]
        variables: PathBuf,
        /// The file's format.
        #[arg(long, value_enum)]
        format: FormatArgument,
        /// The file to transform; the result goes to stdout.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum FormatArgument {
    Json,
    Yaml,
    Xml,
    Properties,
}

impl From<FormatArgument> for StructuredFormat {
    fn from(format: FormatArgument) -> StructuredFormat {
        match format {
            FormatArgument::Json => StructuredFormat::Json,
            FormatArgument::Yaml => StructuredFormat::Yaml,
            FormatArgument::Xml => StructuredFormat::Xml,
            FormatArgument::Properties => StructuredFormat::Properties,
        }
    }
}

pub(crate) fn run(command: TemplateCommand) -> anyhow::Result<ExitCode> {
    match command {
        TemplateCommand::Render {
            variables,
            continue_on_error,
            file,
        } => render(&variables, continue_on_error, file.as_deref()),
        TemplateCommand::Replace {
            variables,
            format,
            file,
        } => replace(&variables, format.into(), &file),
    }
}

fn render(
    variables_path: &Path,
    continue_on_error: bool,
    file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let pairs = read_variables(variables_path)?;
    let template = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("read the template {}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("read the template from stdin")?;
            text
        }
    };
    let mut dictionary = VariableDictionary::new();
    for (name, value) in pairs {
        // Octostache binds a null value as the empty string.
        dictionary.set(name, value.unwrap_or_default());
    }
    let options = EvaluationOptions {
        halt_on_error: !continue_on_error,
        now_utc: Some(chrono_now()),
        ..EvaluationOptions::default()
    };
    let evaluation = evaluate(&template, &dictionary, &options);
    if let Some(output) = &evaluation.output {
        write_stdout(output.as_bytes())?;
    }
    let mut stderr = std::io::stderr().lock();
    for diagnostic in &evaluation.diagnostics {
        writeln!(
            stderr,
            "{}: {} (at bytes {}..{})",
            if diagnostic.kind.is_error() {
                "error"
            } else {
                "warning"
            },
            diagnostic.message,
            diagnostic.span.start,
            diagnostic.span.end
        )
        .context("write to stderr")?;
    }
    let errors = || {
        evaluation
            .diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.kind.is_error())
    };
    if errors().any(|diagnostic| diagnostic.kind == DiagnosticKind::RecursiveDefinition) {
        return Ok(ExitCode::from(2));
    }
    if !continue_on_error && errors().next().is_some() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn replace(
    variables_path: &Path,
    format: StructuredFormat,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let pairs = read_variables(variables_path)?;
    let input =
        std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let variables = EvaluatedVariables::new(pairs);
    let output = replace_structured(format, &input, &variables, &StructuredOptions::default())
        .with_context(|| format!("replace structured variables in {}", file.display()))?;
    write_stdout(output.text.as_bytes())?;
    let mut stderr = std::io::stderr().lock();
    for warning in &output.warnings {
        writeln!(stderr, "warning: {}", warning.message).context("write to stderr")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).context("write to stdout")?;
    stdout.flush().context("write to stdout")
}

/// The clock `NowDate` reads; the engine itself never reads one.
fn chrono_now() -> cuttle_template::chrono::DateTime<cuttle_template::chrono::Utc> {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    cuttle_template::chrono::DateTime::from_timestamp(
        i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        elapsed.subsec_nanos(),
    )
    .unwrap_or_default()
}

/// Reads `{"Name": "value" | null, …}` keeping the file's order.
fn read_variables(path: &Path) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the variables file {}", path.display()))?;
    let OrderedVariables(pairs) = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} must be a JSON object of variable names to strings or null",
            path.display()
        )
    })?;
    Ok(pairs)
}

struct OrderedVariables(Vec<(String, Option<String>)>);

impl<'de> serde::Deserialize<'de> for OrderedVariables {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> serde::de::Visitor<'de> for OrderedVisitor {
            type Value = OrderedVariables;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("an object of variable names to strings or null")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<OrderedVariables, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = access.next_entry::<String, Option<String>>()? {
                    pairs.push(pair);
                }
                Ok(OrderedVariables(pairs))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}
