//! `tracer:` / `tracers:` (the original's): where runs are exported as OpenTelemetry traces,
//! to an OTLP collector or to Langfuse (through its OTLP endpoint), and what of a run's input
//! and output goes with them.

use serde::{Deserialize, Deserializer};

/// One place traces go.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracer {
    pub exporter: TraceExporter,
    pub capture: Capture,
    /// How long one export may take before it is given up (the original's `timeout`, 30 s).
    pub timeout: std::time::Duration,
}

/// Where a tracer sends its spans.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceExporter {
    /// `driver: otlp`: a collector at `endpoint` (the full URL, `…/v1/traces` over HTTP).
    Otlp {
        endpoint: String,
        protocol: OtlpProtocol,
        headers: Vec<(String, String)>,
        /// Skip verifying the collector's certificate (the original: gRPC only).
        insecure: bool,
        service_name: String,
    },
    /// `driver: langfuse`: a Langfuse server, its OTLP endpoint with the keys as Basic auth.
    Langfuse {
        /// The server's base URL: `url`, or made of `host`, `port` and `secure`.
        base_url: String,
        public_key: String,
        secret_key: String,
    },
}

impl TraceExporter {
    /// The URL spans are posted to.
    pub fn endpoint(&self) -> String {
        match self {
            TraceExporter::Otlp { endpoint, .. } => endpoint.clone(),
            TraceExporter::Langfuse { base_url, .. } => {
                format!(
                    "{}/api/public/otel/v1/traces",
                    base_url.trim_end_matches('/')
                )
            }
        }
    }
}

/// How an OTLP collector is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// Protobuf over HTTP (the original's default).
    Http,
    Grpc,
}

/// What of a run's payloads its spans carry (the original's `capture`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct Capture {
    pub input: bool,
    pub output: bool,
    /// Keys whose values are replaced, at any depth, in any case.
    pub redact_keys: Vec<String>,
    /// A payload longer than this (as JSON) is cut to it.
    pub max_payload_bytes: Option<usize>,
}

