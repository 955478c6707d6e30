//! `kubectl get` asks for the API server's `Table` (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…`):
//! the columns it prints. The read is then made as a `Table` (`as_table`), so the columns are the API
//! server's own, exactly as without the gateway.

/// Whether an `Accept` header asks for a `meta.k8s.io/v1` `Table` (the API server's, so the only version the
/// gateway asks for).
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            let params: Vec<&str> = range.split(';').map(str::trim).collect();
            ["as=Table", "v=v1", "g=meta.k8s.io"]
                .iter()
                .all(|wanted| params.contains(wanted))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_asked_for_by_kubectl_get() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert!(wants_table(Some(kubectl)));
        assert!(wants_table(Some("application/json; as=Table; g=meta.k8s.io; v=v1")));
        assert!(!wants_table(Some(
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(None));
    }
}
