//! Which budgets a request draws on: before anything is parsed (per IP, caller and tenant), and
//! once the operation is known (its cost, and the strict budget of the anonymous operations per
//! IP and per target account).

use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::FieldSelection;
use hive_router_query_planner::ast::value::Value as ArgValue;
use pyairtable_kit::Caller;
use pyairtable_kit::config::RateLimits;
use serde_json::{Map, Value};

use crate::persisted::sha256_hex;
use crate::ratelimit::Limit;

/// Who is calling, for the per-caller budget: the API key when one was used (each key has its
/// own budget), else the user.
pub fn caller_partition(caller: &Caller, api_key: Option<&str>) -> Option<String> {
    match api_key {
        Some(key) => Some(format!("key:{}", &sha256_hex(key)[..32])),
        None => caller.user_id.map(|id| format!("user:{id}")),
    }
}

/// The budgets every request draws one unit from.
pub fn admission(rates: &RateLimits, caller: &Caller, caller_key: Option<String>) -> Vec<Limit> {
    let mut limits = Vec::new();
    if let (Some(quota), Some(ip)) = (rates.ip, &caller.ip) {
        limits.push(Limit { policy: "ip", partition: ip.clone(), quota, cost: 1 });
    }
    if let (Some(quota), Some(key)) = (rates.caller, caller_key) {
        limits.push(Limit { policy: "caller", partition: key, quota, cost: 1 });
    }
    if let (Some(quota), Some(tenant)) = (rates.tenant, caller.tenant_id) {
        limits.push(Limit { policy: "tenant", partition: tenant.to_string(), quota, cost: 1 });
    }
    limits
}

/// Whose cost budget: the tenant's, else the user's, else the IP's.
fn cost_partition(caller: &Caller) -> Option<String> {
    caller
        .tenant_id
        .map(|t| format!("tenant:{t}"))
        .or_else(|| caller.user_id.map(|u| format!("user:{u}")))
        .or_else(|| caller.ip.as_ref().map(|ip| format!("ip:{ip}")))
}

/// The budgets of a prepared operation: its cost, and for the public (anonymous) operations the
/// strict budget per IP and per account named by an `email` argument.
pub fn operation(
    rates: &RateLimits,
    caller: &Caller,
    cost: u64,
    public_fields: &[&FieldSelection],
    variables: &Map<String, Value>,
) -> Vec<Limit> {
    let mut limits = Vec::new();
    if let (Some(quota), Some(partition), true) = (rates.cost, cost_partition(caller), cost > 0) {
        limits.push(Limit { policy: "cost", partition, quota, cost });
    }
    if public_fields.is_empty() {
        return limits;
    }
    if let (Some(quota), Some(ip)) = (rates.anonymous_ip, &caller.ip) {
        limits.push(Limit { policy: "anonymous_ip", partition: ip.clone(), quota, cost: 1 });
    }
    if let Some(quota) = rates.anonymous_account {
        let mut emails: Vec<String> =
            public_fields.iter().filter_map(|f| target_email(f, variables)).collect();
        emails.sort();
        emails.dedup();
        for email in emails {
            let partition = sha256_hex(&email)[..32].to_owned();
            limits.push(Limit { policy: "anonymous_account", partition, quota, cost: 1 });
        }
    }
    limits
}

/// The root fields of `selection` that are public operations.
pub fn public_fields<'s>(
    selection: &'s [SelectionItem],
    is_public: &dyn Fn(&str) -> bool,
    out: &mut Vec<&'s FieldSelection>,
) {
    for item in selection {
        match item {
            SelectionItem::Field(field) if is_public(&field.name) => out.push(field),
            SelectionItem::InlineFragment(fragment) => {
                public_fields(&fragment.selections.items, is_public, out)
            }
            _ => {}
        }
    }
}

/// The account a public operation targets: an `email` argument, or `email` in its `input`.
fn target_email(field: &FieldSelection, variables: &Map<String, Value>) -> Option<String> {
    let arguments = field.arguments.as_ref()?;
    let resolve = |value: &ArgValue| -> Option<Value> {
        match value {
            ArgValue::Variable(name) => variables.get(name).cloned(),
            ArgValue::String(s) => Some(Value::String(s.clone())),
            ArgValue::Object(map) => Some(Value::Object(
                map.iter()
                    .filter_map(|(k, v)| match v {
                        ArgValue::String(s) => Some((k.clone(), Value::String(s.clone()))),
                        ArgValue::Variable(name) => variables.get(name).map(|v| (k.clone(), v.clone())),
                        _ => None,
                    })
                    .collect(),
            )),
            _ => None,
        }
    };
    let email = match arguments.get_argument("email").and_then(resolve) {
        Some(email) => email,
        None => arguments.get_argument("input").and_then(resolve)?.get("email")?.clone(),
    };
    email.as_str().map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty())
}
