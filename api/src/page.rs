//! The listening room: a single page at `/` that talks only to the public `/v1` API.
//!
//! Its files (`api/web/`: one HTML page, one stylesheet, one ES module per view) are
//! compiled into the binary with `include_str!`, so a server needs no folder of its own
//! and no build step: what is in the repository is what the browser runs.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;

/// Every asset the page loads: (name under `/assets/`, content type, text).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../web/style.css"),
    ),
    ("app.js", JS, include_str!("../web/app.js")),
    ("api.js", JS, include_str!("../web/api.js")),
    ("ui.js", JS, include_str!("../web/ui.js")),
    ("player.js", JS, include_str!("../web/player.js")),
    ("search.js", JS, include_str!("../web/search.js")),
    ("track.js", JS, include_str!("../web/track.js")),
    ("playlist.js", JS, include_str!("../web/playlist.js")),
    ("path.js", JS, include_str!("../web/path.js")),
    ("map.js", JS, include_str!("../web/map.js")),
    ("admin.js", JS, include_str!("../web/admin.js")),
];

const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &str = include_str!("../web/index.html");

/// Adds `/` and `/assets/{name}` to the app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/assets/{name}", web::get().to(asset));
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(INDEX)
}

async fn asset(req: HttpRequest) -> HttpResponse {
    let name = req.match_info().get("name").unwrap_or("");
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, text)) => HttpResponse::Ok()
            .content_type(*ct)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(*text),
        None => {
            let e = ApiError::new(404, "unknown_asset", format!("no page asset {name:?}"));
            HttpResponse::NotFound().json(e.body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module the page imports is served (a missing one is a blank page).
    #[test]
    fn every_imported_module_is_an_asset() {
        for (_, _, text) in ASSETS.iter().chain([("index.html", "", INDEX)].iter()) {
            for part in text
                .split("from './")
                .skip(1)
                .chain(text.split("src=\"/assets/").skip(1))
            {
                let name = part.split(['\'', '"']).next().unwrap();
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == name),
                    "{name} is imported but not served"
                );
            }
        }
    }
}
