//! The client a caller's links are fetched with (D32): the names it connects to are resolved
//! here, and every address checked by the [`Policy`] before a connection is made to it (the
//! connection goes to that checked address: there is no second lookup for a rebinding name to
//! answer differently); every redirect is checked like the link, at most
//! [`MAX_REDIRECTS`]; no proxy (which would resolve names itself).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use super::policy::{Policy, ALLOW_HINT, MAX_REDIRECTS};
use crate::error::RunError;
use crate::upstream::Trust;

/// Why a caller's link was not followed: the policy's reason, for the run's error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The checked client for `policy`.
pub fn client(policy: Arc<Policy>, trust: &Trust) -> Result<reqwest::Client, RunError> {
    let redirects = Arc::clone(&policy);
    trust
        .builder()
        .no_proxy()
        .dns_resolver(Arc::new(Checked(policy)))
        .redirect(redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                let refused = Refused(format!("more than {MAX_REDIRECTS} redirects"));
                return attempt.error(refused);
            }
            match redirects.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => {
                    let refused = Refused(format!("redirected to {}: {why}", attempt.url()));
                    attempt.error(refused)
                }
            }
        }))
        .build()
        .map_err(|err| RunError::Transport(err.to_string()))
}

/// The refusal somewhere in a failed request's causes, if that is why it failed.
pub fn refusal(err: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(err) = cause {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused.0.clone());
        }
        cause = err.source();
    }
    None
}

/// Resolves names as the system does, then keeps them only if every address is one a caller
/// may reach: a name that also resolves to a private address is refused whole.
struct Checked(Arc<Policy>);

impl Resolve for Checked {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !policy.allows_host(&host) {
                for address in &found {
                    if let Some(why) = policy.refuses(address.ip()) {
                        let refused = Refused(format!(
                            "{host} resolves to {}, {why}{ALLOW_HINT}",
                            address.ip()
                        ));
                        return Err(Box::new(refused) as Box<dyn Error + Send + Sync>);
                    }
                }
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}
