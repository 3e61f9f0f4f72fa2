//! The reads of a [`Client`]: get, scan, neighbors and k-NN search, each routed by its
//! consistency, and the paginated `_all` forms.

use sutra_proto::storage::{
    self as pb, Concept, Consistency, GetConceptRequest, IdRange, Neighbor, NeighborsRequest,
    ReadMeta, ScanRequest, SearchHit, SearchRequest, scan_request,
};

use super::Client;
use crate::call::request;
use crate::error::ClientError;
use crate::options::ReadOptions;
use crate::query::{Neighbors, Page, Read, Scan, ScanRange, Search};

fn meta(m: Option<ReadMeta>) -> ReadMeta {
    m.unwrap_or_default()
}

fn token(t: String) -> Option<String> {
    (!t.is_empty()).then_some(t)
}

impl Client {
    /// Reads a concept at `consistency`; `None` if there is none.
    pub async fn get(
        &self,
        id: &str,
        consistency: Consistency,
    ) -> Result<Option<Concept>, ClientError> {
        Ok(self
            .get_with(id, ReadOptions::new(consistency))
            .await?
            .value)
    }

    /// Reads a concept with `opts`, with how the read was served.
    pub async fn get_with(
        &self,
        id: &str,
        opts: ReadOptions,
    ) -> Result<Read<Option<Concept>>, ClientError> {
        let req = GetConceptRequest {
            read: Some(self.read_options(&opts)),
            id: id.to_string(),
        };
        let (resp, ep) = self
            .calls
            .read(&self.router, opts, |mut c, t| {
                let req = request(req.clone(), t);
                async move { c.get_concept(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        let meta = meta(resp.meta);
        self.router.observe(&ep, meta.served_by, meta.leader_id);
        Ok(Read {
            value: resp.concept,
            meta,
        })
    }

    /// One page of the edges of a concept; pass the previous page's
    /// `next_page_token` for the next one.
    pub async fn neighbors(
        &self,
        query: &Neighbors,
        page_token: Option<&str>,
        opts: ReadOptions,
    ) -> Result<Page<Neighbor>, ClientError> {
        self.neighbors_page(query, query.page_size, page_token, opts)
            .await
    }

    async fn neighbors_page(
        &self,
        query: &Neighbors,
        limit: u32,
        page_token: Option<&str>,
        opts: ReadOptions,
    ) -> Result<Page<Neighbor>, ClientError> {
        let req = NeighborsRequest {
            read: Some(self.read_options(&opts)),
            id: query.id.clone(),
            direction: query.direction as i32,
            relation: query.relation.clone(),
            limit,
            page_token: page_token.unwrap_or_default().to_string(),
        };
        let (resp, ep) = self
            .calls
            .read(&self.router, opts, |mut c, t| {
                let req = request(req.clone(), t);
                async move { c.get_neighbors(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        let meta = meta(resp.meta);
        self.router.observe(&ep, meta.served_by, meta.leader_id);
        Ok(Page {
            items: resp.neighbors,
            next_page_token: token(resp.next_page_token),
            meta,
        })
    }

    /// Every edge of a concept, page after page, up to `max` of them. Each page is its
    /// own read (its own deadline and serving node).
    pub async fn neighbors_all(
        &self,
        query: &Neighbors,
        max: usize,
        opts: ReadOptions,
    ) -> Result<Vec<Neighbor>, ClientError> {
        all_pages(query.page_size, max, |limit, token| async move {
            self.neighbors_page(query, limit, token.as_deref(), opts)
                .await
        })
        .await
    }

    /// One page of a scan; pass the previous page's `next_page_token` for the next one.
    pub async fn scan(
        &self,
        scan: &Scan,
        page_token: Option<&str>,
        opts: ReadOptions,
    ) -> Result<Page<Concept>, ClientError> {
        self.scan_page(scan, scan.page_size, page_token, opts).await
    }

    async fn scan_page(
        &self,
        scan: &Scan,
        limit: u32,
        page_token: Option<&str>,
        opts: ReadOptions,
    ) -> Result<Page<Concept>, ClientError> {
        let range = match &scan.range {
            ScanRange::All => None,
            ScanRange::Prefix(p) => Some(scan_request::Range::Prefix(p.clone())),
            ScanRange::Range { start, end } => Some(scan_request::Range::IdRange(IdRange {
                start: start.clone(),
                end: end.clone().unwrap_or_default(),
            })),
        };
        let req = ScanRequest {
            read: Some(self.read_options(&opts)),
            range,
            limit,
            page_token: page_token.unwrap_or_default().to_string(),
            keys_only: scan.keys_only,
        };
        let (resp, ep) = self
            .calls
            .read(&self.router, opts, |mut c, t| {
                let req = request(req.clone(), t);
                async move { c.scan(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        let meta = meta(resp.meta);
        self.router.observe(&ep, meta.served_by, meta.leader_id);
        Ok(Page {
            items: resp.concepts,
            next_page_token: token(resp.next_page_token),
            meta,
        })
    }

    /// Every concept of a scan, page after page, up to `max` of them. Each page is its
    /// own read (its own deadline and serving node).
    pub async fn scan_all(
        &self,
        scan: &Scan,
        max: usize,
        opts: ReadOptions,
    ) -> Result<Vec<Concept>, ClientError> {
        all_pages(scan.page_size, max, |limit, token| async move {
            self.scan_page(scan, limit, token.as_deref(), opts).await
        })
        .await
    }

    /// The `k` concepts nearest to a vector, best first.
    pub async fn search(
        &self,
        query: &Search,
        opts: ReadOptions,
    ) -> Result<Read<Vec<SearchHit>>, ClientError> {
        let req = SearchRequest {
            read: Some(self.read_options(&opts)),
            vector: query.vector.clone(),
            k: query.k,
            metric: query.metric as i32,
            include_concepts: query.include_concepts,
        };
        let (resp, ep) = self
            .calls
            .read(&self.router, opts, |mut c, t| {
                let req = request(req.clone(), t);
                async move { c.search(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        let meta = meta(resp.meta);
        self.router.observe(&ep, meta.served_by, meta.leader_id);
        Ok(Read {
            value: resp.hits,
            meta,
        })
    }

    fn read_options(&self, opts: &ReadOptions) -> pb::ReadOptions {
        opts.to_proto(self.session_token())
    }
}

/// Reads page after page through `page(limit, token)` until there is no next page or
/// `max` items are in; each page asks for no more than are still wanted.
async fn all_pages<T, F, Fut>(page_size: u32, max: usize, page: F) -> Result<Vec<T>, ClientError>
where
    F: Fn(u32, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, ClientError>>,
{
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    while out.len() < max {
        let p = page(page_limit(page_size, max - out.len()), next.take()).await?;
        out.extend(p.items);
        match p.next_page_token {
            Some(t) => next = Some(t),
            None => break,
        }
    }
    out.truncate(max);
    Ok(out)
}
/// The page size to ask for when at most `remaining` more items are wanted.
fn page_limit(page_size: u32, remaining: usize) -> u32 {
    let size = if page_size == 0 { 100 } else { page_size };
    u32::try_from(remaining)
        .map_or(size, |r| size.min(r))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_never_ask_for_more_than_wanted() {
        assert_eq!(page_limit(0, 1000), 100);
        assert_eq!(page_limit(0, 7), 7);
        assert_eq!(page_limit(50, 1000), 50);
        assert_eq!(page_limit(50, usize::MAX), 50);
        assert_eq!(page_limit(50, 0), 1);
    }
}
