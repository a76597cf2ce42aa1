//! GCRA in Redis: one Lua script per decision checks every key of the request and charges them
//! all or none, atomically, against Redis's own clock (`TIME`), so routers on hosts with skewed
//! clocks still share one budget.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::gcra::Cell;

/// KEYS: one per limit. ARGV: per key, cost, limit, window (µs). Returns per key: allowed (0/1),
/// remaining, wait (µs).
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local all = true
local tats, out = {}, {}
for i = 1, #KEYS do
  local cost, limit, window = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local interval = window / limit
  local base = tonumber(redis.call('GET', KEYS[i]) or now)
  if base < now then base = now end
  local new_tat = base + cost * interval
  local allow_at = new_tat - window
  if cost > limit then
    all = false
    out[#out+1] = 0; out[#out+1] = 0; out[#out+1] = window
  elseif allow_at - now > 1 then
    all = false
    out[#out+1] = 0; out[#out+1] = 0; out[#out+1] = math.ceil(allow_at - now)
  else
    tats[i] = new_tat
    out[#out+1] = 1; out[#out+1] = math.floor(math.max(now - allow_at, 0) / interval + 1e-9)
    out[#out+1] = math.ceil(new_tat - now)
  end
end
if all then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
end
return out
";

/// How long a decision may wait for Redis before the in-process fallback decides.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// Runs one decision in Redis.
pub async fn check_all(
    connection: &ConnectionManager,
    checks: &[(String, u64, u64, Duration)],
) -> Result<Vec<Cell>, String> {
    let script = redis::Script::new(SCRIPT);
    let mut invocation = script.prepare_invoke();
    for (key, cost, limit, window) in checks {
        invocation.key(key).arg(*cost).arg(*limit).arg(window.as_micros() as u64);
    }
    let mut connection = connection.clone();
    let answer = tokio::time::timeout(TIMEOUT, invocation.invoke_async::<Vec<i64>>(&mut connection))
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    if answer.len() != checks.len() * 3 {
        return Err(format!("the script answered {} numbers for {} keys", answer.len(), checks.len()));
    }
    Ok(answer
        .chunks(3)
        .map(|c| Cell { allowed: c[0] == 1, remaining: c[1].max(0) as u64, wait_us: c[2].max(0) as f64 })
        .collect())
}
