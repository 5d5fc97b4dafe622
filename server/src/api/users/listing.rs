//! The listing of users (`GET /v1/users/db`) as a streamed body: pages asked of the
//! KeyRegistry one after another and serialized as they come, so that a million users never
//! sit in memory as one list or one string. The bytes are those of the whole list serialized
//! at once (`[`, the users separated by commas, `]`), as before the listing streamed.

use std::sync::Arc;

use actix_web::web::Bytes;
use futures_util::stream::{self, Stream};
use portcullis_auth::api_key::UserPage;
use portcullis_auth::rbac::{Namespace, RoleRegistry};
use portcullis_auth::{KeyRegistryHandle, UserInfo};
use serde::Serialize;

use super::rfc3339;
use crate::authz::ListFilter;

/// Users per page asked of the KeyRegistry: about 150 KB of JSON, and a short hold of its
/// mailbox between changes.
pub(super) const PAGE: usize = 1000;

/// Weaviate's `DBUserInfo`. The fields are in the order of their names, as the JSON object
/// built before this struct existed had them (serde_json sorts an object's keys).
#[derive(Serialize)]
pub(super) struct UserView<'a> {
    active: bool,
    #[serde(rename = "apiKeyFirstLetters", skip_serializing_if = "Option::is_none")]
    api_key_first_letters: Option<&'a str>,
    #[serde(rename = "createdAt", skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(rename = "dbUserType")]
    db_user_type: &'static str,
    #[serde(rename = "lastUsedAt", skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    /// The user's roles (RBAC on), else empty.
    roles: Vec<String>,
    #[serde(rename = "userId")]
    user_id: &'a str,
}

impl<'a> UserView<'a> {
    /// What `info` shows: admins see static users and the key's first letters; the last use
    /// only when asked for.
    pub(super) fn new(info: &'a UserInfo, admin: bool, include_last_used: bool) -> Self {
        UserView {
            active: info.active,
            api_key_first_letters: info.first_letters.as_deref().filter(|_| admin),
            created_at: info.created_at_ms.and_then(rfc3339),
            db_user_type: if info.is_static {
                "db_env_user"
            } else {
                "db_user"
            },
            last_used_at: info
                .last_used_ms
                .filter(|_| include_last_used)
                .and_then(rfc3339),
            roles: Vec::new(),
            user_id: &info.id,
        }
    }

    /// The view with the user's roles.
    pub(super) fn with_roles(mut self, roles: Vec<String>) -> Self {
        self.roles = roles;
        self
    }
}

/// Where the users' roles come from when RBAC is on: asked for each page's users as the page
/// is written (one read of the registry per page; nothing copied for the whole listing).
pub(super) type Holdings = Option<Arc<RoleRegistry>>;

/// Where a listing stands between two chunks.
struct Listing {
    keys: KeyRegistryHandle,
    roles: Holdings,
    admin: bool,
    include_last_used: bool,
    /// With RBAC on: only the users the caller may read (`read_users`), judged per item as
    /// the page is written, so nothing is buffered.
    filter: Option<ListFilter>,
    /// The page to write next, or where to ask for it.
    next: Next,
    /// Whether the opening bracket was written.
    opened: bool,
    /// Whether a user was written (the next one needs a comma).
    wrote: bool,
}

enum Next {
    Page(UserPage),
    After(String),
}

impl Listing {
    /// Writes a page's users (static users for admins only) to `buf`; `roles`, when RBAC is
    /// on, holds each of the page's users' roles in the page's order.
    fn write(
        &mut self,
        page: &UserPage,
        roles: Option<Vec<Vec<String>>>,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        let visible = |u: &UserInfo| {
            (self.admin || !u.is_static) && self.filter.as_ref().is_none_or(|f| f.allows(&u.id))
        };
        let mut roles = roles.map(Vec::into_iter);
        for info in &page.users {
            let held = roles.as_mut().and_then(Iterator::next).unwrap_or_default();
            if !visible(info) {
                continue;
            }
            if self.wrote {
                buf.push(b',');
            }
            let roles = held;
            serde_json::to_writer(
                &mut *buf,
                &UserView::new(info, self.admin, self.include_last_used).with_roles(roles),
            )?;
            self.wrote = true;
        }
        Ok(())
    }
}

/// The body listing every user, starting with `first` (asked for before the response, so a
/// failure there is still a status code); one chunk per page. A later page that cannot be
/// read ends the stream with an error, which cuts the response short: the client sees an
/// incomplete body, never a complete-looking wrong one.
pub(super) fn body(
    keys: KeyRegistryHandle,
    first: UserPage,
    admin: bool,
    include_last_used: bool,
    filter: Option<ListFilter>,
    roles: Holdings,
) -> impl Stream<Item = std::io::Result<Bytes>> {
    let listing = Listing {
        keys,
        roles,
        admin,
        include_last_used,
        filter,
        next: Next::Page(first),
        opened: false,
        wrote: false,
    };
    stream::unfold(Some(listing), |listing| async move {
        let mut listing = listing?;
        let mut buf = Vec::new();
        if !std::mem::replace(&mut listing.opened, true) {
            buf.push(b'[');
        }
        loop {
            let page = match std::mem::replace(&mut listing.next, Next::After(String::new())) {
                Next::Page(page) => page,
                Next::After(after) => match listing.keys.list_page(Some(after), PAGE).await {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::error!(error = %err, "listing users stopped part-way");
                        return Some((Err(std::io::Error::other(err)), None));
                    }
                },
            };
            let roles = match &listing.roles {
                Some(registry) => Some(
                    registry
                        .roles_of_each(Namespace::Db, page.users.iter().map(|u| u.id.as_str()))
                        .await,
                ),
                None => None,
            };
            if let Err(err) = listing.write(&page, roles, &mut buf) {
                return Some((Err(err), None));
            }
            match page.next {
                None => {
                    buf.push(b']');
                    return Some((Ok(Bytes::from(buf)), None));
                }
                Some(after) => {
                    listing.next = Next::After(after);
                    // A page of nothing to show (static users hidden) sends no chunk.
                    if !buf.is_empty() {
                        return Some((Ok(Bytes::from(buf)), Some(listing)));
                    }
                }
            }
        }
    })
}
