//! Which names templates, parameters and instances may have: they become Rego package path segments and rule
//! keys, so they are kept to plain lower-case identifiers.

use super::TemplateError;

/// Words Rego reserves: not usable as an instance name (a package path segment).
const REGO_KEYWORDS: &[&str] = &[
    "as", "contains", "data", "default", "else", "every", "false", "if", "import", "in", "input", "not", "null",
    "package", "some", "true", "with",
];

/// A name: lower-case letters, digits and the characters of `separators`, starting with a letter, at most 63.
pub(super) fn is_name(text: &str, separators: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || separators.contains(c))
        && text.len() <= 63
}

/// Checks an instance name (the last segment of the rendered package).
pub fn check_instance(instance: &str) -> Result<(), TemplateError> {
    if is_name(instance, "_") && !REGO_KEYWORDS.contains(&instance) {
        Ok(())
    } else {
        Err(TemplateError::InvalidInstance(instance.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        for good in ["a", "prod_deletes", "x1"] {
            check_instance(good).unwrap();
        }
        for bad in ["", "A", "1a", "a-b", "a.b", "a\nb", "if", "default", &"a".repeat(64)] {
            assert!(check_instance(bad).is_err(), "{bad:?}");
        }
    }
}
