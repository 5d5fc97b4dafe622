//! Fetching from the issuer: discovery (`<issuer>/.well-known/openid-configuration`, whose
//! `issuer` must equal the configured one exactly) and the JWKS. Every request has the fetch
//! timeout, reads at most 1 MiB (streamed: reading stops past the cap), and follows redirects
//! only to the same scheme, host and port.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::redirect::Policy;
use reqwest::{Client, Url};
use serde_json::Value;

use super::alg::Alg;
use super::keys::{IgnoredKeys, KeySet};
use super::stats::FetchResult;
use super::OidcError;

/// The largest discovery document or JWKS read.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The most redirects followed (each to the same scheme, host and port).
const MAX_REDIRECTS: usize = 5;

/// Where and how keys are fetched.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    /// The configured issuer, exactly.
    pub(crate) issuer: String,
    /// `<issuer>/.well-known/openid-configuration`.
    pub(crate) discovery_url: String,
    /// `AUTHENTICATION_OIDC_JWKS_URL`: skips discovery.
    pub(crate) jwks_url: Option<String>,
}

/// The outcome of discovery, kept between fetches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Discovered {
    pub(crate) jwks_uri: String,
    /// The advertised algorithms intersected with those we accept.
    pub(crate) algorithms: Vec<Alg>,
}

/// A successful fetch.
pub(crate) struct Fetched {
    pub(crate) discovered: Discovered,
    pub(crate) keys: KeySet,
    pub(crate) ignored: IgnoredKeys,
    /// `Cache-Control: max-age` of the JWKS response.
    pub(crate) max_age: Option<Duration>,
}

/// A failed fetch: the label and a description for the log (URLs and statuses, never tokens).
#[derive(Debug)]
pub(crate) struct FetchFailure {
    pub(crate) result: FetchResult,
    pub(crate) detail: String,
}

impl FetchFailure {
    fn new(result: FetchResult, detail: impl Into<String>) -> Self {
        FetchFailure {
            result,
            detail: detail.into(),
        }
    }
}

