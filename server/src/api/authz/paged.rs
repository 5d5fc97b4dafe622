//! A JSON array streamed a page at a time, for the listings that grow with users or groups (a
//! role's holders): the bytes are those of the whole array serialized at once (`[`, the items
//! separated by commas, `]`), but no more than a page is ever in memory.

use std::future::Future;

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::stream;
use serde::Serialize;

/// Items per page asked of the RoleRegistry (a short hold of its read lock).
pub(super) const PAGE: usize = 1000;

/// A 200 whose body is the array of every item `next` gives: called with the cursor it
/// returned last (`None` at first), it answers a page of items and the next cursor, `None`
/// after the last page. A page may be empty (all of it filtered out) and not be the last.
pub(super) fn json_array<T, F, Fut>(next: F) -> HttpResponse
where
    T: Serialize + 'static,
    F: FnMut(Option<String>) -> Fut + 'static,
    Fut: Future<Output = (Vec<T>, Option<String>)> + 'static,
{
    struct State<F> {
        next: F,
        /// Where the next page starts; `None` once the last page was written.
        cursor: Option<Option<String>>,
        wrote: bool,
    }
    let state = State {
        next,
        cursor: Some(None),
        wrote: false,
    };
    let body = stream::unfold(state, |mut state| async move {
        let cursor = state.cursor.take()?;
        let opening = cursor.is_none() && !state.wrote;
        let mut buf = Vec::new();
        if opening {
            buf.push(b'[');
        }
        let mut cursor = cursor;
        loop {
            let (items, after) = (state.next)(cursor).await;
            for item in &items {
                if state.wrote {
                    buf.push(b',');
                }
                if let Err(err) = serde_json::to_writer(&mut buf, item) {
                    return Some((Err(std::io::Error::other(err)), state));
                }
                state.wrote = true;
            }
            match after {
                None => {
                    buf.push(b']');
                    return Some((Ok::<_, std::io::Error>(Bytes::from(buf)), state));
                }
                Some(after) if buf.is_empty() => cursor = Some(after),
                Some(after) => {
                    state.cursor = Some(Some(after));
                    return Some((Ok(Bytes::from(buf)), state));
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .streaming(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body_of(pages: Vec<(Vec<u32>, Option<&'static str>)>) -> String {
        let mut pages = pages.into_iter();
        let response = json_array(move |_cursor| {
            let page = pages.next().unwrap_or_default();
            async move { (page.0, page.1.map(str::to_owned)) }
        });
        let bytes = to_bytes(response.into_body()).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[actix_web::test]
    async fn the_bytes_are_those_of_the_whole_array() {
        assert_eq!(body_of(vec![(vec![], None)]).await, "[]");
        assert_eq!(body_of(vec![(vec![1, 2], None)]).await, "[1,2]");
        assert_eq!(
            body_of(vec![
                (vec![1], Some("a")),
                (vec![], Some("b")),
                (vec![2, 3], None)
            ])
            .await,
            serde_json::to_string(&[1, 2, 3]).unwrap()
        );
        assert_eq!(
            body_of(vec![(vec![], Some("a")), (vec![], None)]).await,
            "[]"
        );
    }
}
