//! Paging of the OCI tags list: the `Link: <…>; rel="next"` header, and the next page by
//! `?n=&last=` for registries that honour `n` but send no `Link`.

use reqwest::Url;
use reqwest::header::{HeaderMap, LINK};

/// Tags asked for per page. Registries may return fewer (and then send `Link`), or ignore
/// `n` and return everything (docker-registry 2.8).
pub(crate) const PAGE_SIZE: usize = 1000;

/// The URL of the next page, if the registry says there is one: the `rel="next"` entry
/// of the `Link` header, resolved against the current page's URL.
pub(crate) fn next_link(headers: &HeaderMap, current: &Url) -> Option<Url> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
            let is_next = params.split(';').any(|param| {
                let param = param.trim().replace(' ', "");
                param == "rel=\"next\"" || param == "rel=next"
            });
            if is_next {
                current.join(target).ok()
            } else {
                None
            }
        })
}

/// The next page by `last=` when a page came back full without a `Link`.
pub(crate) fn page_after(first_page: &Url, last_tag: &str) -> Url {
    let mut next = first_page.clone();
    next.query_pairs_mut()
        .clear()
        .append_pair("n", &PAGE_SIZE.to_string())
        .append_pair("last", last_tag);
    next
}

/// Whether a next-page URL stays on the registry: credentials and tokens must not follow
/// a link to another host.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn link(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(LINK, HeaderValue::from_str(value).unwrap());
        let current = Url::parse("https://r.example.com/v2/acme/shop/tags/list?n=1000").unwrap();
        next_link(&headers, &current).map(|u| u.to_string())
    }

    #[test]
    fn follows_relative_and_absolute_next_links() {
        assert_eq!(
            link(r#"</v2/acme/shop/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("https://r.example.com/v2/acme/shop/tags/list?last=b&n=2")
        );
        assert_eq!(
            link(r#"<https://r.example.com/v2/x/tags/list?last=z>; rel=next"#).as_deref(),
            Some("https://r.example.com/v2/x/tags/list?last=z")
        );
        assert_eq!(
            link(r#"</first>; rel="first", </v2/a/tags/list?last=c>; rel="next""#).as_deref(),
            Some("https://r.example.com/v2/a/tags/list?last=c")
        );
        assert_eq!(link(r#"</prev>; rel="prev""#), None);
    }

    #[test]
    fn page_after_replaces_the_query() {
        let first = Url::parse("http://127.0.0.1:5000/v2/a/tags/list?n=1000").unwrap();
        assert_eq!(
            page_after(&first, "v1.0.0").as_str(),
            "http://127.0.0.1:5000/v2/a/tags/list?n=1000&last=v1.0.0"
        );
    }
}
