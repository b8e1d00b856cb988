//! Images: use a local image, pull only a missing one, and build `build:` services once,
//! tagged by the content hash of their context so unchanged contexts are never rebuilt.

use std::collections::HashMap;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures::StreamExt;

use super::build_context::pack;
use super::client::DockerEngine;
use super::error::EngineError;
use super::types::{HealthTiming, ImageConfig};
use crate::compose::Service;

/// What happened while making an image available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// It was already present.
    Local,
    /// It was pulled.
    Pulled,
    /// It was built now.
    Built,
    /// A build with the same content hash already existed.
    Cached,
}

/// `repo:tag` -> `repo`; digests and registry ports are kept intact.
fn repository(image: &str) -> &str {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) if !image.contains('@') => &image[..last_slash + i],
        _ => image,
    }
}

impl DockerEngine {
    /// Whether an image exists locally.
    pub async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.api_error(format!("inspect image {image}"))(e)),
        }
    }

    /// The parts of an image's configuration the orchestrator needs (`EXPOSE`, `ENV`,
    /// `HEALTHCHECK`).
    pub async fn image_config(&self, image: &str) -> Result<ImageConfig, EngineError> {
        let info = self
            .docker
            .inspect_image(image)
            .await
            .map_err(self.api_error(format!("inspect image {image}")))?;
        let config = info.config.unwrap_or_default();
        let mut exposed_tcp_ports: Vec<u16> = config
            .exposed_ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| match p.split_once('/') {
                Some((port, "tcp")) => port.parse().ok(),
                Some(_) => None,
                None => p.parse().ok(),
            })
            .collect();
        exposed_tcp_ports.sort_unstable();
        exposed_tcp_ports.dedup();
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect();
        let mut volumes: Vec<String> = config.volumes.unwrap_or_default().into_iter().collect();
        volumes.sort();
        Ok(ImageConfig {
            exposed_tcp_ports,
            env,
            healthcheck_timing: config
                .healthcheck
                .as_ref()
                .map(health_timing)
                .unwrap_or_default(),
            healthcheck_test: config.healthcheck.and_then(|h| h.test),
            id: info.id.unwrap_or_default(),
            volumes,
            entrypoint: config.entrypoint.unwrap_or_default(),
        })
    }

    /// Make `image` available: local if present, else pulled (progress lines to `on_line`).
    pub async fn ensure_image(
        &self,
        image: &str,
        allow_pull: bool,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<ImageSource, EngineError> {
        if self.image_exists(image).await? {
            return Ok(ImageSource::Local);
        }
        if !allow_pull {
            return Err(EngineError::ImageUnavailable {
                image: image.to_string(),
                engine: self.endpoint().to_string(),
                message: "it is not present locally and pull_policy forbids pulling".into(),
            });
        }
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| EngineError::ImageUnavailable {
                image: image.to_string(),
                engine: self.endpoint().to_string(),
                message: format!("pull failed: {e}"),
            })?;
            if let Some(status) = info.status {
                on_line(&format!("pull {image}: {status}"));
            }
        }
        Ok(ImageSource::Pulled)
    }

    /// Build a `build:` service's image once, tagged `<repository>:cs-<hash>`; reuse it when a
    /// build of identical content exists. `excluded` folders are left out of the context.
    /// Build output lines go to `on_line`. Returns the tag.
    pub async fn build_service_image(
        &self,
        service: &Service,
        excluded: &[std::path::PathBuf],
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(String, ImageSource), EngineError> {
        let build = service.build.as_ref().ok_or_else(|| EngineError::Build {
            image: service.image.clone().unwrap_or_default(),
            engine: self.endpoint().to_string(),
            service: service.name.clone(),
            message: "the service has no build section".into(),
        })?;
        let base = service
            .image
            .clone()
            .unwrap_or_else(|| format!("compose-shard-build-{}", service.name));
        let context = pack(build, excluded)?;
        let tag = format!("{}:cs-{}", repository(&base), &context.hash[..16]);
        if self.image_exists(&tag).await? {
            return Ok((tag, ImageSource::Cached));
        }
        let args: HashMap<String, String> = build
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let mut options = BuildImageOptionsBuilder::new()
            .t(&tag)
            .dockerfile(build.dockerfile.as_deref().unwrap_or("Dockerfile"))
            .buildargs(&args)
            // `rm` removes the steps' containers after a successful build; `forcerm` also
            // after a failed one, whose step container would otherwise stay behind without
            // any compose-shard label, out of `clean`'s reach.
            .rm(true)
            .forcerm(true);
        if let Some(target) = &build.target {
            options = options.target(target);
        }
        let failed = |message: String| EngineError::Build {
            image: tag.clone(),
            engine: self.endpoint().to_string(),
            service: service.name.clone(),
            message,
        };
        let mut stream = self.docker.build_image(
            options.build(),
            None,
            Some(bollard::body_full(context.archive.into())),
        );
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| failed(e.to_string()))?;
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err(failed(error));
            }
            if let Some(line) = info.stream {
                let line = line.trim_end();
                if !line.is_empty() {
                    on_line(line);
                }
            }
        }
        if !self.image_exists(&tag).await? {
            return Err(failed("the build finished but produced no image".into()));
        }
        Ok((tag, ImageSource::Built))
    }
}

/// An image's `HEALTHCHECK` timing; the engine stores durations in nanoseconds, 0 for unset.
fn health_timing(h: &bollard::models::HealthConfig) -> HealthTiming {
    let duration = |nanos: Option<i64>| {
        nanos
            .filter(|n| *n > 0)
            .map(|n| std::time::Duration::from_nanos(n as u64))
    };
    HealthTiming {
        interval: duration(h.interval),
        timeout: duration(h.timeout),
        retries: h.retries.filter(|r| *r > 0).map(|r| r as u32),
        start_period: duration(h.start_period),
    }
}

#[cfg(test)]
mod tests {
    use super::{health_timing, repository};
    use std::time::Duration;

    #[test]
    fn an_image_healthcheck_timing_reads_nanoseconds_and_zero_as_unset() {
        let h = bollard::models::HealthConfig {
            test: Some(vec!["CMD".into(), "true".into()]),
            interval: Some(2_500_000_000),
            timeout: Some(0),
            retries: Some(5),
            start_period: None,
            start_interval: None,
        };
        let t = health_timing(&h);
        assert_eq!(t.interval, Some(Duration::from_millis(2500)));
        assert_eq!(t.timeout, None);
        assert_eq!(t.retries, Some(5));
        assert_eq!(t.start_period, None);
    }

    #[test]
    fn repository_drops_only_the_tag() {
        assert_eq!(repository("proj-app"), "proj-app");
        assert_eq!(repository("proj-app:latest"), "proj-app");
        assert_eq!(
            repository("localhost:5000/team/app:1.2"),
            "localhost:5000/team/app"
        );
        assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
    }
}
