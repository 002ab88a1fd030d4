//! Tags list, catalog and search.

use berth_types::Reference;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::auth::{CATALOG_SCOPE, repo_scope};
use crate::client::{Client, api_error, read_limited, transport_error};
use crate::error::{RegistryError, Result, redact_url};

/// One search hit, in Docker Hub's v1 search shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    results: Vec<SearchResult>,
}

/// Next page from a `Link: <url>; rel="next"` header, resolved against the request URL.
fn next_link(resp: &reqwest::Response) -> Option<Url> {
    for v in resp.headers().get_all(reqwest::header::LINK) {
        let s = v.to_str().ok()?;
        for part in s.split(',') {
            let (target, params) = part.split_once(';').unwrap_or((part, ""));
            if params.split(';').any(|p| {
                p.trim().replace(' ', "").eq_ignore_ascii_case("rel=\"next\"")
                    || p.trim().eq_ignore_ascii_case("rel=next")
            }) {
                let t = target.trim().trim_start_matches('<').trim_end_matches('>');
                return resp.url().join(t).ok();
            }
        }
    }
    None
}

const PAGE_BODY_LIMIT: u64 = 16 << 20;
const MAX_PAGES: usize = 10_000;

impl Client {
    /// All tags of `repo` (tag/digest of the reference are ignored), following `Link` pagination.
    pub async fn list_tags(&self, repo: &Reference) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let host = self.host(repo.registry_host()).await?;
        let scopes = [repo_scope(repo.path(), "pull")];
        let mut url = host.url(&format!("v2/{}/tags/list", repo.path()))?;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self.execute(&host, &scopes, Method::GET, &url, &|b| b, true).await?;
            if !resp.status().is_success() {
                let mut e = api_error(resp, "GET", &host.name).await;
                e.subject = Some(format!("listing tags of {}", repo.familiar_repository()));
                return Err(RegistryError::Api(Box::new(e)));
            }
            let next = next_link(&resp);
            let body = read_limited(resp, PAGE_BODY_LIMIT, "GET", &url).await?;
            let t: Tags = serde_json::from_slice(&body).map_err(|e| RegistryError::BadResponse {
                method: "GET".into(),
                url: redact_url(&url),
                message: format!("invalid tags list: {e}"),
            })?;
            out.extend(t.tags.unwrap_or_default());
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        Ok(out)
    }

    /// Repository names from `/v2/_catalog`, `page_size` per request, following `Link`, at most
    /// `limit` names (None = all).
    pub async fn catalog(&self, registry: &str, page_size: usize, limit: Option<usize>) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let host = self.host(registry).await?;
        let scopes = [CATALOG_SCOPE.to_string()];
        let mut url = host.url("v2/_catalog")?;
        url.query_pairs_mut().append_pair("n", &page_size.max(1).to_string());
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self.execute(&host, &scopes, Method::GET, &url, &|b| b, true).await?;
            if !resp.status().is_success() {
                let mut e = api_error(resp, "GET", &host.name).await;
                e.subject = Some(format!("listing repositories of {registry}"));
                return Err(RegistryError::Api(Box::new(e)));
            }
            let next = next_link(&resp);
            let body = read_limited(resp, PAGE_BODY_LIMIT, "GET", &url).await?;
            let c: Catalog = serde_json::from_slice(&body).map_err(|e| RegistryError::BadResponse {
                method: "GET".into(),
                url: redact_url(&url),
                message: format!("invalid catalog: {e}"),
            })?;
            out.extend(c.repositories);
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(usize::MAX));
                break;
            }
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        Ok(out)
    }

    /// Searches `registry` for `term`: Docker Hub's v1 search API for Docker Hub, a filtered
    /// catalog elsewhere (names containing `term`; no stars or descriptions exist there).
    pub async fn search(&self, registry: &str, term: &str, limit: usize) -> Result<Vec<SearchResult>> {
        if berth_config::DOCKER_HUB_HOSTS.contains(&registry) {
            return self.hub_search(term, limit).await;
        }
        let names = self.catalog(registry, 1000, None).await?;
        let t = term.to_lowercase();
        Ok(names
            .into_iter()
            .filter(|n| n.to_lowercase().contains(&t))
            .take(limit)
            .map(|name| SearchResult {
                name,
                description: String::new(),
                star_count: 0,
                is_official: false,
                is_automated: false,
            })
            .collect())
    }

    async fn hub_search(&self, term: &str, limit: usize) -> Result<Vec<SearchResult>> {
        let mut url = Url::parse(&self.options().hub_search_url)
            .map_err(|e| RegistryError::Other(format!("invalid search URL: {e}")))?;
        url.query_pairs_mut().append_pair("q", term).append_pair("n", &limit.clamp(1, 100).to_string());
        let host = url.host_str().unwrap_or("index.docker.io").to_string();
        let http = reqwest::Client::builder()
            .user_agent(self.options().user_agent.clone())
            .connect_timeout(self.options().connect_timeout)
            .read_timeout(self.options().read_timeout)
            .build()
            .map_err(|e| RegistryError::Other(format!("building HTTP client: {e}")))?;
        let resp = http.get(url.clone()).send().await.map_err(|e| transport_error("GET", &url, &host, e))?;
        if !resp.status().is_success() {
            let mut e = api_error(resp, "GET", &host).await;
            e.subject = Some(format!("searching Docker Hub for {term:?}"));
            return Err(RegistryError::Api(Box::new(e)));
        }
        let body = read_limited(resp, PAGE_BODY_LIMIT, "GET", &url).await?;
        let r: SearchResponse = serde_json::from_slice(&body).map_err(|e| RegistryError::BadResponse {
            method: "GET".into(),
            url: redact_url(&url),
            message: format!("invalid search response: {e}"),
        })?;
        let mut v = r.results;
        v.truncate(limit);
        Ok(v)
    }
}
