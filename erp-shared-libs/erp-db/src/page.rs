//! Keyset pagination with opaque page tokens. A token holds the sort key of the last row
//! returned and is signed (HMAC-SHA256) together with the name of the list and its
//! filters, so a token altered by the client, or replayed against another list or other
//! filters, is refused with a field violation on `page.page_token`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use erp_kit::error::ValidationError;
use erp_proto::erp::common::v1::{PageRequest, PageResponse};
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, Value,
};
use serde::{Serialize, de::DeserializeOwned};
use sha2::Sha256;

/// Page size when the request asks for none.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Larger requested page sizes are capped to this.
pub const MAX_PAGE_SIZE: u64 = 500;
const TAG_BYTES: usize = 16;

/// Which rows to fetch: at most `size`, after the row whose sort key is `after`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageWindow<K> {
    /// Rows per page.
    pub size: u64,
    /// The sort key of the previous page's last row.
    pub after: Option<K>,
}

impl<K> PageWindow<K> {
    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }
}

/// Issues and checks page tokens with one service's secret.
#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageTokens").finish_non_exhaustive()
    }
}

impl PageTokens {
    /// Tokens signed with `secret`.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self {
            key: secret.as_ref().to_vec(),
        }
    }

    /// The window a request asks for on `list` (the list's name and filters, e.g.
    /// `employees?department=…&status=…`).
    pub fn window<K: DeserializeOwned>(
        &self,
        list: &str,
        page: Option<&PageRequest>,
    ) -> Result<PageWindow<K>, ValidationError> {
        let (requested, token) =
            page.map_or((0, ""), |page| (page.page_size, page.page_token.as_str()));
        let size = match u64::try_from(requested) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
            Err(_) => {
                return Err(ValidationError::field(
                    "page.page_size",
                    "must not be negative",
                ));
            }
        };
        let after = if token.is_empty() {
            None
        } else {
            Some(self.decode(list, token).ok_or_else(|| {
                ValidationError::field(
                    "page.page_token",
                    "is not a page token of this list with these filters",
                )
            })?)
        };
        Ok(PageWindow { size, after })
    }

    /// Cuts the fetched rows (up to `fetch_limit`) to the page and says where the next
    /// page starts.
    pub fn finish<T, K: Serialize>(
        &self,
        list: &str,
        window: &PageWindow<impl Sized>,
        mut rows: Vec<T>,
        key_of: impl Fn(&T) -> K,
    ) -> (Vec<T>, PageResponse) {
        let page_len = usize::try_from(window.size).unwrap_or(usize::MAX);
        let next_page_token = if rows.len() > page_len {
            rows.truncate(page_len);
            rows.last()
                .map(|last| self.encode(list, &key_of(last)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        (rows, PageResponse { next_page_token })
    }

    fn mac(&self, list: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(list.as_bytes());
        mac.update(b"\n");
        mac.update(payload);
        mac
    }

    fn encode<K: Serialize>(&self, list: &str, key: &K) -> String {
        let payload = serde_json::to_vec(key).unwrap_or_default();
        let tag = self.mac(list, &payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    fn decode<K: DeserializeOwned>(&self, list: &str, token: &str) -> Option<K> {
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != TAG_BYTES {
            return None;
        }
        self.mac(list, &payload).verify_truncated_left(&tag).ok()?;
        serde_json::from_slice(&payload).ok()
    }
}

/// A row's sort key, as kept in a page token and as the values that resume the keyset
/// query (in the order of its columns).
pub trait PageKey: Serialize + DeserializeOwned + Clone {
    /// The values, column by column.
    fn into_values(self) -> Vec<Value>;
}

impl PageKey for String {
    fn into_values(self) -> Vec<Value> {
        vec![self.into()]
    }
}

impl PageKey for (String, String) {
    fn into_values(self) -> Vec<Value> {
        vec![self.0.into(), self.1.into()]
    }
}

impl PageKey for (String, String, String) {
    fn into_values(self) -> Vec<Value> {
        vec![self.0.into(), self.1.into(), self.2.into()]
    }
}

impl PageTokens {
    /// One page of `select` in ascending order of `columns`: the caller's page request
    /// read against this list (`list` names it with its filters), the keyset query, and
    /// the token of the next page from the last row's key.
    pub async fn fetch<E, K, Err>(
        &self,
        db: &impl ConnectionTrait,
        list: &str,
        page: Option<&PageRequest>,
        select: Select<E>,
        columns: &[E::Column],
        key_of: impl Fn(&E::Model) -> K,
    ) -> Result<(Vec<E::Model>, PageResponse), Err>
    where
        E: EntityTrait,
        K: PageKey,
        Err: From<ValidationError> + From<DbErr>,
    {
        self.fetch_in(
            db,
            list,
            page,
            select,
            (columns, Direction::Ascending),
            key_of,
        )
        .await
    }

    /// [`PageTokens::fetch`] in the given direction.
    pub async fn fetch_in<E, K, Err>(
        &self,
        db: &impl ConnectionTrait,
        list: &str,
        page: Option<&PageRequest>,
        select: Select<E>,
        (columns, direction): (&[E::Column], Direction),
        key_of: impl Fn(&E::Model) -> K,
    ) -> Result<(Vec<E::Model>, PageResponse), Err>
    where
        E: EntityTrait,
        K: PageKey,
        Err: From<ValidationError> + From<DbErr>,
    {
        let window: PageWindow<K> = self.window(list, page)?;
        let after = window.after.clone().map(PageKey::into_values);
        let rows = keyset_in(select, columns, after, window.fetch_limit(), direction)
            .all(db)
            .await?;
        Ok(self.finish(list, &window, rows, key_of))
    }
}

/// Which way a keyset list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smallest key first.
    Ascending,
    /// Largest key first (newest first, with time-ordered ids).
    Descending,
}

/// Orders `select` by `columns` ascending and, when `after` is given, keeps only rows
/// whose key comes after it: `(c1 > v1) OR (c1 = v1 AND c2 > v2) OR …`.
pub fn keyset<E: EntityTrait>(
    select: Select<E>,
    columns: &[E::Column],
    after: Option<Vec<Value>>,
    limit: u64,
) -> Select<E> {
    keyset_in(select, columns, after, limit, Direction::Ascending)
}

/// [`keyset`] in either direction.
pub fn keyset_in<E: EntityTrait>(
    mut select: Select<E>,
    columns: &[E::Column],
    after: Option<Vec<Value>>,
    limit: u64,
    direction: Direction,
) -> Select<E> {
    if let Some(values) = after {
        let mut any = Condition::any();
        for (index, (column, value)) in columns.iter().zip(values.iter()).enumerate() {
            let mut all = Condition::all();
            for (equal_column, equal_value) in columns.iter().zip(values.iter()).take(index) {
                all = all.add(equal_column.eq(equal_value.clone()));
            }
            let beyond = match direction {
                Direction::Ascending => column.gt(value.clone()),
                Direction::Descending => column.lt(value.clone()),
            };
            any = any.add(all.add(beyond));
        }
        select = select.filter(any);
    }
    for column in columns {
        select = match direction {
            Direction::Ascending => select.order_by_asc(*column),
            Direction::Descending => select.order_by_desc(*column),
        };
    }
    select.limit(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(size: i32, token: &str) -> PageRequest {
        PageRequest {
            page_size: size,
            page_token: token.to_owned(),
        }
    }

    #[test]
    fn tokens_round_trip_for_the_same_list() {
        let tokens = PageTokens::new("secret");
        let window: PageWindow<(String, String)> = PageWindow {
            size: 2,
            after: None,
        };
        let rows = vec![("a", "1"), ("b", "2"), ("c", "3")];
        let (page, response) = tokens.finish("employees?status=1", &window, rows, |row| {
            (row.0.to_owned(), row.1.to_owned())
        });
        assert_eq!(page.len(), 2);
        let next: PageWindow<(String, String)> = tokens
            .window(
                "employees?status=1",
                Some(&request(2, &response.next_page_token)),
            )
            .expect("token accepted");
        assert_eq!(next.after, Some(("b".to_owned(), "2".to_owned())));
    }

    #[test]
    fn the_last_page_has_no_token() {
        let tokens = PageTokens::new("secret");
        let window: PageWindow<u32> = PageWindow {
            size: 5,
            after: None,
        };
        let (_, response) = tokens.finish("l", &window, vec![1, 2], |row| *row);
        assert!(response.next_page_token.is_empty());
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused_on_the_token_field() {
        let tokens = PageTokens::new("secret");
        let token = tokens.encode("employees?status=1", &("b", "2"));
        let mut tampered = token.clone();
        tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
        for (list, token) in [
            ("employees?status=1", tampered.as_str()),
            ("employees?status=2", token.as_str()),
            ("employees?status=1", "garbage"),
        ] {
            let error = tokens
                .window::<(String, String)>(list, Some(&request(10, token)))
                .expect_err("refused");
            assert_eq!(error.violations[0].field, "page.page_token");
        }
        let other_secret = PageTokens::new("other");
        assert!(
            other_secret
                .window::<(String, String)>("employees?status=1", Some(&request(10, &token)))
                .is_err()
        );
    }

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        let tokens = PageTokens::new("secret");
        assert_eq!(
            tokens.window::<u32>("l", None).expect("ok").size,
            DEFAULT_PAGE_SIZE
        );
        assert_eq!(
            tokens
                .window::<u32>("l", Some(&request(10_000, "")))
                .expect("ok")
                .size,
            MAX_PAGE_SIZE
        );
        assert!(tokens.window::<u32>("l", Some(&request(-1, ""))).is_err());
    }
}
