//! Read queries ([`Scan`], [`Neighbors`], [`Search`]) and read results ([`Read`],
//! [`Page`]), each carrying how the read was served.

use sutra_proto::storage::{Direction, Metric, ReadMeta};

/// A read's value and how it was served: which node, at which applied index and
/// consistency.
#[derive(Debug, Clone, PartialEq)]
pub struct Read<T> {
    /// What was read.
    pub value: T,
    /// How the read was served.
    pub meta: ReadMeta,
}

/// One page of a paginated read.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page, in the server's order.
    pub items: Vec<T>,
    /// Pass to the next call for the following page; `None` on the last page.
    pub next_page_token: Option<String>,
    /// How the read was served.
    pub meta: ReadMeta,
}

/// Which ids a scan covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScanRange {
    /// Every concept.
    #[default]
    All,
    /// Ids starting with this prefix.
    Prefix(String),
    /// Ids in `start..end` compared as bytes; an empty `start` means from the first id,
    /// `None` means unbounded.
    Range {
        /// Inclusive lower bound.
        start: String,
        /// Exclusive upper bound.
        end: Option<String>,
    },
}

/// A scan of concepts in id order.
///
/// ```
/// # use sutra_client::Scan;
/// let scan = Scan::prefix("user/").page_size(500).keys_only(true);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scan {
    /// The ids covered.
    pub range: ScanRange,
    /// Concepts per page: 0 is the server's default (100); at most 10,000.
    pub page_size: u32,
    /// Return only ids and versions.
    pub keys_only: bool,
}

impl Scan {
    /// Every concept.
    pub fn all() -> Self {
        Self::default()
    }

    /// Ids starting with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self {
            range: ScanRange::Prefix(prefix.into()),
            ..Self::default()
        }
    }

    /// Ids in `start..end` (`end` `None`: unbounded).
    pub fn range(start: impl Into<String>, end: Option<String>) -> Self {
        Self {
            range: ScanRange::Range {
                start: start.into(),
                end,
            },
            ..Self::default()
        }
    }

    /// Sets the page size.
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n;
        self
    }

    /// Returns only ids and versions if `yes`.
    pub fn keys_only(mut self, yes: bool) -> Self {
        self.keys_only = yes;
        self
    }
}

/// The edges of one concept.
///
/// ```
/// # use sutra_client::Neighbors;
/// # use sutra_proto::storage::Direction;
/// let q = Neighbors::of("a").direction(Direction::Both).relation("cites");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbors {
    /// The concept.
    pub id: String,
    /// Which edges: outgoing (default), incoming or both.
    pub direction: Direction,
    /// Only edges with this relation.
    pub relation: Option<String>,
    /// Edges per page: 0 is the server's default (100); at most 10,000.
    pub page_size: u32,
}

impl Neighbors {
    /// The outgoing edges of `id`.
    pub fn of(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            direction: Direction::Out,
            relation: None,
            page_size: 0,
        }
    }

    /// Sets the direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Only edges with `relation`.
    pub fn relation(mut self, relation: impl Into<String>) -> Self {
        self.relation = Some(relation.into());
        self
    }

    /// Sets the page size.
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n;
        self
    }
}

/// An exact k-nearest-neighbour search over embeddings.
///
/// ```
/// # use sutra_client::Search;
/// # use sutra_proto::storage::Metric;
/// let q = Search::new(vec![0.1, 0.2, 0.3], 5).metric(Metric::L2).include_concepts(true);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The query vector (the cluster's dimension).
    pub vector: Vec<f32>,
    /// Hits wanted, 1..=1000.
    pub k: u32,
    /// Score function. Default: cosine.
    pub metric: Metric,
    /// Return each hit's concept too.
    pub include_concepts: bool,
}

impl Search {
    /// The `k` concepts nearest to `vector` by cosine similarity.
    pub fn new(vector: Vec<f32>, k: u32) -> Self {
        Self {
            vector,
            k,
            metric: Metric::Cosine,
            include_concepts: false,
        }
    }

    /// Sets the metric.
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    /// Returns each hit's concept too if `yes`.
    pub fn include_concepts(mut self, yes: bool) -> Self {
        self.include_concepts = yes;
        self
    }
}
