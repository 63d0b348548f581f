//! Traefik: it has no API to write to, it reads container labels through its Docker
//! provider. So the routing is in [`Proxy::container_labels`], set when the container is
//! created, and hosts need no other work: ensure and delete succeed without a request, and
//! there is nothing to list (the containers themselves are what we own).

use std::collections::BTreeMap;

use super::{HostId, HostSpec, OwnedHost, Proxy, ProxyError, ProxyKind, expect_kind};
use crate::subdomain::Subdomain;

pub struct TraefikProxy;

#[async_trait::async_trait]
impl Proxy for TraefikProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Traefik
    }

    async fn ensure_host(&self, spec: &HostSpec) -> Result<HostId, ProxyError> {
        Ok(HostId::new(
            ProxyKind::Traefik,
            &router_name(spec.domain.as_str()),
        ))
    }

    async fn delete_host(&self, id: &HostId) -> Result<(), ProxyError> {
        expect_kind(id, ProxyKind::Traefik)
    }

    async fn list_hosts(&self) -> Result<Vec<OwnedHost>, ProxyError> {
        Ok(Vec::new())
    }

    async fn check(&self) -> Result<String, ProxyError> {
        Ok("Traefik has no API to check: docker-watcher puts router labels on each container, so make sure Traefik watches this Docker Engine (its Docker provider) and shares a network with the containers".into())
    }

    /// `traefik.enable`, one router for all `domains` (named after the first one) and its
    /// service pointing at `container_port`. Names that are not valid domains are skipped,
    /// so nothing unescaped ends up in a rule.
    fn container_labels(
        &self,
        domains: &[String],
        container_port: u16,
    ) -> BTreeMap<String, String> {
        let domains: Vec<Subdomain> = domains
            .iter()
            .filter_map(|d| Subdomain::parse(d).ok())
            .collect();
        let Some(first) = domains.first() else {
            return BTreeMap::new();
        };
        let name = router_name(first.as_str());
        let rule = domains
            .iter()
            .map(|d| format!("Host(`{d}`)"))
            .collect::<Vec<_>>()
            .join(" || ");
        BTreeMap::from([
            ("traefik.enable".to_string(), "true".to_string()),
            (format!("traefik.http.routers.{name}.rule"), rule),
            (format!("traefik.http.routers.{name}.service"), name.clone()),
            (
                format!("traefik.http.services.{name}.loadbalancer.server.port"),
                container_port.to_string(),
            ),
        ])
    }
}

/// A router/service name from a domain: Traefik splits label keys at dots, so the dots of
/// the (already DNS-safe) domain become dashes, under our `dw-` prefix.
fn router_name(domain: &str) -> String {
    format!("dw-{}", domain.replace('.', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_route_all_domains_to_the_port() {
        let labels = TraefikProxy.container_labels(
            &[
                "stage-dev-shop-v1.example.com".to_string(),
                "stage-dev-shop.example.com".to_string(),
            ],
            8080,
        );
        let expected = BTreeMap::from([
            ("traefik.enable".to_string(), "true".to_string()),
            (
                "traefik.http.routers.dw-stage-dev-shop-v1-example-com.rule".to_string(),
                "Host(`stage-dev-shop-v1.example.com`) || Host(`stage-dev-shop.example.com`)"
                    .to_string(),
            ),
            (
                "traefik.http.routers.dw-stage-dev-shop-v1-example-com.service".to_string(),
                "dw-stage-dev-shop-v1-example-com".to_string(),
            ),
            (
                "traefik.http.services.dw-stage-dev-shop-v1-example-com.loadbalancer.server.port"
                    .to_string(),
                "8080".to_string(),
            ),
        ]);
        assert_eq!(labels, expected);
    }

    #[test]
    fn no_valid_domain_means_no_labels() {
        assert!(TraefikProxy.container_labels(&[], 80).is_empty());
        assert!(
            TraefikProxy
                .container_labels(&["bad`) || Host(`evil.com".to_string()], 80)
                .is_empty()
        );
    }

    #[tokio::test]
    async fn hosts_need_no_request() {
        let spec = HostSpec {
            domain: Subdomain::parse("a.example.com").unwrap(),
            upstream: super::super::Upstream {
                host: "shop".into(),
                port: 8080,
            },
        };
        let id = TraefikProxy.ensure_host(&spec).await.unwrap();
        assert_eq!(id.as_str(), "traefik:dw-a-example-com");
        TraefikProxy.delete_host(&id).await.unwrap();
        assert!(TraefikProxy.list_hosts().await.unwrap().is_empty());
    }
}