impl Default for Capture {
    fn default() -> Self {
        Self {
            input: true,
            output: true,
            redact_keys: Vec::new(),
            max_payload_bytes: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Driver {
    Otlp,
    Langfuse,
}

/// A tracer as written: the keys of both drivers.
#[derive(Deserialize)]
struct RawTracer {
    driver: Driver,
    #[serde(default)]
    capture: Capture,
    timeout: Option<super::Duration>,
    endpoint: Option<String>,
    protocol: Option<OtlpProtocol>,
    #[serde(default, deserialize_with = "super::model::string_map")]
    headers: Vec<(String, String)>,
    #[serde(default)]
    insecure: bool,
    service_name: Option<String>,
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    secure: Option<bool>,
    public_key: Option<String>,
    secret_key: Option<String>,
}

impl<'de> Deserialize<'de> for Tracer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = RawTracer::deserialize(deserializer)?;
        let needed = |value: Option<String>, key: &str, driver: &str| {
            value.filter(|value| !value.is_empty()).ok_or_else(|| {
                D::Error::custom(format!("a tracer of driver {driver} needs `{key}`"))
            })
        };
        let exporter = match raw.driver {
            Driver::Otlp => TraceExporter::Otlp {
                endpoint: needed(raw.endpoint, "endpoint", "otlp")?,
                protocol: raw.protocol.unwrap_or(OtlpProtocol::Http),
                headers: raw.headers,
                insecure: raw.insecure,
                service_name: raw.service_name.unwrap_or_else(|| "model-compose".into()),
            },
            Driver::Langfuse => {
                let base_url = match (raw.url, raw.host) {
                    (Some(_), Some(_)) => {
                        return Err(D::Error::custom(
                            "a langfuse tracer takes `url` or `host`, not both",
                        ))
                    }
                    (Some(url), None) => url,
                    (None, host) => {
                        let secure = raw.secure.unwrap_or(true);
                        let scheme = if secure { "https" } else { "http" };
                        let host = host.unwrap_or_else(|| "cloud.langfuse.com".into());
                        format!("{scheme}://{host}:{}", raw.port.unwrap_or(443))
                    }
                };
                TraceExporter::Langfuse {
                    base_url,
                    public_key: needed(raw.public_key, "public_key", "langfuse")?,
                    secret_key: needed(raw.secret_key, "secret_key", "langfuse")?,
                }
            }
        };
        Ok(Tracer {
            exporter,
            capture: raw.capture,
            timeout: raw
                .timeout
                .map_or(std::time::Duration::from_secs(30), |d| d.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, Sources};
    use testkit::Workdir;

    fn loaded(yaml: &str) -> Result<Vec<Tracer>, String> {
        let dir = Workdir::empty();
        let path = dir.write("model-compose.yml", yaml);
        let env = Sources::isolated(&dir.path, &[("LF_SECRET", "sk-lf-secret")]);
        load(&[path], &env)
            .map(|config| config.tracers)
            .map_err(|err| err.to_string())
    }

    #[test]
    fn both_drivers_load_with_the_originals_defaults() {
        let tracers =
            loaded("tracer:\n  driver: otlp\n  endpoint: http://127.0.0.1:4318/v1/traces\n")
                .unwrap();
        assert_eq!(
            tracers,
            [Tracer {
                exporter: TraceExporter::Otlp {
                    endpoint: "http://127.0.0.1:4318/v1/traces".into(),
                    protocol: OtlpProtocol::Http,
                    headers: vec![],
                    insecure: false,
                    service_name: "model-compose".into(),
                },
                capture: Capture::default(),
                timeout: std::time::Duration::from_secs(30),
            }]
        );
        let tracers = loaded(
            "tracers:\n  - driver: langfuse\n    public_key: pk\n    secret_key: ${env.LF_SECRET}\n\
             \x20   capture: {input: false, redact_keys: [password], max_payload_bytes: 100}\n\
             \x20   timeout: 5\n\
             \x20 - {driver: langfuse, host: lf.local, port: 3000, secure: false, public_key: a, \
             secret_key: b}\n\
             \x20 - {driver: langfuse, url: 'https://eu.langfuse.example/', public_key: a, \
             secret_key: b}\n",
        )
        .unwrap();
        let endpoints: Vec<String> = tracers.iter().map(|t| t.exporter.endpoint()).collect();
        assert_eq!(
            endpoints,
            [
                "https://cloud.langfuse.com:443/api/public/otel/v1/traces",
                "http://lf.local:3000/api/public/otel/v1/traces",
                "https://eu.langfuse.example/api/public/otel/v1/traces",
            ]
        );
        assert_eq!(
            tracers[0].capture,
            Capture {
                input: false,
                output: true,
                redact_keys: vec!["password".into()],
                max_payload_bytes: Some(100),
            }
        );
        assert_eq!(tracers[0].timeout, std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_bad_tracer_is_a_config_error_with_its_place() {
        for (yaml, said) in [
            (
                "tracer:\n  driver: otlp\n",
                ":1:1: a tracer of driver otlp needs `endpoint`",
            ),
            (
                "tracer:\n  driver: langfuse\n  url: https://x\n  host: y\n",
                ":1:1: a langfuse tracer takes `url` or `host`, not both",
            ),
            (
                "tracer:\n  driver: zipkin\n  endpoint: x\n",
                ":2:11: tracer.driver: unknown variant `zipkin`",
            ),
            (
                "tracer:\n  driver: otlp\n  endpoint: x\n  protocol: udp\n",
                ":4:13: tracer.protocol: unknown variant `udp`",
            ),
        ] {
            let err = loaded(yaml).unwrap_err();
            assert!(err.contains(said), "{yaml}: {err}");
        }
    }
}
