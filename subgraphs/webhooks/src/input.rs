//! Endpoint input, validated at the edge: every refusal is BAD_USER_INPUT naming the field.

use std::collections::BTreeMap;

use async_graphql::InputObject;
use pyairtable_kit::{Error, Result};

use crate::store::{EndpointFields, EndpointRow};
use crate::{catalog, signature, ssrf};

const MAX_DESCRIPTION: usize = 500;
const MAX_HEADERS: usize = 20;
const MAX_RATE_LIMIT: i32 = 10_000;
/// Headers the platform sets itself (or that would break the request).
const RESERVED: &[&str] =
    &["content-type", "content-length", "host", "user-agent", "transfer-encoding", "connection", "te"];

/// A custom request header sent with every attempt.
#[derive(InputObject, Debug, Clone)]
#[graphql(name = "WebhookHeaderInput")]
pub struct HeaderInput {
    pub name: String,
    pub value: String,
}

/// A new endpoint. `eventTypes` empty (the default) receives every type of the catalog.
#[derive(InputObject, Debug, Clone)]
#[graphql(name = "CreateWebhookEndpointInput")]
pub struct CreateInput {
    pub url: String,
    #[graphql(default)]
    pub description: String,
    #[graphql(default)]
    pub event_types: Vec<String>,
    #[graphql(default = true)]
    pub enabled: bool,
    /// Attempts per second at most (1 to 10000); null: no limit.
    pub rate_limit: Option<i32>,
    #[graphql(default)]
    pub headers: Vec<HeaderInput>,
}

/// Changes to an endpoint: fields left out keep their value. `rateLimit: 0` removes the limit.
#[derive(InputObject, Debug, Clone, Default)]
#[graphql(name = "UpdateWebhookEndpointInput")]
pub struct UpdateInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub rate_limit: Option<i32>,
    pub headers: Option<Vec<HeaderInput>>,
}

impl CreateInput {
    pub fn parse(self, allow_loopback: bool) -> Result<EndpointFields> {
        Ok(EndpointFields {
            url: url(&self.url, allow_loopback)?,
            description: description(&self.description)?,
            event_types: event_types(self.event_types)?,
            enabled: self.enabled,
            rate_limit: rate_limit(self.rate_limit)?,
            headers: headers(self.headers)?,
        })
    }
}

impl UpdateInput {
    /// The endpoint's fields with these changes.
    pub fn apply(self, row: &EndpointRow, allow_loopback: bool) -> Result<EndpointFields> {
        Ok(EndpointFields {
            url: self.url.map_or_else(|| Ok(row.url.clone()), |u| url(&u, allow_loopback))?,
            description: self.description.map_or_else(|| Ok(row.description.clone()), |d| description(&d))?,
            event_types: self.event_types.map_or_else(|| Ok(row.event_types.clone()), event_types)?,
            enabled: self.enabled.unwrap_or(row.enabled),
            rate_limit: match self.rate_limit {
                None => row.rate_limit,
                Some(0) => None,
                limit => rate_limit(limit)?,
            },
            headers: self.headers.map_or_else(|| Ok(row.headers.0.clone()), headers)?,
        })
    }
}

fn url(raw: &str, allow_loopback: bool) -> Result<String> {
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err(Error::bad_input("url", "the URL is longer than 2048 characters"));
    }
    let url = ssrf::check_url(raw, allow_loopback).map_err(|why| Error::bad_input("url", why))?;
    Ok(url.to_string())
}

fn description(raw: &str) -> Result<String> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(Error::bad_input("description", format!("at most {MAX_DESCRIPTION} characters")));
    }
    Ok(text.to_owned())
}

fn event_types(mut names: Vec<String>) -> Result<Vec<String>> {
    if let Some(unknown) = names.iter().find(|n| !catalog::known(n)) {
        return Err(Error::bad_input(
            "eventTypes",
            format!("unknown event type {unknown:?}; see webhookEventTypes for the catalog"),
        ));
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn rate_limit(limit: Option<i32>) -> Result<Option<i32>> {
    match limit {
        Some(l) if !(1..=MAX_RATE_LIMIT).contains(&l) => {
            Err(Error::bad_input("rateLimit", format!("attempts per second: between 1 and {MAX_RATE_LIMIT}")))
        }
        other => Ok(other),
    }
}

fn headers(list: Vec<HeaderInput>) -> Result<BTreeMap<String, String>> {
    if list.len() > MAX_HEADERS {
        return Err(Error::bad_input("headers", format!("at most {MAX_HEADERS} headers")));
    }
    let mut map = BTreeMap::new();
    for HeaderInput { name, value } in list {
        let name = name.trim().to_ascii_lowercase();
        let valid = http::HeaderName::try_from(name.as_str()).is_ok();
        if !valid || name.starts_with("webhook-") || RESERVED.contains(&name.as_str()) {
            return Err(Error::bad_input("headers", format!("{name:?} is not a header an endpoint may set")));
        }
        if http::HeaderValue::try_from(value.as_str()).is_err() || value.len() > 1024 {
            return Err(Error::bad_input("headers", format!("the value of {name} is not a header value")));
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// A secret given by the client (to keep one from another system), or a new one.
pub fn secret(given: Option<String>) -> Result<String> {
    match given {
        None => Ok(signature::generate()),
        Some(secret) => match signature::decode(secret.trim()) {
            Ok(_) => Ok(secret.trim().to_owned()),
            Err(err) => Err(Error::bad_input("secret", err.to_string())),
        },
    }
}