/// Builds the HTTP client: the system roots plus the configured CA, TLS 1.2 or later,
/// the timeout on connect and on the whole exchange, same-origin redirects only.
pub(crate) fn client(
    timeout: Duration,
    certificate: Option<&str>,
    insecure_skip_tls_verify: bool,
) -> Result<Client, OidcError> {
    let policy = Policy::custom(|attempt| {
        let same_origin = match attempt.previous().first() {
            Some(first) => {
                let next = attempt.url();
                first.scheme() == next.scheme()
                    && first.host_str() == next.host_str()
                    && first.port_or_known_default() == next.port_or_known_default()
            }
            None => false,
        };
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    let mut builder = Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(policy)
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .min_tls_version(reqwest::tls::Version::TLS_1_2);
    if let Some(pem) = certificate {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| OidcError::Certificate(e.to_string()))?;
        if certs.is_empty() {
            return Err(OidcError::Certificate(
                "no certificate in the PEM text".into(),
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if insecure_skip_tls_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| OidcError::Client(e.to_string()))
}

fn classify(err: &reqwest::Error, url: &str) -> FetchFailure {
    let result = if err.is_timeout() {
        FetchResult::Timeout
    } else {
        FetchResult::NetworkError
    };
    // reqwest's error text names the URL; its sources say why (refused, TLS, ...). Neither
    // ever holds a token.
    let mut detail = format!("GET {url}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    FetchFailure::new(result, detail)
}

/// `max-age` from a `Cache-Control` header, if any.
pub(crate) fn max_age(header: &str) -> Option<Duration> {
    header.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        value
            .trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

/// GETs `url` and reads at most [`MAX_BODY_BYTES`], with its `Cache-Control: max-age`.
async fn get(client: &Client, url: &str) -> Result<(Vec<u8>, Option<Duration>), FetchFailure> {
    let mut response = client
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| classify(&e, url))?;
    let status = response.status();
    if !status.is_success() {
        let detail = if status.is_redirection() {
            format!("GET {url}: status {status} (redirects to another origin are not followed)")
        } else {
            format!("GET {url}: status {status}")
        };
        return Err(FetchFailure::new(FetchResult::HttpError, detail));
    }
    let too_large = || {
        FetchFailure::new(
            FetchResult::TooLarge,
            format!("GET {url}: the response exceeds {MAX_BODY_BYTES} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let max_age = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e, url))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, max_age))
}

/// Whether `url` is an `http(s)` URL, and not plain `http` when the issuer uses `https`.
fn acceptable_url(url: &str, issuer_is_https: bool) -> bool {
    match Url::parse(url) {
        Ok(parsed) => match parsed.scheme() {
            "https" => parsed.host_str().is_some(),
            "http" => !issuer_is_https && parsed.host_str().is_some(),
            _ => false,
        },
        Err(_) => false,
    }
}

/// Runs discovery against `source`.
async fn discover(client: &Client, source: &Source) -> Result<Discovered, FetchFailure> {
    let url = &source.discovery_url;
    let (body, _) = get(client, url).await?;
    let invalid =
        |why: String| FetchFailure::new(FetchResult::Invalid, format!("GET {url}: {why}"));
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|_| invalid("the discovery document is not JSON".into()))?;
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if issuer != source.issuer {
        return Err(invalid(format!(
            "the discovery document's issuer {issuer:?} is not the configured issuer {:?} (they must be equal, trailing '/' included)",
            source.issuer
        )));
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the discovery document has no jwks_uri".into()))?;
    let issuer_is_https = source.issuer.to_ascii_lowercase().starts_with("https://");
    if !acceptable_url(jwks_uri, issuer_is_https) {
        return Err(invalid(format!(
            "jwks_uri {jwks_uri:?} is not an http(s) URL (plain http is refused for an https issuer)"
        )));
    }
    // OIDC Discovery makes this member required; like go-oidc, RS256 when it is missing or
    // names nothing we accept.
    let advertised: Vec<Alg> = doc
        .get("id_token_signing_alg_values_supported")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .filter_map(Alg::from_name)
                .collect()
        })
        .unwrap_or_default();
    let algorithms = if advertised.is_empty() {
        vec![Alg::Rs256]
    } else {
        advertised
    };
    Ok(Discovered {
        jwks_uri: jwks_uri.to_owned(),
        algorithms,
    })
}

/// One fetch: discovery when `known` is `None` (and no JWKS URL is configured), then the JWKS.
pub(crate) async fn fetch(
    client: Client,
    source: Source,
    known: Option<Discovered>,
) -> Result<Fetched, FetchFailure> {
    let discovered = match (known, &source.jwks_url) {
        (Some(known), _) => known,
        // Without discovery nothing is advertised: RS256 only, as Weaviate (go-oidc) does.
        (None, Some(jwks_url)) => Discovered {
            jwks_uri: jwks_url.clone(),
            algorithms: vec![Alg::Rs256],
        },
        (None, None) => discover(&client, &source).await?,
    };
    let url = &discovered.jwks_uri;
    let (body, max_age) = get(&client, url).await?;
    let (keys, ignored) = KeySet::from_jwks(&body, &discovered.algorithms, Instant::now())
        .map_err(|why| FetchFailure::new(FetchResult::Invalid, format!("GET {url}: {why}")))?;
    if keys.len() == 0 {
        return Err(FetchFailure::new(
            FetchResult::Invalid,
            format!(
                "GET {url}: no usable signing key ({})",
                KeySet::describe_ignored(&ignored)
            ),
        ));
    }
    Ok(Fetched {
        discovered,
        keys,
        ignored,
        max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age_among_other_directives() {
        assert_eq!(max_age("public, max-age=60"), Some(Duration::from_secs(60)));
        assert_eq!(
            max_age("Max-Age=5, must-revalidate"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age("s-maxage=10"), None);
    }

    #[test]
    fn jwks_urls_must_not_downgrade_an_https_issuer() {
        assert!(acceptable_url("https://keys.example/jwks", true));
        assert!(!acceptable_url("http://keys.example/jwks", true));
        assert!(acceptable_url("http://127.0.0.1:9/jwks", false));
        assert!(!acceptable_url("file:///etc/passwd", false));
        assert!(!acceptable_url("not a url", false));
    }
}
