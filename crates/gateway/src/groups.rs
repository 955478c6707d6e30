//! The groups an identity is in: names given by an admin or reported by an OIDC/LDAP sign-in, which
//! two-person rules by group and group budgets count (compared without regard to ASCII case).

/// Up to [`MAX_GROUPS`] names of 1 to 256 characters, none a control character (what `checked_groups` accepts).
pub(crate) fn group_names() -> utoipa::openapi::Array {
    let name = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(256))
        .pattern(Some(r"^[^\u0000-\u001f\u007f-\u009f]*$"));
    utoipa::openapi::ArrayBuilder::new()
        .items(name)
        .max_items(Some(MAX_GROUPS))
        .build()
}

/// The most groups an identity may be in.
pub const MAX_GROUPS: usize = 64;

/// Checks group names (1 to 256 characters, none of them a control character, at most [`MAX_GROUPS`]) and
/// drops repeats (without regard to ASCII case, keeping the first spelling).
pub fn checked_groups(groups: &[String]) -> Result<Vec<String>, String> {
    if groups.len() > MAX_GROUPS {
        return Err(format!("at most {MAX_GROUPS} groups, got {}", groups.len()));
    }
    let mut kept: Vec<String> = Vec::new();
    for group in groups {
        if group.is_empty() || group.chars().count() > 256 || group.chars().any(char::is_control) {
            return Err(format!(
                "group {group:?} is not valid: 1 to 256 characters, no control characters"
            ));
        }
        if !kept.iter().any(|k| k.eq_ignore_ascii_case(group)) {
            kept.push(group.clone());
        }
    }
    Ok(kept)
}

/// Whether `groups` holds `group`, without regard to ASCII case (as directories usually compare).
pub fn in_group(groups: &[String], group: &str) -> bool {
    groups.iter().any(|g| g.eq_ignore_ascii_case(group))
}

/// The most groups kept of a sign-in (a directory may report hundreds; two-person rules name a few).
const MAX_PROVIDER_GROUPS: usize = 256;

/// The groups a provider reported, as the identity keeps them: valid names only (1 to 256 characters, no
/// control characters), repeats dropped without regard to ASCII case, at most [`MAX_PROVIDER_GROUPS`].
pub(crate) fn provider_groups(reported: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for group in reported {
        let valid = !group.is_empty() && group.chars().count() <= 256 && !group.chars().any(char::is_control);
        if valid && !in_group(&kept, group) {
            kept.push(group.clone());
        }
    }
    if kept.len() > MAX_PROVIDER_GROUPS {
        tracing::warn!(
            reported = kept.len(),
            kept = MAX_PROVIDER_GROUPS,
            "a sign-in reported more groups than are kept"
        );
        kept.truncate(MAX_PROVIDER_GROUPS);
    }
    kept
}
