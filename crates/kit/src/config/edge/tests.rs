use super::*;
use crate::config::Config;

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_vars(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
}

#[test]
fn production_turns_off_what_development_turns_on_each_overridable() {
    let dev = config(&[]).expect("defaults").edge;
    assert_eq!(dev.environment, Environment::Development);
    assert!(dev.introspection && dev.suggestions && dev.graphiql && dev.cors.origins == Origins::Localhost);
    let prod = config(&[("PYAIRTABLE_ENV", "production")]).expect("production").edge;
    assert!(!prod.introspection && !prod.suggestions && !prod.graphiql && prod.cors.origins == Origins::None);
    assert!(prod.csrf_prevention && prod.apq);
    let opened =
        config(&[("PYAIRTABLE_ENV", "production"), ("PYAIRTABLE_INTROSPECTION", "true")]).expect("override");
    assert!(opened.edge.introspection && !opened.edge.suggestions);
    assert_eq!(config(&[("PYAIRTABLE_ENV", "staging")]).expect_err("bad").variable, "PYAIRTABLE_ENV");
}

#[test]
fn budgets_are_n_per_window_or_off() {
    let edge = config(&[("PYAIRTABLE_RATE_LIMIT_CALLER", "20/10s"), ("PYAIRTABLE_RATE_LIMIT_IP", "off")])
        .expect("valid")
        .edge;
    assert_eq!(edge.rate_limits.caller, Some(Quota { limit: 20, window: Duration::from_secs(10) }));
    assert_eq!(edge.rate_limits.ip, None);
    assert_eq!(edge.rate_limits.tenant, Some(Quota::per_minute(6000)));
    for bad in ["20", "0/1m", "5/0s", "5/2d", "x/1m", "5/25h"] {
        let err = config(&[("PYAIRTABLE_COST_BUDGET", bad)]).expect_err(bad);
        assert_eq!(err.variable, "PYAIRTABLE_COST_BUDGET");
    }
}

#[test]
fn limits_cors_and_header_rules_are_checked() {
    let edge = config(&[
        ("PYAIRTABLE_MAX_DEPTH", "7"),
        ("PYAIRTABLE_CORS_ORIGINS", "https://a.example, http://b.example:8080/"),
        ("PYAIRTABLE_WS_KEEPALIVE_MS", "5000"),
    ])
    .expect("valid")
    .edge;
    assert_eq!(edge.limits.max_depth, 7);
    assert_eq!(edge.websockets.keepalive, std::time::Duration::from_secs(5));
    assert_eq!(edge.websockets.max_operations, 100, "the default");
    assert_eq!(
        edge.cors.origins,
        Origins::List(vec!["https://a.example".into(), "http://b.example:8080".into()])
    );
    let bad = [
        ("PYAIRTABLE_MAX_DEPTH", "0"),
        ("PYAIRTABLE_MAX_BATCH_SIZE", "many"),
        ("PYAIRTABLE_CORS_ORIGINS", "a.example"),
        ("PYAIRTABLE_CORS_METHODS", "GET,DELETE"),
        ("PYAIRTABLE_PROPAGATE_HEADERS", "x-pyairtable-identity"),
        ("PYAIRTABLE_PROPAGATE_HEADERS", "bad header"),
        ("PYAIRTABLE_WS_INIT_TIMEOUT_MS", "10"),
        ("PYAIRTABLE_WS_MAX_OPERATIONS", "0"),
        ("PYAIRTABLE_WS_BUFFER", "lots"),
    ];
    for (name, value) in bad {
        assert_eq!(config(&[(name, value)]).expect_err(value).variable, name);
    }
    let err = config(&[("PYAIRTABLE_CORS_ORIGINS", "*"), ("PYAIRTABLE_CORS_CREDENTIALS", "true")])
        .expect_err("both");
    assert_eq!(err.variable, "PYAIRTABLE_CORS_CREDENTIALS");
    let err = config(&[("PYAIRTABLE_MAX_DEPHT", "3")]).expect_err("typo");
    assert!(err.problem.contains("did you mean PYAIRTABLE_MAX_DEPTH?"), "{err}");
    let headers = config(&[("PYAIRTABLE_PROPAGATE_HEADERS", "Accept-Language, X-Client")]).expect("valid");
    assert_eq!(headers.edge.propagate_headers, ["accept-language", "x-client"]);
}
