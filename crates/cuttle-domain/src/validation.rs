//! What every stored resource has in common, and the shared validation rules (names, slugs).
//!
//! A resource validates itself and lists the other resources it points at; whether those exist
//! is a question for the store, so it is answered by the caller, not here.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ids::ResourceKind;

/// The longest name a resource may have, in characters (Octopus allows 200).
pub const MAX_NAME_CHARS: usize = 200;

/// The longest description a resource may have, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;

/// One problem with one field of a request, named the way the client spelled the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A pointer from one resource to another, by id, with the field that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub field: String,
    pub kind: ResourceKind,
    pub id: String,
}

impl Reference {
    pub fn new(field: impl Into<String>, kind: ResourceKind, id: impl Into<String>) -> Reference {
        Reference {
            field: field.into(),
            kind,
            id: id.into(),
        }
    }
}

/// A configuration resource kept as a document.
///
/// The store indexes what these methods return (name, sort order, references, owner) next to
/// the JSON document, so uniqueness and "still in use" are enforced by the database.
pub trait Resource: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: ResourceKind;

    fn id(&self) -> &str;
    fn set_id(&mut self, id: String);
    fn name(&self) -> &str;
    /// The space the resource lives in; `None` for global resources (spaces, users).
    fn space_id(&self) -> Option<&str>;
    fn set_space_id(&mut self, space_id: &str);

    /// Position in ordered lists; resources without an order list by name.
    fn sort_order(&self) -> i64 {
        0
    }

    /// The resource this one belongs to and is deleted with (a channel's project).
    /// Names are unique within the owner instead of within the space.
    fn owner_id(&self) -> Option<&str> {
        None
    }

    /// Every other resource this one points at.
    fn references(&self) -> Vec<Reference>;

    /// Normalizes fields (trims names, fills slugs) and reports what is wrong.
    fn normalize_and_validate(&mut self) -> Vec<FieldError>;
}

/// Trims a name and checks it: required, at most [`MAX_NAME_CHARS`], no control characters.
pub fn validate_name(field: &str, name: &mut String, errors: &mut Vec<FieldError>) {
    let trimmed = name.trim();
    if trimmed.len() != name.len() {
        *name = trimmed.to_owned();
    }
    if name.is_empty() {
        errors.push(FieldError::new(field, format!("{field} is required")));
        return;
    }
    let n_chars = name.chars().count();
    if n_chars > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            field,
            format!("{field} must be at most {MAX_NAME_CHARS} characters long, not {n_chars}"),
        ));
    }
    if name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
}

/// Checks an optional description's length.
pub fn validate_description(description: &Option<String>, errors: &mut Vec<FieldError>) {
    if let Some(description) = description {
        let n_chars = description.chars().count();
        if n_chars > MAX_DESCRIPTION_CHARS {
            errors.push(FieldError::new(
                "Description",
                format!("Description must be at most {MAX_DESCRIPTION_CHARS} characters long"),
            ));
        }
    }
}

/// Fills an empty slug from the name, and keeps a given one to the slug alphabet.
pub fn normalize_slug(slug: &mut String, name: &str) {
    let source = if slug.trim().is_empty() {
        name
    } else {
        slug.as_str()
    };
    *slug = slugify(source);
}

/// Octopus-style slug: lower-case letters and digits, words joined by single dashes.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut pending_dash = false;
    for character in text.chars().flat_map(char::to_lowercase) {
        if character.is_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(character);
        } else {
            pending_dash = true;
        }
    }
    slug
}

/// The form of a name that uniqueness is checked on: names differing only in case collide.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Reports a list field that must not be empty.
pub fn require_non_empty<T>(field: &str, values: &[T], errors: &mut Vec<FieldError>) {
    if values.is_empty() {
        errors.push(FieldError::new(
            field,
            format!("{field} must contain at least one value"),
        ));
    }
}

/// Trims each string of a list, drops empty ones and duplicates (ignoring case), keeps order.
pub fn normalize_string_list(values: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    values.retain_mut(|value| {
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            *value = trimmed.to_owned();
        }
        !value.is_empty() && seen.insert(value.to_lowercase())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        let mut errors = Vec::new();
        let mut name = "  Production  ".to_owned();
        validate_name("Name", &mut name, &mut errors);
        assert_eq!(name, "Production");
        assert!(errors.is_empty());

        let mut long_name = "x".repeat(10_000);
        validate_name("Name", &mut long_name, &mut errors);
        assert_eq!(
            errors,
            vec![FieldError::new(
                "Name",
                "Name must be at most 200 characters long, not 10000"
            )]
        );
    }

    #[test]
    fn empty_and_control_character_names_are_refused() {
        let mut errors = Vec::new();
        validate_name("Name", &mut "   ".to_owned(), &mut errors);
        validate_name("Name", &mut "a\u{0}b".to_owned(), &mut errors);
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn non_ascii_names_are_fine_and_compare_ignoring_case() {
        let mut errors = Vec::new();
        let mut name = "Produktion Österreich 生产".to_owned();
        validate_name("Name", &mut name, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(name_key("ÖSTERREICH"), name_key("österreich"));
    }

    #[test]
    fn slugs_join_words_with_dashes() {
        assert_eq!(slugify("Hello World!"), "hello-world");
        assert_eq!(slugify("  --My.App v2 "), "my-app-v2");
        assert_eq!(slugify("Österreich"), "österreich");
    }

    #[test]
    fn string_lists_lose_blanks_and_duplicates() {
        let mut roles = vec![
            " web ".to_owned(),
            "".to_owned(),
            "Web".to_owned(),
            "db".to_owned(),
        ];
        normalize_string_list(&mut roles);
        assert_eq!(roles, vec!["web".to_owned(), "db".to_owned()]);
    }
}
