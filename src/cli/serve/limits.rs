//! Rate limits of the mutating calls: per token name and per client
//! address, both with the same quota (GCRA: a steady rate per minute and a
//! burst). A call over either limit gets 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::api::ApiError;

/// The limiters of one server.
pub struct Limits {
    by_token: DefaultKeyedRateLimiter<String>,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl Limits {
    /// `per_minute` calls a minute on average, up to `burst` at once.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Limits {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Limits {
            by_token: RateLimiter::keyed(quota),
            by_address: RateLimiter::keyed(quota),
        }
    }

    /// Counts one mutating call of `token` from `address`.
    pub fn check(&self, token: &str, address: IpAddr) -> Result<(), ApiError> {
        let token_check = self.by_token.check_key(&token.to_owned());
        let address_check = self.by_address.check_key(&address);
        let now = DefaultClock::default().now();
        let wait = [token_check.err(), address_check.err()]
            .into_iter()
            .flatten()
            .map(|denied| denied.wait_time_from(now))
            .max();
        if let Some(wait) = wait {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many calls; retry in {secs} s"),
            )
            .retry_after(secs.max(1)));
        }
        Ok(())
    }
}
