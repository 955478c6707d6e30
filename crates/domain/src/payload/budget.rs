//! Blast-radius budgets an admin sets for one identity (`budget.set`): the identity's own limits, which apply
//! besides the configured `[[budgets.limits]]` (the strictest wins).

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};

use super::Payload;
use crate::EntryKind;

/// The most limits one identity's own budget holds (each costs two indexed range reads per mutation).
pub const MAX_IDENTITY_LIMITS: usize = 10;

/// The largest limit: the largest integer the ledger's JSON holds exactly (2^53 − 1).
pub const MAX_LIMIT: i64 = 9_007_199_254_740_991;

/// The longest window a budget may have (30 days), as in the configuration.
pub const MAX_WINDOW_SECONDS: u64 = 30 * 24 * 3600;

/// One limit of an identity's own budget: a window and at least one of the counters (the fields of
/// `[[budgets.limits]]` without `per`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityLimit {
    /// The sliding window, in seconds (1 s to 30 days).
    #[serde(deserialize_with = "seconds")]
    pub window_seconds: u64,
    /// At most this many mutations.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub mutations: Option<i64>,
    /// At most this many deletes.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub deletes: Option<i64>,
    /// At most this many distinct objects changed.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub objects: Option<i64>,
    /// At most this much replica change, added up in absolute value.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub replicas: Option<i64>,
}

/// A counter that is there is a whole number: `null` is refused (leave the field out instead), as the schema
/// says; `2.0` is read as 2, since JSON Schema counts it an integer.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    deserializer.deserialize_any(Whole).map(Some)
}

/// A window: a whole number of seconds, not negative.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let seconds = deserializer.deserialize_any(Whole)?;
    u64::try_from(seconds).map_err(|_| D::Error::invalid_value(Unexpected::Signed(seconds), &"seconds, not negative"))
}

/// Reads a whole number, also written with a zero fraction.
struct Whole;

impl Visitor<'_> for Whole {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<i64, E> {
        i64::try_from(value).map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
    }

    fn visit_f64<E: Error>(self, value: f64) -> Result<i64, E> {
        // Exactly representable as i64 (the bounds are powers of two, so the comparison is exact).
        if value.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&value) {
            return Ok(value as i64);
        }
        Err(E::invalid_value(Unexpected::Float(value), &self))
    }
}

/// `budget.set`: an admin set (or, with no `limits`, cleared) an identity's own budget. Recorded before it
/// takes effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSet {
    /// The identity whose budget it is (`agt_…`, `usr_…`).
    pub identity_id: String,
    /// Its own limits from now on; empty: none of its own (the configured budgets alone apply).
    pub limits: Vec<IdentityLimit>,
    /// Its own limits until now (empty: it had none).
    pub previous: Vec<IdentityLimit>,
    /// Why, as the admin said.
    pub reason: String,
}

impl Payload for BudgetSet {
    fn kind(&self) -> EntryKind {
        EntryKind::BudgetSet
    }
}

/// Written by hand, to say exactly what the API accepts: `window_seconds` and at least one counter
/// (`minProperties`), integers in range, no `null`, nothing else.
impl utoipa::PartialSchema for IdentityLimit {
    fn schema() -> RefOr<Schema> {
        let counter = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Int64,
                )))
                .minimum(Some(0))
                .maximum(Some(MAX_LIMIT))
                .description(Some(description))
        };
        ObjectBuilder::new()
            .description(Some(
                "One limit: a window and at least one of mutations, deletes, objects, replicas",
            ))
            .property(
                "window_seconds",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(MAX_WINDOW_SECONDS))
                    .description(Some("The sliding window, in seconds (1 s to 30 days)")),
            )
            .required("window_seconds")
            .property("mutations", counter("At most this many mutations"))
            .property("deletes", counter("At most this many deletes"))
            .property("objects", counter("At most this many distinct objects changed"))
            .property(
                "replicas",
                counter("At most this much replica change, added up in absolute value"),
            )
            .min_properties(Some(2))
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .into()
    }
}

impl utoipa::ToSchema for IdentityLimit {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_limit_reads_only_what_the_schema_allows() {
        let read = |value: serde_json::Value| serde_json::from_value::<IdentityLimit>(value);
        let limit = read(json!({"window_seconds": 600, "mutations": 10})).unwrap();
        assert_eq!((limit.mutations, limit.deletes), (Some(10), None));
        assert_eq!(
            serde_json::to_value(&limit).unwrap(),
            json!({"window_seconds": 600, "mutations": 10})
        );
        assert!(read(json!({"window_seconds": 600, "mutations": null})).is_err());
        assert!(read(json!({"window_seconds": 600, "per": "identity"})).is_err());
        assert!(read(json!({"window_seconds": 600, "mutations": 1.5})).is_err());
        assert!(read(json!({"window_seconds": 600, "mutations": "1"})).is_err());
        assert!(read(json!({"window_seconds": -600, "mutations": 1})).is_err());
        assert!(read(json!({"window_seconds": 600, "mutations": 1e300})).is_err());
        // JSON Schema counts 2.0 an integer: so does the API.
        let whole = read(json!({"window_seconds": 600.0, "deletes": 2.0})).unwrap();
        assert_eq!((whole.window_seconds, whole.deletes), (600, Some(2)));
    }
}
