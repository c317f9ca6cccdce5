//! The OpenAPI 3 document, generated from the route table: a route cannot be served
//! without being documented, nor documented without being served.

use serde_json::{json, Value};

use super::{FILTER_PARAMS, ROUTES};

/// The OpenAPI 3 document, generated from [`ROUTES`].
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let mut parameters: Vec<Value> = Vec::new();
        let mut rest = r.path;
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
            let name = &rest[start + 1..end];
            parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": if name == "tag" { "string" } else { "integer" } } }));
            rest = &rest[end..];
        }
        let mut expanded: Vec<(&str, &str)> = Vec::new();
        for (n, d) in r.query {
            if *n == "<filters>" {
                expanded.extend(FILTER_PARAMS.iter().copied());
            } else {
                expanded.push((n, d));
            }
        }
        for (n, d) in expanded {
            parameters.push(json!({ "name": n, "in": "query", "required": false, "description": d, "schema": { "type": "string" } }));
        }
        let mut op = json!({
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method.to_lowercase(), r.path.trim_start_matches("/v1/").replace(['/', '{', '}', '.'], "_")),
            "parameters": parameters,
            "responses": {
                "200": { "description": "OK", "content": { (r.produces): {} } },
                "400": { "$ref": "#/components/responses/Error" },
                "404": { "$ref": "#/components/responses/Error" },
            },
        });
        if let Some((ct, d)) = r.body {
            let mut content = serde_json::Map::new();
            for t in ct.split(" | ") {
                content.insert(t.to_string(), json!({ "schema": { "description": d } }));
            }
            op["requestBody"] = json!({ "required": true, "description": d, "content": content });
        }
        if r.needs_token {
            op["security"] = json!([{ "bearer": [] }]);
        }
        let item = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        item[r.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Motif", "version": env!("CARGO_PKG_VERSION"), "description": "Music search and recommendation: more like this, text and hybrid search, tags, playlists, ingestion." },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": { "Error": { "description": "An error", "content": { "application/json": { "schema": {
                "type": "object",
                "properties": { "error": { "type": "object", "properties": {
                    "code": { "type": "string" }, "message": { "type": "string" }, "details": { "type": "object" } } } } } } } } },
        },
    })
}
